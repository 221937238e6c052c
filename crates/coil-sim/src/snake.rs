//! Snake identity and state, with read accessors for the encoder and the runtime.
//!
//! Owns the per-snake data layout. Rules that change a snake (turning, boosting, growth,
//! death) live in `world.rs`, which is the only writer; everything public here is read-only.

use std::collections::VecDeque;

use crate::SEGMENT_SPACING;
use crate::math::Vec2;

/// A snake's identity within one World. Unique among live and reserved snakes; the World
/// hands ids out in increasing order and wraps only after 65,536, skipping ids still in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SnakeId(pub u16);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SnakeKind {
    Human,
    Bot,
}

/// Whether a slot of the World's snake table is in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SlotState {
    /// Unused; its buffers wait to be reused by the next spawn.
    Free,
    Alive,
    /// A human between death and respawn: the id stays reserved, the body is gone.
    Dead,
}

/// One snake. Read it through the accessors; only the World changes it.
#[derive(Debug, Clone)]
pub struct Snake {
    pub(crate) id: SnakeId,
    pub(crate) kind: SnakeKind,
    pub(crate) state: SlotState,
    pub(crate) name: String,
    pub(crate) skin: u8,
    pub(crate) head: Vec2,
    pub(crate) angle: f32,
    pub(crate) wanted_angle: f32,
    pub(crate) wants_boost: bool,
    pub(crate) boosting: bool,
    /// Set when oxygen ran out; cleared once it refills past the restart level.
    pub(crate) out_of_breath: bool,
    pub(crate) mass: f32,
    /// Length in segments; follows the mass smoothly.
    pub(crate) length: f32,
    pub(crate) girth: f32,
    pub(crate) score: u32,
    pub(crate) oxygen: f32,
    /// Points the head left behind, newest first, exactly SEGMENT_SPACING apart. One more
    /// than the visible body is kept so the partial tail segment has a direction.
    pub(crate) trail: VecDeque<Vec2>,
    /// Serial number of `trail.front()`; the point at `trail[i]` has serial `front - i`. The
    /// grid names trail points by serial because their indices shift as the trail grows.
    pub(crate) front_serial: u64,
    /// How many trail points (after the head) the grid currently holds for this snake.
    pub(crate) grid_trail_points: usize,
    /// A bot's current food target (pellet id, position) and how many thinks it has chased
    /// it; unused for humans.
    pub(crate) bot_food_target: Option<(u32, Vec2)>,
    pub(crate) bot_food_thinks: u8,
    /// Boost mass already taken from `mass` but not yet dropped as a pellet.
    pub(crate) boost_mass_to_drop: f32,
    /// Set during a step when the snake's death has been decided.
    pub(crate) dying: bool,
    /// An admin kill waiting for the next step, so the death arrives as a normal event.
    pub(crate) kill_requested: bool,
    /// A box holding every visible body point (without girth). Kept conservative: it grows
    /// every tick and is recomputed exactly every few ticks.
    pub(crate) bounds_min: Vec2,
    pub(crate) bounds_max: Vec2,
}

impl Snake {
    pub(crate) fn empty(id: SnakeId, kind: SnakeKind) -> Snake {
        Snake {
            id,
            kind,
            state: SlotState::Free,
            name: String::new(),
            skin: 0,
            head: Vec2::ZERO,
            angle: 0.0,
            wanted_angle: 0.0,
            wants_boost: false,
            boosting: false,
            out_of_breath: false,
            mass: 0.0,
            length: 0.0,
            girth: 0.0,
            score: 0,
            oxygen: 1.0,
            trail: VecDeque::new(),
            front_serial: 0,
            grid_trail_points: 0,
            bot_food_target: None,
            bot_food_thinks: 0,
            boost_mass_to_drop: 0.0,
            dying: false,
            kill_requested: false,
            bounds_min: Vec2::ZERO,
            bounds_max: Vec2::ZERO,
        }
    }

    pub fn id(&self) -> SnakeId {
        self.id
    }

    pub fn kind(&self) -> SnakeKind {
        self.kind
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn skin(&self) -> u8 {
        self.skin
    }

    pub fn head(&self) -> Vec2 {
        self.head
    }

    /// Heading in radians, in (-pi, pi], counter-clockwise from +x.
    pub fn angle(&self) -> f32 {
        self.angle
    }

    pub fn boosting(&self) -> bool {
        self.boosting
    }

    /// Length in body units (segments of SEGMENT_SPACING). It trails the mass smoothly.
    pub fn length(&self) -> f32 {
        self.length
    }

    /// Body radius.
    pub fn girth(&self) -> f32 {
        self.girth
    }

    /// Mass rounded down; for a dead human, the score of the run that just ended.
    pub fn score(&self) -> u32 {
        self.score
    }

    pub fn mass(&self) -> f32 {
        self.mass
    }

    /// Boost stamina, 0..=1.
    pub fn oxygen(&self) -> f32 {
        self.oxygen
    }

    /// The fraction (0..1) of one more segment to draw beyond the last point of `body()`,
    /// toward the previous tail position. It makes growth and shrinking look continuous.
    pub fn tail_extension(&self) -> f32 {
        if self.trail.len() > self.visible_trail_points() {
            self.length.fract()
        } else {
            0.0
        }
    }

    pub fn alive(&self) -> bool {
        self.state == SlotState::Alive
    }

    /// Trail points that are part of the visible body (the head is extra).
    pub(crate) fn visible_trail_points(&self) -> usize {
        (self.length as usize).min(self.trail.len())
    }

    /// The body, head first: the head, then trail points spaced exactly SEGMENT_SPACING
    /// apart (the head itself is 0..SEGMENT_SPACING ahead of the first trail point). Empty
    /// for a dead snake.
    pub fn body(&self) -> impl Iterator<Item = Vec2> + '_ {
        let alive = self.alive();
        let head = alive.then_some(self.head);
        let trail_points = if alive {
            self.visible_trail_points()
        } else {
            0
        };
        head.into_iter()
            .chain(self.trail.iter().take(trail_points).copied())
    }

    /// Number of points `body()` yields.
    pub fn body_len(&self) -> usize {
        if self.alive() {
            1 + self.visible_trail_points()
        } else {
            0
        }
    }

    /// Recomputes the exact bounding box of the visible body.
    pub(crate) fn refresh_bounds(&mut self) {
        let mut low = self.head;
        let mut high = self.head;
        for point in self.trail.iter().take(self.visible_trail_points()) {
            low = Vec2::new(low.x.min(point.x), low.y.min(point.y));
            high = Vec2::new(high.x.max(point.x), high.y.max(point.y));
        }
        self.bounds_min = low;
        self.bounds_max = high;
    }

    /// Grows the bounding box to cover `point` (cheap per-tick upkeep; `refresh_bounds`
    /// shrinks it back from time to time).
    pub(crate) fn extend_bounds(&mut self, point: Vec2) {
        self.bounds_min = Vec2::new(
            self.bounds_min.x.min(point.x),
            self.bounds_min.y.min(point.y),
        );
        self.bounds_max = Vec2::new(
            self.bounds_max.x.max(point.x),
            self.bounds_max.y.max(point.y),
        );
    }

    /// Whether any body point lies in the box `center ± half_extent`.
    pub(crate) fn has_point_in_box(&self, center: Vec2, half_extent: Vec2) -> bool {
        let box_min = center - half_extent;
        let box_max = center + half_extent;
        if self.bounds_max.x < box_min.x
            || self.bounds_min.x > box_max.x
            || self.bounds_max.y < box_min.y
            || self.bounds_min.y > box_max.y
        {
            return false;
        }
        self.body().any(|point| {
            point.x >= box_min.x
                && point.x <= box_max.x
                && point.y >= box_min.y
                && point.y <= box_max.y
        })
    }

    /// Lays out a straight fresh body behind `head` (used at spawn). `max_length` sizes the
    /// trail buffer once, so growing later never reallocates it.
    pub(crate) fn lay_out_body(&mut self, head: Vec2, angle: f32, max_length: f32) {
        self.head = head;
        self.angle = angle;
        self.wanted_angle = angle;
        self.trail.clear();
        self.trail.reserve(max_length as usize + 2);
        // A fresh serial range, so no point of this body shares a serial with the last one.
        self.front_serial += self.length as u64 + 2;
        let backward = -Vec2::from_angle(angle);
        for index in 1..=(self.length as usize + 1) {
            self.trail
                .push_back(head + backward * (SEGMENT_SPACING * index as f32));
        }
        self.refresh_bounds();
    }
}
