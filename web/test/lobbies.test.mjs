// The lobby browser's pure helpers (web/src/lobbies.js): request bodies, the list under feed
// events and pages, filters, invite links and the messages shown for refusals.
// Run: node --test web/test/lobbies.test.mjs

import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  applyFeedEvent,
  createLobbyBody,
  describeLobby,
  explainLobbyError,
  invitedTo,
  inviteLink,
  joinLobbyBody,
  lobbiesUrl,
  lobbyCall,
  mergePage,
  passesFilters,
} from '../src/lobbies.js';

const lobby = (id, extra = {}) => ({
  id, mode: 'breach', region: 'local', map: 'warehouse', players: 1, maxPlayers: 4,
  phase: 'waiting', private: false, password: false, custom: true, host: 'ann', hostId: 'p1', ...extra,
});

test('the create body carries the form: numbers as numbers, booleans, the password making it private', () => {
  const built = createLobbyBody({
    private: false, password: 'hunter2hunter2', map: 'courtyard', killLimit: '25', timeLimitSecs: '300',
    friendlyFire: true, mapVote: false, maxPlayers: '4', playerName: 'ann',
  });
  assert.deepEqual(built, {
    ok: true,
    body: {
      mode: 'breach', private: true, password: 'hunter2hunter2', playerName: 'ann',
      settings: { map: 'courtyard', killLimit: 25, timeLimitSecs: 300, maxPlayers: 4, friendlyFire: true, mapVote: false },
    },
  });
});

test('the create body leaves empty numbers to the defaults and sends no empty password', () => {
  const built = createLobbyBody({ private: true, password: '', map: 'warehouse', killLimit: '', timeLimitSecs: ' ', maxPlayers: '8' });
  assert.equal(built.ok, true);
  assert.equal('password' in built.body, false);
  assert.equal(built.body.private, true);
  assert.deepEqual(built.body.settings, { map: 'warehouse', maxPlayers: 8, friendlyFire: false, mapVote: false });
});

test('a password of 7 or 65 characters is refused before any request; 8 and 64 pass', () => {
  for (const length of [7, 65]) {
    const built = createLobbyBody({ password: 'x'.repeat(length) });
    assert.equal(built.ok, false);
    assert.equal(built.field, 'password');
    assert.match(built.message, /8 to 64/);
  }
  for (const length of [8, 64]) assert.equal(createLobbyBody({ password: 'x'.repeat(length) }).ok, true);
});

test('a number field that is no number is named', () => {
  const built = createLobbyBody({ killLimit: 'lots' });
  assert.deepEqual([built.ok, built.field], [false, 'killLimit']);
});

test('the join body holds only what is given', () => {
  assert.deepEqual(joinLobbyBody({}), {});
  assert.deepEqual(joinLobbyBody({ password: 'pw-pw-pw-pw', playerName: 'bob' }), { password: 'pw-pw-pw-pw', playerName: 'bob' });
  assert.deepEqual(joinLobbyBody({ inviteCode: 'abc' }), { inviteCode: 'abc' });
});

test('the list URL carries the filters and the cursor', () => {
  assert.equal(lobbiesUrl({}), '/api/lobbies?mode=breach&limit=20');
  const url = new URL(lobbiesUrl({ notFull: true, notStarted: true, noPassword: true, map: 'courtyard' }, 'c1'), 'http://x');
  assert.deepEqual(Object.fromEntries(url.searchParams), {
    mode: 'breach', limit: '20', notFull: 'true', notStarted: 'true', noPassword: 'true', map: 'courtyard', cursor: 'c1',
  });
});

test('feed events upsert by id in id order and remove by id', () => {
  let list = [];
  list = applyFeedEvent(list, 'lobby', lobby('b'));
  list = applyFeedEvent(list, 'lobby', lobby('a'));
  assert.deepEqual(list.map((l) => l.id), ['a', 'b']);
  list = applyFeedEvent(list, 'lobby', lobby('b', { players: 3 }));
  assert.deepEqual(list.map((l) => [l.id, l.players]), [['a', 1], ['b', 3]]);
  const before = list;
  list = applyFeedEvent(list, 'removed', { id: 'a' });
  assert.deepEqual(list.map((l) => l.id), ['b']);
  assert.equal(before.length, 2, 'the old list is not changed');
  assert.equal(applyFeedEvent(list, 'removed', { id: 'nope' }).length, 1);
  assert.equal(applyFeedEvent(list, 'lobby', { players: 1 }), list, 'an event without an id is ignored');
});

test('a lobby that stops passing the filters leaves the list', () => {
  const filters = { notFull: true, notStarted: true };
  let list = applyFeedEvent([], 'lobby', lobby('a'), filters);
  assert.equal(list.length, 1);
  list = applyFeedEvent(list, 'lobby', lobby('a', { players: 4 }), filters);
  assert.equal(list.length, 0, 'full');
  list = applyFeedEvent(list, 'lobby', lobby('a', { phase: 'in_progress' }), filters);
  assert.equal(list.length, 0, 'started');
});

test('filters: full, started, password, map (any case)', () => {
  assert.equal(passesFilters(lobby('a'), {}), true);
  assert.equal(passesFilters(lobby('a', { players: 4 }), { notFull: true }), false);
  assert.equal(passesFilters(lobby('a', { phase: 'starting' }), { notStarted: true }), false);
  assert.equal(passesFilters(lobby('a', { password: true }), { noPassword: true }), false);
  assert.equal(passesFilters(lobby('a', { map: 'Courtyard' }), { map: 'courtyard' }), true);
  assert.equal(passesFilters(lobby('a'), { map: 'courtyard' }), false);
});

test('a next page appends, a lobby seen again is replaced', () => {
  const first = mergePage([], [lobby('a'), lobby('b')]);
  const both = mergePage(first, [lobby('b', { players: 2 }), lobby('c')]);
  assert.deepEqual(both.map((l) => [l.id, l.players]), [['a', 1], ['b', 2], ['c', 1]]);
});

test('invite links round-trip through the query string', () => {
  const link = inviteLink('http://127.0.0.1:8787', 'room-1', 'a+b/c=');
  assert.equal(link, 'http://127.0.0.1:8787/?lobby=room-1&invite=a%2Bb%2Fc%3D');
  assert.deepEqual(invitedTo(new URL(link).search), { lobbyId: 'room-1', inviteCode: 'a+b/c=' });
  assert.equal(invitedTo('?lobby=x'), null);
  assert.equal(invitedTo('?mode=breach'), null);
});

test('rows say map, players, phase and host', () => {
  assert.deepEqual(describeLobby(lobby('a', { phase: 'in_progress', players: 3 })), { map: 'Warehouse', players: '3/4', phase: 'playing', host: 'ann' });
  assert.equal(describeLobby(lobby('a', { host: null, custom: false })).host, 'quick play');
});

test('refusals show the server message, Retry-After, and what to do', () => {
  assert.equal(explainLobbyError({ status: 403, error: { code: 'wrong_password', message: 'wrong lobby password' } }), 'Wrong lobby password.');
  assert.equal(explainLobbyError({ status: 429, retryAfter: '42', error: { code: 'rate_limited', message: 'too many password attempts' } }), 'Too many password attempts. Try again in 42 s.');
  assert.equal(explainLobbyError({ status: 409, error: { code: 'room_full', message: 'this lobby is full' } }), 'This lobby is full.');
  assert.match(explainLobbyError({ status: 403, error: { code: 'lobby_private', message: 'this lobby is private' } }), /invite link/);
  assert.match(explainLobbyError({ status: 0, error: { code: 'unreachable' } }), /not reachable/);
  assert.equal(explainLobbyError({ status: 502, error: {} }), 'The server answered HTTP 502.');
  assert.equal(explainLobbyError({ status: 400, error: { code: 'bad_settings', message: 'killLimit must be a whole number between 1 and 200' } }), 'killLimit must be a whole number between 1 and 200.');
});

test('lobbyCall: JSON both ways, the bearer, the error body and Retry-After; a network failure is status 0', async () => {
  const seen = [];
  const fake = async (path, init) => {
    seen.push({ path, init });
    return new Response(JSON.stringify({ error: { code: 'rate_limited', message: 'slow down' } }), { status: 429, headers: { 'retry-after': '7' } });
  };
  const refused = await lobbyCall(fake, 'POST', '/api/lobbies/x/join', { body: { password: 'p' }, bearer: 'tok' });
  assert.deepEqual(refused, { ok: false, status: 429, error: { code: 'rate_limited', message: 'slow down' }, retryAfter: '7' });
  assert.equal(seen[0].init.headers.authorization, 'Bearer tok');
  assert.equal(seen[0].init.body, '{"password":"p"}');
  const ok = await lobbyCall(async () => new Response('{"lobbies":[]}', { status: 200 }), 'GET', '/api/lobbies');
  assert.deepEqual(ok, { ok: true, status: 200, body: { lobbies: [] } });
  const down = await lobbyCall(async () => { throw new TypeError('fetch failed'); }, 'GET', '/api/lobbies');
  assert.equal(down.status, 0);
  const html = await lobbyCall(async () => new Response('<html>', { status: 502 }), 'GET', '/api/lobbies');
  assert.deepEqual([html.ok, html.status, html.error.code], [false, 502, 'http_502']);
});
