// Decode + render cost of the browser client in a full room, measured in the browser.
//
// Replays web/test/fixtures/arena_140.json (a 140-snake room recorded from the real server by
// crates/coil-game/tests/web_fixtures.rs) through the client's own mirror and renderer, at
// 1280×720 and device pixel ratio 1: each server message is decoded and applied, then three
// frames are drawn (60 frames per second against 20 states per second), each followed by a
// one-pixel read-back so the canvas really rasterizes inside the measured time. Results land
// in `window.benchResult` and on the page. Open it through any static server rooted at web/
// (`python3 -m http.server -d web`, then /test/bench.html), or let web/test/browser.mjs run it.

import { ClientMirror } from '../src/mirror.js';
import { hexToBytes } from '../src/protocol.js';
import { Motion, Renderer } from '../src/render.js';

/** Messages replayed first to warm up the JIT and the canvas, not counted. */
const WARM_UP_MESSAGES = 40;
const FRAMES_PER_STATE = 3;

function percentile(values, p) {
  const sorted = values.slice().sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))];
}

const mean = (values) => values.reduce((sum, value) => sum + value, 0) / values.length;
const round = (value) => Math.round(value * 1000) / 1000;

async function run() {
  const fixtureUrl = new URLSearchParams(location.search).get('fixture') ?? './fixtures/arena_140.json';
  const fixture = await (await fetch(fixtureUrl)).json();
  const messages = fixture.viewers[0].messages.map((message) => hexToBytes(message.hex));
  const canvas = document.getElementById('canvas');
  // A CPU-backed canvas: every frame is rasterized on the main thread inside the measured
  // time, and the one-pixel read-back does not wait on a GPU process (headless Chromium runs
  // with --disable-gpu, where an "accelerated" canvas is emulated and its read-back dominates).
  const context = canvas.getContext('2d', { alpha: false, willReadFrequently: true });
  const renderer = new Renderer(canvas);
  renderer.resize(1280, 720, 1);
  const decode = [];
  const render = [];
  let snakes = 0;
  let pellets = 0;
  let bytes = 0;
  for (const pass of [0, 1]) {
    const mirror = new ClientMirror();
    const motion = new Motion();
    let clock = 0;
    for (const message of pass === 0 ? messages.slice(0, WARM_UP_MESSAGES) : messages) {
      const started = performance.now();
      mirror.applyMessage(message);
      motion.onState(mirror, clock);
      const decoded = performance.now();
      if (pass > 0) {
        decode.push(decoded - started);
        snakes += mirror.snakes.length;
        pellets += mirror.pelletCount();
        bytes += message.length;
      }
      for (let frame = 0; frame < FRAMES_PER_STATE; frame++) {
        const frameStarted = performance.now();
        renderer.draw(mirror, motion, clock + (frame * 50) / FRAMES_PER_STATE, { aimAngle: 0 });
        context.getImageData(640, 360, 1, 1);
        if (pass > 0) render.push(performance.now() - frameStarted);
      }
      clock += 50;
    }
  }
  const counted = messages.length;
  const result = {
    fixture: fixtureUrl,
    messages: messages.length,
    canvas: '1280x720@1x',
    roomSnakes: 140,
    visibleSnakesAvg: round(snakes / counted),
    visiblePelletsAvg: round(pellets / counted),
    messageBytesAvg: round(bytes / counted),
    decodeMsPerMessage: { mean: round(mean(decode)), p95: round(percentile(decode, 95)) },
    renderMsPerFrame: { mean: round(mean(render)), p95: round(percentile(render, 95)) },
    // One displayed frame at 60 Hz carries a third of a state message's decoding.
    msPerDisplayedFrame: round(mean(render) + mean(decode) / FRAMES_PER_STATE),
  };
  document.getElementById('result').textContent = JSON.stringify(result, null, 2);
  window.benchResult = result;
}

run().catch((error) => {
  document.getElementById('result').textContent = `failed: ${error.stack ?? error}`;
  window.benchResult = { error: String(error) };
});
