//! The uniform spatial grid: cell geometry, and the per-tick index of every snake body point.
//!
//! Owns cell arithmetic and the body-point index used for head-vs-body collisions, bot sensing
//! and spawn safety. The index is rebuilt once per tick with a counting sort into flat `Vec`s
//! that keep their capacity, so it allocates nothing after warm-up. It must never be used as
//! the source of truth for a snake: entries are a snapshot taken right after movement.

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

/// One body point in the index. `segment` 0 is the head.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct BodyEntry {
    pub(crate) position: Vec2,
    pub(crate) slot: u16,
    pub(crate) segment: u16,
}

/// Body points bucketed by cell: the points of cell `c` are
/// `entries[cell_starts[c]..cell_starts[c + 1]]`.
#[derive(Debug, Default)]
pub(crate) struct BodyGrid {
    cell_starts: Vec<u32>,
    write_cursors: Vec<u32>,
    entries: Vec<BodyEntry>,
    /// The unsorted points of this rebuild, kept between ticks for their capacity.
    pending: Vec<(u32, BodyEntry)>,
}

impl BodyGrid {
    pub(crate) fn new(geometry: &GridGeometry) -> BodyGrid {
        BodyGrid {
            cell_starts: vec![0; geometry.cell_count() + 1],
            write_cursors: vec![0; geometry.cell_count()],
            entries: Vec::new(),
            pending: Vec::new(),
        }
    }

    /// Starts a rebuild; follow with `push` for every point and then `finish`.
    pub(crate) fn begin(&mut self) {
        self.pending.clear();
    }

    pub(crate) fn push(&mut self, geometry: &GridGeometry, entry: BodyEntry) {
        let cell = geometry.cell_index(entry.position) as u32;
        self.pending.push((cell, entry));
    }

    /// Counting sort of the pushed points into their cells (stable, so the order inside a
    /// cell follows push order and the index is deterministic).
    pub(crate) fn finish(&mut self) {
        self.cell_starts.fill(0);
        for &(cell, _) in &self.pending {
            self.cell_starts[cell as usize + 1] += 1;
        }
        for index in 1..self.cell_starts.len() {
            self.cell_starts[index] += self.cell_starts[index - 1];
        }
        let cell_count = self.write_cursors.len();
        self.write_cursors
            .copy_from_slice(&self.cell_starts[..cell_count]);
        self.entries.clear();
        self.entries
            .resize(self.pending.len(), BodyEntry::default());
        for &(cell, entry) in &self.pending {
            let cursor = &mut self.write_cursors[cell as usize];
            self.entries[*cursor as usize] = entry;
            *cursor += 1;
        }
    }

    pub(crate) fn cell(&self, cell: usize) -> &[BodyEntry] {
        let start = self.cell_starts[cell] as usize;
        let end = self.cell_starts[cell + 1] as usize;
        &self.entries[start..end]
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_point_lands_in_the_cell_that_covers_it() {
        let geometry = GridGeometry::new(1000.0, 64.0);
        let mut grid = BodyGrid::new(&geometry);
        grid.begin();
        let points = [
            Vec2::new(0.0, 0.0),
            Vec2::new(999.0, -999.0),
            Vec2::new(-500.0, 20.0),
            Vec2::new(f32::NAN, 3.0),
            Vec2::new(1.0e9, -1.0e9),
        ];
        for (segment, &position) in points.iter().enumerate() {
            grid.push(
                &geometry,
                BodyEntry {
                    position,
                    slot: 1,
                    segment: segment as u16,
                },
            );
        }
        grid.finish();
        assert_eq!(grid.len(), points.len());
        for (segment, &position) in points.iter().enumerate() {
            let cell = geometry.cell_index(position);
            assert!(
                grid.cell(cell)
                    .iter()
                    .any(|entry| entry.segment as usize == segment)
            );
        }
        let total: usize = (0..geometry.cell_count())
            .map(|cell| grid.cell(cell).len())
            .sum();
        assert_eq!(total, points.len());
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
