// Breach's connection logic (web/src/breach/net.js) against scripted matchmaker answers, a
// scripted WebSocket and a hand-stepped clock: joining with the token, the reconnect token,
// resuming the seat after a drop, refusals, the end of a match. Run:
// node --test web/test/breach-net.test.mjs

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { BreachSession, SILENCE_MS, matchmakeBreach } from '../src/breach/net.js';
import { ErrorCode } from '../src/breach/protocol.js';

const page = new URL('http://play.example.com:8787/');

/** Timers that run only when the test advances the clock. */
class ManualClock {
  constructor() {
    this.now = 0;
    this.timers = new Map();
    this.nextId = 1;
  }
  set = (fn, ms) => {
    const id = this.nextId++;
    this.timers.set(id, { at: this.now + ms, fn });
    return id;
  };
  clear = (id) => {
    this.timers.delete(id);
  };
  /** Moves time forward, running every timer that falls due, in order. */
  async advance(ms) {
    const end = this.now + ms;
    for (;;) {
      const due = [...this.timers.entries()].filter(([, timer]) => timer.at <= end).sort((a, b) => a[1].at - b[1].at)[0];
      if (!due) break;
      this.timers.delete(due[0]);
      this.now = due[1].at;
      due[1].fn();
      await settle();
    }
    this.now = end;
  }
}

class FakeSocket {
  static opened = [];
  constructor(url) {
    this.url = url;
    this.sent = [];
    this.readyState = 0;
    FakeSocket.opened.push(this);
    queueMicrotask(() => {
      if (this.readyState !== 0) return;
      this.readyState = 1;
      this.onopen?.();
    });
  }
  send(bytes) {
    this.sent.push([...bytes]);
  }
  close() {
    this.readyState = 3;
  }
  receive(bytes) {
    this.onmessage?.({ data: Uint8Array.from(bytes).buffer });
  }
  serverClose() {
    this.readyState = 3;
    this.onclose?.({});
  }
}

const settle = async () => {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
};
const errorFrame = (code) => [0x82, 3, code & 0xff, code >> 8, 0];
const token = Array.from({ length: 16 }, (_, i) => 0x40 + i);
/** A Session frame: reconnect token, grace 10 s. */
const sessionFrame = [0x85, 21, 16, ...token, 0x10, 0x27, 0, 0];
const stateFrame = [0x92, 1, 0];

function placed(calls) {
  return async (_url, init) => {
    calls.push(JSON.parse(init.body));
    return new Response(JSON.stringify({ roomId: `m${calls.length}`, wsUrl: `ws://127.0.0.1:8787/api/room/m${calls.length}`, joinToken: `tok${calls.length}` }), { status: 200 });
  };
}

function makeSession(fetchImpl) {
  const clock = new ManualClock();
  const log = { statuses: [], messages: 0, joined: [], ended: [] };
  const session = new BreachSession({
    onStatus: (status) => log.statuses.push(status.state),
    onMessage: () => log.messages++,
    onJoined: (info) => log.joined.push(info),
    onEnded: (message) => log.ended.push(message),
    fetchImpl,
    WebSocketImpl: FakeSocket,
    location: page,
    now: () => clock.now,
    timers: clock,
  });
  return { session, log, clock };
}

async function joinedSession() {
  FakeSocket.opened = [];
  const calls = [];
  const made = makeSession(placed(calls));
  made.session.start({ name: 'ann' });
  await settle();
  const socket = FakeSocket.opened[0];
  socket.receive([...sessionFrame, ...stateFrame]);
  return { ...made, calls, socket };
}

test('the matchmaker is asked for breach, and its answers map to what happens next', async () => {
  const bodies = [];
  const answer = (status, body, headers = {}) => async (_url, init) => {
    bodies.push({ body: JSON.parse(init.body), headers: init.headers });
    return new Response(body === undefined ? null : JSON.stringify(body), { status, headers });
  };
  const ok = await matchmakeBreach(answer(200, { roomId: 'm1', wsUrl: 'ws://n/api/room/m1', joinToken: 't', region: 'eu' }), { name: 'ann' });
  assert.deepEqual(ok, { kind: 'placed', roomId: 'm1', wsUrl: 'ws://n/api/room/m1', joinToken: 't', region: 'eu' });
  await matchmakeBreach(answer(503, {}), { name: 'ann', spectate: true, room: 'r9', accessToken: 'jwt' });
  assert.deepEqual(bodies[0].body, { mode: 'breach', playerName: 'ann' });
  assert.deepEqual(bodies[1].body, { mode: 'breach', playerName: 'ann', roomOverride: 'r9', role: 'spectator' });
  assert.equal(bodies[1].headers.authorization, 'Bearer jwt');
  assert.match((await matchmakeBreach(answer(404, {}), { name: 'ann' })).message, /does not run breach/);
  assert.match((await matchmakeBreach(answer(400, { error: { code: 'unknown_mode', message: 'mode' } }), { name: 'ann' })).message, /does not run breach/);
  assert.equal((await matchmakeBreach(answer(400, { error: { code: 'bad_request', message: 'playerName: bad' } }), { name: 'ann' })).message, 'playerName: bad');
  assert.deepEqual(await matchmakeBreach(answer(503, {}, { 'retry-after': '4' }), { name: 'ann' }), { kind: 'busy', code: 'http_503', retryAfterMs: 4000 });
  assert.equal((await matchmakeBreach(async () => { throw new TypeError('refused'); }, { name: 'ann' })).kind, 'unreachable');
});

test('a placed player joins with the token and keeps the reconnect token', async () => {
  const { session, log, socket, calls } = await joinedSession();
  assert.equal(socket.url, 'ws://play.example.com:8787/api/room/m1');
  assert.deepEqual(socket.sent[0].slice(0, 6), [0x01, 12, 3, 0x61, 0x6e, 0x6e]);
  assert.equal(new TextDecoder().decode(Uint8Array.from(socket.sent[0].slice(8))), 'tok1');
  assert.deepEqual(log.joined, [{ resumed: false, roomId: 'm1' }]);
  assert.equal(session.state, 'playing');
  assert.deepEqual([...session.reconnect.token], token);
  assert.equal(session.reconnect.graceMs, 10_000);
  assert.equal(calls.length, 1);
  assert.ok(session.send(Uint8Array.of(0x11, 1)));
  assert.deepEqual(socket.sent.at(-1), [0x11, 1]);
  session.stop();
});

test('a dropped connection resumes the same seat with the reconnect token', async () => {
  const { session, log, socket, calls, clock } = await joinedSession();
  socket.serverClose();
  await settle();
  assert.equal(session.state, 'resuming');
  await clock.advance(0);
  await settle();
  assert.equal(FakeSocket.opened.length, 2);
  const again = FakeSocket.opened[1];
  assert.equal(again.url, socket.url, 'the same room');
  assert.deepEqual(again.sent[0], [0x03, 12, 16, ...token], 'Resume, not Join');
  again.receive([...sessionFrame, ...stateFrame]);
  assert.deepEqual(log.joined.at(-1), { resumed: true, roomId: 'm1' });
  assert.equal(calls.length, 1, 'no new matchmake');
  assert.equal(session.counts.resumes, 1);
  session.stop();
});

test('a silent connection counts as dropped and is resumed', async () => {
  const { session, clock } = await joinedSession();
  await clock.advance(SILENCE_MS + 600);
  await settle();
  assert.ok(FakeSocket.opened.length >= 2, 'a new connection');
  assert.deepEqual(FakeSocket.opened[1].sent[0].slice(0, 3), [0x03, 12, 16]);
  assert.equal(session.counts.drops, 1);
  session.stop();
});

test('a refused or expired resume falls back to a fresh matchmake', async () => {
  const { session, log, socket, calls, clock } = await joinedSession();
  socket.serverClose();
  await clock.advance(0);
  await settle();
  const resume = FakeSocket.opened[1];
  resume.receive(errorFrame(ErrorCode.RECONNECT_EXPIRED));
  resume.serverClose();
  await settle();
  assert.equal(calls.length, 2, 'matchmade again');
  const fresh = FakeSocket.opened[2];
  assert.equal(fresh.sent[0][0], 0x01, 'a Join with the new token');
  fresh.receive(stateFrame);
  assert.deepEqual(log.joined.at(-1), { resumed: false, roomId: 'm2' });
  assert.equal(session.counts.resumeRefused, 1);

  // Resumes that keep failing stop at the end of the grace: then a new match.
  fresh.receive(sessionFrame);
  fresh.serverClose();
  const opened = FakeSocket.opened.length;
  for (let i = 0; i < 12; i++) {
    await clock.advance(1000);
    const latest = FakeSocket.opened.at(-1);
    if (latest.readyState === 1 && latest.sent[0]?.[0] === 0x03) latest.serverClose();
    await settle();
    if (i === 5) {
      assert.equal(calls.length, 2, 'within the grace: still resuming');
      assert.ok(FakeSocket.opened.length - opened >= 3, 'several resume attempts');
    }
  }
  assert.equal(calls.length, 3, 'after 10 s of grace the client matchmakes');
  session.stop();
});

test('the end of a match, replacement and kicks end the session; fatal refusals fail it', async () => {
  for (const [code, pattern] of [
    [ErrorCode.ROOM_CLOSED, /over/],
    [ErrorCode.REPLACED, /another tab/],
    [ErrorCode.KICKED, /removed/],
  ]) {
    const { session, log, socket, calls } = await joinedSession();
    socket.receive(errorFrame(code));
    socket.serverClose();
    await settle();
    assert.equal(session.state, 'ended');
    assert.match(log.ended[0], pattern);
    assert.equal(FakeSocket.opened.length, 1, 'no resume');
    assert.equal(calls.length, 1, 'no new match');
  }
  for (const code of [ErrorCode.BAD_NAME, ErrorCode.SPECTATORS_FULL, ErrorCode.UNSUPPORTED_VERSION]) {
    const { session, socket } = await joinedSession();
    socket.receive(errorFrame(code));
    socket.serverClose();
    await settle();
    assert.equal(session.state, 'failed', `code ${code}`);
  }
});

test('after a leave vote the closing connection is the end, not a drop', async () => {
  const { session, log, socket, calls } = await joinedSession();
  session.leaveAfterVote();
  socket.serverClose();
  await settle();
  assert.equal(session.state, 'ended');
  assert.deepEqual(log.ended, ['You left the match.']);
  assert.equal(FakeSocket.opened.length, 1);
  assert.equal(calls.length, 1);
});

test('a room that cannot take the player, or a slow-client cut, leads to a new match', async () => {
  const { session, socket, calls, clock } = await joinedSession();
  socket.receive(errorFrame(ErrorCode.SLOW_CLIENT));
  socket.serverClose();
  await clock.advance(400);
  await settle();
  assert.equal(calls.length, 2);
  assert.equal(FakeSocket.opened.at(-1).sent[0][0], 0x01);
  session.stop();
});

test('an unreachable server is retried with growing pauses', async () => {
  FakeSocket.opened = [];
  let calls = 0;
  const { session, log, clock } = makeSession(async () => {
    calls++;
    throw new TypeError('refused');
  });
  session.start({ name: 'ann' });
  await settle();
  assert.equal(calls, 1);
  await clock.advance(300);
  await settle();
  assert.equal(calls, 2);
  assert.equal(session.state, 'unreachable');
  await clock.advance(999);
  assert.equal(calls, 2, 'the second pause is longer');
  await clock.advance(1);
  await settle();
  assert.equal(calls, 3);
  assert.ok(log.statuses.includes('unreachable'));
  session.stop();
});
