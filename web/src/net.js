// Getting into a room and staying there: POST /api/matchmake, the room WebSocket with the
// join token, and every way that can go wrong, reported as honest connection states.
//
//   connecting    first matchmake and join
//   playing       the room sends state
//   reconnecting  after a drop, a drain notice, a full or draining room, a rejected token
//                 (re-matchmakes automatically, with backoff)
//   unreachable   the server does not answer HTTP or WebSocket (keeps retrying)
//   roomProblem   the requested room cannot take the player (409: full, draining, unknown);
//                 the matchmaker's suggested room is offered, nothing retries on its own
//   failed        the server refused for good (bad name, client too old); back to the menu
//
// When no matchmaker runs (POST /api/matchmake answers 404 or 405) the client joins the room
// directly with a version 11 join. This module owns sockets and timers only: it hands raw
// messages to its owner and never decodes game state.

import {
  ErrorCode,
  NoticeKind,
  ServerType,
  decodeEnvelope,
  encodeJoin,
  encodePing,
  forEachServerFrame,
} from './protocol.js';

const BACKOFF_MS = [300, 1000, 2000, 4000, 8000];
const PING_INTERVAL_MS = 2000;
/** A connection that ends sooner than this after joining counts as a quick drop. */
const SHORT_CONNECTION_MS = 5000;
/** Re-matchmake this long before a draining room's deadline if the player is still in it. */
const DRAIN_MARGIN_MS = 1500;
/** A game server that has not accepted the WebSocket by then counts as refusing it. */
const CONNECT_TIMEOUT_MS = 3000;
/**
 * Pauses before matchmaking again when the node of a token refused the connection (it died and
 * is still in placement until the directory notices, ~1.5 s): at once, then a little later,
 * before the usual backoff takes over.
 */
const REPLACEMENT_DELAYS_MS = [0, 100, 200, 400, 400, 400, 400, 400];
/** Default room when no matchmaker runs and the player named none. */
export const DIRECT_DEFAULT_ROOM = 'lobby';

/** Server refusals that a new attempt cannot fix. */
const FATAL_ERRORS = new Map([
  [ErrorCode.BAD_NAME, 'The server refused this name: use 1–16 letters, digits, punctuation, symbols or spaces, without hidden or look-alike characters.'],
  [ErrorCode.UNSUPPORTED_VERSION, 'This page is older than the server. Reload it.'],
  [ErrorCode.BAD_FRAME, 'The server could not read this client. Reload the page.'],
  [ErrorCode.TOKEN_REQUIRED, 'This server only takes players through its matchmaker.'],
]);

/**
 * Asks the matchmaker for a seat.
 * @returns {Promise<{kind: string, [key: string]: any}>}
 */
export async function matchmake(fetchImpl, name, room) {
  let response;
  try {
    response = await fetchImpl('/api/matchmake', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(room ? { playerName: name, roomOverride: room } : { playerName: name }),
    });
  } catch {
    return { kind: 'unreachable' };
  }
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (response.ok && body && body.wsUrl && body.joinToken) {
    return { kind: 'placed', roomId: body.roomId, wsUrl: body.wsUrl, joinToken: body.joinToken, region: body.region };
  }
  if (response.status === 404 || response.status === 405) return { kind: 'noMatchmaker' };
  const code = body?.error?.code ?? `http_${response.status}`;
  if (response.status === 409) {
    return { kind: 'roomProblem', code, requested: room, suggested: body?.suggestedRoom ?? null };
  }
  if (response.status === 503) {
    const seconds = Number(response.headers.get('retry-after'));
    return { kind: 'busy', code, retryAfterMs: Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : 2000 };
  }
  if (response.status === 400) return { kind: 'rejected', code, message: body?.error?.message ?? 'refused' };
  return { kind: 'unreachable', code };
}

/**
 * The matchmaker's wsUrl, adjusted to how this page was reached: a node that advertises a
 * loopback address (the all-in-one default) is reached through the page's own host, and an
 * https page uses wss.
 */
export function resolveSocketUrl(wsUrl, location) {
  let url;
  try {
    url = new URL(wsUrl, location.href);
  } catch {
    return wsUrl;
  }
  const loopback = (host) => host === '127.0.0.1' || host === 'localhost' || host === '[::1]' || host === '0.0.0.0';
  if (loopback(url.hostname) && !loopback(location.hostname)) url.host = location.host;
  if (location.protocol === 'https:' && url.protocol === 'ws:') url.protocol = 'wss:';
  return url.toString();
}

export function directSocketUrl(room, location) {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${location.host}/api/room/${encodeURIComponent(room)}`;
}

export class GameSession {
  /**
   * @param {object} options
   * @param {(status: {state: string, message: string, room: string|null}) => void} options.onStatus
   * @param {(bytes: Uint8Array) => void} options.onMessage  every server message, in order
   * @param {(info: {room: string}) => void} options.onJoined  a new room connection began
   * @param {(problem: {code: string, requested: string, suggested: string|null}) => void} options.onRoomProblem
   */
  constructor({ onStatus, onMessage, onJoined, onRoomProblem, fetchImpl, WebSocketImpl, location, now }) {
    this.onStatus = onStatus;
    this.onMessage = onMessage;
    this.onJoined = onJoined;
    this.onRoomProblem = onRoomProblem;
    this.fetchImpl = fetchImpl ?? ((...args) => fetch(...args));
    this.WebSocketImpl = WebSocketImpl ?? WebSocket;
    this.location = location ?? window.location;
    this.now = now ?? (() => performance.now());
    this.name = '';
    this.room = null;
    this.socket = null;
    this.generation = 0;
    this.switchId = 0;
    this.joined = false;
    this.requestedRoom = null;
    this.joinedAt = null;
    this.quickDrops = 0;
    this.failures = 0;
    this.replacements = 0;
    this.everJoined = false;
    this.retryTimer = null;
    this.connectTimer = null;
    this.drainTimer = null;
    this.pingTimer = null;
    this.pings = new Map();
    this.rttMs = null;
    this.draining = false;
    this.state = 'idle';
    this.stopped = true;
  }

  /** Starts playing: matchmakes (into `room` if given) and joins. */
  start(name, room = null) {
    this.stop();
    this.stopped = false;
    this.name = name;
    this.requestedRoom = room || null;
    this.everJoined = false;
    this.failures = 0;
    this.replacements = 0;
    this.attempt('connecting');
  }

  /** Closes everything; no retries. */
  stop() {
    this.stopped = true;
    this.generation++;
    this.clearTimers();
    if (this.socket) {
      try {
        this.socket.close(1000);
      } catch {
        // Already closed.
      }
    }
    this.socket = null;
    this.room = null;
    this.draining = false;
  }

  /** Moves to another room (null: wherever the matchmaker places). Stays put on a 409. */
  async switchRoom(room) {
    if (this.stopped) return;
    const switchId = ++this.switchId;
    const generation = this.generation;
    const connected = () => this.socket !== null && this.joined;
    this.setStatus(connected() ? 'playing' : 'connecting', room ? `Joining room ${room}…` : 'Finding a room…');
    const result = await matchmake(this.fetchImpl, this.name, room);
    // Anything that happened meanwhile (a drop, another switch, stop) wins.
    if (switchId !== this.switchId || generation !== this.generation || this.stopped) return;
    if (result.kind === 'roomProblem') {
      // The current connection is untouched: keep playing where we are.
      this.setStatus(connected() ? 'playing' : 'roomProblem', '');
      this.onRoomProblem({ code: result.code, requested: room, suggested: result.suggested });
      return;
    }
    this.requestedRoom = room || null;
    this.closeSocket();
    this.handlePlacement(result, this.generation);
  }

  /** Re-matchmakes now (after a drop, a drain, or when the player asks). */
  reconnect(message = 'Reconnecting…') {
    if (this.stopped) return;
    this.closeSocket();
    this.attempt('reconnecting', message);
  }

  send(bytes) {
    if (this.socket && this.socket.readyState === 1 && this.joined) this.socket.send(bytes);
  }

  // ---- internals ----

  setStatus(state, message = '') {
    this.state = state;
    this.onStatus({ state, message, room: this.room });
  }

  clearTimers() {
    clearTimeout(this.retryTimer);
    clearTimeout(this.drainTimer);
    clearTimeout(this.connectTimer);
    clearInterval(this.pingTimer);
    this.retryTimer = this.drainTimer = this.pingTimer = this.connectTimer = null;
  }

  closeSocket() {
    this.generation++;
    this.clearTimers();
    if (this.socket) {
      try {
        this.socket.close(1000);
      } catch {
        // Already closed.
      }
    }
    this.socket = null;
    this.joined = false;
  }

  async attempt(state, message) {
    const generation = ++this.generation;
    this.clearTimers();
    this.setStatus(state, message ?? (state === 'connecting' ? 'Connecting…' : 'Reconnecting…'));
    const result = await matchmake(this.fetchImpl, this.name, this.requestedRoom);
    if (generation !== this.generation || this.stopped) return;
    this.handlePlacement(result, generation);
  }

  handlePlacement(result, generation) {
    switch (result.kind) {
      case 'placed':
        this.open(resolveSocketUrl(result.wsUrl, this.location), result.joinToken, result.roomId, generation);
        return;
      case 'noMatchmaker': {
        const room = this.requestedRoom || DIRECT_DEFAULT_ROOM;
        this.open(directSocketUrl(room, this.location), null, room, generation);
        return;
      }
      case 'roomProblem':
        this.setStatus('roomProblem', '');
        this.onRoomProblem({ code: result.code, requested: result.requested, suggested: result.suggested });
        return;
      case 'busy':
        this.setStatus('reconnecting', `No free seat right now; retrying in ${Math.ceil(result.retryAfterMs / 1000)} s…`);
        this.retryLater(result.retryAfterMs);
        return;
      case 'rejected':
        this.fail(result.message);
        return;
      default:
        this.networkFailure();
    }
  }

  networkFailure() {
    this.failures++;
    const delay = BACKOFF_MS[Math.min(this.failures - 1, BACKOFF_MS.length - 1)];
    if (this.failures >= 2) {
      this.setStatus('unreachable', `Server unreachable; retrying in ${Math.ceil(delay / 1000)} s…`);
    } else {
      this.setStatus(this.everJoined ? 'reconnecting' : 'connecting', 'Connection lost; retrying…');
    }
    this.retryLater(delay);
  }

  retryLater(delay) {
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.attempt(this.everJoined ? 'reconnecting' : 'connecting', this.state === 'unreachable' ? 'Server unreachable; retrying…' : undefined), delay);
  }

  fail(message) {
    this.closeSocket();
    this.stopped = true;
    this.setStatus('failed', message);
  }

  open(url, token, room, generation) {
    let socket;
    try {
      socket = new this.WebSocketImpl(url);
    } catch {
      this.networkFailure();
      return;
    }
    socket.binaryType = 'arraybuffer';
    socket.coilGeneration = generation;
    this.socket = socket;
    this.joined = false;
    this.room = room;
    this.draining = false;
    let lastError = null;
    let received = false;
    let opened = false;
    const current = () => socket.coilGeneration === this.generation && !this.stopped;
    clearTimeout(this.connectTimer);
    this.connectTimer = setTimeout(() => {
      if (!opened && current()) socket.close();
    }, CONNECT_TIMEOUT_MS);

    socket.onopen = () => {
      if (!current()) return;
      opened = true;
      clearTimeout(this.connectTimer);
      socket.send(encodeJoin({ name: this.name, skin: skinFor(this.name), token }));
    };
    socket.onmessage = (event) => {
      if (!current()) return;
      const bytes = new Uint8Array(event.data);
      try {
        forEachServerFrame(bytes, (type, reader) => {
          if (type === ServerType.ERROR || type === ServerType.NOTICE || type === ServerType.PONG) {
            const envelope = decodeEnvelope(type, reader);
            if (envelope.type === 'error') lastError = envelope.code;
            else if (envelope.type === 'notice' && envelope.kind === NoticeKind.DRAINING) this.onDrainNotice(envelope.deadlineMs);
            else if (envelope.type === 'pong') this.onPong(envelope.nonce);
          }
        });
      } catch {
        // The game side reports broken messages; here only the envelope matters.
      }
      if (!received && lastError === null) {
        received = true;
        this.joined = true;
        this.everJoined = true;
        this.failures = 0;
        this.replacements = 0;
        this.joinedAt = this.now();
        this.setStatus('playing', '');
        this.onJoined({ room });
        this.startPings(socket);
      }
      this.onMessage(bytes);
    };
    socket.onclose = () => {
      if (!current()) return;
      this.socket = null;
      this.joined = false;
      this.clearTimers();
      this.afterClose(lastError, received, !opened && token !== null);
    };
    socket.onerror = () => {
      // onclose follows and decides.
    };
  }

  /** `refusedWithToken`: the matchmaker's node never accepted the connection. */
  afterClose(code, received, refusedWithToken = false) {
    if (code !== null && FATAL_ERRORS.has(code)) {
      this.fail(FATAL_ERRORS.get(code));
      return;
    }
    if (code === ErrorCode.ROOM_FULL && this.requestedRoom) {
      this.setStatus('roomProblem', '');
      this.onRoomProblem({ code: 'room_full', requested: this.requestedRoom, suggested: null });
      return;
    }
    if (code === ErrorCode.ROOM_DRAINING || this.draining) {
      // The room is going away: whatever room was asked for, let the matchmaker choose.
      this.requestedRoom = null;
      this.reattempt('The room is closing; moving you to another room…');
      return;
    }
    if (refusedWithToken && this.replacements < REPLACEMENT_DELAYS_MS.length) {
      // The node the matchmaker chose is gone: ask for another seat now, not after a backoff.
      const delay = REPLACEMENT_DELAYS_MS[this.replacements++];
      const message = 'The game server did not answer; finding another…';
      this.setStatus(this.everJoined ? 'reconnecting' : 'connecting', message);
      clearTimeout(this.retryTimer);
      this.retryTimer = setTimeout(() => this.attempt(this.everJoined ? 'reconnecting' : 'connecting', message), delay);
      return;
    }
    if (code === null && !received) {
      this.networkFailure();
      return;
    }
    // A drop, a stale or replayed token, a slow connection, a server hiccup: a fresh
    // matchmake fixes each of them.
    this.reattempt(code === null ? 'Connection lost; reconnecting…' : 'Reconnecting…');
  }

  /**
   * Matchmakes again: at once after a connection that lasted, with growing pauses when
   * connections keep ending within seconds (so a server that accepts and drops cannot make
   * the client hammer it).
   */
  reattempt(message) {
    const now = this.now();
    const shortLived = this.joinedAt !== null && now - this.joinedAt < SHORT_CONNECTION_MS;
    this.quickDrops = shortLived ? this.quickDrops + 1 : 0;
    if (this.quickDrops === 0) {
      this.attempt('reconnecting', message);
      return;
    }
    this.setStatus('reconnecting', message);
    const delay = BACKOFF_MS[Math.min(this.quickDrops - 1, BACKOFF_MS.length - 1)];
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.attempt('reconnecting', message), delay);
  }

  onDrainNotice(deadlineMs) {
    this.draining = true;
    this.setStatus('playing', 'This room is closing; you will be moved to another room.');
    clearTimeout(this.drainTimer);
    this.drainTimer = setTimeout(() => this.leaveDrainingRoom(), Math.max(0, deadlineMs - DRAIN_MARGIN_MS));
  }

  /** Leaves a room that announced its drain and lets the matchmaker pick the next one. */
  leaveDrainingRoom() {
    if (this.stopped) return;
    // Whatever room was asked for is going away.
    this.requestedRoom = null;
    this.reconnect('The room is closing; moving you to another room…');
  }

  startPings(socket) {
    clearInterval(this.pingTimer);
    let nonce = 1;
    this.pings.clear();
    this.pingTimer = setInterval(() => {
      if (socket.readyState !== 1) return;
      nonce = (nonce + 1) >>> 0;
      this.pings.set(nonce, this.now());
      if (this.pings.size > 8) this.pings.delete(this.pings.keys().next().value);
      socket.send(encodePing(nonce));
    }, PING_INTERVAL_MS);
  }

  onPong(nonce) {
    const sent = this.pings.get(nonce);
    if (sent === undefined) return;
    this.pings.delete(nonce);
    this.rttMs = this.now() - sent;
  }
}

/** A stable skin per name, so a player keeps their colour across visits. */
export function skinFor(name) {
  let hash = 0;
  for (let index = 0; index < name.length; index++) hash = (hash * 31 + name.charCodeAt(index)) >>> 0;
  return hash % 16;
}
