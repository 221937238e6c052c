// Breach on a 480×270 canvas, scaled up crisply.
//
// The canvas's backing store is exactly 480×270 logical pixels; CSS scales it by the largest
// whole number of *device* pixels that fits the window (device-pixel-ratio aware) with
// `image-rendering: pixelated`, so every logical pixel is a sharp square on any screen.
//
// Layers, bottom up: the terrain (floor, spawn zones and every wall slice, 2×2 px each, kept
// in a map-sized canvas and repainted slice by slice as the server reports damage, so a
// destroyed slice becomes a hole the floor shows through); the fog (everything outside the
// player's cone and near circle, cut where intact slices block the line of sight, computed
// from the same walls the client holds); then only what the server sent: teammates, the
// enemies in view (interpolated), the own player (predicted), tracers, charges and blasts.
// The fog is decoration: the renderer never draws a player, shot or charge the mirror does
// not hold, so nothing outside the view can be drawn because nothing outside it is known.

import { Material } from './map.js';
import { facingToRadians } from './protocol.js';

export const VIEW_WIDTH = 480;
export const VIEW_HEIGHT = 270;
/** The rifle's reach in pixels (weapons.rs RANGE_SUB), for tracers sent without their end. */
const RIFLE_RANGE_PX = 320;
const TRACER_MS = 140;
const BLAST_MS = 380;
const BLAST_RADIUS_PX = 30;
const PLAYER_RADIUS_PX = 4.5;
const CONE_RAYS = 220;
const NEAR_RAYS = 48;

export const PALETTE = Object.freeze({
  floor: [30, 35, 44],
  floorGrid: [35, 40, 50],
  spawn: [
    [25, 36, 54],
    [50, 30, 34],
  ],
  wood: [138, 90, 43],
  woodDamaged: [92, 58, 27],
  concrete: [125, 133, 144],
  concreteDamaged: [80, 86, 96],
  steel: [58, 65, 79],
  fog: 'rgba(4, 6, 10, 0.68)',
  fogSolid: 'rgba(4, 6, 10, 0.92)',
  team: ['#4aa3ff', '#ff6b4a'],
  teamRgb: [
    [74, 163, 255],
    [255, 107, 74],
  ],
  own: '#ffffff',
  tracer: '255, 224, 138',
  hit: '#ffffff',
  blast: '255, 150, 60',
});

/** The colour of a slice: its material, darker as it takes damage; null for open floor. */
export function sliceColor(material, hitPoints) {
  if (hitPoints === 0 || material === Material.EMPTY) return null;
  switch (material) {
    case Material.WOOD:
      return mix(PALETTE.woodDamaged, PALETTE.wood, hitPoints / 25);
    case Material.CONCRETE:
      return mix(PALETTE.concreteDamaged, PALETTE.concrete, hitPoints / 100);
    default:
      return PALETTE.steel;
  }
}

function mix(low, high, t) {
  const k = Math.max(0, Math.min(1, t));
  return [0, 1, 2].map((i) => Math.round(low[i] + (high[i] - low[i]) * k));
}

/**
 * The largest whole number of device pixels per logical pixel that fits the window, and the
 * CSS size that gives it.
 */
export function crispScale(cssWidth, cssHeight, devicePixelRatio) {
  const dpr = devicePixelRatio > 0 ? devicePixelRatio : 1;
  const scale = Math.max(1, Math.floor(Math.min((cssWidth * dpr) / VIEW_WIDTH, (cssHeight * dpr) / VIEW_HEIGHT)));
  return { scale, cssWidth: (VIEW_WIDTH * scale) / dpr, cssHeight: (VIEW_HEIGHT * scale) / dpr };
}

function makeCanvas(width, height) {
  if (typeof OffscreenCanvas !== 'undefined') return new OffscreenCanvas(width, height);
  const canvas = document.createElement('canvas');
  canvas.width = width;
  canvas.height = height;
  return canvas;
}

export class Renderer {
  /** @param {HTMLCanvasElement} canvas */
  constructor(canvas) {
    this.canvas = canvas;
    canvas.width = VIEW_WIDTH;
    canvas.height = VIEW_HEIGHT;
    this.context = canvas.getContext('2d', { alpha: false });
    this.context.imageSmoothingEnabled = false;
    this.terrain = null;
    this.terrainContext = null;
    this.terrainMap = null;
    this.fog = makeCanvas(VIEW_WIDTH, VIEW_HEIGHT);
    this.fogContext = this.fog.getContext('2d');
    this.camera = [0, 0];
    this.scale = 1;
    /** Effects waiting for their tick or fading out. */
    this.tracers = [];
    this.blasts = [];
    this.lastFogPolygon = [];
    /** What the last frame drew, for tests and the debug hook. */
    this.drawn = { players: [], own: null, tracers: 0, charges: 0, blasts: 0, fog: false };
  }

  /** Fits the canvas to a window of cssWidth × cssHeight CSS pixels. */
  resize(cssWidth, cssHeight, devicePixelRatio) {
    const fit = crispScale(cssWidth, cssHeight, devicePixelRatio);
    this.scale = fit.scale;
    this.canvas.style.width = `${fit.cssWidth}px`;
    this.canvas.style.height = `${fit.cssHeight}px`;
    return fit;
  }

  /** Paints the whole terrain of the mirror's map and walls (after an init). */
  paintTerrain(mirror) {
    const walls = mirror.walls;
    const map = mirror.map;
    const size = walls.slicePixels;
    const width = walls.width * size;
    const height = walls.height * size;
    if (!this.terrain || this.terrain.width !== width || this.terrain.height !== height) {
      this.terrain = makeCanvas(width, height);
      this.terrainContext = this.terrain.getContext('2d');
    }
    this.terrainMap = map;
    this.sliceSize = size;
    this.floorColors = new Array(walls.sliceCount);
    const image = this.terrainContext.createImageData(width, height);
    const data = image.data;
    const spawnCell = new Map();
    map.spawns.forEach((cells, team) => cells.forEach(([x, y]) => spawnCell.set(y * map.widthCells + x, team)));
    for (let sy = 0; sy < walls.height; sy++) {
      for (let sx = 0; sx < walls.width; sx++) {
        const index = sy * walls.width + sx;
        const cellX = Math.floor(sx / map.slicesPerCell);
        const cellY = Math.floor(sy / map.slicesPerCell);
        const spawn = spawnCell.get(cellY * map.widthCells + cellX);
        // A faint cell grid on the floor: one player width per square.
        const gridLine = sx % map.slicesPerCell === 0 || sy % map.slicesPerCell === 0;
        const floor = spawn !== undefined ? PALETTE.spawn[spawn] : gridLine ? PALETTE.floorGrid : PALETTE.floor;
        this.floorColors[index] = floor;
        const color = sliceColor(walls.material[index], walls.hitPoints[index]) ?? floor;
        for (let py = 0; py < size; py++) {
          for (let px = 0; px < size; px++) {
            const at = ((sy * size + py) * width + sx * size + px) * 4;
            data[at] = color[0];
            data[at + 1] = color[1];
            data[at + 2] = color[2];
            data[at + 3] = 255;
          }
        }
      }
    }
    this.terrainContext.putImageData(image, 0, 0);
  }

  /** Repaints the slices that changed (a hole shows the floor). */
  paintSlices(mirror, indices) {
    const walls = mirror.walls;
    const size = this.sliceSize;
    const context = this.terrainContext;
    for (const index of indices) {
      const color = sliceColor(walls.material[index], walls.hitPoints[index]) ?? this.floorColors[index];
      context.fillStyle = `rgb(${color[0]}, ${color[1]}, ${color[2]})`;
      context.fillRect((index % walls.width) * size, Math.floor(index / walls.width) * size, size, size);
    }
  }

  /** Keeps the terrain in step with the mirror's walls. */
  syncTerrain(mirror) {
    if (!mirror.walls) return;
    const changes = mirror.takeWallChanges();
    if (changes === null || this.terrainMap !== mirror.map || !this.terrain) this.paintTerrain(mirror);
    else if (changes.length > 0) this.paintSlices(mirror, changes);
  }

  /** A shot to draw: from (x, y) px, at `tick` (shown when the render time gets there). */
  addShot(shot, from, tick, now, walls, team) {
    let end;
    if (shot.seen) {
      end = [from[0] + shot.dx, from[1] + shot.dy];
    } else {
      // Only the direction was sent: draw to where the bullet met the walls the client holds.
      const angle = (shot.direction / 256) * Math.PI * 2;
      const far = [from[0] + Math.cos(angle) * RIFLE_RANGE_PX, from[1] + Math.sin(angle) * RIFLE_RANGE_PX];
      const t = walls ? walls.firstIntactFraction(from[0] * 8, from[1] * 8, far[0] * 8, far[1] * 8) : 1;
      end = [from[0] + (far[0] - from[0]) * t, from[1] + (far[1] - from[1]) * t];
    }
    this.tracers.push({ from, end, tick, born: null, queuedAt: now, hit: shot.hitPlayer && shot.seen, team });
  }

  addBlast(x, y, now) {
    this.blasts.push({ x, y, born: now });
  }

  clearEffects() {
    this.tracers.length = 0;
    this.blasts.length = 0;
  }

  /** Logical canvas coordinates of a map point in pixels, for the last drawn frame. */
  toCanvas(x, y) {
    return [x - this.camera[0], y - this.camera[1]];
  }

  /**
   * Draws one frame.
   * @param {object} frame
   * @param {import('./mirror.js').BreachMirror} frame.mirror
   * @param {[number, number] | null} frame.own  own position in pixels (predicted), or null
   * @param {number} frame.facing  own facing, 1/65536 turn (the mouse's, for the cone)
   * @param {import('./interpolate.js').Interpolator} frame.others
   * @param {number} frame.renderTick
   * @param {number} frame.now  ms
   * @param {[number, number] | null} frame.focus  camera centre when there is no own player
   * @param {[number, number] | null} frame.pointer  crosshair, logical canvas pixels
   */
  draw(frame) {
    const { mirror, now } = frame;
    const context = this.context;
    const drawn = { players: [], own: null, tracers: 0, charges: 0, blasts: 0, fog: false };
    this.drawn = drawn;
    context.fillStyle = 'rgb(10, 12, 16)';
    context.fillRect(0, 0, VIEW_WIDTH, VIEW_HEIGHT);
    if (!mirror.init || !mirror.walls) return;
    this.syncTerrain(mirror);

    const mapWidth = this.terrain.width;
    const mapHeight = this.terrain.height;
    const centre = frame.own ?? frame.focus ?? [mapWidth / 2, mapHeight / 2];
    const clampAxis = (value, view, size) => (size <= view ? Math.round((size - view) / 2) : Math.max(0, Math.min(size - view, Math.round(value - view / 2))));
    this.camera = [clampAxis(centre[0], VIEW_WIDTH, mapWidth), clampAxis(centre[1], VIEW_HEIGHT, mapHeight)];
    const [cx, cy] = this.camera;
    context.drawImage(this.terrain, -cx, -cy);

    // Fog: a player sees its cone and near circle; a spectator sees everything.
    if (!mirror.spectating) {
      this.drawFog(frame);
      drawn.fog = true;
    }

    const ownTeam = mirror.init.team;
    // Charges the server sent (own team's always, the enemy's only in view).
    for (const charge of mirror.charges) {
      const blink = Math.floor(now / 120) % 2 === 0 || charge.fuse > 20;
      const [x, y] = this.toCanvas(charge.x, charge.y);
      context.fillStyle = charge.friendly ? PALETTE.team[ownTeam === 1 ? 1 : 0] : blink ? '#ff3030' : '#701010';
      context.fillRect(Math.round(x) - 1, Math.round(y) - 1, 3, 3);
      drawn.charges++;
    }

    // Others: only slots the mirror holds, at the interpolated time.
    for (let slot = 0; slot < 16; slot++) {
      const at = frame.others.sample(slot, frame.renderTick);
      if (at === null) continue;
      const team = mirror.teamOf(slot) ?? (ownTeam < 2 ? 1 - ownTeam : 0);
      this.drawPlayer(at.x, at.y, (at.facing / 256) * Math.PI * 2, PALETTE.team[team], false, at.health);
      drawn.players.push({ slot, team, x: at.x, y: at.y });
    }

    // The own player, predicted.
    if (frame.own && mirror.own.alive && !mirror.spectating) {
      const team = ownTeam === 1 ? 1 : 0;
      this.drawPlayer(frame.own[0], frame.own[1], facingToRadians(frame.facing), PALETTE.team[team], true, mirror.own.health);
      drawn.own = { x: frame.own[0], y: frame.own[1] };
    }

    // Tracers, each shown from the render time of its tick, fading out.
    context.lineWidth = 1;
    this.tracers = this.tracers.filter((tracer) => {
      if (tracer.born === null) {
        // Others' shots wait for the delayed timeline; own shots have tick −∞.
        if (tracer.tick > frame.renderTick && now - tracer.queuedAt < 400) return true;
        tracer.born = now;
      }
      const age = now - tracer.born;
      if (age > TRACER_MS) return false;
      const alpha = 1 - age / TRACER_MS;
      const [x0, y0] = this.toCanvas(tracer.from[0], tracer.from[1]);
      const [x1, y1] = this.toCanvas(tracer.end[0], tracer.end[1]);
      context.strokeStyle = `rgba(${PALETTE.tracer}, ${alpha.toFixed(3)})`;
      context.beginPath();
      context.moveTo(x0 + 0.5, y0 + 0.5);
      context.lineTo(x1 + 0.5, y1 + 0.5);
      context.stroke();
      if (tracer.hit) {
        context.fillStyle = PALETTE.hit;
        context.fillRect(Math.round(x1) - 1, Math.round(y1) - 1, 2, 2);
      }
      drawn.tracers++;
      return true;
    });

    this.blasts = this.blasts.filter((blast) => {
      const age = now - blast.born;
      if (age > BLAST_MS) return false;
      const t = age / BLAST_MS;
      const [x, y] = this.toCanvas(blast.x, blast.y);
      context.fillStyle = `rgba(${PALETTE.blast}, ${(0.85 * (1 - t)).toFixed(3)})`;
      context.beginPath();
      context.arc(x, y, 4 + BLAST_RADIUS_PX * Math.sqrt(t), 0, Math.PI * 2);
      context.fill();
      drawn.blasts++;
      return true;
    });

    if (frame.pointer) {
      const [px, py] = frame.pointer.map(Math.round);
      context.fillStyle = 'rgba(255, 255, 255, 0.85)';
      context.fillRect(px - 3, py, 2, 1);
      context.fillRect(px + 2, py, 2, 1);
      context.fillRect(px, py - 3, 1, 2);
      context.fillRect(px, py + 2, 1, 2);
    }
  }

  drawPlayer(x, y, facingRadians, color, own, health) {
    const context = this.context;
    const [sx, sy] = this.toCanvas(x, y);
    context.fillStyle = color;
    context.beginPath();
    context.arc(sx, sy, PLAYER_RADIUS_PX, 0, Math.PI * 2);
    context.fill();
    if (own) {
      context.strokeStyle = PALETTE.own;
      context.lineWidth = 1;
      context.beginPath();
      context.arc(sx, sy, PLAYER_RADIUS_PX + 0.5, 0, Math.PI * 2);
      context.stroke();
    }
    // The facing: a short barrel.
    context.strokeStyle = own ? PALETTE.own : 'rgba(255, 255, 255, 0.8)';
    context.lineWidth = 1;
    context.beginPath();
    context.moveTo(sx, sy);
    context.lineTo(sx + Math.cos(facingRadians) * 7, sy + Math.sin(facingRadians) * 7);
    context.stroke();
    if (!own && health < 100) {
      context.fillStyle = 'rgba(0, 0, 0, 0.6)';
      context.fillRect(Math.round(sx) - 5, Math.round(sy) - 8, 10, 2);
      context.fillStyle = health > 50 ? '#6fdc6f' : health > 25 ? '#f2b84b' : '#f06464';
      context.fillRect(Math.round(sx) - 5, Math.round(sy) - 8, Math.max(1, Math.round(health / 10)), 2);
    }
  }

  /**
   * The fog: a dark layer with the visible area cut out. The visible area is a polygon of rays
   * from the player, `coneHalfAngle` either side of the facing out to `viewRangePx`, and all
   * round out to `nearRadiusPx`, each stopped by the first intact slice.
   */
  drawFog(frame) {
    const { mirror } = frame;
    const fog = this.fogContext;
    fog.globalCompositeOperation = 'source-over';
    fog.clearRect(0, 0, VIEW_WIDTH, VIEW_HEIGHT);
    const alive = frame.own && mirror.own.alive;
    fog.fillStyle = alive ? PALETTE.fog : PALETTE.fogSolid;
    fog.fillRect(0, 0, VIEW_WIDTH, VIEW_HEIGHT);
    this.lastFogPolygon = [];
    if (alive) {
      const polygon = this.visibility(mirror, frame.own, facingToRadians(frame.facing));
      this.lastFogPolygon = polygon;
      fog.globalCompositeOperation = 'destination-out';
      fog.fillStyle = '#000';
      fog.beginPath();
      polygon.forEach(([x, y], index) => {
        const [sx, sy] = this.toCanvas(x, y);
        if (index === 0) fog.moveTo(sx, sy);
        else fog.lineTo(sx, sy);
      });
      fog.closePath();
      fog.fill();
      fog.globalCompositeOperation = 'source-over';
    }
    this.context.drawImage(this.fog, 0, 0);
  }

  /** Whether a map point (px) was inside the last frame's unfogged area (spectators: all). */
  inView(x, y) {
    if (!this.drawn.fog) return true;
    const polygon = this.lastFogPolygon;
    let inside = false;
    for (let i = 0, j = polygon.length - 1; i < polygon.length; j = i++) {
      const [xi, yi] = polygon[i];
      const [xj, yj] = polygon[j];
      if (yi > y !== yj > y && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside;
    }
    return inside;
  }

  /** The colour [r, g, b] the last frame drew at a map point (px), or null off screen. */
  pixelAt(x, y) {
    const [cx, cy] = this.toCanvas(x, y).map(Math.floor);
    if (cx < 0 || cy < 0 || cx >= VIEW_WIDTH || cy >= VIEW_HEIGHT) return null;
    const [r, g, b] = this.context.getImageData(cx, cy, 1, 1).data;
    return [r, g, b];
  }

  /** The visibility polygon (map pixels) around `eye` facing `facing` radians. */
  visibility(mirror, eye, facing) {
    const init = mirror.init;
    const half = (init.coneHalfAngle / 65536) * Math.PI * 2;
    const walls = mirror.walls;
    const ex = eye[0] * 8;
    const ey = eye[1] * 8;
    const points = [];
    const ray = (angle, range) => {
      const tx = ex + Math.cos(angle) * range * 8;
      const ty = ey + Math.sin(angle) * range * 8;
      const t = walls.firstIntactFraction(Math.round(ex), Math.round(ey), Math.round(tx), Math.round(ty));
      // A ray stops at the near edge of the slice it meets; go a pixel in so the wall face
      // the player looks at is lit.
      const reach = Math.min(range, t * range + (t < 1 ? 1 : 0));
      points.push([eye[0] + Math.cos(angle) * reach, eye[1] + Math.sin(angle) * reach]);
    };
    for (let i = 0; i <= CONE_RAYS; i++) ray(facing - half + (2 * half * i) / CONE_RAYS, init.viewRangePx);
    const outside = Math.PI * 2 - 2 * half;
    for (let i = 0; i <= NEAR_RAYS; i++) ray(facing + half + (outside * i) / NEAR_RAYS, init.nearRadiusPx);
    return points;
  }
}
