//! The room's decisions, without IO: seats and caps, reconnect grace, the room's lifecycle,
//! idle reaping and drain deadlines.
//!
//! A plain struct driven by events and `now`. Time is a [`Duration`] since the room's own
//! epoch, given by the caller: the room task converts its one clock (tokio's, so paused time
//! drives it in tests) and the tests here pass any instant they like, so a 20-minute drain
//! deadline is checked in microseconds. This module never reads a clock, never touches a
//! socket and never calls the game: the task ([`super::Room`]) does what the core decides.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use coil_game::{Phase, PlayerId, Role};
use coil_match::RoomState;

/// A secret that lets a dropped player take its held seat back. Single use: every resume
/// retires it and issues a new one.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ResumeToken(pub [u8; 16]);

impl std::fmt::Debug for ResumeToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret.
        f.write_str("ResumeToken(..)")
    }
}

/// The limits a room enforces, from its mode's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeatLimits {
    /// Players (connected + held) a room holds at most.
    pub hard_cap: usize,
    /// Spectators a room holds at most, beside its players.
    pub spectator_cap: usize,
    /// How long a dropped player's seat is held (zero: a drop is a leave).
    pub reconnect_grace: Duration,
    /// How long a room with no seats at all lives before it is reaped.
    pub idle_grace: Duration,
    /// Whether the room runs matches that a drain lets finish.
    pub matches: bool,
}

/// Why a join was refused by the room's rules (the game may refuse for its own reasons after).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdmitError {
    Full,
    SpectatorsFull,
    Draining,
}

/// Why a resume was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResumeError {
    /// The seat was held, but its grace ran out (or the room ended): re-matchmake.
    Expired,
    /// The token is unknown, or was already used (tokens rotate on every resume).
    Refused,
}

/// What became of a seat whose connection dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dropped {
    /// The seat is held until this instant.
    Held { until: Duration },
    /// The seat is gone: the game must see a leave.
    Gone,
}

/// A resume that succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resumed {
    pub player: PlayerId,
    /// The seat was still marked connected (the old connection had not noticed the drop yet,
    /// as after a network switch): the old connection must be closed.
    pub took_over: bool,
}

/// Why a room ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// No seats for the idle grace.
    Idle,
    /// The game completed.
    Completed,
    /// Draining, and every seat is gone.
    Drained,
    /// Draining, and the deadline passed with seats left.
    DeadlinePassed,
}

/// What one tick decided.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct TickOutcome {
    /// Held seats whose grace ran out: each is now a leave.
    pub expired: Vec<PlayerId>,
    /// The room should end now.
    pub end: Option<EndReason>,
}

/// Seat counts, for stats and heartbeats.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SeatCounts {
    pub connected_players: usize,
    pub held_players: usize,
    pub spectators: usize,
}

impl SeatCounts {
    /// Players who occupy a seat against the caps (connected or held).
    pub fn players(&self) -> usize {
        self.connected_players + self.held_players
    }
}

#[derive(Debug)]
struct Seat {
    role: Role,
    /// `Some(until)` while the seat is held for a reconnect.
    held_until: Option<Duration>,
    token: Option<ResumeToken>,
}

/// How many retired tokens a room remembers, to tell "expired" from "refused". Bounded: an
/// old token beyond this is simply refused.
const RETIRED_TOKENS: usize = 256;

/// The room's decisions.
#[derive(Debug)]
pub struct RoomCore {
    limits: SeatLimits,
    seats: HashMap<PlayerId, Seat>,
    tokens: HashMap<ResumeToken, PlayerId>,
    /// Tokens of seats whose grace ran out, oldest first (bounded).
    expired_tokens: VecDeque<ResumeToken>,
    next_player: u32,
    lifecycle: RoomState,
    /// When the room last became empty (no seats of any kind).
    empty_since: Option<Duration>,
    /// The drain deadline this room closes at, once draining.
    drain_deadline: Option<Duration>,
    phase: Phase,
}

impl RoomCore {
    pub fn new(limits: SeatLimits, now: Duration) -> RoomCore {
        RoomCore {
            limits,
            seats: HashMap::new(),
            tokens: HashMap::new(),
            expired_tokens: VecDeque::new(),
            next_player: 1,
            lifecycle: RoomState::Warm,
            empty_since: Some(now),
            drain_deadline: None,
            phase: Phase::Open,
        }
    }

    pub fn limits(&self) -> &SeatLimits {
        &self.limits
    }

    pub fn state(&self) -> RoomState {
        self.lifecycle
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    pub fn drain_deadline(&self) -> Option<Duration> {
        self.drain_deadline
    }

    pub fn counts(&self) -> SeatCounts {
        let mut counts = SeatCounts::default();
        for seat in self.seats.values() {
            match (seat.role, seat.held_until) {
                (Role::Spectator, _) => counts.spectators += 1,
                (Role::Player, None) => counts.connected_players += 1,
                (Role::Player, Some(_)) => counts.held_players += 1,
            }
        }
        counts
    }

    pub fn is_seated(&self, player: PlayerId) -> bool {
        self.seats.contains_key(&player)
    }

    pub fn is_connected(&self, player: PlayerId) -> bool {
        self.seats
            .get(&player)
            .is_some_and(|seat| seat.held_until.is_none())
    }

    pub fn role(&self, player: PlayerId) -> Option<Role> {
        self.seats.get(&player).map(|seat| seat.role)
    }

    /// Whether the room would take one more player now (the game's own joinability aside).
    pub fn has_player_seat(&self) -> bool {
        self.lifecycle != RoomState::Draining && self.counts().players() < self.limits.hard_cap
    }

    /// Takes a seat for a new connection, or refuses by the room's rules. The caller then asks
    /// the game; if the game refuses, it calls [`RoomCore::cancel`].
    pub fn admit(&mut self, role: Role, now: Duration) -> Result<PlayerId, AdmitError> {
        if matches!(self.lifecycle, RoomState::Draining | RoomState::Terminated) {
            return Err(AdmitError::Draining);
        }
        let counts = self.counts();
        match role {
            Role::Player if counts.players() >= self.limits.hard_cap => {
                return Err(AdmitError::Full);
            }
            Role::Spectator if counts.spectators >= self.limits.spectator_cap => {
                return Err(AdmitError::SpectatorsFull);
            }
            _ => {}
        }
        let player = PlayerId(self.next_player);
        self.next_player += 1;
        self.seats.insert(
            player,
            Seat {
                role,
                held_until: None,
                token: None,
            },
        );
        self.occupied(now);
        Ok(player)
    }

    /// Undoes an [`RoomCore::admit`] the game refused.
    pub fn cancel(&mut self, player: PlayerId, now: Duration) {
        self.remove(player, now);
    }

    /// Whether seats of this room can be resumed at all (a held seat needs a token).
    pub fn reconnects(&self) -> bool {
        !self.limits.reconnect_grace.is_zero()
    }

    /// Gives a seat its (next) resume token, retiring the previous one.
    pub fn set_token(&mut self, player: PlayerId, token: ResumeToken) {
        let Some(seat) = self.seats.get_mut(&player) else {
            return;
        };
        if let Some(old) = seat.token.replace(token) {
            self.tokens.remove(&old);
        }
        self.tokens.insert(token, player);
    }

    /// The player's connection dropped. With a reconnect grace, and unless the room is past
    /// its drain deadline, the seat is held; otherwise it is gone.
    pub fn dropped(&mut self, player: PlayerId, now: Duration) -> Dropped {
        let grace = self.limits.reconnect_grace;
        let Some(seat) = self.seats.get_mut(&player) else {
            return Dropped::Gone;
        };
        if grace.is_zero() || seat.token.is_none() || seat.role == Role::Spectator {
            self.remove(player, now);
            return Dropped::Gone;
        }
        let until = now + grace;
        seat.held_until = Some(until);
        Dropped::Held { until }
    }

    /// A dropped (or dropping) player presents its token on a new connection.
    pub fn resume(&mut self, token: &ResumeToken, now: Duration) -> Result<Resumed, ResumeError> {
        let Some(&player) = self.tokens.get(token) else {
            return Err(if self.expired_tokens.contains(token) {
                ResumeError::Expired
            } else {
                ResumeError::Refused
            });
        };
        // Single use: the token is retired now; the caller sets the next one.
        self.tokens.remove(token);
        let Some(seat) = self.seats.get_mut(&player) else {
            return Err(ResumeError::Refused);
        };
        seat.token = None;
        match seat.held_until {
            Some(until) if until <= now => {
                // The grace ran out but the tick that would expire it has not run yet.
                self.retire_expired(*token);
                self.remove(player, now);
                Err(ResumeError::Expired)
            }
            Some(_) => {
                seat.held_until = None;
                Ok(Resumed {
                    player,
                    took_over: false,
                })
            }
            None => Ok(Resumed {
                player,
                took_over: true,
            }),
        }
    }

    /// The player left for good (closed, kicked, protocol error with no grace).
    pub fn leave(&mut self, player: PlayerId, now: Duration) -> bool {
        self.remove(player, now)
    }

    /// The game's phase, read after each tick.
    pub fn observe_phase(&mut self, phase: Phase) {
        self.phase = phase;
    }

    /// Starts draining: no new joins. A room whose match is running (or showing its final
    /// scoreboard) closes at `match_deadline`, any other at `deadline`. Draining again only
    /// ever moves the deadline earlier.
    pub fn drain(&mut self, deadline: Duration, match_deadline: Duration) {
        let wanted = if self.limits.matches
            && matches!(
                self.phase,
                Phase::Starting | Phase::InProgress | Phase::Ending
            ) {
            match_deadline.max(deadline)
        } else {
            deadline
        };
        self.drain_deadline = Some(self.drain_deadline.map_or(wanted, |d| d.min(wanted)));
        if self.lifecycle != RoomState::Terminated {
            self.lifecycle = RoomState::Draining;
        }
    }

    /// An eviction: close at `deadline` whatever the phase (and never later than already set).
    pub fn evict(&mut self, deadline: Duration) {
        self.drain_deadline = Some(self.drain_deadline.map_or(deadline, |d| d.min(deadline)));
        if self.lifecycle != RoomState::Terminated {
            self.lifecycle = RoomState::Draining;
        }
    }

    /// Expires held seats and decides whether the room ends.
    pub fn tick(&mut self, now: Duration) -> TickOutcome {
        let mut outcome = TickOutcome::default();
        let expired: Vec<PlayerId> = self
            .seats
            .iter()
            .filter(|(_, seat)| seat.held_until.is_some_and(|until| until <= now))
            .map(|(player, _)| *player)
            .collect();
        for player in expired {
            if let Some(token) = self.seats.get(&player).and_then(|seat| seat.token) {
                self.retire_expired(token);
            }
            self.remove(player, now);
            outcome.expired.push(player);
        }
        outcome.expired.sort_unstable();
        outcome.end = self.end_reason(now);
        if outcome.end.is_some() {
            self.lifecycle = RoomState::Terminated;
        }
        outcome
    }

    fn end_reason(&self, now: Duration) -> Option<EndReason> {
        if self.phase == Phase::Completed {
            return Some(EndReason::Completed);
        }
        if self.lifecycle == RoomState::Draining {
            // Held seats alone keep nobody playing: a draining match whose players all
            // dropped ends now instead of running, with bots, to the match deadline.
            if self.seats.values().all(|seat| seat.held_until.is_some()) {
                return Some(EndReason::Drained);
            }
            if self.drain_deadline.is_some_and(|deadline| now >= deadline) {
                return Some(EndReason::DeadlinePassed);
            }
            return None;
        }
        match self.empty_since {
            Some(since) if now.saturating_sub(since) >= self.limits.idle_grace => {
                Some(EndReason::Idle)
            }
            _ => None,
        }
    }

    /// Every seat, for closing them all at the end.
    pub fn seated(&self) -> Vec<PlayerId> {
        let mut players: Vec<PlayerId> = self.seats.keys().copied().collect();
        players.sort_unstable();
        players
    }

    fn occupied(&mut self, _now: Duration) {
        self.empty_since = None;
        if self.lifecycle == RoomState::Warm {
            self.lifecycle = RoomState::Active;
        }
    }

    fn remove(&mut self, player: PlayerId, now: Duration) -> bool {
        let Some(seat) = self.seats.remove(&player) else {
            return false;
        };
        if let Some(token) = seat.token {
            self.tokens.remove(&token);
        }
        if self.seats.is_empty() {
            self.empty_since = Some(now);
            if self.lifecycle == RoomState::Active {
                self.lifecycle = RoomState::Warm;
            }
        }
        true
    }

    fn retire_expired(&mut self, token: ResumeToken) {
        if self.expired_tokens.len() >= RETIRED_TOKENS {
            self.expired_tokens.pop_front();
        }
        self.expired_tokens.push_back(token);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    fn limits() -> SeatLimits {
        SeatLimits {
            hard_cap: 2,
            spectator_cap: 1,
            reconnect_grace: 10 * SECOND,
            idle_grace: 30 * SECOND,
            matches: true,
        }
    }

    fn at(seconds: u64) -> Duration {
        Duration::from_secs(seconds)
    }

    fn token(byte: u8) -> ResumeToken {
        ResumeToken([byte; 16])
    }

    #[test]
    fn players_and_spectators_have_their_own_caps_and_held_seats_count() {
        let mut core = RoomCore::new(limits(), at(0));
        let first = core.admit(Role::Player, at(0)).unwrap();
        core.set_token(first, token(1));
        core.admit(Role::Player, at(0)).unwrap();
        assert_eq!(core.admit(Role::Player, at(0)), Err(AdmitError::Full));
        core.admit(Role::Spectator, at(0)).unwrap();
        assert_eq!(
            core.admit(Role::Spectator, at(0)),
            Err(AdmitError::SpectatorsFull)
        );
        // A held seat still counts against the cap.
        assert_eq!(
            core.dropped(first, at(1)),
            Dropped::Held {
                until: at(1) + 10 * SECOND
            }
        );
        assert_eq!(core.admit(Role::Player, at(2)), Err(AdmitError::Full));
        assert_eq!(
            core.counts(),
            SeatCounts {
                connected_players: 1,
                held_players: 1,
                spectators: 1
            }
        );
        // Once its grace runs out, the seat is free.
        let outcome = core.tick(at(11));
        assert_eq!(outcome.expired, vec![first]);
        assert!(core.admit(Role::Player, at(11)).is_ok());
    }

    #[test]
    fn a_resume_within_the_grace_keeps_the_seat_and_the_token_is_single_use() {
        let mut core = RoomCore::new(limits(), at(0));
        let player = core.admit(Role::Player, at(0)).unwrap();
        core.set_token(player, token(1));
        core.dropped(player, at(5));
        let resumed = core.resume(&token(1), at(14)).unwrap();
        assert_eq!(
            resumed,
            Resumed {
                player,
                took_over: false
            }
        );
        assert!(core.is_connected(player));
        // The old token is spent; a fresh one is set by the caller.
        assert_eq!(core.resume(&token(1), at(14)), Err(ResumeError::Refused));
        core.set_token(player, token(2));
        assert!(core.tick(at(100)).expired.is_empty(), "connected again");
    }

    #[test]
    fn a_resume_after_the_grace_is_expired_and_the_seat_is_gone() {
        let mut core = RoomCore::new(limits(), at(0));
        let player = core.admit(Role::Player, at(0)).unwrap();
        core.set_token(player, token(1));
        core.dropped(player, at(0));
        assert_eq!(core.tick(at(10)).expired, vec![player]);
        assert_eq!(core.resume(&token(1), at(11)), Err(ResumeError::Expired));
        assert!(!core.is_seated(player));
        assert_eq!(core.resume(&token(9), at(11)), Err(ResumeError::Refused));
    }

    #[test]
    fn a_resume_exactly_at_the_end_of_the_grace_before_the_tick_is_expired() {
        let mut core = RoomCore::new(limits(), at(0));
        let player = core.admit(Role::Player, at(0)).unwrap();
        core.set_token(player, token(1));
        core.dropped(player, at(0));
        assert_eq!(core.resume(&token(1), at(10)), Err(ResumeError::Expired));
        assert!(!core.is_seated(player), "the seat is freed at once");
    }

    #[test]
    fn a_resume_while_the_old_connection_lives_takes_it_over() {
        let mut core = RoomCore::new(limits(), at(0));
        let player = core.admit(Role::Player, at(0)).unwrap();
        core.set_token(player, token(1));
        assert_eq!(
            core.resume(&token(1), at(3)),
            Ok(Resumed {
                player,
                took_over: true
            })
        );
    }

    #[test]
    fn without_a_grace_a_drop_is_a_leave() {
        let mut core = RoomCore::new(
            SeatLimits {
                reconnect_grace: Duration::ZERO,
                ..limits()
            },
            at(0),
        );
        let player = core.admit(Role::Player, at(0)).unwrap();
        assert!(!core.reconnects());
        assert_eq!(core.dropped(player, at(1)), Dropped::Gone);
        assert_eq!(core.counts().players(), 0);
        // Spectators never hold a seat either.
        let mut core = RoomCore::new(limits(), at(0));
        let watcher = core.admit(Role::Spectator, at(0)).unwrap();
        core.set_token(watcher, token(3));
        assert_eq!(core.dropped(watcher, at(1)), Dropped::Gone);
    }

    #[test]
    fn an_empty_room_is_reaped_after_the_idle_grace_and_a_held_seat_is_not_empty() {
        let mut core = RoomCore::new(limits(), at(0));
        assert_eq!(core.tick(at(29)).end, None);
        let player = core.admit(Role::Player, at(29)).unwrap();
        core.set_token(player, token(1));
        assert_eq!(core.state(), RoomState::Active);
        core.dropped(player, at(30));
        // Held: not empty, even long after the idle grace would have passed.
        assert_eq!(core.tick(at(39)).end, None);
        let outcome = core.tick(at(40));
        assert_eq!(outcome.expired, vec![player]);
        assert_eq!(core.state(), RoomState::Warm);
        assert_eq!(core.tick(at(69)).end, None);
        assert_eq!(core.tick(at(70)).end, Some(EndReason::Idle));
        assert_eq!(core.state(), RoomState::Terminated);
    }

    #[test]
    fn a_countdown_phase_is_tracked_and_a_completed_game_ends_the_room() {
        let mut core = RoomCore::new(limits(), at(0));
        core.admit(Role::Player, at(0)).unwrap();
        for phase in [Phase::Waiting, Phase::Starting, Phase::InProgress] {
            core.observe_phase(phase);
            assert_eq!(core.tick(at(1)).end, None);
            assert_eq!(core.phase(), phase);
        }
        core.observe_phase(Phase::Completed);
        assert_eq!(core.tick(at(2)).end, Some(EndReason::Completed));
    }

    #[test]
    fn a_draining_match_runs_to_the_match_deadline_and_a_lobby_closes_at_the_drain_deadline() {
        let drain = at(60);
        let match_drain = at(20 * 60);
        let mut playing = RoomCore::new(limits(), at(0));
        playing.admit(Role::Player, at(0)).unwrap();
        playing.observe_phase(Phase::InProgress);
        playing.drain(drain, match_drain);
        assert_eq!(
            playing.admit(Role::Player, at(1)),
            Err(AdmitError::Draining)
        );
        assert_eq!(playing.tick(at(61)).end, None, "the match goes on");
        assert_eq!(playing.tick(at(20 * 60 - 1)).end, None);
        assert_eq!(
            playing.tick(at(20 * 60)).end,
            Some(EndReason::DeadlinePassed)
        );

        let mut lobby = RoomCore::new(limits(), at(0));
        lobby.admit(Role::Player, at(0)).unwrap();
        lobby.observe_phase(Phase::Waiting);
        lobby.drain(drain, match_drain);
        assert_eq!(lobby.tick(at(59)).end, None);
        assert_eq!(lobby.tick(at(60)).end, Some(EndReason::DeadlinePassed));

        // A match that finishes before its deadline ends the room when the game completes.
        let mut finishing = RoomCore::new(limits(), at(0));
        finishing.admit(Role::Player, at(0)).unwrap();
        finishing.observe_phase(Phase::InProgress);
        finishing.drain(drain, match_drain);
        finishing.observe_phase(Phase::Completed);
        assert_eq!(finishing.tick(at(300)).end, Some(EndReason::Completed));
    }

    #[test]
    fn a_draining_match_whose_players_all_dropped_ends_without_waiting_for_its_deadline() {
        let mut core = RoomCore::new(limits(), at(0));
        let (ann, bob) = (
            core.admit(Role::Player, at(0)).unwrap(),
            core.admit(Role::Player, at(0)).unwrap(),
        );
        core.set_token(ann, token(1));
        core.set_token(bob, token(2));
        core.observe_phase(Phase::InProgress);
        core.drain(at(60), at(1200));
        assert!(matches!(core.dropped(ann, at(1)), Dropped::Held { .. }));
        assert_eq!(core.tick(at(1)).end, None, "bob still plays");
        assert!(matches!(core.dropped(bob, at(2)), Dropped::Held { .. }));
        assert_eq!(core.tick(at(2)).end, Some(EndReason::Drained));
        // Not draining, held seats keep the room for the grace as before.
        let mut open = RoomCore::new(limits(), at(0));
        let carl = open.admit(Role::Player, at(0)).unwrap();
        open.set_token(carl, token(3));
        open.observe_phase(Phase::InProgress);
        assert!(matches!(open.dropped(carl, at(1)), Dropped::Held { .. }));
        assert_eq!(open.tick(at(2)).end, None);
    }

    #[test]
    fn io_rooms_close_at_the_drain_deadline_or_when_empty_and_evictions_only_shorten_it() {
        let mut core = RoomCore::new(
            SeatLimits {
                matches: false,
                ..limits()
            },
            at(0),
        );
        let player = core.admit(Role::Player, at(0)).unwrap();
        core.drain(at(60), at(1200));
        assert_eq!(core.drain_deadline(), Some(at(60)));
        core.evict(at(5));
        core.drain(at(100), at(2000));
        assert_eq!(core.drain_deadline(), Some(at(5)), "never later again");
        assert_eq!(core.tick(at(4)).end, None);
        core.leave(player, at(4));
        assert_eq!(core.tick(at(4)).end, Some(EndReason::Drained));
    }
}
