// The arena client's input rate in a real browser against a real `coil serve`: while the
// pointer moves continuously, the page sends at most one input frame per server tick (20 Hz),
// not one per animation frame (up to 60 Hz) or per mouse event. Frames are counted where they
// leave the page — every `WebSocket.send` is recorded by an init script — so the count is what
// the server would receive, whatever the client's own counters say.
//
// Run through web/test/run-browser-test.sh (which starts the server and sets COIL_URL); by
// hand: COIL_URL=http://127.0.0.1:8787 node web/test/input-rate.browser.mjs. WEB_FROM_DISK=1
// serves the page's modules from web/ instead of the binary (to try a change without a
// rebuild). Bounded by a 45-second deadline.

import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

const DEADLINE_MS = 45_000;
/** protocol.js ClientType.INPUT: the first byte of an input frame. */
const INPUT = 0x10;
/** The arena's tick rate (the server's init frame says 20 with the default TICK_MS). */
const TICK_RATE = 20;

const base = (process.env.COIL_URL ?? '').replace(/\/$/, '');
if (!base) {
  console.error('input-rate test: set COIL_URL to a running coil serve');
  process.exit(2);
}
const webDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const executablePath = process.env.CHROMIUM ?? '/usr/bin/chromium';
const started = Date.now();
const deadline = setTimeout(() => {
  console.error(`input-rate test: FAILED, over the ${DEADLINE_MS / 1000} s deadline`);
  process.exit(1);
}, DEADLINE_MS);
const step = (text) => console.log(`[${((Date.now() - started) / 1000).toFixed(1)}s] ${text}`);
function check(condition, message) {
  if (!condition) throw new Error(`check failed: ${message}`);
}

const args = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'];
if (process.env.WEB_FROM_DISK === '1') args.push('--disable-features=LocalNetworkAccessChecks');
const browser = await chromium.launch({ executablePath, headless: true, args });
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 720 } });
  const page = await context.newPage();
  const pageErrors = [];
  page.on('pageerror', (error) => pageErrors.push(String(error)));
  // Every frame the page hands to a WebSocket, with the time it did (page clock).
  await page.addInitScript(() => {
    const sent = [];
    window.__sentFrames = sent;
    const send = WebSocket.prototype.send;
    WebSocket.prototype.send = function recordedSend(data) {
      const bytes = data instanceof Uint8Array ? data : new Uint8Array(data);
      sent.push({ at: performance.now(), type: bytes[0], bytes: Array.from(bytes) });
      return send.call(this, data);
    };
  });
  if (process.env.WEB_FROM_DISK === '1') {
    const fromDisk = (file, contentType) => (route) => route.fulfill({ body: readFileSync(join(webDir, file)), contentType });
    await page.route(`${base}/`, fromDisk('index.html', 'text/html'));
    await page.route(`${base}/style.css`, fromDisk('style.css', 'text/css'));
    await page.route(`${base}/src/*.js`, (route) => fromDisk(new URL(route.request().url()).pathname.slice(1), 'text/javascript')(route));
  }
  const coil = (expression, arg) => page.evaluate(expression, arg);
  const waitFor = (predicate, arg, timeout = 10_000) => page.waitForFunction(predicate, arg, { timeout, polling: 50 });

  step(`joining ${base}/`);
  await page.goto(`${base}/`);
  await page.waitForSelector('#start:not([hidden])');
  await page.check('input[name="mode"][value="arena"]').catch(() => {});
  await page.fill('#name', `rate${String(Date.now() % 100_000)}`);
  await page.click('#play');
  await waitFor(() => window.__coil.status().state === 'playing' && window.__coil.own()?.screen);

  // How often the page draws: the rate the old client could send at (one input per frame).
  const framesPerSecond = await coil(
    () =>
      new Promise((resolve) => {
        const first = performance.now();
        let frames = 0;
        const count = (now) => {
          frames++;
          if (now - first < 1000) requestAnimationFrame(count);
          else resolve((frames * 1000) / (now - first));
        };
        requestAnimationFrame(count);
      }),
  );
  step(`the page draws ${framesPerSecond.toFixed(1)} frames per second`);

  step('moving the pointer continuously in circles around the own snake for 2 s');
  const own = await coil(() => window.__coil.own());
  const [cx, cy] = own.screen;
  const from = await coil(() => performance.now());
  const wallFrom = Date.now();
  const moves = [];
  for (let i = 0; Date.now() - wallFrom < 2000; i++) {
    // A full turn every ~80 moves: the angle changes by far more than the threshold each time.
    const angle = i * 0.08;
    await page.mouse.move(cx + Math.cos(angle) * 220, cy + Math.sin(angle) * 160);
    moves.push(Date.now());
  }
  const to = await coil(() => performance.now());
  const seconds = (to - from) / 1000;
  const inputs = await coil(
    ({ from, to, type }) => window.__sentFrames.filter((frame) => frame.type === type && frame.at >= from && frame.at <= to),
    { from, to, type: INPUT },
  );
  const movesPerSecond = moves.length / ((moves.at(-1) - wallFrom) / 1000);
  step(`${inputs.length} inputs in ${seconds.toFixed(2)} s (${(inputs.length / seconds).toFixed(1)}/s) over ${moves.length} pointer moves (${movesPerSecond.toFixed(0)}/s)`);

  // The check has to be able to fail: the pointer moved more often than the tick, and the page
  // drew more often than the tick, so a client sending per frame or per move would be caught.
  check(movesPerSecond > TICK_RATE * 1.5, `the pointer moved more often than the tick (${movesPerSecond.toFixed(0)}/s)`);
  check(framesPerSecond > TICK_RATE * 1.5, `the page drew more often than the tick (${framesPerSecond.toFixed(1)}/s)`);
  check(inputs.length <= TICK_RATE * seconds + 2, `at most one input per tick: ${inputs.length} in ${seconds.toFixed(2)} s (≤ ${Math.floor(TICK_RATE * seconds + 2)})`);
  // And it still sends on (nearly) every tick while the aim keeps changing.
  check(inputs.length >= TICK_RATE * seconds * 0.6, `an input on the ticks the aim changed: ${inputs.length} in ${seconds.toFixed(2)} s`);
  const gaps = inputs.slice(1).map((frame, i) => frame.at - inputs[i].at);
  const shortGaps = gaps.filter((gap) => gap < 1000 / TICK_RATE - 20).length;
  check(shortGaps === 0, `no two inputs closer than a tick allows (${shortGaps} gaps under ${1000 / TICK_RATE - 20} ms; smallest ${Math.min(...gaps).toFixed(1)} ms)`);
  const angles = new Set(inputs.map((frame) => frame.bytes[1] | (frame.bytes[2] << 8)));
  check(angles.size >= inputs.length * 0.9, `each input carries a new angle (${angles.size} distinct of ${inputs.length})`);

  step('a still pointer sends no more than the tick either');
  await page.waitForTimeout(1000);
  const stillFrom = await coil(() => performance.now());
  await page.waitForTimeout(1000);
  const still = await coil(({ from, type }) => window.__sentFrames.filter((frame) => frame.type === type && frame.at >= from).length, { from: stillFrom, type: INPUT });
  check(still <= TICK_RATE + 2, `${still} inputs in 1 s with the pointer still`);
  check(pageErrors.length === 0, `no errors in the page: ${pageErrors.join('; ')}`);
  console.log(
    `input-rate test: passed in ${((Date.now() - started) / 1000).toFixed(1)} s — ${inputs.length} inputs in ${seconds.toFixed(2)} s of continuous pointer movement ` +
      `(${(inputs.length / seconds).toFixed(1)}/s; ${framesPerSecond.toFixed(0)} frames/s, ${movesPerSecond.toFixed(0)} moves/s), ${still} in 1 s with it still`,
  );
} catch (error) {
  console.error(`input-rate test: FAILED: ${error.message}`);
  await browser.close();
  process.exit(1);
}
await browser.close();
clearTimeout(deadline);
