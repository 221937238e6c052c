//! The lobby browser's query: filters and paging over the directory's lobby indexes.
//!
//! A lobby is a match room's [`LobbyStatus`] as its node reports it; the directory keeps, per
//! pool (region and mode), an index of rooms that have one, in room id order
//! ([`RoomDirectory::lobby_rooms`]). A page walks the regions the query names in order and
//! each pool's index from the cursor, keeping what passes the filters. Static filters (mode,
//! region) choose the index; the rest (map, not full, not started, no password) are applied to
//! the entries read, and one page reads at most [`MAX_READ_FACTOR`] × `limit` entries, so a
//! region of full lobbies costs a bounded read and answers with a cursor to go on from.
//!
//! Must not scan every room of the directory, and must not read the clock (`now_ms` comes in).

use crate::directory::{DirectoryError, RoomDirectory, RoomStatus};
use crate::ids::{GameMode, Region, RoomId};

/// Most lobbies one page returns.
pub const MAX_PAGE: usize = 100;
/// A page reads at most this many index entries per lobby it may return.
pub const MAX_READ_FACTOR: usize = 5;

/// What the browser asks for (`GET /api/lobbies`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LobbyQuery {
    pub mode: GameMode,
    /// Regions in the order to list them (one, or every region the matchmaker knows).
    pub regions: Vec<Region>,
    pub map: Option<String>,
    pub not_full: bool,
    pub not_started: bool,
    pub no_password: bool,
    /// 1..=[`MAX_PAGE`].
    pub limit: usize,
    pub after: Option<LobbyCursor>,
}

/// Where the next page starts: after this room of this region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LobbyCursor {
    pub region: Region,
    pub room: RoomId,
}

impl LobbyCursor {
    /// The cursor's text form, `<region>.<room>` (neither contains a `.`).
    pub fn encode(&self) -> String {
        format!("{}.{}", self.region, self.room)
    }

    /// Reads [`LobbyCursor::encode`]'s form; `None` for anything else.
    pub fn parse(text: &str) -> Option<LobbyCursor> {
        let (region, room) = text.split_once('.')?;
        Some(LobbyCursor {
            region: Region::parse(region).ok()?,
            room: RoomId::parse(room).ok()?,
        })
    }
}

/// One page of lobbies and where the next begins (`None`: nothing more).
#[derive(Debug, Clone, PartialEq)]
pub struct LobbyPage {
    pub lobbies: Vec<RoomStatus>,
    pub next: Option<LobbyCursor>,
}

impl LobbyQuery {
    /// Whether a listed room passes the query's filters.
    pub fn accepts(&self, room: &RoomStatus) -> bool {
        let Some(lobby) = &room.lobby else {
            return false;
        };
        self.map.as_ref().is_none_or(|map| &lobby.map == map)
            && (!self.not_full || !lobby.is_full())
            && (!self.not_started || lobby.is_waiting())
            && (!self.no_password || !lobby.password)
    }
}

/// One page of the lobby browser. Regions are walked in the query's order; a cursor for a
/// region the query does not name starts from the first region.
pub async fn list_lobbies(
    directory: &dyn RoomDirectory,
    query: &LobbyQuery,
    now_ms: u64,
) -> Result<LobbyPage, DirectoryError> {
    let limit = query.limit.clamp(1, MAX_PAGE);
    let mut budget = limit * MAX_READ_FACTOR;
    let start = query
        .after
        .as_ref()
        .and_then(|cursor| query.regions.iter().position(|r| r == &cursor.region))
        .unwrap_or(0);
    let mut lobbies = Vec::with_capacity(limit);
    for (position, region) in query.regions.iter().enumerate().skip(start) {
        let mut after = query
            .after
            .as_ref()
            .filter(|cursor| position == start && &cursor.region == region)
            .map(|cursor| cursor.room.clone());
        loop {
            let want = (limit - lobbies.len()).min(budget).max(1);
            let read = directory
                .lobby_rooms(region, &query.mode, after.as_ref(), want, now_ms)
                .await?;
            budget = budget.saturating_sub(read.len());
            let exhausted = read.len() < want;
            for room in read {
                after = Some(room.room_id.clone());
                if query.accepts(&room) {
                    lobbies.push(room);
                }
            }
            if lobbies.len() >= limit || budget == 0 {
                // More may follow: resume after the last entry read.
                let next = after.map(|room| LobbyCursor {
                    region: region.clone(),
                    room,
                });
                return Ok(LobbyPage { lobbies, next });
            }
            if exhausted {
                break;
            }
        }
    }
    Ok(LobbyPage {
        lobbies,
        next: None,
    })
}
