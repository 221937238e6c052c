// Entry point of the Coil browser client: wires the session (net.js), the mirror of the world
// (mirror.js), the renderer (render.js) and the DOM (ui.js), and turns the mouse, touch and
// keyboard into input frames.
//
// Input is sent at most once per server tick (20 Hz; the rate comes from the init frame),
// decided on a tick clock in the frame loop — never per animation frame or per mouse event —
// and only when the angle moved by more than a hair or boost changed: the server applies one
// input per tick, so more would only cost it CPU (crates/coil-loadtest's arena player follows
// the same rule). `window.__coil` is a small read-only window into the client for the browser
// test and for debugging.

import { ClientMirror } from './mirror.js';
import { GameSession } from './net.js';
import { angleToU16, encodeInput, encodeRespawn } from './protocol.js';
import { Motion, Renderer } from './render.js';
import { Ui } from './ui.js';

const canvas = document.getElementById('game');
const renderer = new Renderer(canvas);
const motion = new Motion();
const ui = new Ui();
let mirror = newMirror();

const stats = { decodeMs: 0, renderMs: 0, frames: 0, messages: 0, desyncs: 0, joins: 0, inputsSent: 0 };
const input = {
  aimAngle: 0,
  pointerX: null,
  pointerY: null,
  mouseBoost: false,
  keyBoost: false,
  touchBoost: false,
  sentAngle: -1,
  sentBoost: false,
};
/** Ticks of the send clock, at the server's tick rate (from init; 20 Hz until then). */
const DEFAULT_TICK_MS = 1000 / 20;
const inputClock = {
  tickMs: DEFAULT_TICK_MS,
  next: null,
  /** Whether a tick passed since the last call: true at most once per tick, and once after a stall. */
  due(now) {
    if (this.next === null || now - this.next > this.tickMs) {
      // First call, or a stalled tab: start the clock over from now instead of catching up.
      this.next = now + this.tickMs;
      return true;
    }
    if (now < this.next) return false;
    this.next += this.tickMs;
    return true;
  },
};
let respawnRequested = false;
let playerName = '';
/** The last connection states, oldest first (read by the browser test). */
const statusHistory = [];

const session = new GameSession({
  onStatus(status) {
    ui.setStatus(status);
    if (statusHistory.at(-1) !== status.state) statusHistory.push(status.state);
    if (statusHistory.length > 32) statusHistory.shift();
    if (status.state === 'failed') {
      ui.showStart({ name: playerName, room: localStorage.getItem('coil.room') ?? '', error: status.message });
    }
  },
  onJoined({ room }) {
    // A new connection starts from an empty world (its first message carries Init).
    mirror = newMirror();
    motion.reset();
    stats.joins++;
    respawnRequested = false;
    input.sentAngle = -1;
    ui.hideDeath();
    ui.hideRoomProblem();
    ui.setRoom(room);
  },
  onMessage(bytes) {
    const started = performance.now();
    try {
      mirror.applyMessage(bytes);
    } catch (error) {
      // A message that does not fit what we hold: start over rather than show a wrong world.
      console.warn('coil: dropping a connection after a bad message', error);
      stats.desyncs++;
      session.reconnect('Resynchronising…');
      return;
    }
    stats.messages++;
    stats.decodeMs = smooth(stats.decodeMs, performance.now() - started);
  },
  onRoomProblem(problem) {
    ui.showRoomProblem(problem, {
      onJoin: (room) => session.switchRoom(room),
      onAny: () => session.switchRoom(null),
      onCancel: () => {
        if (!session.joined) {
          session.stop();
          ui.showStart({ name: playerName, room: '' });
        }
      },
    });
  },
});

function newMirror() {
  const created = new ClientMirror();
  created.onEvent = (kind, value) => {
    if (created !== mirror) return;
    if (kind === 'init') {
      inputClock.tickMs = value.tickRate > 0 ? 1000 / value.tickRate : DEFAULT_TICK_MS;
      inputClock.next = null;
    } else if (kind === 'state') {
      motion.onState(created, performance.now());
      if (respawnRequested && created.ownSnake()) {
        respawnRequested = false;
        ui.hideDeath();
      }
    } else if (kind === 'meta') {
      ui.setMeta(value);
    } else if (kind === 'death') {
      ui.showDeath(created.takeDeath(), created.meta);
      // A closing room is left as soon as the run is over.
      if (session.draining) session.leaveDrainingRoom();
    }
  };
  return created;
}

function smooth(average, sample) {
  return average === 0 ? sample : average * 0.9 + sample * 0.1;
}

// ---- input ----

function updateAim() {
  if (input.pointerX === null) return;
  const head = renderer.lastOwnHead;
  const [cx, cy] = head ? renderer.toScreen(head[0], head[1]) : [innerWidth / 2, innerHeight / 2];
  const dx = input.pointerX - cx;
  const dy = input.pointerY - cy;
  if (dx * dx + dy * dy > 4) input.aimAngle = Math.atan2(dy, dx);
}

function sendInput() {
  if (!session.joined) return;
  const angle = angleToU16(input.aimAngle);
  const boost = input.mouseBoost || input.keyBoost || input.touchBoost;
  const turned = input.sentAngle < 0 || Math.abs(((angle - input.sentAngle + 98304) % 65536) - 32768) > 8;
  if (!turned && boost === input.sentBoost) return;
  session.send(encodeInput(angle, boost));
  stats.inputsSent++;
  input.sentAngle = angle;
  input.sentBoost = boost;
}

const touches = new Map();
canvas.addEventListener('pointermove', (event) => {
  if (event.pointerType === 'touch' && touches.size > 0 && event.pointerId !== touches.keys().next().value) return;
  input.pointerX = event.clientX;
  input.pointerY = event.clientY;
});
canvas.addEventListener('pointerdown', (event) => {
  if (event.pointerType === 'touch') {
    touches.set(event.pointerId, true);
    if (touches.size === 1) {
      input.pointerX = event.clientX;
      input.pointerY = event.clientY;
    }
    input.touchBoost = touches.size >= 2;
  } else if (event.button === 0) {
    input.pointerX = event.clientX;
    input.pointerY = event.clientY;
    input.mouseBoost = true;
  }
});
const pointerEnd = (event) => {
  if (event.pointerType === 'touch') {
    touches.delete(event.pointerId);
    input.touchBoost = touches.size >= 2;
  } else {
    input.mouseBoost = false;
  }
};
canvas.addEventListener('pointerup', pointerEnd);
canvas.addEventListener('pointercancel', pointerEnd);
canvas.addEventListener('contextmenu', (event) => event.preventDefault());
const boostButton = document.getElementById('boost-button');
boostButton.addEventListener('pointerdown', (event) => {
  event.preventDefault();
  input.touchBoost = true;
});
boostButton.addEventListener('pointerup', () => {
  input.touchBoost = touches.size >= 2;
});

const typing = () => document.activeElement && document.activeElement.tagName === 'INPUT';
addEventListener('keydown', (event) => {
  if (event.code === 'Space' && !typing()) {
    event.preventDefault();
    input.keyBoost = true;
  } else if (event.code === 'Enter' && ui.deathShown()) {
    event.preventDefault();
    respawn();
  }
});
addEventListener('keyup', (event) => {
  if (event.code === 'Space') input.keyBoost = false;
});
addEventListener('blur', () => {
  input.keyBoost = input.mouseBoost = input.touchBoost = false;
});

function respawn() {
  respawnRequested = true;
  session.send(encodeRespawn());
}

// ---- screens ----

ui.onPlay((name, room) => {
  playerName = name;
  localStorage.setItem('coil.name', name);
  localStorage.setItem('coil.room', room);
  const mode = document.querySelector('input[name="mode"]:checked')?.value ?? 'arena';
  localStorage.setItem('coil.mode', mode);
  if (mode === 'breach' || mode === 'breach-watch') {
    playBreach(name, room, mode === 'breach-watch');
    return;
  }
  mirror = newMirror();
  motion.reset();
  session.start(name, room || null);
});
ui.onSwitchRoom((room) => session.switchRoom(room));
ui.onRespawn(respawn);

function resize() {
  renderer.resize(innerWidth, innerHeight, Math.min(devicePixelRatio || 1, 2));
}
addEventListener('resize', resize);
resize();

// ---- frame loop ----

let lastPingShown = 0;
function frame() {
  const now = performance.now();
  updateAim();
  if (inputClock.due(now)) sendInput();
  renderer.draw(mirror, motion, now, { aimAngle: mirror.ownSnake() ? input.aimAngle : null });
  stats.renderMs = smooth(stats.renderMs, performance.now() - now);
  stats.frames++;
  if (now - lastPingShown > 1000) {
    lastPingShown = now;
    ui.setPing(session.joined ? session.rttMs : null);
  }
  requestAnimationFrame(frame);
}
requestAnimationFrame(frame);

// ---- breach (web/src/breach/, loaded when picked) ----

async function playBreach(name, room, spectate, lobby = null) {
  document.getElementById('hud').hidden = true;
  const { startBreach } = await import('./breach/game.js');
  startBreach({
    root: document.getElementById('breach'),
    name,
    spectate,
    room: room || null,
    lobby,
    onExit: (message) => {
      ui.showStart({ name, room, error: message });
      lobbies.left();
    },
  });
}

// Breach's lobby browser (web/src/lobbies.js) joins a lobby with a join answer instead of a
// matchmake. Loaded on its own, so a page without it still plays quick play.
let lobbies = { left() {} };
import('./lobbies.js')
  .then(({ mountLobbies }) => {
    lobbies = mountLobbies({
      playerName: () => document.getElementById('name').value.trim(),
      onJoin: (answer, name) => {
        ui.hideStart();
        playBreach(name, '', false, answer);
      },
    });
  })
  .catch((error) => console.warn('coil: the lobby browser did not load', error));

const params = new URLSearchParams(location.search);
const savedMode = params.get('mode') ?? localStorage.getItem('coil.mode');
const modeInput = savedMode && document.querySelector(`input[name="mode"][value="${CSS.escape(savedMode)}"]`);
if (modeInput) modeInput.checked = true;
ui.showStart({
  name: localStorage.getItem('coil.name') ?? '',
  room: params.get('room') ?? localStorage.getItem('coil.room') ?? '',
});

// Read-only view for the browser test and for debugging from the console.
window.__coil = {
  status: () => ({
    state: session.state,
    room: session.room,
    joined: session.joined,
    draining: session.draining,
    history: statusHistory.slice(),
  }),
  own() {
    const own = mirror.ownSnake();
    const init = mirror.init;
    if (!own || !init) return null;
    const q = init.positionQuantum;
    return {
      id: own.id,
      head: [own.headX * q, own.headY * q],
      velocity: [own.velocityX * q, own.velocityY * q],
      screen: renderer.lastOwnHead ? renderer.toScreen(renderer.lastOwnHead[0], renderer.lastOwnHead[1]) : null,
      length: own.length,
    };
  },
  meta: () => mirror.meta,
  visible: () => ({ snakes: mirror.snakes.length, pellets: mirror.pelletCount() }),
  stats: () => ({ ...stats, rttMs: session.rttMs }),
  /** Closes the socket from this side, as a network drop would. */
  dropConnection() {
    if (session.socket) session.socket.close();
  },
};
