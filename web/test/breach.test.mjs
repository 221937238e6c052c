// Breach's browser client against what the Rust core produced and holds.
//
// web/test/fixtures/breach_*.json and web/src/breach/maps.js are written by
// crates/coil-breach/tests/web_fixtures.rs: real matches (bots, a scripted breacher, resyncs,
// a spectator, a restart), each viewer's messages in hex with the Rust client mirror's state
// after each one; step_movement results on every map with random holes; the maps as the Rust
// parser reads them. Here the JavaScript decoder, mirror, movement and prediction must agree
// with them exactly. Run: node --test web/test/breach.test.mjs (no npm packages needed).

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { hexToBytes } from '../src/protocol.js';
import { BreachMirror, MirrorError } from '../src/breach/mirror.js';
import { Walls, builtInMap, parseMap, stepMovement, MapError } from '../src/breach/map.js';
import { BUILT_IN_MAPS } from '../src/breach/maps.js';
import {
  ErrorCode,
  Phase,
  ProtocolError,
  Reader,
  Vote,
  decodeRuntimeFrame,
  decodeServerFrame,
  decodeServerMessage,
  encodeInput,
  encodeResume,
  encodeVote,
  facingFromRadians,
} from '../src/breach/protocol.js';

const fixtureDir = join(dirname(fileURLToPath(import.meta.url)), 'fixtures');
const load = (name) => JSON.parse(readFileSync(join(fixtureDir, name), 'utf8'));

/** FNV-1a (32 bit) over the damaged slices as index u32 LE + hit points, as the Rust test. */
function wallsHash(walls) {
  let hash = 0x811c9dc5;
  let count = 0;
  for (const [index, hitPoints] of walls.damagedSlices()) {
    count++;
    for (const byte of [index & 0xff, (index >>> 8) & 0xff, (index >>> 16) & 0xff, index >>> 24, hitPoints]) {
      hash = Math.imul(hash ^ byte, 0x01000193) >>> 0;
    }
  }
  return [count, hash];
}

const roster = (entries) => entries.map((e) => [e.slot, e.team, e.bot ? 1 : 0, e.kills, e.deaths, e.assists, e.name]);

/** The JavaScript mirror's state in the shape the Rust test writes (light or full). */
function snapshot(mirror, full) {
  const own = mirror.own;
  const view = {
    tick: mirror.tick,
    own: [own.x, own.y, own.facing, own.health, own.ammo, own.reload, own.alive ? 1 : 0, own.respawn, own.charges, own.ack],
    others: mirror.others.flatMap((other, slot) => (other ? [[slot, other.qx, other.qy, other.facing, other.health]] : [])),
    scores: [...mirror.scores],
    phase: [...mirror.phase],
  };
  const lists = {
    shots: mirror.shots.map((s) => [s.shooter, s.hitPlayer ? 1 : 0, s.seen ? 1 : 0, s.seen ? s.dx : s.direction, s.seen ? s.dy : 0]),
    sounds: mirror.sounds.map((s) => [s.kind, s.loudness, s.direction, s.muffled ? 1 : 0]),
    charges: mirror.charges.map((c) => [c.x, c.y, c.fuse, c.friendly ? 1 : 0]),
    blasts: mirror.blasts.map(([x, y]) => [x, y]),
    votes: mirror.votes.map(([slot, vote]) => [slot, vote]),
  };
  for (const [key, value] of Object.entries(lists)) if (value.length > 0) view[key] = value;
  view.walls = mirror.walls ? wallsHash(mirror.walls) : [0, 0];
  view.rosterSize = mirror.roster.length;
  view.killFeedSize = mirror.killFeed.length;
  view.scoreboard = mirror.scoreboard ? 1 : 0;
  if (full) {
    view.init = mirror.init && { ...mirror.init, speeds: [...mirror.init.speeds] };
    view.roster = roster(mirror.roster);
    view.killFeed = mirror.killFeed.map((k) => [k.killer, k.victim, k.assister, k.cause]);
    const board = mirror.scoreboard;
    view.scoreboardFull = board && {
      reason: board.reason,
      winner: board.winner,
      scores: [...board.scores],
      durationTicks: board.durationTicks,
      ticksLeft: board.ticksLeft,
      players: roster(board.players),
    };
    view.damaged = mirror.walls ? mirror.walls.damagedSlices().flat() : [];
  }
  return view;
}

const match = load('breach_match.json');

test('the match fixture covers players, a spectator, resyncs and a restart', () => {
  assert.deepEqual(
    match.viewers.map((viewer) => viewer.role),
    ['player', 'player', 'spectator'],
  );
  for (const viewer of match.viewers) assert.ok(viewer.messages.length > 500, viewer.viewer);
  const dropped = match.viewers.map((viewer) => viewer.messages.filter((m) => m.hex === null).length);
  assert.equal(dropped[0], 0);
  assert.ok(dropped[1] > 1 && dropped[2] > 1, `dropped ${dropped}`);
});

for (const viewer of match.viewers) {
  test(`the JavaScript mirror holds what the Rust mirror holds after every message (${viewer.viewer}, ${viewer.role})`, () => {
    const mirror = new BreachMirror();
    let compared = 0;
    let full = 0;
    let generations = new Set();
    viewer.messages.forEach((message, index) => {
      if (message.hex === null) return;
      mirror.applyMessage(hexToBytes(message.hex));
      const expected = message.mirror;
      const isFull = 'init' in expected;
      assert.deepEqual(snapshot(mirror, isFull), expected, `${viewer.viewer}: after message ${index}`);
      compared++;
      if (isFull) full++;
      if (mirror.init) generations.add(mirror.init.matchGeneration);
    });
    assert.ok(compared > 500 && full > 20, `${compared} compared, ${full} full`);
    assert.deepEqual([...generations], [1, 2], 'the restart reached the client');
  });
}

test('the spectator is told it spectates and sees players of both teams', () => {
  const mirror = new BreachMirror();
  const teams = new Set();
  for (const message of match.viewers[2].messages) {
    if (message.hex === null) continue;
    mirror.applyMessage(hexToBytes(message.hex));
    assert.ok(mirror.spectating);
    for (const [slot, other] of mirror.others.entries()) if (other) teams.add(mirror.teamOf(slot));
    assert.equal(mirror.sounds.length, 0, 'spectators hear nothing');
  }
  assert.deepEqual([...teams].sort(), [0, 1]);
});

test('a message that does not fit what the mirror holds is refused, not half applied', () => {
  const mirror = new BreachMirror();
  const messages = match.viewers[0].messages;
  // A state before any init.
  assert.throws(() => mirror.applyMessage(hexToBytes(messages[1].hex)), MirrorError);
  mirror.applyMessage(hexToBytes(messages[0].hex));
  // Truncated: the last byte of a state frame missing.
  const state = hexToBytes(messages[1].hex);
  assert.throws(() => mirror.applyMessage(state.subarray(0, state.length - 1)), ProtocolError);
  // A leave for a slot nobody holds (slot 15, sections = players, one leave entry).
  assert.throws(() => mirror.applyMessage(new Uint8Array([0x92, 0x03, 0x02, 0x01, 0x0f])), MirrorError);
  // A slice outside the map.
  assert.throws(() => mirror.applyMessage(new Uint8Array([0x91, 0x05, 0x01, 0xff, 0xff, 0x7f, 0x00])), MirrorError);
  // A frame with a bad field inside an otherwise good message: nothing of it is applied.
  const before = snapshot(mirror, true);
  const bad = new Uint8Array([...hexToBytes(messages[1].hex), 0x95, 0x02, 0x09, 0x00]);
  assert.throws(() => mirror.applyMessage(bad), ProtocolError);
  assert.deepEqual(snapshot(mirror, true), before, 'the good state frame before the bad one was not applied');
  // Unknown frame types are skipped by their length.
  mirror.applyMessage(new Uint8Array([0x9f, 0x02, 0xaa, 0xbb, 0x81, 0x04, 1, 2, 3, 4]));
});

test('hostile bytes never throw anything but ProtocolError or MirrorError', () => {
  let seed = 12345;
  const random = () => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed >>> 16;
  };
  const messages = match.viewers[0].messages.filter((m) => m.hex !== null).slice(0, 200);
  for (let round = 0; round < 3000; round++) {
    const mirror = new BreachMirror();
    mirror.applyMessage(hexToBytes(messages[0].hex));
    const bytes = hexToBytes(messages[1 + (round % 150)].hex);
    const mutated = bytes.slice();
    for (let flips = 1 + (random() % 4); flips > 0; flips--) mutated[random() % mutated.length] = random() & 0xff;
    const cut = random() % 5 === 0 ? mutated.subarray(0, random() % mutated.length) : mutated;
    try {
      mirror.applyMessage(cut);
    } catch (error) {
      assert.ok(error instanceof ProtocolError || error instanceof MirrorError, `round ${round}: ${error}`);
    }
  }
});

test('decoders refuse what wire.rs refuses', () => {
  const frame = (type, bytes) => () => decodeServerFrame(type, new Reader(new Uint8Array(bytes)));
  // State: section bits above 9, a gap of 1, a shot header with bits 6–7, a sound with bit 7.
  assert.throws(frame(0x92, [0x80, 0x08]), ProtocolError);
  assert.throws(frame(0x92, [0x80, 0x01, 0x01]), ProtocolError);
  assert.throws(frame(0x92, [0x04, 0x01, 0x40, 0x00]), ProtocolError);
  assert.throws(frame(0x92, [0x10, 0x01, 0x9a, 0x0f]), ProtocolError);
  // A muffled sound (bit 6) is fine: kind 2, loudness 3, direction 15.
  const sound = decodeServerFrame(0x92, new Reader(new Uint8Array([0x10, 0x01, 0x5a, 0x0f])));
  assert.deepEqual(sound.value.sounds, [{ kind: 2, loudness: 3, direction: 15, muffled: true }]);
  // Enter without facing and health; slice gaps of 0; a count bigger than the bytes.
  assert.throws(frame(0x92, [0x02, 0x01, 0x33, 0x01, 0x01]), ProtocolError);
  assert.throws(frame(0x91, [0x02, 0x05, 0x10, 0x00, 0x10]), ProtocolError);
  assert.throws(frame(0x91, [0xff, 0xff, 0xff, 0xff, 0x0f]), ProtocolError);
  // Init: team 3; tick rate 0.
  const init = [1, 30, 0, 0, 1, 1, 50, 0x90, 0x8c, 0x01, 0, 90, 0x8e, 0x23, 230, 0, 28, 0, 8, 16, 26, 36];
  assert.equal(decodeServerFrame(0x90, new Reader(new Uint8Array(init))).value.tickRate, 30);
  assert.throws(frame(0x90, init.map((b, i) => (i === 3 ? 3 : b))), ProtocolError);
  assert.throws(frame(0x90, init.map((b, i) => (i === 1 ? 0 : b))), ProtocolError);
  assert.throws(frame(0x90, [...init, 0]), ProtocolError, 'trailing bytes');
  // Kill cause 2, scoreboard reason 0 and winner 3, vote 3, roster team 2.
  assert.throws(frame(0x93, [0x01, 0, 1, 0xff, 2]), ProtocolError);
  assert.throws(frame(0x95, [0, 0, 0, 0, 0, 0, 0]), ProtocolError);
  assert.throws(frame(0x95, [1, 3, 0, 0, 0, 0, 0]), ProtocolError);
  assert.throws(frame(0x96, [0x01, 0, 3]), ProtocolError);
  assert.throws(frame(0x94, [0x01, 0, 2, 0, 0, 0, 0, 1, 0x61]), ProtocolError);
  assert.equal(decodeServerFrame(0x94, new Reader(new Uint8Array([0x01, 0, 1, 0, 0, 0, 0, 1, 0x61]))).value[0].name, 'a');
});

test('client frames are byte for byte what wire.rs encodes', () => {
  // The same intent as the docs' example: sequence 300, walk down-right, facing 0x1234, fire + use.
  assert.deepEqual(
    [...encodeInput({ sequence: 300, direction: 2, speed: 1, facing: 0x1234, fire: true, reload: false, use: true })],
    [0x10, 0xac, 0x02, 0x12, 0x34, 0x12, 0x05],
  );
  assert.deepEqual([...encodeVote(Vote.STAY)], [0x11, 1]);
  assert.deepEqual([...encodeVote(Vote.LEAVE)], [0x11, 2]);
  assert.throws(() => encodeVote(3), ProtocolError);
  const token = Uint8Array.from({ length: 16 }, (_, i) => i + 1);
  assert.deepEqual([...encodeResume(token)], [0x03, 12, 16, ...token]);
  assert.throws(() => encodeResume(new Uint8Array(3)), ProtocolError);
  // Facing: 0 = +x, a quarter turn clockwise on screen (+y, down) = 16384.
  assert.equal(facingFromRadians(0), 0);
  assert.equal(facingFromRadians(Math.PI / 2), 16384);
  assert.equal(facingFromRadians(-Math.PI / 2), 49152);
  assert.equal(facingFromRadians(Math.PI * 2 - 1e-9), 0);
  // Every input the fixture's clients sent decodes to the same bytes after a round trip
  // through our encoder.
  for (const viewer of match.viewers) {
    for (const message of viewer.messages) {
      for (const sent of message.sent ?? []) {
        const bytes = hexToBytes(sent);
        if (bytes[0] !== 0x10) continue;
        const r = new Reader(bytes, 1);
        const sequence = r.varint();
        const movement = r.u8();
        const facing = r.u16();
        const buttons = r.u8();
        const again = encodeInput({ sequence, direction: movement & 0x0f, speed: movement >> 4, facing, fire: (buttons & 1) !== 0, reload: (buttons & 2) !== 0, use: (buttons & 4) !== 0 });
        assert.deepEqual([...again], [...bytes]);
      }
    }
  }
});

test('runtime frames: session, error, notice, pong', () => {
  const token = Array.from({ length: 16 }, (_, i) => 0xa0 + i);
  const session = decodeRuntimeFrame(0x85, new Reader(new Uint8Array([16, ...token, 0x30, 0x75, 0, 0])));
  assert.deepEqual(session, { type: 'session', token: Uint8Array.from(token), graceMs: 30000 });
  assert.throws(() => decodeRuntimeFrame(0x85, new Reader(new Uint8Array([3, 1, 2, 3, 0, 0, 0, 0]))), ProtocolError);
  assert.throws(() => decodeRuntimeFrame(0x85, new Reader(new Uint8Array([16, ...token, 0, 0, 0]))), ProtocolError);
  const error = decodeRuntimeFrame(0x82, new Reader(new Uint8Array([25, 0, 3, 0x61, 0x62, 0x63])));
  assert.deepEqual(error, { type: 'error', code: ErrorCode.RECONNECT_EXPIRED, reason: 'abc' });
  assert.equal(decodeRuntimeFrame(0x92, new Reader(new Uint8Array([0]))), null);
  assert.throws(() => decodeRuntimeFrame(0x86, new Reader(new Uint8Array([]))), ProtocolError);
  // The fixture's runtime frames (pong, notice, unknown game frame, error) decode.
  const tail = match.viewers[0].messages.slice(-2).map((m) => hexToBytes(m.hex));
  const kinds = [];
  for (const bytes of tail) {
    for (const frame of decodeServerMessage(bytes)) kinds.push(frame.type === 'other' ? frame.frameType : frame.type);
  }
  assert.deepEqual(kinds, [0x81, 0x83, 0x9f, 0x82]);
});

test('the maps parse exactly as the Rust parser reads them', () => {
  const fixture = load('breach_maps.json');
  assert.equal(fixture.maps.length, BUILT_IN_MAPS.length);
  for (const expected of fixture.maps) {
    const map = builtInMap(expected.id);
    assert.ok(map, `map ${expected.id}`);
    assert.equal(map.name, expected.name);
    assert.deepEqual([map.widthCells, map.heightCells, map.cellPixels, map.slicesPerCell], [expected.width, expected.height, expected.cell, expected.slices]);
    assert.equal([...map.cells].join(''), expected.cells);
    assert.deepEqual(map.spawns.map((team) => team.flat()), expected.spawns);
  }
  assert.equal(builtInMap(200), null);
  // Broken files name the line and column, as map.rs does.
  const good = BUILT_IN_MAPS[0];
  const broken = good.replace('#..............', '#....x.........');
  assert.throws(() => parseMap(broken), (error) => error instanceof MapError && error.line > 8 && error.column === 6);
  assert.throws(() => parseMap('name X\n'), (error) => error.line === 1 && error.column === 1);
  assert.throws(() => parseMap('breach-map 1\nsize 500 20\n'), /width must be/);
  assert.throws(() => parseMap(`${good}more\n`), /nothing may follow/);
});

test('movement is exactly step_movement on every map, with and without holes', () => {
  const fixture = load('breach_movement.json');
  const halfSub = fixture.playerHalfSub;
  let steps = 0;
  let blockedSteps = 0;
  for (const group of fixture.groups) {
    const walls = new Walls(builtInMap(group.mapId));
    const pristine = new Walls(builtInMap(group.mapId));
    for (let i = 0; i < group.damaged.length; i += 2) assert.ok(walls.setHitPoints(group.damaged[i], group.damaged[i + 1]));
    for (const walk of group.walks) {
      let [x, y] = walk;
      for (let i = 2; i < walk.length; i += 4) {
        const [direction, speed, ex, ey] = walk.slice(i, i + 4);
        const [nx, ny] = stepMovement(walls, x, y, direction, fixture.speeds[speed], halfSub);
        assert.deepEqual([nx, ny], [ex, ey], `map ${group.mapId}, step from (${x}, ${y}) dir ${direction} speed ${speed}`);
        const [fx, fy] = stepMovement(pristine, x, y, direction, fixture.speeds[speed], halfSub);
        if (direction !== 0 && nx === x && ny === y && (fx !== x || fy !== y || walls.boxBlocked(x, y, halfSub))) blockedSteps++;
        [x, y] = [nx, ny];
        steps++;
      }
    }
  }
  assert.ok(steps >= 5000, `${steps} steps`);
  assert.ok(blockedSteps > 50, `walls stopped ${blockedSteps} steps`);
});

test('in real matches, the movement port predicts every tick the server moved the player', () => {
  // Each tick a player sent (or held) an intent and the server moved it; replaying that
  // intent with stepMovement on the walls the client held must land on the server's position.
  let checked = 0;
  let moved = 0;
  for (const viewer of match.viewers.filter((v) => v.role === 'player')) {
    const mirror = new BreachMirror();
    let held = { direction: 0, speed: 1 };
    for (const message of viewer.messages) {
      const intents = (message.sent ?? []).map(hexToBytes).filter((bytes) => bytes[0] === 0x10);
      if (intents.length > 0) {
        const r = new Reader(intents[0], 1);
        r.varint();
        const movement = r.u8();
        held = { direction: movement & 0x0f, speed: movement >> 4 };
      }
      if (message.hex === null) {
        mirror.init = null;
        continue;
      }
      // The server drops the held intent while the player is dead and during the scoreboard
      // (input.rs `halt`), so a tick without a new input then stands still.
      if (mirror.init && (!mirror.own.alive || mirror.phase[0] === Phase.ENDING)) held = { direction: 0, speed: 1 };
      const bytes = hexToBytes(message.hex);
      const before = mirror.init && mirror.own.alive && [Phase.WAITING, Phase.STARTING, Phase.IN_PROGRESS].includes(mirror.phase[0])
        ? { x: mirror.own.x, y: mirror.own.y, walls: mirror.walls.hitPoints.slice() }
        : null;
      const frames = decodeServerMessage(bytes);
      const plain = frames.every((frame) => frame.type === 'state' || frame.type === 'other' || frame.type === 'killFeed' || frame.type === 'roster');
      mirror.applyMessage(bytes);
      const state = mirror.lastState;
      if (!before || !plain || !state || state.walls.indices.length > 0 || (state.own && (state.own.life !== null || state.own.facing !== null)) || !mirror.own.alive) continue;
      if (state.phase !== null && state.phase[0] !== Phase.IN_PROGRESS && state.phase[0] !== Phase.STARTING) continue;
      const walls = new Walls(mirror.map);
      walls.hitPoints.set(before.walls);
      const [px, py] = stepMovement(walls, before.x, before.y, held.direction, mirror.init.speeds[held.speed], mirror.init.playerHalfSub);
      assert.deepEqual([px, py], [mirror.own.x, mirror.own.y], `${viewer.viewer} at tick ${mirror.tick}`);
      checked++;
      if (px !== before.x || py !== before.y) moved++;
    }
  }
  assert.ok(checked > 800 && moved > 400, `${checked} ticks checked, ${moved} moved`);
});
