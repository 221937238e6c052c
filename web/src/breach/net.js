// Getting into a breach match and staying in it: `POST /api/matchmake {mode: "breach"}`, the
// room WebSocket with the join token, the reconnect token the room hands out (Session frame),
// and resuming the same seat after a dropped connection (a network switch, a laptop lid).
//
//   connecting    matchmake and join
//   playing       the room sends state
//   resuming      the connection dropped; reconnecting to the same room with the reconnect
//                 token within the grace the room announced (Resume frame, same seat)
//   reconnecting  the seat is gone (grace over, token refused) or the room could not take the
//                 player: a fresh matchmake, with backoff
//   unreachable   the server does not answer (keeps retrying)
//   ended         the match is over for this player (left by vote, room closed, replaced,
//                 kicked); the game shows the reason and returns to the menu
//   failed        refused for good (bad name, outdated page, mode not served)
//
// A connection that stays silent for SILENCE_MS while playing counts as dropped (the room
// sends 30 frames a second; a switched network often never delivers a close). This module
// owns sockets and timers only: it hands raw messages to its owner and never decodes game
// state. Time and sockets are injected so the logic is tested with scripted ones.

import { encodeJoin, encodePing } from '../protocol.js';
import { resolveSocketUrl, skinFor } from '../net.js';
import { ErrorCode, ServerType, decodeRuntimeFrame, encodeResume, forEachServerFrame } from './protocol.js';

const BACKOFF_MS = [300, 1000, 2000, 4000, 8000];
/** Resume attempts are spaced by these, until the grace runs out. */
const RESUME_BACKOFF_MS = [0, 250, 500, 1000, 2000];
const PING_INTERVAL_MS = 2000;
/** No message for this long while playing: the connection is treated as dropped. */
export const SILENCE_MS = 2500;

/** Refusals that another attempt cannot fix, and what to tell the player. */
const FATAL = new Map([
  [ErrorCode.BAD_NAME, 'The server refused this name: use 1–16 letters, digits, punctuation, symbols or spaces, without hidden or look-alike characters.'],
  [ErrorCode.UNSUPPORTED_VERSION, 'This page is older than the server. Reload it.'],
  [ErrorCode.BAD_FRAME, 'The server could not read this client. Reload the page.'],
  [ErrorCode.TOKEN_REQUIRED, 'This server only takes players through its matchmaker.'],
  [ErrorCode.SPECTATORS_FULL, 'This match has no room for more spectators.'],
  // Breach's own: the host of this custom lobby removed this player (a new matchmake into the
  // same room would be refused again).
  [1106, 'The host removed you from this lobby.'],
]);

/** Codes that end this player's match: shown, then back to the menu. */
const ENDING = new Map([
  [ErrorCode.ROOM_CLOSED, 'The match is over.'],
  [ErrorCode.REPLACED, 'You joined this match from another tab or device.'],
  [ErrorCode.KICKED, 'You were removed from the match.'],
]);

/**
 * Asks the matchmaker for a breach seat.
 * @returns {Promise<{kind: string, [key: string]: any}>}
 */
export async function matchmakeBreach(fetchImpl, { name, spectate = false, room = null, accessToken = null }) {
  const body = { mode: 'breach', playerName: name };
  if (room) body.roomOverride = room;
  if (spectate) body.role = 'spectator';
  const headers = { 'content-type': 'application/json' };
  if (accessToken) headers.authorization = `Bearer ${accessToken}`;
  let response;
  try {
    response = await fetchImpl('/api/matchmake', { method: 'POST', headers, body: JSON.stringify(body) });
  } catch {
    return { kind: 'unreachable' };
  }
  let answer = null;
  try {
    answer = await response.json();
  } catch {
    answer = null;
  }
  if (response.ok && answer && answer.wsUrl && answer.joinToken) {
    return { kind: 'placed', roomId: answer.roomId, wsUrl: answer.wsUrl, joinToken: answer.joinToken, region: answer.region ?? null };
  }
  const code = answer?.error?.code ?? `http_${response.status}`;
  if (response.status === 404 || response.status === 405) {
    return { kind: 'rejected', code, message: 'This server does not run breach matches.' };
  }
  if (response.status === 503 || response.status === 409) {
    const seconds = Number(response.headers.get('retry-after'));
    return { kind: 'busy', code, retryAfterMs: Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : 2000 };
  }
  if (response.status === 400 || response.status === 401 || response.status === 403) {
    const unknownMode = /mode/i.test(code) || /mode/i.test(answer?.error?.message ?? '');
    return {
      kind: 'rejected',
      code,
      message: unknownMode ? 'This server does not run breach matches.' : answer?.error?.message ?? 'The server refused to place you.',
    };
  }
  return { kind: 'unreachable', code };
}

export class BreachSession {
  /**
   * @param {object} options
   * @param {(status: {state: string, message: string}) => void} options.onStatus
   * @param {(bytes: Uint8Array) => void} options.onMessage  every server message, in order
   * @param {(info: {resumed: boolean, roomId: string}) => void} options.onJoined  a connection began receiving
   * @param {(message: string) => void} options.onEnded  the match is over for this player
   */
  constructor({ onStatus, onMessage, onJoined, onEnded, fetchImpl, WebSocketImpl, location, now, timers }) {
    this.onStatus = onStatus;
    this.onMessage = onMessage;
    this.onJoined = onJoined;
    this.onEnded = onEnded;
    this.fetchImpl = fetchImpl ?? ((...args) => fetch(...args));
    this.WebSocketImpl = WebSocketImpl ?? WebSocket;
    this.location = location ?? window.location;
    this.now = now ?? (() => performance.now());
    this.timers = timers ?? { set: (fn, ms) => setTimeout(fn, ms), clear: (id) => clearTimeout(id) };
    this.state = 'idle';
    this.stopped = true;
    this.socket = null;
    this.joined = false;
    this.generation = 0;
    this.failures = 0;
    this.placement = null;
    /** {token: Uint8Array, graceMs, at}: the latest Session frame. */
    this.reconnect = null;
    this.droppedAt = null;
    this.resumeAttempts = 0;
    this.leaving = false;
    this.rttMs = null;
    this.pings = new Map();
    this.retryTimer = null;
    this.pingTimer = null;
    this.watchdogTimer = null;
    this.lastMessageAt = 0;
    this.counts = { joins: 0, resumes: 0, resumeRefused: 0, matchmakes: 0, drops: 0 };
  }

  /**
   * Starts: matchmakes and joins. With `lobby` ({roomId, wsUrl, joinToken}: what the API
   * answers for a custom lobby) the first join uses it instead of a matchmake, and a lost seat
   * ends the session rather than matchmaking into a quick-play room.
   */
  start({ name, spectate = false, room = null, accessToken = null, lobby = null }) {
    this.stop();
    this.stopped = false;
    this.request = { name, spectate, room, accessToken, lobby, lobbyUsed: false };
    this.failures = 0;
    this.attempt('connecting');
  }

  /** Closes everything; no retries. */
  stop() {
    this.stopped = true;
    this.closeSocket();
    this.placement = null;
    this.reconnect = null;
    this.leaving = false;
  }

  /**
   * The player voted to leave, or the match completed: the room will release the seat and
   * close the connection; do not come back, show `message`.
   */
  leaveAfterVote(message = 'You left the match.') {
    this.leaving = message;
  }

  send(bytes) {
    if (this.socket && this.socket.readyState === 1 && this.joined) {
      this.socket.send(bytes);
      return true;
    }
    return false;
  }

  /** Closes the socket from this side, as a network drop would (tests, debugging). */
  dropConnection() {
    if (this.socket) this.handleDrop(this.socket, null);
  }

  // ---- internals ----

  setStatus(state, message = '') {
    this.state = state;
    this.onStatus({ state, message });
  }

  clearTimers() {
    this.timers.clear(this.retryTimer);
    this.timers.clear(this.pingTimer);
    this.timers.clear(this.watchdogTimer);
    this.retryTimer = this.pingTimer = this.watchdogTimer = null;
  }

  closeSocket() {
    this.generation++;
    this.clearTimers();
    const socket = this.socket;
    this.socket = null;
    this.joined = false;
    if (socket) {
      try {
        socket.close(1000);
      } catch {
        // Already closed.
      }
    }
  }

  async attempt(state) {
    const generation = ++this.generation;
    this.clearTimers();
    this.reconnect = null;
    if (this.request.lobby) {
      if (this.request.lobbyUsed) {
        this.end('Your seat in the lobby is gone.');
        return;
      }
      this.request.lobbyUsed = true;
      const lobby = this.request.lobby;
      this.setStatus(state, 'Joining the lobby…');
      this.placement = { kind: 'placed', roomId: lobby.roomId, wsUrl: lobby.wsUrl, joinToken: lobby.joinToken, region: lobby.region ?? null, url: resolveSocketUrl(lobby.wsUrl, this.location) };
      this.open({ resume: false });
      return;
    }
    this.setStatus(state, state === 'connecting' ? 'Finding a match…' : 'Finding a new match…');
    this.counts.matchmakes++;
    const result = await matchmakeBreach(this.fetchImpl, this.request);
    if (generation !== this.generation || this.stopped) return;
    switch (result.kind) {
      case 'placed':
        this.placement = { ...result, url: resolveSocketUrl(result.wsUrl, this.location) };
        this.open({ resume: false });
        return;
      case 'busy':
        this.setStatus('reconnecting', `No free seat right now; retrying in ${Math.ceil(result.retryAfterMs / 1000)} s…`);
        this.later(() => this.attempt('reconnecting'), result.retryAfterMs);
        return;
      case 'rejected':
        this.fail(result.message);
        return;
      default:
        this.networkFailure();
    }
  }

  later(fn, ms) {
    this.timers.clear(this.retryTimer);
    this.retryTimer = this.timers.set(fn, ms);
  }

  networkFailure() {
    this.failures++;
    const delay = BACKOFF_MS[Math.min(this.failures - 1, BACKOFF_MS.length - 1)];
    this.setStatus(this.failures >= 2 ? 'unreachable' : this.state === 'connecting' ? 'connecting' : 'reconnecting', `Server unreachable; retrying in ${Math.ceil(delay / 1000)} s…`);
    this.later(() => this.attempt(this.counts.joins > 0 ? 'reconnecting' : 'connecting'), delay);
  }

  fail(message) {
    this.closeSocket();
    this.stopped = true;
    this.setStatus('failed', message);
  }

  end(message) {
    this.closeSocket();
    this.stopped = true;
    this.reconnect = null;
    this.setStatus('ended', message);
    this.onEnded(message);
  }

  open({ resume }) {
    const placement = this.placement;
    let socket;
    try {
      socket = new this.WebSocketImpl(placement.url);
    } catch {
      if (resume) this.resumeLater();
      else this.networkFailure();
      return;
    }
    const generation = ++this.generation;
    socket.binaryType = 'arraybuffer';
    this.socket = socket;
    this.joined = false;
    const connection = { socket, generation, resume, lastError: null, received: false };
    const current = () => this.generation === generation && !this.stopped;
    socket.onopen = () => {
      if (!current()) return;
      if (resume) socket.send(encodeResume(this.reconnect.token));
      else socket.send(encodeJoin({ name: this.request.name, skin: skinFor(this.request.name), token: placement.joinToken }));
    };
    socket.onmessage = (event) => {
      if (!current()) return;
      this.onSocketMessage(connection, new Uint8Array(event.data));
    };
    socket.onclose = () => {
      if (!current()) return;
      this.handleDrop(socket, connection);
    };
    socket.onerror = () => {
      // onclose follows and decides.
    };
    this.currentConnection = connection;
  }

  onSocketMessage(connection, bytes) {
    this.lastMessageAt = this.now();
    try {
      forEachServerFrame(bytes, (type, reader) => {
        if (type < 0x81 || type > 0x85) return;
        const frame = decodeRuntimeFrame(type, reader);
        if (frame.type === 'error') connection.lastError = frame.code;
        else if (frame.type === 'session') this.reconnect = { token: frame.token, graceMs: frame.graceMs, at: this.now() };
        else if (frame.type === 'pong') this.onPong(frame.nonce);
        else if (frame.type === 'notice') this.setStatus('playing', 'This server is shutting down after this match.');
      });
    } catch {
      // The game side reports broken game frames; here only the runtime's frames matter.
    }
    if (!connection.received && connection.lastError === null) {
      connection.received = true;
      this.joined = true;
      this.failures = 0;
      this.resumeAttempts = 0;
      this.droppedAt = null;
      if (connection.resume) this.counts.resumes++;
      else this.counts.joins++;
      this.setStatus('playing', '');
      this.onJoined({ resumed: connection.resume, roomId: this.placement.roomId });
      this.startTimers(connection.socket);
    }
    this.onMessage(bytes);
  }

  startTimers(socket) {
    let nonce = 1;
    this.pings.clear();
    const ping = () => {
      if (socket.readyState === 1) {
        nonce = (nonce + 1) >>> 0;
        this.pings.set(nonce, this.now());
        if (this.pings.size > 8) this.pings.delete(this.pings.keys().next().value);
        socket.send(encodePing(nonce));
      }
      this.pingTimer = this.timers.set(ping, PING_INTERVAL_MS);
    };
    this.pingTimer = this.timers.set(ping, PING_INTERVAL_MS);
    const watch = () => {
      if (this.socket !== socket) return;
      if (this.now() - this.lastMessageAt >= SILENCE_MS) {
        this.handleDrop(socket, this.currentConnection);
        return;
      }
      this.watchdogTimer = this.timers.set(watch, 500);
    };
    this.watchdogTimer = this.timers.set(watch, 500);
  }

  onPong(nonce) {
    const sent = this.pings.get(nonce);
    if (sent === undefined) return;
    this.pings.delete(nonce);
    this.rttMs = this.now() - sent;
  }

  /** The socket closed (or went silent): decide between resume, a new match, or the end. */
  handleDrop(socket, connection) {
    if (this.socket !== socket) return;
    const code = connection ? connection.lastError : null;
    const wasJoined = this.joined;
    this.closeSocket();
    if (this.stopped) return;
    if (this.leaving) {
      this.end(this.leaving);
      return;
    }
    if (code !== null && FATAL.has(code)) {
      this.fail(FATAL.get(code));
      return;
    }
    if (code !== null && ENDING.has(code)) {
      this.end(ENDING.get(code));
      return;
    }
    if (code === ErrorCode.RECONNECT_EXPIRED || code === ErrorCode.RECONNECT_REFUSED) {
      this.counts.resumeRefused++;
      this.reconnect = null;
      this.attempt('reconnecting');
      return;
    }
    if (wasJoined || connection?.resume) this.counts.drops++;
    // A drop without a refusal: resume the seat while the grace lasts.
    if (code === null && this.reconnect && this.placement) {
      if (this.droppedAt === null) this.droppedAt = this.now();
      this.resumeLater();
      return;
    }
    if (code === null && !connection?.received) {
      this.networkFailure();
      return;
    }
    // A slow-client cut, a full or draining room, a stale token, a server hiccup: a fresh
    // matchmake fixes each of them.
    this.later(() => this.attempt('reconnecting'), BACKOFF_MS[0]);
  }

  resumeLater() {
    const graceLeft = this.reconnect ? this.reconnect.graceMs - (this.now() - this.droppedAt) : 0;
    if (graceLeft <= 0) {
      this.reconnect = null;
      this.attempt('reconnecting');
      return;
    }
    const delay = RESUME_BACKOFF_MS[Math.min(this.resumeAttempts, RESUME_BACKOFF_MS.length - 1)];
    this.resumeAttempts++;
    this.setStatus('resuming', `Connection lost; rejoining your match (${Math.ceil(graceLeft / 1000)} s)…`);
    this.later(() => {
      if (this.stopped) return;
      this.open({ resume: true });
    }, Math.min(delay, graceLeft));
  }
}

export { ServerType };
