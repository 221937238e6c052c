//! The uniform spatial grid: cell geometry, and the per-tick index of every snake body point.
//!
//! Owns cell arithmetic and the body-point index used for head-vs-body collisions, bot sensing
//! and spawn safety. The index is updated incrementally as heads move and trails gain and lose
//! points, in per-cell `Vec`s that keep their capacity, so it allocates nothing after warm-up.
//! It is derived data: the snakes are the source of truth, and the tests check that the index
//! always matches them.
//!
//! Alongside it, [`Occupancy`] records which coarse cells (blocks of
//! [`COARSE_FACTOR`]² grid cells) each snake's body touches, kept up to date by the same
//! per-point updates. A view query reads a few bit sets instead of testing every snake.

use crate::math::Vec2;

/// Maps arena positions to cells of a square grid covering the whole arena disc.
#[derive(Debug, Clone)]
pub(crate) struct GridGeometry {
    origin: f32,
    inverse_cell_size: f32,
    cells_per_side: usize,
}

/// An inclusive rectangle of cell coordinates.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CellRange {
    pub(crate) x_first: usize,
    pub(crate) x_last: usize,
    pub(crate) y_first: usize,
    pub(crate) y_last: usize,
}

impl GridGeometry {
    pub(crate) fn new(arena_radius: f32, cell_size: f32) -> GridGeometry {
        // One spare cell on each side: positions exactly on the edge still land inside.
        let half_size = arena_radius + cell_size;
        let cells_per_side = ((2.0 * half_size) / cell_size).ceil().max(1.0) as usize;
        GridGeometry {
            origin: -half_size,
            inverse_cell_size: 1.0 / cell_size,
            cells_per_side,
        }
    }

    pub(crate) fn cell_count(&self) -> usize {
        self.cells_per_side * self.cells_per_side
    }

    /// Cell coordinate along one axis, clamped into the grid. `max(0.0)` also turns NaN into
    /// 0, and truncating a non-negative value is `floor` without a libm call, so a bad
    /// coordinate can never index out of bounds.
    fn axis_cell(&self, value: f32) -> usize {
        let cell = ((value - self.origin) * self.inverse_cell_size).max(0.0);
        (cell as usize).min(self.cells_per_side - 1)
    }

    pub(crate) fn cell_index(&self, position: Vec2) -> usize {
        self.axis_cell(position.y) * self.cells_per_side + self.axis_cell(position.x)
    }

    /// Coarse cells per side: the grid in blocks of `COARSE_FACTOR` cells.
    pub(crate) fn coarse_per_side(&self) -> usize {
        self.cells_per_side.div_ceil(COARSE_FACTOR)
    }

    /// The coarse cell holding `position` (clamped into the grid like `cell_index`).
    pub(crate) fn coarse_index(&self, position: Vec2) -> usize {
        let per_side = self.coarse_per_side();
        (self.axis_cell(position.y) / COARSE_FACTOR) * per_side
            + self.axis_cell(position.x) / COARSE_FACTOR
    }

    /// Coarse cells overlapping the box `center ± half_extent`.
    pub(crate) fn coarse_overlapping(&self, center: Vec2, half_extent: Vec2) -> CellRange {
        let range = self.cells_overlapping(center, half_extent);
        CellRange {
            x_first: range.x_first / COARSE_FACTOR,
            x_last: range.x_last / COARSE_FACTOR,
            y_first: range.y_first / COARSE_FACTOR,
            y_last: range.y_last / COARSE_FACTOR,
        }
    }

    /// Whether every position that maps to coarse cell `(x, y)` lies inside the box
    /// `box_min..=box_max`. Cells on the grid's border also hold clamped outside positions,
    /// so they never qualify, and the cell is widened a little against rounding.
    pub(crate) fn coarse_cell_within(
        &self,
        x: usize,
        y: usize,
        box_min: Vec2,
        box_max: Vec2,
    ) -> bool {
        let last = self.coarse_per_side() - 1;
        if x == 0 || y == 0 || x >= last || y >= last {
            return false;
        }
        let size = COARSE_FACTOR as f32 / self.inverse_cell_size;
        let slack = 0.01 * size;
        let low = Vec2::new(
            self.origin + x as f32 * size - slack,
            self.origin + y as f32 * size - slack,
        );
        let high = Vec2::new(low.x + size + 2.0 * slack, low.y + size + 2.0 * slack);
        low.x >= box_min.x && low.y >= box_min.y && high.x <= box_max.x && high.y <= box_max.y
    }

    /// Cells overlapping the box `center ± half_extent`.
    pub(crate) fn cells_overlapping(&self, center: Vec2, half_extent: Vec2) -> CellRange {
        let half_x = half_extent.x.abs();
        let half_y = half_extent.y.abs();
        CellRange {
            x_first: self.axis_cell(center.x - half_x),
            x_last: self.axis_cell(center.x + half_x),
            y_first: self.axis_cell(center.y - half_y),
            y_last: self.axis_cell(center.y + half_y),
        }
    }

    /// The index of every cell in `range`, row by row (a fixed order, so any result built
    /// from it is deterministic).
    pub(crate) fn cell_indices(&self, range: CellRange) -> impl Iterator<Item = usize> + use<> {
        let cells_per_side = self.cells_per_side;
        (range.y_first..=range.y_last)
            .flat_map(move |y| (range.x_first..=range.x_last).map(move |x| y * cells_per_side + x))
    }
}

/// Grid cells per side of a coarse occupancy cell (64-unit grid cells make 256-unit coarse
/// cells: a 1,840 × 1,140 view box overlaps about 8 × 6 of them).
pub(crate) const COARSE_FACTOR: usize = 4;

/// Which coarse cells each snake slot's body points fall in: per coarse cell a bit set of
/// slots, and per slot the cells it touches with a count of points in each (a body touches
/// a handful of cells, so the per-slot list is short and searched linearly).
#[derive(Debug)]
pub(crate) struct Occupancy {
    cells: usize,
    /// `u64` words per cell; slot `s` is bit `s % 64` of word `s / 64`.
    words: usize,
    bits: Vec<u64>,
    per_slot: Vec<Vec<(u32, u32)>>,
}

impl Occupancy {
    fn new(geometry: &GridGeometry) -> Occupancy {
        let per_side = geometry.coarse_per_side();
        Occupancy {
            cells: per_side * per_side,
            words: 0,
            bits: Vec::new(),
            per_slot: Vec::new(),
        }
    }

    fn add(&mut self, slot: u16, cell: usize) {
        let slot = usize::from(slot);
        if slot >= self.per_slot.len() {
            self.per_slot.resize_with(slot + 1, Vec::new);
        }
        if slot >= self.words * 64 {
            self.grow(slot);
        }
        let touched = &mut self.per_slot[slot];
        match touched
            .iter_mut()
            .find(|(touched_cell, _)| *touched_cell as usize == cell)
        {
            Some((_, points)) => *points += 1,
            None => {
                touched.push((cell as u32, 1));
                self.bits[cell * self.words + slot / 64] |= 1 << (slot % 64);
            }
        }
    }

    fn remove(&mut self, slot: u16, cell: usize) {
        let slot = usize::from(slot);
        let Some(touched) = self.per_slot.get_mut(slot) else {
            return;
        };
        let Some(index) = touched
            .iter()
            .position(|(touched_cell, _)| *touched_cell as usize == cell)
        else {
            return;
        };
        touched[index].1 -= 1;
        if touched[index].1 == 0 {
            touched.swap_remove(index);
            self.bits[cell * self.words + slot / 64] &= !(1 << (slot % 64));
        }
    }

    /// Widens every cell's bit set to hold `slot` (rare: only when the slot table grows).
    fn grow(&mut self, slot: usize) {
        let words = (slot / 64 + 1).next_power_of_two();
        let mut bits = vec![0u64; self.cells * words];
        for cell in 0..self.cells {
            let old = &self.bits[cell * self.words..(cell + 1) * self.words];
            bits[cell * words..cell * words + self.words].copy_from_slice(old);
        }
        self.bits = bits;
        self.words = words;
    }

    /// Words per cell (slots are `0..words() * 64`).
    pub(crate) fn words(&self) -> usize {
        self.words
    }

    /// The slot bits of one coarse cell.
    #[inline]
    pub(crate) fn cell(&self, cell: usize) -> &[u64] {
        &self.bits[cell * self.words..(cell + 1) * self.words]
    }

    /// Whether the counts and bits agree with a recount of the body grid (tests).
    #[cfg(test)]
    fn matches(&self, geometry: &GridGeometry, grid: &BodyGrid) -> bool {
        let mut expected: std::collections::BTreeMap<(usize, usize), u32> = Default::default();
        for entry in grid.iter() {
            *expected
                .entry((
                    usize::from(entry.slot),
                    geometry.coarse_index(entry.position),
                ))
                .or_default() += 1;
        }
        let mut actual = std::collections::BTreeMap::new();
        for (slot, touched) in self.per_slot.iter().enumerate() {
            for &(cell, points) in touched {
                actual.insert((slot, cell as usize), points);
            }
        }
        let bits_agree = (0..self.cells).all(|cell| {
            (0..self.words * 64).all(|slot| {
                let bit = self.bits[cell * self.words + slot / 64] >> (slot % 64) & 1 == 1;
                bit == actual.contains_key(&(slot, cell))
            })
        });
        expected == actual && bits_agree
    }
}

/// Capacity a trimmed cell keeps whatever its length: below this, shrinking saves less than
/// the regrowth costs.
const CELL_KEEP: usize = 8;

/// Shrinks `cell` to twice its length (at least [`CELL_KEEP`]) once it holds more than four
/// times what it uses. The gap between the two factors is the hysteresis: a trimmed cell must
/// double before it grows again and halve before it is trimmed again, so a busy cell does not
/// flap between sizes tick after tick.
pub(crate) fn trim_spare<T>(cell: &mut Vec<T>) {
    if cell.capacity() > (4 * cell.len()).max(2 * CELL_KEEP) {
        cell.shrink_to((2 * cell.len()).max(CELL_KEEP));
    }
}

/// One body point in the index: a snake's head, or one of its visible trail points.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BodyEntry {
    pub(crate) position: Vec2,
    pub(crate) slot: u16,
    pub(crate) is_head: bool,
    /// Which trail point this is (the low bits of the snake's trail serial; unused for heads).
    pub(crate) serial: u32,
}

/// Body points bucketed by cell, kept up to date point by point.
///
/// A trail point never moves once the head has left it behind: per tick a snake only moves
/// its head, gains a point or so at the front and loses one at the back. Updating those few
/// entries costs a handful of operations per snake, where rebuilding the index would touch
/// every body point of the arena every tick. Each cell's `Vec` keeps its capacity between
/// ticks; [`BodyGrid::trim`] gives back what a cell no longer needs, a few cells per tick.
#[derive(Debug)]
pub(crate) struct BodyGrid {
    cells: Vec<Vec<BodyEntry>>,
    len: usize,
    occupancy: Occupancy,
    trim_cursor: usize,
}

impl BodyGrid {
    pub(crate) fn new(geometry: &GridGeometry) -> BodyGrid {
        BodyGrid {
            cells: (0..geometry.cell_count()).map(|_| Vec::new()).collect(),
            len: 0,
            occupancy: Occupancy::new(geometry),
            trim_cursor: 0,
        }
    }

    /// Returns spare capacity of the next `cells` cells (round robin): a cell a big snake once
    /// coiled through would otherwise hold that peak for the room's life, and over an hour every
    /// cell sees its peak (the soak's slow RSS rise, `docs/benchmarks.md`).
    pub(crate) fn trim(&mut self, cells: usize) {
        for _ in 0..cells.min(self.cells.len()) {
            trim_spare(&mut self.cells[self.trim_cursor]);
            self.trim_cursor = (self.trim_cursor + 1) % self.cells.len();
        }
    }

    pub(crate) fn insert(&mut self, geometry: &GridGeometry, entry: BodyEntry) {
        self.cells[geometry.cell_index(entry.position)].push(entry);
        self.occupancy
            .add(entry.slot, geometry.coarse_index(entry.position));
        self.len += 1;
    }

    /// Which coarse cells each slot touches.
    pub(crate) fn occupancy(&self) -> &Occupancy {
        &self.occupancy
    }

    /// Removes the entry of `slot` with this `serial` (or its head) stored at `position`.
    /// Returns false if there was none, which would mean the index drifted from the bodies.
    pub(crate) fn remove(
        &mut self,
        geometry: &GridGeometry,
        position: Vec2,
        slot: u16,
        is_head: bool,
        serial: u32,
    ) -> bool {
        let cell = &mut self.cells[geometry.cell_index(position)];
        let found = cell.iter().position(|entry| {
            entry.slot == slot && entry.is_head == is_head && (is_head || entry.serial == serial)
        });
        match found {
            Some(index) => {
                cell.swap_remove(index);
                self.occupancy.remove(slot, geometry.coarse_index(position));
                self.len -= 1;
                true
            }
            None => false,
        }
    }

    /// Moves the head entry of `slot` from `old_position` to `new_position`.
    pub(crate) fn move_head(
        &mut self,
        geometry: &GridGeometry,
        slot: u16,
        old_position: Vec2,
        new_position: Vec2,
    ) {
        let old_cell = geometry.cell_index(old_position);
        let new_cell = geometry.cell_index(new_position);
        // Same grid cell means same coarse cell, so the occupancy needs no change.
        if old_cell == new_cell {
            if let Some(entry) = self.cells[old_cell]
                .iter_mut()
                .find(|entry| entry.slot == slot && entry.is_head)
            {
                entry.position = new_position;
            }
            return;
        }
        if self.remove(geometry, old_position, slot, true, 0) {
            let head = BodyEntry {
                position: new_position,
                slot,
                is_head: true,
                serial: 0,
            };
            self.insert(geometry, head);
        }
    }

    pub(crate) fn cell(&self, cell: usize) -> &[BodyEntry] {
        &self.cells[cell]
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Every entry, cell by cell (for consistency checks in tests).
    #[cfg(test)]
    pub(crate) fn iter(&self) -> impl Iterator<Item = &BodyEntry> {
        self.cells.iter().flatten()
    }

    /// Whether the occupancy map agrees with the entries (tests).
    #[cfg(test)]
    pub(crate) fn occupancy_matches(&self, geometry: &GridGeometry) -> bool {
        self.occupancy.matches(geometry, self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trimming_gives_back_what_a_cell_no_longer_uses_and_keeps_room_to_grow() {
        let mut cell: Vec<u32> = (0..1_000).collect();
        cell.truncate(10);
        trim_spare(&mut cell);
        assert!(
            cell.capacity() >= 20 && cell.capacity() < 40,
            "{}",
            cell.capacity()
        );
        assert_eq!(cell, (0..10).collect::<Vec<_>>());
        // A cell using a third of its capacity is busy, not wasteful: left alone.
        let mut busy: Vec<u32> = Vec::with_capacity(30);
        busy.extend(0..10);
        trim_spare(&mut busy);
        assert_eq!(busy.capacity(), 30);
        // An emptied cell keeps a small floor.
        let mut empty: Vec<u32> = Vec::with_capacity(500);
        trim_spare(&mut empty);
        assert!(empty.capacity() >= CELL_KEEP && empty.capacity() < 500);
    }

    #[test]
    fn a_full_round_of_trims_visits_every_cell() {
        let geometry = GridGeometry::new(3000.0, 64.0);
        let mut grid = BodyGrid::new(&geometry);
        let at = Vec2::new(10.0, 10.0);
        for serial in 0..2_000 {
            grid.insert(
                &geometry,
                BodyEntry {
                    position: at,
                    slot: 0,
                    is_head: false,
                    serial,
                },
            );
        }
        for serial in 0..2_000 {
            assert!(grid.remove(&geometry, at, 0, false, serial));
        }
        let cell = geometry.cell_index(at);
        assert!(grid.cells[cell].capacity() >= 2_000);
        grid.trim(geometry.cell_count());
        assert!(grid.cells[cell].capacity() < 2 * CELL_KEEP);
    }

    #[test]
    fn entries_land_in_their_cell_and_can_be_moved_and_removed() {
        let geometry = GridGeometry::new(1000.0, 64.0);
        let mut grid = BodyGrid::new(&geometry);
        let points = [
            Vec2::new(0.0, 0.0),
            Vec2::new(999.0, -999.0),
            Vec2::new(-500.0, 20.0),
            Vec2::new(f32::NAN, 3.0),
            Vec2::new(1.0e9, -1.0e9),
        ];
        for (serial, &position) in points.iter().enumerate() {
            let entry = BodyEntry {
                position,
                slot: 1,
                is_head: false,
                serial: serial as u32,
            };
            grid.insert(&geometry, entry);
        }
        let head = BodyEntry {
            position: Vec2::ZERO,
            slot: 1,
            is_head: true,
            serial: 0,
        };
        grid.insert(&geometry, head);
        assert_eq!(grid.len(), points.len() + 1);
        for (serial, &position) in points.iter().enumerate() {
            let cell = geometry.cell_index(position);
            assert!(
                grid.cell(cell)
                    .iter()
                    .any(|entry| entry.serial as usize == serial)
            );
        }
        let far = Vec2::new(300.0, 300.0);
        grid.move_head(&geometry, 1, Vec2::ZERO, far);
        let head_cell = grid.cell(geometry.cell_index(far));
        assert!(
            head_cell
                .iter()
                .any(|entry| entry.is_head && entry.position == far)
        );
        assert!(grid.remove(&geometry, points[2], 1, false, 2));
        assert!(
            !grid.remove(&geometry, points[2], 1, false, 2),
            "already gone"
        );
        assert!(
            !grid.remove(&geometry, points[1], 7, false, 1),
            "wrong slot"
        );
        assert_eq!(grid.len(), points.len());
        assert_eq!(grid.iter().count(), grid.len());
    }

    #[test]
    fn box_query_covers_the_cells_of_points_inside_it() {
        let geometry = GridGeometry::new(1000.0, 64.0);
        let range = geometry.cells_overlapping(Vec2::new(100.0, -50.0), Vec2::new(130.0, 70.0));
        let cells: Vec<usize> = geometry.cell_indices(range).collect();
        for point in [
            Vec2::new(-30.0, -120.0),
            Vec2::new(230.0, 20.0),
            Vec2::new(100.0, -50.0),
        ] {
            assert!(cells.contains(&geometry.cell_index(point)));
        }
    }
}
