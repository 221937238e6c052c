// Breach in the browser: wires the session (net.js), the mirror (mirror.js), prediction
// (predict.js), interpolation (interpolate.js), input (input.js), sound (sound.js), the
// renderer (render.js) and the screens (screens.js).
//
// `BreachGame` is driven from outside: `handleMessage(bytes, now)` for every server message
// and `frame(now)` once per animation frame, with `now` in milliseconds. The live page
// (`startBreach`) drives it from a WebSocket and requestAnimationFrame; the test page
// (web/test/breach-bench.html) drives it from a recorded match with a clock it controls, so
// the same code is tested without a server.
//
// `window.__breach` is a small read-only window into the client for browser tests and for
// debugging from the console (see docs/web-client.md).

import { BreachMirror } from './mirror.js';
import { BreachSession } from './net.js';
import { Controls, InputSender, TickClock } from './input.js';
import { Interpolator } from './interpolate.js';
import { Predictor } from './predict.js';
import { Renderer, VIEW_HEIGHT, VIEW_WIDTH } from './render.js';
import { Screens } from './screens.js';
import { SoundBoard } from './sound.js';
import {
  LobbyCode,
  Phase,
  SoundKind,
  Vote,
  encodeKick,
  encodeMapVote,
  encodeSettings,
  encodeStartEarly,
  encodeTransferHost,
  encodeVote,
  facingFromRadians,
} from './protocol.js';

function smooth(average, sample) {
  return average === 0 ? sample : average * 0.9 + sample * 0.1;
}

export class BreachGame {
  /**
   * @param {object} options
   * @param {HTMLElement} options.root  empty element the screens are built in
   * @param {{send(bytes: Uint8Array): boolean, leaveAfterVote(message?: string): void}} options.session
   * @param {SoundBoard} [options.sound]
   * @param {(message: string) => void} [options.onLeave]  the player left from the lobby
   */
  constructor({ root, session, sound = new SoundBoard(), onLeave = () => {} }) {
    this.session = session;
    this.sound = sound;
    this.onLeave = onLeave;
    this.screens = new Screens(root, {
      onVote: (vote) => this.vote(vote),
      onLeave: () => this.onLeave('You left the lobby.'),
      onSpectateNext: () => this.spectateNext(),
      onKick: (slot) => this.sendLobby(encodeKick(slot)),
      onMakeHost: (slot) => this.sendLobby(encodeTransferHost(slot)),
      onStartEarly: () => this.sendLobby(encodeStartEarly()),
      onSettings: (text) => this.sendLobby(encodeSettings(text)),
      onMapVote: (mapId) => this.sendLobby(encodeMapVote(mapId)),
    });
    this.renderer = new Renderer(this.screens.canvas);
    this.mirror = new BreachMirror();
    this.controls = new Controls();
    this.sender = new InputSender();
    this.predictor = new Predictor();
    this.interpolator = new Interpolator();
    this.tickClock = new TickClock();
    this.pointer = null;
    this.spectated = null;
    this.lastFrameAt = null;
    this.previousReload = 0;
    this.stats = { messages: 0, bytes: 0, decodeMs: 0, renderMs: 0, frames: 0, desyncs: 0, inputsSent: 0, votesSent: 0, framesSent: [] };
    this.onDesync = null;
    /** Kill feed entries received since the page started (the mirror keeps only the last 16). */
    this.killFeedTotal = 0;
    this.attachMirror();
  }

  attachMirror() {
    this.mirror.onFrame = (kind, value) => {
      if (kind === 'init') this.onInit(value);
      else if (kind === 'killFeed') this.killFeedTotal += value.length;
      else if (kind === 'notice' && value.code === LobbyCode.KICKED) this.session.leaveAfterVote('The host removed you from this lobby.');
    };
  }

  /** A new connection began (not a resume): everything starts over. */
  joined({ resumed }) {
    if (resumed) {
      this.sender.resumed();
    } else {
      this.sender.reset();
      this.mirror = new BreachMirror();
      this.attachMirror();
    }
    this.predictor.reset();
    this.interpolator.reset();
    this.renderer.clearEffects();
  }

  onInit() {
    this.interpolator.reset();
    this.renderer.clearEffects();
    this.predictor.valid = false;
    this.spectated = null;
    this.previousReload = 0;
  }

  /** One server message. Throws nothing: a message that does not fit is a desync. */
  handleMessage(bytes, now) {
    const started = performance.now();
    try {
      this.mirror.applyMessage(bytes);
    } catch (error) {
      // What we hold no longer matches the server: start over on a fresh connection (the
      // resume answers with a full state) rather than show a wrong world.
      this.stats.desyncs++;
      console.warn('breach: a message did not fit what the client holds; reconnecting', error);
      this.onDesync?.(error);
      return;
    }
    this.stats.messages++;
    this.messagesThisConnection = (this.messagesThisConnection ?? 0) + 1;
    this.stats.bytes += bytes.length;
    const state = this.mirror.lastState;
    if (state && state === this.appliedState) return;
    this.appliedState = state;
    if (state) this.afterState(state, now);
    this.stats.decodeMs = smooth(this.stats.decodeMs, performance.now() - started);
  }

  afterState(state, now) {
    const mirror = this.mirror;
    this.predictor.reconcile(mirror);
    this.sender.onAck(mirror.own.ack);
    // Shots are drawn from where the shooter was in this tick.
    const positions = this.positionsAtTick();
    for (const shot of state.shots) {
      const from = positions[shot.shooter];
      if (!from) continue;
      const own = shot.shooter === mirror.init.slot;
      this.renderer.addShot(shot, own ? (this.ownPixels() ?? from) : from, own ? -Infinity : mirror.tick, now, mirror.walls);
      // The server sends no sound for what the player sees: its own shots and those on screen.
      const ownAt = this.ownPixels();
      if (own) this.sound.playSeen(SoundKind.SHOT, 0, 0);
      else if (ownAt) this.sound.playSeen(SoundKind.SHOT, from[0] - ownAt[0], from[1] - ownAt[1]);
      else if (mirror.spectating) this.sound.playSeen(SoundKind.SHOT, 0, 0);
    }
    for (const [x, y] of state.blasts) this.renderer.addBlast(x, y, now);
    for (const sound of state.sounds) this.sound.playHeard(sound);
    if (mirror.own.reload > this.previousReload && this.previousReload === 0 && !mirror.spectating) this.sound.playSeen(SoundKind.RELOAD, 0, 0);
    this.previousReload = mirror.own.reload;
    this.interpolator.onState(mirror, now);
    if (mirror.phase[0] === Phase.COMPLETED) this.session.leaveAfterVote('The match is over.');
  }

  /** Every held player's exact position this tick, in pixels, by slot (own included). */
  positionsAtTick() {
    const mirror = this.mirror;
    const positions = new Array(16).fill(null);
    mirror.others.forEach((other, slot) => {
      if (other) positions[slot] = [other.qx / 2 + 0.25, other.qy / 2 + 0.25];
    });
    if (!mirror.spectating && mirror.init && mirror.init.slot < 16) positions[mirror.init.slot] = [mirror.own.x / 8, mirror.own.y / 8];
    return positions;
  }

  /** The own player's predicted position in pixels, or null (spectator, dead, no match). */
  ownPixels() {
    const mirror = this.mirror;
    if (!mirror.init || mirror.spectating || !mirror.own.alive || !this.predictor.valid) return null;
    return [this.predictor.x / 8, this.predictor.y / 8];
  }

  vote(vote) {
    if (this.session.send(encodeVote(vote))) {
      this.stats.votesSent++;
      this.stats.framesSent.push(encodeVote(vote));
    }
    this.screens.ownVote = vote;
    if (vote === Vote.LEAVE) this.session.leaveAfterVote('You left the match.');
  }

  /** A custom lobby's command (the server checks that this seat may send it). */
  sendLobby(bytes) {
    if (this.session.send(bytes)) {
      this.stats.lobbyCommandsSent = (this.stats.lobbyCommandsSent ?? 0) + 1;
      this.stats.framesSent.push(bytes);
      if (this.stats.framesSent.length > 64) this.stats.framesSent.shift();
    }
  }

  spectateNext() {
    const held = this.mirror.others.map((other, slot) => (other ? slot : -1)).filter((slot) => slot >= 0);
    if (held.length === 0) {
      this.spectated = null;
      return;
    }
    const after = held.find((slot) => this.spectated === null || slot > this.spectated);
    this.spectated = after ?? held[0];
  }

  /** Pointer position in client (CSS) pixels → logical canvas pixels. */
  pointerAt(clientX, clientY) {
    const rect = this.screens.canvas.getBoundingClientRect();
    if (rect.width === 0 || rect.height === 0) return;
    this.pointer = [((clientX - rect.left) / rect.width) * VIEW_WIDTH, ((clientY - rect.top) / rect.height) * VIEW_HEIGHT];
  }

  /** Whether inputs go out now (a seated, living player in a phase where bodies move). */
  canSendInput() {
    const mirror = this.mirror;
    return mirror.init !== null && !mirror.spectating && mirror.own.alive && mirror.phase[0] !== Phase.ENDING && mirror.phase[0] !== Phase.COMPLETED;
  }

  /** One animation frame: the input tick clock, then drawing. */
  frame(now) {
    const started = performance.now();
    const elapsed = this.lastFrameAt === null ? 0 : now - this.lastFrameAt;
    this.lastFrameAt = now;
    const mirror = this.mirror;
    // Aim: from the own player on screen toward the pointer.
    const own = this.ownPixels();
    if (own && this.pointer) {
      const [sx, sy] = this.renderer.toCanvas(own[0], own[1]);
      const dx = this.pointer[0] - sx;
      const dy = this.pointer[1] - sy;
      if (dx * dx + dy * dy >= 1) this.controls.facing = facingFromRadians(Math.atan2(dy, dx));
    }
    // At most one input per tick, decided on the tick clock.
    const ticks = this.tickClock.due(now);
    for (let tick = 0; tick < ticks; tick++) {
      if (!this.canSendInput()) break;
      const intent = this.controls.intent();
      const bytes = this.sender.tick(intent);
      if (bytes === null) continue;
      if (!this.session.send(bytes)) break;
      this.controls.consumePresses();
      this.predictor.applySent(intent, mirror);
      this.stats.inputsSent++;
      this.stats.framesSent.push(bytes);
      if (this.stats.framesSent.length > 64) this.stats.framesSent.shift();
    }
    const display = own ? this.predictor.displayPosition(elapsed).map((v) => v / 8) : null;
    const renderTick = this.interpolator.renderTick(now);
    let focus = null;
    if (mirror.spectating) {
      if (this.spectated === null || mirror.others[this.spectated] === null) this.spectateNext();
      if (this.spectated !== null) {
        const at = this.interpolator.sample(this.spectated, renderTick);
        if (at) focus = [at.x, at.y];
      }
    }
    this.renderer.draw({
      mirror,
      own: display,
      facing: this.controls.facing,
      others: this.interpolator,
      renderTick,
      now,
      focus,
      pointer: own ? this.pointer : null,
    });
    this.screens.update(mirror, { spectatedSlot: this.spectated });
    this.stats.frames++;
    this.stats.renderMs = smooth(this.stats.renderMs, performance.now() - started);
  }

  /** Keyboard and mouse, while the game is shown. Returns a function that detaches them. */
  attachInput(target = window) {
    const canvas = this.screens.canvas;
    const typing = () => document.activeElement && document.activeElement.tagName === 'INPUT';
    const gameKeys = new Set(['KeyW', 'KeyA', 'KeyS', 'KeyD', 'ArrowUp', 'ArrowDown', 'ArrowLeft', 'ArrowRight', 'ShiftLeft', 'ShiftRight', 'KeyC', 'KeyR', 'KeyE', 'KeyF', 'Space', 'AltLeft', 'ControlLeft', 'Tab']);
    const keydown = (event) => {
      this.sound.unlock();
      if (typing() || !gameKeys.has(event.code)) return;
      event.preventDefault();
      if (event.code === 'Tab') {
        if (this.mirror.spectating) this.spectateNext();
        return;
      }
      if (event.repeat) return;
      if (event.code === 'Space') this.controls.fire = true;
      else this.controls.keyDown(event.code);
    };
    const keyup = (event) => {
      if (event.code === 'Space') this.controls.fire = false;
      this.controls.keyUp(event.code);
    };
    const blur = () => this.controls.releaseAll();
    const move = (event) => this.pointerAt(event.clientX, event.clientY);
    const down = (event) => {
      this.sound.unlock();
      this.pointerAt(event.clientX, event.clientY);
      if (event.button === 0) {
        if (this.mirror.spectating) this.spectateNext();
        else this.controls.fire = true;
      }
    };
    const up = (event) => {
      if (event.button === 0) this.controls.fire = false;
    };
    const menu = (event) => event.preventDefault();
    target.addEventListener('keydown', keydown);
    target.addEventListener('keyup', keyup);
    target.addEventListener('blur', blur);
    target.addEventListener('pointermove', move);
    canvas.addEventListener('pointerdown', down);
    target.addEventListener('pointerup', up);
    canvas.addEventListener('contextmenu', menu);
    return () => {
      target.removeEventListener('keydown', keydown);
      target.removeEventListener('keyup', keyup);
      target.removeEventListener('blur', blur);
      target.removeEventListener('pointermove', move);
      canvas.removeEventListener('pointerdown', down);
      target.removeEventListener('pointerup', up);
      canvas.removeEventListener('contextmenu', menu);
    };
  }

  /** The debug hook's view of the game. */
  debugView() {
    const mirror = this.mirror;
    const init = mirror.init;
    const own = this.ownPixels();
    const toClient = (x, y) => {
      const [cx, cy] = this.renderer.toCanvas(x, y);
      const rect = this.screens.canvas.getBoundingClientRect();
      return [rect.left + (cx / VIEW_WIDTH) * rect.width, rect.top + (cy / VIEW_HEIGHT) * rect.height];
    };
    return {
      init: init && { ...init },
      map: mirror.map && { id: mirror.map.id, name: mirror.map.name },
      tick: mirror.tick,
      phase: mirror.phase[0],
      phaseTicksLeft: mirror.phase[1],
      scores: [...mirror.scores],
      spectating: mirror.spectating,
      own: init && !mirror.spectating
        ? {
            ...mirror.own,
            predicted: own,
            pending: this.predictor.pending.length,
            screen: own ? toClient(own[0], own[1]) : null,
          }
        : null,
      others: mirror.others.flatMap((other, slot) => (other ? [{ slot, team: mirror.teamOf(slot), x: other.qx / 2, y: other.qy / 2, health: other.health, screen: toClient(other.qx / 2, other.qy / 2) }] : [])),
      roster: mirror.roster.map((entry) => ({ ...entry })),
      killFeed: mirror.killFeed.map((kill) => ({ ...kill })),
      killFeedTotal: this.killFeedTotal,
      scoreboard: mirror.scoreboard && { ...mirror.scoreboard },
      votes: mirror.votes.map(([slot, vote]) => ({ slot, vote })),
      lobby: mirror.lobby && { ...mirror.lobby, votes: mirror.lobby.votes.map(([slot, map]) => ({ slot, map })) },
      notices: mirror.notices.map((notice) => ({ ...notice })),
      damagedSlices: mirror.walls ? mirror.walls.damagedSlices().length : 0,
      drawn: this.renderer.drawn,
      camera: [...this.renderer.camera],
      stats: { ...this.stats, framesSent: undefined, sender: this.sender.sent },
      sound: { ...this.sound.stats, log: this.sound.log.slice(-16) },
    };
  }

  /** Client (CSS) coordinates of a map point in pixels, for tests that aim the mouse. */
  screenPoint(x, y) {
    const [cx, cy] = this.renderer.toCanvas(x, y);
    const rect = this.screens.canvas.getBoundingClientRect();
    return [rect.left + ((cx + 0.5) / VIEW_WIDTH) * rect.width, rect.top + ((cy + 0.5) / VIEW_HEIGHT) * rect.height];
  }

  /** Hit points of the slice under a map point in pixels (tests: did the wall break?). */
  sliceAt(x, y) {
    const walls = this.mirror.walls;
    if (!walls) return null;
    const sx = Math.floor(x / walls.slicePixels);
    const sy = Math.floor(y / walls.slicePixels);
    if (sx < 0 || sy < 0 || sx >= walls.width || sy >= walls.height) return null;
    return walls.hitPoints[sy * walls.width + sx];
  }
}

/**
 * Starts a live breach game in `root`: matchmakes (or, with `lobby` = {roomId, wsUrl,
 * joinToken} from the lobby API, joins that custom lobby), plays; calls `onExit(message)` when
 * the player is back to the menu (left, match over, refused, kicked). Returns `stop()`.
 */
export function startBreach({ root, name, spectate = false, room = null, lobby = null, onExit }) {
  let exited = false;
  const exit = (message) => {
    if (exited) return;
    exited = true;
    stop();
    onExit(message);
  };
  const session = new BreachSession({
    onStatus: ({ state, message }) => {
      game.screens.setStatus(state === 'playing' ? message : message || state, state === 'unreachable' || state === 'failed');
      statusHistory.push(state);
      if (statusHistory.length > 32) statusHistory.shift();
      if (state === 'failed') exit(message);
    },
    onMessage: (bytes) => game.handleMessage(bytes, performance.now()),
    onJoined: (info) => {
      game.messagesThisConnection = 0;
      game.joined(info);
    },
    onEnded: (message) => exit(message),
  });
  const statusHistory = [];
  const game = new BreachGame({ root, session, onLeave: (message) => exit(message) });
  // A message that does not fit: start over on a fresh connection (the room answers a resume
  // with a full state). A connection whose very first message is not breach's, or desyncs
  // that keep coming, mean this is not a breach room at all: stop rather than loop.
  const desyncs = [];
  game.onDesync = () => {
    const now = performance.now();
    desyncs.push(now);
    while (desyncs.length > 0 && now - desyncs[0] > 60_000) desyncs.shift();
    if (game.messagesThisConnection === 0 || desyncs.length > 5) {
      session.fail('The server did not send a breach match. Is breach enabled on this server?');
    } else {
      session.dropConnection();
    }
  };
  game.screens.show();
  const resize = () => game.renderer.resize(root.clientWidth || innerWidth, root.clientHeight || innerHeight, devicePixelRatio || 1);
  addEventListener('resize', resize);
  resize();
  const detach = game.attachInput(window);
  let running = true;
  const loop = (now) => {
    if (!running) return;
    game.frame(now);
    requestAnimationFrame(loop);
  };
  requestAnimationFrame(loop);
  session.start({ name, spectate, room, lobby, accessToken: localStorage.getItem('coil.accessToken') });

  window.__breach = {
    status: () => ({ state: session.state, joined: session.joined, room: session.placement?.roomId ?? null, history: statusHistory.slice(), counts: { ...session.counts }, rttMs: session.rttMs }),
    state: () => game.debugView(),
    screenPoint: (x, y) => game.screenPoint(x, y),
    sliceAt: (x, y) => game.sliceAt(x, y),
    /** Whether a map point (px) is in the unfogged view of the last frame. */
    inView: (x, y) => game.renderer.inView(x, y),
    /** The colour the last frame drew at a map point (px). */
    pixelAt: (x, y) => game.renderer.pixelAt(x, y),
    /** Closes the socket from this side, as a network drop would. */
    dropConnection: () => session.dropConnection(),
  };

  function stop() {
    running = false;
    session.stop();
    detach();
    removeEventListener('resize', resize);
    game.screens.hide();
  }
  return stop;
}
