// Where other players are drawn: between the two server snapshots around a render time
// ~100 ms (three ticks) behind the newest one, so they move smoothly at 30 Hz states and
// jitter in arrival does not show.
//
// Time is the server's tick, estimated on the local clock: each state frame's tick is
// compared with the running estimate and the estimate is nudged toward it (snapped when far
// off), so the render time advances at the tick rate between frames. Only what the mirror
// holds is ever drawn: a player the server stopped sending (out of view, dead, gone) is
// dropped at once, and a newly seen one is drawn at once at its first position and then
// follows the delayed timeline.

/** Render this many ticks behind the newest state (100 ms at 30 Hz). */
export const INTERPOLATION_DELAY_TICKS = 3;
/** Snapshots kept per player (a second at 30 Hz). */
const TRACK_LENGTH = 30;
/** How far the estimate moves toward each state's tick (per state). */
const CLOCK_GAIN = 0.1;
/** Beyond this many ticks of error the estimate jumps (init, a long stall). */
const CLOCK_SNAP_TICKS = 8;

export class ServerClock {
  constructor(tickMs) {
    this.tickMs = tickMs;
    this.tick = null;
    this.at = 0;
  }

  reset() {
    this.tick = null;
  }

  /** The estimated server tick (fractional) at local time `now` (ms). */
  estimate(now) {
    if (this.tick === null) return 0;
    return this.tick + (now - this.at) / this.tickMs;
  }

  /** A state for `tick` arrived at `now`. */
  observe(tick, now) {
    const estimate = this.estimate(now);
    if (this.tick === null || Math.abs(tick - estimate) > CLOCK_SNAP_TICKS) {
      this.tick = tick;
    } else {
      this.tick = estimate + (tick - estimate) * CLOCK_GAIN;
    }
    this.at = now;
  }
}

export class Interpolator {
  constructor(tickMs = 1000 / 30, delayTicks = INTERPOLATION_DELAY_TICKS) {
    this.clock = new ServerClock(tickMs);
    this.delayTicks = delayTicks;
    /** Per wire slot: snapshots {tick, qx, qy, facing, health}, oldest first, or null. */
    this.tracks = new Array(16).fill(null);
    this.newestTick = 0;
  }

  reset() {
    this.tracks.fill(null);
    this.clock.reset();
  }

  /** Records what the mirror holds after a state frame. */
  onState(mirror, now) {
    const tick = mirror.tick;
    this.newestTick = tick;
    this.clock.observe(tick, now);
    for (let slot = 0; slot < this.tracks.length; slot++) {
      const held = mirror.others[slot];
      if (held === null) {
        this.tracks[slot] = null;
        continue;
      }
      const sample = { tick, qx: held.qx, qy: held.qy, facing: held.facing, health: held.health };
      let track = this.tracks[slot];
      if (track === null || held.entered || track[track.length - 1].tick >= tick) {
        // A new occupant, or a new match: nothing to interpolate from.
        track = this.tracks[slot] = [];
      }
      track.push(sample);
      if (track.length > TRACK_LENGTH) track.shift();
    }
  }

  /** The tick others are drawn at, at local time `now`. */
  renderTick(now) {
    return Math.min(this.clock.estimate(now), this.newestTick) - this.delayTicks;
  }

  /**
   * Where `slot` is drawn at render tick `at`: {x, y} in pixels, facing in 1/256 turn
   * (fractional), health; null when the slot is not held.
   */
  sample(slot, at) {
    const track = this.tracks[slot];
    if (track === null) return null;
    const first = track[0];
    if (at <= first.tick || track.length === 1) return toPixels(first, first, 0);
    for (let i = 1; i < track.length; i++) {
      const b = track[i];
      if (at <= b.tick) {
        const a = track[i - 1];
        return toPixels(a, b, (at - a.tick) / (b.tick - a.tick));
      }
    }
    const last = track[track.length - 1];
    return toPixels(last, last, 0);
  }
}

function toPixels(a, b, t) {
  // Facing bytes wrap: turn the short way round.
  let turn = b.facing - a.facing;
  if (turn > 128) turn -= 256;
  if (turn < -128) turn += 256;
  return {
    // Half pixels → pixels, at the centre of the half-pixel cell the server rounded down to.
    x: (a.qx + (b.qx - a.qx) * t) / 2 + 0.25,
    y: (a.qy + (b.qy - a.qy) * t) / 2 + 0.25,
    facing: (a.facing + turn * t + 256) % 256,
    health: t < 1 ? a.health : b.health,
  };
}
