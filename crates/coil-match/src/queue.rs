//! The ranked queue's matching function: which waiting tickets play together, as a pure
//! function of the tickets, the matches short of players, the rules and `now_ms`.
//!
//! Owns the rules of ranked matching, in order:
//! 1. **Bad input is reported, not matched**: a ticket with a duplicated id, an account that is
//!    in two tickets, a party larger than a team (or empty), a mode the rules do not know or a
//!    non-finite rating is listed in [`QueueDecision::rejected`] and takes part in nothing; so is
//!    a malformed [`Backfill`].
//! 2. **Backfills first**: matches that lost players (or restarts short of players) take tickets
//!    before any new match is formed, oldest request first.
//! 3. **Region first**: a ticket is matched in its preferred region; once it has waited
//!    `neighbour_after_ms` it may also be matched in the regions of its neighbour list, nearest
//!    first (round k admits the first k neighbours).
//! 4. **Exact teams, parties never split**: every team of a new match has exactly the mode's
//!    team size, and all members of a ticket play on one team.
//! 5. **Fair teams**: the gap between the strongest and weakest team's average rating, and the
//!    spread between the strongest and weakest ticket, are within the allowance of *every*
//!    ticket of the match. Each ticket's allowance starts narrow and widens with its own wait up
//!    to a cap ([`Widening`]). Taking the minimum over the tickets, rather than the allowance of
//!    the longest waiter, means a fresh ticket is never handed a lopsided match because somebody
//!    else waited: an outlier waits until tickets near it have widened too, or for the cap.
//!
//! The algorithm, per (mode, region) pool: tickets are sorted by skill (the party's average
//! [`Rating::matchmaking_skill`]); anchors are taken oldest first. From an anchor the pool is
//! walked outwards in skill order, nearest first, adding tickets that still fit the seats left
//! and the spread allowance, until the match is full or the next ticket is beyond the anchor's
//! allowance (at most `scan_limit` tickets are looked at). The chosen parties are then split
//! into teams greedily: largest party first (heavier first among equals), each onto the team
//! with the lowest rating total that still has room for it (first fit decreasing when that
//! greedy cannot pack them), followed by swaps of equal-size parties between the strongest and
//! weakest team while a swap narrows the gap. A match whose gap exceeds the allowance is not
//! formed; its anchor waits for the next call. Cost: sorting, O(n log n), plus a bounded walk per
//! anchor; no step compares all tickets with all others.
//!
//! Deterministic: every order is a total order over (skill, queued_at, ticket id) or (queued_at,
//! ticket id) and maps are `BTreeMap`s, so the same tickets in any order give the same answer.
//!
//! Must not: read the clock, do IO, or hold state between calls: the ticket store (Redis, later)
//! passes a snapshot, applies the decision atomically and re-runs on a lost race.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::ids::{GameMode, Region, RoomId};
use crate::rating::Rating;

/// A ticket's id, given by the ticket store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TicketId(pub u64);

/// An account as the queue knows it: the store's 128-bit account id (32 hex digits) as a number,
/// cheap to hash and compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AccountKey(pub u128);

impl AccountKey {
    /// Parses the store's spelling of an account id: exactly 32 lowercase hex digits.
    pub fn from_hex(text: &str) -> Option<AccountKey> {
        let well_formed = text.len() == 32
            && text
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !well_formed {
            return None;
        }
        u128::from_str_radix(text, 16).ok().map(AccountKey)
    }

    /// The store's spelling: 32 lowercase hex digits.
    pub fn to_hex(self) -> String {
        format!("{:032x}", self.0)
    }
}

/// One player of a ticket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TicketMember {
    pub account: AccountKey,
    pub rating: Rating,
}

/// One account, or one party, waiting for a ranked match.
#[derive(Debug, Clone, PartialEq)]
pub struct Ticket {
    pub id: TicketId,
    /// Everyone who queued together; they always play on one team.
    pub members: Vec<TicketMember>,
    pub mode: GameMode,
    pub region: Region,
    pub queued_at_ms: u64,
}

/// A running match (or a restart) short of players.
#[derive(Debug, Clone, PartialEq)]
pub struct Backfill {
    pub room_id: RoomId,
    pub region: Region,
    pub mode: GameMode,
    /// One entry per team of the mode, in the match's team order.
    pub teams: Vec<BackfillTeam>,
    /// When the room asked; older requests are served first.
    pub requested_at_ms: u64,
}

/// One team of a [`Backfill`]: how many seats it lacks and the summed skill of those present.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BackfillTeam {
    pub open_seats: u32,
    pub rating_total: f64,
}

/// The size of a mode's matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TeamShape {
    pub players_per_team: u32,
    pub teams: u32,
}

impl TeamShape {
    /// Breach: four against four.
    pub const BREACH: TeamShape = TeamShape {
        players_per_team: 4,
        teams: 2,
    };

    fn players(self) -> u32 {
        self.players_per_team * self.teams
    }
}

/// An allowance that starts at `at_start`, grows by `per_second` of a ticket's wait, and stops at
/// `cap` (rating points, the units of [`Rating::mean`]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Widening {
    pub at_start: f64,
    pub per_second: f64,
    pub cap: f64,
}

impl Widening {
    /// The allowance of a ticket that has waited `waited_ms`.
    pub fn after(&self, waited_ms: u64) -> f64 {
        (self.at_start + self.per_second * waited_ms as f64 / 1_000.0).min(self.cap)
    }

    fn is_valid(&self) -> bool {
        self.at_start.is_finite()
            && self.per_second.is_finite()
            && self.cap.is_finite()
            && self.at_start >= 0.0
            && self.per_second >= 0.0
            && self.cap >= self.at_start
    }
}

/// The rules of ranked matching.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueRules {
    /// The modes this queue matches and their team shapes; tickets of another mode are rejected.
    pub modes: BTreeMap<GameMode, TeamShape>,
    /// Allowed gap between the strongest and the weakest team's average skill.
    pub team_gap: Widening,
    /// Allowed spread between the strongest and the weakest ticket's skill in one match.
    pub skill_spread: Widening,
    /// A ticket that has waited this long may be matched in its region's neighbours.
    pub neighbour_after_ms: u64,
    /// For each region, the others a ticket may fall back to, nearest first.
    pub neighbours: BTreeMap<Region, Vec<Region>>,
    /// Tickets looked at per anchor (or per backfill seat) before giving up on it for this call;
    /// bounds the worst case when a pool is full of parties that do not fit.
    pub scan_limit: usize,
}

impl QueueRules {
    /// Breach 4v4 with allowances in rating points (a new account is 25 ± 8.3): teams within
    /// 1 point on average at first, widening by 0.1 a second up to 5; tickets within 5 points,
    /// widening by 0.25 a second up to 20; neighbours after 30 s.
    pub fn breach(neighbours: BTreeMap<Region, Vec<Region>>) -> QueueRules {
        let mut modes = BTreeMap::new();
        if let Ok(mode) = GameMode::parse("breach") {
            modes.insert(mode, TeamShape::BREACH);
        }
        QueueRules {
            modes,
            team_gap: Widening {
                at_start: 1.0,
                per_second: 0.1,
                cap: 5.0,
            },
            skill_spread: Widening {
                at_start: 5.0,
                per_second: 0.25,
                cap: 20.0,
            },
            neighbour_after_ms: 30_000,
            neighbours,
            scan_limit: 256,
        }
    }

    /// Checks the rules a caller assembled (from configuration) before they are used.
    pub fn validate(&self) -> Result<(), QueueRulesError> {
        for (mode, shape) in &self.modes {
            if shape.players_per_team == 0 || shape.teams < 2 || shape.players() > 64 {
                return Err(QueueRulesError::Shape { mode: mode.clone() });
            }
        }
        if !self.team_gap.is_valid() || !self.skill_spread.is_valid() {
            return Err(QueueRulesError::Widening);
        }
        if self.scan_limit == 0 {
            return Err(QueueRulesError::ScanLimit);
        }
        Ok(())
    }
}

/// Rules that cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueueRulesError {
    #[error("mode {mode}: a match needs at least 2 teams of at least 1 player, at most 64 players")]
    Shape { mode: GameMode },
    #[error("an allowance must be finite, start at >= 0, grow at >= 0 and cap at >= its start")]
    Widening,
    #[error("scan_limit must be at least 1")]
    ScanLimit,
}

/// Why a ticket or a backfill was not considered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum InputProblem {
    /// Another ticket (or backfill) in the input has the same id; all of them are rejected.
    DuplicateId,
    /// One of its accounts is also in another ticket; all such tickets are rejected.
    AccountInTwoTickets,
    /// No members, or more than a team holds.
    PartySize,
    /// The rules do not match this mode.
    UnknownMode,
    /// A member's rating is not finite or has a negative uncertainty (backfill: a team total).
    InvalidRating,
    /// A backfill whose team list does not fit its mode's shape, or with no open seat.
    BackfillShape,
}

/// A ticket left out of matching, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RejectedTicket {
    pub ticket: TicketId,
    pub problem: InputProblem,
}

/// A backfill left out of matching, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedBackfill {
    pub room_id: RoomId,
    pub problem: InputProblem,
}

/// One team of a new match.
#[derive(Debug, Clone, PartialEq)]
pub struct FormedTeam {
    /// Oldest ticket first.
    pub tickets: Vec<TicketId>,
    /// Every member of those tickets, ticket by ticket.
    pub accounts: Vec<AccountKey>,
    /// Σ of the members' matchmaking skill.
    pub rating_total: f64,
}

/// A new match.
#[derive(Debug, Clone, PartialEq)]
pub struct FormedMatch {
    pub mode: GameMode,
    /// Where it is played: the preferred region of some of its tickets, a neighbour of the others'.
    pub region: Region,
    pub teams: Vec<FormedTeam>,
    /// Strongest minus weakest team's average skill.
    pub team_gap: f64,
    /// Strongest minus weakest ticket's skill.
    pub skill_spread: f64,
}

/// A ticket that goes into a backfilled match.
#[derive(Debug, Clone, PartialEq)]
pub struct BackfillAssignment {
    pub room_id: RoomId,
    /// Index into the backfill's `teams`.
    pub team: usize,
    pub ticket: TicketId,
    pub accounts: Vec<AccountKey>,
}

/// A ticket that keeps waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitingTicket {
    pub ticket: TicketId,
    /// 0-based place among the waiting tickets of its mode and preferred region, oldest first:
    /// a cheap hint for the client's "position in queue".
    pub position: usize,
}

/// What [`form_matches`] decided.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct QueueDecision {
    /// In the order they were formed: modes and regions in name order, anchors oldest first.
    pub matches: Vec<FormedMatch>,
    /// Backfills oldest request first, seats in the order they were filled.
    pub backfills: Vec<BackfillAssignment>,
    /// Oldest first (queued_at, then id).
    pub waiting: Vec<WaitingTicket>,
    /// By ticket id.
    pub rejected: Vec<RejectedTicket>,
    /// By room id.
    pub rejected_backfills: Vec<RejectedBackfill>,
}

/// What the matcher precomputes for one valid ticket.
struct Prepared<'a> {
    ticket: &'a Ticket,
    size: u32,
    skill: f64,
    skill_total: f64,
    gap_allowance: f64,
    spread_allowance: f64,
    may_fall_back: bool,
}

/// The matching rules. Pure: same inputs (in any order), same answer.
pub fn form_matches(
    tickets: &[Ticket],
    backfills: &[Backfill],
    rules: &QueueRules,
    now_ms: u64,
) -> Result<QueueDecision, QueueRulesError> {
    rules.validate()?;
    let mut decision = QueueDecision::default();
    let prepared = prepare_tickets(tickets, rules, now_ms, &mut decision.rejected);
    let backfills = valid_backfills(backfills, rules, &mut decision.rejected_backfills);
    let mut matcher = Matcher {
        rules,
        prepared: &prepared,
        taken: vec![false; prepared.len()],
        home: BTreeMap::new(),
        foreign: BTreeMap::new(),
    };
    matcher.build_pools();
    for backfill in backfills {
        matcher.fill_backfill(backfill, &mut decision.backfills);
    }
    matcher.form_new_matches(&mut decision.matches);

    let mut waiting: Vec<usize> = (0..prepared.len())
        .filter(|&index| !matcher.taken[index])
        .collect();
    waiting.sort_by_key(|&index| priority(&prepared[index]));
    let mut positions: HashMap<(&GameMode, &Region), usize> = HashMap::new();
    for index in waiting {
        let ticket = prepared[index].ticket;
        let position = positions.entry((&ticket.mode, &ticket.region)).or_insert(0);
        decision.waiting.push(WaitingTicket {
            ticket: ticket.id,
            position: *position,
        });
        *position += 1;
    }
    Ok(decision)
}

fn priority(ticket: &Prepared<'_>) -> (u64, TicketId) {
    (ticket.ticket.queued_at_ms, ticket.ticket.id)
}

fn by_skill(a: &Prepared<'_>, b: &Prepared<'_>) -> std::cmp::Ordering {
    a.skill
        .total_cmp(&b.skill)
        .then_with(|| priority(a).cmp(&priority(b)))
}

fn prepare_tickets<'a>(
    tickets: &'a [Ticket],
    rules: &QueueRules,
    now_ms: u64,
    rejected: &mut Vec<RejectedTicket>,
) -> Vec<Prepared<'a>> {
    let mut id_count: HashMap<TicketId, u32> = HashMap::with_capacity(tickets.len());
    let mut account_count: HashMap<AccountKey, u32> = HashMap::with_capacity(tickets.len() * 2);
    for ticket in tickets {
        *id_count.entry(ticket.id).or_insert(0) += 1;
        // An account listed twice in one ticket is as ambiguous as one listed in two.
        for member in &ticket.members {
            *account_count.entry(member.account).or_insert(0) += 1;
        }
    }
    let mut prepared = Vec::with_capacity(tickets.len());
    for ticket in tickets {
        let problem = problem_of(ticket, rules, &id_count, &account_count);
        if let Some(problem) = problem {
            rejected.push(RejectedTicket {
                ticket: ticket.id,
                problem,
            });
            continue;
        }
        let size = ticket.members.len() as u32;
        let skill_total: f64 = ticket
            .members
            .iter()
            .map(|member| member.rating.matchmaking_skill())
            .sum();
        let waited_ms = now_ms.saturating_sub(ticket.queued_at_ms);
        prepared.push(Prepared {
            ticket,
            size,
            skill: skill_total / f64::from(size),
            skill_total,
            gap_allowance: rules.team_gap.after(waited_ms),
            spread_allowance: rules.skill_spread.after(waited_ms),
            may_fall_back: waited_ms >= rules.neighbour_after_ms,
        });
    }
    rejected.sort_by_key(|rejection| rejection.ticket);
    rejected.dedup();
    prepared
}

fn problem_of(
    ticket: &Ticket,
    rules: &QueueRules,
    id_count: &HashMap<TicketId, u32>,
    account_count: &HashMap<AccountKey, u32>,
) -> Option<InputProblem> {
    if id_count.get(&ticket.id).copied().unwrap_or(0) > 1 {
        return Some(InputProblem::DuplicateId);
    }
    let Some(shape) = rules.modes.get(&ticket.mode) else {
        return Some(InputProblem::UnknownMode);
    };
    if ticket.members.is_empty() || ticket.members.len() > shape.players_per_team as usize {
        return Some(InputProblem::PartySize);
    }
    if ticket
        .members
        .iter()
        .any(|member| account_count.get(&member.account).copied().unwrap_or(0) > 1)
    {
        return Some(InputProblem::AccountInTwoTickets);
    }
    if ticket
        .members
        .iter()
        .any(|member| !member.rating.is_valid())
    {
        return Some(InputProblem::InvalidRating);
    }
    None
}

fn valid_backfills<'a>(
    backfills: &'a [Backfill],
    rules: &QueueRules,
    rejected: &mut Vec<RejectedBackfill>,
) -> Vec<&'a Backfill> {
    let mut id_count: HashMap<&RoomId, u32> = HashMap::new();
    for backfill in backfills {
        *id_count.entry(&backfill.room_id).or_insert(0) += 1;
    }
    let mut valid = Vec::new();
    for backfill in backfills {
        let problem = if id_count.get(&backfill.room_id).copied().unwrap_or(0) > 1 {
            Some(InputProblem::DuplicateId)
        } else if let Some(shape) = rules.modes.get(&backfill.mode) {
            if backfill.teams.len() != shape.teams as usize
                || backfill
                    .teams
                    .iter()
                    .any(|team| team.open_seats > shape.players_per_team)
                || backfill.teams.iter().all(|team| team.open_seats == 0)
            {
                Some(InputProblem::BackfillShape)
            } else if backfill
                .teams
                .iter()
                .any(|team| !team.rating_total.is_finite())
            {
                Some(InputProblem::InvalidRating)
            } else {
                None
            }
        } else {
            Some(InputProblem::UnknownMode)
        };
        match problem {
            Some(problem) => rejected.push(RejectedBackfill {
                room_id: backfill.room_id.clone(),
                problem,
            }),
            None => valid.push(backfill),
        }
    }
    rejected.sort_by(|a, b| a.room_id.cmp(&b.room_id));
    rejected.dedup();
    valid.sort_by(|a, b| (a.requested_at_ms, &a.room_id).cmp(&(b.requested_at_ms, &b.room_id)));
    valid
}

type PoolKey<'a> = (&'a GameMode, &'a Region);

struct Matcher<'a> {
    rules: &'a QueueRules,
    prepared: &'a [Prepared<'a>],
    taken: Vec<bool>,
    /// Tickets by (mode, preferred region), sorted by skill.
    home: BTreeMap<PoolKey<'a>, Vec<usize>>,
    /// Tickets that may fall back, by (mode, neighbour region): (ticket, rank of that neighbour
    /// in the ticket's list), sorted by skill.
    foreign: BTreeMap<PoolKey<'a>, Vec<(usize, usize)>>,
}

impl<'a> Matcher<'a> {
    fn build_pools(&mut self) {
        let prepared = self.prepared;
        for (index, ticket) in prepared.iter().enumerate() {
            let queued: &'a Ticket = ticket.ticket;
            let (mode, home) = (&queued.mode, &queued.region);
            self.home.entry((mode, home)).or_default().push(index);
            if !ticket.may_fall_back {
                continue;
            }
            let mut seen: HashSet<&Region> = HashSet::new();
            seen.insert(home);
            for region in self.rules.neighbours.get(home).into_iter().flatten() {
                if seen.insert(region) {
                    let rank = seen.len() - 2;
                    self.foreign
                        .entry((mode, region))
                        .or_default()
                        .push((index, rank));
                }
            }
        }
        for pool in self.home.values_mut() {
            pool.sort_by(|&a, &b| by_skill(&prepared[a], &prepared[b]));
        }
        for pool in self.foreign.values_mut() {
            pool.sort_by(|&(a, _), &(b, _)| by_skill(&prepared[a], &prepared[b]));
        }
    }

    /// The tickets that may be matched in `key`'s region in round `round` (0: home only; k:
    /// plus those for whom the region is among their first k neighbours), sorted by skill.
    fn pool(&self, key: PoolKey<'a>, round: usize) -> Vec<usize> {
        let home = self.home.get(&key).map(Vec::as_slice).unwrap_or(&[]);
        let foreign = self.foreign.get(&key).map(Vec::as_slice).unwrap_or(&[]);
        let mut merged = Vec::with_capacity(home.len() + foreign.len());
        let mut foreign = foreign
            .iter()
            .filter(|&&(index, rank)| rank < round && !self.taken[index])
            .map(|&(index, _)| index)
            .peekable();
        for &index in home.iter().filter(|&&index| !self.taken[index]) {
            while let Some(&other) = foreign.peek() {
                if by_skill(&self.prepared[other], &self.prepared[index]).is_lt() {
                    merged.push(other);
                    foreign.next();
                } else {
                    break;
                }
            }
            merged.push(index);
        }
        merged.extend(foreign);
        merged
    }

    fn form_new_matches(&mut self, matches: &mut Vec<FormedMatch>) {
        let deepest_neighbour_list = self
            .foreign
            .values()
            .flatten()
            .map(|&(_, rank)| rank + 1)
            .max()
            .unwrap_or(0);
        let mut keys: Vec<PoolKey<'a>> = self
            .home
            .keys()
            .chain(self.foreign.keys())
            .copied()
            .collect();
        keys.sort();
        keys.dedup();
        for round in 0..=deepest_neighbour_list {
            for &key in &keys {
                let admits_someone_new = round == 0
                    || self.foreign.get(&key).is_some_and(|pool| {
                        pool.iter()
                            .any(|&(index, rank)| rank + 1 == round && !self.taken[index])
                    });
                if admits_someone_new {
                    self.form_in_pool(key, round, matches);
                }
            }
        }
    }

    fn form_in_pool(&mut self, key: PoolKey<'a>, round: usize, matches: &mut Vec<FormedMatch>) {
        let Some(&shape) = self.rules.modes.get(key.0) else {
            return;
        };
        let pool = self.pool(key, round);
        let mut anchors: Vec<usize> = (0..pool.len()).collect();
        anchors.sort_by_key(|&position| priority(&self.prepared[pool[position]]));
        for anchor in anchors {
            if self.taken[pool[anchor]] {
                continue;
            }
            let Some(chosen) = self.choose_around(&pool, anchor, shape) else {
                continue;
            };
            let Some(formed) = self.split_into_teams(&chosen, shape, key) else {
                continue;
            };
            for &index in &chosen {
                self.taken[index] = true;
            }
            matches.push(formed);
        }
    }

    /// Walks the pool outwards from the anchor, nearest skill first, collecting tickets until
    /// they fill a match exactly. `None` when the allowance runs out first.
    fn choose_around(&self, pool: &[usize], anchor: usize, shape: TeamShape) -> Option<Vec<usize>> {
        let seats = shape.players();
        let first = &self.prepared[pool[anchor]];
        let mut chosen = vec![pool[anchor]];
        let mut filled = first.size;
        let (mut lowest, mut highest) = (first.skill, first.skill);
        let mut spread_allowance = first.spread_allowance;
        let mut below = anchor.checked_sub(1);
        let mut above = anchor + 1;
        let mut looked_at = 0;
        while filled < seats && looked_at < self.rules.scan_limit {
            while below.is_some_and(|position| self.taken[pool[position]]) {
                below = below.and_then(|position| position.checked_sub(1));
            }
            while above < pool.len() && self.taken[pool[above]] {
                above += 1;
            }
            let distance =
                |position: usize| (self.prepared[pool[position]].skill - first.skill).abs();
            let next = match (below, above < pool.len()) {
                (Some(low), true) => {
                    if distance(low) <= distance(above) {
                        below = low.checked_sub(1);
                        low
                    } else {
                        above += 1;
                        above - 1
                    }
                }
                (Some(low), false) => {
                    below = low.checked_sub(1);
                    low
                }
                (None, true) => {
                    above += 1;
                    above - 1
                }
                (None, false) => break,
            };
            // Everything further out is at least this far from the anchor: the spread would be
            // too.
            if distance(next) > spread_allowance {
                break;
            }
            looked_at += 1;
            let candidate = &self.prepared[pool[next]];
            if filled + candidate.size > seats {
                continue;
            }
            let new_lowest = lowest.min(candidate.skill);
            let new_highest = highest.max(candidate.skill);
            let allowance = spread_allowance.min(candidate.spread_allowance);
            if new_highest - new_lowest > allowance {
                continue;
            }
            chosen.push(pool[next]);
            filled += candidate.size;
            (lowest, highest, spread_allowance) = (new_lowest, new_highest, allowance);
        }
        (filled == seats).then_some(chosen)
    }

    /// Splits the chosen tickets into teams of exact size (see the module doc), or `None` when
    /// they cannot be packed or the teams are further apart than some ticket allows.
    fn split_into_teams(
        &self,
        chosen: &[usize],
        shape: TeamShape,
        key: PoolKey<'a>,
    ) -> Option<FormedMatch> {
        let prepared = self.prepared;
        let mut order = chosen.to_vec();
        order.sort_by(|&a, &b| {
            prepared[b]
                .size
                .cmp(&prepared[a].size)
                .then_with(|| prepared[b].skill_total.total_cmp(&prepared[a].skill_total))
                .then_with(|| priority(&prepared[a]).cmp(&priority(&prepared[b])))
        });
        let teams =
            pack(&order, prepared, shape, true).or_else(|| pack(&order, prepared, shape, false))?;
        let mut teams = balance_by_swaps(teams, prepared);
        let averages: Vec<f64> = teams
            .iter()
            .map(|team| team_total(team, prepared) / f64::from(shape.players_per_team))
            .collect();
        let team_gap = spread_of(&averages);
        let gap_allowance = chosen
            .iter()
            .map(|&index| prepared[index].gap_allowance)
            .fold(f64::INFINITY, f64::min);
        if team_gap > gap_allowance {
            return None;
        }
        let skills: Vec<f64> = chosen.iter().map(|&index| prepared[index].skill).collect();
        let formed_teams = teams
            .iter_mut()
            .map(|team| {
                team.sort_by_key(|&index| priority(&prepared[index]));
                FormedTeam {
                    tickets: team
                        .iter()
                        .map(|&index| prepared[index].ticket.id)
                        .collect(),
                    accounts: team
                        .iter()
                        .flat_map(|&index| prepared[index].ticket.members.iter())
                        .map(|member| member.account)
                        .collect(),
                    rating_total: team_total(team, prepared),
                }
            })
            .collect();
        Some(FormedMatch {
            mode: key.0.clone(),
            region: key.1.clone(),
            teams: formed_teams,
            team_gap,
            skill_spread: spread_of(&skills),
        })
    }

    fn fill_backfill(&mut self, backfill: &Backfill, assignments: &mut Vec<BackfillAssignment>) {
        let Some(&shape) = self.rules.modes.get(&backfill.mode) else {
            return;
        };
        let key: PoolKey<'_> = (&backfill.mode, &backfill.region);
        let mut teams: Vec<SeatState> = backfill
            .teams
            .iter()
            .map(|team| SeatState {
                open: team.open_seats,
                present: shape.players_per_team - team.open_seats,
                total: team.rating_total,
            })
            .collect();
        // Home tickets first, then any that may fall back to this region.
        let home: Vec<usize> = self.home.get(&key).cloned().unwrap_or_default();
        let foreign: Vec<usize> = self
            .foreign
            .get(&key)
            .map(|pool| pool.iter().map(|&(index, _)| index).collect())
            .unwrap_or_default();
        loop {
            let mut needy: Vec<usize> = (0..teams.len())
                .filter(|&team| teams[team].open > 0)
                .collect();
            // The weakest team (by average of those present) is filled first.
            needy.sort_by(|&a, &b| {
                teams[a]
                    .average_or(f64::NEG_INFINITY)
                    .total_cmp(&teams[b].average_or(f64::NEG_INFINITY))
                    .then(a.cmp(&b))
            });
            let found = needy.iter().find_map(|&team| {
                [&home, &foreign]
                    .into_iter()
                    .find_map(|pool| self.backfill_candidate(pool, &teams, team))
                    .map(|index| (team, index))
            });
            let Some((team, index)) = found else {
                break;
            };
            let ticket = &self.prepared[index];
            self.taken[index] = true;
            teams[team].open -= ticket.size;
            teams[team].present += ticket.size;
            teams[team].total += ticket.skill_total;
            assignments.push(BackfillAssignment {
                room_id: backfill.room_id.clone(),
                team,
                ticket: ticket.ticket.id,
                accounts: ticket
                    .ticket
                    .members
                    .iter()
                    .map(|member| member.account)
                    .collect(),
            });
        }
    }

    /// The ticket of `pool` (sorted by skill) nearest to the skill that would bring `team` to the
    /// other teams' average, among those that fit its open seats and keep the match within their
    /// allowances.
    fn backfill_candidate(
        &self,
        pool: &[usize],
        teams: &[SeatState],
        team: usize,
    ) -> Option<usize> {
        let present: u32 = teams.iter().map(|state| state.present).sum();
        let match_average = (present > 0)
            .then(|| teams.iter().map(|state| state.total).sum::<f64>() / f64::from(present));
        let others: Vec<f64> = teams
            .iter()
            .enumerate()
            .filter(|&(other, state)| other != team && state.present > 0)
            .map(|(_, state)| state.total / f64::from(state.present))
            .collect();
        let state = teams[team];
        let ideal = if others.is_empty() {
            match_average.unwrap_or(0.0)
        } else {
            let target = others.iter().sum::<f64>() / others.len() as f64;
            (target * f64::from(state.present + state.open) - state.total) / f64::from(state.open)
        };
        let gap_before = spread_of(&averages_of(teams));
        let start = pool.partition_point(|&index| self.prepared[index].skill < ideal);
        let mut below = start.checked_sub(1);
        let mut above = start;
        let mut looked_at = 0;
        while looked_at < self.rules.scan_limit {
            let distance = |position: usize| (self.prepared[pool[position]].skill - ideal).abs();
            let next = match (below, above < pool.len()) {
                (Some(low), true) if distance(low) <= distance(above) => {
                    below = low.checked_sub(1);
                    low
                }
                (_, true) => {
                    above += 1;
                    above - 1
                }
                (Some(low), false) => {
                    below = low.checked_sub(1);
                    low
                }
                (None, false) => return None,
            };
            let index = pool[next];
            if self.taken[index] {
                continue;
            }
            looked_at += 1;
            let candidate = &self.prepared[index];
            if candidate.size > state.open {
                continue;
            }
            if let Some(average) = match_average {
                if (candidate.skill - average).abs() > candidate.spread_allowance {
                    continue;
                }
            }
            let mut after = teams.to_vec();
            after[team].present += candidate.size;
            after[team].total += candidate.skill_total;
            let gap_after = spread_of(&averages_of(&after));
            if gap_after <= gap_before.max(candidate.gap_allowance) {
                return Some(index);
            }
        }
        None
    }
}

/// A backfill team while it is being filled.
#[derive(Debug, Clone, Copy)]
struct SeatState {
    open: u32,
    present: u32,
    total: f64,
}

impl SeatState {
    fn average_or(&self, empty: f64) -> f64 {
        if self.present == 0 {
            empty
        } else {
            self.total / f64::from(self.present)
        }
    }
}

/// Average skill of each team that has someone in it.
fn averages_of(teams: &[SeatState]) -> Vec<f64> {
    teams
        .iter()
        .filter(|state| state.present > 0)
        .map(|state| state.total / f64::from(state.present))
        .collect()
}

/// Highest minus lowest (0 for fewer than two values).
fn spread_of(values: &[f64]) -> f64 {
    let highest = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let lowest = values.iter().copied().fold(f64::INFINITY, f64::min);
    if values.len() < 2 {
        0.0
    } else {
        highest - lowest
    }
}

fn team_total(team: &[usize], prepared: &[Prepared<'_>]) -> f64 {
    team.iter().map(|&index| prepared[index].skill_total).sum()
}

/// Places parties (already largest first) onto teams: onto the lightest team with room when
/// `balanced`, else onto the first team with room (first fit decreasing, which packs some sets
/// the balanced greedy cannot, e.g. 3+3 / 2+2+2). `None` when some party fits nowhere.
fn pack(
    order: &[usize],
    prepared: &[Prepared<'_>],
    shape: TeamShape,
    balanced: bool,
) -> Option<Vec<Vec<usize>>> {
    let mut teams: Vec<Vec<usize>> = vec![Vec::new(); shape.teams as usize];
    let mut seats = vec![0u32; teams.len()];
    let mut totals = vec![0.0f64; teams.len()];
    for &index in order {
        let ticket = &prepared[index];
        let fits =
            (0..teams.len()).filter(|&team| seats[team] + ticket.size <= shape.players_per_team);
        let team = if balanced {
            fits.min_by(|&a, &b| totals[a].total_cmp(&totals[b]).then(a.cmp(&b)))
        } else {
            fits.min()
        }?;
        teams[team].push(index);
        seats[team] += ticket.size;
        totals[team] += ticket.skill_total;
    }
    Some(teams)
}

/// Swaps equal-size parties between the strongest and the weakest team while a swap narrows
/// their difference (bounded: each swap strictly shrinks it, and at most 16 are made).
fn balance_by_swaps(mut teams: Vec<Vec<usize>>, prepared: &[Prepared<'_>]) -> Vec<Vec<usize>> {
    for _ in 0..16 {
        let totals: Vec<f64> = teams
            .iter()
            .map(|team| team_total(team, prepared))
            .collect();
        let strongest = (0..teams.len())
            .max_by(|&a, &b| totals[a].total_cmp(&totals[b]).then(b.cmp(&a)))
            .unwrap_or(0);
        let weakest = (0..teams.len())
            .min_by(|&a, &b| totals[a].total_cmp(&totals[b]).then(a.cmp(&b)))
            .unwrap_or(0);
        let difference = totals[strongest] - totals[weakest];
        let mut best: Option<(usize, usize, f64)> = None;
        for (i, &strong) in teams[strongest].iter().enumerate() {
            for (j, &weak) in teams[weakest].iter().enumerate() {
                if prepared[strong].size != prepared[weak].size {
                    continue;
                }
                let moved = prepared[strong].skill_total - prepared[weak].skill_total;
                let after = (difference - 2.0 * moved).abs();
                if after < difference - 1e-9 && best.is_none_or(|(_, _, best)| after < best) {
                    best = Some((i, j, after));
                }
            }
        }
        let Some((i, j, _)) = best else {
            break;
        };
        let strong = teams[strongest][i];
        teams[strongest][i] = teams[weakest][j];
        teams[weakest][j] = strong;
    }
    teams
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn region(name: &str) -> Region {
        Region::parse(name).unwrap()
    }

    fn breach() -> GameMode {
        GameMode::parse("breach").unwrap()
    }

    fn neighbours() -> BTreeMap<Region, Vec<Region>> {
        BTreeMap::from([
            (region("us-east"), vec![region("us-west"), region("eu")]),
            (region("us-west"), vec![region("us-east")]),
            (region("eu"), vec![region("us-east")]),
        ])
    }

    fn rules() -> QueueRules {
        QueueRules::breach(neighbours())
    }

    fn rated(mean: f64) -> Rating {
        Rating {
            mean,
            uncertainty: 3.0,
        }
    }

    /// A ticket whose members have the given skills; account keys are `id * 10 + member`.
    fn ticket(id: u64, skills: &[f64], home: &str, queued_at_ms: u64) -> Ticket {
        Ticket {
            id: TicketId(id),
            members: skills
                .iter()
                .enumerate()
                .map(|(member, &skill)| TicketMember {
                    account: AccountKey(u128::from(id) * 10 + member as u128),
                    rating: rated(skill),
                })
                .collect(),
            mode: breach(),
            region: region(home),
            queued_at_ms,
        }
    }

    fn solos(first_id: u64, skills: &[f64], home: &str, queued_at_ms: u64) -> Vec<Ticket> {
        skills
            .iter()
            .enumerate()
            .map(|(offset, &skill)| ticket(first_id + offset as u64, &[skill], home, queued_at_ms))
            .collect()
    }

    fn decide(tickets: &[Ticket], backfills: &[Backfill], now_ms: u64) -> QueueDecision {
        form_matches(tickets, backfills, &rules(), now_ms).unwrap()
    }

    fn matched_ids(decision: &QueueDecision) -> Vec<TicketId> {
        let mut ids: Vec<TicketId> = decision
            .matches
            .iter()
            .flat_map(|formed| {
                formed
                    .teams
                    .iter()
                    .flat_map(|team| team.tickets.iter().copied())
            })
            .collect();
        ids.sort();
        ids
    }

    #[test]
    fn eight_similar_solos_make_one_match_of_two_even_teams() {
        let tickets = solos(
            1,
            &[20.0, 22.0, 24.0, 26.0, 28.0, 30.0, 32.0, 34.0],
            "us-east",
            0,
        );
        // Spread 14: the tickets have waited long enough (5 + 0.25/s × 40 s = 15).
        let decision = decide(&tickets, &[], 40_000);
        assert_eq!(decision.matches.len(), 1, "{decision:?}");
        let formed = &decision.matches[0];
        assert_eq!(formed.region, region("us-east"));
        assert_eq!(formed.teams.len(), 2);
        for team in &formed.teams {
            assert_eq!(team.accounts.len(), 4);
        }
        // The greedy split: 34→A, 32→B, 30→B, 28→A, 26→A, 24→B, 22→B, 20→A: 108 each.
        assert_eq!(formed.teams[0].rating_total, 108.0);
        assert_eq!(formed.teams[1].rating_total, 108.0);
        assert_eq!(formed.team_gap, 0.0);
        assert_eq!(formed.skill_spread, 14.0);
        assert!(decision.waiting.is_empty() && decision.rejected.is_empty());
    }

    #[test]
    fn parties_play_on_one_team_and_the_teams_come_out_even() {
        let tickets = vec![
            ticket(1, &[30.0, 26.0, 22.0], "us-east", 0),
            ticket(2, &[27.0, 25.0], "us-east", 0),
            ticket(3, &[25.0, 23.0], "us-east", 0),
            ticket(4, &[24.0], "us-east", 0),
        ];
        let decision = decide(&tickets, &[], 0);
        assert_eq!(decision.matches.len(), 1, "{decision:?}");
        let formed = &decision.matches[0];
        let team_of = |id: u64| {
            formed
                .teams
                .iter()
                .position(|team| team.tickets.contains(&TicketId(id)))
                .unwrap()
        };
        // The trio needs the solo; the two duos make the other team.
        assert_eq!(team_of(1), team_of(4));
        assert_eq!(team_of(2), team_of(3));
        assert_eq!(formed.teams[team_of(1)].rating_total, 102.0);
        assert_eq!(formed.teams[team_of(2)].rating_total, 100.0);
        assert_eq!(formed.team_gap, 0.5);
        for team in &formed.teams {
            assert_eq!(team.accounts.len(), 4);
        }
    }

    #[test]
    fn swaps_even_out_what_the_greedy_split_leaves_uneven() {
        // Largest first, onto the lighter team: 70 | 56, then 33 → B, 31 → A, 29 → B, and 21
        // must go to A: 122 | 118. Swapping the 31 and the 29 evens it to 120 | 120.
        let tickets = vec![
            ticket(1, &[40.0, 30.0], "us-east", 0),
            ticket(2, &[36.0, 20.0], "us-east", 0),
            ticket(3, &[33.0], "us-east", 0),
            ticket(4, &[31.0], "us-east", 0),
            ticket(5, &[29.0], "us-east", 0),
            ticket(6, &[21.0], "us-east", 0),
        ];
        let wide = QueueRules {
            skill_spread: Widening {
                at_start: 50.0,
                per_second: 0.0,
                cap: 50.0,
            },
            ..rules()
        };
        let decision = form_matches(&tickets, &[], &wide, 0).unwrap();
        assert_eq!(decision.matches.len(), 1, "{decision:?}");
        let formed = &decision.matches[0];
        let totals: Vec<f64> = formed.teams.iter().map(|team| team.rating_total).collect();
        // Total 240: a perfect split (120 | 120) exists: {40,30}+{29,21} and {36,20}+{33,31}.
        assert_eq!(totals, vec![120.0, 120.0], "{formed:?}");
    }

    #[test]
    fn a_split_the_balanced_greedy_cannot_pack_is_packed_first_fit() {
        let mut rules = rules();
        rules.modes.insert(
            breach(),
            TeamShape {
                players_per_team: 6,
                teams: 2,
            },
        );
        // 3+3 | 2+2+2: the lightest-team greedy puts the trios apart and strands a duo.
        let tickets = vec![
            ticket(1, &[25.0; 3], "us-east", 0),
            ticket(2, &[25.0; 3], "us-east", 0),
            ticket(3, &[25.0; 2], "us-east", 0),
            ticket(4, &[25.0; 2], "us-east", 0),
            ticket(5, &[25.0; 2], "us-east", 0),
        ];
        let decision = form_matches(&tickets, &[], &rules, 0).unwrap();
        assert_eq!(decision.matches.len(), 1, "{decision:?}");
        let teams = &decision.matches[0].teams;
        assert_eq!(teams[0].tickets, vec![TicketId(1), TicketId(2)]);
        assert_eq!(teams[1].tickets.len(), 3);
    }

    #[test]
    fn bad_tickets_are_reported_and_left_out_while_the_rest_match() {
        let mut tickets = solos(1, &[25.0; 8], "us-east", 0);
        tickets.push(ticket(20, &[25.0; 5], "us-east", 0)); // larger than a team
        tickets.push(ticket(21, &[25.0], "us-east", 0));
        tickets.push(ticket(21, &[25.0], "us-east", 0)); // same id twice
        let mut shared_account = ticket(22, &[25.0], "us-east", 0);
        shared_account.members[0].account = tickets[0].members[0].account; // also ticket 1's
        tickets.push(shared_account);
        let mut other_mode = ticket(23, &[25.0], "us-east", 0);
        other_mode.mode = GameMode::arena();
        tickets.push(other_mode);
        let mut not_a_number = ticket(24, &[25.0], "us-east", 0);
        not_a_number.members[0].rating.mean = f64::NAN;
        tickets.push(not_a_number);
        tickets.push(ticket(25, &[], "us-east", 0));
        let decision = decide(&tickets, &[], 0);
        let rejected: Vec<(u64, InputProblem)> = decision
            .rejected
            .iter()
            .map(|rejection| (rejection.ticket.0, rejection.problem))
            .collect();
        assert_eq!(
            rejected,
            vec![
                (1, InputProblem::AccountInTwoTickets),
                (20, InputProblem::PartySize),
                (21, InputProblem::DuplicateId),
                (22, InputProblem::AccountInTwoTickets),
                (23, InputProblem::UnknownMode),
                (24, InputProblem::InvalidRating),
                (25, InputProblem::PartySize),
            ]
        );
        // Seven good solos remain: not enough for a match, and none of the rejected is used.
        assert!(decision.matches.is_empty());
        assert_eq!(decision.waiting.len(), 7);
        tickets.push(ticket(30, &[25.0], "us-east", 0));
        let decision = decide(&tickets, &[], 0);
        assert_eq!(
            matched_ids(&decision),
            (2..=8).chain([30]).map(TicketId).collect::<Vec<_>>()
        );
    }

    #[test]
    fn the_allowance_widens_with_each_tickets_own_wait() {
        // Spread 10: more than a fresh ticket's 5, reached after 20 s (5 + 0.25 × 20).
        let mut tickets = solos(1, &[20.0, 20.0, 20.0, 20.0], "us-east", 0);
        tickets.extend(solos(5, &[30.0, 30.0, 30.0, 30.0], "us-east", 0));
        assert!(decide(&tickets, &[], 19_000).matches.is_empty());
        let decision = decide(&tickets, &[], 20_000);
        assert_eq!(decision.matches.len(), 1);
        assert_eq!(decision.matches[0].team_gap, 0.0);
        // One fresh ticket in the same match keeps it from forming: its allowance is still 5.
        tickets[7].queued_at_ms = 20_000;
        assert!(decide(&tickets, &[], 20_000).matches.is_empty());
    }

    #[test]
    fn uneven_teams_wait_until_the_gap_allowance_has_widened() {
        // A trio of 35s must have one solo; the other team is two duos of 25s: the gap between
        // averages can be no less than (105 + 25) / 4 − 25 = 7.5 > the cap of 5 ... unless the
        // cap is raised, after which it forms once everyone has waited (1 + 0.1 × 65 = 7.5).
        let tickets = vec![
            ticket(1, &[35.0, 35.0, 35.0], "us-east", 0),
            ticket(2, &[25.0, 25.0], "us-east", 0),
            ticket(3, &[25.0, 25.0], "us-east", 0),
            ticket(4, &[25.0], "us-east", 0),
        ];
        let mut rules = rules();
        assert!(
            form_matches(&tickets, &[], &rules, 600_000)
                .unwrap()
                .matches
                .is_empty()
        );
        rules.team_gap.cap = 10.0;
        assert!(
            form_matches(&tickets, &[], &rules, 64_000)
                .unwrap()
                .matches
                .is_empty()
        );
        let decision = form_matches(&tickets, &[], &rules, 65_000).unwrap();
        assert_eq!(decision.matches.len(), 1);
        assert_eq!(decision.matches[0].team_gap, 7.5);
    }

    #[test]
    fn neighbours_are_used_only_after_the_wait() {
        let mut tickets = solos(1, &[25.0; 4], "us-east", 0);
        tickets.extend(solos(5, &[25.0; 4], "us-west", 0));
        assert!(decide(&tickets, &[], 29_999).matches.is_empty());
        let decision = decide(&tickets, &[], 30_000);
        assert_eq!(decision.matches.len(), 1);
        assert_eq!(decision.matches[0].region, region("us-east"));
        assert_eq!(matched_ids(&decision).len(), 8);
        // A region that is nobody's neighbour is never mixed in.
        let mut far = solos(1, &[25.0; 4], "us-east", 0);
        far.extend(solos(5, &[25.0; 4], "ap-south", 0));
        assert!(decide(&far, &[], 600_000).matches.is_empty());
    }

    #[test]
    fn the_home_region_comes_before_a_neighbour() {
        // Both regions can fill a match at home; nobody is moved although all have waited.
        let mut tickets = solos(1, &[25.0; 8], "us-east", 0);
        tickets.extend(solos(11, &[25.0; 8], "us-west", 0));
        let decision = decide(&tickets, &[], 60_000);
        assert_eq!(decision.matches.len(), 2);
        for formed in &decision.matches {
            let home = if formed.region == region("us-east") {
                1..=8
            } else {
                11..=18
            };
            for team in &formed.teams {
                assert!(
                    team.tickets.iter().all(|id| home.contains(&id.0)),
                    "{formed:?}"
                );
            }
        }
    }

    #[test]
    fn the_oldest_ticket_is_served_first() {
        // Nine solos of 21..=29, room for eight. The oldest is the 29, so the match is built
        // around it and the 21 (the newest) waits; built around the lowest rating instead, the
        // 29 would wait.
        let skills: Vec<f64> = (21..=29).map(f64::from).collect();
        let mut tickets = solos(1, &skills, "us-east", 1_000);
        tickets[8].queued_at_ms = 0;
        tickets[0].queued_at_ms = 8_000;
        let decision = decide(&tickets, &[], 20_000);
        assert_eq!(decision.matches.len(), 1, "{decision:?}");
        assert_eq!(
            decision.waiting,
            vec![WaitingTicket {
                ticket: TicketId(1),
                position: 0
            }]
        );
    }

    #[test]
    fn a_party_that_does_not_fit_the_seats_left_is_passed_over() {
        let mut tickets = solos(1, &[25.0; 5], "us-east", 0);
        tickets.push(ticket(6, &[25.1; 4], "us-east", 10));
        tickets.extend(solos(7, &[26.0; 3], "us-east", 0));
        let decision = decide(&tickets, &[], 20);
        assert_eq!(decision.matches.len(), 1, "{decision:?}");
        assert_eq!(
            decision.waiting,
            vec![WaitingTicket {
                ticket: TicketId(6),
                position: 0
            }]
        );
    }

    fn backfill(room: &str, teams: &[(u32, f64)]) -> Backfill {
        Backfill {
            room_id: RoomId::parse(room).unwrap(),
            region: region("us-east"),
            mode: breach(),
            teams: teams
                .iter()
                .map(|&(open_seats, rating_total)| BackfillTeam {
                    open_seats,
                    rating_total,
                })
                .collect(),
            requested_at_ms: 0,
        }
    }

    #[test]
    fn backfills_take_their_tickets_before_new_matches_form() {
        let tickets = solos(
            1,
            &[24.0, 25.0, 25.0, 25.0, 25.0, 25.0, 25.0, 26.0],
            "us-east",
            0,
        );
        // Team 0 lost a player; the three left total 75.
        let backfills = [backfill("us-east-room1", &[(1, 75.0), (0, 100.0)])];
        let decision = decide(&tickets, &backfills, 0);
        assert_eq!(decision.backfills.len(), 1, "{decision:?}");
        assert_eq!(decision.backfills[0].team, 0);
        assert_eq!(decision.backfills[0].room_id.as_str(), "us-east-room1");
        // Seven solos are left: no new match.
        assert!(decision.matches.is_empty());
        assert_eq!(decision.waiting.len(), 7);
    }

    #[test]
    fn a_backfill_gets_the_player_who_evens_the_teams() {
        let tickets = vec![
            ticket(1, &[20.0], "us-east", 0),
            ticket(2, &[30.0], "us-east", 0),
            ticket(3, &[26.0, 26.0], "us-east", 0),
            ticket(4, &[29.0], "us-east", 0),
        ];
        // Team 0 has three players at 25, team 1 four at 28: the ideal newcomer is 37; 30 is
        // nearest. The duo does not fit a single seat.
        let decision = decide(
            &tickets,
            &[backfill("us-east-room1", &[(1, 75.0), (0, 112.0)])],
            0,
        );
        let assigned: Vec<u64> = decision.backfills.iter().map(|a| a.ticket.0).collect();
        assert_eq!(assigned, vec![2]);
        // Two open seats on each side (25s | 28s): the weaker side first gets 30 (nearest to the
        // 31 that would even it), then 29, and the duo of 26s fills the other side: 109 | 108.
        let decision = decide(
            &tickets,
            &[backfill("us-east-room2", &[(2, 50.0), (2, 56.0)])],
            0,
        );
        let assigned: Vec<(usize, u64)> = decision
            .backfills
            .iter()
            .map(|a| (a.team, a.ticket.0))
            .collect();
        assert_eq!(assigned, vec![(0, 2), (0, 4), (1, 3)], "{decision:?}");
        assert_eq!(decision.waiting.len(), 1);
    }

    #[test]
    fn a_backfill_never_takes_a_player_far_outside_its_allowance() {
        let tickets = vec![ticket(1, &[45.0], "us-east", 0)];
        // It would narrow the gap (15 × 3 + 45 | 25 × 4), but it is 24 points above the match's
        // average: beyond a fresh ticket's spread of 5.
        let decision = decide(
            &tickets,
            &[backfill("us-east-room0", &[(1, 45.0), (0, 100.0)])],
            0,
        );
        assert!(decision.backfills.is_empty());
        let decision = decide(
            &tickets,
            &[backfill("us-east-room1", &[(1, 75.0), (0, 100.0)])],
            0,
        );
        assert!(decision.backfills.is_empty());
        assert_eq!(decision.waiting.len(), 1);
    }

    #[test]
    fn malformed_backfills_are_reported() {
        let mut other_mode = backfill("r-mode", &[(1, 75.0), (0, 100.0)]);
        other_mode.mode = GameMode::arena();
        let backfills = [
            backfill("r-three-teams", &[(1, 75.0), (0, 100.0), (0, 100.0)]),
            backfill("r-too-many-seats", &[(5, 0.0), (0, 100.0)]),
            backfill("r-full", &[(0, 100.0), (0, 100.0)]),
            backfill("r-nan", &[(1, f64::NAN), (0, 100.0)]),
            backfill("r-twice", &[(1, 75.0), (0, 100.0)]),
            backfill("r-twice", &[(1, 75.0), (0, 100.0)]),
            other_mode,
        ];
        let tickets = solos(1, &[25.0], "us-east", 0);
        let decision = decide(&tickets, &backfills, 0);
        let rejected: Vec<(&str, InputProblem)> = decision
            .rejected_backfills
            .iter()
            .map(|rejection| (rejection.room_id.as_str(), rejection.problem))
            .collect();
        assert_eq!(
            rejected,
            vec![
                ("r-full", InputProblem::BackfillShape),
                ("r-mode", InputProblem::UnknownMode),
                ("r-nan", InputProblem::InvalidRating),
                ("r-three-teams", InputProblem::BackfillShape),
                ("r-too-many-seats", InputProblem::BackfillShape),
                ("r-twice", InputProblem::DuplicateId),
            ]
        );
        assert!(decision.backfills.is_empty());
    }

    #[test]
    fn waiting_positions_count_per_mode_and_region() {
        let tickets = vec![
            ticket(1, &[25.0], "us-east", 30),
            ticket(2, &[25.0], "us-west", 20),
            ticket(3, &[25.0], "us-east", 10),
        ];
        let decision = decide(&tickets, &[], 40);
        let waiting: Vec<(u64, usize)> = decision
            .waiting
            .iter()
            .map(|waiting| (waiting.ticket.0, waiting.position))
            .collect();
        assert_eq!(waiting, vec![(3, 0), (2, 0), (1, 1)]);
    }

    #[test]
    fn unusable_rules_are_an_error() {
        let mut bad = rules();
        bad.team_gap.cap = -1.0;
        assert_eq!(
            form_matches(&[], &[], &bad, 0),
            Err(QueueRulesError::Widening)
        );
        let mut bad = rules();
        bad.skill_spread.per_second = f64::NAN;
        assert_eq!(bad.validate(), Err(QueueRulesError::Widening));
        let mut bad = rules();
        bad.modes.insert(
            breach(),
            TeamShape {
                players_per_team: 4,
                teams: 1,
            },
        );
        assert_eq!(
            bad.validate(),
            Err(QueueRulesError::Shape { mode: breach() })
        );
        let bad = QueueRules {
            scan_limit: 0,
            ..rules()
        };
        assert_eq!(bad.validate(), Err(QueueRulesError::ScanLimit));
        assert_eq!(rules().validate(), Ok(()));
    }

    #[test]
    fn account_keys_read_and_write_the_stores_spelling() {
        let text = "00ff00000000000000000000000000a1";
        let key = AccountKey::from_hex(text).unwrap();
        assert_eq!(key, AccountKey(0x00ff_0000_0000_0000_0000_0000_0000_00a1));
        assert_eq!(key.to_hex(), text);
        for bad in [
            "",
            "00FF00000000000000000000000000a1",
            "+0ff00000000000000000000000000a1",
            "abc",
        ] {
            assert_eq!(AccountKey::from_hex(bad), None, "{bad:?}");
        }
    }

    // ---- properties over random queues ----

    const REGIONS: [&str; 4] = ["us-east", "us-west", "eu", "ap-south"];

    #[derive(Debug, Clone)]
    struct Draw {
        party: usize,
        skill: f64,
        spread: f64,
        region: usize,
        queued_at_ms: u64,
        duo_mode: bool,
    }

    fn draw() -> impl Strategy<Value = Draw> {
        (
            prop_oneof![6 => Just(1usize), 2 => Just(2usize), 1 => Just(3usize), 1 => Just(4usize)],
            10.0..40.0f64,
            0.0..4.0f64,
            0..REGIONS.len(),
            0..60_000u64,
            prop::bool::weighted(0.2),
        )
            .prop_map(
                |(party, skill, spread, region, queued_at_ms, duo_mode)| Draw {
                    party,
                    skill,
                    spread,
                    region,
                    queued_at_ms,
                    duo_mode,
                },
            )
    }

    fn property_rules() -> QueueRules {
        let mut rules = rules();
        // A 2v2 mode alongside breach, so a match that mixed modes would show.
        rules.modes.insert(
            GameMode::parse("duo").unwrap(),
            TeamShape {
                players_per_team: 2,
                teams: 2,
            },
        );
        rules
    }

    fn build(draws: &[Draw]) -> Vec<Ticket> {
        draws
            .iter()
            .enumerate()
            .map(|(index, draw)| {
                let party = if draw.duo_mode {
                    draw.party.min(2)
                } else {
                    draw.party
                };
                let skills: Vec<f64> = (0..party)
                    .map(|member| draw.skill + draw.spread * member as f64)
                    .collect();
                let mut ticket = ticket(
                    index as u64 + 1,
                    &skills,
                    REGIONS[draw.region],
                    draw.queued_at_ms,
                );
                if draw.duo_mode {
                    ticket.mode = GameMode::parse("duo").unwrap();
                }
                ticket
            })
            .collect()
    }

    const NOW_MS: u64 = 60_000;

    /// Every rule a formed match must keep, checked against the input.
    fn check_rules(tickets: &[Ticket], rules: &QueueRules, decision: &QueueDecision) {
        let by_id: HashMap<TicketId, &Ticket> = tickets.iter().map(|t| (t.id, t)).collect();
        let mut seen: HashSet<TicketId> = HashSet::new();
        for formed in &decision.matches {
            let shape = rules.modes[&formed.mode];
            assert_eq!(formed.teams.len(), shape.teams as usize, "{formed:?}");
            let mut gap_allowance = f64::INFINITY;
            let mut spread_allowance = f64::INFINITY;
            let mut skills = Vec::new();
            let mut averages = Vec::new();
            for team in &formed.teams {
                assert_eq!(
                    team.accounts.len(),
                    shape.players_per_team as usize,
                    "exact team size"
                );
                let mut accounts = Vec::new();
                let mut total = 0.0;
                for id in &team.tickets {
                    assert!(seen.insert(*id), "ticket {id:?} in two places");
                    let ticket = by_id[id];
                    assert_eq!(ticket.mode, formed.mode, "a match mixes modes");
                    let waited = NOW_MS.saturating_sub(ticket.queued_at_ms);
                    if ticket.region != formed.region {
                        assert!(waited >= rules.neighbour_after_ms, "moved region too early");
                        assert!(
                            rules.neighbours[&ticket.region].contains(&formed.region),
                            "moved to a region that is not a neighbour"
                        );
                    }
                    gap_allowance = gap_allowance.min(rules.team_gap.after(waited));
                    spread_allowance = spread_allowance.min(rules.skill_spread.after(waited));
                    let party: f64 = ticket.members.iter().map(|m| m.rating.mean).sum();
                    skills.push(party / ticket.members.len() as f64);
                    total += party;
                    accounts.extend(ticket.members.iter().map(|m| m.account));
                }
                // The whole party is on this team, and nobody else is.
                assert_eq!(team.accounts, accounts, "a party was split or padded");
                assert!((team.rating_total - total).abs() < 1e-9);
                averages.push(total / f64::from(shape.players_per_team));
            }
            let gap = spread_of(&averages);
            assert!(
                gap <= gap_allowance + 1e-9,
                "gap {gap} over {gap_allowance}: {formed:?}"
            );
            let spread = spread_of(&skills);
            assert!(
                spread <= spread_allowance + 1e-9,
                "spread {spread} over {spread_allowance}"
            );
        }
        for assignment in &decision.backfills {
            assert!(
                seen.insert(assignment.ticket),
                "ticket {:?} in two places",
                assignment.ticket
            );
        }
        for waiting in &decision.waiting {
            assert!(
                seen.insert(waiting.ticket),
                "a waiting ticket was also matched"
            );
        }
        for rejection in &decision.rejected {
            assert!(
                !seen.contains(&rejection.ticket),
                "a rejected ticket was used"
            );
        }
        let valid = tickets.len() - decision.rejected.len();
        assert_eq!(
            seen.len(),
            valid,
            "every valid ticket is matched, assigned or waiting"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn random_queues_keep_every_matching_rule(draws in prop::collection::vec(draw(), 0..400)) {
            let tickets = build(&draws);
            let rules = property_rules();
            let decision = form_matches(&tickets, &[], &rules, NOW_MS).unwrap();
            check_rules(&tickets, &rules, &decision);
            prop_assert!(decision.rejected.is_empty());
            // Not vacuous: a queue this size forms matches.
            if draws.len() >= 300 {
                prop_assert!(!decision.matches.is_empty());
            }
        }

        #[test]
        fn the_decision_does_not_depend_on_input_order(
            tickets in prop::collection::vec(draw(), 0..200)
                .prop_map(|draws| build(&draws))
                .prop_flat_map(|tickets| (Just(tickets.clone()), Just(tickets).prop_shuffle())),
        ) {
            let (tickets, shuffled) = tickets;
            let rules = property_rules();
            let first = form_matches(&tickets, &[], &rules, NOW_MS).unwrap();
            let again = form_matches(&tickets, &[], &rules, NOW_MS).unwrap();
            let reordered = form_matches(&shuffled, &[], &rules, NOW_MS).unwrap();
            prop_assert_eq!(&first, &again);
            prop_assert_eq!(&first, &reordered);
        }

        #[test]
        fn bad_tickets_are_rejected_and_never_matched(
            draws in prop::collection::vec(draw(), 1..200),
            duplicates in prop::collection::vec((any::<prop::sample::Index>(), any::<prop::sample::Index>()), 1..10),
        ) {
            let mut tickets = build(&draws);
            for (which, target) in duplicates {
                let source = tickets[which.index(tickets.len())].clone();
                let target = target.index(tickets.len());
                if source.id == tickets[target].id {
                    continue;
                }
                // Either the same id again, or the same account in another ticket.
                if which.index(2) == 0 {
                    let mut copy = tickets[target].clone();
                    copy.id = source.id;
                    tickets.push(copy);
                } else {
                    tickets[target].members[0].account = source.members[0].account;
                }
            }
            // What the spoiling left, counted on the final tickets.
            let mut ids: HashMap<TicketId, usize> = HashMap::new();
            let mut accounts: HashMap<AccountKey, usize> = HashMap::new();
            for ticket in &tickets {
                *ids.entry(ticket.id).or_default() += 1;
                for member in &ticket.members {
                    *accounts.entry(member.account).or_default() += 1;
                }
            }
            let spoiled: HashSet<TicketId> = tickets
                .iter()
                .filter(|t| ids[&t.id] > 1 || t.members.iter().any(|m| accounts[&m.account] > 1))
                .map(|t| t.id)
                .collect();
            // All picks may have drawn a ticket onto itself: nothing to check then.
            prop_assume!(!spoiled.is_empty());
            let rules = property_rules();
            let decision = form_matches(&tickets, &[], &rules, NOW_MS).unwrap();
            let rejected: HashSet<TicketId> = decision.rejected.iter().map(|r| r.ticket).collect();
            for id in &spoiled {
                prop_assert!(rejected.contains(id), "{:?} not rejected", id);
            }
            let used: HashSet<TicketId> = matched_ids(&decision).into_iter()
                .chain(decision.waiting.iter().map(|w| w.ticket))
                .collect();
            prop_assert!(used.is_disjoint(&rejected));
        }

        #[test]
        fn backfills_are_served_before_new_matches(
            draws in prop::collection::vec(draw(), 0..120),
            open in prop::collection::vec((0u32..=4, 0u32..=4, 0..REGIONS.len()), 1..6),
        ) {
            let tickets = build(&draws);
            let wide = Widening { at_start: 1_000.0, per_second: 0.0, cap: 1_000.0 };
            let rules = QueueRules {
                team_gap: wide,
                skill_spread: wide,
                scan_limit: 100_000,
                ..property_rules()
            };
            let backfills: Vec<Backfill> = open
                .iter()
                .enumerate()
                .filter(|(_, (a, b, _))| a + b > 0)
                .map(|(index, &(a, b, home))| Backfill {
                    room_id: RoomId::parse(&format!("room-{index}")).unwrap(),
                    region: region(REGIONS[home]),
                    ..backfill("x", &[(a, f64::from(4 - a) * 25.0), (b, f64::from(4 - b) * 25.0)])
                })
                .collect();
            let decision = form_matches(&tickets, &backfills, &rules, NOW_MS).unwrap();
            check_rules(&tickets, &rules, &decision);
            // Seats still open after the backfill step...
            let mut still_open: Vec<(Region, u32)> = Vec::new();
            for backfill in &backfills {
                for (team, seats) in backfill.teams.iter().enumerate() {
                    let filled: usize = decision
                        .backfills
                        .iter()
                        .filter(|a| a.room_id == backfill.room_id && a.team == team)
                        .map(|a| a.accounts.len())
                        .sum();
                    prop_assert!(filled <= seats.open_seats as usize, "overfilled a backfill");
                    still_open.push((backfill.region.clone(), seats.open_seats - filled as u32));
                }
            }
            // ...fit no ticket that a new match took in that region instead.
            let by_id: HashMap<TicketId, &Ticket> = tickets.iter().map(|t| (t.id, t)).collect();
            for id in matched_ids(&decision) {
                let ticket = by_id[&id];
                let fits = ticket.mode == breach()
                    && still_open.iter().any(|(home, seats)| {
                        *home == ticket.region && ticket.members.len() as u32 <= *seats
                    });
                prop_assert!(!fits, "ticket {:?} went to a new match past an open backfill", id);
            }
        }
    }
}
