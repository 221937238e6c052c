// The web client in a real browser against a real `coil serve`: headless Debian Chromium driven
// by playwright-core. Run through web/test/run-browser-test.sh, which builds and starts the
// server and sets COIL_URL; by hand: COIL_URL=http://127.0.0.1:8787 node web/test/browser.mjs
// (the server needs ENABLE_DEBUG_COMMANDS=1).
//
// Checks, in one page: the page loads from the binary; a player joins through the matchmaker;
// the own snake moves the way it is steered and speeds up while boosting; the HUD and the
// room's top 10 fill in; a debug kill shows the death screen with score and rank, the global
// leaderboard lists the run, and respawning brings the snake back; a dropped connection
// reconnects on its own; an unknown room offers the matchmaker's suggestion; an unreachable
// matchmaker is reported as such and recovered from; a drain notice (with INTERNAL_SECRET set)
// is shown and the client re-matchmakes before the deadline. Then it runs web/test/bench.html
// (decode + render per frame in a 140-snake room) and prints the page's transfer size.
// Screenshots go to $ARTIFACT_DIR (default artifacts/web). The whole run is bounded by a
// 60-second deadline.

import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

const DEADLINE_MS = 60_000;
const base = (process.env.COIL_URL ?? '').replace(/\/$/, '');
if (!base) {
  console.error('browser test: set COIL_URL to a running coil serve (ENABLE_DEBUG_COMMANDS=1)');
  process.exit(2);
}
const webDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const artifactDir = process.env.ARTIFACT_DIR ?? 'artifacts/web';
const executablePath = process.env.CHROMIUM ?? '/usr/bin/chromium';
mkdirSync(artifactDir, { recursive: true });

const started = Date.now();
const deadline = setTimeout(() => {
  console.error(`browser test: FAILED, over the ${DEADLINE_MS / 1000} s deadline`);
  process.exit(1);
}, DEADLINE_MS);

const step = (text) => console.log(`[${((Date.now() - started) / 1000).toFixed(1)}s] ${text}`);

function check(condition, message) {
  if (!condition) throw new Error(`check failed: ${message}`);
}

const angleBetween = (a, b) => {
  const difference = Math.abs(a - b) % (2 * Math.PI);
  return Math.min(difference, 2 * Math.PI - difference);
};

const args = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'];
// A page fulfilled by the test (WEB_FROM_DISK) has no network address of its own, and
// Chromium's local network access checks would then refuse its WebSocket to 127.0.0.1.
if (process.env.WEB_FROM_DISK === '1') args.push('--disable-features=LocalNetworkAccessChecks');
const browser = await chromium.launch({ executablePath, headless: true, args });
const results = {};
let page;
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 720 } });
  page = await context.newPage();
  const pageErrors = [];
  page.on('pageerror', (error) => pageErrors.push(String(error)));
  page.on('console', (message) => {
    // Refused requests are expected here (the 409 of an unknown room, the blocked matchmaker)
    // and Chromium logs each one; anything else logged as an error is a failure.
    if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) {
      pageErrors.push(`console: ${message.text()}`);
    }
  });
  // Bytes of every file the page itself loads from the binary (not the API).
  const pageFiles = new Map();
  page.on('response', async (response) => {
    const url = new URL(response.url());
    if (url.origin !== base || url.pathname.startsWith('/api/') || url.pathname.startsWith('/test/')) return;
    try {
      pageFiles.set(url.pathname, (await response.body()).length);
    } catch {
      // A response without a body (a redirect) is not part of the page.
    }
  });
  if (process.env.WEB_FROM_DISK === '1') {
    // Development aid: serve the page from web/ on disk instead of the binary's embedded copy,
    // to try JavaScript changes without rebuilding `coil`. The default tests the binary.
    const fromDisk = (file, contentType) => (route) => route.fulfill({ body: readFileSync(join(webDir, file)), contentType });
    await page.route(`${base}/`, fromDisk('index.html', 'text/html'));
    await page.route(`${base}/style.css`, fromDisk('style.css', 'text/css'));
    await page.route(`${base}/src/*.js`, (route) => {
      const file = new URL(route.request().url()).pathname.slice(1);
      return fromDisk(file, 'text/javascript')(route);
    });
  }
  const coil = (expression) => page.evaluate(expression);
  const waitFor = (predicate, arg, timeout = 10_000) => page.waitForFunction(predicate, arg, { timeout, polling: 50 });

  step(`loading ${base}/`);
  const response = await page.goto(`${base}/`);
  check(response.status() === 200, `GET / answers 200, got ${response.status()}`);
  await page.waitForSelector('#start:not([hidden])');
  await page.waitForLoadState('networkidle');
  const transferBytes = [...pageFiles.values()].reduce((sum, size) => sum + size, 0);
  results.page = { files: pageFiles.size, transferBytes };
  check(pageFiles.size >= 8, `page loads its html, css and modules (${[...pageFiles.keys()].join(', ')})`);

  const name = `web${String(Date.now() % 1_000_000)}`;
  step(`joining as ${name}`);
  await page.fill('#name', name);
  await page.click('#play');
  await waitFor(() => window.__coil.status().state === 'playing' && window.__coil.own() !== null);
  const room = (await coil(() => window.__coil.status())).room;
  check(room, 'the client knows its room');
  step(`playing in room ${room}`);

  step('HUD and top 10 fill in');
  await waitFor(
    () =>
      /^\d+$/.test(document.getElementById('hud-score').textContent) &&
      /^\d+ \/ \d+$/.test(document.getElementById('hud-rank').textContent) &&
      document.getElementById('hud-players').textContent.includes('bots') &&
      document.querySelectorAll('#hud-top li').length > 0,
  );
  const hud = await coil(() => ({
    score: document.getElementById('hud-score').textContent,
    rank: document.getElementById('hud-rank').textContent,
    room: document.getElementById('hud-room').textContent,
    players: document.getElementById('hud-players').textContent,
    oxygen: document.getElementById('hud-oxygen').style.width,
    top: document.querySelectorAll('#hud-top li').length,
  }));
  check(hud.room === room, `HUD shows the room (${hud.room})`);
  check(hud.oxygen.endsWith('%'), 'HUD shows oxygen');
  results.hud = hud;

  /**
   * Points the mouse at `angle` (radians, screen coordinates, y down) from the own head and
   * checks that the snake turns that way and moves. Steers toward the arena centre first, so
   * the edge is never in the way.
   */
  async function steer(angle, label) {
    const before = await coil(() => window.__coil.own());
    check(before && before.screen, 'own snake is on screen');
    await page.mouse.move(before.screen[0] + Math.cos(angle) * 250, before.screen[1] + Math.sin(angle) * 250);
    // 4.5 rad/s turns: any turn is done within 0.7 s; then it moves straight.
    await page.waitForTimeout(1200);
    const after = await coil(() => window.__coil.own());
    check(after, `own snake is alive after steering ${label}`);
    const heading = Math.atan2(after.velocity[1], after.velocity[0]);
    const moved = Math.hypot(after.head[0] - before.head[0], after.head[1] - before.head[1]);
    check(angleBetween(heading, angle) < 0.35, `heading ${heading.toFixed(2)} follows the pointer ${angle.toFixed(2)} (${label})`);
    check(moved > 60, `own snake moved ${moved.toFixed(0)} units (${label})`);
    return { heading, moved, head: after.head };
  }

  step('steering with the mouse');
  const start = await coil(() => window.__coil.own());
  const towardCentre = Math.atan2(-start.head[1], -start.head[0]);
  const shotBefore = await page.screenshot();
  const first = await steer(towardCentre, 'toward the centre');
  const second = await steer(towardCentre + Math.PI / 2, 'a quarter turn');
  const shotAfter = await page.screenshot();
  check(!shotBefore.equals(shotAfter), 'the picture on screen changed');
  results.steering = { first, second };

  step('boosting with the space bar');
  const cruising = await coil(() => window.__coil.own());
  check(cruising, 'own snake is alive before boosting');
  await page.keyboard.down('Space');
  await page.waitForTimeout(500);
  const boosting = await coil(() => window.__coil.own());
  await page.keyboard.up('Space');
  check(boosting, 'own snake is alive while boosting');
  const speed = (snake) => Math.hypot(snake.velocity[0], snake.velocity[1]);
  check(boosting && speed(boosting) > speed(cruising) * 1.5, `boost speeds up (${speed(cruising)} → ${boosting && speed(boosting)})`);
  await page.screenshot({ path: join(artifactDir, 'screenshot.png') });
  step(`screenshot saved to ${join(artifactDir, 'screenshot.png')}`);

  step('death through the debug kill command');
  const kill = await fetch(`${base}/api/debug/kill`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ room, name }),
  });
  check(kill.ok, `debug kill answers ${kill.status} (is ENABLE_DEBUG_COMMANDS=1 set?)`);
  check((await kill.json()).killed === 1, 'one snake was killed');
  await page.waitForSelector('#death:not([hidden])', { timeout: 5000 });
  const death = await coil(() => ({
    score: document.getElementById('death-score').textContent,
    rank: document.getElementById('death-rank').textContent,
    cause: document.getElementById('death-cause').textContent,
  }));
  check(/^\d+$/.test(death.score) && Number(death.score) > 0, `death screen shows the final score (${death.score})`);
  check(/^\d+( \/ \d+)?$/.test(death.rank), `death screen shows the rank (${death.rank})`);
  results.death = death;
  await page.screenshot({ path: join(artifactDir, 'death.png') });

  step('global leaderboard lists the run');
  let listed = false;
  for (let attempt = 0; attempt < 50 && !listed; attempt++) {
    const board = await (await fetch(`${base}/api/leaderboard?limit=100`)).json();
    listed = board.scores.some((row) => row.name === name);
    if (!listed) await new Promise((resolve) => setTimeout(resolve, 100));
  }
  check(listed, 'the server recorded the run');
  await page.click('#death-leaderboard');
  await waitFor((player) => [...document.querySelectorAll('#leaderboard-rows td')].some((cell) => cell.textContent === player), name, 5000);
  await page.click('#leaderboard-close');

  step('respawn');
  await page.click('#respawn');
  await page.waitForSelector('#death', { state: 'hidden', timeout: 5000 });
  await waitFor(() => window.__coil.own() !== null, undefined, 5000);

  step('a dropped connection reconnects by itself');
  const joinsBefore = (await coil(() => window.__coil.stats())).joins;
  await coil(() => window.__coil.dropConnection());
  await waitFor((joins) => window.__coil.stats().joins > joins && window.__coil.own() !== null, joinsBefore);
  const afterDrop = await coil(() => window.__coil.status());
  check(afterDrop.history.includes('reconnecting'), `the drop was shown as reconnecting (${afterDrop.history.join(' → ')})`);

  step('switching to a room that does not exist offers the suggested room');
  await page.fill('#switch-room-name', 'no-such-room');
  await page.press('#switch-room-name', 'Enter');
  await page.waitForSelector('#room-problem:not([hidden])', { timeout: 5000 });
  const problem = await coil(() => ({
    title: document.getElementById('room-problem-title').textContent,
    join: document.getElementById('room-problem-join').textContent,
  }));
  check(problem.title === 'No such room', `room problem title (${problem.title})`);
  check(problem.join.startsWith('Join '), `a suggested room is offered (${problem.join})`);
  const suggested = problem.join.slice('Join '.length);
  const joinsBeforeSwitch = (await coil(() => window.__coil.stats())).joins;
  await page.click('#room-problem-join');
  await waitFor(
    ({ joins, target }) => window.__coil.stats().joins > joins && window.__coil.status().room === target && window.__coil.own() !== null,
    { joins: joinsBeforeSwitch, target: suggested },
  );

  step('an unreachable server is reported and recovered from');
  await page.route('**/api/matchmake', (route) => route.abort('connectionrefused'));
  await coil(() => window.__coil.dropConnection());
  await page.waitForSelector('#status.bad:not([hidden])', { timeout: 8000 });
  const unreachable = await coil(() => ({ text: document.getElementById('status').textContent, state: window.__coil.status().state }));
  check(unreachable.state === 'unreachable', `state is unreachable (${unreachable.state})`);
  await page.unroute('**/api/matchmake');
  await waitFor(() => window.__coil.status().state === 'playing' && window.__coil.own() !== null, undefined, 8000);
  results.unreachable = unreachable.text;

  if (process.env.INTERNAL_SECRET) {
    step('a draining node: the notice is shown and the client moves on by itself');
    const joinsBeforeDrain = (await coil(() => window.__coil.stats())).joins;
    const drain = await fetch(`${base}/internal/drain`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${process.env.INTERNAL_SECRET}` },
      body: JSON.stringify({ deadlineSecs: 4 }),
    });
    check(drain.status === 202, `drain accepted (${drain.status})`);
    await waitFor(() => window.__coil.status().draining && /closing/.test(document.getElementById('status').textContent), undefined, 5000);
    // Before the deadline the client leaves and asks the matchmaker again; this node is the
    // only one and it is draining, so the honest answer is "no free seat, retrying".
    await waitFor(
      (joins) => window.__coil.status().state === 'reconnecting' && /No free seat/.test(document.getElementById('status').textContent) && window.__coil.stats().joins === joins,
      joinsBeforeDrain,
      8000,
    );
    results.drain = await coil(() => document.getElementById('status').textContent);
  } else {
    step('INTERNAL_SECRET not set: skipping the drain check');
  }

  check(pageErrors.length === 0, `no errors in the page: ${pageErrors.join('; ')}`);

  step('benchmark: decode + render in a 140-snake room');
  // bench.html and its fixtures live in web/test (not embedded); serve them from disk on the
  // same origin so the modules under test come from the binary.
  await page.route(`${base}/test/**`, (route) => {
    const path = normalize(decodeURIComponent(new URL(route.request().url()).pathname)).replace(/^\/+/, '');
    if (!path.startsWith('test/')) return route.abort();
    return route.fulfill({ body: readFileSync(join(webDir, path)), contentType: path.endsWith('.html') ? 'text/html' : path.endsWith('.json') ? 'application/json' : 'text/javascript' });
  });
  results.bench = {};
  for (const fixture of ['arena_140.json', 'arena_140_crowded.json']) {
    await page.goto(`${base}/test/bench.html?fixture=./fixtures/${fixture}`);
    await waitFor(() => window.benchResult !== undefined, undefined, 25_000);
    const bench = await coil(() => window.benchResult);
    check(!bench.error, `benchmark ran (${bench.error})`);
    results.bench[fixture] = bench;
  }
} catch (error) {
  if (page) await page.screenshot({ path: join(artifactDir, 'failure.png') }).catch(() => {});
  console.error(`browser test: FAILED: ${error.message}`);
  console.error(JSON.stringify(results, null, 2));
  await browser.close();
  process.exit(1);
}
await browser.close();
clearTimeout(deadline);
writeFileSync(join(artifactDir, 'results.json'), `${JSON.stringify(results, null, 2)}\n`);
console.log(`page transfer size: ${results.page.transferBytes} bytes in ${results.page.files} files (uncompressed)`);
for (const [fixture, bench] of Object.entries(results.bench)) {
  console.log(
    `decode + render, ${fixture} (${bench.visibleSnakesAvg} snakes and ${bench.visiblePelletsAvg} pellets in view, ${bench.canvas}): ` +
      `decode ${bench.decodeMsPerMessage.mean} ms/message (p95 ${bench.decodeMsPerMessage.p95}), ` +
      `render ${bench.renderMsPerFrame.mean} ms/frame (p95 ${bench.renderMsPerFrame.p95}), ` +
      `${bench.msPerDisplayedFrame} ms per displayed frame at 60 Hz`,
  );
}
console.log(`browser test: passed in ${((Date.now() - started) / 1000).toFixed(1)} s; results in ${join(artifactDir, 'results.json')}`);
