// Breach's frames for the browser, byte by byte as docs/protocol-breach.md describes them
// (the Rust source of truth is crates/coil-breach/src/wire.rs), plus the runtime frames a
// breach client needs beyond the arena's: Session (0x85) and Resume (0x03).
//
// This module owns bytes only: decoders that turn server frames into plain objects and
// refuse what wire.rs refuses (out-of-range fields, counts larger than the bytes left,
// trailing bytes), and encoders for input, vote, resume and the custom lobby's commands (kick,
// transfer host, start early, settings, map vote). It keeps no state, touches no
// DOM, socket or clock, and throws nothing but ProtocolError on hostile or broken bytes.

import { ProtocolError, Reader, forEachServerFrame } from '../protocol.js';

export { ProtocolError, Reader, forEachServerFrame };

export const PROTOCOL_VERSION = 12;
/** Reconnect tokens are 16 bytes (the Session frame); anything else is refused. */
export const RECONNECT_TOKEN_BYTES = 16;

export const ClientType = Object.freeze({
  JOIN: 0x01,
  PING: 0x02,
  RESUME: 0x03,
  INPUT: 0x10,
  VOTE: 0x11,
  KICK: 0x12,
  TRANSFER_HOST: 0x13,
  START_EARLY: 0x14,
  SETTINGS: 0x15,
  MAP_VOTE: 0x16,
});

export const ServerType = Object.freeze({
  PONG: 0x81,
  ERROR: 0x82,
  NOTICE: 0x83,
  SCORE_RECEIPT: 0x84,
  SESSION: 0x85,
  INIT: 0x90,
  WALLS: 0x91,
  STATE: 0x92,
  KILL_FEED: 0x93,
  ROSTER: 0x94,
  SCOREBOARD: 0x95,
  VOTES: 0x96,
  LOBBY: 0x97,
  NOTICE: 0x98,
});

/** Codes of Notice frames (docs/protocol-breach.md §3.9) and breach's join refusals. */
export const LobbyCode = Object.freeze({
  MATCH_FULL: 1101,
  KICKED: 1106,
  NOT_HOST: 1110,
  WRONG_PHASE: 1111,
  BAD_SETTINGS: 1112,
  NEED_BOTH_TEAMS: 1113,
  NO_SUCH_PLAYER: 1114,
  NOT_A_LOBBY: 1115,
  MAP_VOTE_OFF: 1116,
  UNKNOWN_MAP: 1117,
});

/** Stable error codes of error frames (docs/protocol.md §2, plus the match runtime's). */
export const ErrorCode = Object.freeze({
  BAD_FRAME: 1,
  TRUNCATED: 2,
  OVERSIZED: 3,
  OUT_OF_ORDER: 4,
  UNSUPPORTED_VERSION: 5,
  BAD_NAME: 6,
  ROOM_FULL: 10,
  ROOM_DRAINING: 11,
  ROOM_CLOSED: 12,
  SPECTATORS_FULL: 13,
  TOKEN_REQUIRED: 20,
  TOKEN_EXPIRED: 21,
  TOKEN_INVALID: 22,
  TOKEN_REPLAYED: 23,
  TOKEN_WRONG_ROOM: 24,
  RECONNECT_EXPIRED: 25,
  RECONNECT_REFUSED: 26,
  SLOW_CLIENT: 30,
  RATE_LIMITED: 31,
  REPLACED: 32,
  KICKED: 33,
  INTERNAL: 99,
});

export const NO_SLOT = 0xff;
export const SPECTATOR_TEAM = 2;
export const Phase = Object.freeze({ WAITING: 0, STARTING: 1, IN_PROGRESS: 2, ENDING: 3, COMPLETED: 4 });
export const Vote = Object.freeze({ STAY: 1, LEAVE: 2 });
export const SoundKind = Object.freeze({
  SNEAK_STEP: 0,
  WALK_STEP: 1,
  RUN_STEP: 2,
  SHOT: 3,
  RELOAD: 4,
  CHARGE_PLACED: 5,
  BLAST: 6,
});
export const Speed = Object.freeze({ SNEAK: 0, WALK: 1, RUN: 2 });
/** Others' positions travel in half pixels (4 sub-pixels). */
export const POSITION_QUANTUM_SUB = 4;
export const SUBPIXELS_PER_PIXEL = 8;

const Section = Object.freeze({
  OWN: 1 << 0,
  PLAYERS: 1 << 1,
  SHOTS: 1 << 2,
  WALLS: 1 << 3,
  SOUNDS: 1 << 4,
  SCORES: 1 << 5,
  PHASE: 1 << 6,
  GAP: 1 << 7,
  CHARGES: 1 << 8,
  BLASTS: 1 << 9,
  ALL: (1 << 10) - 1,
});

const Own = Object.freeze({ ACK: 1, POSITION: 2, HEALTH: 4, AMMO: 8, RELOAD: 16, LIFE: 32, CHARGES: 64, FACING: 128 });
const PLAYER_SMALL_MOVE = 1 << 4;
const PLAYER_LARGE_MOVE = 1 << 5;
const PLAYER_ENTER = PLAYER_SMALL_MOVE | PLAYER_LARGE_MOVE;
const PLAYER_FACING = 1 << 6;
const PLAYER_HEALTH = 1 << 7;

function readBool(r) {
  const value = r.u8();
  if (value > 1) throw new ProtocolError('boolean out of range');
  return value === 1;
}

/** A count whose entries take at least `minEntry` bytes each must fit in what is left. */
function readCount(r, minEntry) {
  const count = r.varint();
  if (count * minEntry > r.remaining()) throw new ProtocolError('frame ended early');
  return count;
}

export function decodeInit(r) {
  const init = {
    mapId: r.u8(),
    tickRate: r.u8(),
    slot: r.u8(),
    team: r.u8(),
    matchGeneration: r.varint(),
    tick: r.varint(),
    killLimit: r.varint(),
    timeLimitTicks: r.varint(),
    friendlyFire: readBool(r),
    spectatorDelayTicks: r.varint(),
    coneHalfAngle: r.u16(),
    viewRangePx: r.u16(),
    nearRadiusPx: r.u16(),
    speeds: [r.u8(), r.u8(), r.u8()],
    playerHalfSub: r.u8(),
  };
  if (init.tickRate === 0 || init.team > 2 || (init.slot !== NO_SLOT && init.slot >= 16)) {
    throw new ProtocolError('init field out of range');
  }
  return init;
}

/** Ascending slices as gaps: `count`, then `gap varint, hit points u8` each. */
export function decodeSlices(r) {
  const count = readCount(r, 2);
  const indices = new Array(count);
  const hitPoints = new Array(count);
  let previous = -1;
  for (let i = 0; i < count; i++) {
    const gap = r.varint();
    let index;
    if (previous < 0) {
      index = gap;
    } else {
      if (gap === 0) throw new ProtocolError('slice gap of 0');
      index = previous + gap;
      if (index > 0xffffffff) throw new ProtocolError('slice index out of range');
    }
    indices[i] = index;
    hitPoints[i] = r.u8();
    previous = index;
  }
  return { indices, hitPoints };
}

function decodeOwn(r) {
  const mask = r.u8();
  const own = {
    ackDelta: null,
    moved: null,
    health: null,
    ammo: null,
    reload: null,
    life: null,
    charges: null,
    facing: null,
  };
  if (mask & Own.ACK) own.ackDelta = r.varint();
  if (mask & Own.POSITION) own.moved = [r.svarint(), r.svarint()];
  if (mask & Own.HEALTH) own.health = r.u8();
  if (mask & Own.AMMO) own.ammo = r.u8();
  if (mask & Own.RELOAD) own.reload = r.u8();
  if (mask & Own.LIFE) {
    const alive = readBool(r);
    let respawn = 0;
    if (!alive) {
      respawn = r.varint();
      if (respawn > 0xffff) throw new ProtocolError('respawn ticks out of range');
    }
    own.life = [alive, respawn];
  }
  if (mask & Own.CHARGES) own.charges = r.u8();
  if (mask & Own.FACING) own.facing = r.u16();
  return own;
}

/** A player entry: `{slot, kind: 'leave' | 'enter' | 'update', ...}`. */
function decodePlayer(r) {
  const header = r.u8();
  const slot = header & 0x0f;
  const moves = header & PLAYER_ENTER;
  if ((header & 0xf0) === 0) return { slot, kind: 'leave' };
  if (moves === PLAYER_ENTER) {
    if ((header & (PLAYER_FACING | PLAYER_HEALTH)) !== (PLAYER_FACING | PLAYER_HEALTH)) {
      throw new ProtocolError('enter without facing and health');
    }
    return { slot, kind: 'enter', x: r.varint(), y: r.varint(), facing: r.u8(), health: r.u8() };
  }
  let moved = null;
  if (moves === PLAYER_SMALL_MOVE) {
    const byte = r.u8();
    moved = [(byte & 0x0f) - 8, (byte >> 4) - 8];
  } else if (moves === PLAYER_LARGE_MOVE) {
    moved = [r.svarint(), r.svarint()];
  }
  const facing = header & PLAYER_FACING ? r.u8() : null;
  const health = header & PLAYER_HEALTH ? r.u8() : null;
  return { slot, kind: 'update', moved, facing, health };
}

/**
 * A state frame. Absent parts are null (own, scores, phase: unchanged) or empty lists
 * (players, shots, walls, sounds, charges, blasts: nothing this tick).
 */
export function decodeState(r) {
  const sections = r.varint();
  if (sections & ~Section.ALL) throw new ProtocolError('state section bits out of range');
  const state = {
    gap: 1,
    own: null,
    players: [],
    shots: [],
    walls: { indices: [], hitPoints: [] },
    sounds: [],
    scores: null,
    phase: null,
    charges: [],
    blasts: [],
  };
  if (sections & Section.GAP) {
    state.gap = r.varint();
    if (state.gap === 1) throw new ProtocolError('a gap of 1 is sent as no gap');
  }
  if (sections & Section.OWN) state.own = decodeOwn(r);
  if (sections & Section.PLAYERS) {
    const count = readCount(r, 1);
    for (let i = 0; i < count; i++) state.players.push(decodePlayer(r));
  }
  if (sections & Section.SHOTS) {
    const count = readCount(r, 2);
    for (let i = 0; i < count; i++) {
      const header = r.u8();
      if (header & 0xc0) throw new ProtocolError('shot header bits out of range');
      const shot = { shooter: header & 0x0f, hitPlayer: (header & 0x20) !== 0, seen: (header & 0x10) !== 0, dx: 0, dy: 0, direction: 0 };
      if (shot.seen) {
        shot.dx = r.svarint();
        shot.dy = r.svarint();
      } else {
        shot.direction = r.u8();
      }
      state.shots.push(shot);
    }
  }
  if (sections & Section.WALLS) state.walls = decodeSlices(r);
  if (sections & Section.SOUNDS) {
    const count = readCount(r, 2);
    for (let i = 0; i < count; i++) {
      const packed = r.u8();
      if (packed & 0x80) throw new ProtocolError('sound bits out of range');
      state.sounds.push({ kind: packed & 0x07, loudness: (packed >> 3) & 0x07, direction: r.u8(), muffled: (packed & 0x40) !== 0 });
    }
  }
  if (sections & Section.SCORES) state.scores = [r.varint(), r.varint()];
  if (sections & Section.PHASE) state.phase = [r.u8(), r.varint()];
  if (sections & Section.CHARGES) {
    const count = readCount(r, 3);
    for (let i = 0; i < count; i++) {
      const x = r.varint();
      const y = r.varint();
      const packed = r.u8();
      state.charges.push({ x, y, fuse: packed & 0x7f, friendly: (packed & 0x80) !== 0 });
    }
  }
  if (sections & Section.BLASTS) {
    const count = readCount(r, 2);
    for (let i = 0; i < count; i++) state.blasts.push([r.varint(), r.varint()]);
  }
  return state;
}

function decodeRosterEntry(r) {
  const entry = {
    slot: r.u8(),
    team: r.u8(),
    bot: readBool(r),
    kills: r.varint(),
    deaths: r.varint(),
    assists: r.varint(),
    name: r.shortStr(),
  };
  if (entry.slot >= 16 || entry.team > 1) throw new ProtocolError('roster entry out of range');
  return entry;
}

function decodeRosterList(r) {
  const count = readCount(r, 7);
  const roster = [];
  for (let i = 0; i < count; i++) roster.push(decodeRosterEntry(r));
  return roster;
}

/**
 * One server frame's payload: `{type: 'init' | 'walls' | 'state' | 'killFeed' | 'roster' |
 * 'scoreboard' | 'votes', value}`, or `{type: 'other', frameType}` for a type breach does
 * not own (runtime frames, newer game frames), which the caller skips.
 */
export function decodeServerFrame(frameType, r) {
  let frame;
  switch (frameType) {
    case ServerType.INIT:
      frame = { type: 'init', value: decodeInit(r) };
      break;
    case ServerType.WALLS:
      frame = { type: 'walls', value: decodeSlices(r) };
      break;
    case ServerType.STATE:
      frame = { type: 'state', value: decodeState(r) };
      break;
    case ServerType.KILL_FEED: {
      const count = readCount(r, 4);
      const kills = [];
      for (let i = 0; i < count; i++) {
        const kill = { killer: r.u8(), victim: r.u8(), assister: r.u8(), cause: r.u8() };
        if (kill.cause > 1) throw new ProtocolError('kill cause out of range');
        kills.push(kill);
      }
      frame = { type: 'killFeed', value: kills };
      break;
    }
    case ServerType.ROSTER:
      frame = { type: 'roster', value: decodeRosterList(r) };
      break;
    case ServerType.SCOREBOARD: {
      const reason = r.u8();
      const winner = r.u8();
      if (reason < 1 || reason > 3 || winner > 2) throw new ProtocolError('scoreboard field out of range');
      const scores = [r.varint(), r.varint()];
      const durationTicks = r.varint();
      const ticksLeft = r.varint();
      const players = decodeRosterList(r);
      frame = { type: 'scoreboard', value: { reason, winner, scores, durationTicks, ticksLeft, players } };
      break;
    }
    case ServerType.VOTES: {
      const count = readCount(r, 2);
      const votes = [];
      for (let i = 0; i < count; i++) {
        const slot = r.u8();
        const vote = r.u8();
        if (vote < 1 || vote > 2) throw new ProtocolError('vote out of range');
        votes.push([slot, vote]);
      }
      frame = { type: 'votes', value: votes };
      break;
    }
    case ServerType.LOBBY:
      frame = { type: 'lobby', value: decodeLobby(r) };
      break;
    case ServerType.NOTICE: {
      const code = r.u16();
      frame = { type: 'notice', value: { code, text: r.shortStr() } };
      break;
    }
    default:
      return { type: 'other', frameType };
  }
  r.finish();
  return frame;
}

/**
 * The custom lobby (0x97): `{hostSlot, mapId, killLimit, timeLimitSecs, friendlyFire, mapVote,
 * maxPlayers, spectators, votes: [[slot, mapId], ...]}`.
 */
export function decodeLobby(r) {
  const hostSlot = r.u8();
  const mapId = r.u8();
  const killLimit = r.varint();
  const timeLimitSecs = r.varint();
  const flags = r.u8();
  const maxPlayers = r.u8();
  const spectators = r.u8();
  if (flags & ~0b11 || (hostSlot !== NO_SLOT && hostSlot >= 16) || maxPlayers === 0 || maxPlayers > 16) {
    throw new ProtocolError('lobby field out of range');
  }
  const count = readCount(r, 2);
  const votes = [];
  for (let i = 0; i < count; i++) {
    const slot = r.u8();
    if (slot >= 16) throw new ProtocolError('vote slot out of range');
    votes.push([slot, r.u8()]);
  }
  return { hostSlot, mapId, killLimit, timeLimitSecs, friendlyFire: (flags & 1) !== 0, mapVote: (flags & 2) !== 0, maxPlayers, spectators, votes };
}

/** Every frame of one server message, decoded before any is applied (as wire.rs does). */
export function decodeServerMessage(message) {
  const frames = [];
  forEachServerFrame(message, (type, reader) => frames.push(decodeServerFrame(type, reader)));
  return frames;
}

/**
 * A runtime frame (0x81..=0x85): `{type: 'pong' | 'error' | 'notice' | 'scoreReceipt' |
 * 'session', ...}`; null for game frames (0x90 and up), which the mirror decodes.
 */
export function decodeRuntimeFrame(frameType, r) {
  let frame;
  switch (frameType) {
    case ServerType.PONG:
      frame = { type: 'pong', nonce: r.u32() };
      break;
    case ServerType.ERROR: {
      const code = r.u16();
      frame = { type: 'error', code, reason: r.shortStr() };
      break;
    }
    case ServerType.NOTICE: {
      const kind = r.u8();
      frame = { type: 'notice', kind, deadlineMs: r.u32() };
      break;
    }
    case ServerType.SCORE_RECEIPT:
      r.longBytes(4096);
      frame = { type: 'scoreReceipt' };
      break;
    case ServerType.SESSION: {
      const token = r.longBytes(RECONNECT_TOKEN_BYTES);
      if (token.length !== RECONNECT_TOKEN_BYTES) throw new ProtocolError('reconnect token is not 16 bytes');
      frame = { type: 'session', token: token.slice(), graceMs: r.u32() };
      break;
    }
    default:
      if (frameType >= 0x90) return null;
      throw new ProtocolError(`unknown runtime frame type 0x${frameType.toString(16)}`);
  }
  r.finish();
  return frame;
}

// ---- client → server ----

function pushVarint(out, value) {
  let v = value >>> 0;
  while (v >= 0x80) {
    out.push((v & 0x7f) | 0x80);
    v >>>= 7;
  }
  out.push(v);
}

/**
 * Input: `[0x10][sequence varint][direction | speed << 4][facing u16][buttons]`.
 * @param {{sequence: number, direction: number, speed: number, facing: number, fire: boolean, reload: boolean, use: boolean}} intent
 */
export function encodeInput(intent) {
  const out = [ClientType.INPUT];
  pushVarint(out, intent.sequence);
  out.push((Math.min(intent.direction, 8) & 0x0f) | ((intent.speed & 0x03) << 4));
  out.push(intent.facing & 0xff, (intent.facing >> 8) & 0xff);
  out.push((intent.fire ? 1 : 0) | (intent.reload ? 2 : 0) | (intent.use ? 4 : 0));
  return new Uint8Array(out);
}

/** Vote: `[0x11][1 stay | 2 leave]`. */
export function encodeVote(vote) {
  if (vote !== Vote.STAY && vote !== Vote.LEAVE) throw new ProtocolError('vote must be stay or leave');
  return new Uint8Array([ClientType.VOTE, vote]);
}

function slotByte(slot) {
  if (!Number.isInteger(slot) || slot < 0 || slot > 0xff) throw new ProtocolError('slot must be a byte');
  return slot;
}

/** Kick (host only): `[0x12][slot]`. */
export function encodeKick(slot) {
  return new Uint8Array([ClientType.KICK, slotByte(slot)]);
}

/** Make another player host (host only): `[0x13][slot]`. */
export function encodeTransferHost(slot) {
  return new Uint8Array([ClientType.TRANSFER_HOST, slotByte(slot)]);
}

/** Start before the lobby is full (host only): `[0x14]`. */
export function encodeStartEarly() {
  return new Uint8Array([ClientType.START_EARLY]);
}

/** New settings, `key=value;…` over the current ones (host only): `[0x15][text short_str]`. */
export function encodeSettings(text) {
  const bytes = new TextEncoder().encode(String(text));
  if (bytes.length > 255) throw new ProtocolError('settings text is longer than 255 bytes');
  return new Uint8Array([ClientType.SETTINGS, bytes.length, ...bytes]);
}

/** A vote for the next map: `[0x16][map id]`. */
export function encodeMapVote(mapId) {
  return new Uint8Array([ClientType.MAP_VOTE, slotByte(mapId)]);
}

/**
 * Settings as the text the server reads (docs/protocol-breach.md §6): only the keys given,
 * sorted, numbers in decimal, booleans as true/false. Unknown keys are refused here already.
 */
export function settingsText(settings) {
  const allowed = ['friendlyFire', 'killLimit', 'map', 'mapVote', 'maxPlayers', 'timeLimitSecs'];
  const parts = [];
  for (const key of Object.keys(settings).sort()) {
    if (!allowed.includes(key)) throw new ProtocolError(`unknown setting ${key}`);
    const value = settings[key];
    if (value === undefined || value === null) continue;
    if (typeof value === 'boolean') parts.push(`${key}=${value}`);
    else if (typeof value === 'number' && Number.isInteger(value) && value >= 0) parts.push(`${key}=${value}`);
    else if (typeof value === 'string' && key === 'map' && /^[a-z0-9-]{1,32}$/i.test(value)) parts.push(`${key}=${value.toLowerCase()}`);
    else throw new ProtocolError(`setting ${key} has a bad value`);
  }
  return parts.join(';');
}

/** Resume after a dropped connection: `[0x03][version 12][token long_bytes]`. */
export function encodeResume(token) {
  if (token.length !== RECONNECT_TOKEN_BYTES) throw new ProtocolError('reconnect token is not 16 bytes');
  const out = [ClientType.RESUME, PROTOCOL_VERSION];
  pushVarint(out, token.length);
  for (const byte of token) out.push(byte);
  return new Uint8Array(out);
}

/** A facing in radians (screen coordinates, y down) as 1/65536 turn, clockwise on screen. */
export function facingFromRadians(radians) {
  if (!Number.isFinite(radians)) return 0;
  let turns = (radians / (Math.PI * 2)) % 1;
  if (turns < 0) turns += 1;
  return Math.round(turns * 65536) & 0xffff;
}

export function facingToRadians(facing) {
  return (facing / 65536) * Math.PI * 2;
}
