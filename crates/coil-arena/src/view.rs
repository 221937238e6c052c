//! Per-viewer state encoding: what one client knows, and the state frame that brings it up
//! to date.
//!
//! [`ViewerState`] mirrors, exactly and in integers, what the client reconstructed from the
//! frames it was sent (snake heads, their prediction velocity, lengths, girths, boost flags,
//! its pellet list and view centre). Each tick the encoder compares that mirror with the
//! simulation and writes only the differences, measured against the client's own
//! reconstruction, so quantization error never accumulates. It must never read anything the
//! client cannot see from its frames when deciding how the client will apply them: both sides
//! run the rules in `docs/protocol.md` ("Applying a state frame") on the same integers.
//!
//! No IO and no allocation per tick once the buffers have grown (scratch lives in
//! [`EncoderScratch`], shared by every viewer of a room).

use std::collections::HashSet;

use coil_protocol::arena::{
    Extension, GIRTH_STEPS_PER_UNIT, MoveCode, PELLET_CELLS, PELLET_SIZES, PelletEntry, SnakeEntry,
    SnakeIdentity, StateFrame, body_direction, nearest_body_direction,
};
use coil_sim::{Pellet, PelletChange, SEGMENT_SPACING, Snake, SnakeId, Vec2, World};

/// How a room quantizes and crops what its viewers see. Shared by every viewer of a room and
/// announced to clients in the init frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ViewSettings {
    /// World units per position unit.
    pub position_quantum: f32,
    /// Half width and half height of the view box, in position units.
    pub view_half_width: u16,
    pub view_half_height: u16,
    /// Side of a pellet cell, in position units.
    pub pellet_cell: u8,
    /// A known snake stays known until no body point is within the view box grown by this
    /// many world units, so a snake wiggling along the edge is not re-sent in full each time.
    pub keep_margin: f32,
    /// A head that moved farther than this (in position units) from where the client
    /// predicted it is re-sent in full (a respawn or a recycled id, never normal movement).
    pub teleport_distance: i32,
    /// State frames per second (the prediction velocity of a snake entering view).
    pub tick_rate: u8,
}

impl Default for ViewSettings {
    /// Tuned against the default `ArenaConfig` (110 units/s, 230 boosting, 4.5 rad/s turns):
    /// a 2-unit quantum keeps a turning head's residual within ±1 on most ticks, so most moves
    /// cost half a byte, and the 1,600 × 900 unit view is a 16:9 screen at zoom 1.
    fn default() -> Self {
        ViewSettings {
            position_quantum: 2.0,
            view_half_width: 400,
            view_half_height: 225,
            pellet_cell: 2,
            keep_margin: 120.0,
            teleport_distance: 64,
            tick_rate: 20,
        }
    }
}

impl ViewSettings {
    pub fn quantize(&self, value: f32) -> i32 {
        round_clamped(
            value / self.position_quantum,
            -(1 << 30) as f32,
            (1 << 30) as f32,
        )
    }

    fn quantize_point(&self, point: Vec2) -> [i32; 2] {
        [self.quantize(point.x), self.quantize(point.y)]
    }

    fn view_half_extent(&self) -> Vec2 {
        Vec2::new(
            f32::from(self.view_half_width) * self.position_quantum,
            f32::from(self.view_half_height) * self.position_quantum,
        )
    }

    /// A copy whose view box fits the pellet entry's cell range (an oversized view would
    /// make pellet cells unencodable).
    pub fn sanitized(&self) -> ViewSettings {
        let cell = self.pellet_cell.max(1);
        let largest_half = (u16::from(cell) * (PELLET_CELLS / 2 - 1)).max(1);
        ViewSettings {
            pellet_cell: cell,
            view_half_width: self.view_half_width.clamp(1, largest_half),
            view_half_height: self.view_half_height.clamp(1, largest_half),
            tick_rate: self.tick_rate.max(1),
            position_quantum: if self.position_quantum.is_finite() && self.position_quantum > 0.0 {
                self.position_quantum
            } else {
                ViewSettings::default().position_quantum
            },
            ..*self
        }
    }

    /// Where a client stores a pellet at `position`: the centre of its cell on the global
    /// grid of `pellet_cell` position units. A pellet is in view exactly when this point is
    /// inside the view box, which is what lets the client's cull replace removal messages.
    pub fn stored_pellet_position(&self, position: Vec2) -> [i32; 2] {
        let cell = i32::from(self.pellet_cell.max(1));
        let cell_world = cell as f32 * self.position_quantum;
        let index =
            |value: f32| floor_clamped(value / cell_world, -(1 << 24) as f32, (1 << 24) as f32);
        [
            index(position.x) * cell + cell / 2,
            index(position.y) * cell + cell / 2,
        ]
    }
}

/// The view box in position units, bounds inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ViewBox {
    /// `[min x, min y, max x, max y]`.
    pub bounds: [i32; 4],
}

impl ViewBox {
    pub fn around(center: [i32; 2], settings: &ViewSettings) -> ViewBox {
        let (half_width, half_height) = (
            i32::from(settings.view_half_width),
            i32::from(settings.view_half_height),
        );
        ViewBox {
            bounds: [
                center[0] - half_width,
                center[1] - half_height,
                center[0] + half_width,
                center[1] + half_height,
            ],
        }
    }

    #[inline]
    pub fn contains(&self, point: [i32; 2]) -> bool {
        let [min_x, min_y, max_x, max_y] = self.bounds;
        point[0] >= min_x && point[0] <= max_x && point[1] >= min_y && point[1] <= max_y
    }
}

/// A pellet as the encoder needs it.
#[derive(Debug, Clone, Copy)]
pub struct TrackedPellet {
    pub id: u32,
    pub pos: Vec2,
    pub color: u8,
    pub size: u8,
}

impl From<&Pellet> for TrackedPellet {
    fn from(pellet: &Pellet) -> TrackedPellet {
        TrackedPellet {
            id: pellet.id,
            pos: pellet.pos,
            color: pellet.color & 0xf,
            size: pellet_size_class(pellet.value),
        }
    }
}

/// Which pellets appeared and vanished in the world during the last tick, computed once per
/// room tick and shared by every viewer (each viewer then only looks at changes and at the
/// strips its view newly covers, instead of every pellet in its view).
///
/// It reads the simulation's pellet journal ([`World::pellet_changes_since`]), so a tick
/// costs in proportion to the pellets that changed, not to the pellets in the arena. When
/// the journal cannot answer (the first update, or updates more than a step apart) the
/// generation skips a number, which sends every viewer through its full reconciliation.
#[derive(Debug, Default)]
pub struct PelletTracker {
    removed: Vec<TrackedPellet>,
    added: Vec<TrackedPellet>,
    /// Every pellet with an id at or above this was created since the previous update.
    added_from: u32,
    next_id: u32,
    /// Journal position read up to; `None` before the first update.
    journal_position: Option<u64>,
    /// Live pellets by stored position as of the last update, for viewers' strip queries;
    /// `None` until the first update.
    index: Option<StripIndex>,
    generation: u64,
    /// Ids both added and removed since the previous update (scratch).
    cancelled: Vec<u32>,
}

impl PelletTracker {
    /// Records what changed since the last call. Call once per room tick, after the world
    /// stepped and before any viewer is encoded, with the settings the viewers use.
    pub fn update(&mut self, world: &World, settings: &ViewSettings) {
        self.removed.clear();
        self.added.clear();
        self.cancelled.clear();
        self.added_from = self.next_id;
        self.next_id = world.next_pellet_id();
        let changes = self
            .journal_position
            .and_then(|position| world.pellet_changes_since(position));
        self.journal_position = Some(world.pellet_journal_end());
        let Some(changes) = changes else {
            // No continuous record: no viewer may apply a delta across this update.
            self.generation += 2;
            self.index = Some(StripIndex::build(world, settings));
            return;
        };
        self.generation += 1;
        let added_from = self.added_from;
        for change in changes {
            match change {
                PelletChange::Added(pellet) => self.added.push(TrackedPellet::from(pellet)),
                // Ids are handed out in increasing order, so a removed pellet at or above
                // `added_from` appeared and vanished between two updates: no viewer ever
                // heard of it, and it is reported neither way.
                PelletChange::Removed(pellet) if pellet.id >= added_from => {
                    self.cancelled.push(pellet.id)
                }
                PelletChange::Removed(pellet) => self.removed.push(TrackedPellet::from(pellet)),
            }
        }
        if !self.cancelled.is_empty() {
            let cancelled = &mut self.cancelled;
            cancelled.sort_unstable();
            self.added
                .retain(|pellet| cancelled.binary_search(&pellet.id).is_err());
        }
        // Viewers announce additions in this order; a scan's order (cell by cell, then by id)
        // keeps every frame byte-identical to what a full scan of the world would produce.
        self.added
            .sort_unstable_by_key(|pellet| (world.pellet_cell(pellet.pos), pellet.id));
        let in_step = match &mut self.index {
            Some(index) if index.settings == *settings => index.apply(&self.removed, &self.added),
            _ => false,
        };
        if !in_step {
            self.index = Some(StripIndex::build(world, settings));
        }
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Pellets that vanished during the last update's interval (eaten or expired), each of
    /// which was alive at the update before.
    pub fn removed(&self) -> &[TrackedPellet] {
        &self.removed
    }

    /// Pellets that appeared during the last update's interval and are still alive.
    pub fn added(&self) -> &[TrackedPellet] {
        &self.added
    }
}

/// Live pellets by the position the client stores them at, in vertical and horizontal bands
/// of [`StripIndex::BAND`] position units (wider in huge arenas, so there are never more than
/// [`StripIndex::MAX_BANDS`] each way), each band sorted across its length. A viewer's
/// newly exposed strip (a few units wide, a view tall) is then one or two binary searches
/// and exactly the pellets inside it, where the world's 64-unit cells would hand over every
/// pellet in whole cell columns. Kept up to date from the tracker's changes.
#[derive(Debug)]
struct StripIndex {
    settings: ViewSettings,
    /// Band width in position units.
    width: i32,
    /// Band key of `columns[0]` and `rows[0]`.
    first_band: i32,
    /// By stored x band, each sorted by (stored y, id).
    columns: Vec<Vec<IndexedPellet>>,
    /// By stored y band, each sorted by (stored x, id).
    rows: Vec<Vec<IndexedPellet>>,
}

#[derive(Debug, Clone, Copy)]
struct IndexedPellet {
    stored: [i32; 2],
    pellet: TrackedPellet,
}

impl StripIndex {
    /// Band width in position units (32 world units at the default quantum).
    const BAND: i32 = 16;
    /// Most bands each way, whatever the arena radius and position quantum.
    const MAX_BANDS: i32 = 4096;

    fn build(world: &World, settings: &ViewSettings) -> StripIndex {
        let config = world.config();
        let reach = config.radius + 2.0 * config.grid_cell_size;
        let extent = settings.quantize(reach) + 2 * i32::from(settings.pellet_cell) + Self::BAND;
        let width = Self::BAND.max(extent / (Self::MAX_BANDS / 2 - 1) + 1);
        let first_band = (-extent).div_euclid(width);
        let bands = (extent.div_euclid(width) - first_band + 1) as usize;
        let mut index = StripIndex {
            settings: *settings,
            width,
            first_band,
            columns: vec![Vec::new(); bands],
            rows: vec![Vec::new(); bands],
        };
        world.for_each_pellet_in(Vec2::ZERO, Vec2::new(reach, reach), |pellet| {
            let stored = settings.stored_pellet_position(pellet.pos);
            let entry = IndexedPellet {
                stored,
                pellet: TrackedPellet::from(pellet),
            };
            let (column, row) = (index.band(stored[0]), index.band(stored[1]));
            index.columns[column].push(entry);
            index.rows[row].push(entry);
        });
        for column in &mut index.columns {
            column.sort_unstable_by_key(|entry| (entry.stored[1], entry.pellet.id));
        }
        for row in &mut index.rows {
            row.sort_unstable_by_key(|entry| (entry.stored[0], entry.pellet.id));
        }
        index
    }

    /// The band holding stored coordinate `value` (outliers share the edge bands; queries
    /// check exact coordinates, so that only costs time).
    fn band(&self, value: i32) -> usize {
        let band = value.div_euclid(self.width) - self.first_band;
        band.clamp(0, self.columns.len() as i32 - 1) as usize
    }

    /// Applies one update's changes; false if a removed pellet was missing (the index is
    /// then unusable and must be rebuilt).
    fn apply(&mut self, removed: &[TrackedPellet], added: &[TrackedPellet]) -> bool {
        for pellet in removed {
            let stored = self.settings.stored_pellet_position(pellet.pos);
            let (column, row) = (self.band(stored[0]), self.band(stored[1]));
            let in_column = Self::remove(&mut self.columns[column], (stored[1], pellet.id), 1);
            let in_row = Self::remove(&mut self.rows[row], (stored[0], pellet.id), 0);
            if !(in_column && in_row) {
                return false;
            }
        }
        for pellet in added {
            let stored = self.settings.stored_pellet_position(pellet.pos);
            let entry = IndexedPellet {
                stored,
                pellet: *pellet,
            };
            let (column, row) = (self.band(stored[0]), self.band(stored[1]));
            Self::insert(&mut self.columns[column], entry, 1);
            Self::insert(&mut self.rows[row], entry, 0);
        }
        true
    }

    fn remove(band: &mut Vec<IndexedPellet>, key: (i32, u32), axis: usize) -> bool {
        match band.binary_search_by_key(&key, |entry| (entry.stored[axis], entry.pellet.id)) {
            Ok(position) => {
                band.remove(position);
                true
            }
            Err(_) => false,
        }
    }

    fn insert(band: &mut Vec<IndexedPellet>, entry: IndexedPellet, axis: usize) {
        let key = (entry.stored[axis], entry.pellet.id);
        let position = band.partition_point(|other| (other.stored[axis], other.pellet.id) < key);
        band.insert(position, entry);
    }

    /// Calls `f` for every pellet stored inside `x0..=x1` × `y0..=y1`: through the columns
    /// for a rectangle narrower than it is tall, through the rows otherwise.
    fn for_each_in(&self, x0: i32, x1: i32, y0: i32, y1: i32, mut f: impl FnMut(&IndexedPellet)) {
        if x0 > x1 || y0 > y1 {
            return;
        }
        let (bands, across, along, (low, high), (from, to)) = if x1 - x0 <= y1 - y0 {
            (&self.columns, 0, 1, (x0, x1), (y0, y1))
        } else {
            (&self.rows, 1, 0, (y0, y1), (x0, x1))
        };
        for band in &bands[self.band(low)..=self.band(high)] {
            let start = band.partition_point(|entry| entry.stored[along] < from);
            for entry in &band[start..] {
                if entry.stored[along] > to {
                    break;
                }
                if (low..=high).contains(&entry.stored[across]) {
                    f(entry);
                }
            }
        }
    }
}

/// Pellet changes since a viewer's previous frame.
struct PelletDelta<'a> {
    removed: &'a [TrackedPellet],
    added: &'a [TrackedPellet],
    added_from: u32,
}

impl PelletDelta<'_> {
    const NONE: PelletDelta<'static> = PelletDelta {
        removed: &[],
        added: &[],
        added_from: u32::MAX,
    };
}

/// Where a viewer's newly exposed strips are read from: the tracker's index when it was
/// built with the viewer's settings, else the world's grid.
#[derive(Clone, Copy)]
enum StripSource<'a> {
    Index(&'a StripIndex),
    World(&'a World),
}

fn push_new_pellet(
    frame: &mut StateFrame,
    known: &mut Vec<KnownPellet>,
    settings: &ViewSettings,
    view_box: ViewBox,
    pellet: &TrackedPellet,
    stored: [i32; 2],
) {
    let cell = i32::from(settings.pellet_cell.max(1));
    let base = [
        view_box.bounds[0].div_euclid(cell),
        view_box.bounds[1].div_euclid(cell),
    ];
    let offset = [
        stored[0].div_euclid(cell) - base[0],
        stored[1].div_euclid(cell) - base[1],
    ];
    let limit = i32::from(PELLET_CELLS);
    if !(0..limit).contains(&offset[0]) || !(0..limit).contains(&offset[1]) {
        // Unreachable with sanitized settings; skipping keeps the client consistent anyway
        // (it simply never hears of this pellet).
        return;
    }
    frame.new_pellets.push(PelletEntry {
        cell_x: offset[0] as u16,
        cell_y: offset[1] as u16,
        color: pellet.color,
        size: pellet.size,
    });
    known.push(KnownPellet {
        id: pellet.id,
        position: stored,
    });
}

/// Length as the client knows it: whole visible trail points.
pub fn wire_length(snake: &Snake) -> u32 {
    let length = snake.length();
    if length.is_finite() {
        length.clamp(0.0, 1.0e6) as u32
    } else {
        0
    }
}

/// Girth in `1 / GIRTH_STEPS_PER_UNIT` world units.
pub fn wire_girth(girth: f32) -> u32 {
    round_clamped(girth * GIRTH_STEPS_PER_UNIT, 0.0, 1.0e6) as u32
}

/// `value` rounded half away from zero and clamped to `low..=high`, as an integer; 0 if
/// `value` is not finite. Equal to `value.round().clamp(low, high) as i32` for integral
/// bounds within ±2^30, without the libm call `f32::round` is on baseline x86-64 (which was
/// ~5% of encode time): below 2^31 a truncating conversion splits a float exactly into its
/// whole and fractional parts.
#[inline]
fn round_clamped(value: f32, low: f32, high: f32) -> i32 {
    if !value.is_finite() {
        return 0;
    }
    let clamped = value.clamp(low, high);
    let whole = clamped as i32;
    let fraction = clamped - whole as f32;
    if fraction >= 0.5 {
        whole + 1
    } else if fraction <= -0.5 {
        whole - 1
    } else {
        whole
    }
}

/// `value.floor().clamp(low, high) as i32` for integral bounds within ±2^30 (0 if `value`
/// is not finite), without the libm call, for the same reason as [`round_clamped`].
#[inline]
fn floor_clamped(value: f32, low: f32, high: f32) -> i32 {
    if !value.is_finite() {
        return 0;
    }
    let clamped = value.clamp(low, high);
    let whole = clamped as i32;
    if whole as f32 > clamped {
        whole - 1
    } else {
        whole
    }
}

/// Pellet size class on the wire: the value rounded, `0..=3`.
pub fn pellet_size_class(value: f32) -> u8 {
    if value.is_finite() {
        value.round().clamp(0.0, f32::from(PELLET_SIZES - 1)) as u8
    } else {
        0
    }
}

#[derive(Debug, Clone, Copy)]
struct KnownSnake {
    id: u16,
    head: [i32; 2],
    velocity: [i32; 2],
    length: u32,
    girth: u32,
    boosting: bool,
}

#[derive(Debug, Clone, Copy)]
struct KnownPellet {
    id: u32,
    position: [i32; 2],
}

/// Scratch shared by all viewers of one room; contents are meaningless between calls.
#[derive(Debug, Default)]
pub struct EncoderScratch {
    inner: Vec<u16>,
    outer: Vec<u16>,
    exposed: Vec<TrackedPellet>,
    gone: Vec<u32>,
    pellet_seen: Vec<bool>,
    out_of_date: Vec<KnownSnake>,
}

/// Most snake identities remembered per viewer before the memory is dropped (names are then
/// simply sent again), so a long session cannot grow without bound.
const MAX_REMEMBERED_IDENTITIES: usize = 1024;

/// What one client holds, mirrored by the server.
#[derive(Debug, Default)]
pub struct ViewerState {
    /// Ascending ids.
    known_snakes: Vec<KnownSnake>,
    /// In the client's list order.
    known_pellets: Vec<KnownPellet>,
    identities_sent: HashSet<u16>,
    center: [i32; 2],
    frame: StateFrame,
    /// The view box and tracker generation of the previous frame's pellet update; `None`
    /// until the first frame after a reset.
    pellet_box: Option<ViewBox>,
    pellet_generation: u64,
}

impl ViewerState {
    /// Forgets everything, as a client does when it receives an init frame.
    pub fn reset(&mut self) {
        self.known_snakes.clear();
        self.known_pellets.clear();
        self.identities_sent.clear();
        self.center = [0, 0];
        self.pellet_box = None;
    }

    /// The view centre the client uses, in position units.
    pub fn center(&self) -> [i32; 2] {
        self.center
    }

    pub fn known_snake_count(&self) -> usize {
        self.known_snakes.len()
    }

    pub fn known_pellet_count(&self) -> usize {
        self.known_pellets.len()
    }

    /// Builds this tick's state frame for the viewer whose own snake is `own`, updates the
    /// mirror as the client will, and returns the frame to be written.
    pub fn encode(
        &mut self,
        world: &World,
        own: Option<SnakeId>,
        settings: &ViewSettings,
        tracker: &PelletTracker,
        scratch: &mut EncoderScratch,
    ) -> &StateFrame {
        self.frame.clear();
        // The client centres its view on its own head after this frame's moves, and that
        // head will be exactly the quantized true head, because moves are exact.
        if let Some(snake) = own
            .and_then(|id| world.snake(id))
            .filter(|snake| snake.alive())
        {
            self.center = settings.quantize_point(snake.head());
        }
        let center_world = Vec2::new(
            self.center[0] as f32 * settings.position_quantum,
            self.center[1] as f32 * settings.position_quantum,
        );
        let half = settings.view_half_extent();
        scratch.outer.clear();
        let outer_half = Vec2::new(half.x + settings.keep_margin, half.y + settings.keep_margin);
        world.for_each_snake_near(center_world, outer_half, |snake| {
            scratch.outer.push(snake.id().0)
        });
        scratch.outer.sort_unstable();

        self.encode_snakes(world, settings, center_world, half, scratch);
        self.encode_pellets(world, settings, tracker, scratch);
        &self.frame
    }

    fn encode_snakes(
        &mut self,
        world: &World,
        settings: &ViewSettings,
        center_world: Vec2,
        half: Vec2,
        scratch: &mut EncoderScratch,
    ) {
        // One pass over the known snakes: removals (out of the outer box, dead, or jumped:
        // respawned / recycled id), then moves of the rest against the client's prediction
        // `head + velocity`. Each list keeps the known order, as the client applies them.
        scratch.out_of_date.clear();
        let frame = &mut self.frame;
        // Both lists ascend by id, so membership in `outer` is a merge walk, not a search.
        let outer = &scratch.outer;
        let mut cursor = 0;
        self.known_snakes.retain_mut(|known| {
            while outer.get(cursor).is_some_and(|&id| id < known.id) {
                cursor += 1;
            }
            let current = if outer.get(cursor) == Some(&known.id) {
                world.snake(SnakeId(known.id))
            } else {
                None
            };
            let Some((snake, head)) =
                current.map(|snake| (snake, settings.quantize_point(snake.head())))
            else {
                frame.removed.push(known.id);
                return false;
            };
            let residual = [
                head[0] - (known.head[0] + known.velocity[0]),
                head[1] - (known.head[1] + known.velocity[1]),
            ];
            if residual[0].abs().max(residual[1].abs()) > settings.teleport_distance {
                frame.removed.push(known.id);
                return false;
            }
            known.velocity = [head[0] - known.head[0], head[1] - known.head[1]];
            known.head = head;
            let length = wire_length(snake);
            let girth = wire_girth(snake.girth());
            let boosting = snake.boosting();
            let unchanged =
                length == known.length && girth == known.girth && boosting == known.boosting;
            match MoveCode::small(residual[0], residual[1]) {
                Some(code) if unchanged => frame.moves.push(code),
                _ => {
                    frame.moves.push(MoveCode::Extended);
                    frame.extensions.push(Extension {
                        residual,
                        length_delta: length.wrapping_sub(known.length) as i32,
                        girth_delta: girth.wrapping_sub(known.girth) as i32,
                        boost_toggled: boosting != known.boosting,
                    });
                    known.length = length;
                    known.girth = girth;
                    known.boosting = boosting;
                }
            }
            true
        });

        // Entries: unknown snakes with a body point in the view box (a subset of the outer
        // box's snakes). The world's occupancy map answers this without reading the bodies of
        // snakes lingering in the margin, which a per-snake test would read every tick.
        scratch.inner.clear();
        let known_snakes = &self.known_snakes;
        world.for_each_snake_near(center_world, half, |snake| {
            let id = snake.id().0;
            if known_snakes
                .binary_search_by_key(&id, |known| known.id)
                .is_err()
            {
                scratch.inner.push(id);
            }
        });
        scratch.inner.sort_unstable();
        let step_seconds = 1.0 / f32::from(settings.tick_rate.max(1));
        for &id in &scratch.inner {
            if self
                .known_snakes
                .binary_search_by_key(&id, |known| known.id)
                .is_ok()
            {
                continue;
            }
            let Some(snake) = world.snake(SnakeId(id)) else {
                continue;
            };
            let head = settings.quantize_point(snake.head());
            let speed = if snake.boosting() {
                world.config().boost_speed
            } else {
                world.config().speed
            };
            let velocity =
                settings.quantize_point(Vec2::from_angle(snake.angle()) * (speed * step_seconds));
            let identity = if self.identities_sent.insert(id) {
                Some(SnakeIdentity {
                    skin: snake.skin(),
                    name: snake.name().to_owned(),
                })
            } else {
                None
            };
            if self.identities_sent.len() > MAX_REMEMBERED_IDENTITIES {
                self.identities_sent.clear();
            }
            // Body steps are chosen from the point the client reconstructed, so the error of
            // one step is corrected by the next instead of accumulating along the body.
            let mut reconstructed = Vec2::new(
                head[0] as f32 * settings.position_quantum,
                head[1] as f32 * settings.position_quantum,
            );
            let body_start = frame.body_directions.len();
            for point in snake.body().skip(1) {
                let k =
                    nearest_body_direction(point.x - reconstructed.x, point.y - reconstructed.y);
                let [dx, dy] = body_direction(k);
                reconstructed = Vec2::new(
                    reconstructed.x + dx * SEGMENT_SPACING,
                    reconstructed.y + dy * SEGMENT_SPACING,
                );
                frame.body_directions.push(k);
            }
            let entry = SnakeEntry {
                id,
                identity,
                boosting: snake.boosting(),
                length: wire_length(snake),
                girth: wire_girth(snake.girth()),
                head,
                velocity,
                body_len: (frame.body_directions.len() - body_start) as u32,
            };
            let known = KnownSnake {
                id,
                head,
                velocity,
                length: entry.length,
                girth: entry.girth,
                boosting: entry.boosting,
            };
            frame.entered.push(entry);
            scratch.out_of_date.push(known);
        }
        // `inner` is ascending, so entries are too; merge them into the sorted known list.
        if !scratch.out_of_date.is_empty() {
            self.known_snakes.extend_from_slice(&scratch.out_of_date);
            self.known_snakes.sort_unstable_by_key(|known| known.id);
        }
    }

    fn encode_pellets(
        &mut self,
        world: &World,
        settings: &ViewSettings,
        tracker: &PelletTracker,
        scratch: &mut EncoderScratch,
    ) {
        // Both paths below first apply the cull both sides do without any bytes on the wire
        // (known pellets outside the new box are dropped), in the same pass as removals.
        let view_box = ViewBox::around(self.center, settings);
        let previous_box = self.pellet_box.replace(view_box);
        let previous_generation =
            std::mem::replace(&mut self.pellet_generation, tracker.generation);
        let strips = match &tracker.index {
            Some(index) if index.settings == *settings => StripSource::Index(index),
            _ => StripSource::World(world),
        };
        match previous_box {
            Some(previous_box) if previous_generation == tracker.generation => {
                self.update_pellets(
                    strips,
                    settings,
                    &PelletDelta::NONE,
                    previous_box,
                    view_box,
                    scratch,
                );
            }
            Some(previous_box) if previous_generation + 1 == tracker.generation => {
                let delta = PelletDelta {
                    removed: &tracker.removed,
                    added: &tracker.added,
                    added_from: tracker.added_from,
                };
                self.update_pellets(strips, settings, &delta, previous_box, view_box, scratch);
            }
            _ => self.reconcile_pellets(world, settings, view_box, scratch),
        }
    }

    /// The incremental path: the client held exactly the live pellets stored inside
    /// `previous_box` (culled to `view_box` first), and `delta` lists every pellet removed or
    /// added since. What is new is the delta's additions inside the box plus older pellets in
    /// the part of the box that was not in view before.
    fn update_pellets(
        &mut self,
        strips: StripSource<'_>,
        settings: &ViewSettings,
        delta: &PelletDelta<'_>,
        previous_box: ViewBox,
        view_box: ViewBox,
        scratch: &mut EncoderScratch,
    ) {
        let frame = &mut self.frame;
        scratch.gone.clear();
        for pellet in delta.removed {
            let stored = settings.stored_pellet_position(pellet.pos);
            if previous_box.contains(stored) && view_box.contains(stored) {
                scratch.gone.push(pellet.id);
            }
        }
        // The cull, and removals by index into the culled list, in one tight pass over
        // every known pellet (the hottest loop of the encoder: a viewer knows hundreds of
        // pellets and only a few are gone). A 64-bit filter of the gone ids keeps the
        // common case to one test.
        let filter = scratch
            .gone
            .iter()
            .fold(0u64, |filter, id| filter | (1 << (id % 64)));
        // Nothing to do when the box stayed put (every known pellet is inside it) and
        // nothing in it is gone; elements are only moved once one has been dropped.
        if previous_box != view_box || !scratch.gone.is_empty() {
            let known = &mut self.known_pellets;
            let mut kept = 0;
            let mut index = 0u32;
            for read in 0..known.len() {
                let pellet = known[read];
                if !view_box.contains(pellet.position) {
                    continue;
                }
                if (filter >> (pellet.id % 64)) & 1 == 1 && scratch.gone.contains(&pellet.id) {
                    frame.eaten.push(index);
                } else {
                    if kept != read {
                        known[kept] = pellet;
                    }
                    kept += 1;
                }
                index += 1;
            }
            known.truncate(kept);
        }
        for pellet in delta.added {
            let stored = settings.stored_pellet_position(pellet.pos);
            if view_box.contains(stored) {
                push_new_pellet(
                    frame,
                    &mut self.known_pellets,
                    settings,
                    view_box,
                    pellet,
                    stored,
                );
            }
        }
        if previous_box == view_box {
            return;
        }
        // Newly exposed strips: up to two rectangles of the new box outside the old one,
        // grown by a cell because a stored position is up to half a cell from the pellet.
        scratch.exposed.clear();
        let quantum = settings.position_quantum;
        let grow = f32::from(settings.pellet_cell.max(1)) * quantum;
        let [min_x, min_y, max_x, max_y] = view_box.bounds;
        let [old_min_x, old_min_y, old_max_x, old_max_y] = previous_box.bounds;
        let mut query = |x0: i32, x1: i32, y0: i32, y1: i32| {
            if x0 > x1 || y0 > y1 {
                return;
            }
            let world = match strips {
                StripSource::Index(index) => {
                    index.for_each_in(x0, x1, y0, y1, |entry| {
                        if entry.pellet.id < delta.added_from
                            && view_box.contains(entry.stored)
                            && !previous_box.contains(entry.stored)
                        {
                            scratch.exposed.push(entry.pellet);
                        }
                    });
                    return;
                }
                StripSource::World(world) => world,
            };
            let center = Vec2::new(
                (x0 + x1) as f32 * 0.5 * quantum,
                (y0 + y1) as f32 * 0.5 * quantum,
            );
            let half = Vec2::new(
                (x1 - x0) as f32 * 0.5 * quantum + grow,
                (y1 - y0) as f32 * 0.5 * quantum + grow,
            );
            world.for_each_pellet_in(center, half, |pellet| {
                if pellet.id >= delta.added_from {
                    return;
                }
                let stored = settings.stored_pellet_position(pellet.pos);
                if view_box.contains(stored) && !previous_box.contains(stored) {
                    scratch.exposed.push(TrackedPellet::from(pellet));
                }
            });
        };
        // Columns entering on the left or right, over the new box's full height.
        if min_x < old_min_x {
            query(min_x, (old_min_x - 1).min(max_x), min_y, max_y);
        }
        if max_x > old_max_x {
            query((old_max_x + 1).max(min_x), max_x, min_y, max_y);
        }
        // Rows entering at the bottom or top, over the columns both boxes share.
        let (shared_min_x, shared_max_x) = (min_x.max(old_min_x), max_x.min(old_max_x));
        if min_y < old_min_y {
            query(
                shared_min_x,
                shared_max_x,
                min_y,
                (old_min_y - 1).min(max_y),
            );
        }
        if max_y > old_max_y {
            query(
                shared_min_x,
                shared_max_x,
                (old_max_y + 1).max(min_y),
                max_y,
            );
        }
        // The grown rectangles overlap; report each pellet once, in id order.
        scratch.exposed.sort_unstable_by_key(|pellet| pellet.id);
        scratch.exposed.dedup_by_key(|pellet| pellet.id);
        for pellet in &scratch.exposed {
            let stored = settings.stored_pellet_position(pellet.pos);
            push_new_pellet(
                frame,
                &mut self.known_pellets,
                settings,
                view_box,
                pellet,
                stored,
            );
        }
    }

    /// The full path (first frame, after a reset, or when frames were skipped): compare what
    /// the client holds with every live pellet in the box.
    fn reconcile_pellets(
        &mut self,
        world: &World,
        settings: &ViewSettings,
        view_box: ViewBox,
        scratch: &mut EncoderScratch,
    ) {
        let quantum = settings.position_quantum;
        let grow = f32::from(settings.pellet_cell.max(1)) * quantum;
        let [min_x, min_y, max_x, max_y] = view_box.bounds;
        let center = Vec2::new(
            (min_x + max_x) as f32 * 0.5 * quantum,
            (min_y + max_y) as f32 * 0.5 * quantum,
        );
        let half = Vec2::new(
            (max_x - min_x) as f32 * 0.5 * quantum + grow,
            (max_y - min_y) as f32 * 0.5 * quantum + grow,
        );
        scratch.exposed.clear();
        world.for_each_pellet_in(center, half, |pellet| {
            if view_box.contains(settings.stored_pellet_position(pellet.pos)) {
                scratch.exposed.push(TrackedPellet::from(pellet));
            }
        });
        scratch.exposed.sort_unstable_by_key(|pellet| pellet.id);
        scratch.pellet_seen.clear();
        scratch.pellet_seen.resize(scratch.exposed.len(), false);
        let frame = &mut self.frame;
        let mut index = 0u32;
        // The cull, and removals by index into the culled list, in one pass.
        self.known_pellets.retain(|known| {
            if !view_box.contains(known.position) {
                return false;
            }
            let keep = match scratch
                .exposed
                .binary_search_by_key(&known.id, |pellet| pellet.id)
            {
                Ok(position) => {
                    scratch.pellet_seen[position] = true;
                    true
                }
                Err(_) => {
                    frame.eaten.push(index);
                    false
                }
            };
            index += 1;
            keep
        });
        for (position, pellet) in scratch.exposed.iter().enumerate() {
            if !scratch.pellet_seen[position] {
                let stored = settings.stored_pellet_position(pellet.pos);
                push_new_pellet(
                    frame,
                    &mut self.known_pellets,
                    settings,
                    view_box,
                    pellet,
                    stored,
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{PelletTracker, ViewSettings, floor_clamped, round_clamped};
    use coil_sim::{ArenaConfig, SnakeKind, Vec2, World};

    /// The tracker's strip index against the world, tick after tick: it holds exactly the
    /// live pellets at their stored positions, its bands stay sorted, and a rectangle query
    /// (thin strips both ways, and odd shapes) returns exactly the pellets stored inside it.
    /// Bots boost, die and scatter; snakes are removed between steps; updates are skipped.
    #[test]
    fn the_strip_index_matches_the_world() {
        let settings = ViewSettings::default().sanitized();
        let config = ArenaConfig {
            radius: 1200.0,
            natural_pellet_target: 1500,
            dropped_pellet_lifetime: 4.0,
            ..ArenaConfig::default()
        };
        let mut world = World::new(config, 5);
        world.set_bot_target(40);
        let mut tracker = PelletTracker::default();
        let mut events = Vec::new();
        let mut state = 99u64;
        let mut random = move |bound: u32| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((state >> 33) % u64::from(bound)) as i32
        };
        let mut queries = 0;
        for tick in 0..600 {
            if tick % 37 == 0 {
                let victim = world
                    .snakes()
                    .nth(random(20) as usize)
                    .map(|snake| snake.id());
                if let Some(victim) = victim {
                    world.remove_snake(victim);
                }
                world.spawn_snake(SnakeKind::Human, "h", 1);
            }
            for snake in world.snakes().map(|snake| snake.id()).collect::<Vec<_>>() {
                world.set_input(snake, random(628) as f32 / 100.0, random(4) == 0);
            }
            events.clear();
            world.step(0.05, &mut events);
            if random(10) == 0 {
                continue;
            }
            tracker.update(&world, &settings);
            let index = tracker.index.as_ref().expect("built on the first update");
            let reach = world.config().radius * 2.0;
            let mut live = Vec::new();
            world.for_each_pellet_in(Vec2::ZERO, Vec2::new(reach, reach), |pellet| {
                live.push((pellet.id, settings.stored_pellet_position(pellet.pos)));
            });
            live.sort_unstable();
            for bands in [&index.columns, &index.rows] {
                let mut held: Vec<(u32, [i32; 2])> = bands
                    .iter()
                    .flatten()
                    .map(|entry| (entry.pellet.id, entry.stored))
                    .collect();
                held.sort_unstable();
                assert_eq!(held, live, "tick {tick}");
            }
            for column in &index.columns {
                assert!(column.is_sorted_by_key(|entry| (entry.stored[1], entry.pellet.id)));
            }
            for row in &index.rows {
                assert!(row.is_sorted_by_key(|entry| (entry.stored[0], entry.pellet.id)));
            }
            for _ in 0..20 {
                let (x0, y0) = (random(1500) - 750, random(1500) - 750);
                let (width, height) = match random(3) {
                    0 => (random(6), random(500)),
                    1 => (random(900), random(6)),
                    _ => (random(400) - 20, random(400) - 20),
                };
                let (x1, y1) = (x0 + width, y0 + height);
                let mut found = Vec::new();
                index.for_each_in(x0, x1, y0, y1, |entry| {
                    found.push((entry.pellet.id, entry.stored))
                });
                found.sort_unstable();
                let expected: Vec<(u32, [i32; 2])> = live
                    .iter()
                    .filter(|(_, stored)| {
                        (x0..=x1).contains(&stored[0]) && (y0..=y1).contains(&stored[1])
                    })
                    .copied()
                    .collect();
                queries += usize::from(!expected.is_empty());
                assert_eq!(found, expected, "tick {tick}: {x0}..={x1} x {y0}..={y1}");
            }
        }
        assert!(queries > 1000, "too few queries found pellets: {queries}");
    }

    /// A tiny position quantum (a huge arena in position units) widens the bands instead of
    /// allocating millions of them, and queries still answer exactly.
    #[test]
    fn the_strip_index_stays_small_for_huge_arenas_in_position_units() {
        let settings = ViewSettings {
            position_quantum: 0.0001,
            ..ViewSettings::default()
        }
        .sanitized();
        let world = World::new(ArenaConfig::default(), 3);
        let mut tracker = PelletTracker::default();
        tracker.update(&world, &settings);
        let index = tracker.index.as_ref().expect("built");
        assert!(index.columns.len() <= super::StripIndex::MAX_BANDS as usize);
        assert!(index.rows.len() <= super::StripIndex::MAX_BANDS as usize);
        let mut all = 0;
        index.for_each_in(
            i32::MIN / 2,
            i32::MAX / 2,
            i32::MIN / 2,
            i32::MAX / 2,
            |_| all += 1,
        );
        assert_eq!(all, world.pellet_count());
    }

    /// The libm-free rounding equals the std formulas it replaced on every kind of float:
    /// random bit patterns (all magnitudes, NaN, infinities, subnormals), values near
    /// half-integers and the clamp bounds.
    #[test]
    fn fast_rounding_matches_std() {
        let old_round = |value: f32, low: f32, high: f32| {
            let rounded = value.round();
            if rounded.is_finite() {
                rounded.clamp(low, high) as i32
            } else {
                0
            }
        };
        let old_floor = |value: f32, low: f32, high: f32| {
            let floored = value.floor();
            if floored.is_finite() {
                floored.clamp(low, high) as i32
            } else {
                0
            }
        };
        let bounds = [
            (-(1 << 30) as f32, (1 << 30) as f32),
            (-(1 << 24) as f32, (1 << 24) as f32),
            (0.0, 1.0e6),
        ];
        let mut values = vec![
            0.0,
            -0.0,
            0.5,
            -0.5,
            1.5,
            -1.5,
            2.5,
            -2.5,
            0.49999997,
            -0.49999997,
            8_388_607.5,
            -8_388_607.5,
            16_777_216.0,
            999_999.5,
            1.0e6 + 0.5,
            (1 << 30) as f32,
            -(1 << 30) as f32,
            f32::MAX,
            f32::MIN,
            f32::MIN_POSITIVE,
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
        ];
        let mut state = 0x1234_5678_9abc_def0u64;
        for _ in 0..2_000_000 {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let bits = (state >> 32) as u32;
            values.push(f32::from_bits(bits));
            // Mostly values of the magnitudes positions and girths really have.
            let small = (bits as f32 / u32::MAX as f32 - 0.5) * 40_000.0;
            values.push(small);
            values.push(small.trunc() + 0.5);
            values.push(small.trunc() - 0.5);
        }
        for value in values {
            for (low, high) in bounds {
                assert_eq!(
                    round_clamped(value, low, high),
                    old_round(value, low, high),
                    "round {value:e} in {low}..={high}"
                );
                assert_eq!(
                    floor_clamped(value, low, high),
                    old_floor(value, low, high),
                    "floor {value:e} in {low}..={high}"
                );
            }
        }
    }
}
