// What one breach client knows: a port of crates/coil-breach/src/mirror.rs. It applies server
// messages exactly as the Rust client mirror does (the fixture test holds the two to the same
// state after every message of real matches), and it never trusts the bytes: a frame that
// does not fit what it holds (a state before init, an update for a player it does not hold, a
// slice outside the map) throws MirrorError, and the caller starts over.
//
// Beside the Rust mirror's state it records, for the renderer, which wall slices changed
// since the renderer last looked (`takeWallChanges`) and the tick each state frame was for.

import { decodeServerMessage, Phase } from './protocol.js';
import { Walls, builtInMap } from './map.js';

/** Kill feed lines kept (oldest dropped first), as mirror.rs. */
export const KILL_FEED_KEPT = 16;
/** Notices kept (oldest dropped first), as mirror.rs. */
export const NOTICES_KEPT = 8;
const WIRE_SLOTS = 16;

export class MirrorError extends Error {
  constructor(message) {
    super(message);
    this.name = 'MirrorError';
  }
}

function freshOwn() {
  return { x: 0, y: 0, facing: 0, health: 0, ammo: 0, reload: 0, alive: false, respawn: 0, charges: 0, ack: 0 };
}

export class BreachMirror {
  constructor() {
    this.reset();
    this.roster = [];
    this.killFeed = [];
    /** The custom lobby (null in quick play); kept across init, like the roster. */
    this.lobby = null;
    /** Notices received ({code, text}: refused lobby commands, a kick), oldest first. */
    this.notices = [];
    /** Called after each applied frame kind: (kind, value) — 'init', 'state', 'killFeed', 'roster', 'scoreboard', 'votes', 'lobby', 'notice'. */
    this.onFrame = null;
  }

  /** Everything but the roster, the kill feed, the lobby and the notices, as an init frame resets it. */
  reset() {
    this.init = null;
    this.map = null;
    this.walls = null;
    this.tick = 0;
    this.freshAfterInit = true;
    this.own = freshOwn();
    /** Others by slot: {qx, qy, facing, health} in half pixels and 1/256 turn, or null. */
    this.others = new Array(WIRE_SLOTS).fill(null);
    this.scores = [0, 0];
    /** Phase code and ticks left (255 before the first phase section). */
    this.phase = [255, 0];
    this.scoreboard = null;
    this.votes = [];
    this.shots = [];
    this.sounds = [];
    this.charges = [];
    this.blasts = [];
    this.lastState = null;
    /** Slices changed since the renderer last took them; null = redraw every slice. */
    this.wallChanges = null;
  }

  /** Applies one server message: every frame decoded first, then applied in order. */
  applyMessage(bytes) {
    const frames = decodeServerMessage(bytes);
    for (const frame of frames) this.applyFrame(frame);
  }

  applyFrame(frame) {
    if (frame.type === 'other') return;
    if (frame.type === 'init') {
      const init = frame.value;
      const map = builtInMap(init.mapId);
      if (!map) throw new MirrorError(`unknown map ${init.mapId}`);
      const { roster, killFeed } = this;
      this.reset();
      this.roster = roster;
      this.killFeed = killFeed;
      this.map = map;
      this.walls = new Walls(map);
      this.tick = init.tick;
      this.init = init;
      this.onFrame?.('init', init);
      return;
    }
    if (frame.type === 'notice') {
      // A notice needs nothing held: a player kicked before its first update gets only that.
      this.notices.push(frame.value);
      if (this.notices.length > NOTICES_KEPT) this.notices.splice(0, this.notices.length - NOTICES_KEPT);
      this.onFrame?.('notice', frame.value);
      return;
    }
    if (this.init === null) throw new MirrorError('a game frame before init');
    switch (frame.type) {
      case 'walls':
        this.applySlices(frame.value);
        break;
      case 'state':
        this.applyState(frame.value);
        break;
      case 'killFeed':
        this.killFeed.push(...frame.value);
        if (this.killFeed.length > KILL_FEED_KEPT) this.killFeed.splice(0, this.killFeed.length - KILL_FEED_KEPT);
        break;
      case 'roster':
        this.roster = frame.value;
        break;
      case 'scoreboard':
        this.scoreboard = frame.value;
        break;
      case 'votes':
        this.votes = frame.value;
        break;
      case 'lobby':
        this.lobby = frame.value;
        break;
      default:
        return;
    }
    this.onFrame?.(frame.type, frame.value);
  }

  applySlices({ indices, hitPoints }) {
    for (let i = 0; i < indices.length; i++) {
      if (!this.walls.setHitPoints(indices[i], hitPoints[i])) throw new MirrorError(`slice ${indices[i]} outside the map`);
      if (this.wallChanges !== null) this.wallChanges.push(indices[i]);
    }
  }

  applyState(state) {
    const steps = this.freshAfterInit ? 0 : state.gap;
    this.freshAfterInit = false;
    this.tick = (this.tick + steps) >>> 0;
    const countdown = Math.min(steps, 0xffff);
    const own = this.own;
    own.reload = Math.max(0, own.reload - Math.min(countdown, 255));
    own.respawn = Math.max(0, own.respawn - countdown);
    this.phase[1] = Math.max(0, this.phase[1] - steps);

    const update = state.own;
    if (update) {
      if (update.ackDelta !== null) own.ack = (own.ack + update.ackDelta) >>> 0;
      if (update.moved !== null) {
        own.x += update.moved[0];
        own.y += update.moved[1];
      }
      if (update.health !== null) own.health = update.health;
      if (update.ammo !== null) own.ammo = update.ammo;
      if (update.reload !== null) own.reload = update.reload;
      if (update.life !== null) {
        own.alive = update.life[0];
        own.respawn = update.life[1];
      }
      if (update.charges !== null) own.charges = update.charges;
      if (update.facing !== null) own.facing = update.facing;
    }
    // `entered` marks a player that entered in this frame (the interpolator starts its track
    // over); everyone else held is a continuation.
    for (const held of this.others) if (held !== null) held.entered = false;
    for (const entry of state.players) {
      const slot = entry.slot;
      if (entry.kind === 'leave') {
        if (this.others[slot] === null) throw new MirrorError(`leave for slot ${slot}, which is not held`);
        this.others[slot] = null;
      } else if (entry.kind === 'enter') {
        this.others[slot] = { qx: entry.x, qy: entry.y, facing: entry.facing, health: entry.health, entered: true };
      } else {
        const held = this.others[slot];
        if (held === null) throw new MirrorError(`update for slot ${slot}, which is not held`);
        if (entry.moved !== null) {
          held.qx += entry.moved[0];
          held.qy += entry.moved[1];
        }
        if (entry.facing !== null) held.facing = entry.facing;
        if (entry.health !== null) held.health = entry.health;
      }
    }
    this.applySlices(state.walls);
    if (state.scores !== null) this.scores = state.scores;
    if (state.phase !== null) {
      this.phase = [state.phase[0], state.phase[1]];
      if (state.phase[0] !== Phase.ENDING) this.scoreboard = null;
    }
    this.shots = state.shots;
    this.sounds = state.sounds;
    this.charges = state.charges;
    this.blasts = state.blasts;
    this.lastState = state;
    this.onFrame?.('state', state);
  }

  /** Slice indices changed since the last call, or null when every slice must be redrawn. */
  takeWallChanges() {
    const changes = this.wallChanges;
    this.wallChanges = [];
    return changes;
  }

  /** Whether the viewer is a spectator (init slot 0xff). */
  get spectating() {
    return this.init !== null && this.init.slot === 0xff;
  }

  rosterEntry(slot) {
    return this.roster.find((entry) => entry.slot === slot) ?? null;
  }

  teamOf(slot) {
    return this.rosterEntry(slot)?.team ?? null;
  }
}
