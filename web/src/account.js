// Accounts in the browser: sign up, log in, play as a guest, stay signed in across reloads,
// log out. The game code stays unaware of accounts: this module signs the page's
// POST /api/matchmake and /api/lobbies requests with `Authorization: Bearer <access token>` when a player is
// signed in, and the matchmaker then places the account (its id and display name) instead of
// the typed name.
//
// What is kept where:
// - the access token (15 minutes) only in memory;
// - the refresh token in localStorage (`coil.refreshToken`), so a reload signs back in; it is
//   rotated on every use, and refreshes are serialized across tabs with a Web Lock so two tabs
//   never present the same token (the server would treat that as a replay and end the session);
// - a guest's device secret in localStorage (`coil.deviceSecret`, 32 random bytes), so the same
//   browser is the same guest.
//
// Everything the server sends back (names) is shown with textContent.

const REFRESH_KEY = 'coil.refreshToken';
const DEVICE_KEY = 'coil.deviceSecret';
/** Refresh this long before the access token expires. */
const EARLY_REFRESH_MS = 30_000;

const $ = (id) => document.getElementById(id);

function base64url(bytes) {
  let text = '';
  for (const byte of bytes) text += String.fromCharCode(byte);
  return btoa(text).replaceAll('+', '-').replaceAll('/', '_').replace(/=+$/, '');
}

function deviceSecret(storage) {
  let secret = storage.getItem(DEVICE_KEY);
  if (!secret) {
    secret = base64url(crypto.getRandomValues(new Uint8Array(32)));
    storage.setItem(DEVICE_KEY, secret);
  }
  return secret;
}

/** Runs `work` holding the cross-tab refresh lock (or directly where Web Locks are missing). */
function withRefreshLock(work) {
  if (globalThis.navigator?.locks?.request) return navigator.locks.request('coil-refresh', work);
  return work();
}

export class AccountClient {
  constructor({ fetchImpl, storage, now } = {}) {
    this.fetchImpl = fetchImpl ?? ((...args) => fetch(...args));
    this.storage = storage ?? localStorage;
    this.now = now ?? (() => Date.now());
    this.accessToken = null;
    this.accessExpiresAt = 0;
    this.account = null;
    this.listeners = new Set();
    this.refreshing = null;
  }

  onChange(listener) {
    this.listeners.add(listener);
  }

  changed() {
    for (const listener of this.listeners) listener(this.account);
  }

  signedIn() {
    return this.account !== null;
  }

  async post(path, body, bearer) {
    const headers = { 'content-type': 'application/json' };
    if (bearer) headers.authorization = `Bearer ${bearer}`;
    let response;
    try {
      response = await this.fetchImpl(path, { method: 'POST', headers, body: JSON.stringify(body ?? {}) });
    } catch {
      return { ok: false, status: 0, error: { code: 'unreachable', message: 'The server is not reachable.' } };
    }
    let json = null;
    try {
      json = await response.json();
    } catch {
      json = null;
    }
    if (response.ok) return { ok: true, status: response.status, body: json };
    const error = json?.error ?? { code: `http_${response.status}`, message: `HTTP ${response.status}` };
    return { ok: false, status: response.status, error, retryAfter: response.headers.get('retry-after') };
  }

  accept(answer) {
    this.accessToken = answer.accessToken;
    this.accessExpiresAt = answer.accessExpiresAt;
    this.account = answer.account;
    this.storage.setItem(REFRESH_KEY, answer.refreshToken);
    this.changed();
  }

  forget() {
    this.accessToken = null;
    this.accessExpiresAt = 0;
    this.account = null;
    this.storage.removeItem(REFRESH_KEY);
    this.changed();
  }

  async signIn(path, body, bearer) {
    const result = await this.post(path, body, bearer);
    if (result.ok) this.accept(result.body);
    return result;
  }

  register(username, password) {
    return this.signIn('/api/auth/register', { username, password });
  }

  login(username, password) {
    return this.signIn('/api/auth/login', { username, password });
  }

  guest() {
    return this.signIn('/api/auth/guest', { deviceSecret: deviceSecret(this.storage) });
  }

  /** Turns the signed-in guest into an account with a username and password (same id). */
  async upgrade(username, password) {
    const token = await this.currentAccessToken();
    if (!token) return { ok: false, error: { code: 'unauthenticated', message: 'Play as guest first.' } };
    const result = await this.signIn('/api/auth/upgrade', { username, password }, token);
    // The device secret no longer reaches this account; a later "play as guest" is a new guest.
    if (result.ok) this.storage.removeItem(DEVICE_KEY);
    return result;
  }

  /**
   * Signs back in from the stored refresh token (after a reload, or when the access token is
   * about to expire). Resolves to whether a session is live.
   */
  refresh() {
    if (this.refreshing) return this.refreshing;
    this.refreshing = withRefreshLock(async () => {
      // Read inside the lock: another tab may have rotated the token a moment ago.
      const refreshToken = this.storage.getItem(REFRESH_KEY);
      if (!refreshToken) {
        if (this.account) this.forget();
        return false;
      }
      const result = await this.post('/api/auth/refresh', { refreshToken });
      if (result.ok) {
        this.accept(result.body);
        return true;
      }
      // A refusal (ended, replayed, banned) ends the local session; a network failure or a
      // busy server keeps the stored token for the next try.
      if (result.status === 401 || result.status === 403) this.forget();
      return false;
    }).finally(() => {
      this.refreshing = null;
    });
    return this.refreshing;
  }

  /** A valid access token, refreshed if it is about to expire; null when signed out. */
  async currentAccessToken() {
    if (this.accessToken && this.accessExpiresAt - this.now() > EARLY_REFRESH_MS) return this.accessToken;
    if (!this.storage.getItem(REFRESH_KEY)) return null;
    return (await this.refresh()) ? this.accessToken : null;
  }

  async logout() {
    const refreshToken = this.storage.getItem(REFRESH_KEY);
    const bearer = this.accessToken;
    this.forget();
    await this.post('/api/auth/logout', refreshToken ? { refreshToken } : {}, bearer);
  }

  /**
   * A fetch that adds the bearer token (refreshed when it is near expiry) to this page's
   * matchmake and lobby requests while signed in. Everything else passes through untouched.
   */
  wrapFetch(inner) {
    return async (input, init = {}) => {
      const url = typeof input === 'string' ? input : input.url;
      if (!/^\/api\/(matchmake|lobbies)(\/|\?|$)/.test(url)) return inner(input, init);
      const token = await this.currentAccessToken();
      if (!token) return inner(input, init);
      const headers = new Headers(init.headers ?? {});
      headers.set('authorization', `Bearer ${token}`);
      return inner(input, { ...init, headers });
    };
  }
}

/** Explains a refusal in a sentence. */
function explain(result) {
  const code = result.error?.code;
  if (code === 'rate_limited') return `Too many tries. Wait ${result.retryAfter ?? 'a few'} seconds.`;
  if (code === 'invalid_credentials') return 'Wrong username or password.';
  if (code === 'username_taken') return 'That username (or one that looks the same) is taken.';
  if (code === 'account_banned') return result.error.message;
  return result.error?.message ?? 'That did not work.';
}

/** Binds the account panel of the start screen (index.html) to a client. */
export function bindAccountPanel(client) {
  const e = {
    status: $('account-status'),
    form: $('account-form'),
    username: $('account-username'),
    password: $('account-password'),
    register: $('account-register'),
    guest: $('account-guest'),
    logout: $('account-logout'),
    error: $('account-error'),
    name: $('name'),
  };
  if (!e.form) return;
  const typedName = { value: '' };
  const show = (account) => {
    e.error.hidden = true;
    if (account) {
      const kind = account.guest ? 'Playing as guest' : 'Signed in as';
      e.status.textContent = `${kind} ${account.displayName}`;
      e.status.dataset.accountId = account.id;
      // The matchmaker uses the account's name; show it where the name is typed.
      if (!e.name.readOnly) typedName.value = e.name.value;
      e.name.value = account.displayName;
      e.name.readOnly = true;
      e.logout.hidden = false;
      e.guest.hidden = true;
      // A guest may still sign up: the form upgrades the guest instead of making a new account.
      e.form.hidden = !account.guest;
      e.register.textContent = account.guest ? 'Keep this guest: sign up' : 'Sign up';
    } else {
      e.status.textContent = 'Not signed in: play with any name, or sign in to keep your name.';
      delete e.status.dataset.accountId;
      if (e.name.readOnly) e.name.value = typedName.value;
      e.name.readOnly = false;
      e.logout.hidden = true;
      e.guest.hidden = false;
      e.form.hidden = false;
      e.register.textContent = 'Sign up';
    }
  };
  const report = (result) => {
    if (result.ok) return;
    e.error.textContent = explain(result);
    e.error.hidden = false;
  };
  client.onChange(show);
  show(client.account);
  e.form.addEventListener('submit', async (event) => {
    event.preventDefault();
    report(await client.login(e.username.value.trim(), e.password.value));
    e.password.value = '';
  });
  e.register.addEventListener('click', async () => {
    const username = e.username.value.trim();
    const password = e.password.value;
    const result = client.account?.guest
      ? await client.upgrade(username, password)
      : await client.register(username, password);
    report(result);
    if (result.ok) e.password.value = '';
  });
  e.guest.addEventListener('click', async () => report(await client.guest()));
  e.logout.addEventListener('click', () => client.logout());
}

// In the page (not under node --test): one client, the panel, the signed matchmake requests,
// and a sign-in from the stored refresh token.
if (typeof window !== 'undefined' && typeof document !== 'undefined') {
  const client = new AccountClient();
  const pageFetch = window.fetch.bind(window);
  window.fetch = client.wrapFetch(pageFetch);
  client.fetchImpl = pageFetch;
  bindAccountPanel(client);
  client.refresh();
  // Read-only view for the browser test and for debugging from the console.
  window.__coilAccount = {
    account: () => client.account,
    hasRefreshToken: () => client.storage.getItem(REFRESH_KEY) !== null,
    accessToken: () => client.accessToken,
  };
}
