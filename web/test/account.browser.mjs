// Accounts in a real browser against a real `coil serve`: headless Debian Chromium driven by
// playwright-core (the launch setup of browser.mjs). Run through web/test/run-browser-test.sh,
// which builds and starts the server and sets COIL_URL; by hand:
// COIL_URL=http://127.0.0.1:8787 node web/test/account.browser.mjs
//
// Checks, in one browser context: signing up signs the player in and shows the name; playing
// sends the matchmake with the access token and joins; a reload stays signed in through the
// refresh token (which rotates); a wrong password is explained; logging out forgets the tokens
// and the server refuses the old access token at once; playing as a guest, reloading, and
// upgrading the guest keep one account id. Bounded by a 60-second deadline.

import { mkdirSync } from 'node:fs';

import { chromium } from 'playwright-core';

const DEADLINE_MS = 60_000;
const base = (process.env.COIL_URL ?? '').replace(/\/$/, '');
if (!base) {
  console.error('account browser test: set COIL_URL to a running coil serve');
  process.exit(2);
}
const artifactDir = process.env.ARTIFACT_DIR ?? 'artifacts/web';
const executablePath = process.env.CHROMIUM ?? '/usr/bin/chromium';
mkdirSync(artifactDir, { recursive: true });

const started = Date.now();
const deadline = setTimeout(() => {
  console.error(`account browser test: FAILED, over the ${DEADLINE_MS / 1000} s deadline`);
  process.exit(1);
}, DEADLINE_MS);

const step = (text) => console.log(`[${((Date.now() - started) / 1000).toFixed(1)}s] ${text}`);

function check(condition, message) {
  if (!condition) throw new Error(`check failed: ${message}`);
}

const args = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'];
const browser = await chromium.launch({ executablePath, headless: true, args });
let page;
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 720 } });
  page = await context.newPage();
  const pageErrors = [];
  page.on('pageerror', (error) => pageErrors.push(String(error)));
  page.on('console', (message) => {
    // Refused requests are expected here (the wrong password, the logged-out token) and
    // Chromium logs each one; anything else logged as an error is a failure.
    if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) {
      pageErrors.push(`console: ${message.text()}`);
    }
  });
  const matchmakes = [];
  page.on('request', (request) => {
    if (new URL(request.url()).pathname === '/api/matchmake') {
      matchmakes.push(request.headers().authorization ?? null);
    }
  });
  const waitFor = (predicate, arg, timeout = 10_000) => page.waitForFunction(predicate, arg, { timeout, polling: 50 });
  const statusText = () => page.evaluate(() => document.getElementById('account-status').textContent);
  const accountId = () => page.evaluate(() => document.getElementById('account-status').dataset.accountId ?? null);
  const storedRefresh = () => page.evaluate(() => localStorage.getItem('coil.refreshToken'));

  step(`loading ${base}/`);
  const response = await page.goto(`${base}/`);
  check(response.status() === 200, `GET / answers 200, got ${response.status()}`);
  await page.waitForSelector('#start:not([hidden])');
  await waitFor(() => document.getElementById('account-status').textContent.startsWith('Not signed in'));

  const username = `acct${String(Date.now() % 1_000_000)}`;
  const password = 'correct horse battery';
  step(`signing up as ${username}`);
  await page.fill('#account-username', username);
  await page.fill('#account-password', password);
  await page.click('#account-register');
  await waitFor((name) => document.getElementById('account-status').textContent === `Signed in as ${name}`, username);
  const registeredId = await accountId();
  check(/^[0-9a-f]{32}$/.test(registeredId ?? ''), `the page knows the account id (${registeredId})`);
  const nameField = await page.evaluate(() => ({ value: document.getElementById('name').value, readOnly: document.getElementById('name').readOnly }));
  check(nameField.value === username && nameField.readOnly, `the name field shows the account name (${JSON.stringify(nameField)})`);
  check((await storedRefresh()) !== null, 'a refresh token is stored');

  step('playing signed in: the matchmake carries the access token');
  await page.click('#play');
  await waitFor(() => window.__coil.status().state === 'playing' && window.__coil.own() !== null);
  const lastMatchmake = matchmakes.at(-1);
  check(typeof lastMatchmake === 'string' && lastMatchmake.startsWith('Bearer '), `matchmake sent Authorization: Bearer (${lastMatchmake})`);
  const bearer = lastMatchmake.slice('Bearer '.length);
  const me = await page.evaluate(async (token) => {
    const answer = await fetch('/api/me', { headers: { authorization: `Bearer ${token}` } });
    return { status: answer.status, body: await answer.json() };
  }, bearer);
  check(me.status === 200 && me.body.id === registeredId, `the token is the account's (${JSON.stringify(me)})`);
  await page.screenshot({ path: `${artifactDir}/account-playing.png` });

  step('reloading: still signed in through the refresh token, which rotates');
  const refreshBefore = await storedRefresh();
  await page.reload();
  await page.waitForSelector('#start:not([hidden])');
  await waitFor((name) => document.getElementById('account-status').textContent === `Signed in as ${name}`, username);
  check((await accountId()) === registeredId, 'the same account after a reload');
  const refreshAfter = await storedRefresh();
  check(refreshAfter && refreshAfter !== refreshBefore, 'the refresh token was rotated');
  const accessAfterReload = await page.evaluate(() => window.__coilAccount.accessToken());

  step('logging out');
  await page.click('#account-logout');
  await waitFor(() => document.getElementById('account-status').textContent.startsWith('Not signed in'));
  check((await storedRefresh()) === null, 'the refresh token is forgotten');
  const afterLogout = await page.evaluate(async (token) => {
    // Let the logout request reach the server first.
    for (let attempt = 0; attempt < 50; attempt++) {
      const answer = await fetch('/api/me', { headers: { authorization: `Bearer ${token}` } });
      if (answer.status !== 200) return { status: answer.status, code: (await answer.json()).error.code };
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return { status: 200 };
  }, accessAfterReload);
  check(afterLogout.status === 401 && afterLogout.code === 'session_ended', `the old access token is refused (${JSON.stringify(afterLogout)})`);
  const nameAfterLogout = await page.evaluate(() => document.getElementById('name').readOnly);
  check(!nameAfterLogout, 'the name field is editable again');

  step('a wrong password is explained');
  await page.fill('#account-username', username);
  await page.fill('#account-password', 'not the password');
  await page.click('#account-login');
  await waitFor(() => !document.getElementById('account-error').hidden);
  const error = await page.evaluate(() => document.getElementById('account-error').textContent);
  check(error === 'Wrong username or password.', `error shown: ${error}`);

  step('logging back in');
  await page.fill('#account-password', password);
  await page.click('#account-login');
  await waitFor((name) => document.getElementById('account-status').textContent === `Signed in as ${name}`, username);
  check((await accountId()) === registeredId, 'logging in reaches the same account');
  await page.click('#account-logout');
  await waitFor(() => document.getElementById('account-status').textContent.startsWith('Not signed in'));

  step('playing as a guest, across a reload');
  await page.click('#account-guest');
  await waitFor(() => document.getElementById('account-status').textContent.startsWith('Playing as guest guest-'));
  const guestId = await accountId();
  check(guestId && guestId !== registeredId, `a guest account (${guestId})`);
  await page.reload();
  await page.waitForSelector('#start:not([hidden])');
  await waitFor(() => document.getElementById('account-status').textContent.startsWith('Playing as guest guest-'));
  check((await accountId()) === guestId, 'the same guest after a reload');

  step('upgrading the guest keeps its id');
  const upgradedName = `${username}g`;
  await page.fill('#account-username', upgradedName);
  await page.fill('#account-password', password);
  await page.click('#account-register');
  await waitFor((name) => document.getElementById('account-status').textContent === `Signed in as ${name}`, upgradedName);
  check((await accountId()) === guestId, 'the upgraded account is the guest account');
  await page.screenshot({ path: `${artifactDir}/account-upgraded.png` });

  check(pageErrors.length === 0, `no page errors: ${pageErrors.join(' | ')}`);
  step('account browser test passed');
} catch (error) {
  console.error(`account browser test: FAILED: ${error.message}`);
  if (page) await page.screenshot({ path: `${artifactDir}/account-failure.png` }).catch(() => {});
  await browser.close();
  process.exit(1);
}
clearTimeout(deadline);
await browser.close();
