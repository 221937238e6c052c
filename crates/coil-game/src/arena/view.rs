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
    Extension, GIRTH_STEPS_PER_UNIT, MoveCode, PelletEntry, SnakeEntry, SnakeIdentity, StateFrame,
    body_direction, nearest_body_direction, state::PELLET_CELLS,
};
use coil_sim::{SEGMENT_SPACING, Snake, SnakeId, Vec2, World};

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
    /// Eaten and new pellets are reconciled every this many frames per viewer (the cull runs
    /// every frame on both sides). Pellet reconciliation is most of the encode cost, and
    /// food appearing or vanishing 50 ms late is invisible in play.
    pub pellet_interval: u8,
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
            pellet_interval: 2,
        }
    }
}

impl ViewSettings {
    pub fn quantize(&self, value: f32) -> i32 {
        let scaled = (value / self.position_quantum).round();
        if scaled.is_finite() {
            scaled.clamp(-(1 << 30) as f32, (1 << 30) as f32) as i32
        } else {
            0
        }
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

    /// Pellet cells across the view box on each axis (cells that straddle the far edge are
    /// not used, so every stored pellet lies inside the box).
    pub fn pellet_cells(&self) -> [i32; 2] {
        let cell = i32::from(self.pellet_cell.max(1));
        let across = |half: u16| ((2 * i32::from(half)) / cell).min(i32::from(PELLET_CELLS));
        [across(self.view_half_width), across(self.view_half_height)]
    }
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
    let steps = (girth * GIRTH_STEPS_PER_UNIT).round();
    if steps.is_finite() {
        steps.clamp(0.0, 1.0e6) as u32
    } else {
        0
    }
}

/// Pellet size class on the wire: the value rounded, `0..=15`.
pub fn pellet_size_class(value: f32) -> u8 {
    if value.is_finite() {
        value.round().clamp(0.0, 15.0) as u8
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
    pellets_in_view: Vec<(u32, [i32; 2], u8, u8)>,
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
    frames_encoded: u64,
}

impl ViewerState {
    /// Forgets everything, as a client does when it receives an init frame.
    pub fn reset(&mut self) {
        self.known_snakes.clear();
        self.known_pellets.clear();
        self.identities_sent.clear();
        self.center = [0, 0];
        self.frames_encoded = 0;
    }

    /// The view centre the client uses, in position units.
    pub fn center(&self) -> [i32; 2] {
        self.center
    }

    pub fn known_snake_count(&self) -> usize {
        self.known_snakes.len()
    }

    /// Whether the last frame reconciled pellets (on other frames eaten pellets may still be
    /// listed and new ones missing until the next reconciliation).
    pub fn pellets_reconciled_last_frame(&self, settings: &ViewSettings) -> bool {
        self.frames_encoded > 0 && (self.frames_encoded - 1) % u64::from(settings.pellet_interval.max(1)) == 0
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
        scratch.inner.clear();
        scratch.outer.clear();
        world.for_each_snake_near(center_world, half, |snake| scratch.inner.push(snake.id().0));
        let outer_half = Vec2::new(half.x + settings.keep_margin, half.y + settings.keep_margin);
        world.for_each_snake_near(center_world, outer_half, |snake| {
            scratch.outer.push(snake.id().0)
        });
        scratch.inner.sort_unstable();
        scratch.outer.sort_unstable();

        self.encode_snakes(world, settings, scratch);
        // The first frame after a reset always carries pellets; later ones every
        // `pellet_interval` frames.
        let reconcile = self.frames_encoded % u64::from(settings.pellet_interval.max(1)) == 0;
        self.encode_pellets(world, settings, scratch, reconcile);
        self.frames_encoded += 1;
        &self.frame
    }

    fn encode_snakes(
        &mut self,
        world: &World,
        settings: &ViewSettings,
        scratch: &mut EncoderScratch,
    ) {
        // Removals: out of the outer box, dead, or jumped (respawned / recycled id).
        scratch.out_of_date.clear();
        let frame = &mut self.frame;
        self.known_snakes.retain(|known| {
            let keep = scratch.outer.binary_search(&known.id).is_ok()
                && world.snake(SnakeId(known.id)).is_some_and(|snake| {
                    let head = settings.quantize_point(snake.head());
                    let predicted = [
                        known.head[0] + known.velocity[0],
                        known.head[1] + known.velocity[1],
                    ];
                    (head[0] - predicted[0])
                        .abs()
                        .max((head[1] - predicted[1]).abs())
                        <= settings.teleport_distance
                });
            if !keep {
                frame.removed.push(known.id);
            }
            keep
        });

        // Moves, against the client's prediction `head + velocity`.
        for known in &mut self.known_snakes {
            let Some(snake) = world.snake(SnakeId(known.id)) else {
                continue;
            };
            let head = settings.quantize_point(snake.head());
            let residual = [
                head[0] - (known.head[0] + known.velocity[0]),
                head[1] - (known.head[1] + known.velocity[1]),
            ];
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
        }

        // Entries: in the view box and not known.
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
        scratch: &mut EncoderScratch,
        reconcile: bool,
    ) {
        let [half_width, half_height] = [
            i32::from(settings.view_half_width),
            i32::from(settings.view_half_height),
        ];
        let min = [self.center[0] - half_width, self.center[1] - half_height];
        let max = [self.center[0] + half_width, self.center[1] + half_height];
        let inside =
            |p: [i32; 2]| p[0] >= min[0] && p[0] <= max[0] && p[1] >= min[1] && p[1] <= max[1];
        // 1. The cull both sides apply without any bytes on the wire.
        self.known_pellets.retain(|pellet| inside(pellet.position));
        if !reconcile {
            return;
        }

        // 2. What is really there (a little beyond the box, so a known pellet on the edge is
        //    not mistaken for an eaten one).
        let cell = i32::from(settings.pellet_cell.max(1));
        let cells = settings.pellet_cells();
        let quantum = settings.position_quantum;
        scratch.pellets_in_view.clear();
        let center_world = Vec2::new(
            self.center[0] as f32 * quantum,
            self.center[1] as f32 * quantum,
        );
        let margin = (cell as f32 + 1.0) * quantum;
        let half = settings.view_half_extent();
        world.for_each_pellet_in(
            center_world,
            Vec2::new(half.x + margin, half.y + margin),
            |pellet| {
                let cell_x = ((pellet.pos.x / quantum - min[0] as f32) / cell as f32).floor();
                let cell_y = ((pellet.pos.y / quantum - min[1] as f32) / cell as f32).floor();
                let in_cells = cell_x >= 0.0
                    && cell_y >= 0.0
                    && cell_x < cells[0] as f32
                    && cell_y < cells[1] as f32;
                let packed = if in_cells {
                    [cell_x as i32, cell_y as i32]
                } else {
                    [-1, -1]
                };
                scratch.pellets_in_view.push((
                    pellet.id,
                    packed,
                    pellet.color & 0xf,
                    pellet_size_class(pellet.value),
                ));
            },
        );
        scratch
            .pellets_in_view
            .sort_unstable_by_key(|entry| entry.0);
        scratch.pellet_seen.clear();
        scratch
            .pellet_seen
            .resize(scratch.pellets_in_view.len(), false);

        // 3. Eaten (or gone) pellets, by index in the culled list.
        let frame = &mut self.frame;
        let mut index = 0u32;
        self.known_pellets.retain(|known| {
            let found = scratch
                .pellets_in_view
                .binary_search_by_key(&known.id, |entry| entry.0);
            let keep = match found {
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

        // 4. New pellets, appended in id order.
        for (position, &(id, cell_xy, color, size)) in scratch.pellets_in_view.iter().enumerate() {
            if scratch.pellet_seen[position] || cell_xy[0] < 0 {
                continue;
            }
            frame.new_pellets.push(PelletEntry {
                cell_x: cell_xy[0] as u16,
                cell_y: cell_xy[1] as u16,
                color,
                size,
            });
            let stored = [
                min[0] + cell_xy[0] * cell + cell / 2,
                min[1] + cell_xy[1] * cell + cell / 2,
            ];
            self.known_pellets.push(KnownPellet {
                id,
                position: stored,
            });
        }
    }
}
