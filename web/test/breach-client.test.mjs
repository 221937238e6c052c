// Breach's client-side logic that needs no DOM: prediction and reconciliation against a
// simulated server with latency (the same movement rule, one intent per tick, held when none
// arrives), interpolation of others, the input sending rule (at most one per tick, only when
// something changed or the player moves), sequence numbers after a resume, and the sound and
// scaling arithmetic. Run: node --test web/test/breach-client.test.mjs

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { Walls, builtInMap, stepMovement } from '../src/breach/map.js';
import { Predictor } from '../src/breach/predict.js';
import { Interpolator, ServerClock } from '../src/breach/interpolate.js';
import { Controls, InputSender, TickClock, directionOf } from '../src/breach/input.js';
import { panOf, gainOf } from '../src/breach/sound.js';
import { crispScale } from '../src/breach/render.js';
import { Phase } from '../src/breach/protocol.js';

const init = { speeds: [8, 16, 26], playerHalfSub: 36, tickRate: 30 };

/** The parts of a mirror the predictor reads. */
function fakeMirror(walls, x, y) {
  return { init, walls, spectating: false, phase: [Phase.IN_PROGRESS, 1000], own: { x, y, ack: 0, alive: true } };
}

/**
 * A server in miniature: inputs arrive `latency` ticks after they are sent, at most one is
 * applied per tick (held when none waits, as input.rs does), and states reach the client
 * `latency` ticks after the tick they describe.
 */
class ToyServer {
  constructor(walls, x, y, latency) {
    this.walls = walls;
    this.x = x;
    this.y = y;
    this.latency = latency;
    this.inbound = [];
    this.queue = [];
    this.held = { direction: 0, speed: 1, sequence: 0 };
    this.outbound = [];
    this.tick = 0;
  }
  receive(intent) {
    this.inbound.push({ at: this.tick + this.latency, intent });
  }
  step() {
    this.tick++;
    while (this.inbound.length > 0 && this.inbound[0].at <= this.tick) this.queue.push(this.inbound.shift().intent);
    const intent = this.queue.shift() ?? { ...this.held };
    this.held = intent;
    [this.x, this.y] = stepMovement(this.walls, this.x, this.y, intent.direction, init.speeds[intent.speed], init.playerHalfSub);
    this.outbound.push({ at: this.tick + this.latency, x: this.x, y: this.y, ack: intent.sequence });
  }
  deliver(tick) {
    const due = [];
    while (this.outbound.length > 0 && this.outbound[0].at <= tick) due.push(this.outbound.shift());
    return due;
  }
}

test('prediction with reconciliation lands where the server will be, through walls and latency', () => {
  const walls = new Walls(builtInMap(1));
  // Team A's spawn on the warehouse, heading east toward the concrete and wooden walls.
  const start = [3 * 80 + 40, 15 * 80 + 40];
  for (const latency of [0, 2, 5]) {
    const server = new ToyServer(walls, ...start, latency);
    const mirror = fakeMirror(walls, ...start);
    const predictor = new Predictor();
    predictor.reconcile(mirror);
    const controls = new Controls();
    const sender = new InputSender();
    let seed = latency + 7;
    const random = () => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed >>> 16;
    };
    const sentAt = new Map();
    let exact = 0;
    for (let tick = 1; tick <= 600; tick++) {
      // Change keys every few ticks: all eight directions, the three speeds, standing still.
      if (tick % 9 === 0) {
        controls.keys.clear();
        const choice = random() % 10;
        const keys = [[], ['KeyD'], ['KeyD', 'KeyS'], ['KeyS'], ['KeyS', 'KeyA'], ['KeyA'], ['KeyA', 'KeyW'], ['KeyW'], ['KeyW', 'KeyD'], []][choice];
        for (const key of keys) controls.keyDown(key);
        if (random() % 3 === 0) controls.keyDown('ShiftLeft');
        else if (random() % 3 === 0) controls.keyDown('KeyC');
      }
      const intent = controls.intent();
      const frame = sender.tick(intent);
      if (frame) {
        server.receive({ ...intent });
        predictor.applySent(intent, mirror);
        sentAt.set(intent.sequence, tick);
      }
      server.step();
      for (const state of server.deliver(tick)) {
        mirror.own.x = state.x;
        mirror.own.y = state.y;
        mirror.own.ack = state.ack;
        predictor.reconcile(mirror);
      }
      // Where the prediction says the player is now = where the server puts it once every
      // input sent so far is applied. Check against a copy of the server run forward.
      const ahead = new ToyServer(walls, server.x, server.y, 0);
      ahead.queue = server.inbound.map((entry) => entry.intent).concat(server.queue);
      ahead.held = server.held;
      const waiting = ahead.queue.length;
      for (let i = 0; i < waiting; i++) ahead.step();
      const expected = server.inbound.length + server.queue.length === 0 ? [server.x, server.y] : [ahead.x, ahead.y];
      if (predictor.x === expected[0] && predictor.y === expected[1]) exact++;
    }
    assert.ok(predictor.corrections === 0, `latency ${latency}: no corrections needed (${predictor.corrections})`);
    assert.ok(exact >= 590, `latency ${latency}: prediction exact on ${exact} of 600 ticks`);
    // The player lets go of the keys; once everything is acknowledged, prediction and server
    // agree exactly.
    controls.keys.clear();
    for (let tick = 601; tick <= 620; tick++) {
      const intent = controls.intent();
      if (sender.tick(intent)) {
        server.receive({ ...intent });
        predictor.applySent(intent, mirror);
      }
      server.step();
      for (const state of server.deliver(tick)) {
        mirror.own.x = state.x;
        mirror.own.y = state.y;
        mirror.own.ack = state.ack;
        predictor.reconcile(mirror);
      }
    }
    assert.deepEqual([predictor.x, predictor.y], [server.x, server.y]);
    assert.equal(predictor.pending.length, 0);
  }
});

test('a server that holds an input a tick longer is corrected, and the correction fades', () => {
  const walls = new Walls(builtInMap(1));
  const start = [30 * 80, 2 * 80];
  const mirror = fakeMirror(walls, ...start);
  const predictor = new Predictor();
  predictor.reconcile(mirror);
  // Two inputs east; the server applied the first twice (the second arrived a tick late).
  predictor.applySent({ sequence: 1, direction: 1, speed: 2 }, mirror);
  predictor.applySent({ sequence: 2, direction: 1, speed: 2 }, mirror);
  assert.equal(predictor.x, start[0] + 52);
  mirror.own.x = start[0] + 52;
  mirror.own.ack = 1;
  predictor.reconcile(mirror);
  assert.equal(predictor.x, start[0] + 78, 'server position plus the unacknowledged input');
  assert.equal(predictor.corrections, 1);
  const [shown] = predictor.displayPosition(0);
  assert.equal(shown, start[0] + 52, 'shown where it was drawn, then eased');
  const [later] = predictor.displayPosition(200);
  assert.ok(Math.abs(later - (start[0] + 78)) < 1, `after 200 ms ${later}`);
  // A teleport (respawn) snaps.
  mirror.own.x = start[0] + 3000;
  mirror.own.ack = 2;
  predictor.reconcile(mirror);
  assert.equal(predictor.snaps, 1);
  assert.equal(predictor.displayPosition(0)[0], start[0] + 3000);
  // Dead or in the scoreboard: the server's position, nothing replayed.
  predictor.applySent({ sequence: 3, direction: 1, speed: 2 }, mirror);
  mirror.own.alive = false;
  predictor.reconcile(mirror);
  assert.equal(predictor.x, start[0] + 3000);
});

test('others are drawn between snapshots, three ticks behind, and never after they left', () => {
  const tickMs = 1000 / 30;
  const interpolator = new Interpolator(tickMs, 3);
  const others = new Array(16).fill(null);
  const mirror = { tick: 100, others };
  others[3] = { qx: 100, qy: 50, facing: 250, health: 100, entered: true };
  interpolator.onState(mirror, 0);
  // A new player is drawn at once, at its first position.
  assert.deepEqual(interpolator.sample(3, interpolator.renderTick(0)), { x: 50.25, y: 25.25, facing: 250, health: 100 });
  for (let tick = 101; tick <= 110; tick++) {
    mirror.tick = tick;
    others[3] = { qx: 100 + (tick - 100) * 4, qy: 50, facing: (250 + (tick - 100) * 2) % 256, health: 100, entered: false };
    interpolator.onState(mirror, (tick - 100) * tickMs);
  }
  const now = 10 * tickMs;
  const at = interpolator.renderTick(now);
  assert.ok(Math.abs(at - 107) < 0.01, `render tick ${at}`);
  const halfway = interpolator.sample(3, 106.5);
  assert.equal(halfway.x, (100 + 6.5 * 4) / 2 + 0.25);
  // Facing 254 → 0 turns the short way (through 255), not back through 128.
  const wrap = interpolator.sample(3, 102.5);
  assert.ok(wrap.facing > 250 || wrap.facing < 2, `facing ${wrap.facing}`);
  // Out of view: gone at once.
  mirror.tick = 111;
  others[3] = null;
  interpolator.onState(mirror, 11 * tickMs);
  assert.equal(interpolator.sample(3, interpolator.renderTick(11 * tickMs)), null);
});

test('the server clock follows the states without jumping on jitter', () => {
  const clock = new ServerClock(1000 / 30);
  clock.observe(500, 0);
  // States arriving early and late by up to 15 ms around the true schedule.
  for (let tick = 501; tick < 600; tick++) clock.observe(tick, (tick - 500) * (1000 / 30) + ((tick * 37) % 30) - 15);
  const estimate = clock.estimate(100 * (1000 / 30));
  assert.ok(Math.abs(estimate - 600) < 0.8, `estimate ${estimate}`);
  clock.observe(2000, 4000);
  assert.equal(clock.estimate(4000), 2000, 'a far-off state snaps');
});

test('inputs: at most one per tick, only when something changed or the player moves', () => {
  const controls = new Controls();
  const sender = new InputSender();
  const clock = new TickClock(1000 / 30);
  let sent = 0;
  // One second at 144 frames per second with the mouse moving every frame, standing still.
  for (let frame = 0; frame < 144; frame++) {
    const now = (frame * 1000) / 144;
    controls.facing = (frame * 300) & 0xffff;
    for (let tick = clock.due(now); tick > 0; tick--) if (sender.tick(controls.intent())) sent++;
  }
  assert.ok(sent >= 29 && sent <= 31, `${sent} inputs in a second of mouse movement`);
  // Nothing changes: nothing is sent (after the tick that carries the last facing).
  for (let frame = 144; frame < 150; frame++) {
    for (let tick = clock.due((frame * 1000) / 144); tick > 0; tick--) sender.tick(controls.intent());
  }
  let idle = 0;
  for (let frame = 150; frame < 288; frame++) {
    for (let tick = clock.due((frame * 1000) / 144); tick > 0; tick--) if (sender.tick(controls.intent())) idle++;
  }
  assert.equal(idle, 0, 'standing still with the mouse still sends nothing');
  // A tiny facing change below the threshold is not worth a frame; a press is.
  controls.facing += 3;
  assert.equal(sender.tick(controls.intent()), null);
  controls.keyDown('KeyR');
  const reload = sender.tick(controls.intent());
  assert.ok(reload && (reload.at(-1) & 2) === 2, 'the reload press goes out');
  controls.consumePresses();
  assert.equal(sender.tick(controls.intent()), null, 'and only once');
  // Moving: one per tick even with nothing else changing.
  controls.keyDown('KeyD');
  let moving = 0;
  for (let tick = 0; tick < 30; tick++) if (sender.tick(controls.intent())) moving++;
  assert.equal(moving, 30);
  // Sequence numbers rise by one per input.
  const sequences = [];
  for (let tick = 0; tick < 3; tick++) sequences.push(sender.tick(controls.intent())[1]);
  assert.deepEqual(sequences, [sequences[0], sequences[0] + 1, sequences[0] + 2]);
  // A background tab that comes back does not burst: at most two ticks caught up.
  assert.ok(clock.due(60_000) <= 2);
});

test('after a resume, numbering goes on above what the server may hold', () => {
  const sender = new InputSender();
  const intent = () => ({ sequence: 0, direction: 1, speed: 1, facing: 0, fire: false, reload: false, use: false });
  for (let i = 0; i < 40; i++) sender.tick(intent());
  assert.equal(sender.nextSequence, 41);
  sender.resumed();
  assert.equal(sender.tick(intent()), null, 'nothing before the first state');
  // The server applied 30 and may hold up to 4 more (31..34): continue at 41 (above both).
  sender.onAck(30);
  assert.equal(sender.tick(intent())[1], 41);
  // A seat that lost many inputs in the drop: the server applied 100 and holds nothing we
  // know of; its gate refuses jumps above 60, so numbering continues right above its window.
  const behind = new InputSender();
  behind.resumed();
  behind.onAck(100);
  assert.equal(behind.nextSequence, 105);
  // A fresh join starts at 1.
  sender.reset();
  assert.equal(sender.tick(intent())[1], 1);
});

test('keys map to the wire directions, clockwise on screen from +x', () => {
  assert.equal(directionOf(0, 0), 0);
  assert.equal(directionOf(1, 0), 1);
  assert.equal(directionOf(1, 1), 2);
  assert.equal(directionOf(0, 1), 3);
  assert.equal(directionOf(-1, 0), 5);
  assert.equal(directionOf(0, -1), 7);
  assert.equal(directionOf(1, -1), 8);
  const controls = new Controls();
  controls.keyDown('KeyW');
  controls.keyDown('KeyA');
  controls.keyDown('ShiftLeft');
  assert.deepEqual([controls.intent().direction, controls.intent().speed], [6, 2]);
  controls.keyUp('ShiftLeft');
  controls.keyDown('KeyC');
  assert.equal(controls.intent().speed, 0);
});

test('sound: direction pans left and right, loudness sets the gain', () => {
  assert.ok(panOf(0) > 0.8, 'east is right');
  assert.ok(panOf(32) < -0.8, 'west is left');
  assert.ok(Math.abs(panOf(16)) < 1e-9 && Math.abs(panOf(48)) < 1e-9, 'north and south are centred');
  assert.ok(gainOf(7) > gainOf(4) && gainOf(4) > gainOf(1) && gainOf(1) > 0);
  assert.equal(gainOf(0), 0);
});

test('the canvas scale is the largest whole number of device pixels that fits', () => {
  assert.deepEqual(crispScale(1280, 720, 1), { scale: 2, cssWidth: 960, cssHeight: 540 });
  assert.deepEqual(crispScale(1280, 720, 2), { scale: 5, cssWidth: 1200, cssHeight: 675 });
  assert.deepEqual(crispScale(1920, 1080, 1), { scale: 4, cssWidth: 1920, cssHeight: 1080 });
  assert.deepEqual(crispScale(1366, 768, 1.5), { scale: 4, cssWidth: 1280, cssHeight: 720 });
  assert.deepEqual(crispScale(300, 200, 1), { scale: 1, cssWidth: 480, cssHeight: 270 });
});
