// Breach's lobby browser (web/src/lobbies.js) in real headless Chromium against a real
// `coil serve`: the page, the lobby routes, the feed, the room and its WebSockets are the
// server's. Run through web/test/run-browser-test.sh, which starts the server and sets COIL_URL;
// by hand: COIL_URL=http://127.0.0.1:8787 node web/test/lobbies.browser.mjs
//
// Three browser contexts (three players, each its own storage):
// - B picks breach (no list, no feed yet), opens the lobby browser and waits on the live feed;
// - A creates a private lobby with a password and rules (a kill limit of 0 first: the server's
//   `bad_settings` sentence is shown next to the form), signs in as a guest on the way, lands in
//   the waiting room with those rules and gets the invite link, then a fresh one;
// - B sees the lobby appear without asking for the list again (the feed), with its lock, the
//   password badge, map, players and host; a wrong password shows the server's message, the
//   right one seats B; both waiting rooms show both names;
// - C opens the invite link and is seated straight away; all three see three names;
// - D opens an invite to an unknown lobby and is told so on the start screen.
// No page logs an error. Bounded by a 90-second deadline; loopback only.
//
// Until crates/coil-server/src/web.rs embeds web/src/lobbies.js, the server answers 404 for
// it and this test supplies that one file from disk (it says so); the rest is the binary's.
// WEB_FROM_DISK=1 serves the whole page from web/ (to try changes without rebuilding).

import { mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

const DEADLINE_MS = 90_000;
const base = (process.env.COIL_URL ?? '').replace(/\/$/, '');
if (!base) {
  console.error('lobbies browser test: set COIL_URL to a running coil serve');
  process.exit(2);
}
const webDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const artifactDir = process.env.ARTIFACT_DIR ?? 'artifacts/web';
const executablePath = process.env.CHROMIUM ?? '/usr/bin/chromium';
mkdirSync(artifactDir, { recursive: true });

const started = Date.now();
let currentStep = 'starting';
const step = (text) => {
  currentStep = text;
  console.log(`[${((Date.now() - started) / 1000).toFixed(1)}s] ${text}`);
};
const deadline = setTimeout(() => {
  console.error(`lobbies browser test: FAILED, over the ${DEADLINE_MS / 1000} s deadline at "${currentStep}"`);
  process.exit(1);
}, DEADLINE_MS);

function check(condition, message) {
  if (!condition) throw new Error(`check failed: ${message}`);
}

const fromDisk = process.env.WEB_FROM_DISK === '1';
const embedded = (await fetch(`${base}/src/lobbies.js`)).status === 200;
if (!embedded) console.log('  note: the server does not embed web/src/lobbies.js yet; the test serves it from disk');

const args = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'];
// A page fulfilled by the test has no network address of its own, and Chromium's local network
// access checks would then refuse its requests to 127.0.0.1.
if (fromDisk) args.push('--disable-features=LocalNetworkAccessChecks');
const browser = await chromium.launch({ executablePath, headless: true, args });
const pages = {};
const pageErrors = [];

async function open(who, { name } = {}) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  if (name) await context.addInitScript((saved) => localStorage.setItem('coil.name', saved), name);
  const page = await context.newPage();
  page.on('pageerror', (error) => pageErrors.push(`${who}: ${error}`));
  page.on('console', (message) => {
    // Refused requests are expected (the bad settings, the wrong password) and Chromium logs
    // each one; anything else logged as an error is a failure.
    if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) pageErrors.push(`${who} console: ${message.text()}`);
  });
  const serve = (file, contentType) => (route) => route.fulfill({ body: readFileSync(join(webDir, file)), contentType });
  if (fromDisk) {
    await page.route((url) => url.origin === base && (url.pathname === '/' || url.pathname === '/index.html'), serve('index.html', 'text/html'));
    await page.route(`${base}/style.css`, serve('style.css', 'text/css'));
    await page.route(`${base}/src/**/*.{js,css}`, (route) => {
      const file = new URL(route.request().url()).pathname.slice(1);
      return serve(file, file.endsWith('.css') ? 'text/css' : 'text/javascript')(route);
    });
  } else if (!embedded) {
    await page.route(`${base}/src/lobbies.js`, serve('src/lobbies.js', 'text/javascript'));
  }
  const listRequests = [];
  page.on('request', (request) => {
    const url = new URL(request.url());
    if (url.pathname === '/api/lobbies' && request.method() === 'GET') listRequests.push(url.search);
  });
  pages[who] = page;
  return { page, listRequests };
}

const waitFor = (page, predicate, arg, timeout = 15_000) => page.waitForFunction(predicate, arg, { timeout, polling: 50 });
const visible = (page, id) => page.evaluate((target) => {
  const node = document.getElementById(target);
  return Boolean(node) && node.checkVisibility();
}, id);
/** The names in a waiting room (the roster rows of breach's lobby screen). */
const waitingNames = (page) => page.evaluate(() => [...document.querySelectorAll('#breach-lobby li')].map((li) => li.textContent));

try {
  const password = 'correct-horse-42';

  step('B opens the lobby browser and waits on the live feed');
  const b = await open('B');
  await b.page.goto(`${base}/?mode=breach`);
  await waitFor(b.page, () => !document.getElementById('lobbies').hidden && window.__coilLobbies !== undefined);
  check(b.listRequests.length === 0 && !(await b.page.evaluate(() => window.__coilLobbies.feedOpen())), 'no list and no feed before the player opens the browser');
  await b.page.click('#lobby-tab-browse');
  await waitFor(b.page, () => window.__coilLobbies.feedOpen());
  check(b.listRequests.length >= 1, 'the browser asked for the first page');

  step('A creates a private lobby: a bad kill limit first');
  const a = await open('A');
  await a.page.goto(`${base}/?mode=breach`);
  await waitFor(a.page, () => !document.getElementById('lobbies').hidden);
  await a.page.click('#lobby-tab-create');
  await a.page.check('#lobby-create input[name=private]');
  await a.page.fill('#lobby-create input[name=password]', password);
  await a.page.selectOption('#lobby-create select[name=map]', 'courtyard');
  await a.page.fill('#lobby-create input[name=killLimit]', '0');
  await a.page.fill('#lobby-create input[name=timeLimitSecs]', '300');
  await a.page.selectOption('#lobby-create select[name=maxPlayers]', '4');
  await a.page.check('#lobby-create input[name=mapVote]');
  await a.page.click('#lobby-create button[type=submit]');
  await waitFor(a.page, () => /whole number/.test(document.getElementById('lobby-create-error').textContent));
  const badSettings = await a.page.evaluate(() => document.getElementById('lobby-create-error').textContent);
  check(badSettings === 'killLimit must be a whole number between 1 and 200.', `the server's bad_settings sentence is shown: ${badSettings}`);
  check(await visible(a.page, 'lobby-create'), 'the form stays for a correction');
  const host = await a.page.evaluate(() => window.__coilAccount.account());
  check(host && host.guest && host.displayName, `A was signed in as a guest to create (${JSON.stringify(host)})`);

  step('A creates it with a kill limit of 20 and lands in its waiting room');
  const creates = [];
  a.page.on('request', (request) => {
    if (new URL(request.url()).pathname === '/api/lobbies' && request.method() === 'POST') creates.push({ auth: request.headers().authorization ?? null, body: request.postDataJSON() });
  });
  await a.page.fill('#lobby-create input[name=killLimit]', '20');
  await a.page.click('#lobby-create button[type=submit]');
  await waitFor(a.page, () => document.getElementById('breach-lobby')?.checkVisibility() === true && !document.getElementById('lobby-invite').hidden);
  const sent = creates.at(-1);
  check(sent?.auth?.startsWith('Bearer '), `the create carries the access token (${sent?.auth})`);
  check(JSON.stringify(sent.body.settings) === JSON.stringify({ map: 'courtyard', killLimit: 20, timeLimitSecs: 300, maxPlayers: 4, friendlyFire: false, mapVote: true }) && sent.body.private === true && sent.body.password === password,
    `the create body: ${JSON.stringify(sent.body)}`);
  await waitFor(a.page, () => /^Courtyard · 4 players/.test(document.querySelector('#breach-lobby p.breach-quiet')?.textContent ?? ''));
  const rules = await a.page.evaluate(() => document.querySelector('#breach-lobby p.breach-quiet').textContent);
  check(/^Courtyard · 4 players · first to 20 · 5 min · map vote/.test(rules), `the room plays the lobby's rules: ${rules}`);
  check(/You are the host/.test(await a.page.evaluate(() => document.getElementById('breach-lobby-host').textContent)), 'A hosts');
  const link = await a.page.evaluate(() => document.getElementById('lobby-invite-link').value);
  const linkUrl = new URL(link);
  const lobbyId = linkUrl.searchParams.get('lobby');
  check(linkUrl.origin === base && linkUrl.pathname === '/' && lobbyId && linkUrl.searchParams.get('invite'), `invite link: ${link}`);
  await a.page.click('#lobby-invite-copy');
  await waitFor(a.page, () => document.getElementById('lobby-invite-status').textContent !== '');

  step('A asks for a fresh invite link');
  await a.page.click('#lobby-invite-new');
  await waitFor(a.page, () => document.getElementById('lobby-invite-status').textContent.startsWith('New link'));
  const freshLink = await a.page.evaluate(() => document.getElementById('lobby-invite-link').value);
  check(freshLink !== link && new URL(freshLink).searchParams.get('lobby') === lobbyId, `a new code for the same lobby: ${freshLink}`);
  await a.page.screenshot({ path: join(artifactDir, 'lobbies-host.png') });

  step('B sees the lobby appear through the feed, locked, with a password badge');
  const listedBefore = b.listRequests.length;
  await waitFor(b.page, (id) => document.querySelector(`#lobby-list li[data-lobby-id="${id}"]`) !== null, lobbyId, 20_000);
  const row = await b.page.evaluate((id) => {
    const li = document.querySelector(`#lobby-list li[data-lobby-id="${id}"]`);
    const text = (cls) => li.querySelector(`.${cls}`)?.textContent ?? null;
    return { lock: text('lobby-lock'), badge: text('lobby-badge'), map: text('lobby-map'), players: text('lobby-players'), phase: text('lobby-phase'), host: text('lobby-host') };
  }, lobbyId);
  check(b.listRequests.length === listedBefore, `no new list request: the feed brought it (${b.listRequests.length} vs ${listedBefore})`);
  check(row.lock === '🔒' && row.badge === 'password' && row.map === 'Courtyard' && row.players === '1/4' && row.phase === 'waiting' && row.host === host.displayName,
    `the row: ${JSON.stringify(row)}`);
  await b.page.screenshot({ path: join(artifactDir, 'lobbies-browser.png') });

  step('B joins with a wrong password, then the right one');
  await b.page.fill('#name', 'bravo');
  await b.page.click(`#lobby-list li[data-lobby-id="${lobbyId}"] button.lobby-join`);
  await waitFor(b.page, () => !document.getElementById('lobby-password-form').hidden);
  await b.page.fill('#lobby-password', 'not-the-password');
  await b.page.click('#lobby-password-form button[type=submit]');
  await waitFor(b.page, () => !document.getElementById('lobby-error').hidden);
  const wrong = await b.page.evaluate(() => document.getElementById('lobby-error').textContent);
  check(wrong === 'Wrong lobby password.', `the server's message for a wrong password: ${wrong}`);
  check(await visible(b.page, 'start') && !(await visible(b.page, 'breach')), 'B is still on the start screen');
  await b.page.fill('#lobby-password', password);
  await b.page.click('#lobby-password-form button[type=submit]');
  await waitFor(b.page, () => document.getElementById('breach-lobby')?.checkVisibility() === true);
  await waitFor(b.page, (name) => [...document.querySelectorAll('#breach-lobby li')].some((li) => li.textContent.includes(name)), host.displayName);
  const bNames = await waitingNames(b.page);
  check(bNames.some((n) => n.includes('bravo')) && bNames.some((n) => n.includes(host.displayName)), `B's waiting room shows both: ${JSON.stringify(bNames)}`);
  await waitFor(a.page, () => [...document.querySelectorAll('#breach-lobby li')].some((li) => li.textContent.includes('bravo')));
  check(await b.page.evaluate(() => document.getElementById('lobby-invite').hidden), 'a guest of the lobby gets no invite panel');

  step('C opens the invite link and is seated');
  const c = await open('C', { name: 'charlie' });
  await c.page.goto(freshLink);
  await waitFor(c.page, () => document.getElementById('breach-lobby')?.checkVisibility() === true);
  for (const [who, page] of [['A', a.page], ['B', b.page], ['C', c.page]]) {
    await waitFor(page, (names) => names.every((name) => [...document.querySelectorAll('#breach-lobby li')].some((li) => li.textContent.includes(name))), [host.displayName, 'bravo', 'charlie']);
    const names = await waitingNames(page);
    check(names.length === 3, `${who} sees three players: ${JSON.stringify(names)}`);
  }
  check(!new URL(c.page.url()).searchParams.has('invite'), `the invite is dropped from the address (${c.page.url()})`);
  await c.page.screenshot({ path: join(artifactDir, 'lobbies-invited.png') });

  step('D opens an invite to a lobby that does not exist: a message, and the start screen');
  const d = await open('D');
  await d.page.goto(`${base}/?lobby=local-00000000&invite=not-a-code`);
  await waitFor(d.page, () => !document.getElementById('lobby-error').hidden);
  const unknown = await d.page.evaluate(() => document.getElementById('lobby-error').textContent);
  check(unknown === 'Could not join from the invite: No such lobby.', `the refusal is shown: ${unknown}`);
  check((await visible(d.page, 'start')) && !(await visible(d.page, 'breach')), 'D stays on the start screen');

  check(pageErrors.length === 0, `no page errors: ${JSON.stringify(pageErrors)}`);
  console.log(`lobbies browser test: passed in ${((Date.now() - started) / 1000).toFixed(1)} s`);
} catch (error) {
  console.error(`lobbies browser test: FAILED at "${currentStep}": ${error.message}`);
  if (pageErrors.length) console.error(`  page errors: ${JSON.stringify(pageErrors)}`);
  for (const [who, page] of Object.entries(pages)) {
    await page.screenshot({ path: join(artifactDir, `lobbies-failure-${who}.png`) }).catch(() => {});
  }
  process.exitCode = 1;
} finally {
  clearTimeout(deadline);
  await browser.close();
}
