// Breach's maps and walls in the browser: the map file parser (a port of
// crates/coil-breach/src/map.rs), the slice grid with its hit points (walls.rs), and the one
// movement rule the server applies to every body (player.rs `step_movement`), which the
// client runs to predict its own player.
//
// Everything here is integers in sub-pixels (1/8 px), exactly as the Rust core computes them,
// so a prediction lands on the position the server will report. Nothing here touches the DOM,
// a socket or a clock.

import { BUILT_IN_MAPS } from './maps.js';

export const Material = Object.freeze({ EMPTY: 0, WOOD: 1, CONCRETE: 2, STEEL: 3 });
export const FULL_HIT_POINTS = Object.freeze([0, 25, 100, 255]);
const SUBPIXELS_PER_PIXEL = 8;
/** The longest collision sub-step (half a slice), as player.rs. */
const MOVE_SUB_STEP = 8;

const MIN_SIZE = 16;
const MAX_SIZE = 128;
const MAX_NAME = 32;
const MIN_SPAWN_CELLS = 4;

export class MapError extends Error {
  constructor(line, column, message) {
    super(column === 0 ? `map line ${line}: ${message}` : `map line ${line} column ${column}: ${message}`);
    this.name = 'MapError';
    this.line = line;
    this.column = column;
  }
}

function parseNumber(text, low, high, line, column, what) {
  if (/^\d+$/.test(text)) {
    const value = Number(text);
    if (value >= low && value <= high) return value;
  }
  throw new MapError(line, column, `${what} must be a whole number in ${low}..=${high}, got \`${text}\``);
}

/**
 * Parses a map file (the format is documented at the top of crates/coil-breach/src/map.rs).
 * @returns {{name: string, id: number, widthCells: number, heightCells: number, cellPixels: number, slicesPerCell: number, cells: Uint8Array, spawns: number[][][]}}
 */
export function parseMap(text) {
  const lines = text.split('\n');
  let at = 0;
  const next = () => (at < lines.length && !(at === lines.length - 1 && lines[at] === '') ? { number: at + 1, raw: lines[at++] } : null);
  const header = { name: null, id: null, size: null, cell: null, slices: null };
  let sawMagic = false;
  let lastLine = 0;
  for (;;) {
    const entry = next();
    if (!entry) throw new MapError(lastLine + 1, 0, 'file ended before `grid`');
    lastLine = entry.number;
    const line = entry.raw.replace(/\r$/, '');
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith(';')) continue;
    const space = trimmed.indexOf(' ');
    const key = space < 0 ? trimmed : trimmed.slice(0, space);
    const value = space < 0 ? '' : trimmed.slice(space + 1).trim();
    if (!sawMagic) {
      if (key !== 'breach-map') throw new MapError(entry.number, 1, 'expected `breach-map 1` first');
      if (value !== '1') throw new MapError(entry.number, 12, `unsupported format version \`${value}\` (only 1)`);
      sawMagic = true;
      continue;
    }
    const valueColumn = line.indexOf(value) + 1 || 1;
    if (key === 'grid') {
      if (value !== '') throw new MapError(entry.number, valueColumn, '`grid` takes no value');
      break;
    }
    if (!(key in header)) throw new MapError(entry.number, 1, `unknown header key \`${key}\``);
    if (header[key] !== null) throw new MapError(entry.number, 1, `\`${key}\` given twice`);
    if (key === 'name') {
      // eslint-disable-next-line no-control-regex
      if (value === '' || new TextEncoder().encode(value).length > MAX_NAME || /[\u0000-\u001f\u007f-\u009f]/.test(value)) {
        throw new MapError(entry.number, valueColumn, `name must be 1..=${MAX_NAME} printable characters`);
      }
      header.name = value;
    } else if (key === 'id') {
      header.id = parseNumber(value, 1, 255, entry.number, valueColumn, 'id');
    } else if (key === 'size') {
      const parts = value.split(/\s+/).filter((part) => part !== '');
      if (parts.length !== 2) throw new MapError(entry.number, valueColumn, 'size takes two numbers: width height');
      header.size = [
        parseNumber(parts[0], MIN_SIZE, MAX_SIZE, entry.number, valueColumn, 'width'),
        parseNumber(parts[1], MIN_SIZE, MAX_SIZE, entry.number, valueColumn, 'height'),
      ];
    } else if (key === 'cell') {
      header.cell = parseNumber(value, 4, 32, entry.number, valueColumn, 'cell');
    } else {
      header.slices = parseNumber(value, 1, 8, entry.number, valueColumn, 'slices');
    }
  }
  const gridLine = lastLine;
  for (const key of ['name', 'id', 'size', 'cell', 'slices']) {
    if (header[key] === null) throw new MapError(gridLine, 0, `header has no \`${key}\``);
  }
  const [width, height] = header.size;
  if (header.cell % header.slices !== 0 || header.cell / header.slices < 2) {
    throw new MapError(gridLine, 0, `cell ${header.cell} px does not divide into ${header.slices} slices of at least 2 px`);
  }
  const cells = new Uint8Array(width * height);
  const spawns = [[], []];
  for (let row = 0; row < height; row++) {
    const entry = next();
    if (!entry) throw new MapError(lastLine + 1, 0, `grid has ${row} rows, size says ${height}`);
    lastLine = entry.number;
    const line = entry.raw.replace(/\r$/, '');
    if (line.trim() === 'end') throw new MapError(entry.number, 1, `grid has ${row} rows, size says ${height}`);
    const characters = [...line];
    if (characters.length > width) throw new MapError(entry.number, width + 1, `grid row is longer than the width ${width}`);
    characters.forEach((character, column) => {
      let material;
      switch (character) {
        case '.':
          material = Material.EMPTY;
          break;
        case 'A':
        case 'B':
          spawns[character === 'B' ? 1 : 0].push([column, row]);
          material = Material.EMPTY;
          break;
        case 'w':
          material = Material.WOOD;
          break;
        case 'c':
          material = Material.CONCRETE;
          break;
        case '#':
          material = Material.STEEL;
          break;
        default:
          throw new MapError(entry.number, column + 1, `unknown grid character ${JSON.stringify(character)} (expected one of . A B w c #)`);
      }
      cells[row * width + column] = material;
    });
    if (characters.length < width) {
      throw new MapError(entry.number, characters.length + 1, `grid row has ${characters.length} cells, the width is ${width}`);
    }
  }
  const end = next();
  if (!end) throw new MapError(lastLine + 1, 0, 'file ended before `end`');
  if (end.raw.trim() !== 'end') throw new MapError(end.number, 1, `expected \`end\` after ${height} grid rows`);
  for (let entry = next(); entry; entry = next()) {
    const trimmed = entry.raw.trim();
    if (trimmed !== '' && !trimmed.startsWith(';')) throw new MapError(entry.number, 1, 'nothing may follow `end`');
  }
  for (const [team, letter] of [[0, 'A'], [1, 'B']]) {
    if (spawns[team].length < MIN_SPAWN_CELLS) {
      throw new MapError(gridLine, 0, `team ${letter} has ${spawns[team].length} spawn cells, needs at least ${MIN_SPAWN_CELLS}`);
    }
  }
  return {
    name: header.name,
    id: header.id,
    widthCells: width,
    heightCells: height,
    cellPixels: header.cell,
    slicesPerCell: header.slices,
    cells,
    spawns,
  };
}

let builtIn = null;

/** The built-in map with this id, or null (parsed once). */
export function builtInMap(id) {
  if (builtIn === null) builtIn = BUILT_IN_MAPS.map((text) => parseMap(text));
  return builtIn.find((map) => map.id === id) ?? null;
}

/** The slice grid of one match: materials from the map, hit points from the server. */
export class Walls {
  constructor(map) {
    const slices = map.slicesPerCell;
    this.map = map;
    this.width = map.widthCells * slices;
    this.height = map.heightCells * slices;
    this.slicePixels = map.cellPixels / slices;
    this.sliceSub = this.slicePixels * SUBPIXELS_PER_PIXEL;
    this.material = new Uint8Array(this.width * this.height);
    for (let y = 0; y < this.height; y++) {
      for (let x = 0; x < this.width; x++) {
        this.material[y * this.width + x] = map.cells[Math.floor(y / slices) * map.widthCells + Math.floor(x / slices)];
      }
    }
    this.hitPoints = new Uint8Array(this.material.length);
    for (let i = 0; i < this.material.length; i++) this.hitPoints[i] = FULL_HIT_POINTS[this.material[i]];
  }

  get sliceCount() {
    return this.material.length;
  }

  /** Whether the slice at slice coordinates (x, y) blocks; outside the map always does. */
  intact(x, y) {
    if (x < 0 || y < 0 || x >= this.width || y >= this.height) return true;
    return this.hitPoints[y * this.width + x] > 0;
  }

  /** Sets a slice's hit points as the server sends them; false for an index outside the map. */
  setHitPoints(index, hitPoints) {
    if (!Number.isInteger(index) || index < 0 || index >= this.hitPoints.length) return false;
    this.hitPoints[index] = hitPoints;
    return true;
  }

  /** Every slice whose hit points differ from the pristine map: [index, hit points] pairs. */
  damagedSlices() {
    const out = [];
    for (let i = 0; i < this.hitPoints.length; i++) {
      if (this.hitPoints[i] !== FULL_HIT_POINTS[this.material[i]]) out.push([i, this.hitPoints[i]]);
    }
    return out;
  }

  /**
   * Whether a box of half side `half` centred on (x, y) (sub-pixels, covering
   * [x − half, x + half)) overlaps an intact slice or leaves the map.
   */
  boxBlocked(x, y, half) {
    const s = this.sliceSub;
    const lowX = Math.floor((x - half) / s);
    const lowY = Math.floor((y - half) / s);
    const highX = Math.floor((x + half - 1) / s);
    const highY = Math.floor((y + half - 1) / s);
    for (let sy = lowY; sy <= highY; sy++) {
      for (let sx = lowX; sx <= highX; sx++) {
        if (this.intact(sx, sy)) return true;
      }
    }
    return false;
  }

  /**
   * Where a ray from (x0, y0) toward (x1, y1) (sub-pixels) first meets an intact slice, as the
   * fraction of the segment (1 when it meets none). The same exact grid walk as walls.rs
   * `walk`, so a tracer the server sent without its end stops where the server's bullet did.
   */
  firstIntactFraction(x0, y0, x1, y1) {
    const s = this.sliceSub;
    let cx = Math.floor(x0 / s);
    let cy = Math.floor(y0 / s);
    const ex = Math.floor(x1 / s);
    const ey = Math.floor(y1 / s);
    const dx = x1 - x0;
    const dy = y1 - y0;
    const stepX = Math.sign(dx);
    const stepY = Math.sign(dy);
    const adx = Math.abs(dx);
    const ady = Math.abs(dy);
    let nextX = stepX > 0 ? (cx + 1) * s - x0 : stepX < 0 ? x0 - cx * s : 0;
    let nextY = stepY > 0 ? (cy + 1) * s - y0 : stepY < 0 ? y0 - cy * s : 0;
    if (this.intact(cx, cy)) return 0;
    const budget = Math.abs(ex - cx) + Math.abs(ey - cy) + 2;
    for (let step = 0; step < budget; step++) {
      if (cx === ex && cy === ey) return 1;
      const xFirst = adx === 0 ? false : ady === 0 ? true : nextX * ady < nextY * adx;
      const tie = adx !== 0 && ady !== 0 && nextX * ady === nextY * adx;
      if (tie) {
        const t = nextX / adx;
        if (this.intact(cx + stepX, cy) || this.intact(cx, cy + stepY)) return t;
        cx += stepX;
        cy += stepY;
        nextX += s;
        nextY += s;
        if (this.intact(cx, cy)) return t;
      } else if (xFirst) {
        const t = nextX / adx;
        cx += stepX;
        nextX += s;
        if (this.intact(cx, cy)) return t;
      } else {
        const t = nextY / ady;
        cy += stepY;
        nextY += s;
        if (this.intact(cx, cy)) return t;
      }
    }
    return 1;
  }
}

/** The unit step of a move direction 0..=8, scaled by 256 (player.rs `direction_step`). */
export const DIRECTION_STEPS = Object.freeze([
  [0, 0],
  [256, 0],
  [181, 181],
  [0, 256],
  [-181, 181],
  [-256, 0],
  [-181, -181],
  [0, -256],
  [181, -181],
]);

/**
 * One tick of movement from (x, y) in sub-pixels, sliding along walls: exactly
 * `player::step_movement` with the init frame's `speeds[speed]` and `playerHalfSub`.
 * @returns {[number, number]}
 */
export function stepMovement(walls, x, y, direction, speedSubPerTick, halfSub) {
  const [unitX, unitY] = DIRECTION_STEPS[direction] ?? DIRECTION_STEPS[0];
  // Integer division toward zero, as Rust's `/` on i64.
  const totalX = Math.trunc((unitX * speedSubPerTick) / 256);
  const totalY = Math.trunc((unitY * speedSubPerTick) / 256);
  const steps = Math.trunc((Math.max(Math.abs(totalX), Math.abs(totalY)) + MOVE_SUB_STEP - 1) / MOVE_SUB_STEP);
  let leftX = totalX;
  let leftY = totalY;
  for (let i = 0; i < steps; i++) {
    const stepX = Math.max(-MOVE_SUB_STEP, Math.min(MOVE_SUB_STEP, leftX));
    if (stepX !== 0) {
      if (walls.boxBlocked(x + stepX, y, halfSub)) {
        leftX = 0;
      } else {
        x += stepX;
        leftX -= stepX;
      }
    }
    const stepY = Math.max(-MOVE_SUB_STEP, Math.min(MOVE_SUB_STEP, leftY));
    if (stepY !== 0) {
      if (walls.boxBlocked(x, y + stepY, halfSub)) {
        leftY = 0;
      } else {
        y += stepY;
        leftY -= stepY;
      }
    }
  }
  return [x, y];
}
