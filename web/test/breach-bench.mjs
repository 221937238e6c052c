// Breach's browser client replaying a recorded match, without a server: the page behind
// web/test/breach.browser.mjs (checks) and the decode + render benchmark.
//
// It loads web/test/fixtures/breach_match.json (real matches recorded by
// crates/coil-breach/tests/web_fixtures.rs) and drives the real client (`BreachGame`: mirror,
// prediction, interpolation, renderer, screens, sound) with a clock it controls: message i
// arrives at i × 33.3 ms, and the facing the recorded player sent that tick is the client's
// aim, so the cone and fog are the ones the server's view was built from. A scripted session
// stands in for the socket and records what the client sends. The sound board runs on an
// OfflineAudioContext, so its graph is real WebAudio and inspectable without a speaker.
//
// `window.harness` is what the browser test calls; `window.benchResult` appears after
// `harness.bench()`. By hand: serve web/ (`python3 -m http.server -d web`), open
// /test/breach-bench.html and call `await harness.bench()` in the console.

import { hexToBytes } from '../src/protocol.js';
import { BreachGame } from '../src/breach/game.js';
import { SoundBoard } from '../src/breach/sound.js';
import { Reader } from '../src/breach/protocol.js';

const TICK_MS = 1000 / 30;

/** Stands in for BreachSession: records every frame; inputs are refused unless asked for. */
class ScriptedSession {
  constructor() {
    this.sent = [];
    this.acceptInputs = false;
    this.leaving = null;
  }
  send(bytes) {
    this.sent.push([...bytes]);
    return bytes[0] !== 0x10 || this.acceptInputs;
  }
  leaveAfterVote(message) {
    this.leaving = message;
  }
}

function facingOfInput(hex) {
  const bytes = hexToBytes(hex);
  if (bytes[0] !== 0x10) return null;
  const reader = new Reader(bytes, 1);
  reader.varint();
  reader.u8();
  return reader.u16();
}

let fixture = null;

async function fixtureData() {
  if (fixture === null) fixture = await (await fetch('./fixtures/breach_match.json')).json();
  return fixture;
}

class Replay {
  constructor(viewer, audioContext) {
    this.viewer = viewer;
    this.session = new ScriptedSession();
    const root = document.getElementById('breach');
    this.sound = new SoundBoard(() => audioContext);
    // An offline context's clock stands still until it renders, so no voice ever ends: lift
    // the cap, or every sound after the 24th would be dropped.
    this.sound.maxVoices = Infinity;
    this.sound.unlock();
    this.game = new BreachGame({ root, session: this.session, sound: this.sound });
    this.game.screens.show();
    this.game.renderer.resize(innerWidth, innerHeight, devicePixelRatio || 1);
    this.next = 0;
    this.now = 1000;
  }

  /** Applies messages up to and including `index`, drawing one frame after each. */
  to(index) {
    const messages = this.viewer.messages;
    while (this.next <= index && this.next < messages.length) {
      const message = messages[this.next++];
      this.now += TICK_MS;
      for (const sent of message.sent ?? []) {
        const facing = facingOfInput(sent);
        if (facing !== null) this.game.controls.facing = facing;
      }
      if (message.hex !== null) this.game.handleMessage(hexToBytes(message.hex), this.now);
      this.game.frame(this.now);
    }
    return this.next - 1;
  }

  /** Draws one more frame `ms` later without a message (interpolation moves on). */
  frame(ms = 0) {
    this.now += ms;
    this.game.frame(this.now);
  }
}

let replay = null;
let audioContext = null;

function pixelAt(x, y) {
  const context = replay.game.screens.canvas.getContext('2d');
  const [r, g, b] = context.getImageData(Math.floor(x), Math.floor(y), 1, 1).data;
  return [r, g, b];
}

window.harness = {
  /** Starts a replay of viewer `index` (0 ann, 1 bo, 2 eve the spectator). */
  async load(index) {
    const data = await fixtureData();
    audioContext = new OfflineAudioContext(2, 44100 * 2, 44100);
    replay = new Replay(data.viewers[index], audioContext);
    return { viewer: replay.viewer.viewer, role: replay.viewer.role, messages: replay.viewer.messages.length };
  },
  /** Starts a replay of a custom lobby's viewer ('host', 'player', 'spectator', 'kicked') from fixtures/breach-lobby.json. */
  async loadLobby(name) {
    const data = await (await fetch('./fixtures/breach-lobby.json')).json();
    const viewer = data.viewers.find((v) => v.name === name);
    audioContext = new OfflineAudioContext(2, 44100 * 2, 44100);
    replay = new Replay(viewer, audioContext);
    return { viewer: name, messages: viewer.messages.length };
  },
  to: (index) => replay.to(index),
  frame: (ms) => replay.frame(ms),
  state: () => replay.game.debugView(),
  sent: () => replay.session.sent.slice(),
  leaving: () => replay.session.leaving,
  /** The fixture entry of message `index` (hex, mirror, hidden). */
  message: (index) => replay.viewer.messages[index],
  messageCount: () => replay.viewer.messages.length,
  /** A logical canvas pixel [r, g, b]. */
  pixel: (x, y) => pixelAt(x, y),
  /** A map point in pixels → logical canvas coordinates of the last frame. */
  toCanvas: (x, y) => replay.game.renderer.toCanvas(x, y),
  canvasSize: () => {
    const canvas = replay.game.screens.canvas;
    const rect = canvas.getBoundingClientRect();
    return { width: canvas.width, height: canvas.height, cssWidth: rect.width, cssHeight: rect.height, left: rect.left, top: rect.top, dpr: devicePixelRatio, scale: replay.game.renderer.scale };
  },
  sliceAt: (x, y) => replay.game.sliceAt(x, y),
  inView: (x, y) => replay.game.renderer.inView(x, y),
  /** The index and hit points of a slice after the current message, by slice index. */
  slice: (index) => {
    const walls = replay.game.mirror.walls;
    return { hitPoints: walls.hitPoints[index], x: (index % walls.width) * walls.slicePixels, y: Math.floor(index / walls.width) * walls.slicePixels, material: walls.material[index] };
  },
  lastWallChanges: () => {
    const state = replay.game.mirror.lastState;
    return state ? state.walls.indices.map((index, i) => [index, state.walls.hitPoints[i]]) : [];
  },
  soundLog: () => ({ stats: JSON.parse(JSON.stringify(replay.sound.stats)), log: replay.sound.log.slice() }),
  /**
   * Renders what the sound board makes of one heard sound offline and returns the loudest
   * sample of each channel: real WebAudio output, panned and (when muffled) filtered.
   */
  async renderSound(sound) {
    const context = new OfflineAudioContext(2, 44100 / 2, 44100);
    const board = new SoundBoard(() => context);
    board.unlock();
    const record = board.playHeard(sound);
    const buffer = await context.startRendering();
    const peak = (channel) => buffer.getChannelData(channel).reduce((max, value) => Math.max(max, Math.abs(value)), 0);
    // Energy above ~3 kHz, from sample-to-sample differences: a low-passed sound has little.
    const data = buffer.getChannelData(0);
    let high = 0;
    let total = 0;
    for (let i = 1; i < data.length; i++) {
      high += (data[i] - data[i - 1]) ** 2;
      total += data[i] ** 2;
    }
    return { record, left: peak(0), right: peak(1), highShare: total > 0 ? high / total : 0, nodes: board.stats.nodes };
  },
  /** Clicks a vote button the way a player does. */
  click: (id) => document.getElementById(id).click(),
  visible: (id) => {
    const node = document.getElementById(id);
    return Boolean(node) && !node.hidden && node.getClientRects().length > 0;
  },
  text: (id) => document.getElementById(id)?.textContent ?? null,

  /**
   * Decode + render cost per frame over a whole stream: each message is applied, then two
   * frames are drawn (60 frames per second against 30 states), each followed by a one-pixel
   * read-back so the canvas has really rasterized inside the measured time.
   */
  async bench(viewerIndex = 0) {
    const data = await fixtureData();
    const viewer = data.viewers[viewerIndex];
    const messages = viewer.messages.filter((message) => message.hex !== null).map((message) => ({ bytes: hexToBytes(message.hex), sent: message.sent ?? [] }));
    const decode = [];
    const render = [];
    let bytes = 0;
    let drawnPlayers = 0;
    for (const pass of [0, 1]) {
      const context = new OfflineAudioContext(2, 44100, 44100);
      const bench = new Replay({ messages: [] }, context);
      const canvasContext = bench.game.screens.canvas.getContext('2d');
      let now = 1000;
      for (const message of pass === 0 ? messages.slice(0, 60) : messages) {
        for (const sent of message.sent) {
          const facing = facingOfInput(sent);
          if (facing !== null) bench.game.controls.facing = facing;
        }
        now += TICK_MS;
        const started = performance.now();
        bench.game.handleMessage(message.bytes, now);
        const decoded = performance.now();
        if (pass > 0) {
          decode.push(decoded - started);
          bytes += message.bytes.length;
        }
        for (let frame = 0; frame < 2; frame++) {
          const frameStarted = performance.now();
          bench.game.frame(now + frame * (TICK_MS / 2));
          canvasContext.getImageData(240, 135, 1, 1);
          if (pass > 0) {
            render.push(performance.now() - frameStarted);
            drawnPlayers += bench.game.renderer.drawn.players.length;
          }
        }
      }
    }
    const percentile = (values, p) => {
      const sorted = values.slice().sort((a, b) => a - b);
      return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))];
    };
    // Chromium rounds performance.now() to 0.1 ms, coarser than one decode: means over the
    // whole stream are the honest figure, p95 shows the slow tail.
    const mean = (values) => values.reduce((sum, value) => sum + value, 0) / values.length;
    const round = (value) => Math.round(value * 1000) / 1000;
    const result = {
      viewer: viewer.viewer,
      messages: messages.length,
      canvas: '480x270 logical',
      messageBytesAvg: round(bytes / messages.length),
      othersDrawnAvg: round(drawnPlayers / render.length),
      decodeMsPerMessage: { mean: round(mean(decode)), p95: round(percentile(decode, 95)) },
      renderMsPerFrame: { mean: round(mean(render)), p95: round(percentile(render, 95)) },
      // A displayed frame at 60 Hz carries half a state message's decoding.
      msPerDisplayedFrame: round(mean(render) + mean(decode) / 2),
    };
    document.getElementById('result').textContent = JSON.stringify(result, null, 2);
    window.benchResult = result;
    return result;
  },
};
window.harnessReady = true;
