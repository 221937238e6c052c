// Breach's lobby browser on the start screen (docs/lobbies.md): the list of lobbies
// (`GET /api/lobbies`, paged by `nextCursor`, filtered), kept live by the server-sent feed
// (`/api/lobbies/feed`: `lobby` upserts by id, `removed` drops one), joining a lobby (a private
// one asks for its password), creating one with its rules, the invite link of a private lobby
// (and a fresh one for its host), and opening `/?lobby=<id>&invite=<code>`.
//
// It owns the lobby HTTP calls and the lobby panel's DOM; it never plays: a join answer
// ({roomId, wsUrl, joinToken}) goes to `onJoin`, which hands it to breach's `startBreach`.
// The pure helpers at the top (request bodies, the list under feed events, filters, messages)
// are exported for web/test/lobbies.test.mjs.
//
// Accounts: the access token lives in web/src/account.js, whose fetch wrapper signs the
// page's matchmake and lobby requests with a fresh token; this module also reads it through
// `window.__coilAccount` (to know whether the player is signed in, and to sign in as a guest
// before creating a lobby). Everything a server or another player controls (host names,
// maps, error messages) is set with textContent.

export const MAPS = ['warehouse', 'courtyard'];
export const MAX_PLAYERS = [2, 4, 6, 8];
const PAGE_SIZE = 20;
const REQUEST_TIMEOUT_MS = 10_000;

// ---- pure helpers ----

/**
 * The body of `POST /api/lobbies` from the create form's values (strings, as the DOM gives
 * them, and booleans). Empty number fields are left out (the mode's defaults apply); the
 * server checks the ranges and answers `400 bad_settings` with the mode's sentence.
 * Returns `{ok: true, body}` or `{ok: false, field, message}`.
 */
export function createLobbyBody(form) {
  const password = form.password ?? '';
  if (password !== '' && (password.length < 8 || password.length > 64)) {
    return { ok: false, field: 'password', message: 'A password has 8 to 64 characters (or leave it empty).' };
  }
  const settings = {};
  if (form.map) settings.map = form.map;
  for (const key of ['killLimit', 'timeLimitSecs', 'maxPlayers']) {
    const text = String(form[key] ?? '').trim();
    if (text === '') continue;
    const value = Number(text);
    if (!Number.isFinite(value)) return { ok: false, field: key, message: `${key} must be a number.` };
    settings[key] = value;
  }
  settings.friendlyFire = Boolean(form.friendlyFire);
  settings.mapVote = Boolean(form.mapVote);
  const body = { mode: 'breach', private: Boolean(form.private) || password !== '', settings };
  if (password !== '') body.password = password;
  if (form.playerName) body.playerName = form.playerName;
  return { ok: true, body };
}

/** The body of `POST /api/lobbies/{id}/join`. */
export function joinLobbyBody({ password = '', inviteCode = '', playerName = '' } = {}) {
  const body = {};
  if (password) body.password = password;
  if (inviteCode) body.inviteCode = inviteCode;
  if (playerName) body.playerName = playerName;
  return body;
}

/** `GET /api/lobbies` for these filters and page. */
export function lobbiesUrl(filters = {}, cursor = null, limit = PAGE_SIZE) {
  const query = new URLSearchParams({ mode: 'breach', limit: String(limit) });
  if (filters.notFull) query.set('notFull', 'true');
  if (filters.notStarted) query.set('notStarted', 'true');
  if (filters.noPassword) query.set('noPassword', 'true');
  if (filters.map) query.set('map', filters.map);
  if (cursor) query.set('cursor', cursor);
  return `/api/lobbies?${query}`;
}

/** Whether a lobby passes the filters (the server's rules, for lobbies the feed brings). */
export function passesFilters(lobby, filters = {}) {
  if (filters.notFull && lobby.players >= lobby.maxPlayers) return false;
  if (filters.notStarted && lobby.phase !== 'waiting') return false;
  if (filters.noPassword && lobby.password) return false;
  if (filters.map && String(lobby.map).toLowerCase() !== filters.map.toLowerCase()) return false;
  return true;
}

/**
 * The list after one feed event: `lobby` (data: the lobby) replaces the entry with its id or
 * adds it — unless it no longer passes the filters, then it is dropped — and `removed`
 * (data: `{id}`) drops it. Kept in id order, as the server pages. Returns a new array.
 */
export function applyFeedEvent(list, kind, data, filters = {}) {
  if (!data || typeof data.id !== 'string') return list;
  const others = list.filter((lobby) => lobby.id !== data.id);
  if (kind === 'removed') return others;
  if (kind !== 'lobby' || !passesFilters(data, filters)) return others;
  others.push(data);
  others.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return others;
}

/** Merges a fetched page into the list (a later page appends; a lobby already there is replaced). */
export function mergePage(list, page) {
  let merged = list;
  for (const lobby of page) merged = applyFeedEvent(merged, 'lobby', lobby);
  return merged;
}

export function inviteLink(origin, lobbyId, inviteCode) {
  return `${origin}/?lobby=${encodeURIComponent(lobbyId)}&invite=${encodeURIComponent(inviteCode)}`;
}

/** `{lobbyId, inviteCode}` from a page's query string, or null. */
export function invitedTo(search) {
  const params = new URLSearchParams(search);
  const lobbyId = params.get('lobby');
  const inviteCode = params.get('invite');
  return lobbyId && inviteCode ? { lobbyId, inviteCode } : null;
}

const PHASES = { waiting: 'waiting', starting: 'starting', in_progress: 'playing', ending: 'ending' };

/** The words a lobby's row shows. */
export function describeLobby(lobby) {
  const map = String(lobby.map ?? '');
  return {
    map: map ? map[0].toUpperCase() + map.slice(1) : '?',
    players: `${lobby.players}/${lobby.maxPlayers}`,
    phase: PHASES[lobby.phase] ?? String(lobby.phase ?? ''),
    host: lobby.host ?? (lobby.custom ? 'nobody' : 'quick play'),
  };
}

/** A refused lobby call in a sentence: the server's own message, and when to try again. */
export function explainLobbyError(result) {
  const error = result.error ?? {};
  if (result.status === 0) return 'The server is not reachable. Check the connection and try again.';
  let message = error.message || `The server answered HTTP ${result.status}.`;
  // A sentence starts with a capital, but a setting's name (`killLimit must be…`) stays as it is.
  if (/^[a-z]+(\s|$)/.test(message)) message = message[0].toUpperCase() + message.slice(1);
  if (!/[.!?]$/.test(message)) message += '.';
  if (error.code === 'rate_limited') {
    const seconds = Number(result.retryAfter);
    message += Number.isFinite(seconds) && seconds > 0 ? ` Try again in ${Math.ceil(seconds)} s.` : ' Try again in a minute.';
  } else if (error.code === 'lobby_private') {
    message += ' Ask its host for an invite link.';
  } else if (result.status === 401) {
    message += ' Sign in again (reload the page), then retry.';
  }
  return message;
}

// ---- HTTP ----

/**
 * One JSON call; never throws. `{ok, status, body}` or `{ok: false, status, error, retryAfter}`
 * (status 0: the network failed or the call timed out).
 */
export async function lobbyCall(fetchImpl, method, path, { body, bearer } = {}) {
  const headers = {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (bearer) headers.authorization = `Bearer ${bearer}`;
  let response;
  try {
    response = await fetchImpl(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
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
  return {
    ok: false,
    status: response.status,
    error: json?.error ?? { code: `http_${response.status}`, message: `The server answered HTTP ${response.status}` },
    retryAfter: response.headers.get('retry-after'),
  };
}

// ---- the page ----

const $ = (id) => document.getElementById(id);

function element(tag, className, parent, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  if (parent) parent.appendChild(node);
  return node;
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The account side of web/src/account.js, read through its page hook. */
const accounts = {
  hook: () => window.__coilAccount ?? null,
  /** The access token, after the page's sign-in from a stored refresh token has had its chance. */
  async token() {
    const hook = this.hook();
    if (!hook) return null;
    for (let waited = 0; !hook.account() && hook.hasRefreshToken() && waited < 3000; waited += 100) await sleep(100);
    return hook.accessToken() ?? null;
  },
  /** Signs in as a guest with the account panel's own button; resolves to the token or null. */
  async guestToken() {
    const existing = await this.token();
    if (existing) return existing;
    const button = $('account-guest');
    if (!button || !this.hook()) return null;
    button.click();
    for (let waited = 0; waited < 8000; waited += 100) {
      await sleep(100);
      const token = this.hook().accessToken();
      if (token) return token;
      if (!$('account-error')?.hidden) return null;
    }
    return null;
  },
};

/**
 * Binds the lobby panel of index.html. `onJoin(answer, name)` starts breach with a join answer;
 * `playerName()` is the name typed on the start screen. Returns `{left()}`: call it when the
 * player is back on the start screen.
 */
export function mountLobbies({ onJoin, playerName, fetchImpl = (...args) => fetch(...args) }) {
  const e = {
    panel: $('lobbies'),
    tabBrowse: $('lobby-tab-browse'),
    tabCreate: $('lobby-tab-create'),
    browser: $('lobby-browser'),
    filters: {
      notFull: $('lobby-filter-not-full'),
      notStarted: $('lobby-filter-not-started'),
      noPassword: $('lobby-filter-no-password'),
      map: $('lobby-filter-map'),
    },
    list: $('lobby-list'),
    listStatus: $('lobby-list-status'),
    more: $('lobby-more'),
    passwordForm: $('lobby-password-form'),
    passwordFor: $('lobby-password-for'),
    password: $('lobby-password'),
    passwordCancel: $('lobby-password-cancel'),
    create: $('lobby-create'),
    createError: $('lobby-create-error'),
    error: $('lobby-error'),
    invite: $('lobby-invite'),
    inviteLink: $('lobby-invite-link'),
    inviteCopy: $('lobby-invite-copy'),
    inviteNew: $('lobby-invite-new'),
    inviteStatus: $('lobby-invite-status'),
  };
  if (!e.panel) return { left() {} };

  let lobbies = [];
  let nextCursor = null;
  let feed = null;
  let loadGeneration = 0;
  let passwordLobby = null;
  let busy = false;
  let browsing = false; // the list is open (and its feed with it)
  let hosting = null; // {lobbyId, private} while in a lobby this page created

  const filters = () => ({
    notFull: e.filters.notFull.checked,
    notStarted: e.filters.notStarted.checked,
    noPassword: e.filters.noPassword.checked,
    map: e.filters.map.value,
  });
  const breachPicked = () => document.querySelector('input[name="mode"]:checked')?.value === 'breach';
  const showError = (node, message) => {
    node.textContent = message;
    node.hidden = !message;
  };

  function render() {
    e.list.replaceChildren();
    for (const lobby of lobbies) {
      const words = describeLobby(lobby);
      const row = element('li', 'lobby-row', e.list);
      row.dataset.lobbyId = lobby.id;
      const lock = element('span', 'lobby-lock', row, lobby.private ? '🔒' : '');
      lock.title = lobby.private ? 'private' : '';
      if (lobby.private) lock.setAttribute('aria-label', 'private');
      element('span', 'lobby-map', row, words.map);
      element('span', 'lobby-players', row, words.players);
      element('span', `lobby-phase phase-${lobby.phase}`, row, words.phase);
      element('span', 'lobby-host', row, words.host);
      if (lobby.password) element('span', 'lobby-badge', row, 'password');
      const join = element('button', 'lobby-join', row, 'Join');
      join.type = 'button';
      join.disabled = lobby.players >= lobby.maxPlayers;
      join.addEventListener('click', () => joinListed(lobby));
    }
    e.listStatus.textContent = lobbies.length === 0 ? 'No lobbies yet: create one.' : '';
    e.more.hidden = !nextCursor;
  }

  async function loadPage(cursor) {
    const generation = ++loadGeneration;
    if (!cursor) e.listStatus.textContent = 'Loading lobbies…';
    const result = await lobbyCall(fetchImpl, 'GET', lobbiesUrl(filters(), cursor));
    if (generation !== loadGeneration) return; // the filters changed meanwhile
    if (!result.ok) {
      e.listStatus.textContent = `Could not load the lobbies: ${explainLobbyError(result)}`;
      return;
    }
    const page = Array.isArray(result.body?.lobbies) ? result.body.lobbies : [];
    lobbies = mergePage(cursor ? lobbies : [], page);
    nextCursor = result.body?.nextCursor ?? null;
    render();
  }

  function openFeed() {
    if (feed || typeof EventSource === 'undefined') return;
    feed = new EventSource('/api/lobbies/feed?mode=breach');
    const handle = (kind) => (event) => {
      let data;
      try {
        data = JSON.parse(event.data);
      } catch {
        return;
      }
      lobbies = applyFeedEvent(lobbies, kind, data, filters());
      render();
    };
    feed.addEventListener('lobby', handle('lobby'));
    feed.addEventListener('removed', handle('removed'));
    // EventSource reconnects by itself; say so while it does.
    feed.addEventListener('error', () => {
      if (feed && feed.readyState !== EventSource.OPEN) e.listStatus.textContent = 'Live updates paused, reconnecting…';
    });
    feed.addEventListener('open', () => {
      if (e.listStatus.textContent.startsWith('Live updates')) e.listStatus.textContent = lobbies.length === 0 ? 'No lobbies yet: create one.' : '';
    });
  }

  function closeFeed() {
    if (feed) feed.close();
    feed = null;
  }

  /**
   * Shows the panel when breach is picked, and the list with its feed once the player opened
   * it: a feed is a server-side watcher, not worth holding for everyone who only plays quick play.
   */
  function sync() {
    const shown = breachPicked();
    e.panel.hidden = !shown;
    if (shown && browsing) {
      openFeed();
      loadPage(null);
    } else {
      closeFeed();
    }
  }

  async function join(lobbyId, extra, errorNode = e.error) {
    if (busy) return false;
    busy = true;
    showError(errorNode, '');
    try {
      const bearer = await accounts.token();
      const body = joinLobbyBody({ ...extra, playerName: playerName() });
      const result = await lobbyCall(fetchImpl, 'POST', `/api/lobbies/${encodeURIComponent(lobbyId)}/join`, { body, bearer });
      if (!result.ok) {
        showError(errorNode, explainLobbyError(result));
        return false;
      }
      enter(result.body, null);
      return true;
    } finally {
      busy = false;
    }
  }

  function joinListed(lobby) {
    showError(e.error, '');
    if (lobby.password) {
      passwordLobby = lobby;
      e.passwordFor.textContent = `${describeLobby(lobby).map}, hosted by ${describeLobby(lobby).host}`;
      e.password.value = '';
      e.passwordForm.hidden = false;
      e.password.focus();
      return;
    }
    join(lobby.id, {});
  }

  /** Into the lobby's room: the start screen gives way to breach. */
  function enter(answer, hosted) {
    closeFeed();
    e.passwordForm.hidden = true;
    passwordLobby = null;
    hosting = hosted;
    if (hosted?.inviteCode) showInvite(hosted.lobbyId, hosted.inviteCode);
    onJoin(answer, playerName());
  }

  function showInvite(lobbyId, inviteCode) {
    e.inviteLink.value = inviteLink(location.origin, lobbyId, inviteCode);
    e.inviteStatus.textContent = '';
    e.invite.hidden = false;
  }

  e.tabBrowse.addEventListener('click', () => {
    browsing = true;
    e.browser.hidden = false;
    e.create.hidden = true;
    e.tabBrowse.classList.add('chosen');
    e.tabCreate.classList.remove('chosen');
    sync();
  });
  e.tabCreate.addEventListener('click', () => {
    browsing = false;
    closeFeed();
    e.browser.hidden = true;
    e.passwordForm.hidden = true;
    e.create.hidden = false;
    e.tabCreate.classList.add('chosen');
    e.tabBrowse.classList.remove('chosen');
  });
  for (const input of Object.values(e.filters)) input.addEventListener('change', () => loadPage(null));
  e.more.addEventListener('click', () => {
    if (nextCursor) loadPage(nextCursor);
  });
  for (const radio of document.querySelectorAll('input[name="mode"]')) radio.addEventListener('change', sync);
  // Quick play leaves the start screen too: no feed while playing.
  $('start-form')?.addEventListener('submit', closeFeed);

  e.passwordForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (!passwordLobby) return;
    await join(passwordLobby.id, { password: e.password.value });
  });
  e.passwordCancel.addEventListener('click', () => {
    e.passwordForm.hidden = true;
    passwordLobby = null;
  });

  e.create.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (busy) return;
    const form = new FormData(e.create);
    const built = createLobbyBody({
      private: form.get('private') === 'on',
      password: String(form.get('password') ?? ''),
      map: String(form.get('map') ?? ''),
      killLimit: form.get('killLimit'),
      timeLimitSecs: form.get('timeLimitSecs'),
      friendlyFire: form.get('friendlyFire') === 'on',
      mapVote: form.get('mapVote') === 'on',
      maxPlayers: form.get('maxPlayers'),
      playerName: playerName(),
    });
    if (!built.ok) {
      showError(e.createError, built.message);
      return;
    }
    busy = true;
    showError(e.createError, 'Creating the lobby…');
    e.createError.classList.remove('error');
    try {
      // Lobbies (and their invites) belong to an account: a player without one plays as a guest.
      const bearer = await accounts.guestToken();
      e.createError.classList.add('error');
      if (!bearer) {
        showError(e.createError, 'Creating a lobby needs an account: sign in or click "Play as guest" below, then try again.');
        return;
      }
      const result = await lobbyCall(fetchImpl, 'POST', '/api/lobbies', { body: built.body, bearer });
      if (!result.ok) {
        showError(e.createError, explainLobbyError(result));
        return;
      }
      showError(e.createError, '');
      const created = result.body;
      busy = false;
      enter(created, { lobbyId: created.lobbyId, inviteCode: created.inviteCode ?? null, private: built.body.private });
    } finally {
      busy = false;
      e.createError.classList.add('error');
    }
  });

  e.inviteCopy.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(e.inviteLink.value);
      e.inviteStatus.textContent = 'Copied.';
    } catch {
      e.inviteLink.select();
      e.inviteStatus.textContent = 'Press Ctrl+C to copy the selected link.';
    }
  });
  e.inviteNew.addEventListener('click', async () => {
    if (!hosting) return;
    e.inviteStatus.textContent = 'Asking for a new link…';
    const bearer = await accounts.token();
    const path = `/api/lobbies/${encodeURIComponent(hosting.lobbyId)}/invites`;
    let result = await lobbyCall(fetchImpl, 'POST', path, { bearer });
    // A lobby is known to the API once its node has reported it (a heartbeat a second after
    // the host arrives): a 404 in the first seconds is worth a few more tries.
    for (let attempt = 0; !result.ok && result.status === 404 && attempt < 6; attempt++) {
      await sleep(500);
      result = await lobbyCall(fetchImpl, 'POST', path, { bearer });
    }
    if (!result.ok) {
      e.inviteStatus.textContent = explainLobbyError(result);
      return;
    }
    showInvite(hosting.lobbyId, result.body.inviteCode);
    e.inviteStatus.textContent = 'New link (valid for 24 h).';
  });

  // An invite link: straight into that lobby. The query is dropped so that a reload (or
  // leaving the lobby) does not join again.
  const invite = invitedTo(location.search);
  if (invite) {
    const breach = document.querySelector('input[name="mode"][value="breach"]');
    if (breach) breach.checked = true;
    history.replaceState(null, '', `${location.pathname}?mode=breach`);
    sync();
    e.listStatus.textContent = 'Joining the lobby from the invite…';
    join(invite.lobbyId, { inviteCode: invite.inviteCode }).then((joined) => {
      if (!joined) e.error.textContent = `Could not join from the invite: ${e.error.textContent}`;
    });
  } else {
    sync();
  }

  window.__coilLobbies = {
    lobbies: () => lobbies.map((lobby) => ({ ...lobby })),
    feedOpen: () => feed !== null && feed.readyState === EventSource.OPEN,
  };

  return {
    /** Back on the start screen after a lobby (or any breach game). */
    left() {
      hosting = null;
      e.invite.hidden = true;
      sync();
    },
  };
}
