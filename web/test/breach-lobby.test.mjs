// Breach's custom lobby in the browser client: the Lobby and Notice frames and the lobby
// commands against what the Rust core writes (web/test/fixtures/breach-lobby.json, written by
// crates/coil-breach/tests/lobby_fixtures.rs), the waiting room's model (who may do what), the
// settings text, and joining a lobby from the API's placement instead of a matchmake.
// Run: node --test web/test/breach-lobby.test.mjs (no npm packages needed).

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { hexToBytes } from '../src/protocol.js';
import { BreachMirror } from '../src/breach/mirror.js';
import {
  LobbyCode,
  NO_SLOT,
  Phase,
  ProtocolError,
  Reader,
  ServerType,
  decodeServerFrame,
  encodeKick,
  encodeMapVote,
  encodeSettings,
  encodeStartEarly,
  encodeTransferHost,
  settingsText,
} from '../src/breach/protocol.js';
import { lobbyMaps, lobbyModel, settingsSummary } from '../src/breach/lobby.js';
import { BreachSession } from '../src/breach/net.js';

const fixture = JSON.parse(readFileSync(join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'breach-lobby.json'), 'utf8'));
const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');

/** The JavaScript mirror's lobby in the shape the Rust test writes. */
function snapshot(mirror) {
  const lobby = mirror.lobby;
  return {
    lobby: lobby && [lobby.hostSlot, lobby.mapId, lobby.killLimit, lobby.timeLimitSecs, lobby.friendlyFire ? 1 : 0, lobby.mapVote ? 1 : 0, lobby.maxPlayers, lobby.spectators, lobby.votes],
    notices: mirror.notices.map((notice) => [notice.code, notice.text]),
    init: mirror.init && [mirror.init.mapId, mirror.init.killLimit, mirror.init.friendlyFire ? 1 : 0, mirror.init.slot],
    roster: mirror.roster.length,
    phase: mirror.phase[0],
  };
}

/** Replays one viewer's messages; returns the mirror after message `upTo` (all by default). */
function replay(viewerName, upTo = Infinity) {
  const viewer = fixture.viewers.find((v) => v.name === viewerName);
  const mirror = new BreachMirror();
  viewer.messages.slice(0, upTo).forEach((message) => mirror.applyMessage(hexToBytes(message.hex)));
  return mirror;
}

test('every viewer holds the lobby the Rust client holds after every message', () => {
  assert.equal(fixture.viewers.length, 4);
  for (const viewer of fixture.viewers) {
    const mirror = new BreachMirror();
    for (const [index, message] of viewer.messages.entries()) {
      mirror.applyMessage(hexToBytes(message.hex));
      assert.deepEqual(snapshot(mirror), message.after, `${viewer.name}, message ${index} (tick ${message.tick})`);
    }
  }
  // The script reached what matters: a kick notice in the kicked player's last message, a
  // refusal for a non-host, the new host, the new rules.
  const kicked = fixture.viewers.find((v) => v.name === 'kicked');
  const last = kicked.messages[kicked.messages.length - 1];
  assert.equal(last.released, true);
  assert.equal(last.after.notices.at(-1)[0], LobbyCode.KICKED);
  const player = replay('player');
  assert.ok(player.notices.some((n) => n.code === LobbyCode.NOT_HOST));
  assert.equal(player.lobby.hostSlot, player.init.slot, 'the host was handed over');
  assert.deepEqual([player.lobby.killLimit, player.lobby.timeLimitSecs, player.lobby.friendlyFire], [15, 300, true]);
});

test('the lobby commands are the bytes the Rust encoder writes', () => {
  const expected = new Map(fixture.commands);
  assert.equal(hex(encodeKick(3)), expected.get('kick slot 3'));
  assert.equal(hex(encodeTransferHost(5)), expected.get('make slot 5 host'));
  assert.equal(hex(encodeStartEarly()), expected.get('start early'));
  assert.equal(hex(encodeSettings('friendlyFire=true;killLimit=15;map=courtyard')), expected.get('settings'));
  assert.equal(hex(encodeSettings('map=wärehouse')), expected.get('settings, not ASCII'));
  assert.equal(hex(encodeMapVote(2)), expected.get('vote for courtyard'));
  assert.throws(() => encodeSettings('x'.repeat(256)), ProtocolError);
  assert.throws(() => encodeKick(256), ProtocolError);
  assert.throws(() => encodeMapVote(-1), ProtocolError);
});

test('lobby frames out of range are refused, not half read', () => {
  const decode = (type, bytes) => decodeServerFrame(type, new Reader(Uint8Array.from(bytes)));
  const good = [0, 1, 20, 0xd8, 0x04, 0b10, 6, 0, 1, 0, 2];
  assert.deepEqual(decode(ServerType.LOBBY, good).value, {
    hostSlot: 0, mapId: 1, killLimit: 20, timeLimitSecs: 600, friendlyFire: false, mapVote: true, maxPlayers: 6, spectators: 0, votes: [[0, 2]],
  });
  const bad = [
    [0, 1, 20, 0xd8, 0x04, 0b100, 6, 0, 0], // unknown flag
    [16, 1, 20, 0xd8, 0x04, 0, 6, 0, 0], // host slot past the wire's 16
    [0, 1, 20, 0xd8, 0x04, 0, 0, 0, 0], // no seats
    [0, 1, 20, 0xd8, 0x04, 0, 6, 0, 5, 0, 2], // more votes than bytes
    [0, 1, 20, 0xd8, 0x04, 0, 6, 0, 1, 16, 2], // vote slot out of range
    [...good, 0], // trailing byte
  ];
  for (const bytes of bad) assert.throws(() => decode(ServerType.LOBBY, bytes), ProtocolError, JSON.stringify(bytes));
  assert.deepEqual(decode(ServerType.NOTICE, [0x52, 0x04, 2, 0x68, 0x69]).value, { code: 1106, text: 'hi' });
  assert.throws(() => decode(ServerType.NOTICE, [0x52, 0x04, 9, 0x68]), ProtocolError);
});

test('a notice is the one frame a mirror takes before init (a kick before the first update)', () => {
  const mirror = new BreachMirror();
  const seen = [];
  mirror.onFrame = (kind, value) => seen.push([kind, value.code]);
  mirror.applyMessage(Uint8Array.from([ServerType.NOTICE, 4, 0x52, 0x04, 1, 0x21]));
  assert.deepEqual(mirror.notices, [{ code: LobbyCode.KICKED, text: '!' }]);
  assert.deepEqual(seen, [['notice', LobbyCode.KICKED]]);
  assert.equal(mirror.init, null);
  assert.throws(() => mirror.applyMessage(Uint8Array.from([ServerType.LOBBY, 9, 0, 1, 20, 0xd8, 0x04, 0, 6, 0, 0])), /before init/);
});

test('the settings text has only known keys, sorted, in the server form', () => {
  assert.equal(
    settingsText({ timeLimitSecs: 300, map: 'Courtyard', killLimit: 15, friendlyFire: true, mapVote: false, maxPlayers: 4 }),
    'friendlyFire=true;killLimit=15;map=courtyard;mapVote=false;maxPlayers=4;timeLimitSecs=300',
  );
  assert.equal(settingsText({ killLimit: 7 }), 'killLimit=7');
  assert.throws(() => settingsText({ gravity: 1 }), ProtocolError);
  assert.throws(() => settingsText({ killLimit: 2.5 }), ProtocolError);
  assert.throws(() => settingsText({ map: 'a;killLimit=1' }), ProtocolError);
  assert.deepEqual(lobbyMaps().map((map) => map.key), ['warehouse', 'courtyard']);
});

test('the waiting room offers the host its controls and everyone else none', () => {
  // After tick 1: the host and a player have voted; nothing else happened yet.
  const host = lobbyModel(replay('host', 2));
  assert.equal(host.isHost, true);
  assert.equal(host.canStartEarly, true, 'a player on each team');
  assert.equal(host.canEditSettings, true);
  const self = host.players.find((p) => p.isSelf);
  assert.deepEqual([self.isHost, self.canKick, self.canMakeHost], [true, false, false]);
  const others = host.players.filter((p) => !p.isSelf);
  assert.ok(others.length >= 2 && others.every((p) => p.canKick && p.canMakeHost));
  assert.equal(host.voteOpen, true);
  assert.deepEqual(host.mapChoices.map((m) => [m.name, m.votes, m.chosen]), [['Warehouse', 1, false], ['Courtyard', 1, true]]);
  assert.match(settingsSummary(host), /^Warehouse · 6 players · first to 20 · 10 min · map vote$/);

  const player = lobbyModel(replay('player', 2));
  assert.equal(player.isHost, false);
  assert.equal(player.hostName, 'host');
  assert.ok(player.players.every((p) => !p.canKick && !p.canMakeHost));
  assert.equal(player.canStartEarly, false);

  const spectator = lobbyModel(replay('spectator', 2));
  assert.equal(spectator.spectating, true);
  assert.equal(spectator.voteOpen, false, 'spectators do not vote');
  assert.equal(spectator.hostName, 'host');

  // At the end the match has begun: no start button, no settings, no votes.
  const late = lobbyModel(replay('player'));
  assert.equal(late.isHost, true);
  assert.notEqual(late.hostSlot, NO_SLOT);
  assert.ok([Phase.STARTING, Phase.IN_PROGRESS].includes(replay('player').phase[0]));
  assert.deepEqual([late.canStartEarly, late.canEditSettings, late.voteOpen], [false, false, false]);
  assert.equal(late.notice.code, LobbyCode.NOT_HOST);

  // Quick play has no lobby frame, so no model.
  const quick = new BreachMirror();
  assert.equal(lobbyModel(quick), null);
});

// ---- joining a lobby from the API's placement ----

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

function lobbySession() {
  FakeSocket.opened = [];
  const log = { statuses: [], ended: [], fetched: 0 };
  const timers = { set: (fn, ms) => setTimeout(fn, ms), clear: (id) => clearTimeout(id) };
  const session = new BreachSession({
    onStatus: (status) => log.statuses.push([status.state, status.message]),
    onMessage: () => {},
    onJoined: () => {},
    onEnded: (message) => log.ended.push(message),
    fetchImpl: async () => {
      log.fetched++;
      throw new TypeError('no matchmake for a lobby');
    },
    WebSocketImpl: FakeSocket,
    location: new URL('http://play.example.com:8787/'),
    now: () => 0,
    timers,
  });
  session.start({ name: 'ann', lobby: { roomId: 'L1', wsUrl: 'ws://127.0.0.1:8787/api/room/L1', joinToken: 'lobbytok' } });
  return { session, log };
}

test('a lobby placement joins without a matchmake, and a lost seat ends instead of matchmaking', async () => {
  const { session, log } = lobbySession();
  await settle();
  assert.equal(FakeSocket.opened.length, 1);
  const socket = FakeSocket.opened[0];
  assert.equal(socket.url, 'ws://play.example.com:8787/api/room/L1');
  assert.equal(new TextDecoder().decode(Uint8Array.from(socket.sent[0].slice(8))), 'lobbytok');
  // The room is full: no resume token, no quick-play match instead.
  const full = LobbyCode.MATCH_FULL;
  socket.receive([0x82, 3, full & 0xff, full >> 8, 0]);
  socket.serverClose();
  await new Promise((resolve) => setTimeout(resolve, 400));
  await settle();
  assert.equal(log.fetched, 0, 'never a matchmake');
  assert.equal(session.state, 'ended');
  assert.deepEqual(log.ended, ['Your seat in the lobby is gone.']);
  session.stop();
});

test('a kicked player coming back is refused for good', async () => {
  const { session, log } = lobbySession();
  await settle();
  const socket = FakeSocket.opened[0];
  socket.receive([0x82, 3, LobbyCode.KICKED & 0xff, LobbyCode.KICKED >> 8, 0]);
  socket.serverClose();
  await settle();
  assert.equal(session.state, 'failed');
  assert.match(log.statuses.at(-1)[1], /host removed you/);
  assert.equal(log.fetched, 0);
  session.stop();
});
