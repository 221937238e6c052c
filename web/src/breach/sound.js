// Spatial sound with WebAudio, synthesized: no audio files.
//
// The server sends what a player hears but does not see as a kind, a loudness 1..=7 and a
// direction in 1/64 turn from the listener (clockwise on screen from +x), with a bit saying a
// wall was in between (docs/protocol-breach.md §3.3). Each becomes a short voice:
//
//   source (noise buffer or oscillator) → [BiquadFilter low-pass, when muffled]
//     → GainNode (loudness) → StereoPannerNode (direction) → master gain → destination
//
// The pan is the sound's left–right share on screen (east = right). The player's own shots
// and reloads and the shots of players on screen (which the server does not send as sounds:
// the picture says it) are played the same way from their position on screen.
//
// The one noise buffer is generated once (a second of white noise); everything else is
// oscillators and envelopes. A bounded number of voices play at once; extra ones are dropped
// (and counted). `log` keeps the last voices for the browser test and for debugging.

import { SoundKind } from './protocol.js';

/** Voices playing at once, at most; more are dropped. */
export const MAX_VOICES = 24;
/** Low-pass corner for a muffled sound, Hz (a wall in between takes the highs). */
export const MUFFLED_CUTOFF_HZ = 700;
const LOG_KEPT = 64;

/** Pan of a sound from a direction in 1/64 turn (clockwise on screen from +x). */
export function panOf(direction64) {
  return Math.cos((direction64 / 64) * Math.PI * 2) * 0.85;
}

/** Gain of a loudness level 1..=7 (perceived loudness is roughly logarithmic). */
export function gainOf(loudness) {
  const level = Math.max(0, Math.min(7, loudness)) / 7;
  return level * level * 0.9;
}

/** How each kind is synthesized: a noise burst and/or a tone, with an envelope (seconds). */
const VOICES = {
  [SoundKind.SNEAK_STEP]: { noise: true, band: 900, tone: 0, length: 0.04, level: 0.35 },
  [SoundKind.WALK_STEP]: { noise: true, band: 700, tone: 0, length: 0.06, level: 0.6 },
  [SoundKind.RUN_STEP]: { noise: true, band: 550, tone: 0, length: 0.07, level: 0.8 },
  [SoundKind.SHOT]: { noise: true, band: 2400, tone: 120, length: 0.16, level: 1.0 },
  [SoundKind.RELOAD]: { noise: false, band: 0, tone: 1400, length: 0.05, level: 0.4, clicks: 2 },
  [SoundKind.CHARGE_PLACED]: { noise: false, band: 0, tone: 880, length: 0.12, level: 0.5, square: true },
  [SoundKind.BLAST]: { noise: true, band: 400, tone: 55, length: 0.7, level: 1.0 },
};

export class SoundBoard {
  /**
   * @param {() => BaseAudioContext} createContext  called once, on the first sound after
   *   `unlock` (a user gesture), or at once when given an OfflineAudioContext for tests
   */
  constructor(createContext = () => new AudioContext()) {
    this.createContext = createContext;
    this.context = null;
    this.master = null;
    this.noise = null;
    this.voices = 0;
    this.maxVoices = MAX_VOICES;
    this.stats = { played: 0, heard: 0, dropped: 0, muffled: 0, nodes: { gain: 0, panner: 0, filter: 0, source: 0 } };
    this.log = [];
    this.muted = false;
  }

  /** Creates (or resumes) the audio context; call from a user gesture. */
  unlock() {
    try {
      if (this.context === null) this.setup();
      if (this.context && this.context.state === 'suspended' && typeof this.context.resume === 'function') {
        this.context.resume().catch(() => {});
      }
    } catch {
      // No WebAudio here (an old browser, a locked-down page): the game plays silently.
      this.context = null;
    }
  }

  setup() {
    const context = this.createContext();
    this.context = context;
    this.master = context.createGain();
    this.master.gain.value = 0.6;
    this.master.connect(context.destination);
    const length = Math.floor(context.sampleRate * 1);
    this.noise = context.createBuffer(1, length, context.sampleRate);
    const data = this.noise.getChannelData(0);
    // A fixed generator (not Math.random) so every load sounds the same.
    let seed = 0x2545f491;
    for (let i = 0; i < length; i++) {
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      data[i] = ((seed >>> 0) / 0xffffffff) * 2 - 1;
    }
  }

  /** A sound the server sent: {kind, loudness, direction (1/64 turn), muffled}. */
  playHeard(sound) {
    return this.play(sound.kind, gainOf(sound.loudness), panOf(sound.direction), sound.muffled, 'heard');
  }

  /**
   * A sound of something on screen at (dx, dy) pixels from the listener (0, 0 for the
   * player's own).
   */
  playSeen(kind, dx, dy) {
    const distance = Math.hypot(dx, dy);
    const gain = 0.9 * Math.max(0.15, 1 - distance / 320);
    const pan = distance < 1 ? 0 : (dx / distance) * 0.85 * Math.min(1, distance / 120);
    return this.play(kind, gain, pan, false, 'seen');
  }

  play(kind, gain, pan, muffled, origin) {
    const voice = VOICES[kind];
    if (!voice || this.muted || this.context === null) return null;
    if (this.voices >= this.maxVoices) {
      this.stats.dropped++;
      return null;
    }
    const context = this.context;
    const now = context.currentTime;
    const length = voice.length;
    const nodes = this.stats.nodes;

    // Envelope and loudness.
    const amp = context.createGain();
    nodes.gain++;
    const peak = Math.max(0.0001, gain * voice.level);
    amp.gain.setValueAtTime(0.0001, now);
    amp.gain.exponentialRampToValueAtTime(peak, now + 0.004);
    amp.gain.exponentialRampToValueAtTime(0.0001, now + length);

    // Direction.
    const panner = context.createStereoPanner();
    nodes.panner++;
    panner.pan.value = Math.max(-1, Math.min(1, pan));
    amp.connect(panner);
    panner.connect(this.master);

    // A wall in between: the highs are gone.
    let input = amp;
    let filter = null;
    if (muffled) {
      filter = context.createBiquadFilter();
      nodes.filter++;
      filter.type = 'lowpass';
      filter.frequency.value = MUFFLED_CUTOFF_HZ;
      filter.Q.value = 0.7;
      filter.connect(amp);
      input = filter;
      this.stats.muffled++;
    }

    const sources = [];
    if (voice.noise) {
      const noise = context.createBufferSource();
      noise.buffer = this.noise;
      const band = context.createBiquadFilter();
      nodes.filter++;
      band.type = 'bandpass';
      band.frequency.value = voice.band;
      band.Q.value = 0.9;
      noise.connect(band);
      band.connect(input);
      // A different stretch of the noise each time, so repeats do not sound identical.
      noise.start(now, ((this.stats.played * 0.137) % 0.8) + 0.01, length + 0.02);
      sources.push(noise);
    }
    if (voice.tone > 0) {
      const clicks = voice.clicks ?? 1;
      for (let click = 0; click < clicks; click++) {
        const tone = context.createOscillator();
        tone.type = voice.square ? 'square' : 'sine';
        const start = now + click * (length + 0.06);
        tone.frequency.setValueAtTime(voice.tone, start);
        if (!voice.square) tone.frequency.exponentialRampToValueAtTime(Math.max(20, voice.tone * 0.5), start + length);
        tone.connect(input);
        tone.start(start);
        tone.stop(start + length + 0.02);
        sources.push(tone);
      }
    }
    nodes.source += sources.length;
    this.voices++;
    this.stats.played++;
    if (origin === 'heard') this.stats.heard++;
    let ended = 0;
    for (const source of sources) {
      source.onended = () => {
        if (++ended === sources.length) {
          this.voices--;
          try {
            panner.disconnect();
          } catch {
            // Already disconnected.
          }
        }
      };
    }
    const record = { kind, origin, gain: peak, pan: panner.pan.value, muffled, cutoffHz: filter ? filter.frequency.value : null };
    this.log.push(record);
    if (this.log.length > LOG_KEPT) this.log.shift();
    return record;
  }
}
