// Breach's custom-lobby waiting room in real headless Chromium, without a server: web/ served
// from disk on 127.0.0.1 and web/test/breach-bench.html replaying the scripted lobby of
// web/test/fixtures/breach-lobby.json (written by crates/coil-breach/tests/lobby_fixtures.rs)
// into the real client, as web/test/breach.browser.mjs does for matches.
//
// Checks: the host sees the rules, itself as host, Kick and Make host on every other player,
// Start now, Edit settings and the map vote with its counts, and each control sends the frame
// the server reads (kick 0x12, make host 0x13, start 0x14, settings 0x15 with the form's text,
// map vote 0x16); a refused command's notice is shown; a player sees who hosts and no
// controls; a spectator sees no map vote; a kicked player's client leaves with the reason.
// Run: node web/test/breach-lobby.browser.mjs (needs playwright-core from web/test's
// package.json and /usr/bin/chromium, as web/test/run-browser-test.sh installs them).
// Screenshots go to $ARTIFACT_DIR (artifacts/web).

import { createServer } from 'node:http';
import { mkdirSync, readFileSync } from 'node:fs';
import { dirname, extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

const DEADLINE_MS = 60_000;
const webDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const artifactDir = process.env.ARTIFACT_DIR ?? 'artifacts/web';
const executablePath = process.env.CHROMIUM ?? '/usr/bin/chromium';
mkdirSync(artifactDir, { recursive: true });

const started = Date.now();
const deadline = setTimeout(() => {
  console.error(`breach lobby browser test: FAILED, over the ${DEADLINE_MS / 1000} s deadline`);
  process.exit(1);
}, DEADLINE_MS);
const step = (text) => console.log(`[${((Date.now() - started) / 1000).toFixed(1)}s] ${text}`);

function check(condition, message) {
  if (!condition) throw new Error(`check failed: ${message}`);
}

const types = { '.html': 'text/html', '.js': 'text/javascript', '.mjs': 'text/javascript', '.css': 'text/css', '.json': 'application/json' };
const server = createServer((request, response) => {
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
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const base = `http://127.0.0.1:${server.address().port}`;

const browser = await chromium.launch({
  executablePath,
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
});
const pageErrors = [];
let page;
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 720 } });
  page = await context.newPage();
  page.on('pageerror', (error) => pageErrors.push(String(error)));
  page.on('console', (message) => {
    if (message.type() === 'error' || (message.type() === 'warning' && message.text().startsWith('breach'))) pageErrors.push(`console ${message.type()}: ${message.text()}`);
  });
  await page.goto(`${base}/test/breach-bench.html`);
  await page.waitForFunction(() => window.harnessReady === true, undefined, { timeout: 10_000 });
  const harness = (expression, arg) => page.evaluate(expression, arg);
  const sentSince = async (count) => (await harness(() => window.harness.sent())).slice(count);

  // ---- the host's waiting room ----
  step('the host sees the rules, the players and its controls');
  await harness(() => window.harness.loadLobby('host'));
  await harness(() => window.harness.to(1)); // both votes are in
  const room = await harness(() => ({
    shown: window.harness.visible('breach-lobby'),
    title: document.querySelector('#breach-lobby h2').textContent,
    rules: document.querySelector('#breach-lobby p.breach-quiet').textContent,
    host: window.harness.text('breach-lobby-host'),
    rows: [...document.querySelectorAll('#breach-lobby li')].map((li) => li.textContent),
    kicks: document.querySelectorAll('#breach-lobby button.breach-kick').length,
    promotes: document.querySelectorAll('#breach-lobby button.breach-make-host').length,
    start: window.harness.visible('breach-start-early') && !document.getElementById('breach-start-early').disabled,
    edit: window.harness.visible('breach-edit-settings'),
    vote: window.harness.visible('breach-map-vote'),
    voteButtons: [...document.querySelectorAll('#breach-map-vote button')].map((b) => [b.textContent, b.classList.contains('chosen')]),
  }));
  check(room.shown && room.title === 'Custom lobby', `the waiting room shows (${JSON.stringify(room)})`);
  check(/^Warehouse · 6 players · first to 20 · 10 min · map vote · 3 of 6 here · 1 watching$/.test(room.rules), `the rules line: ${room.rules}`);
  check(/You are the host/.test(room.host), `the host is told: ${room.host}`);
  check(room.rows.length === 3 && room.rows.some((row) => /^host ★ host$/.test(row)), `players with the host marked: ${JSON.stringify(room.rows)}`);
  check(room.kicks === 2 && room.promotes === 2, `kick and make host on the two others (${room.kicks}, ${room.promotes})`);
  check(room.start && room.edit, 'start now and edit settings for the host');
  check(room.vote && JSON.stringify(room.voteButtons) === JSON.stringify([['Warehouse (1)', false], ['Courtyard (1)', true]]), `map vote with counts: ${JSON.stringify(room.voteButtons)}`);
  await page.screenshot({ path: join(artifactDir, 'breach-lobby-host.png') });

  step('each control sends the frame the server reads');
  const before = (await harness(() => window.harness.sent())).length;
  await page.click('#breach-map-vote button[data-map="1"]');
  await page.click('#breach-lobby button.breach-kick');
  await page.click('#breach-lobby button.breach-make-host');
  await page.click('#breach-start-early');
  await page.click('#breach-edit-settings');
  check(await harness(() => window.harness.visible('breach-settings')), 'the settings form opens');
  const filled = await harness(() => ({ kill: document.querySelector('#breach-settings input[name=killLimit]').value, map: document.querySelector('#breach-settings select[name=map]').value }));
  check(filled.kill === '20' && filled.map === 'warehouse', `the form starts from the lobby's rules: ${JSON.stringify(filled)}`);
  await page.fill('#breach-settings input[name=killLimit]', '25');
  await page.selectOption('#breach-settings select[name=map]', 'courtyard');
  await page.check('#breach-settings input[name=friendlyFire]');
  await page.click('#breach-settings button[type=submit]');
  const sent = await sentSince(before);
  const kinds = sent.map((frame) => frame[0]);
  check(JSON.stringify(kinds) === JSON.stringify([0x16, 0x12, 0x13, 0x14, 0x15]), `frames sent: ${JSON.stringify(kinds)}`);
  check(sent[0][1] === 1, 'the vote names the map');
  check(sent[1][1] === sent[2][1] && sent[1][1] !== 0, `kick and make host name the player's slot (${sent[1][1]})`);
  const settings = new TextDecoder().decode(Uint8Array.from(sent[4].slice(2)));
  check(settings === 'friendlyFire=true;killLimit=25;map=courtyard;mapVote=true;maxPlayers=6;timeLimitSecs=600', `settings text: ${settings}`);

  step('a refused command is explained');
  await harness(() => window.harness.to(3)); // the server refused killLimit=0
  const notice = await harness(() => ({ shown: window.harness.visible('breach-notice'), text: window.harness.text('breach-notice') }));
  check(notice.shown && notice.text === 'killLimit must be a whole number between 1 and 200', `notice: ${JSON.stringify(notice)}`);
  await harness(() => window.harness.to(8)); // handed the host over
  const after = await harness(() => ({ kicks: document.querySelectorAll('#breach-lobby button.breach-kick').length, controls: window.harness.visible('breach-start-early'), host: window.harness.text('breach-lobby-host') }));
  check(after.kicks === 0 && !after.controls && /^Host: player\./.test(after.host), `no controls after the hand-over: ${JSON.stringify(after)}`);

  // ---- a player, a spectator, the kicked ----
  step('a player sees the host and no controls; a spectator no vote');
  await harness(() => window.harness.loadLobby('player'));
  await harness(() => window.harness.to(2));
  const player = await harness(() => ({ host: window.harness.text('breach-lobby-host'), kicks: document.querySelectorAll('#breach-lobby button.breach-kick').length, controls: window.harness.visible('breach-start-early'), vote: window.harness.visible('breach-map-vote'), notice: window.harness.text('breach-notice') }));
  check(/^Host: host\./.test(player.host) && player.kicks === 0 && !player.controls && player.vote, `player view: ${JSON.stringify(player)}`);
  check(player.notice === 'only the host can do that', `the player's refused start: ${player.notice}`);
  await harness(() => window.harness.loadLobby('spectator'));
  await harness(() => window.harness.to(2));
  check(!(await harness(() => window.harness.visible('breach-map-vote'))), 'spectators do not vote');

  step("the kicked player's client leaves with the reason");
  const kicked = await harness(() => window.harness.loadLobby('kicked'));
  await harness((last) => window.harness.to(last), kicked.messages - 1);
  const leaving = await harness(() => window.harness.leaving());
  check(leaving === 'The host removed you from this lobby.', `leaving: ${leaving}`);
  check(pageErrors.length === 0, `no errors in the page: ${pageErrors.join('; ')}`);
} catch (error) {
  if (page) await page.screenshot({ path: join(artifactDir, 'breach-lobby-failure.png') }).catch(() => {});
  console.error(`breach lobby browser test: FAILED: ${error.message}`);
  await browser.close();
  server.close();
  process.exit(1);
}
await browser.close();
server.close();
clearTimeout(deadline);
console.log(`breach lobby browser test: passed in ${((Date.now() - started) / 1000).toFixed(1)} s`);
