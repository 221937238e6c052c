// Canvas rendering of the mirrored world at the display's frame rate.
//
// State arrives at the room's tick rate (20 Hz); the screen refreshes at 60 Hz or more. Every
// snake is drawn where its prediction says it is now: `head + velocity · (time since the state
// / tick)`, the same prediction the protocol uses, so the next state only corrects it by the
// residual (at most a unit or two). That correction is not shown as a jump: it is blended out
// over ~80 ms. The own snake needs no extra latency hiding because nothing is drawn behind the
// present, and its eyes follow the pointer at once.
//
// This module reads the mirror and never changes it; it owns no socket and no DOM besides
// the canvas it is given.

const SKIN_COLORS = [
  '#5ad1a0', '#f0a35a', '#5ab0f0', '#e85a8a', '#c8d15a', '#a07af0', '#f0e05a', '#5af0e0',
  '#f07a5a', '#7af05a', '#f05ad7', '#5a7af0', '#d1a05a', '#9ad1f0', '#f0c8a0', '#b0f0a0',
];
const PELLET_COLORS = [
  '#ff6b6b', '#ffa94d', '#ffd43b', '#a9e34b', '#69db7c', '#38d9a9', '#3bc9db', '#4dabf7',
  '#748ffc', '#9775fa', '#da77f2', '#f783ac', '#ffffff', '#ced4da', '#ffec99', '#b2f2bb',
];
/** Pellet radius in world units by size class 0..3. */
const PELLET_RADIUS = [2.5, 3.5, 4.5, 5.5];
/** Longest a state may be extrapolated, in ticks, before the snake waits for the next one. */
const MAX_EXTRAPOLATION = 1.5;
/** Time constant of the blend that hides a prediction correction, in milliseconds. */
const CORRECTION_MS = 80;
/** A correction larger than this (world units) is a jump (respawn, resync): no blending. */
const MAX_BLENDED_CORRECTION = 48;

/**
 * Where each snake is drawn: the predicted head plus a decaying correction offset.
 */
export class Motion {
  constructor() {
    this.stateTime = 0;
    this.tickMs = 50;
    /** id → {offsetX, offsetY, x, y} (last drawn head, world units). */
    this.drawn = new Map();
  }

  reset() {
    this.drawn.clear();
  }

  /** Call right after the mirror applied a state frame. */
  onState(mirror, now) {
    const init = mirror.init;
    if (!init) return;
    this.tickMs = 1000 / init.tickRate;
    const q = init.positionQuantum;
    const seen = new Set();
    for (const snake of mirror.snakes) {
      seen.add(snake.id);
      const previous = this.drawn.get(snake.id);
      const baseX = snake.headX * q;
      const baseY = snake.headY * q;
      let offsetX = 0;
      let offsetY = 0;
      if (previous) {
        // Draw continues from where the snake was last shown.
        offsetX = previous.x - baseX;
        offsetY = previous.y - baseY;
        if (Math.hypot(offsetX, offsetY) > MAX_BLENDED_CORRECTION) {
          offsetX = 0;
          offsetY = 0;
        }
      }
      this.drawn.set(snake.id, { offsetX, offsetY, x: baseX, y: baseY });
    }
    for (const id of this.drawn.keys()) {
      if (!seen.has(id)) this.drawn.delete(id);
    }
    this.stateTime = now;
  }

  /** Progress since the last state, in ticks (0 … MAX_EXTRAPOLATION). */
  alpha(now) {
    return Math.min(Math.max((now - this.stateTime) / this.tickMs, 0), MAX_EXTRAPOLATION);
  }

  /** Drawn head of `snake` at `now`, world units; remembers it for the next correction. */
  head(snake, q, now) {
    const alpha = this.alpha(now);
    let x = (snake.headX + snake.velocityX * alpha) * q;
    let y = (snake.headY + snake.velocityY * alpha) * q;
    const entry = this.drawn.get(snake.id);
    if (entry) {
      const decay = Math.exp(-(now - this.stateTime) / CORRECTION_MS);
      x += entry.offsetX * decay;
      y += entry.offsetY * decay;
      entry.x = x;
      entry.y = y;
    }
    return [x, y];
  }
}

export class Renderer {
  /** @param {HTMLCanvasElement | OffscreenCanvas} canvas */
  constructor(canvas) {
    this.canvas = canvas;
    this.context = canvas.getContext('2d', { alpha: false });
    this.width = canvas.width;
    this.height = canvas.height;
    this.pixelRatio = 1;
    /** Camera centre in world units and pixels per world unit, of the last frame. */
    this.cameraX = 0;
    this.cameraY = 0;
    this.scale = 1;
    this.lastOwnHead = null;
    this.pelletBuckets = PELLET_COLORS.map(() => []);
  }

  /** Matches the canvas to its CSS size and the device pixel ratio. */
  resize(cssWidth, cssHeight, pixelRatio) {
    this.pixelRatio = pixelRatio;
    this.width = Math.max(1, Math.round(cssWidth * pixelRatio));
    this.height = Math.max(1, Math.round(cssHeight * pixelRatio));
    if (this.canvas.width !== this.width) this.canvas.width = this.width;
    if (this.canvas.height !== this.height) this.canvas.height = this.height;
  }

  /** Screen position (CSS pixels) of a world point under the last frame's camera. */
  toScreen(x, y) {
    return [
      ((x - this.cameraX) * this.scale + this.width / 2) / this.pixelRatio,
      ((y - this.cameraY) * this.scale + this.height / 2) / this.pixelRatio,
    ];
  }

  /**
   * Draws one frame.
   * @param {import('./mirror.js').ClientMirror} mirror
   * @param {Motion} motion
   * @param {number} now  milliseconds (performance.now())
   * @param {{aimAngle?: number}} own  what the local player does right now
   */
  draw(mirror, motion, now, own = {}) {
    const ctx = this.context;
    const init = mirror.init;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = '#10141c';
    ctx.fillRect(0, 0, this.width, this.height);
    if (!init) return;
    const q = init.positionQuantum;

    // Camera: the own head as drawn this frame, else where the view last was. The zoom shows
    // the server's view box edge to edge on the wider screen axis and never more.
    const ownSnake = mirror.ownSnake();
    let ownHead = null;
    if (ownSnake) {
      ownHead = motion.head(ownSnake, q, now);
      this.cameraX = ownHead[0];
      this.cameraY = ownHead[1];
    } else {
      this.cameraX = mirror.centerX * q;
      this.cameraY = mirror.centerY * q;
    }
    this.lastOwnHead = ownHead;
    const viewWidth = 2 * init.viewHalfWidth * q;
    const viewHeight = 2 * init.viewHalfHeight * q;
    this.scale = Math.max(this.width / viewWidth, this.height / viewHeight);
    const scale = this.scale;
    ctx.setTransform(scale, 0, 0, scale, this.width / 2 - this.cameraX * scale, this.height / 2 - this.cameraY * scale);
    const halfW = this.width / 2 / scale;
    const halfH = this.height / 2 / scale;
    const left = this.cameraX - halfW;
    const right = this.cameraX + halfW;
    const top = this.cameraY - halfH;
    const bottom = this.cameraY + halfH;

    this.drawGrid(ctx, left, right, top, bottom);
    this.drawEdge(ctx, init.arenaRadius, left, right, top, bottom);
    this.drawPellets(ctx, mirror, q, left - 8, right + 8, top - 8, bottom + 8);

    // Bigger snakes underneath, the own snake on top.
    const snakes = mirror.snakes;
    const order = snakes.slice().sort((a, b) => b.girth - a.girth);
    const heads = new Map();
    for (const snake of order) {
      if (snake === ownSnake) continue;
      heads.set(snake.id, this.drawSnake(ctx, snake, mirror.identity(snake.id), init, motion, now, null));
    }
    if (ownSnake) {
      const identity = mirror.identity(ownSnake.id);
      heads.set(ownSnake.id, this.drawSnake(ctx, ownSnake, identity, init, motion, now, own.aimAngle ?? null));
    }

    // Names over the other snakes.
    ctx.font = `${(12 * this.pixelRatio) / scale}px system-ui, sans-serif`;
    ctx.textAlign = 'center';
    ctx.fillStyle = 'rgba(255, 255, 255, 0.85)';
    for (const snake of snakes) {
      if (snake === ownSnake) continue;
      const identity = mirror.identity(snake.id);
      const head = heads.get(snake.id);
      if (!identity || !head) continue;
      ctx.fillText(identity.name, head[0], head[1] - snake.girth / 4 - 10);
    }
  }

  /**
   * Background grid, drawn in screen pixels as one-pixel rectangles: axis-aligned fills on
   * whole pixels are the cheapest thing a 2D canvas draws (a scaled pattern or anti-aliased
   * lines cost several milliseconds a frame on a CPU-rasterized canvas).
   */
  drawGrid(ctx, left, right, top, bottom) {
    const step = 64;
    const scale = this.scale;
    const width = this.width;
    const height = this.height;
    ctx.save();
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = 'rgba(255, 255, 255, 0.045)';
    const line = Math.max(1, Math.round(this.pixelRatio));
    for (let x = Math.ceil(left / step) * step; x <= right; x += step) {
      ctx.fillRect(Math.round((x - this.cameraX) * scale + width / 2), 0, line, height);
    }
    for (let y = Math.ceil(top / step) * step; y <= bottom; y += step) {
      ctx.fillRect(0, Math.round((y - this.cameraY) * scale + height / 2), width, line);
    }
    ctx.restore();
  }

  drawEdge(ctx, radius, left, right, top, bottom) {
    // Only when the edge can be on screen.
    const far = Math.max(Math.hypot(left, top), Math.hypot(right, top), Math.hypot(left, bottom), Math.hypot(right, bottom));
    if (far < radius) return;
    ctx.beginPath();
    ctx.rect(left, top, right - left, bottom - top);
    ctx.arc(0, 0, radius, 0, Math.PI * 2, true);
    ctx.fillStyle = 'rgba(120, 20, 30, 0.35)';
    ctx.fill('evenodd');
    ctx.beginPath();
    ctx.arc(0, 0, radius, 0, Math.PI * 2);
    ctx.strokeStyle = '#f06464';
    ctx.lineWidth = 4;
    ctx.stroke();
  }

  drawPellets(ctx, mirror, q, left, right, top, bottom) {
    const buckets = this.pelletBuckets;
    for (const bucket of buckets) bucket.length = 0;
    const count = mirror.pelletCount();
    for (let index = 0; index < count; index++) {
      const x = mirror.pelletX[index] * q;
      const y = mirror.pelletY[index] * q;
      if (x < left || x > right || y < top || y > bottom) continue;
      buckets[mirror.pelletColor[index]].push(x, y, PELLET_RADIUS[mirror.pelletSize[index]]);
    }
    for (let color = 0; color < buckets.length; color++) {
      const bucket = buckets[color];
      if (bucket.length === 0) continue;
      ctx.beginPath();
      for (let index = 0; index < bucket.length; index += 3) {
        const x = bucket[index];
        const y = bucket[index + 1];
        const r = bucket[index + 2];
        ctx.moveTo(x + r, y);
        ctx.arc(x, y, r, 0, Math.PI * 2);
      }
      ctx.fillStyle = PELLET_COLORS[color];
      ctx.fill();
    }
  }

  /** Draws one snake; returns its drawn head (world units). */
  drawSnake(ctx, snake, identity, init, motion, now, aimAngle) {
    const head = motion.head(snake, init.positionQuantum, now);
    const girth = Math.max(snake.girth / 4, 1);
    const trail = snake.trail;
    const points = Math.min(trail.length / 2, snake.length);
    ctx.lineCap = 'round';
    ctx.lineJoin = 'round';
    ctx.beginPath();
    ctx.moveTo(head[0], head[1]);
    for (let index = 0; index < points; index++) ctx.lineTo(trail[index * 2], trail[index * 2 + 1]);
    if (points === 0) ctx.lineTo(head[0] + 0.01, head[1]);
    const color = SKIN_COLORS[(identity ? identity.skin : snake.id) % SKIN_COLORS.length];
    // A second, wider stroke is the costliest thing on screen (about a quarter of a crowded
    // frame), so only boosting snakes get their glow outline.
    if (snake.boosting) {
      ctx.strokeStyle = 'rgba(255, 255, 255, 0.5)';
      ctx.lineWidth = girth * 2 + 4;
      ctx.stroke();
    }
    ctx.strokeStyle = color;
    ctx.lineWidth = girth * 2;
    ctx.stroke();

    // Eyes: along the aim for the own snake (instant feedback), else along the velocity.
    const angle = aimAngle ?? Math.atan2(snake.velocityY, snake.velocityX);
    const cos = Math.cos(angle);
    const sin = Math.sin(angle);
    const eyeForward = girth * 0.45;
    const eyeSide = girth * 0.5;
    const eyeRadius = Math.max(girth * 0.32, 1.2);
    ctx.fillStyle = '#ffffff';
    ctx.beginPath();
    for (const side of [-1, 1]) {
      const ex = head[0] + cos * eyeForward - sin * eyeSide * side;
      const ey = head[1] + sin * eyeForward + cos * eyeSide * side;
      ctx.moveTo(ex + eyeRadius, ey);
      ctx.arc(ex, ey, eyeRadius, 0, Math.PI * 2);
    }
    ctx.fill();
    ctx.fillStyle = '#111111';
    ctx.beginPath();
    for (const side of [-1, 1]) {
      const ex = head[0] + cos * (eyeForward + eyeRadius * 0.35) - sin * eyeSide * side;
      const ey = head[1] + sin * (eyeForward + eyeRadius * 0.35) + cos * eyeSide * side;
      ctx.moveTo(ex + eyeRadius * 0.55, ey);
      ctx.arc(ex, ey, eyeRadius * 0.55, 0, Math.PI * 2);
    }
    ctx.fill();
    return head;
  }
}

export { SKIN_COLORS };
