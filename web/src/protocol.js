// Coil wire protocol v12 for the browser: frame decoding and encoding, byte by byte as
// docs/protocol.md describes it (the Rust source of truth is crates/coil-protocol).
//
// This module owns bytes only: it turns server messages into plain objects and player intent
// into client frames. It keeps no game state (that is mirror.js), touches no DOM, socket or
// clock, and never throws anything but ProtocolError on hostile or broken bytes.

export const PROTOCOL_V11 = 11;
export const PROTOCOL_V12 = 12;
export const MAX_JOIN_TOKEN = 512;
export const MAX_SCORE_RECEIPT = 4096;
export const META_TOP_MAX = 10;

export const ClientType = Object.freeze({ JOIN: 0x01, PING: 0x02, INPUT: 0x10, RESPAWN: 0x11 });
export const ServerType = Object.freeze({
  PONG: 0x81,
  ERROR: 0x82,
  NOTICE: 0x83,
  SCORE_RECEIPT: 0x84,
  INIT: 0x90,
  STATE: 0x91,
  META: 0x92,
  DEATH: 0x93,
});

/** Stable error codes of error frames (docs/protocol.md, "Error codes"). */
export const ErrorCode = Object.freeze({
  BAD_FRAME: 1,
  TRUNCATED: 2,
  OVERSIZED: 3,
  OUT_OF_ORDER: 4,
  UNSUPPORTED_VERSION: 5,
  BAD_NAME: 6,
  ROOM_FULL: 10,
  ROOM_DRAINING: 11,
  TOKEN_REQUIRED: 20,
  TOKEN_EXPIRED: 21,
  TOKEN_INVALID: 22,
  TOKEN_REPLAYED: 23,
  TOKEN_WRONG_ROOM: 24,
  SLOW_CLIENT: 30,
  RATE_LIMITED: 31,
  INTERNAL: 99,
});

export const NoticeKind = Object.freeze({ DRAINING: 1 });

/** Thrown for any message that does not follow the protocol. */
export class ProtocolError extends Error {
  constructor(message) {
    super(message);
    this.name = 'ProtocolError';
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });
const utf8Encoder = new TextEncoder();

/** A cursor over untrusted bytes; every shortfall is a ProtocolError. */
export class Reader {
  /** @param {Uint8Array} bytes */
  constructor(bytes, start = 0, end = bytes.length) {
    this.bytes = bytes;
    this.position = start;
    this.end = end;
  }

  remaining() {
    return this.end - this.position;
  }

  finish() {
    if (this.position !== this.end) {
      throw new ProtocolError(`frame has ${this.end - this.position} trailing bytes`);
    }
  }

  need(count) {
    if (this.end - this.position < count) throw new ProtocolError('frame ended early');
  }

  u8() {
    this.need(1);
    return this.bytes[this.position++];
  }

  u16() {
    this.need(2);
    const b = this.bytes;
    const p = this.position;
    this.position += 2;
    return b[p] | (b[p + 1] << 8);
  }

  u32() {
    this.need(4);
    const b = this.bytes;
    const p = this.position;
    this.position += 4;
    return (b[p] | (b[p + 1] << 8) | (b[p + 2] << 16)) + b[p + 3] * 0x1000000;
  }

  f32() {
    this.need(4);
    const view = new DataView(this.bytes.buffer, this.bytes.byteOffset + this.position, 4);
    this.position += 4;
    return view.getFloat32(0, true);
  }

  /** Unsigned LEB128: at most 5 bytes and at most 2^32 - 1. */
  varint() {
    let value = 0;
    let scale = 1;
    for (let index = 0; index < 5; index++) {
      const byte = this.u8();
      value += (byte & 0x7f) * scale;
      if ((byte & 0x80) === 0) {
        if (value > 0xffffffff) throw new ProtocolError('varint is larger than allowed');
        return value;
      }
      scale *= 128;
    }
    throw new ProtocolError('varint is longer than allowed');
  }

  /** Zigzag varint: (v >>> 1) ^ -(v & 1), as a signed 32-bit integer. */
  svarint() {
    const raw = this.varint();
    return (raw >>> 1) ^ -(raw & 1);
  }

  take(count) {
    this.need(count);
    const slice = this.bytes.subarray(this.position, this.position + count);
    this.position += count;
    return slice;
  }

  shortStr() {
    const length = this.u8();
    return decodeUtf8(this.take(length));
  }

  longBytes(max) {
    const length = this.varint();
    if (length > max) throw new ProtocolError('field is larger than allowed');
    return this.take(length);
  }
}

function decodeUtf8(bytes) {
  try {
    return utf8.decode(bytes);
  } catch {
    throw new ProtocolError('string is not valid UTF-8');
  }
}

/**
 * Splits one server WebSocket message into frames: calls `onFrame(type, reader)` for each,
 * with a reader bounded to that frame's payload.
 * @param {Uint8Array} message
 * @param {(type: number, payload: Reader) => void} onFrame
 */
export function forEachServerFrame(message, onFrame) {
  const outer = new Reader(message);
  while (outer.remaining() > 0) {
    const type = outer.u8();
    const length = outer.varint();
    outer.need(length);
    const start = outer.position;
    outer.position += length;
    onFrame(type, new Reader(message, start, start + length));
  }
}

export function decodeInit(r) {
  const init = {
    snakeId: r.u16(),
    arenaRadius: r.f32(),
    tickRate: r.u8(),
    positionQuantum: r.f32(),
    segmentSpacing: r.f32(),
    viewHalfWidth: r.u16(),
    viewHalfHeight: r.u16(),
    pelletCell: r.u8(),
  };
  r.finish();
  const positive = (value) => Number.isFinite(value) && value > 0;
  if (
    !positive(init.positionQuantum) ||
    !positive(init.segmentSpacing) ||
    !Number.isFinite(init.arenaRadius) ||
    init.pelletCell === 0 ||
    init.tickRate === 0
  ) {
    throw new ProtocolError('init field out of range');
  }
  return init;
}

export function decodeMeta(r) {
  const count = r.u8();
  if (count > META_TOP_MAX) throw new ProtocolError('meta top list too long');
  const top = [];
  for (let index = 0; index < count; index++) {
    const score = r.varint();
    top.push({ score, name: r.shortStr() });
  }
  const meta = {
    top,
    ownRank: r.varint(),
    ownScore: r.varint(),
    scoreFraction: r.u8(),
    oxygen: r.u8(),
    girth: r.varint(),
    tailExtension: r.u8(),
    humans: r.varint(),
    bots: r.varint(),
  };
  r.finish();
  return meta;
}

export function decodeDeath(r) {
  const hasKiller = r.u8();
  if (hasKiller > 1) throw new ProtocolError('death killer flag out of range');
  const killer = hasKiller === 1 ? r.shortStr() : null;
  const death = { killer, finalScore: r.varint(), rank: r.varint() };
  r.finish();
  return death;
}

const EXT_RESIDUAL = 1;
const EXT_LENGTH = 2;
const EXT_GIRTH = 4;
const EXT_BOOST = 8;
/** Move code 15: an extension record follows. */
export const MOVE_EXTENDED = 15;

/**
 * A decoded state frame. Buffers are reused from frame to frame (a client decodes one every
 * tick); read it before decoding the next one.
 */
export class StateFrame {
  constructor() {
    this.removed = [];
    /** Entered snakes: {id, identity: {skin, name} | null, boosting, length, girth, head, velocity, body: Uint8Array} */
    this.entered = [];
    /** Move codes 0..8 or MOVE_EXTENDED, one per snake known before the frame. */
    this.moves = new Uint8Array(64);
    this.moveCount = 0;
    /** Extensions: {dx, dy, lengthDelta, girthDelta, boostToggled}. */
    this.extensions = [];
    this.eaten = [];
    /** New pellets, packed 24-bit values (see pelletCellX and friends). */
    this.newPellets = [];
  }

  /** Decodes a state payload into this frame, replacing its contents. */
  decode(r) {
    this.removed.length = 0;
    this.entered.length = 0;
    this.extensions.length = 0;
    this.eaten.length = 0;
    this.newPellets.length = 0;
    const removed = r.varint();
    if (removed > r.remaining() / 2) throw new ProtocolError('frame ended early');
    for (let index = 0; index < removed; index++) this.removed.push(r.u16());

    const entered = r.varint();
    for (let index = 0; index < entered; index++) {
      const id = r.u16();
      const flags = r.u8();
      if (flags & ~3) throw new ProtocolError('snake flags out of range');
      let identity = null;
      if (flags & 1) {
        const skin = r.u8();
        identity = { skin, name: r.shortStr() };
      }
      const length = r.varint();
      const girth = r.varint();
      const head = [r.svarint(), r.svarint()];
      const velocity = [r.svarint(), r.svarint()];
      const bodyLength = r.varint();
      const body = r.take(bodyLength);
      this.entered.push({ id, identity, boosting: (flags & 2) !== 0, length, girth, head, velocity, body });
    }

    const moves = r.varint();
    const moveBytes = Math.ceil(moves / 2);
    if (moveBytes > r.remaining()) throw new ProtocolError('frame ended early');
    if (this.moves.length < moves) this.moves = new Uint8Array(Math.max(moves, this.moves.length * 2));
    let extended = 0;
    for (let pair = 0; pair < moveBytes; pair++) {
      const byte = r.u8();
      const low = byte & 0xf;
      const high = byte >> 4;
      if (low > 8 && low !== MOVE_EXTENDED) throw new ProtocolError('reserved move code');
      this.moves[pair * 2] = low;
      if (low === MOVE_EXTENDED) extended++;
      if (pair * 2 + 1 < moves) {
        if (high > 8 && high !== MOVE_EXTENDED) throw new ProtocolError('reserved move code');
        this.moves[pair * 2 + 1] = high;
        if (high === MOVE_EXTENDED) extended++;
      } else if (high !== 0) {
        throw new ProtocolError('move padding is not zero');
      }
    }
    this.moveCount = moves;

    for (let index = 0; index < extended; index++) {
      const flags = r.u8();
      if (flags & ~(EXT_RESIDUAL | EXT_LENGTH | EXT_GIRTH | EXT_BOOST)) {
        throw new ProtocolError('extension flags out of range');
      }
      const extension = { dx: 0, dy: 0, lengthDelta: 0, girthDelta: 0, boostToggled: (flags & EXT_BOOST) !== 0 };
      if (flags & EXT_RESIDUAL) {
        extension.dx = r.svarint();
        extension.dy = r.svarint();
      }
      if (flags & EXT_LENGTH) extension.lengthDelta = r.svarint();
      if (flags & EXT_GIRTH) extension.girthDelta = r.svarint();
      this.extensions.push(extension);
    }

    const eaten = r.varint();
    let nextFree = 0;
    for (let index = 0; index < eaten; index++) {
      const position = nextFree + r.varint();
      if (position > 0xfffffffe) throw new ProtocolError('eaten index out of range');
      this.eaten.push(position);
      nextFree = position + 1;
    }

    const pellets = r.varint();
    if (pellets > r.remaining() / 3) throw new ProtocolError('frame ended early');
    for (let index = 0; index < pellets; index++) {
      const b = r.take(3);
      this.newPellets.push(b[0] | (b[1] << 8) | (b[2] << 16));
    }
    r.finish();
    return this;
  }
}

export const pelletCellX = (packed) => packed & 0x1ff;
export const pelletCellY = (packed) => (packed >> 9) & 0x1ff;
export const pelletColor = (packed) => (packed >> 18) & 0xf;
export const pelletSize = (packed) => (packed >> 22) & 0x3;

/** Decodes a runtime-owned frame (0x81..0x84); returns null for game frames. */
export function decodeEnvelope(type, r) {
  let envelope;
  switch (type) {
    case ServerType.PONG:
      envelope = { type: 'pong', nonce: r.u32() };
      break;
    case ServerType.ERROR: {
      const code = r.u16();
      envelope = { type: 'error', code, reason: r.shortStr() };
      break;
    }
    case ServerType.NOTICE: {
      const kind = r.u8();
      envelope = { type: 'notice', kind, deadlineMs: r.u32() };
      break;
    }
    case ServerType.SCORE_RECEIPT:
      envelope = { type: 'scoreReceipt', receipt: decodeUtf8(r.longBytes(MAX_SCORE_RECEIPT)) };
      break;
    default:
      if (type >= 0x90) return null;
      throw new ProtocolError(`unknown frame type 0x${type.toString(16)}`);
  }
  r.finish();
  return envelope;
}

// ---- client → server ----

/** Heading in radians → 1/65536 turns, counter-clockwise from +x. */
export function angleToU16(radians) {
  if (!Number.isFinite(radians)) return 0;
  const tau = Math.PI * 2;
  let turns = (radians / tau) % 1;
  if (turns < 0) turns += 1;
  return Math.round(turns * 65536) & 0xffff;
}

/**
 * Join frame. Version 12 carries the matchmaker's join token (its text, as UTF-8 bytes);
 * version 11 joins without one.
 */
export function encodeJoin({ name, skin = 0, token = null }) {
  const nameBytes = utf8Encoder.encode(name).subarray(0, 255);
  const version = token === null ? PROTOCOL_V11 : PROTOCOL_V12;
  const tokenBytes = token === null ? null : utf8Encoder.encode(token);
  if (tokenBytes && tokenBytes.length > MAX_JOIN_TOKEN) throw new ProtocolError('join token too long');
  const out = [ClientType.JOIN, version, nameBytes.length, ...nameBytes, skin & 0xff];
  if (tokenBytes) {
    writeVarint(out, tokenBytes.length);
    for (const byte of tokenBytes) out.push(byte);
  }
  return new Uint8Array(out);
}

export function encodePing(nonce) {
  const n = nonce >>> 0;
  return new Uint8Array([ClientType.PING, n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, n >>> 24]);
}

/** Input frame: angle u16 (1/65536 turns) and boost flag, 4 bytes. */
export function encodeInput(angleU16, boost) {
  return new Uint8Array([ClientType.INPUT, angleU16 & 0xff, (angleU16 >> 8) & 0xff, boost ? 1 : 0]);
}

export function encodeRespawn() {
  return new Uint8Array([ClientType.RESPAWN]);
}

function writeVarint(out, value) {
  let v = value >>> 0;
  while (v >= 0x80) {
    out.push((v & 0x7f) | 0x80);
    v >>>= 7;
  }
  out.push(v);
}

/** Body direction k (1/256 turns) as a unit vector, in f32 like the Rust table. */
export const BODY_DIRECTIONS = (() => {
  const table = new Float32Array(512);
  for (let k = 0; k < 256; k++) {
    // Same f64 arithmetic as the Rust table (k · 2π / 256), rounded to f32.
    const angle = (k * (Math.PI * 2)) / 256;
    table[k * 2] = Math.cos(angle);
    table[k * 2 + 1] = Math.sin(angle);
  }
  return table;
})();

export function hexToBytes(hex) {
  const out = new Uint8Array(hex.length / 2);
  for (let index = 0; index < out.length; index++) {
    out[index] = parseInt(hex.substr(index * 2, 2), 16);
  }
  return out;
}
