//! Pellet storage: every pellet lives directly in the grid cell that covers it.
//!
//! Owns pellet ids, insertion, eating, expiry and the box query. Storing pellets per cell
//! means nothing is rebuilt per tick (pellets barely move), eating touches only the cells
//! around a head, and each cell's `Vec` keeps its capacity, so steady play allocates nothing.
//!
//! Every insertion and removal is also written to a short journal ([`PelletChange`]), so a
//! reader (the room's per-viewer interest management) can follow the pellet set from its
//! changes instead of scanning every pellet each tick.

use crate::grid::GridGeometry;
use crate::math::Vec2;

/// A piece of food. `id` is unique per World: a counter that only wraps after 2^32 pellets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pellet {
    pub id: u32,
    pub pos: Vec2,
    pub value: f32,
    pub color: u8,
}

/// One entry of the pellet journal: a pellet that appeared in or vanished from the arena.
///
/// Every pellet is added exactly once and removed at most once (eaten, expired, or never),
/// and ids are never reused, so the journal alone reproduces the live pellet set.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PelletChange {
    /// Spawned (natural food), dropped by a boosting snake, or scattered by a death.
    Added(Pellet),
    /// Eaten or expired; carries the pellet as it was.
    Removed(Pellet),
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct StoredPellet {
    pub(crate) pellet: Pellet,
    /// World time (seconds) at which a dropped pellet vanishes; infinity for natural food.
    pub(crate) expires_at: f64,
    pub(crate) natural: bool,
}

/// What a new pellet looks like; the store assigns its id.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NewPellet {
    pub(crate) position: Vec2,
    pub(crate) value: f32,
    pub(crate) color: u8,
    /// World time (seconds) at which it vanishes; infinity for natural food.
    pub(crate) expires_at: f64,
    pub(crate) natural: bool,
}

#[derive(Debug)]
pub(crate) struct PelletStore {
    cells: Vec<Vec<StoredPellet>>,
    count: usize,
    natural_count: usize,
    next_id: u32,
    expiry_cursor: usize,
    /// Changes not yet forgotten, oldest first; `journal[0]` has position `journal_start`.
    journal: Vec<PelletChange>,
    journal_start: u64,
    /// Index in `journal` where the current step's changes begin.
    step_mark: usize,
}

/// Journal capacity kept across steps; more (the initial fill, a burst of deaths) is handed
/// back once it has been forgotten.
const JOURNAL_KEPT_CAPACITY: usize = 4096;

impl PelletStore {
    pub(crate) fn new(geometry: &GridGeometry) -> PelletStore {
        PelletStore {
            cells: (0..geometry.cell_count()).map(|_| Vec::new()).collect(),
            count: 0,
            natural_count: 0,
            next_id: 0,
            expiry_cursor: 0,
            journal: Vec::new(),
            journal_start: 0,
            step_mark: 0,
        }
    }

    /// Called at the start of every step: forgets the changes recorded before the previous
    /// step began, so the journal holds at most two steps' worth (plus whatever happened
    /// between them) and a reader that looks once per step never misses a change.
    pub(crate) fn begin_step(&mut self) {
        let forget = self.step_mark;
        if forget > 0 {
            self.journal.drain(..forget);
            self.journal_start += forget as u64;
        }
        if self.journal.capacity() > JOURNAL_KEPT_CAPACITY
            && self.journal.len() <= JOURNAL_KEPT_CAPACITY / 4
        {
            self.journal.shrink_to(JOURNAL_KEPT_CAPACITY / 4);
        }
        self.step_mark = self.journal.len();
    }

    /// Makes an empty journal begin at `position` (so readers of a replaced store see a gap).
    #[cfg(test)]
    pub(crate) fn start_journal_at(&mut self, position: u64) {
        self.journal.clear();
        self.step_mark = 0;
        self.journal_start = position;
    }

    /// Journal position just after the newest change.
    pub(crate) fn journal_end(&self) -> u64 {
        self.journal_start + self.journal.len() as u64
    }

    /// The changes from journal position `position` on, or `None` if they were forgotten
    /// (or `position` lies in the future).
    pub(crate) fn changes_since(&self, position: u64) -> Option<&[PelletChange]> {
        let offset = position.checked_sub(self.journal_start)?;
        let offset = usize::try_from(offset).ok()?;
        self.journal.get(offset..)
    }

    pub(crate) fn len(&self) -> usize {
        self.count
    }

    pub(crate) fn natural_len(&self) -> usize {
        self.natural_count
    }

    pub(crate) fn next_id(&self) -> u32 {
        self.next_id
    }

    /// Adds a pellet unless the store already holds `max_pellets`; returns whether it did.
    pub(crate) fn insert(
        &mut self,
        geometry: &GridGeometry,
        max_pellets: usize,
        new_pellet: NewPellet,
    ) -> bool {
        if self.count >= max_pellets {
            return false;
        }
        let NewPellet {
            position,
            value,
            color,
            expires_at,
            natural,
        } = new_pellet;
        let pellet = Pellet {
            id: self.next_id,
            pos: position,
            value,
            color,
        };
        self.next_id = self.next_id.wrapping_add(1);
        self.journal.push(PelletChange::Added(pellet));
        self.cells[geometry.cell_index(position)].push(StoredPellet {
            pellet,
            expires_at,
            natural,
        });
        self.count += 1;
        if natural {
            self.natural_count += 1;
        }
        true
    }

    /// Removes every pellet within `radius` of `center` and returns their total value.
    pub(crate) fn eat_within(&mut self, geometry: &GridGeometry, center: Vec2, radius: f32) -> f32 {
        let radius_squared = radius * radius;
        let mut eaten_value = 0.0;
        let mut eaten_count = 0;
        let mut eaten_natural = 0;
        let range = geometry.cells_overlapping(center, Vec2::new(radius, radius));
        let journal = &mut self.journal;
        for cell in geometry.cell_indices(range) {
            self.cells[cell].retain(|stored| {
                if stored.pellet.pos.distance_squared(center) <= radius_squared {
                    journal.push(PelletChange::Removed(stored.pellet));
                    eaten_value += stored.pellet.value;
                    eaten_count += 1;
                    eaten_natural += usize::from(stored.natural);
                    false
                } else {
                    true
                }
            });
        }
        self.count -= eaten_count;
        self.natural_count -= eaten_natural;
        eaten_value
    }

    /// Drops expired pellets from the next `cells_to_sweep` cells (round robin, so the whole
    /// store is swept every few ticks without a full scan per tick) and gives back the spare
    /// capacity of those cells (`grid::trim_spare`). Returns the lost value.
    pub(crate) fn expire(&mut self, now: f64, cells_to_sweep: usize) -> f32 {
        let mut expired_value = 0.0;
        let mut expired_count = 0;
        let mut expired_natural = 0;
        let journal = &mut self.journal;
        for _ in 0..cells_to_sweep.min(self.cells.len()) {
            let cell = self.expiry_cursor;
            self.expiry_cursor = (self.expiry_cursor + 1) % self.cells.len();
            self.cells[cell].retain(|stored| {
                if stored.expires_at <= now {
                    journal.push(PelletChange::Removed(stored.pellet));
                    expired_value += stored.pellet.value;
                    expired_count += 1;
                    expired_natural += usize::from(stored.natural);
                    false
                } else {
                    true
                }
            });
            crate::grid::trim_spare(&mut self.cells[cell]);
        }
        self.count -= expired_count;
        self.natural_count -= expired_natural;
        expired_value
    }

    pub(crate) fn for_each_in(
        &self,
        geometry: &GridGeometry,
        center: Vec2,
        half_extent: Vec2,
        mut f: impl FnMut(&Pellet),
    ) {
        let half_x = half_extent.x.abs();
        let half_y = half_extent.y.abs();
        let range = geometry.cells_overlapping(center, Vec2::new(half_x, half_y));
        for cell in geometry.cell_indices(range) {
            for stored in &self.cells[cell] {
                let offset = stored.pellet.pos - center;
                if offset.x.abs() <= half_x && offset.y.abs() <= half_y {
                    f(&stored.pellet);
                }
            }
        }
    }

    /// The pellets in one cell, for bots looking for food.
    pub(crate) fn cell(&self, cell: usize) -> &[StoredPellet] {
        &self.cells[cell]
    }

    /// Every pellet in a fixed order (cell by cell), for hashing and accounting.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &StoredPellet> {
        self.cells.iter().flatten()
    }
}
