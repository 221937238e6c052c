// The browser client's decoder and mirror against frames the server really produced.
//
// web/test/fixtures/*.json are written by crates/coil-game/tests/web_fixtures.rs: real arena
// rooms, each server message in hex plus what the Rust reference client reconstructed after
// it. Here the JavaScript mirror applies the same messages and must reconstruct the same
// world: heads, velocities, lengths, girths, boost flags, names, pellets and the view centre
// exactly, and body points to the same f32 values. Run: node --test web/test/protocol.test.mjs
// (no npm packages needed).

import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { ClientMirror, MirrorError } from '../src/mirror.js';
import {
  ProtocolError,
  Reader,
  angleToU16,
  encodeInput,
  encodeJoin,
  encodePing,
  encodeRespawn,
  hexToBytes,
} from '../src/protocol.js';

const fixtureDir = join(dirname(fileURLToPath(import.meta.url)), 'fixtures');
// breach_*.json belong to breach.test.mjs.
const fixtureFiles = readdirSync(fixtureDir).filter((name) => name.endsWith('.json') && !name.startsWith('breach'));

function loadFixture(name) {
  return JSON.parse(readFileSync(join(fixtureDir, name), 'utf8'));
}

/** The JavaScript mirror's world in the shape the Rust test writes. */
function snapshot(mirror, full) {
  const init = mirror.init;
  const view = {
    init: init && { ...init },
    center: [mirror.centerX, mirror.centerY],
    statesApplied: mirror.statesApplied,
    snakes: mirror.snakes.map((snake) => {
      const entry = {
        id: snake.id,
        head: [snake.headX, snake.headY],
        velocity: [snake.velocityX, snake.velocityY],
        length: snake.length,
        girth: snake.girth,
        boosting: snake.boosting,
      };
      if (full) {
        entry.body = snake.body(init);
        const identity = mirror.identity(snake.id);
        entry.skin = identity ? identity.skin : null;
        entry.name = identity ? identity.name : null;
      }
      return entry;
    }),
    pelletCount: mirror.pelletCount(),
    meta: mirror.meta && { ...mirror.meta, top: mirror.meta.top.map((row) => [row.score, row.name]) },
    death: mirror.death && { ...mirror.death },
    lastError: mirror.lastError,
    lastNotice: mirror.lastNotice,
  };
  if (full) {
    view.pellets = [];
    for (let index = 0; index < mirror.pelletCount(); index++) {
      view.pellets.push(mirror.pelletX[index], mirror.pelletY[index], mirror.pelletColor[index], mirror.pelletSize[index]);
    }
  }
  return view;
}

/** Rust writes f32 values as their shortest decimal; read them back as the same f32. */
function expectedView(rust) {
  const view = structuredClone(rust);
  delete view.full;
  if (view.init) {
    for (const key of ['arenaRadius', 'positionQuantum', 'segmentSpacing']) view.init[key] = Math.fround(view.init[key]);
  }
  for (const snake of view.snakes) {
    if (snake.body) snake.body = snake.body.map(Math.fround);
  }
  return view;
}

for (const file of fixtureFiles) {
  const fixture = loadFixture(file);
  for (const viewer of fixture.viewers) {
    test(`${file}: ${viewer.viewer}'s ${viewer.messages.length} messages reconstruct the Rust mirror's world`, () => {
      assert.ok(viewer.messages.length > 0);
      const mirror = new ClientMirror();
      let fullChecks = 0;
      viewer.messages.forEach((message, index) => {
        mirror.applyMessage(hexToBytes(message.hex));
        // Some fixtures write the Rust view every few messages only; the view is cumulative.
        if (message.mirror === null) return;
        const expected = expectedView(message.mirror);
        const actual = snapshot(mirror, message.mirror.full);
        if (message.mirror.full) fullChecks++;
        assert.deepStrictEqual(actual, expected, `${file} ${viewer.viewer} message ${index}`);
      });
      assert.ok(fullChecks >= 2, 'bodies and pellets were compared more than once');
    });
  }
}

test('the small fixture covers what a client meets in play', () => {
  const fixture = loadFixture('arena_small.json');
  const types = new Set();
  let entered = 0;
  let pelletsSeen = 0;
  for (const viewer of fixture.viewers) {
    for (const message of viewer.messages) {
      const bytes = hexToBytes(message.hex);
      const reader = new Reader(bytes);
      while (reader.remaining() > 0) {
        types.add(reader.u8());
        reader.take(reader.varint());
      }
      if (message.mirror === null) continue;
      entered = Math.max(entered, message.mirror.snakes.length);
      pelletsSeen = Math.max(pelletsSeen, message.mirror.pelletCount);
    }
  }
  // Init, state, meta, death, pong, error, notice, score receipt, and an unknown type.
  for (const type of [0x90, 0x91, 0x92, 0x93, 0x81, 0x82, 0x83, 0x84, 0x9f]) {
    assert.ok(types.has(type), `fixture has a frame of type 0x${type.toString(16)}`);
  }
  assert.ok(entered >= 3, 'several snakes were in view at once');
  assert.ok(pelletsSeen >= 20, 'pellets were in view');
  const alice = fixture.viewers.find((viewer) => viewer.viewer === 'alice');
  assert.ok(alice.messages.some((message) => message.mirror.death !== null), 'alice died');
  const last = alice.messages.at(-1).mirror;
  assert.deepEqual(last.lastNotice, [1, 30000]);
  assert.equal(last.lastError[0], 11);
});

test('the full-room fixtures are 140-snake rooms', () => {
  for (const file of ['arena_140.json', 'arena_140_crowded.json']) {
    const fixture = loadFixture(file);
    const metas = fixture.viewers[0].messages.map((message) => message.mirror?.meta).filter(Boolean);
    assert.ok(metas.some((meta) => meta.humans + meta.bots === 140), file);
  }
});

test('client frames are encoded byte by byte as docs/protocol.md shows', () => {
  // The example of section 2: 01 0c 05 'alice' 03 0b <11 token bytes>.
  assert.deepEqual(
    [...encodeJoin({ name: 'alice', skin: 3, token: 'tok-12345ab' })],
    [0x01, 0x0c, 5, ...Buffer.from('alice'), 3, 11, ...Buffer.from('tok-12345ab')],
  );
  assert.deepEqual([...encodeJoin({ name: 'bo', skin: 1 })], [0x01, 0x0b, 2, 0x62, 0x6f, 1]);
  assert.deepEqual([...encodePing(0x01020304)], [0x02, 4, 3, 2, 1]);
  assert.deepEqual([...encodeInput(0x1234, true)], [0x10, 0x34, 0x12, 1]);
  assert.deepEqual([...encodeInput(7, false)], [0x10, 7, 0, 0]);
  assert.deepEqual([...encodeRespawn()], [0x11]);
  assert.equal(angleToU16(0), 0);
  assert.equal(angleToU16(Math.PI / 2), 16384);
  assert.equal(angleToU16(-Math.PI / 2), 49152);
  assert.equal(angleToU16(Math.PI * 2), 0);
  assert.equal(angleToU16(Number.NaN), 0);
});

test('varints follow LEB128 limits', () => {
  assert.equal(new Reader(Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0x0f)).varint(), 0xffffffff);
  assert.throws(() => new Reader(Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0x7f)).varint(), ProtocolError);
  assert.throws(() => new Reader(Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff, 0x01)).varint(), ProtocolError);
  assert.equal(new Reader(Uint8Array.of(0x03)).svarint(), -2);
  assert.equal(new Reader(Uint8Array.of(0xfe, 0xff, 0xff, 0xff, 0x0f)).svarint(), 2147483647);
  assert.equal(new Reader(Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0x0f)).svarint(), -2147483648);
});

test('broken messages fail with a protocol or mirror error, never anything else', () => {
  const fixture = loadFixture('arena_small.json');
  const messages = fixture.viewers[0].messages.map((message) => hexToBytes(message.hex));
  let seed = 12345;
  const random = () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed / 0x80000000;
  };
  let failures = 0;
  for (let round = 0; round < 300; round++) {
    const mirror = new ClientMirror();
    const upTo = 1 + Math.floor(random() * 20);
    try {
      for (let index = 0; index < upTo; index++) {
        const bytes = messages[index].slice();
        if (index === upTo - 1) {
          // Flip, truncate or extend the last message.
          const choice = random();
          if (choice < 0.4) bytes[Math.floor(random() * bytes.length)] ^= 1 << Math.floor(random() * 8);
          else if (choice < 0.7) {
            mirror.applyMessage(bytes.subarray(0, Math.floor(random() * bytes.length)));
            continue;
          } else {
            const longer = new Uint8Array(bytes.length + 1);
            longer.set(bytes);
            longer[bytes.length] = Math.floor(random() * 256);
            mirror.applyMessage(longer);
            continue;
          }
        }
        mirror.applyMessage(bytes);
      }
    } catch (error) {
      assert.ok(error instanceof ProtocolError || error instanceof MirrorError, `unexpected ${error}`);
      failures++;
    }
  }
  assert.ok(failures > 50, 'most corruptions were detected');
  assert.throws(() => new ClientMirror().applyMessage(Uint8Array.of(0x91, 0x01, 0x00)), ProtocolError);
  assert.throws(
    () => new ClientMirror().applyMessage(Uint8Array.of(0x91, 0x05, 0, 0, 0, 0, 0)),
    MirrorError,
    'state before init',
  );
});
