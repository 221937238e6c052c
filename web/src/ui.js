// The DOM around the canvas: start screen, HUD, room top 10, death screen, connection banner,
// room-problem dialog and the global leaderboard.
//
// Everything a server or another player controls (names, room ids) is set with textContent,
// never parsed as HTML. This module only shows state and reports clicks; it does not talk to
// the server except for the read-only leaderboard fetch.

const $ = (id) => document.getElementById(id);

const STATUS_BAD = new Set(['unreachable', 'failed']);

export class Ui {
  constructor() {
    this.elements = {
      start: $('start'),
      startForm: $('start-form'),
      name: $('name'),
      room: $('room'),
      startError: $('start-error'),
      hud: $('hud'),
      score: $('hud-score'),
      rank: $('hud-rank'),
      oxygen: $('hud-oxygen'),
      hudRoom: $('hud-room'),
      players: $('hud-players'),
      ping: $('hud-ping'),
      top: $('hud-top'),
      switchForm: $('switch-room'),
      switchName: $('switch-room-name'),
      status: $('status'),
      death: $('death'),
      deathCause: $('death-cause'),
      deathScore: $('death-score'),
      deathRank: $('death-rank'),
      respawn: $('respawn'),
      roomProblem: $('room-problem'),
      roomProblemTitle: $('room-problem-title'),
      roomProblemText: $('room-problem-text'),
      roomProblemJoin: $('room-problem-join'),
      roomProblemAny: $('room-problem-any'),
      roomProblemCancel: $('room-problem-cancel'),
      leaderboard: $('leaderboard'),
      leaderboardRows: $('leaderboard-rows'),
      leaderboardStatus: $('leaderboard-status'),
    };
    this.lastTopKey = '';
    this.ownName = '';
    $('show-leaderboard').addEventListener('click', () => this.showLeaderboard());
    $('death-leaderboard').addEventListener('click', () => this.showLeaderboard());
    $('leaderboard-close').addEventListener('click', () => {
      this.elements.leaderboard.hidden = true;
    });
  }

  /** Start screen with the remembered name and room. */
  showStart({ name = '', room = '', error = '' } = {}) {
    const e = this.elements;
    e.name.value = name;
    e.room.value = room;
    e.startError.textContent = error;
    e.startError.hidden = !error;
    e.start.hidden = false;
    e.hud.hidden = true;
    e.death.hidden = true;
    e.roomProblem.hidden = true;
    e.name.focus();
  }

  /** Leaves the start screen for a game started elsewhere (a breach lobby). */
  hideStart() {
    this.elements.start.hidden = true;
    this.elements.hud.hidden = true;
    this.elements.startError.hidden = true;
  }

  onPlay(handler) {
    this.elements.startForm.addEventListener('submit', (event) => {
      event.preventDefault();
      const name = this.elements.name.value.trim();
      const room = this.elements.room.value.trim();
      const problem = checkName(name) ?? checkRoom(room);
      if (problem) {
        this.elements.startError.textContent = problem;
        this.elements.startError.hidden = false;
        return;
      }
      this.ownName = name;
      this.elements.start.hidden = true;
      this.elements.hud.hidden = false;
      handler(name, room);
    });
  }

  onSwitchRoom(handler) {
    this.elements.switchForm.addEventListener('submit', (event) => {
      event.preventDefault();
      const room = this.elements.switchName.value.trim();
      const problem = checkRoom(room);
      if (problem) {
        this.setStatus({ state: 'playing', message: problem });
        return;
      }
      this.elements.switchName.value = '';
      this.elements.switchName.blur();
      handler(room || null);
    });
  }

  onRespawn(handler) {
    this.elements.respawn.addEventListener('click', handler);
  }

  /** The connection banner: hidden while playing without news. */
  setStatus({ state, message }) {
    const e = this.elements;
    const text = message || (state === 'playing' || state === 'idle' || state === 'roomProblem' ? '' : state);
    e.status.textContent = text;
    e.status.hidden = !text;
    e.status.classList.toggle('bad', STATUS_BAD.has(state));
    e.status.dataset.state = state;
  }

  setRoom(room) {
    this.elements.hudRoom.textContent = room ?? '–';
  }

  setPing(rttMs) {
    this.elements.ping.textContent = rttMs === null ? '' : `ping ${Math.round(rttMs)} ms`;
  }

  /** HUD numbers and the room's top 10 from a meta frame. */
  setMeta(meta) {
    const e = this.elements;
    e.score.textContent = String(meta.ownScore);
    const total = meta.humans + meta.bots;
    e.rank.textContent = meta.ownRank > 0 ? `${meta.ownRank} / ${total}` : '–';
    e.oxygen.style.width = `${Math.round((meta.oxygen / 255) * 100)}%`;
    e.players.textContent = `${meta.humans} ${meta.humans === 1 ? 'human' : 'humans'} + ${meta.bots} bots`;
    const key = meta.top.map((row) => `${row.name}\u0000${row.score}`).join('\u0001');
    if (key !== this.lastTopKey) {
      this.lastTopKey = key;
      const items = meta.top.map((row) => {
        const item = document.createElement('li');
        item.textContent = row.name;
        const score = document.createElement('span');
        score.textContent = String(row.score);
        item.append(score);
        if (row.name === this.ownName) item.classList.add('own');
        return item;
      });
      e.top.replaceChildren(...items);
    }
  }

  showDeath(death, meta) {
    const e = this.elements;
    e.deathScore.textContent = String(death.finalScore);
    const total = meta ? meta.humans + meta.bots : null;
    e.deathRank.textContent = total ? `${death.rank} / ${total}` : String(death.rank);
    e.deathCause.textContent = death.killer ? `${death.killer} got you.` : 'Your run is over.';
    e.death.hidden = false;
    e.respawn.focus();
  }

  hideDeath() {
    this.elements.death.hidden = true;
  }

  deathShown() {
    return !this.elements.death.hidden;
  }

  /**
   * The requested room cannot take the player. Offers the matchmaker's suggestion, any room,
   * or going back.
   */
  showRoomProblem(problem, { onJoin, onAny, onCancel }) {
    const e = this.elements;
    const titles = {
      room_full: 'Room is full',
      room_draining: 'Room is closing',
      room_not_joinable: 'Room is not taking players',
      room_unknown: 'No such room',
    };
    e.roomProblemTitle.textContent = titles[problem.code] ?? 'Cannot join that room';
    e.roomProblemText.textContent = problem.suggested
      ? `“${problem.requested}” cannot take you. Room “${problem.suggested}” has space.`
      : `“${problem.requested}” cannot take you.`;
    e.roomProblemJoin.hidden = !problem.suggested;
    e.roomProblemJoin.textContent = problem.suggested ? `Join ${problem.suggested}` : '';
    const close = (action) => () => {
      e.roomProblem.hidden = true;
      action();
    };
    e.roomProblemJoin.onclick = close(() => onJoin(problem.suggested));
    e.roomProblemAny.onclick = close(onAny);
    e.roomProblemCancel.onclick = close(onCancel);
    e.roomProblem.hidden = false;
  }

  hideRoomProblem() {
    this.elements.roomProblem.hidden = true;
  }

  /** Global leaderboard from GET /api/leaderboard. */
  async showLeaderboard() {
    const e = this.elements;
    e.leaderboard.hidden = false;
    e.leaderboardStatus.textContent = 'Loading…';
    e.leaderboardRows.replaceChildren();
    let scores;
    try {
      const response = await fetch('/api/leaderboard?limit=20');
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      scores = (await response.json()).scores;
    } catch {
      e.leaderboardStatus.textContent = 'The leaderboard is not reachable right now.';
      return;
    }
    e.leaderboardStatus.textContent = scores.length === 0 ? 'No scores yet: be the first.' : '';
    const rows = scores.map((row, index) => {
      const tr = document.createElement('tr');
      const when = new Date(row.recordedAtMs);
      for (const text of [String(index + 1), row.name, String(row.score), row.room, when.toLocaleString()]) {
        const td = document.createElement('td');
        td.textContent = text;
        tr.append(td);
      }
      return tr;
    });
    e.leaderboardRows.replaceChildren(...rows);
  }
}

/**
 * A quick first check of the server's name rule (coil-store validate_player_name): Unicode
 * letters, marks, digits, punctuation, symbols and plain spaces, at most 16 characters. The
 * server has the last word (it also refuses names that mix look-alike scripts).
 */
export function checkName(name) {
  const normalized = name.normalize('NFC');
  const length = [...normalized].length;
  if (length === 0) return 'Enter a name.';
  if (length > 16) return 'Names are at most 16 characters.';
  if (!/^[\p{L}\p{M}\p{N}\p{P}\p{S} ]+$/u.test(normalized) || /^\p{M}/u.test(normalized)) {
    return 'Names use letters, digits, punctuation, symbols and spaces.';
  }
  return null;
}

/** Mirrors the server's room-id rule: 1–32 of letters, digits, - and _ (empty: any room). */
export function checkRoom(room) {
  if (room.length === 0) return null;
  if (room.length > 32 || !/^[A-Za-z0-9_-]+$/.test(room)) return 'Room names use up to 32 letters, digits, - and _.';
  return null;
}
