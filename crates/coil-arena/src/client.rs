//! A Rust arena client: applies server messages and exposes the world the client
//! reconstructed. Integration tests use it to check what players see; the load generator uses
//! it for thousands of simulated players, so applying a state frame reuses every buffer and
//! body tracking can be switched off.
//!
//! It follows `docs/protocol.md` ("Applying a state frame") independently of the server's
//! [`super::view::ViewerState`]; the property tests hold the two to the same result. It must
//! never panic on hostile bytes: every inconsistency is a [`MirrorError`], after which the
//! mirror should be discarded (a real client reconnects).

use std::collections::{HashMap, VecDeque};

use coil_protocol::DecodeError;
use coil_protocol::arena::{
    ArenaServerFrame, Death, Init, Meta, MoveCode, SnakeIdentity, StateFrame, body_direction,
    decode_server_frame, decode_state_into, server_type,
};
use coil_protocol::codec::server_frames;
use coil_protocol::envelope::{RESUME_TOKEN_LEN, ServerEnvelope, decode_server_envelope};
use thiserror::Error;

/// Why a server message could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MirrorError {
    #[error("undecodable frame: {0}")]
    Decode(#[from] DecodeError),
    #[error("state frame before the init frame")]
    StateBeforeInit,
    #[error("state frame does not fit the mirrored state: {0}")]
    Desync(&'static str),
}

/// Most identities (names, skins) the mirror remembers before starting over; the server
/// re-sends a name whenever it forgot it sent one, so forgetting here is only a display gap.
const MAX_IDENTITIES: usize = 4096;
/// Longest trail the mirror keeps per snake, whatever length a frame claims.
const MAX_TRAIL_POINTS: usize = 4096;
/// Most trail points one head move may add; a bigger jump restarts the trail at the head.
const MAX_POINTS_PER_MOVE: usize = 64;

/// A snake the client knows.
#[derive(Debug, Clone)]
pub struct MirrorSnake {
    pub id: u16,
    /// Head in position units.
    pub head: [i32; 2],
    /// Last head movement per tick, in position units (the prediction base).
    pub velocity: [i32; 2],
    /// Whole body units.
    pub length: u32,
    /// `1 / GIRTH_STEPS_PER_UNIT` world units.
    pub girth: u32,
    pub boosting: bool,
    /// Trail points behind the head in world units, newest first (empty when bodies are not
    /// tracked).
    trail: VecDeque<[f32; 2]>,
}

impl MirrorSnake {
    /// Head in world units.
    pub fn head_world(&self, init: &Init) -> [f32; 2] {
        [
            self.head[0] as f32 * init.position_quantum,
            self.head[1] as f32 * init.position_quantum,
        ]
    }

    /// Heading in radians, from the last movement (0 when it has not moved).
    pub fn angle(&self) -> f32 {
        (self.velocity[1] as f32).atan2(self.velocity[0] as f32)
    }

    /// The visible body in world units, head first (only the head when bodies are not tracked).
    pub fn body<'a>(&'a self, init: &Init) -> impl Iterator<Item = [f32; 2]> + 'a {
        std::iter::once(self.head_world(init))
            .chain(self.trail.iter().take(self.length as usize).copied())
    }
}

/// A pellet the client knows, in position units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MirrorPellet {
    pub position: [i32; 2],
    pub color: u8,
    pub size: u8,
}

/// The reconstructed world of one client.
#[derive(Debug, Default)]
pub struct ClientMirror {
    init: Option<Init>,
    track_bodies: bool,
    /// Ascending ids.
    snakes: Vec<MirrorSnake>,
    identities: HashMap<u16, SnakeIdentity>,
    pellets: Vec<MirrorPellet>,
    center: [i32; 2],
    meta: Option<Meta>,
    death: Option<Death>,
    last_error: Option<(u16, String)>,
    last_notice: Option<(u8, u32)>,
    session: Option<([u8; RESUME_TOKEN_LEN], u32)>,
    states_applied: u64,
    frame: StateFrame,
    entering: Vec<MirrorSnake>,
}

impl ClientMirror {
    /// A mirror that also reconstructs every snake's body.
    pub fn new() -> ClientMirror {
        ClientMirror {
            track_bodies: true,
            ..ClientMirror::default()
        }
    }

    /// A mirror that tracks heads, lengths and pellets only (cheaper, for load generation).
    pub fn without_bodies() -> ClientMirror {
        ClientMirror {
            track_bodies: false,
            ..ClientMirror::default()
        }
    }

    pub fn init(&self) -> Option<&Init> {
        self.init.as_ref()
    }

    /// Known snakes, ascending ids.
    pub fn snakes(&self) -> &[MirrorSnake] {
        &self.snakes
    }

    pub fn snake(&self, id: u16) -> Option<&MirrorSnake> {
        self.snakes
            .binary_search_by_key(&id, |snake| snake.id)
            .ok()
            .map(|index| &self.snakes[index])
    }

    /// The viewer's own snake, while it is alive and known.
    pub fn own_snake(&self) -> Option<&MirrorSnake> {
        self.snake(self.init?.snake_id)
    }

    /// Name and skin of a snake, once the server has sent them.
    pub fn identity(&self, id: u16) -> Option<&SnakeIdentity> {
        self.identities.get(&id)
    }

    pub fn pellets(&self) -> &[MirrorPellet] {
        &self.pellets
    }

    /// Centre of the view box, in position units.
    pub fn center(&self) -> [i32; 2] {
        self.center
    }

    pub fn meta(&self) -> Option<&Meta> {
        self.meta.as_ref()
    }

    /// The most recent death frame (kept until [`ClientMirror::take_death`]).
    pub fn death(&self) -> Option<&Death> {
        self.death.as_ref()
    }

    pub fn take_death(&mut self) -> Option<Death> {
        self.death.take()
    }

    /// The last error frame: `(code, reason)`.
    pub fn last_error(&self) -> Option<&(u16, String)> {
        self.last_error.as_ref()
    }

    /// The last notice frame: `(kind, deadline_ms)`.
    pub fn last_notice(&self) -> Option<(u8, u32)> {
        self.last_notice
    }

    /// The last session frame: the reconnect token and its grace in milliseconds (modes that
    /// hold seats for a reconnect).
    pub fn session(&self) -> Option<([u8; RESUME_TOKEN_LEN], u32)> {
        self.session
    }

    pub fn states_applied(&self) -> u64 {
        self.states_applied
    }

    /// Applies one server WebSocket message (one or more frames).
    pub fn apply_message(&mut self, message: &[u8]) -> Result<(), MirrorError> {
        for frame in server_frames(message) {
            let (frame_type, payload) = frame?;
            self.apply_frame(frame_type, payload)?;
        }
        Ok(())
    }

    fn apply_frame(&mut self, frame_type: u8, payload: &[u8]) -> Result<(), MirrorError> {
        if frame_type == server_type::STATE {
            let mut frame = std::mem::take(&mut self.frame);
            let result = decode_state_into(payload, &mut frame)
                .map_err(MirrorError::from)
                .and_then(|()| self.apply_state(&frame));
            self.frame = frame;
            return result;
        }
        if let Some(envelope) = decode_server_envelope(frame_type, payload)? {
            match envelope {
                ServerEnvelope::Error { code, reason } => {
                    self.last_error = Some((code, reason.to_owned()))
                }
                ServerEnvelope::Notice { kind, deadline_ms } => {
                    self.last_notice = Some((kind, deadline_ms))
                }
                ServerEnvelope::Session { token, grace_ms } => {
                    self.session = Some((token, grace_ms))
                }
                ServerEnvelope::Pong { .. } | ServerEnvelope::ScoreReceipt { .. } => {}
            }
            return Ok(());
        }
        match decode_server_frame(frame_type, payload)? {
            Some(ArenaServerFrame::Init(init)) => {
                // An init frame starts the client over (join, or the server's resync).
                self.init = Some(init);
                self.snakes.clear();
                self.pellets.clear();
                self.identities.clear();
                self.center = [0, 0];
            }
            Some(ArenaServerFrame::Meta(meta)) => self.meta = Some(meta),
            Some(ArenaServerFrame::Death(death)) => self.death = Some(death),
            // Decoded above; newer game frames are skipped.
            Some(ArenaServerFrame::State(_)) | None => {}
        }
        Ok(())
    }

    fn apply_state(&mut self, frame: &StateFrame) -> Result<(), MirrorError> {
        let init = self.init.ok_or(MirrorError::StateBeforeInit)?;
        let quantum = init.position_quantum;
        let spacing = init.segment_spacing;

        // 1. Removed snakes.
        for id in &frame.removed {
            let index = self
                .snakes
                .binary_search_by_key(id, |snake| snake.id)
                .map_err(|_| MirrorError::Desync("removed an unknown snake"))?;
            self.snakes.remove(index);
        }

        // 2. Moves of the snakes known before this frame.
        if frame.moves.len() != self.snakes.len() {
            return Err(MirrorError::Desync("move count differs from known snakes"));
        }
        let mut extensions = frame.extensions.iter();
        for (snake, code) in self.snakes.iter_mut().zip(&frame.moves) {
            let residual = match code {
                MoveCode::Residual { dx, dy } => [i32::from(*dx), i32::from(*dy)],
                MoveCode::Extended => {
                    let extension = extensions
                        .next()
                        .ok_or(MirrorError::Desync("missing extension"))?;
                    snake.length = snake.length.wrapping_add_signed(extension.length_delta);
                    snake.girth = snake.girth.wrapping_add_signed(extension.girth_delta);
                    snake.boosting ^= extension.boost_toggled;
                    extension.residual
                }
            };
            let head = [
                snake.head[0]
                    .wrapping_add(snake.velocity[0])
                    .wrapping_add(residual[0]),
                snake.head[1]
                    .wrapping_add(snake.velocity[1])
                    .wrapping_add(residual[1]),
            ];
            snake.velocity = [
                head[0].wrapping_sub(snake.head[0]),
                head[1].wrapping_sub(snake.head[1]),
            ];
            snake.head = head;
            if self.track_bodies {
                advance_trail(snake, quantum, spacing);
            }
        }

        // 3. Entered snakes.
        self.entering.clear();
        for (index, entry) in frame.entered.iter().enumerate() {
            if self
                .snakes
                .binary_search_by_key(&entry.id, |snake| snake.id)
                .is_ok()
            {
                return Err(MirrorError::Desync("entered a known snake"));
            }
            if let Some(identity) = &entry.identity {
                if self.identities.len() >= MAX_IDENTITIES {
                    self.identities.clear();
                }
                self.identities.insert(entry.id, identity.clone());
            }
            let mut trail = VecDeque::new();
            if self.track_bodies {
                let mut point = [
                    entry.head[0] as f32 * quantum,
                    entry.head[1] as f32 * quantum,
                ];
                for &k in frame
                    .body_of(index)
                    .ok_or(MirrorError::Desync("body out of range"))?
                    .iter()
                    .take(MAX_TRAIL_POINTS)
                {
                    let [dx, dy] = body_direction(k);
                    point = [point[0] + dx * spacing, point[1] + dy * spacing];
                    trail.push_back(point);
                }
            }
            self.entering.push(MirrorSnake {
                id: entry.id,
                head: entry.head,
                velocity: entry.velocity,
                length: entry.length,
                girth: entry.girth,
                boosting: entry.boosting,
                trail,
            });
        }
        if !self.entering.is_empty() {
            self.snakes.append(&mut self.entering);
            self.snakes.sort_by_key(|snake| snake.id);
            if self.snakes.windows(2).any(|pair| pair[0].id == pair[1].id) {
                return Err(MirrorError::Desync("entered the same snake twice"));
            }
        }

        // 4. The view follows the own head.
        if let Some(own) = self.own_snake() {
            self.center = own.head;
        }

        // 5. Cull pellets outside the view box.
        let half = [
            i32::from(init.view_half_width),
            i32::from(init.view_half_height),
        ];
        let min = [
            self.center[0].wrapping_sub(half[0]),
            self.center[1].wrapping_sub(half[1]),
        ];
        let max = [
            self.center[0].wrapping_add(half[0]),
            self.center[1].wrapping_add(half[1]),
        ];
        self.pellets.retain(|pellet| {
            let [x, y] = pellet.position;
            x >= min[0] && x <= max[0] && y >= min[1] && y <= max[1]
        });

        // 6. Eaten pellets, by index into the culled list.
        if let Some(&last) = frame.eaten.last()
            && last as usize >= self.pellets.len()
        {
            return Err(MirrorError::Desync("eaten pellet index out of range"));
        }
        let mut eaten = frame.eaten.iter().peekable();
        let mut index = 0u32;
        self.pellets.retain(|_| {
            let gone = eaten.next_if_eq(&&index).is_some();
            index += 1;
            !gone
        });

        // 7. New pellets, at the centre of their cell on the global pellet grid.
        let cell = i32::from(init.pellet_cell.max(1));
        let base = [min[0].div_euclid(cell), min[1].div_euclid(cell)];
        for pellet in &frame.new_pellets {
            let cell_x = base[0].wrapping_add(i32::from(pellet.cell_x));
            let cell_y = base[1].wrapping_add(i32::from(pellet.cell_y));
            self.pellets.push(MirrorPellet {
                position: [
                    cell_x.wrapping_mul(cell).wrapping_add(cell / 2),
                    cell_y.wrapping_mul(cell).wrapping_add(cell / 2),
                ],
                color: pellet.color,
                size: pellet.size,
            });
        }
        self.states_applied += 1;
        Ok(())
    }
}

/// Lays trail points behind a moved head the way the simulation does: one point every
/// `spacing` units of travel, newest first, trimmed to the snake's length.
fn advance_trail(snake: &mut MirrorSnake, quantum: f32, spacing: f32) {
    let head = [
        snake.head[0] as f32 * quantum,
        snake.head[1] as f32 * quantum,
    ];
    let Some(&newest) = snake.trail.front() else {
        snake.trail.push_front(head);
        return;
    };
    let mut newest = newest;
    let mut added = 0;
    loop {
        let (dx, dy) = (head[0] - newest[0], head[1] - newest[1]);
        let distance = (dx * dx + dy * dy).sqrt();
        if distance.is_nan() || distance < spacing || spacing <= 0.0 {
            break;
        }
        if added == MAX_POINTS_PER_MOVE {
            snake.trail.clear();
            snake.trail.push_front(head);
            break;
        }
        newest = [
            newest[0] + dx / distance * spacing,
            newest[1] + dy / distance * spacing,
        ];
        snake.trail.push_front(newest);
        added += 1;
    }
    let keep = (snake.length as usize)
        .saturating_add(1)
        .min(MAX_TRAIL_POINTS);
    snake.trail.truncate(keep);
}
