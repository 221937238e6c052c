// Breach's browser client in real headless Chromium, without a server: playwright-core with
// Debian's /usr/bin/chromium (as web/test/browser.mjs), web/ served from disk on 127.0.0.1,
// and web/test/breach-bench.html replaying recorded matches (web/test/fixtures/
// breach_match.json) into the real client.
//
// Checks: the canvas is 480×270 logical pixels scaled by whole device pixels (at device pixel
// ratios 1 and 2) and drawn crisply; the lobby countdown shows; enemies the server did not
// send (their true positions are in the fixture) are not drawn where they are, while the ones
// it sent are; a wall slice destroyed in the recording becomes a hole the floor shows
// through; the spectator sees both teams without fog and hears nothing; the scoreboard and the
// vote appear at the end of the match and the vote button sends the vote frame; WebAudio
// nodes (panner, gain, and a low-pass filter for muffled sounds) are created for the sound
// events, and a muffled sound rendered offline has less high-frequency energy; the page logs no
// errors. Then it measures decode + render per frame. Run: node web/test/breach.browser.mjs
// (web/test/run-browser-test.sh runs it). Screenshots go to $ARTIFACT_DIR (artifacts/web).

import { createServer } from 'node:http';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

import { hexToBytes } from '../src/protocol.js';
import { decodeServerMessage } from '../src/breach/protocol.js';
import { acceptWebSockets } from './ws-stand-in.mjs';

const DEADLINE_MS = 90_000;
const webDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const artifactDir = process.env.ARTIFACT_DIR ?? 'artifacts/web';
const executablePath = process.env.CHROMIUM ?? '/usr/bin/chromium';
mkdirSync(artifactDir, { recursive: true });

const started = Date.now();
const deadline = setTimeout(() => {
  console.error(`breach browser test: FAILED, over the ${DEADLINE_MS / 1000} s deadline`);
  process.exit(1);
}, DEADLINE_MS);
const step = (text) => console.log(`[${((Date.now() - started) / 1000).toFixed(1)}s] ${text}`);

function check(condition, message) {
  if (!condition) throw new Error(`check failed: ${message}`);
}

// web/ over HTTP on loopback (module scripts need an http origin).
const types = { '.html': 'text/html', '.js': 'text/javascript', '.mjs': 'text/javascript', '.css': 'text/css', '.json': 'application/json' };
/** The stand-in room of the live-wiring part: what the client sent, and the match it is played. */
const room = { matchmakes: [], received: [], connections: [], next: 0, burst: 1, sessionToken: Array.from({ length: 16 }, (_, i) => 0xc0 + i) };
const server = createServer((request, response) => {
  if (request.method === 'POST' && request.url === '/api/matchmake') {
    let body = '';
    request.on('data', (chunk) => (body += chunk));
    request.on('end', () => {
      room.matchmakes.push({ body: JSON.parse(body), authorization: request.headers.authorization ?? null });
      const { port } = server.address();
      response
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ roomId: 'm1', wsUrl: `ws://127.0.0.1:${port}/api/room/m1`, joinToken: 'join-token-1', expiresAt: Date.now() + 30_000, region: 'local' }));
    });
    return;
  }
  const path = normalize(decodeURIComponent(new URL(request.url, 'http://x').pathname)).replace(/^\/+/, '') || 'index.html';
  if (path.startsWith('..')) {
    response.writeHead(403).end();
    return;
  }
  try {
    const body = readFileSync(join(webDir, path));
    response.writeHead(200, { 'content-type': types[extname(path)] ?? 'application/octet-stream' }).end(body);
  } catch {
    response.writeHead(404).end('no such file');
  }
});
acceptWebSockets(server, (connection) => {
  room.connections.push(connection);
  let timer = null;
  connection.onMessage = (bytes) => {
    room.received.push({ at: Date.now(), bytes: [...bytes], connection: room.connections.length });
    if (timer !== null || (bytes[0] !== 0x01 && bytes[0] !== 0x03)) return;
    // Joined (or resumed): a Session frame with the reconnect token, then the match at 30 Hz
    // (or faster while the test fast-forwards), carrying on where the last connection stopped.
    let first = true;
    timer = setInterval(() => {
      for (let k = 0; k < room.burst; k++) {
        let message = null;
        while (room.next < liveStream.length && message === null) message = liveStream[room.next++];
        // At the end of the recording, an empty state a tick keeps the connection alive.
        const bytes = message ?? [0x92, 0x01, 0x00];
        const session = first ? [0x85, 21, 16, ...room.sessionToken, 0x20, 0x4e, 0, 0] : [];
        first = false;
        connection.send(Uint8Array.from([...session, ...bytes]));
      }
    }, 1000 / 30);
  };
  connection.onClose = () => clearInterval(timer);
});
const liveFixture = JSON.parse(readFileSync(join(webDir, 'test/fixtures/breach_match.json'), 'utf8'));
/** ann's stream as bytes (the ones the runtime dropped for her are none: she had no drops). */
const liveStream = liveFixture.viewers[0].messages.slice(0, -2).map((message) => (message.hex ? [...hexToBytes(message.hex)] : null));
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const base = `http://127.0.0.1:${server.address().port}`;

const browser = await chromium.launch({
  executablePath,
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--autoplay-policy=no-user-gesture-required'],
});
const results = {};
let page;
const pageErrors = [];

async function openPage(deviceScaleFactor) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 720 }, deviceScaleFactor });
  const opened = await context.newPage();
  opened.on('pageerror', (error) => pageErrors.push(String(error)));
  opened.on('console', (message) => {
    // Errors, and the client's own warnings (a desync). Chromium's advice about the test's
    // pixel read-backs is not the client's.
    if (message.type() === 'error' || (message.type() === 'warning' && message.text().startsWith('breach'))) {
      pageErrors.push(`console ${message.type()}: ${message.text()}`);
    }
  });
  await opened.goto(`${base}/test/breach-bench.html`);
  await opened.waitForFunction(() => window.harnessReady === true, undefined, { timeout: 10_000 });
  return opened;
}

const isEnemyColour = ([r, g, b], team) => (team === 0 ? b > 200 && r < 120 : r > 200 && b < 120);
/** Warm (wood) against the cool dark floor, whatever the fog does to both. */
const isWood = ([r, , b]) => r > b + 10;
const isFloor = ([r, , b]) => b >= r;

try {
  // ---- scaling, at device pixel ratio 1 and 2 ----
  for (const dpr of [1, 2]) {
    page = await openPage(dpr);
    await page.evaluate(() => window.harness.load(0));
    await page.evaluate(() => window.harness.to(40));
    const size = await page.evaluate(() => window.harness.canvasSize());
    check(size.width === 480 && size.height === 270, `backing store is 480×270 (${size.width}×${size.height})`);
    const deviceWidth = size.cssWidth * dpr;
    const deviceHeight = size.cssHeight * dpr;
    check(Number.isInteger(deviceWidth / 480) && deviceWidth / 480 === deviceHeight / 270, `scaled by whole device pixels (${deviceWidth}×${deviceHeight} at dpr ${dpr})`);
    check(deviceWidth / 480 === Math.floor(Math.min((1280 * dpr) / 480, (720 * dpr) / 270)), `the largest whole scale that fits (${deviceWidth / 480})`);
    const rendering = await page.evaluate(() => getComputedStyle(document.getElementById('breach-canvas')).imageRendering);
    check(rendering === 'pixelated', `image-rendering is pixelated (${rendering})`);
    results[`scale@${dpr}x`] = { css: [size.cssWidth, size.cssHeight], device: [deviceWidth, deviceHeight], factor: deviceWidth / 480 };
    if (dpr === 1) {
      // Crisp: in a screenshot every logical pixel is a uniform 2×2 block of device pixels.
      const shot = await page.screenshot({ clip: { x: size.left, y: size.top, width: size.cssWidth, height: size.cssHeight } });
      writeFileSync(join(artifactDir, 'breach.png'), shot);
      const blocks = await page.evaluate(async ({ data, factor }) => {
        const image = new Image();
        image.src = `data:image/png;base64,${data}`;
        await image.decode();
        const canvas = new OffscreenCanvas(image.width, image.height);
        const context = canvas.getContext('2d');
        context.drawImage(image, 0, 0);
        const pixels = context.getImageData(0, 0, image.width, image.height).data;
        let uniform = 0;
        let total = 0;
        for (let y = 0; y + factor <= image.height; y += factor * 7) {
          for (let x = 0; x + factor <= image.width; x += factor * 5) {
            const at = (px, py) => ((y + py) * image.width + x + px) * 4;
            let same = true;
            for (let py = 0; py < factor; py++) for (let px = 0; px < factor; px++) for (let c = 0; c < 3; c++) if (pixels[at(px, py) + c] !== pixels[at(0, 0) + c]) same = false;
            total++;
            if (same) uniform++;
          }
        }
        return { uniform, total };
      }, { data: shot.toString('base64'), factor: deviceWidth / 480 });
      check(blocks.total > 1000 && blocks.uniform === blocks.total, `every sampled logical pixel is a uniform block (${blocks.uniform} of ${blocks.total})`);
      results.crisp = blocks;
    }
    await page.context().close();
  }

  page = await openPage(1);
  const harness = (expression, arg) => page.evaluate(expression, arg);

  // ---- lobby ----
  step('lobby and countdown');
  await harness(() => window.harness.load(0));
  await harness(() => window.harness.to(2));
  const lobby = await harness(() => ({ shown: window.harness.visible('breach-lobby'), text: document.querySelector('#breach-lobby h2').textContent, rows: document.querySelectorAll('#breach-lobby li').length }));
  check(lobby.shown && /Match starts in \d/.test(lobby.text), `the countdown shows (${JSON.stringify(lobby)})`);
  check(lobby.rows === 8, `both teams are listed (${lobby.rows} rows)`);
  results.lobby = lobby;

  // ---- vision: what was not sent is not drawn; what was sent is ----
  step('enemies out of view are not drawn; enemies in view are');
  const count = await harness(() => window.harness.messageCount());
  let hiddenChecked = 0;
  let shownChecked = 0;
  let shownMatched = 0;
  for (let index = 30; index < count - 2; index += 10) {
    await harness((i) => window.harness.to(i), index);
    const { message, state } = await harness((i) => ({ message: window.harness.message(i), state: window.harness.state() }), index);
    if (!message.hidden || !state.own || !state.own.alive || state.phase !== 2) continue;
    const enemyTeam = 1 - state.init.team;
    for (const [slot, x, y] of message.hidden) {
      const [cx, cy] = await harness(([px, py]) => window.harness.toCanvas(px, py), [x, y]);
      if (cx < 6 || cy < 6 || cx > 474 || cy > 264) continue;
      // Nothing drawn near it (another, visible player could stand close by).
      const near = state.drawn.players.some((p) => Math.hypot(p.x - x, p.y - y) < 9);
      if (near || (state.drawn.own && Math.hypot(state.drawn.own.x - x, state.drawn.own.y - y) < 9)) continue;
      check(!state.others.some((other) => other.slot === slot), `slot ${slot} is not held while hidden`);
      for (const [dx, dy] of [[0, 0], [1, 0], [-1, 0], [0, 1], [0, -1]]) {
        const colour = await harness(([px, py]) => window.harness.pixel(px, py), [cx + dx, cy + dy]);
        check(!isEnemyColour(colour, enemyTeam), `message ${index}: nothing enemy-coloured where hidden slot ${slot} really is (${colour})`);
      }
      hiddenChecked++;
    }
    for (const drawn of state.drawn.players) {
      if (drawn.team !== enemyTeam) continue;
      const [cx, cy] = await harness(([px, py]) => window.harness.toCanvas(px, py), [drawn.x, drawn.y]);
      if (cx < 2 || cy < 2 || cx > 478 || cy > 268) continue;
      const colour = await harness(([px, py]) => window.harness.pixel(px, py), [cx + 2, cy + 2]);
      shownChecked++;
      if (isEnemyColour(colour, enemyTeam)) shownMatched++;
    }
  }
  check(hiddenChecked >= 10, `hidden enemies on screen checked: ${hiddenChecked}`);
  check(shownChecked >= 3 && shownMatched >= shownChecked * 0.8, `sent enemies are drawn: ${shownMatched} of ${shownChecked}`);
  results.vision = { hiddenChecked, shownChecked, shownMatched };

  // ---- destruction ----
  step('a destroyed wall slice becomes a hole');
  // Messages of ann's stream that destroy slices, found with the client's own decoder.
  const fixture = JSON.parse(readFileSync(join(webDir, 'test/fixtures/breach_match.json'), 'utf8'));
  const candidates = [];
  fixture.viewers[0].messages.forEach((message, index) => {
    if (!message.hex) return;
    for (const frame of decodeServerMessage(hexToBytes(message.hex))) {
      if (frame.type !== 'state') continue;
      const { indices, hitPoints } = frame.value.walls;
      const destroyed = indices.filter((_, i) => hitPoints[i] === 0);
      if (destroyed.length > 0) candidates.push({ index, destroyed });
    }
  });
  check(candidates.length > 0, 'the recording destroys slices');
  let hole = null;
  for (const candidate of candidates.slice(0, 10)) {
    await harness(() => window.harness.load(0));
    await harness((i) => window.harness.to(i), candidate.index - 1);
    for (const slice of candidate.destroyed) {
      const { x, y } = await harness((s) => window.harness.slice(s), slice);
      const [cx, cy] = await harness(([px, py]) => window.harness.toCanvas(px + 1, py + 1), [x, y]);
      if (cx < 0 || cy < 0 || cx >= 480 || cy >= 270) continue;
      hole = { index: candidate.index, slice, x, y, wall: await harness(([px, py]) => window.harness.pixel(px, py), [cx, cy]) };
      break;
    }
    if (!hole) continue;
    await harness((i) => window.harness.to(i), hole.index);
    const [cx, cy] = await harness(([px, py]) => window.harness.toCanvas(px + 1, py + 1), [hole.x, hole.y]);
    hole.floor = await harness(([px, py]) => window.harness.pixel(px, py), [cx, cy]);
    hole.hitPoints = (await harness((s) => window.harness.slice(s), hole.slice)).hitPoints;
    hole.inView = await harness(([px, py]) => window.harness.inView(px, py), [hole.x + 1, hole.y + 1]);
    break;
  }
  check(hole, 'the recording destroys a slice on screen');
  check(isWood(hole.wall), `before: the slice is drawn as wood (${hole.wall})`);
  check(hole.hitPoints === 0 && isFloor(hole.floor), `after: the floor shows through the hole (${hole.floor})`);
  check(hole.inView, 'after: the hole is inside the view, not fog');
  results.hole = hole;
  await page.screenshot({ path: join(artifactDir, 'breach-hole.png') });

  // ---- sound ----
  step('sound events build WebAudio graphs: panner, gain, low-pass when muffled');
  await harness(() => window.harness.load(0));
  await harness((i) => window.harness.to(i), count - 3);
  const sound = await harness(() => window.harness.soundLog());
  const heard = sound.log.filter((voice) => voice.origin === 'heard');
  const muffled = heard.filter((voice) => voice.muffled);
  check(sound.stats.played >= 10 && sound.stats.nodes.panner === sound.stats.played && sound.stats.nodes.gain === sound.stats.played, `a panner and a gain per voice (${JSON.stringify(sound.stats)})`);
  check(muffled.length >= 1 && muffled.every((voice) => voice.cutoffHz === 700), `muffled voices are low-passed (${muffled.length})`);
  check(heard.every((voice) => voice.muffled || voice.cutoffHz === null), 'open voices are not filtered');
  check(sound.stats.heard > sound.stats.muffled && sound.stats.muffled >= 1, `heard ${sound.stats.heard}, muffled ${sound.stats.muffled}`);
  check(heard.every((voice) => voice.pan >= -1 && voice.pan <= 1), 'pans are in range');
  const east = await harness(() => window.harness.renderSound({ kind: 3, loudness: 7, direction: 0, muffled: false }));
  const west = await harness(() => window.harness.renderSound({ kind: 3, loudness: 7, direction: 32, muffled: false }));
  const through = await harness(() => window.harness.renderSound({ kind: 3, loudness: 7, direction: 0, muffled: true }));
  check(east.right > east.left * 2 && west.left > west.right * 2, `direction pans (east ${east.left.toFixed(3)}/${east.right.toFixed(3)}, west ${west.left.toFixed(3)}/${west.right.toFixed(3)})`);
  check(east.right > 0.01, 'the offline render is not silent');
  check(through.highShare < east.highShare * 0.5 && through.nodes.filter === east.nodes.filter + 1, `a wall takes the highs (${through.highShare.toFixed(4)} vs ${east.highShare.toFixed(4)})`);
  results.sound = { played: sound.stats.played, muffled: sound.stats.muffled, east: [east.left, east.right], west: [west.left, west.right], highShare: [east.highShare, through.highShare] };

  // ---- scoreboard and vote ----
  step('scoreboard and vote at the end of the match');
  await harness(() => window.harness.load(0));
  let ending = null;
  for (let index = 0; index < count; index += 5) {
    await harness((i) => window.harness.to(i), index);
    const state = await harness(() => window.harness.state());
    if (state.phase === 3 && state.scoreboard) {
      ending = index;
      break;
    }
  }
  check(ending !== null, 'the recording reaches the scoreboard');
  const board = await harness(() => ({
    shown: window.harness.visible('breach-scoreboard'),
    title: document.querySelector('#breach-scoreboard h2').textContent,
    rows: document.querySelectorAll('#breach-scoreboard tbody tr').length,
    stay: window.harness.visible('breach-vote-stay'),
    leave: window.harness.visible('breach-vote-leave'),
  }));
  check(board.shown && /^(Victory|Defeat|Draw) · \d+ : \d+$/.test(board.title), `scoreboard title (${board.title})`);
  check(board.rows === 8 && board.stay && board.leave, `eight rows and both vote buttons (${JSON.stringify(board)})`);
  await page.click('#breach-vote-stay');
  const votes = await harness(() => window.harness.sent().filter((frame) => frame[0] === 0x11));
  check(votes.length === 1 && votes[0][1] === 1, `the stay button sent [0x11, 1] (${JSON.stringify(votes)})`);
  await page.screenshot({ path: join(artifactDir, 'breach-scoreboard.png') });
  await page.click('#breach-vote-leave');
  const leaving = await harness(() => ({ frames: window.harness.sent().filter((frame) => frame[0] === 0x11), leaving: window.harness.leaving() }));
  check(leaving.frames.at(-1)[1] === 2 && leaving.leaving, `leave sends [0x11, 2] and the session expects the room to release the seat (${JSON.stringify(leaving)})`);
  results.scoreboard = { ...board, at: ending };

  // ---- the restart reaches the client ----
  await harness((i) => window.harness.to(i), count - 3);
  const restarted = await harness(() => window.harness.state());
  check(restarted.init.matchGeneration === 2 && restarted.map.id === 2, `the restart is a new match on the next map (${restarted.init.matchGeneration}, map ${restarted.map.id})`);
  check(!(await harness(() => window.harness.visible('breach-scoreboard'))), 'the scoreboard is gone after the restart');

  // ---- spectator ----
  step('the spectator sees both teams without fog and hears nothing');
  await harness(() => window.harness.load(2));
  const spectatorTeams = new Set();
  for (let index = 40; index < 400; index += 20) {
    await harness((i) => window.harness.to(i), index);
    const state = await harness(() => window.harness.state());
    check(state.spectating && state.own === null && state.drawn.fog === false, `spectator frame ${index} has no fog`);
    for (const drawn of state.drawn.players) spectatorTeams.add(drawn.team);
  }
  const spectatorSound = await harness(() => window.harness.soundLog());
  check(spectatorTeams.size === 2, `players of both teams are drawn (${[...spectatorTeams]})`);
  check(spectatorSound.log.every((voice) => voice.origin !== 'heard'), 'spectators are sent no sounds');
  check(await harness(() => window.harness.visible('breach-canvas')), 'the spectator canvas is shown');
  check(/Spectating/.test(await harness(() => document.querySelector('.breach-spectator span').textContent)), 'the spectator bar says so');
  await page.screenshot({ path: join(artifactDir, 'breach-spectator.png') });


  // ---- the live page over a real WebSocket (a stand-in room playing the recording) ----
  step('live page: mode choice, matchmake, join, inputs, resume, vote, leave');
  await page.context().close();
  const context = await browser.newContext({ viewport: { width: 1280, height: 720 } });
  page = await context.newPage();
  page.on('pageerror', (error) => pageErrors.push(String(error)));
  page.on('console', (message) => {
    if (message.type() === 'error' || (message.type() === 'warning' && message.text().startsWith('breach'))) pageErrors.push(`console ${message.type()}: ${message.text()}`);
  });
  await page.goto(`${base}/`);
  await page.waitForSelector('#start:not([hidden])');
  await page.check('input[name="mode"][value="breach"]');
  await page.fill('#name', 'ann');
  await page.click('#play');
  const waitFor = (predicate, arg, timeout = 10_000) => page.waitForFunction(predicate, arg, { timeout, polling: 50 });
  await waitFor(() => window.__breach && window.__breach.status().state === 'playing' && window.__breach.state().phase === 2 && window.__breach.state().own?.alive);
  check(room.matchmakes.length === 1, `one matchmake (${room.matchmakes.length})`);
  check(room.matchmakes[0].body.mode === 'breach' && room.matchmakes[0].body.playerName === 'ann', `matchmake asks for breach (${JSON.stringify(room.matchmakes[0].body)})`);
  const joinFrame = room.received[0].bytes;
  check(joinFrame[0] === 0x01 && joinFrame[1] === 12 && Buffer.from(joinFrame.slice(-12)).toString() === 'join-token-1', `Join v12 with the join token (${joinFrame})`);
  check(await page.evaluate(() => !document.getElementById('breach').hidden && document.getElementById('start').hidden), 'the breach screen replaced the menu');
  const live = {};

  const inputs = (from, to = Infinity) => room.received.filter((frame) => frame.bytes[0] === 0x10 && frame.at >= from && frame.at < to);
  const box = await page.evaluate(() => {
    const rect = document.getElementById('breach-canvas').getBoundingClientRect();
    return { x: rect.left, y: rect.top, width: rect.width, height: rect.height };
  });
  // The mouse moving all the time for a second: at most one input per tick.
  const movingFrom = Date.now();
  for (let i = 0; Date.now() - movingFrom < 1000; i++) {
    const angle = i * 0.15;
    await page.mouse.move(box.x + box.width / 2 + Math.cos(angle) * 200, box.y + box.height / 2 + Math.sin(angle) * 150);
  }
  const movingTo = Date.now();
  const aiming = inputs(movingFrom, movingTo);
  const seconds = (movingTo - movingFrom) / 1000;
  check(aiming.length >= 15 * seconds && aiming.length <= 31 * seconds + 1, `${aiming.length} inputs in ${seconds.toFixed(2)} s of continuous mouse movement (one per tick at most)`);
  const facings = new Set(aiming.map((frame) => frame.bytes.slice(-3, -1).join(',')));
  check(facings.size >= aiming.length * 0.8, `the facing follows the mouse (${facings.size} distinct of ${aiming.length})`);
  live.aiming = { inputs: aiming.length, seconds };

  // Still: nothing to send. The stand-in pauses the recording for a second (in it the
  // player moves whatever it sends, and a moving player re-aims at a still mouse).
  room.burst = 0;
  await page.waitForTimeout(150);
  const stillFrom = Date.now();
  await page.waitForTimeout(1000);
  const still = inputs(stillFrom, Date.now());
  room.burst = 1;
  check(still.length <= 1, `standing still with the mouse still sends nothing (${still.length})`);

  // Walking east for half a second: one input per tick, direction 1, sequences rising by one.
  const walkFrom = Date.now();
  await page.keyboard.down('KeyD');
  await page.waitForTimeout(500);
  await page.screenshot({ path: join(artifactDir, 'breach-live.png') });
  await page.keyboard.up('KeyD');
  const walkSeconds = (Date.now() - walkFrom) / 1000;
  await page.waitForTimeout(100);
  const walking = inputs(walkFrom, Date.now());
  const walkingEast = walking.filter((frame) => {
    const bytes = Uint8Array.from(frame.bytes);
    let at = 1;
    while (bytes[at] & 0x80) at++;
    return (bytes[at + 1] & 0x0f) === 1;
  });
  check(walkingEast.length >= 8 && walkingEast.length <= 31 * walkSeconds + 2, `${walkingEast.length} inputs walking east for ${walkSeconds.toFixed(2)} s`);
  const sequence = (bytes) => {
    let value = 0;
    for (let at = 1, shift = 0; ; at++, shift += 7) {
      value += (bytes[at] & 0x7f) * 2 ** shift;
      if (!(bytes[at] & 0x80)) return value;
    }
  };
  const sequences = inputs(0).map((frame) => sequence(frame.bytes));
  check(sequences.every((value, i) => i === 0 || value === sequences[i - 1] + 1), 'sequence numbers rise by one per input');
  check(sequences[0] === 1, `the first input is sequence 1 (${sequences[0]})`);
  live.walking = { inputs: walkingEast.length, seconds: walkSeconds };

  // Fire with the mouse button: the fire bit goes out.
  const fireFrom = Date.now();
  await page.mouse.down();
  await page.waitForTimeout(200);
  await page.mouse.up();
  await page.waitForTimeout(100);
  check(inputs(fireFrom).some((frame) => (frame.bytes.at(-1) & 1) === 1), 'fire sets the fire bit');

  // The network drops: the client resumes its seat with the reconnect token.
  const beforeDrop = sequences.at(-1);
  room.connections.at(-1).destroy();
  await waitFor(() => window.__breach.status().counts.resumes === 1 && window.__breach.status().state === 'playing', undefined, 8000);
  const resume = room.received.find((frame) => frame.bytes[0] === 0x03);
  check(resume && resume.bytes.length === 19 && resume.bytes[1] === 12 && resume.bytes[2] === 16 && resume.bytes.slice(3).every((b, i) => b === room.sessionToken[i]), `Resume v12 with the reconnect token (${resume?.bytes})`);
  check(room.matchmakes.length === 1, 'no new matchmake for a resume');
  const history = await page.evaluate(() => window.__breach.status().history);
  check(history.includes('resuming'), `the drop was shown (${history.join(' → ')})`);
  await page.keyboard.down('KeyS');
  await page.waitForTimeout(200);
  await page.keyboard.up('KeyS');
  const afterResume = inputs(0).map((frame) => sequence(frame.bytes)).filter((value, i, all) => i > 0 && value !== all[i - 1] + 1);
  check(afterResume.length === 1 && afterResume[0] > beforeDrop, `after the resume, numbering goes on above the acknowledged inputs (${afterResume})`);

  // Fast-forward to the scoreboard; vote stay, then leave; the room releases the seat.
  const scoreboardAt = liveStream.findIndex((bytes) => bytes && decodeServerMessage(Uint8Array.from(bytes)).some((frame) => frame.type === 'scoreboard'));
  room.burst = 12;
  await waitFor((at) => window.__breach.state().scoreboard !== null, scoreboardAt, 15_000);
  room.burst = 1;
  await page.waitForSelector('#breach-scoreboard:not([hidden])', { timeout: 5000 });
  await page.click('#breach-vote-stay');
  await page.waitForTimeout(200);
  const stay = room.received.filter((frame) => frame.bytes[0] === 0x11);
  check(stay.length === 1 && stay[0].bytes[1] === 1, `the stay vote reached the room (${JSON.stringify(stay.map((f) => f.bytes))})`);
  const liveSound = await page.evaluate(() => window.__breach.state().sound);
  check(liveSound.played > 0 && liveSound.nodes.panner === liveSound.played && liveSound.nodes.gain === liveSound.played, `sounds played through WebAudio (${JSON.stringify(liveSound.nodes)}, ${liveSound.played} played)`);
  await page.click('#breach-vote-leave');
  await page.waitForTimeout(200);
  check(room.received.filter((frame) => frame.bytes[0] === 0x11).at(-1).bytes[1] === 2, 'the leave vote reached the room');
  // The runtime releases a leaving seat and closes the connection.
  room.connections.at(-1).close();
  await page.waitForSelector('#start:not([hidden])', { timeout: 5000 });
  const endMessage = await page.evaluate(() => document.getElementById('start-error').textContent);
  check(endMessage === 'You left the match.', `back on the menu with the reason (${endMessage})`);
  check(room.connections.length === 2, `no reconnect after leaving (${room.connections.length} connections)`);
  live.sound = { played: liveSound.played, muffled: liveSound.muffled };
  results.live = live;

  check(pageErrors.length === 0, `no errors in the page: ${pageErrors.join('; ')}`);

  // ---- benchmark ----
  page = await openPage(1);
  step('benchmark: decode + render per frame');
  results.bench = [];
  for (const viewer of [0, 2]) {
    results.bench.push(await harness((v) => window.harness.bench(v), viewer));
  }
  check(pageErrors.length === 0, `no errors in the page: ${pageErrors.join('; ')}`);
} catch (error) {
  if (page) await page.screenshot({ path: join(artifactDir, 'breach-failure.png') }).catch(() => {});
  console.error(`breach browser test: FAILED: ${error.message}`);
  console.error(JSON.stringify(results, null, 2));
  await browser.close();
  server.close();
  process.exit(1);
}
await browser.close();
server.close();
clearTimeout(deadline);
writeFileSync(join(artifactDir, 'breach-results.json'), `${JSON.stringify(results, null, 2)}\n`);
for (const bench of results.bench) {
  console.log(
    `breach decode + render (${bench.viewer}, ${bench.messages} messages, ${bench.othersDrawnAvg} others drawn on average, ${bench.canvas}): ` +
      `decode ${bench.decodeMsPerMessage.mean} ms/message (p95 ${bench.decodeMsPerMessage.p95}), ` +
      `render ${bench.renderMsPerFrame.mean} ms/frame (p95 ${bench.renderMsPerFrame.p95}), ` +
      `${bench.msPerDisplayedFrame} ms per displayed frame at 60 Hz`,
  );
}
console.log(`breach browser test: passed in ${((Date.now() - started) / 1000).toFixed(1)} s; results in ${join(artifactDir, 'breach-results.json')}`);
