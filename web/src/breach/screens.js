// Breach's DOM around the canvas: the HUD (health, ammo, reload, charges, team scores, time
// left, phase), the kill feed, the lobby / countdown screen (in a custom lobby: host, rules,
// players, the host's controls — kick, make host, start now, edit settings — and the map
// vote), the respawn countdown, the spectator bar, the final scoreboard with the restart vote
// (and the map vote), and the connection banner.
//
// The elements are built here (web/index.html only hosts the root), styled by
// web/src/breach/breach.css. Everything a server or another player controls (names) is set
// with textContent, never parsed as HTML. This module shows state and reports clicks; it never
// talks to the server itself.

import { Phase, Vote, settingsText } from './protocol.js';
import { lobbyMaps, lobbyModel, settingsSummary } from './lobby.js';

const TEAM_NAMES = ['Blue', 'Red'];
const REASONS = { 1: 'kill limit reached', 2: 'time is up', 3: 'the other team left' };

function element(tag, className, parent, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  if (parent) parent.append(node);
  return node;
}

/** mm:ss of a tick count. */
export function clock(ticks, tickRate) {
  const seconds = Math.max(0, Math.ceil(ticks / tickRate));
  return `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, '0')}`;
}

export class Screens {
  /**
   * @param {HTMLElement} root  an empty element; the screens are built inside it
   * @param {{onVote: (vote: number) => void, onLeave: () => void, onSpectateNext: () => void,
   *   onKick?: (slot: number) => void, onMakeHost?: (slot: number) => void, onStartEarly?: () => void,
   *   onSettings?: (text: string) => void, onMapVote?: (mapId: number) => void}} handlers
   */
  constructor(root, handlers) {
    this.root = root;
    this.handlers = handlers;
    root.classList.add('breach');
    root.replaceChildren();
    this.stage = element('div', 'breach-stage', root);
    this.canvas = element('canvas', 'breach-canvas', this.stage);
    this.canvas.id = 'breach-canvas';
    this.canvas.setAttribute('aria-label', 'Breach');

    const hud = (this.hud = element('div', 'breach-hud', root));
    const top = element('div', 'breach-top', hud);
    this.scoreA = element('span', 'breach-score team-0', top, '0');
    const middle = element('span', 'breach-clock', top);
    this.phaseLabel = element('span', 'breach-phase', middle, '');
    this.time = element('span', 'breach-time', middle, '');
    this.scoreB = element('span', 'breach-score team-1', top, '0');
    this.limit = element('div', 'breach-limit', hud, '');

    const vitals = (this.vitals = element('div', 'breach-vitals', hud));
    const healthRow = element('div', 'breach-row', vitals);
    element('span', 'breach-label', healthRow, 'Health');
    const healthBar = element('span', 'breach-bar', healthRow);
    this.healthFill = element('span', 'breach-fill', healthBar);
    this.healthText = element('strong', 'breach-number', healthRow, '–');
    const ammoRow = element('div', 'breach-row', vitals);
    element('span', 'breach-label', ammoRow, 'Ammo');
    this.ammoText = element('strong', 'breach-number', ammoRow, '–');
    this.reloadText = element('span', 'breach-reload', ammoRow, '');
    const chargeRow = element('div', 'breach-row', vitals);
    element('span', 'breach-label', chargeRow, 'Charges');
    this.chargesText = element('strong', 'breach-number', chargeRow, '–');
    this.help = element('div', 'breach-help', hud, 'WASD move · Shift run · C sneak · click fire · R reload · E charge');

    this.killFeed = element('ol', 'breach-killfeed', hud);
    this.killFeed.id = 'breach-killfeed';
    this.respawn = element('div', 'breach-respawn', hud, '');
    this.respawn.hidden = true;
    this.spectatorBar = element('div', 'breach-spectator', hud);
    this.spectatorBar.hidden = true;
    this.spectatorText = element('span', '', this.spectatorBar, 'Spectating');
    const next = element('button', 'breach-small', this.spectatorBar, 'Next player');
    next.type = 'button';
    next.addEventListener('click', () => this.handlers.onSpectateNext());

    this.status = element('div', 'breach-status', root, '');
    this.status.setAttribute('role', 'status');
    this.status.hidden = true;

    // Lobby and countdown.
    this.lobby = element('section', 'breach-overlay breach-lobby', root);
    this.lobby.id = 'breach-lobby';
    const lobbyCard = element('div', 'breach-card', this.lobby);
    this.lobbyTitle = element('h2', '', lobbyCard, 'Waiting for players');
    this.lobbyText = element('p', 'breach-quiet', lobbyCard, '');
    const teams = element('div', 'breach-teams', lobbyCard);
    this.lobbyTeams = [0, 1].map((team) => {
      const column = element('div', `breach-team team-${team}`, teams);
      element('h3', '', column, TEAM_NAMES[team]);
      return element('ul', '', column);
    });
    // Custom lobbies: the host's controls, the settings form, the map vote, the last notice.
    this.lobbyHost = element('p', 'breach-lobby-host', lobbyCard, '');
    this.lobbyHost.id = 'breach-lobby-host';
    this.hostControls = element('div', 'breach-vote', lobbyCard);
    this.startButton = element('button', 'breach-start', this.hostControls, 'Start now');
    this.startButton.id = 'breach-start-early';
    this.startButton.type = 'button';
    this.startButton.addEventListener('click', () => this.handlers.onStartEarly?.());
    this.editButton = element('button', 'breach-leave', this.hostControls, 'Edit settings');
    this.editButton.id = 'breach-edit-settings';
    this.editButton.type = 'button';
    this.editButton.addEventListener('click', () => {
      this.settingsForm.hidden = !this.settingsForm.hidden;
      if (!this.settingsForm.hidden) this.fillSettingsForm();
    });
    this.settingsForm = this.buildSettingsForm(lobbyCard);
    this.settingsForm.hidden = true;
    this.mapVoteRow = this.buildMapVote(lobbyCard, 'breach-map-vote');
    this.notice = element('p', 'breach-notice', lobbyCard, '');
    this.notice.id = 'breach-notice';
    this.notice.setAttribute('role', 'status');
    this.hostControls.hidden = true;
    this.lobbyHost.hidden = true;
    const lobbyLeave = element('button', 'breach-link', lobbyCard, 'Leave');
    lobbyLeave.type = 'button';
    lobbyLeave.addEventListener('click', () => this.handlers.onLeave());
    this.lobby.hidden = true;

    // Final scoreboard and vote.
    this.board = element('section', 'breach-overlay breach-scoreboard', root);
    this.board.id = 'breach-scoreboard';
    const card = element('div', 'breach-card wide', this.board);
    this.boardTitle = element('h2', '', card, '');
    this.boardReason = element('p', 'breach-quiet', card, '');
    const table = element('table', '', card);
    const head = element('tr', '', element('thead', '', table));
    for (const text of ['Player', 'Team', 'K', 'D', 'A', 'Vote']) element('th', '', head, text);
    this.boardRows = element('tbody', '', table);
    this.voteText = element('p', 'breach-vote-text', card, '');
    const buttons = element('div', 'breach-vote', card);
    this.stayButton = element('button', 'breach-stay', buttons, 'Play again');
    this.stayButton.id = 'breach-vote-stay';
    this.stayButton.type = 'button';
    this.leaveButton = element('button', 'breach-leave', buttons, 'Leave');
    this.leaveButton.id = 'breach-vote-leave';
    this.leaveButton.type = 'button';
    this.stayButton.addEventListener('click', () => this.handlers.onVote(Vote.STAY));
    this.leaveButton.addEventListener('click', () => this.handlers.onVote(Vote.LEAVE));
    this.boardMapVote = this.buildMapVote(card, 'breach-board-map-vote');
    this.board.hidden = true;

    this.keys = {};
    this.ownVote = null;
  }

  /** The map vote: one button per built-in map with its vote count. */
  buildMapVote(parent, id) {
    const row = element('div', 'breach-vote breach-map-vote', parent);
    row.id = id;
    element('span', 'breach-quiet', row, 'Vote for the map:');
    row.buttons = lobbyMaps().map((map) => {
      const button = element('button', 'breach-small', row, map.name);
      button.type = 'button';
      button.dataset.map = String(map.id);
      button.addEventListener('click', () => this.handlers.onMapVote?.(map.id));
      return button;
    });
    row.hidden = true;
    return row;
  }

  /** The host's settings form (the server validates again; a refusal comes back as a notice). */
  buildSettingsForm(parent) {
    const form = element('form', 'breach-settings', parent);
    form.id = 'breach-settings';
    const field = (label, input) => {
      const row = element('label', 'breach-row', form);
      element('span', 'breach-label', row, label);
      row.append(input);
      return input;
    };
    const number = (name, min, max) => {
      const input = document.createElement('input');
      input.type = 'number';
      input.name = name;
      input.min = String(min);
      input.max = String(max);
      input.step = '1';
      return input;
    };
    const choose = (name, options) => {
      const select = document.createElement('select');
      select.name = name;
      for (const [value, text] of options) {
        const option = document.createElement('option');
        option.value = value;
        option.textContent = text;
        select.append(option);
      }
      return select;
    };
    const check = (name) => {
      const input = document.createElement('input');
      input.type = 'checkbox';
      input.name = name;
      return input;
    };
    this.settingsInputs = {
      map: field('Map', choose('map', lobbyMaps().map((map) => [map.key, map.name]))),
      maxPlayers: field('Players', choose('maxPlayers', [2, 4, 6, 8].map((n) => [String(n), `${n} (${n / 2} vs ${n / 2})`]))),
      killLimit: field('Kill limit', number('killLimit', 1, 200)),
      timeLimitSecs: field('Time limit (s)', number('timeLimitSecs', 60, 3600)),
      friendlyFire: field('Friendly fire', check('friendlyFire')),
      mapVote: field('Map vote', check('mapVote')),
    };
    const apply = element('button', 'breach-small', form, 'Apply');
    apply.type = 'submit';
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      const inputs = this.settingsInputs;
      let text;
      try {
        text = settingsText({
          map: inputs.map.value,
          maxPlayers: Number(inputs.maxPlayers.value),
          killLimit: Number(inputs.killLimit.value),
          timeLimitSecs: Number(inputs.timeLimitSecs.value),
          friendlyFire: inputs.friendlyFire.checked,
          mapVote: inputs.mapVote.checked,
        });
      } catch {
        this.text(this.notice, 'Those settings are not valid.');
        return;
      }
      this.handlers.onSettings?.(text);
      form.hidden = true;
    });
    return form;
  }

  fillSettingsForm() {
    const model = this.model;
    if (!model) return;
    const inputs = this.settingsInputs;
    inputs.map.value = model.settings.map;
    inputs.maxPlayers.value = String(model.settings.maxPlayers);
    inputs.killLimit.value = String(model.settings.killLimit);
    inputs.timeLimitSecs.value = String(model.settings.timeLimitSecs);
    inputs.friendlyFire.checked = model.settings.friendlyFire;
    inputs.mapVote.checked = model.settings.mapVote;
  }

  updateMapVote(row, model) {
    row.hidden = !model || !model.voteOpen;
    if (row.hidden) return;
    for (const button of row.buttons) {
      const choice = model.mapChoices.find((map) => map.id === Number(button.dataset.map));
      if (!choice) continue;
      this.text(button, `${choice.name}${choice.votes > 0 ? ` (${choice.votes})` : ''}`);
      button.classList.toggle('chosen', choice.chosen);
    }
  }

  show() {
    this.root.hidden = false;
  }

  hide() {
    this.root.hidden = true;
  }

  setStatus(text, bad = false) {
    this.status.textContent = text;
    this.status.hidden = !text;
    this.status.classList.toggle('bad', bad);
  }

  /** Sets text only when it changed (the HUD updates every frame). */
  text(node, value) {
    if (node.textContent !== value) node.textContent = value;
  }

  nameOf(mirror, slot) {
    if (slot === 0xff) return 'the world';
    const entry = mirror.rosterEntry(slot);
    return entry ? entry.name : `player ${slot}`;
  }

  /** Brings every screen in line with the mirror. */
  update(mirror, { spectatedSlot = null } = {}) {
    const init = mirror.init;
    if (!init) return;
    const [phase, ticksLeft] = mirror.phase;
    const rate = init.tickRate;
    this.text(this.scoreA, String(mirror.scores[0]));
    this.text(this.scoreB, String(mirror.scores[1]));
    const labels = { [Phase.WAITING]: 'Waiting', [Phase.STARTING]: 'Starting', [Phase.IN_PROGRESS]: '', [Phase.ENDING]: 'Match over', [Phase.COMPLETED]: 'Closed' };
    this.text(this.phaseLabel, labels[phase] ?? '');
    this.text(this.time, phase === Phase.WAITING || phase === 255 ? '' : clock(ticksLeft, rate));
    this.text(this.limit, `first to ${init.killLimit}`);
    this.root.dataset.phase = String(phase);

    // Own vitals (players only).
    const own = mirror.own;
    const spectating = mirror.spectating;
    this.vitals.hidden = spectating;
    this.help.hidden = spectating || phase !== Phase.IN_PROGRESS;
    if (!spectating) {
      this.text(this.healthText, String(own.health));
      const width = `${own.health}%`;
      if (this.healthFill.style.width !== width) this.healthFill.style.width = width;
      this.healthFill.classList.toggle('low', own.health <= 25);
      this.text(this.ammoText, `${own.ammo} / 24`);
      this.text(this.reloadText, own.reload > 0 ? `reloading ${(own.reload / rate).toFixed(1)} s` : '');
      this.text(this.chargesText, String(own.charges));
    }
    const dead = !spectating && !own.alive && phase === Phase.IN_PROGRESS;
    this.respawn.hidden = !dead;
    if (dead) this.text(this.respawn, own.respawn > 0 ? `Respawning in ${Math.ceil(own.respawn / rate)}…` : 'Respawning…');

    this.spectatorBar.hidden = !spectating;
    if (spectating) {
      this.text(
        this.spectatorText,
        spectatedSlot === null ? `Spectating (${init.spectatorDelayTicks / rate} s behind)` : `Spectating ${this.nameOf(mirror, spectatedSlot)} (${init.spectatorDelayTicks / rate} s behind)`,
      );
    }

    this.updateKillFeed(mirror);
    this.model = lobbyModel(mirror);
    this.updateLobby(mirror, phase, ticksLeft, rate);
    this.updateScoreboard(mirror, phase, ticksLeft, rate);
  }

  updateKillFeed(mirror) {
    const lines = mirror.killFeed.slice(-5);
    const key = lines.map((k) => `${k.killer}/${k.victim}/${k.assister}/${k.cause}`).join(',') + mirror.roster.map((r) => r.name).join(',');
    if (key === this.keys.killFeed) return;
    this.keys.killFeed = key;
    const items = lines.map((kill) => {
      const item = document.createElement('li');
      const killerTeam = mirror.teamOf(kill.killer);
      const victimTeam = mirror.teamOf(kill.victim);
      const killer = element('span', `team-${killerTeam ?? 'none'}`, item, this.nameOf(mirror, kill.killer));
      if (kill.killer === kill.victim || kill.killer === 0xff) killer.textContent = '';
      element('span', 'breach-weapon', item, kill.cause === 1 ? ' 💥 ' : ' ▸ ');
      element('span', `team-${victimTeam ?? 'none'}`, item, this.nameOf(mirror, kill.victim));
      if (kill.assister !== 0xff) element('span', 'breach-quiet', item, ` + ${this.nameOf(mirror, kill.assister)}`);
      return item;
    });
    this.killFeed.replaceChildren(...items);
  }

  updateLobby(mirror, phase, ticksLeft, rate) {
    const shown = phase === Phase.WAITING || phase === Phase.STARTING;
    this.lobby.hidden = !shown;
    const model = this.model;
    this.updateMapVote(this.boardMapVote, phase === Phase.ENDING ? model : null);
    if (!shown) return;
    const humans = mirror.roster.filter((entry) => !entry.bot).length;
    if (model) {
      this.text(this.lobbyTitle, phase === Phase.WAITING ? 'Custom lobby' : `Match starts in ${Math.max(1, Math.ceil(ticksLeft / rate))}`);
      this.text(
        this.lobbyText,
        `${settingsSummary(model)} · ${humans} of ${model.settings.maxPlayers} here${model.spectators > 0 ? ` · ${model.spectators} watching` : ''}`,
      );
      this.text(
        this.lobbyHost,
        model.isHost
          ? 'You are the host: start when you are ready, or when the lobby is full it starts by itself.'
          : model.hostName
            ? `Host: ${model.hostName}. The match starts when the host starts it or the lobby is full.`
            : 'Waiting for the host. The match starts when the lobby is full.',
      );
    } else {
      this.text(this.lobbyTitle, phase === Phase.WAITING ? 'Waiting for players' : `Match starts in ${Math.max(1, Math.ceil(ticksLeft / rate))}`);
      this.text(
        this.lobbyText,
        phase === Phase.WAITING
          ? `${humans} ${humans === 1 ? 'player' : 'players'} here; the countdown starts when enough have joined. Free seats are filled with bots.`
          : `Map ${mirror.map ? mirror.map.name : ''} · first to ${mirror.init.killLimit} kills · you can move and aim already.`,
      );
    }
    this.lobbyHost.hidden = !model;
    this.hostControls.hidden = !model || !model.isHost || phase !== Phase.WAITING;
    if (model) {
      this.startButton.disabled = !model.canStartEarly;
      this.startButton.title = model.canStartEarly ? '' : 'Each team needs at least one player.';
    }
    if (!model || !model.canEditSettings) this.settingsForm.hidden = true;
    this.updateMapVote(this.mapVoteRow, phase === Phase.WAITING ? model : null);
    const notice = model?.notice ?? null;
    this.notice.hidden = notice === null;
    if (notice) this.text(this.notice, notice.text);
    const key = JSON.stringify([mirror.roster.map((r) => [r.slot, r.team, r.bot, r.name]), model && [model.hostSlot, model.isHost]]);
    if (key !== this.keys.lobby) {
      this.keys.lobby = key;
      for (const team of [0, 1]) {
        const rows = mirror.roster
          .filter((entry) => entry.team === team)
          .map((entry) => {
            const item = document.createElement('li');
            const player = model?.players.find((p) => p.slot === entry.slot);
            element('span', '', item, entry.bot ? `${entry.name} (bot)` : entry.name);
            if (player?.isHost) element('span', 'breach-host-badge', item, ' ★ host');
            if (player?.canKick) {
              const kick = element('button', 'breach-small breach-kick', item, 'Kick');
              kick.type = 'button';
              kick.dataset.slot = String(entry.slot);
              kick.addEventListener('click', () => this.handlers.onKick?.(entry.slot));
            }
            if (player?.canMakeHost) {
              const promote = element('button', 'breach-small breach-make-host', item, 'Make host');
              promote.type = 'button';
              promote.dataset.slot = String(entry.slot);
              promote.addEventListener('click', () => this.handlers.onMakeHost?.(entry.slot));
            }
            if (entry.slot === mirror.init.slot) item.classList.add('own');
            return item;
          });
        this.lobbyTeams[team].replaceChildren(...rows);
      }
    }
  }

  updateScoreboard(mirror, phase, ticksLeft, rate) {
    const board = mirror.scoreboard;
    const shown = board !== null && phase === Phase.ENDING;
    this.board.hidden = !shown;
    if (!shown) {
      this.ownVote = null;
      return;
    }
    const ownSlot = mirror.init.slot;
    const ownTeam = mirror.init.team;
    const title =
      board.winner === 2 ? 'Draw' : ownTeam < 2 ? (board.winner === ownTeam ? 'Victory' : 'Defeat') : `${TEAM_NAMES[board.winner]} wins`;
    this.text(this.boardTitle, `${title} · ${board.scores[0]} : ${board.scores[1]}`);
    this.text(this.boardReason, `${REASONS[board.reason] ?? ''} · ${clock(board.durationTicks, rate)} played`);
    const votes = new Map(mirror.votes);
    const key = JSON.stringify([board.players, mirror.votes]);
    if (key !== this.keys.board) {
      this.keys.board = key;
      const rows = [...board.players]
        .sort((a, b) => a.team - b.team || b.kills - a.kills || a.deaths - b.deaths)
        .map((entry) => {
          const tr = document.createElement('tr');
          tr.className = `team-${entry.team}${entry.slot === ownSlot ? ' own' : ''}`;
          const vote = votes.get(entry.slot);
          for (const text of [entry.bot ? `${entry.name} (bot)` : entry.name, TEAM_NAMES[entry.team], entry.kills, entry.deaths, entry.assists, vote === Vote.STAY ? 'stays' : vote === Vote.LEAVE ? 'leaves' : entry.bot ? '' : '…']) {
            element('td', '', tr, String(text));
          }
          return tr;
        });
      this.boardRows.replaceChildren(...rows);
    }
    const seconds = Math.ceil(ticksLeft / rate);
    const voting = ownSlot !== 0xff;
    this.stayButton.hidden = this.leaveButton.hidden = !voting;
    const mine = votes.get(ownSlot) ?? this.ownVote;
    this.stayButton.classList.toggle('chosen', mine === Vote.STAY);
    this.leaveButton.classList.toggle('chosen', mine === Vote.LEAVE);
    this.text(
      this.voteText,
      voting
        ? mine === Vote.STAY
          ? `You stay. A new match starts in ${seconds} s if at least two players stay.`
          : mine === Vote.LEAVE
            ? 'You leave when the vote ends.'
            : `Play again? ${seconds} s to vote; players who do not vote leave.`
        : `The players are voting: ${seconds} s left.`,
    );
  }
}
