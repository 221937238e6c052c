//! Destructible walls stored as fine slices, and the grid walk every ray uses.
//!
//! A map cell (one player width) is split into `slices × slices` square slices (5 × 5 on the
//! shipped maps, 2 px each). Every slice has a material and its own hit points: gunfire
//! damages the first intact slice a ray meets, a breaching charge destroys every breakable
//! slice in its radius, steel never breaks. A slice is *intact* while its hit points are above
//! zero; vision, movement and sound treat intact slices as solid and destroyed ones as open,
//! which is how a player sees and hears through holes.
//!
//! The walls record which slices changed during a tick ([`Walls::changed`]) so the encoder
//! sends only those, and [`Walls::damaged_slices`] lists every slice that differs from the
//! pristine map for a full resync. Positions are integer sub-pixels (`math::SUBPIXELS_PER_PIXEL`
//! per pixel); outside the map counts as intact steel, so the map edge always blocks.

use crate::map::Map;
use crate::math::SUBPIXELS_PER_PIXEL;

/// What a wall slice is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Material {
    Empty = 0,
    Wood = 1,
    Concrete = 2,
    Steel = 3,
}

impl Material {
    /// Hit points of a fresh slice of this material (steel's never go down).
    pub fn full_hit_points(self) -> u8 {
        match self {
            Material::Empty => 0,
            Material::Wood => 25,
            Material::Concrete => 100,
            Material::Steel => 255,
        }
    }

    pub fn breakable(self) -> bool {
        matches!(self, Material::Wood | Material::Concrete)
    }

    pub fn from_index(index: u8) -> Option<Material> {
        match index {
            0 => Some(Material::Empty),
            1 => Some(Material::Wood),
            2 => Some(Material::Concrete),
            3 => Some(Material::Steel),
            _ => None,
        }
    }
}

/// The slice grid of one match.
#[derive(Debug, Clone)]
pub struct Walls {
    width: u32,
    height: u32,
    /// A slice's side in sub-pixels.
    slice_sub: i64,
    material: Vec<Material>,
    hit_points: Vec<u8>,
    /// Slices changed since `begin_tick`, sorted and deduplicated by `end_tick`.
    changed: Vec<u32>,
}

impl Walls {
    /// Fresh walls for a map.
    pub fn from_map(map: &Map) -> Walls {
        let slices = map.slices_per_cell;
        let width = map.width_cells * slices;
        let height = map.height_cells * slices;
        let mut material = Vec::with_capacity((width * height) as usize);
        for y in 0..height {
            for x in 0..width {
                material.push(map.cell(i64::from(x / slices), i64::from(y / slices)));
            }
        }
        let hit_points = material.iter().map(|m| m.full_hit_points()).collect();
        Walls {
            width,
            height,
            slice_sub: i64::from(map.slice_pixels() as i32 * SUBPIXELS_PER_PIXEL),
            material,
            hit_points,
            changed: Vec::new(),
        }
    }

    pub fn width(&self) -> u32 {
        self.width
    }

    pub fn height(&self) -> u32 {
        self.height
    }

    pub fn slice_count(&self) -> u32 {
        self.width * self.height
    }

    /// A slice's side in sub-pixels.
    pub fn slice_sub(&self) -> i64 {
        self.slice_sub
    }

    /// The map's size in sub-pixels.
    pub fn size_sub(&self) -> (i64, i64) {
        (
            i64::from(self.width) * self.slice_sub,
            i64::from(self.height) * self.slice_sub,
        )
    }

    fn index_of(&self, x: i64, y: i64) -> Option<usize> {
        if x < 0 || y < 0 || x >= i64::from(self.width) || y >= i64::from(self.height) {
            None
        } else {
            Some((y as usize) * self.width as usize + x as usize)
        }
    }

    /// Whether the slice at slice coordinates `(x, y)` blocks (outside the map always does).
    pub fn intact(&self, x: i64, y: i64) -> bool {
        match self.index_of(x, y) {
            Some(index) => self.hit_points[index] > 0,
            None => true,
        }
    }

    pub fn hit_points(&self, index: u32) -> u8 {
        self.hit_points.get(index as usize).copied().unwrap_or(0)
    }

    pub fn material(&self, index: u32) -> Material {
        self.material
            .get(index as usize)
            .copied()
            .unwrap_or(Material::Steel)
    }

    /// The slice coordinates of a sub-pixel point.
    pub fn slice_of(&self, x: i64, y: i64) -> (i64, i64) {
        (x.div_euclid(self.slice_sub), y.div_euclid(self.slice_sub))
    }

    /// The centre of a slice in sub-pixels.
    pub fn slice_centre(&self, index: u32) -> (i64, i64) {
        let x = i64::from(index % self.width.max(1));
        let y = i64::from(index / self.width.max(1));
        (
            x * self.slice_sub + self.slice_sub / 2,
            y * self.slice_sub + self.slice_sub / 2,
        )
    }

    /// Starts a tick's change record.
    pub fn begin_tick(&mut self) {
        self.changed.clear();
    }

    /// Sorts and deduplicates the tick's change record.
    pub fn end_tick(&mut self) {
        self.changed.sort_unstable();
        self.changed.dedup();
    }

    /// Slices whose hit points changed this tick, ascending (after `end_tick`).
    pub fn changed(&self) -> &[u32] {
        &self.changed
    }

    /// Takes `amount` hit points off a breakable slice; returns true if it broke now.
    pub fn damage(&mut self, index: u32, amount: u8) -> bool {
        let i = index as usize;
        if i >= self.material.len() || !self.material[i].breakable() || self.hit_points[i] == 0 {
            return false;
        }
        self.hit_points[i] = self.hit_points[i].saturating_sub(amount);
        self.changed.push(index);
        self.hit_points[i] == 0
    }

    /// Destroys every breakable slice whose centre lies within `radius` sub-pixels of
    /// `(x, y)`; returns how many broke.
    pub fn destroy_circle(&mut self, x: i64, y: i64, radius: i64) -> u32 {
        let (low_x, low_y) = self.slice_of(x - radius, y - radius);
        let (high_x, high_y) = self.slice_of(x + radius, y + radius);
        let mut broken = 0;
        for sy in low_y.max(0)..=high_y.min(i64::from(self.height) - 1) {
            for sx in low_x.max(0)..=high_x.min(i64::from(self.width) - 1) {
                let cx = sx * self.slice_sub + self.slice_sub / 2;
                let cy = sy * self.slice_sub + self.slice_sub / 2;
                if (cx - x) * (cx - x) + (cy - y) * (cy - y) > radius * radius {
                    continue;
                }
                let index = (sy as u32) * self.width + sx as u32;
                let i = index as usize;
                if self.material[i].breakable() && self.hit_points[i] > 0 {
                    self.hit_points[i] = 0;
                    self.changed.push(index);
                    broken += 1;
                }
            }
        }
        broken
    }

    /// Sets a slice's hit points as a client mirror learns them; false for a bad index.
    pub fn set_hit_points(&mut self, index: u32, hit_points: u8) -> bool {
        match self.hit_points.get_mut(index as usize) {
            Some(slot) => {
                *slot = hit_points;
                true
            }
            None => false,
        }
    }

    /// Every slice whose hit points differ from the pristine map, ascending, with its hit
    /// points now (what a client needs on top of the map file after a resync).
    pub fn damaged_slices(&self) -> impl Iterator<Item = (u32, u8)> + '_ {
        self.material
            .iter()
            .zip(&self.hit_points)
            .enumerate()
            .filter(|(_, (material, hp))| material.full_hit_points() != **hp)
            .map(|(index, (_, hp))| (index as u32, *hp))
    }

    /// Whether an axis-aligned box of half side `half` centred on `(x, y)` (sub-pixels,
    /// covering `[x - half, x + half)`) overlaps an intact slice or leaves the map.
    pub fn box_blocked(&self, x: i64, y: i64, half: i64) -> bool {
        let (low_x, low_y) = self.slice_of(x - half, y - half);
        let (high_x, high_y) = self.slice_of(x + half - 1, y + half - 1);
        for sy in low_y..=high_y {
            for sx in low_x..=high_x {
                if self.intact(sx, sy) {
                    return true;
                }
            }
        }
        false
    }

    /// Walks every slice the segment from `(x0, y0)` to `(x1, y1)` touches, in order, calling
    /// `visit(slice_x, slice_y, t)` with `t` in `[0, 1]` the fraction of the segment at which
    /// the slice is entered; stops early when `visit` returns false (and then returns false).
    ///
    /// This is an exact integer grid walk (Amanatides & Woo, with cross-multiplied
    /// comparisons instead of floating-point `t`): a point on a boundary belongs to the slice
    /// on its larger side, as `div_euclid` decides. Where the segment passes exactly through a
    /// slice corner both side slices are visited as well, so a ray can never slip between two
    /// diagonal wall slices. The walk takes at most `|Δx| + |Δy| + 1` steps in slices.
    pub fn walk(
        &self,
        (x0, y0): (i64, i64),
        (x1, y1): (i64, i64),
        mut visit: impl FnMut(i64, i64, f64) -> bool,
    ) -> bool {
        let s = self.slice_sub;
        let (mut cx, mut cy) = self.slice_of(x0, y0);
        let (ex, ey) = self.slice_of(x1, y1);
        let (dx, dy) = (x1 - x0, y1 - y0);
        let (step_x, step_y) = (dx.signum(), dy.signum());
        let (adx, ady) = (dx.abs(), dy.abs());
        // Distance (in sub-pixels along each axis) from the start to the next boundary.
        let mut next_x = match step_x {
            1 => (cx + 1) * s - x0,
            -1 => x0 - cx * s,
            _ => 0,
        };
        let mut next_y = match step_y {
            1 => (cy + 1) * s - y0,
            -1 => y0 - cy * s,
            _ => 0,
        };
        // Moving left from exactly a boundary leaves the slice at once (t = 0).
        if !visit(cx, cy, 0.0) {
            return false;
        }
        let budget = (ex - cx).abs() + (ey - cy).abs() + 2;
        for _ in 0..budget {
            if (cx, cy) == (ex, ey) {
                return true;
            }
            // Compare next_x / adx with next_y / ady without dividing.
            let x_first = if adx == 0 {
                false
            } else if ady == 0 {
                true
            } else {
                (next_x as i128) * (ady as i128) < (next_y as i128) * (adx as i128)
            };
            let tie = adx != 0
                && ady != 0
                && (next_x as i128) * (ady as i128) == (next_y as i128) * (adx as i128);
            if tie {
                let t = next_x as f64 / adx as f64;
                if !visit(cx + step_x, cy, t) || !visit(cx, cy + step_y, t) {
                    return false;
                }
                cx += step_x;
                cy += step_y;
                next_x += s;
                next_y += s;
                if !visit(cx, cy, t) {
                    return false;
                }
            } else if x_first {
                let t = next_x as f64 / adx as f64;
                cx += step_x;
                next_x += s;
                if !visit(cx, cy, t) {
                    return false;
                }
            } else {
                let t = next_y as f64 / ady as f64;
                cy += step_y;
                next_y += s;
                if !visit(cx, cy, t) {
                    return false;
                }
            }
        }
        true
    }

    /// True when no intact slice lies on the segment (line of sight).
    pub fn line_clear(&self, from: (i64, i64), to: (i64, i64)) -> bool {
        self.walk(from, to, |x, y, _| !self.intact(x, y))
    }

    /// The first intact slice on the segment: its index (None for the map edge) and the
    /// fraction `t` of the segment where the ray enters it.
    pub fn first_intact(&self, from: (i64, i64), to: (i64, i64)) -> Option<(Option<u32>, f64)> {
        let mut hit = None;
        self.walk(from, to, |x, y, t| {
            if self.intact(x, y) {
                hit = Some((self.index_of(x, y).map(|i| i as u32), t));
                false
            } else {
                true
            }
        });
        hit
    }

    /// How many intact slices lie on the segment, counting at most `cap`.
    pub fn count_intact(&self, from: (i64, i64), to: (i64, i64), cap: u32) -> u32 {
        let mut count = 0;
        self.walk(from, to, |x, y, _| {
            if self.intact(x, y) {
                count += 1;
            }
            count < cap
        });
        count
    }

    /// Folds the slice state into a hash (hit points only: materials come from the map).
    pub(crate) fn hash_into(&self, hasher: &mut crate::rng::StateHasher) {
        for chunk in self.hit_points.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            hasher.add(u64::from_le_bytes(word));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test_walls() -> Walls {
        let map = Map::built_in(1).unwrap();
        Walls::from_map(&map)
    }

    #[test]
    fn edges_and_steel_block_floor_does_not() {
        let walls = test_walls();
        assert!(walls.intact(-1, 5));
        assert!(walls.intact(0, 0)); // steel border
        assert!(!walls.intact(10, 10)); // floor
        assert_eq!(walls.width(), 320);
        assert_eq!(walls.slice_sub(), 16);
    }

    #[test]
    fn damage_breaks_wood_and_records_the_change_but_not_steel() {
        let mut walls = test_walls();
        // Cell (12, 6) is wood on the warehouse map.
        let index = (6 * 5) * walls.width() + 12 * 5;
        assert_eq!(walls.material(index), Material::Wood);
        walls.begin_tick();
        assert!(!walls.damage(index, 10));
        assert!(walls.damage(index, 20));
        assert!(!walls.damage(index, 20), "already broken");
        assert!(!walls.damage(0, 255), "steel");
        walls.end_tick();
        assert_eq!(walls.changed(), &[index]);
        assert_eq!(walls.damaged_slices().collect::<Vec<_>>(), vec![(index, 0)]);
        walls.begin_tick();
        assert!(walls.changed().is_empty());
    }

    #[test]
    fn a_charge_opens_a_round_hole_in_breakable_slices_only() {
        let mut walls = test_walls();
        // The warehouse's west wall at cell x = 22 between y = 11..=15.
        let (x, y) = ((22 * 80 + 40) as i64, (13 * 80) as i64);
        walls.begin_tick();
        let broken = walls.destroy_circle(x, y, 16 * 8);
        walls.end_tick();
        assert!(broken > 20, "{broken}");
        assert_eq!(walls.changed().len() as u32, broken);
        assert!(walls.line_clear((x - 200, y), (x + 200, y)));
        // The steel border is untouched by a charge next to it.
        walls.begin_tick();
        assert_eq!(walls.destroy_circle(40, 40, 200), 0);
    }

    #[test]
    fn walking_visits_cells_in_order_and_corner_neighbours() {
        let walls = test_walls();
        let mut seen = Vec::new();
        walls.walk((0, 0), (48, 48), |x, y, _| {
            seen.push((x, y));
            true
        });
        // Exactly diagonal through corners: each corner adds both side slices.
        assert_eq!(
            seen,
            vec![
                (0, 0),
                (1, 0),
                (0, 1),
                (1, 1),
                (2, 1),
                (1, 2),
                (2, 2),
                (3, 2),
                (2, 3),
                (3, 3)
            ]
        );
        let mut leftward = Vec::new();
        walls.walk((32, 5), (0, 5), |x, y, _| {
            leftward.push((x, y));
            true
        });
        assert_eq!(leftward, vec![(2, 0), (1, 0), (0, 0)]);
    }

    #[test]
    fn first_intact_reports_where_the_ray_enters_the_wall() {
        let walls = test_walls();
        // From open floor west toward the steel border at x < 80 sub.
        let (index, t) = walls.first_intact((400, 400), (0, 400)).unwrap();
        assert_eq!(index, Some(25 * 320 + 4));
        assert!((t - (400.0 - 80.0) / 400.0).abs() < 1e-9, "{t}");
        assert_eq!(walls.count_intact((400, 400), (0, 400), 99), 5);
        assert_eq!(walls.count_intact((400, 400), (0, 400), 2), 2);
    }

    #[test]
    fn boxes_collide_with_walls_and_the_edge() {
        let walls = test_walls();
        assert!(walls.box_blocked(60, 200, 36)); // overlaps the steel border
        assert!(!walls.box_blocked(200, 200, 36));
        assert!(walls.box_blocked(-100, 200, 36));
    }
}
