// The client's reconstruction of the world from server messages: a faithful port of the Rust
// reference client `coil_game::arena::client::ClientMirror` ("Applying a state frame" in
// docs/protocol.md). web/test/protocol.test.mjs holds the two to the same result on messages
// the server really produced.
//
// Integers (heads, velocities, lengths, girths, pellets, the view centre) follow the protocol
// exactly. Body trails are computed in f32 (Math.fround at every step) so they match the Rust
// mirror bit for bit. This module owns no socket, DOM or clock and never renders; hostile
// bytes end in a ProtocolError or MirrorError, after which the client reconnects.

import {
  BODY_DIRECTIONS,
  MOVE_EXTENDED,
  ProtocolError,
  Reader,
  ServerType,
  StateFrame,
  decodeDeath,
  decodeEnvelope,
  decodeInit,
  decodeMeta,
  forEachServerFrame,
  pelletCellX,
  pelletCellY,
  pelletColor,
  pelletSize,
} from './protocol.js';

/** Most identities remembered before starting over (the server re-sends forgotten names). */
const MAX_IDENTITIES = 4096;
/** Longest trail kept per snake, whatever length a frame claims. */
const MAX_TRAIL_POINTS = 4096;
/** Most trail points one head move may add; a bigger jump restarts the trail at the head. */
const MAX_POINTS_PER_MOVE = 64;

const f32 = Math.fround;

/** A state frame that does not fit what the client holds. */
export class MirrorError extends Error {
  constructor(message) {
    super(message);
    this.name = 'MirrorError';
  }
}

/**
 * A snake the client knows. `head` and `velocity` are integer position units; `trail` holds
 * body points in world units, newest first, as a flat [x0, y0, x1, y1, …] array.
 */
export class MirrorSnake {
  constructor(id, head, velocity, length, girth, boosting) {
    this.id = id;
    this.headX = head[0];
    this.headY = head[1];
    this.velocityX = velocity[0];
    this.velocityY = velocity[1];
    this.length = length;
    this.girth = girth;
    this.boosting = boosting;
    this.trail = [];
  }

  /** Number of trail points. */
  trailPoints() {
    return this.trail.length / 2;
  }

  /** The visible body in world units, head first: the head then `length` trail points. */
  body(init) {
    const q = init.positionQuantum;
    const points = [f32(f32(this.headX) * q), f32(f32(this.headY) * q)];
    const count = Math.min(this.trailPoints(), this.length);
    for (let index = 0; index < count * 2; index++) points.push(this.trail[index]);
    return points;
  }
}

export class ClientMirror {
  constructor({ trackBodies = true } = {}) {
    this.trackBodies = trackBodies;
    this.init = null;
    /** Known snakes, ascending ids. */
    this.snakes = [];
    /** id → {skin, name} */
    this.identities = new Map();
    /** Pellets as parallel arrays (position units), in the server's order. */
    this.pelletX = [];
    this.pelletY = [];
    this.pelletColor = [];
    this.pelletSize = [];
    this.centerX = 0;
    this.centerY = 0;
    this.meta = null;
    this.death = null;
    this.lastError = null;
    this.lastNotice = null;
    this.lastPong = null;
    this.lastScoreReceipt = null;
    this.statesApplied = 0;
    this.frame = new StateFrame();
    /** Called after each frame is applied: (kind, value), for the UI. */
    this.onEvent = null;
  }

  pelletCount() {
    return this.pelletX.length;
  }

  snake(id) {
    const index = this.indexOf(id);
    return index >= 0 ? this.snakes[index] : null;
  }

  ownSnake() {
    return this.init ? this.snake(this.init.snakeId) : null;
  }

  identity(id) {
    return this.identities.get(id) ?? null;
  }

  takeDeath() {
    const death = this.death;
    this.death = null;
    return death;
  }

  /** Binary search over ascending ids: the index, or -(insertion point) - 1. */
  indexOf(id) {
    let low = 0;
    let high = this.snakes.length - 1;
    while (low <= high) {
      const middle = (low + high) >> 1;
      const value = this.snakes[middle].id;
      if (value < id) low = middle + 1;
      else if (value > id) high = middle - 1;
      else return middle;
    }
    return -low - 1;
  }

  /** Applies one server WebSocket message (one or more frames). */
  applyMessage(message) {
    forEachServerFrame(message, (type, reader) => this.applyFrame(type, reader));
  }

  applyFrame(type, reader) {
    switch (type) {
      case ServerType.STATE:
        this.frame.decode(reader);
        this.applyState(this.frame);
        this.emit('state', this.frame);
        return;
      case ServerType.INIT:
        // An init frame starts the client over (join, or the server's resync).
        this.init = decodeInit(reader);
        this.snakes.length = 0;
        this.clearPellets();
        this.identities.clear();
        this.centerX = 0;
        this.centerY = 0;
        this.emit('init', this.init);
        return;
      case ServerType.META:
        this.meta = decodeMeta(reader);
        this.emit('meta', this.meta);
        return;
      case ServerType.DEATH:
        this.death = decodeDeath(reader);
        this.emit('death', this.death);
        return;
      case ServerType.PONG:
      case ServerType.ERROR:
      case ServerType.NOTICE:
      case ServerType.SCORE_RECEIPT: {
        const envelope = decodeEnvelope(type, reader);
        if (envelope.type === 'error') this.lastError = [envelope.code, envelope.reason];
        else if (envelope.type === 'notice') this.lastNotice = [envelope.kind, envelope.deadlineMs];
        else if (envelope.type === 'pong') this.lastPong = envelope.nonce;
        else this.lastScoreReceipt = envelope.receipt;
        this.emit(envelope.type, envelope);
        return;
      }
      default:
        // A frame type this client does not know: skipped by its length (docs/protocol.md).
        return;
    }
  }

  emit(kind, value) {
    if (this.onEvent) this.onEvent(kind, value);
  }

  clearPellets() {
    this.pelletX.length = 0;
    this.pelletY.length = 0;
    this.pelletColor.length = 0;
    this.pelletSize.length = 0;
  }

  /** @param {StateFrame} frame */
  applyState(frame) {
    const init = this.init;
    if (!init) throw new MirrorError('state frame before the init frame');
    const quantum = init.positionQuantum;
    const spacing = init.segmentSpacing;

    // 1. Removed snakes.
    for (const id of frame.removed) {
      const index = this.indexOf(id);
      if (index < 0) throw new MirrorError('removed an unknown snake');
      this.snakes.splice(index, 1);
    }

    // 2. Moves of the snakes known before this frame, in ascending id order.
    if (frame.moveCount !== this.snakes.length) {
      throw new MirrorError('move count differs from known snakes');
    }
    let nextExtension = 0;
    for (let index = 0; index < this.snakes.length; index++) {
      const snake = this.snakes[index];
      const code = frame.moves[index];
      let rx;
      let ry;
      if (code === MOVE_EXTENDED) {
        const extension = frame.extensions[nextExtension++];
        if (!extension) throw new MirrorError('missing extension');
        snake.length = (snake.length + extension.lengthDelta) >>> 0;
        snake.girth = (snake.girth + extension.girthDelta) >>> 0;
        if (extension.boostToggled) snake.boosting = !snake.boosting;
        rx = extension.dx;
        ry = extension.dy;
      } else {
        rx = (code % 3) - 1;
        ry = ((code / 3) | 0) - 1;
      }
      // Wrapping i32 arithmetic, as in Rust.
      const headX = (snake.headX + snake.velocityX + rx) | 0;
      const headY = (snake.headY + snake.velocityY + ry) | 0;
      snake.velocityX = (headX - snake.headX) | 0;
      snake.velocityY = (headY - snake.headY) | 0;
      snake.headX = headX;
      snake.headY = headY;
      if (this.trackBodies) advanceTrail(snake, quantum, spacing);
    }

    // 3. Entered snakes.
    for (const entry of frame.entered) {
      if (this.indexOf(entry.id) >= 0) throw new MirrorError('entered a known snake');
      if (entry.identity) {
        if (this.identities.size >= MAX_IDENTITIES) this.identities.clear();
        this.identities.set(entry.id, entry.identity);
      }
      const snake = new MirrorSnake(entry.id, entry.head, entry.velocity, entry.length, entry.girth, entry.boosting);
      if (this.trackBodies) {
        let x = f32(f32(entry.head[0]) * quantum);
        let y = f32(f32(entry.head[1]) * quantum);
        const steps = Math.min(entry.body.length, MAX_TRAIL_POINTS);
        for (let step = 0; step < steps; step++) {
          const k = entry.body[step];
          x = f32(x + f32(BODY_DIRECTIONS[k * 2] * spacing));
          y = f32(y + f32(BODY_DIRECTIONS[k * 2 + 1] * spacing));
          snake.trail.push(x, y);
        }
      }
      // Entered ids are ascending and usually few: insert each at its place.
      const index = this.indexOf(entry.id);
      if (index >= 0) throw new MirrorError('entered the same snake twice');
      this.snakes.splice(-index - 1, 0, snake);
    }

    // 4. The view follows the own head.
    const own = this.ownSnake();
    if (own) {
      this.centerX = own.headX;
      this.centerY = own.headY;
    }

    // 5. Cull pellets outside the view box (bounds inclusive).
    const minX = (this.centerX - init.viewHalfWidth) | 0;
    const minY = (this.centerY - init.viewHalfHeight) | 0;
    const maxX = (this.centerX + init.viewHalfWidth) | 0;
    const maxY = (this.centerY + init.viewHalfHeight) | 0;
    const px = this.pelletX;
    const py = this.pelletY;
    const pc = this.pelletColor;
    const ps = this.pelletSize;
    let kept = 0;
    for (let index = 0; index < px.length; index++) {
      const x = px[index];
      const y = py[index];
      if (x >= minX && x <= maxX && y >= minY && y <= maxY) {
        px[kept] = x;
        py[kept] = y;
        pc[kept] = pc[index];
        ps[kept] = ps[index];
        kept++;
      }
    }
    px.length = pc.length = py.length = ps.length = kept;

    // 6. Eaten pellets, by index into the culled list.
    const eaten = frame.eaten;
    if (eaten.length > 0) {
      if (eaten[eaten.length - 1] >= kept) throw new MirrorError('eaten pellet index out of range');
      let next = 0;
      let write = 0;
      for (let index = 0; index < kept; index++) {
        if (next < eaten.length && eaten[next] === index) {
          next++;
          continue;
        }
        px[write] = px[index];
        py[write] = py[index];
        pc[write] = pc[index];
        ps[write] = ps[index];
        write++;
      }
      px.length = pc.length = py.length = ps.length = write;
    }

    // 7. New pellets at the centre of their cell on the global pellet grid.
    const cell = Math.max(init.pelletCell, 1);
    const baseX = Math.floor(minX / cell);
    const baseY = Math.floor(minY / cell);
    const half = Math.floor(cell / 2);
    for (const packed of frame.newPellets) {
      px.push((((baseX + pelletCellX(packed)) * cell) | 0) + half);
      py.push((((baseY + pelletCellY(packed)) * cell) | 0) + half);
      pc.push(pelletColor(packed));
      ps.push(pelletSize(packed));
    }
    this.statesApplied++;
  }
}

/**
 * Lays trail points behind a moved head the way the simulation does: one point every
 * `spacing` units of travel, newest first, trimmed to the snake's length. f32 throughout,
 * like the Rust mirror.
 */
function advanceTrail(snake, quantum, spacing) {
  const headX = f32(f32(snake.headX) * quantum);
  const headY = f32(f32(snake.headY) * quantum);
  const trail = snake.trail;
  if (trail.length === 0) {
    trail.push(headX, headY);
    return;
  }
  let newestX = trail[0];
  let newestY = trail[1];
  const added = [];
  let restarted = false;
  for (;;) {
    const dx = f32(headX - newestX);
    const dy = f32(headY - newestY);
    const distance = f32(Math.sqrt(f32(f32(dx * dx) + f32(dy * dy))));
    if (Number.isNaN(distance) || distance < spacing || spacing <= 0) break;
    if (added.length === MAX_POINTS_PER_MOVE * 2) {
      restarted = true;
      break;
    }
    newestX = f32(newestX + f32(f32(dx / distance) * spacing));
    newestY = f32(newestY + f32(f32(dy / distance) * spacing));
    added.push(newestX, newestY);
  }
  if (restarted) {
    trail.length = 0;
    trail.push(headX, headY);
  } else if (added.length > 0) {
    // Newest first: the last point added goes to the front.
    const reversed = new Array(added.length);
    for (let index = 0; index < added.length; index += 2) {
      reversed[added.length - 2 - index] = added[index];
      reversed[added.length - 1 - index] = added[index + 1];
    }
    trail.unshift(...reversed);
  }
  const keep = Math.min(snake.length + 1, MAX_TRAIL_POINTS);
  if (trail.length > keep * 2) trail.length = keep * 2;
}

export { ProtocolError, Reader };
