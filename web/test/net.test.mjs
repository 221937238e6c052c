// The connection logic of the browser client (web/src/net.js) against scripted HTTP answers
// and a scripted WebSocket: what each matchmaker answer and each server refusal turns into.
// The real server and browser are exercised by browser.mjs; this covers the branches a live
// server rarely takes. Run: node --test web/test/net.test.mjs

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { GameSession, matchmake, resolveSocketUrl, skinFor } from '../src/net.js';
import { ErrorCode } from '../src/protocol.js';

const page = new URL('http://play.example.com:8787/');

function answer(status, body, headers = {}) {
  return async () => new Response(body === undefined ? null : JSON.stringify(body), { status, headers });
}

test('matchmaker answers map to what the client does next', async () => {
  const placed = await matchmake(
    answer(200, { roomId: 'r1', wsUrl: 'ws://n1/api/room/r1', joinToken: 'tok', expiresAt: 1, region: 'eu' }),
    'ann',
    null,
  );
  assert.deepEqual(placed, { kind: 'placed', roomId: 'r1', wsUrl: 'ws://n1/api/room/r1', joinToken: 'tok', region: 'eu' });
  assert.equal((await matchmake(answer(404, { error: { code: 'not_found' } }), 'ann', null)).kind, 'noMatchmaker');
  assert.equal((await matchmake(answer(405), 'ann', null)).kind, 'noMatchmaker');
  assert.deepEqual(await matchmake(answer(409, { error: { code: 'room_full' }, suggestedRoom: 'r2' }), 'ann', 'r1'), {
    kind: 'roomProblem',
    code: 'room_full',
    requested: 'r1',
    suggested: 'r2',
  });
  const busy = await matchmake(answer(503, { error: { code: 'no_capacity' } }, { 'retry-after': '3' }), 'ann', null);
  assert.deepEqual(busy, { kind: 'busy', code: 'no_capacity', retryAfterMs: 3000 });
  assert.equal((await matchmake(answer(400, { error: { code: 'bad_request', message: 'playerName: bad' } }), 'ann', null)).message, 'playerName: bad');
  assert.equal((await matchmake(answer(500, { error: { code: 'internal' } }), 'ann', null)).kind, 'unreachable');
  assert.equal((await matchmake(async () => { throw new TypeError('refused'); }, 'ann', null)).kind, 'unreachable');
});

test('the request names the room only when one was asked for', async () => {
  const bodies = [];
  const fetchImpl = async (_url, init) => {
    bodies.push(JSON.parse(init.body));
    return new Response('{}', { status: 503 });
  };
  await matchmake(fetchImpl, 'ann', null);
  await matchmake(fetchImpl, 'ann', 'r7');
  assert.deepEqual(bodies, [{ playerName: 'ann' }, { playerName: 'ann', roomOverride: 'r7' }]);
});

test('socket URLs follow how the page was reached', () => {
  // The all-in-one node advertises 127.0.0.1; a player on another machine reaches it by the
  // page's host.
  assert.equal(resolveSocketUrl('ws://127.0.0.1:8787/api/room/r1', page), 'ws://play.example.com:8787/api/room/r1');
  assert.equal(resolveSocketUrl('ws://127.0.0.1:8787/api/room/r1', new URL('http://127.0.0.1:8787/')), 'ws://127.0.0.1:8787/api/room/r1');
  assert.equal(resolveSocketUrl('wss://n1.example.com/api/room/r1', page), 'wss://n1.example.com/api/room/r1');
  assert.equal(resolveSocketUrl('ws://n1.example.com/api/room/r1', new URL('https://play.example.com/')), 'wss://n1.example.com/api/room/r1');
  assert.ok(skinFor('ann') >= 0 && skinFor('ann') < 16);
  assert.equal(skinFor('ann'), skinFor('ann'));
});

/** A WebSocket whose server side the test scripts. */
class FakeSocket {
  static opened = [];
  constructor(url) {
    this.url = url;
    this.sent = [];
    this.readyState = 0;
    FakeSocket.opened.push(this);
    queueMicrotask(() => {
      this.readyState = 1;
      this.onopen?.();
    });
  }
  send(bytes) {
    this.sent.push(bytes);
  }
  close() {
    if (this.readyState === 3) return;
    this.readyState = 3;
    queueMicrotask(() => this.onclose?.({}));
  }
  receive(bytes) {
    this.onmessage?.({ data: Uint8Array.from(bytes).buffer });
  }
  serverClose() {
    this.readyState = 3;
    this.onclose?.({});
  }
}

const errorFrame = (code) => [0x82, 3, code & 0xff, code >> 8, 0];
const settle = () => new Promise((resolve) => setTimeout(resolve, 0));

const clock = { now: 0 };

function session(fetchImpl) {
  const log = { statuses: [], messages: 0, joined: [], problems: [] };
  const created = new GameSession({
    onStatus: (status) => log.statuses.push(status),
    onMessage: () => log.messages++,
    onJoined: (info) => log.joined.push(info.room),
    onRoomProblem: (problem) => log.problems.push(problem),
    fetchImpl,
    WebSocketImpl: FakeSocket,
    location: page,
    now: () => clock.now,
  });
  return { created, log };
}

test('a placed player joins with the token, and a drop re-matchmakes', async () => {
  FakeSocket.opened = [];
  let calls = 0;
  const fetchImpl = async () => {
    calls++;
    return new Response(JSON.stringify({ roomId: `r${calls}`, wsUrl: `ws://127.0.0.1:8787/api/room/r${calls}`, joinToken: `token${calls}` }), { status: 200 });
  };
  const { created, log } = session(fetchImpl);
  created.start('ann', null);
  await settle();
  const socket = FakeSocket.opened[0];
  assert.equal(socket.url, 'ws://play.example.com:8787/api/room/r1');
  // Join: type 1, version 12, name, skin, token.
  const join = socket.sent[0];
  assert.deepEqual([...join.subarray(0, 6)], [0x01, 12, 3, 0x61, 0x6e, 0x6e]);
  assert.equal(new TextDecoder().decode(join.subarray(8)), 'token1');
  socket.receive([0x92, 0]); // any message: the room accepted the player
  assert.deepEqual(log.joined, ['r1']);
  assert.equal(created.state, 'playing');
  created.send(Uint8Array.of(0x11));
  assert.deepEqual([...socket.sent[1]], [0x11]);

  // A connection that lasted: the client matchmakes again at once.
  clock.now += 60_000;
  socket.serverClose();
  await settle();
  assert.ok(log.statuses.some((status) => status.state === 'reconnecting'));
  assert.equal(FakeSocket.opened.length, 2, 'a new connection after the drop');
  assert.equal(FakeSocket.opened[1].url, 'ws://play.example.com:8787/api/room/r2');

  // One that ends a second after joining: the next attempt waits.
  FakeSocket.opened[1].receive([0x92, 0]);
  clock.now += 1000;
  FakeSocket.opened[1].serverClose();
  await settle();
  assert.equal(created.state, 'reconnecting');
  assert.equal(FakeSocket.opened.length, 2, 'no new connection yet');
  await new Promise((resolve) => setTimeout(resolve, 400));
  assert.equal(FakeSocket.opened.length, 3, 'reconnected after a pause');
  created.stop();
});

test('refusals: a full requested room offers a choice, a bad name ends the attempt', async () => {
  FakeSocket.opened = [];
  const fetchImpl = async () => new Response(JSON.stringify({ roomId: 'r1', wsUrl: 'ws://n1/api/room/r1', joinToken: 't' }), { status: 200 });
  const full = session(fetchImpl);
  full.created.start('ann', 'r1');
  await settle();
  FakeSocket.opened[0].receive(errorFrame(ErrorCode.ROOM_FULL));
  FakeSocket.opened[0].serverClose();
  await settle();
  assert.deepEqual(full.log.problems, [{ code: 'room_full', requested: 'r1', suggested: null }]);
  assert.equal(full.created.state, 'roomProblem');
  assert.equal(FakeSocket.opened.length, 1, 'nothing retries on its own');
  assert.equal(full.log.joined.length, 0, 'an error frame is not a join');

  const badName = session(fetchImpl);
  badName.created.start('ann', null);
  await settle();
  FakeSocket.opened[1].receive(errorFrame(ErrorCode.BAD_NAME));
  FakeSocket.opened[1].serverClose();
  await settle();
  assert.equal(badName.created.state, 'failed');
  assert.match(badName.log.statuses.at(-1).message, /name/);
  assert.equal(FakeSocket.opened.length, 2);
});

test('without a matchmaker the client joins the room directly with a version 11 join', async () => {
  FakeSocket.opened = [];
  const { created } = session(answer(404, { error: { code: 'not_found' } }));
  created.start('ann', 'den');
  await settle();
  await settle();
  const socket = FakeSocket.opened[0];
  assert.equal(socket.url, 'ws://play.example.com:8787/api/room/den');
  assert.deepEqual([...socket.sent[0]], [0x01, 11, 3, 0x61, 0x6e, 0x6e, skinFor('ann')]);
  created.stop();
});

test('a refused switch keeps the current room', async () => {
  FakeSocket.opened = [];
  let conflict = false;
  const fetchImpl = async () =>
    conflict
      ? new Response(JSON.stringify({ error: { code: 'room_unknown' }, suggestedRoom: 'r1' }), { status: 409 })
      : new Response(JSON.stringify({ roomId: 'r1', wsUrl: 'ws://n1/api/room/r1', joinToken: 't' }), { status: 200 });
  const { created, log } = session(fetchImpl);
  created.start('ann', null);
  await settle();
  FakeSocket.opened[0].receive([0x92, 0]);
  conflict = true;
  await created.switchRoom('nowhere');
  assert.deepEqual(log.problems, [{ code: 'room_unknown', requested: 'nowhere', suggested: 'r1' }]);
  assert.equal(created.state, 'playing');
  FakeSocket.opened[0].receive([0x92, 0]);
  assert.equal(log.messages, 2, 'the old connection still delivers');
  assert.equal(FakeSocket.opened.length, 1);
  created.stop();
});

/** A WebSocket to `dead-node` never opens, it only closes (the node is gone); others open. */
class SometimesRefusedSocket extends FakeSocket {
  constructor(url) {
    super(url);
    if (url.includes('dead-node')) {
      this.readyState = 3;
      // Replaces the open FakeSocket queued: the close arrives instead.
      this.onopenBlocked = true;
    }
  }
  set onopen(handler) {
    this.openHandler = handler;
  }
  get onopen() {
    if (this.onopenBlocked) {
      return () => this.onclose?.({});
    }
    return this.openHandler;
  }
}

test('a node that refuses the connection gets the player a new placement at once', async () => {
  FakeSocket.opened = [];
  let calls = 0;
  const fetchImpl = async () => {
    calls++;
    // The first two placements name a node that died; the third a live one.
    const host = calls <= 2 ? 'dead-node:9' : 'n1';
    return new Response(JSON.stringify({ roomId: `r${calls}`, wsUrl: `ws://${host}/api/room/r${calls}`, joinToken: `t${calls}` }), { status: 200 });
  };
  const log = { statuses: [], joined: [] };
  const created = new GameSession({
    onStatus: (status) => log.statuses.push(status),
    onMessage: () => {},
    onJoined: (info) => log.joined.push(info.room),
    onRoomProblem: () => {},
    fetchImpl,
    WebSocketImpl: SometimesRefusedSocket,
    location: page,
    now: () => clock.now,
  });
  created.start('ann', null);
  // Refused once: matchmade again at once. Refused twice: again after 100 ms (the usual
  // backoff would have waited 300 ms, then reported the server unreachable).
  const started = Date.now();
  for (let wait = 0; wait < 100 && FakeSocket.opened.length < 3; wait++) {
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  const took = Date.now() - started;
  assert.equal(calls, 3);
  assert.deepEqual(FakeSocket.opened.map((socket) => new URL(socket.url).host), ['dead-node:9', 'dead-node:9', 'n1']);
  assert.ok(took < 300, `re-placed in ${took} ms`);
  await settle();
  FakeSocket.opened[2].receive([0x92, 0]);
  assert.deepEqual(log.joined, ['r3']);
  assert.ok(!log.statuses.some((status) => status.state === 'unreachable'), 'a dead node is not "server unreachable"');
  created.stop();
});
