// Client-side prediction of the own player, with reconciliation.
//
// The server moves every body with one integer rule (player.rs `step_movement`, ported in
// map.js) from the intents it applies, one per tick, in sequence order, and each state frame
// acknowledges the last sequence it applied together with the resulting position. The client
// applies each input it sends to its own predicted position at once; on every state frame it
// starts again from the server's position and replays the inputs the server has not applied
// yet (sequence above the ack) on the walls it holds. While nothing is unacknowledged the
// prediction is exactly the server's position; with inputs in flight it is where the server
// will put the player once they arrive, unless something the client cannot know (a wall shot
// away this tick, a queued input held a tick longer) intervenes, and the next state corrects it.
//
// The correction is not shown as a jump: `displayOffset` carries the difference and decays
// over ~100 ms (a respawn or anything larger than a few pixels snaps).

import { Phase } from './protocol.js';
import { stepMovement } from './map.js';

/** Unacknowledged inputs kept (3 s at 30 Hz); older ones are forgotten. */
export const MAX_PENDING = 90;
/** A correction above this many sub-pixels is a teleport (spawn): no smoothing. */
const SNAP_SUB = 24 * 8;
/** Per-millisecond decay of the shown correction (≈ 100 ms to fade). */
const CORRECTION_DECAY_PER_MS = 0.03;

/** Whether the server moves bodies in this phase (lobby and countdown included). */
export function phaseMoves(phase) {
  return phase === Phase.WAITING || phase === Phase.STARTING || phase === Phase.IN_PROGRESS;
}

/** `a - b` for 32-bit sequence numbers that may wrap. */
function sequenceAfter(a, b) {
  return (a - b) | 0;
}

export class Predictor {
  constructor() {
    this.pending = [];
    this.x = 0;
    this.y = 0;
    this.valid = false;
    this.offsetX = 0;
    this.offsetY = 0;
    this.corrections = 0;
    this.snaps = 0;
  }

  /** Forgets every input (a new connection: the server's gate starts over or is resumed). */
  reset() {
    this.pending.length = 0;
    this.valid = false;
    this.offsetX = this.offsetY = 0;
  }

  /** Whether the own body can be predicted now. */
  static canMove(mirror) {
    return mirror.init !== null && !mirror.spectating && mirror.own.alive && phaseMoves(mirror.phase[0]);
  }

  /** An input was sent: remember it and apply its movement at once. */
  applySent(intent, mirror) {
    this.pending.push({ sequence: intent.sequence, direction: intent.direction, speed: intent.speed });
    if (this.pending.length > MAX_PENDING) this.pending.shift();
    if (this.valid && Predictor.canMove(mirror)) {
      [this.x, this.y] = stepMovement(mirror.walls, this.x, this.y, intent.direction, mirror.init.speeds[intent.speed], mirror.init.playerHalfSub);
    }
  }

  /** After a state frame: the server's position plus every input it has not applied yet. */
  reconcile(mirror) {
    const own = mirror.own;
    while (this.pending.length > 0 && sequenceAfter(this.pending[0].sequence, own.ack) <= 0) this.pending.shift();
    let x = own.x;
    let y = own.y;
    if (Predictor.canMove(mirror)) {
      const { speeds, playerHalfSub } = mirror.init;
      for (const input of this.pending) {
        [x, y] = stepMovement(mirror.walls, x, y, input.direction, speeds[input.speed], playerHalfSub);
      }
    }
    if (this.valid) {
      const dx = this.x - x;
      const dy = this.y - y;
      if (dx !== 0 || dy !== 0) {
        if (Math.abs(dx) > SNAP_SUB || Math.abs(dy) > SNAP_SUB) {
          this.offsetX = this.offsetY = 0;
          this.snaps++;
        } else {
          this.offsetX += dx;
          this.offsetY += dy;
          this.corrections++;
        }
      }
    }
    this.x = x;
    this.y = y;
    this.valid = mirror.init !== null;
  }

  /** Where to draw the own player (sub-pixels), with the last corrections fading out. */
  displayPosition(elapsedMs) {
    const keep = Math.exp(-CORRECTION_DECAY_PER_MS * Math.max(0, elapsedMs));
    this.offsetX *= keep;
    this.offsetY *= keep;
    if (Math.abs(this.offsetX) < 0.5) this.offsetX = 0;
    if (Math.abs(this.offsetY) < 0.5) this.offsetY = 0;
    return [this.x + this.offsetX, this.y + this.offsetY];
  }
}
