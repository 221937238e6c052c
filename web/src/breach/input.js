// From keys and mouse to input frames: what the player intends (move direction, speed,
// facing, fire, reload, place a charge), and when to send it.
//
// The sending rule (docs/web-client.md): **at most one input per tick (30 Hz), decided on a
// fixed tick clock, never per animation frame or per mouse event**. A tick sends an input
// when anything changed since the last one sent (direction, speed, fire, facing by more than
// a hair, a reload or charge press), and on every tick while moving: the server moves the
// body from the intents it applies and acknowledges them by sequence number, so a moved tick
// that carries a sequence number is one the prediction can replay exactly. Standing still
// with nothing changing sends nothing; the server holds the last intent.
//
// Sequence numbers start at 1 on a fresh join and rise by one per input. After a resume
// (same seat, new connection) the server's input gate is the one it had, so numbering goes
// on from what the server acknowledged plus the most inputs it can have queued (input.rs
// MAX_PENDING_INPUTS = 4) plus one: always above what it accepted, never a jump it refuses.

import { encodeInput, Speed } from './protocol.js';

/** Fixed tick length of the send clock (the server's tick rate comes from init). */
export const DEFAULT_TICK_MS = 1000 / 30;
/** Facing changes below this (1/65536 turn, ≈ 0.1°) are not worth a frame. */
export const FACING_THRESHOLD = 16;
/** input.rs MAX_PENDING_INPUTS: the most intents the server may hold unapplied. */
const SERVER_MAX_PENDING = 4;
/** After a stall, at most this many ticks are caught up at once (the rest are skipped). */
const MAX_CATCH_UP_TICKS = 2;

/** The wire direction 0..=8 of a key vector (dx, dy ∈ −1..=1, y down the screen). */
export function directionOf(dx, dy) {
  const table = {
    '1,0': 1,
    '1,1': 2,
    '0,1': 3,
    '-1,1': 4,
    '-1,0': 5,
    '-1,-1': 6,
    '0,-1': 7,
    '1,-1': 8,
  };
  return table[`${Math.sign(dx)},${Math.sign(dy)}`] ?? 0;
}

/** Held keys and buttons, and presses not yet sent. */
export class Controls {
  constructor() {
    this.keys = new Set();
    this.fire = false;
    this.reloadPressed = false;
    this.usePressed = false;
    /** Facing in 1/65536 turn (from the mouse, relative to the own player on screen). */
    this.facing = 0;
  }

  keyDown(code) {
    this.keys.add(code);
    if (code === 'KeyR') this.reloadPressed = true;
    if (code === 'KeyE' || code === 'KeyF') this.usePressed = true;
  }

  keyUp(code) {
    this.keys.delete(code);
  }

  releaseAll() {
    this.keys.clear();
    this.fire = false;
  }

  /** The intent as of now (without a sequence number). */
  intent() {
    const held = (...codes) => codes.some((code) => this.keys.has(code));
    const dx = (held('KeyD', 'ArrowRight') ? 1 : 0) - (held('KeyA', 'ArrowLeft') ? 1 : 0);
    const dy = (held('KeyS', 'ArrowDown') ? 1 : 0) - (held('KeyW', 'ArrowUp') ? 1 : 0);
    let speed = Speed.WALK;
    if (held('ShiftLeft', 'ShiftRight')) speed = Speed.RUN;
    else if (held('KeyC', 'ControlLeft', 'AltLeft')) speed = Speed.SNEAK;
    return {
      sequence: 0,
      direction: directionOf(dx, dy),
      speed,
      facing: this.facing & 0xffff,
      fire: this.fire,
      reload: this.reloadPressed,
      use: this.usePressed,
    };
  }

  /** The one-shot presses went out with an input. */
  consumePresses() {
    this.reloadPressed = false;
    this.usePressed = false;
  }
}

/** Decides, once per tick, whether an input goes out, and numbers it. */
export class InputSender {
  constructor() {
    this.reset();
    this.sent = 0;
  }

  /** A fresh join: numbering starts at 1, nothing was sent. */
  reset() {
    this.nextSequence = 1;
    this.last = null;
    this.waitingForAck = false;
  }

  /**
   * A resumed seat: hold inputs until the first state says what the server applied, then go
   * on above anything it may have accepted.
   */
  resumed() {
    this.last = null;
    this.waitingForAck = true;
  }

  /** The first state after a resume carries the server's ack. */
  onAck(ack) {
    if (!this.waitingForAck) return;
    this.waitingForAck = false;
    this.nextSequence = Math.max(this.nextSequence, ((ack + SERVER_MAX_PENDING + 1) >>> 0) || 1);
  }

  /** Whether `intent` must be sent this tick (see the module comment). */
  shouldSend(intent) {
    if (this.waitingForAck) return false;
    const last = this.last;
    if (last === null) return true;
    if (intent.direction !== 0 || intent.reload || intent.use) return true;
    if (intent.direction !== last.direction || intent.speed !== last.speed || intent.fire !== last.fire) return true;
    const turn = Math.abs(((intent.facing - last.facing + 98304) % 65536) - 32768);
    return turn >= FACING_THRESHOLD;
  }

  /** Numbers and encodes `intent` if it must go out this tick; returns the frame or null. */
  tick(intent) {
    if (!this.shouldSend(intent)) return null;
    intent.sequence = this.nextSequence;
    this.nextSequence = (this.nextSequence + 1) >>> 0 || 1;
    this.last = { ...intent };
    this.sent++;
    return encodeInput(intent);
  }
}

/**
 * A fixed-rate tick clock driven from the animation frame loop: `due(now)` says how many
 * ticks have passed since the last call (0 most frames at 60 Hz, 1 every other frame), at most
 * MAX_CATCH_UP_TICKS after a stall (a background tab does not burst inputs when it returns).
 */
export class TickClock {
  constructor(tickMs = DEFAULT_TICK_MS) {
    this.tickMs = tickMs;
    this.next = null;
  }

  due(now) {
    if (this.next === null) {
      this.next = now + this.tickMs;
      return 1;
    }
    if (now < this.next) return 0;
    const passed = Math.floor((now - this.next) / this.tickMs) + 1;
    this.next += passed * this.tickMs;
    return Math.min(passed, MAX_CATCH_UP_TICKS);
  }
}
