// The custom lobby as the waiting-room screen shows it: who hosts, the settings, the players
// with what the viewer may do to each, the map vote. A pure function of what the mirror holds
// (no DOM, socket or clock), so node tests check it; screens.js draws it and game.js sends the
// commands (protocol.js encodes them). Nothing here decides anything: the server checks every
// command against the sender's seat and answers a refused one with a Notice.

import { NO_SLOT, Phase, LobbyCode } from './protocol.js';
import { BUILT_IN_MAPS } from './maps.js';
import { parseMap } from './map.js';

let parsedMaps = null;

/** The built-in maps as {id, name, key} (key: the lower-case name settings use), parsed once. */
export function lobbyMaps() {
  if (parsedMaps === null) {
    parsedMaps = BUILT_IN_MAPS.map((text) => parseMap(text)).map((map) => ({ id: map.id, name: map.name, key: map.name.toLowerCase() }));
  }
  return parsedMaps;
}

/** What a notice code means for the client beyond its text. */
export function noticeEndsTheMatch(code) {
  return code === LobbyCode.KICKED;
}

/**
 * The waiting room's model, or null in quick play (no Lobby frame).
 * @param {import('./mirror.js').BreachMirror} mirror
 */
export function lobbyModel(mirror) {
  const lobby = mirror.lobby;
  if (!lobby || !mirror.init) return null;
  const ownSlot = mirror.init.slot;
  const phase = mirror.phase[0];
  const spectating = ownSlot === NO_SLOT;
  const isHost = !spectating && lobby.hostSlot === ownSlot;
  const waiting = phase === Phase.WAITING || phase === 255;
  const maps = lobbyMaps();
  const mapName = (id) => maps.find((map) => map.id === id)?.name ?? `map ${id}`;
  const host = lobby.hostSlot === NO_SLOT ? null : mirror.roster.find((entry) => entry.slot === lobby.hostSlot) ?? null;
  const players = mirror.roster.map((entry) => {
    const human = !entry.bot;
    const self = entry.slot === ownSlot;
    return {
      slot: entry.slot,
      name: entry.name,
      team: entry.team,
      bot: entry.bot,
      isHost: entry.slot === lobby.hostSlot,
      isSelf: self,
      canKick: isHost && human && !self,
      canMakeHost: isHost && human && !self,
    };
  });
  const humans = players.filter((player) => !player.bot);
  const teamsReady = [0, 1].every((team) => humans.some((player) => player.team === team));
  const votes = new Map(lobby.votes);
  const voteOpen = lobby.mapVote && !spectating && (waiting || phase === Phase.ENDING);
  const mapChoices = maps.map((map) => ({
    id: map.id,
    name: map.name,
    votes: lobby.votes.filter(([, id]) => id === map.id).length,
    chosen: votes.get(ownSlot) === map.id,
    current: map.id === lobby.mapId,
  }));
  const notice = mirror.notices.length > 0 ? mirror.notices[mirror.notices.length - 1] : null;
  return {
    isHost,
    spectating,
    hostSlot: lobby.hostSlot,
    hostName: host ? host.name : null,
    settings: {
      map: maps.find((map) => map.id === lobby.mapId)?.key ?? String(lobby.mapId),
      killLimit: lobby.killLimit,
      timeLimitSecs: lobby.timeLimitSecs,
      friendlyFire: lobby.friendlyFire,
      mapVote: lobby.mapVote,
      maxPlayers: lobby.maxPlayers,
    },
    mapName: mapName(lobby.mapId),
    spectators: lobby.spectators,
    players,
    humans: humans.length,
    canStartEarly: isHost && waiting && teamsReady,
    canEditSettings: isHost && waiting,
    voteOpen,
    mapChoices,
    notice,
  };
}

/** One line describing the rules, e.g. "Warehouse · 6 players · first to 20 · 10 min · friendly fire". */
export function settingsSummary(model) {
  const s = model.settings;
  const minutes = s.timeLimitSecs % 60 === 0 ? `${s.timeLimitSecs / 60} min` : `${s.timeLimitSecs} s`;
  const parts = [model.mapName, `${s.maxPlayers} players`, `first to ${s.killLimit}`, minutes];
  if (s.friendlyFire) parts.push('friendly fire');
  if (s.mapVote) parts.push('map vote');
  return parts.join(' · ');
}
