//! Pellet storage: every pellet lives directly in the grid cell that covers it.
//!
//! Owns pellet ids, insertion, eating, expiry and the box query. Storing pellets per cell
//! means nothing is rebuilt per tick (pellets barely move), eating touches only the cells
//! around a head, and each cell's `Vec` keeps its capacity, so steady play allocates nothing.

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
}

impl PelletStore {
    pub(crate) fn new(geometry: &GridGeometry) -> PelletStore {
        PelletStore {
            cells: (0..geometry.cell_count()).map(|_| Vec::new()).collect(),
            count: 0,
            natural_count: 0,
            next_id: 0,
            expiry_cursor: 0,
        }
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
        for cell in geometry.cell_indices(range) {
            self.cells[cell].retain(|stored| {
                if stored.pellet.pos.distance_squared(center) <= radius_squared {
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
    /// store is swept every few ticks without a full scan per tick). Returns the lost value.
    pub(crate) fn expire(&mut self, now: f64, cells_to_sweep: usize) -> f32 {
        let mut expired_value = 0.0;
        let mut expired_count = 0;
        let mut expired_natural = 0;
        for _ in 0..cells_to_sweep.min(self.cells.len()) {
            let cell = self.expiry_cursor;
            self.expiry_cursor = (self.expiry_cursor + 1) % self.cells.len();
            self.cells[cell].retain(|stored| {
                if stored.expires_at <= now {
                    expired_value += stored.pellet.value;
                    expired_count += 1;
                    expired_natural += usize::from(stored.natural);
                    false
                } else {
                    true
                }
            });
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
