//! Frames of the snake arena: client Input (0x10) and Respawn (0x11); server Init (0x90),
//! State (0x91, every tick), Meta (0x92, about once a second) and Death (0x93).
//!
//! This module owns the byte layout and the reconstruction rules a client must mirror
//! (`docs/protocol.md` says the same in prose). It does not decide *what* a viewer is sent:
//! that is the per-viewer encoder in `coil-game`. Every decoder here works on untrusted bytes,
//! never panics, and never allocates more than a small multiple of the input length.
//!
//! Units: positions travel as integers in *position units* (`Init::position_quantum` world
//! units each), girth in `1 / GIRTH_STEPS_PER_UNIT` world units, length in whole body units,
//! angles in `1 / 65536` turns (input) or `1 / 256` turns (body directions).

pub mod state;

use crate::codec::{DecodeError, Reader, Writer};

pub use state::{
    Extension, MoveCode, PELLET_CELLS, PELLET_SIZES, PelletEntry, SnakeEntry, SnakeIdentity,
    StateFrame, body_direction, nearest_body_direction,
};

/// Client → server arena frame types.
pub mod client_type {
    pub const INPUT: u8 = 0x10;
    pub const RESPAWN: u8 = 0x11;
}

/// Server → client arena frame types.
pub mod server_type {
    pub const INIT: u8 = 0x90;
    pub const STATE: u8 = 0x91;
    pub const META: u8 = 0x92;
    pub const DEATH: u8 = 0x93;
}

/// Girth travels as `round(girth * GIRTH_STEPS_PER_UNIT)`.
pub const GIRTH_STEPS_PER_UNIT: f32 = 4.0;
/// Number of entries in the body direction table (one byte per body step).
pub const BODY_DIRECTIONS: usize = 256;
/// Longest leaderboard the meta frame carries.
pub const META_TOP_MAX: usize = 10;

/// Converts a heading in radians to the 16-bit angle of an input frame (`1/65536` turn).
pub fn angle_to_u16(radians: f32) -> u16 {
    if !radians.is_finite() {
        return 0;
    }
    let turns = (radians / std::f32::consts::TAU).rem_euclid(1.0);
    // `as` saturates; 65536 wraps to 0 through the u32 step.
    ((turns * 65536.0).round() as u32 & 0xffff) as u16
}

/// Converts the 16-bit angle of an input frame to radians in `[0, 2π)`.
pub fn angle_from_u16(angle: u16) -> f32 {
    f32::from(angle) * (std::f32::consts::TAU / 65536.0)
}

/// A client's steering input: the heading it wants and whether it boosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Input {
    /// Heading in `1/65536` turns, counter-clockwise from +x (see [`angle_to_u16`]).
    pub angle: u16,
    pub boost: bool,
}

/// One decoded client arena frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArenaClientFrame {
    Input(Input),
    Respawn,
}

/// Encodes an input frame: `[0x10][angle u16 LE][flags u8: bit0 boost]` (4 bytes).
pub fn encode_input(input: Input, out: &mut Vec<u8>) {
    let mut writer = Writer::new(out);
    writer.u8(client_type::INPUT);
    writer.u16(input.angle);
    writer.u8(u8::from(input.boost));
}

/// Encodes a respawn request: `[0x11]`.
pub fn encode_respawn(out: &mut Vec<u8>) {
    out.push(client_type::RESPAWN);
}

/// Decodes one client arena frame (the whole frame, type byte included, as the runtime hands
/// it to the game).
pub fn decode_client_frame(frame: &[u8]) -> Result<ArenaClientFrame, DecodeError> {
    let mut reader = Reader::new(frame);
    let frame_type = reader.u8().map_err(|_| DecodeError::Empty)?;
    let decoded = match frame_type {
        client_type::INPUT => {
            let angle = reader.u16()?;
            let flags = reader.u8()?;
            if flags > 1 {
                return Err(DecodeError::OutOfRange);
            }
            ArenaClientFrame::Input(Input {
                angle,
                boost: flags == 1,
            })
        }
        client_type::RESPAWN => ArenaClientFrame::Respawn,
        other => return Err(DecodeError::UnknownType(other)),
    };
    reader.finish()?;
    Ok(decoded)
}

/// Constants a client needs before the first state frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Init {
    /// The viewer's own snake (it keeps this id across respawns).
    pub snake_id: u16,
    /// Arena radius in world units; the arena is a circle centred on (0, 0).
    pub arena_radius: f32,
    /// State frames per second.
    pub tick_rate: u8,
    /// World units per position unit.
    pub position_quantum: f32,
    /// Distance between consecutive body points, in world units.
    pub segment_spacing: f32,
    /// Half width of the view box, in position units.
    pub view_half_width: u16,
    /// Half height of the view box, in position units.
    pub view_half_height: u16,
    /// Side of one pellet cell, in position units (pellet positions travel as cells).
    pub pellet_cell: u8,
}

fn write_f32(writer: &mut Writer<'_>, value: f32) {
    writer.u32(value.to_bits());
}

fn read_f32(reader: &mut Reader<'_>) -> Result<f32, DecodeError> {
    Ok(f32::from_bits(reader.u32()?))
}

/// Writes an init frame (20 bytes of payload).
pub fn write_init(writer: &mut Writer<'_>, init: &Init) {
    writer.frame(server_type::INIT, |w| {
        w.u16(init.snake_id);
        write_f32(w, init.arena_radius);
        w.u8(init.tick_rate);
        write_f32(w, init.position_quantum);
        write_f32(w, init.segment_spacing);
        w.u16(init.view_half_width);
        w.u16(init.view_half_height);
        w.u8(init.pellet_cell);
    });
}

fn decode_init(reader: &mut Reader<'_>) -> Result<Init, DecodeError> {
    let init = Init {
        snake_id: reader.u16()?,
        arena_radius: read_f32(reader)?,
        tick_rate: reader.u8()?,
        position_quantum: read_f32(reader)?,
        segment_spacing: read_f32(reader)?,
        view_half_width: reader.u16()?,
        view_half_height: reader.u16()?,
        pellet_cell: reader.u8()?,
    };
    let positive = |value: f32| value.is_finite() && value > 0.0;
    if !positive(init.position_quantum)
        || !positive(init.segment_spacing)
        || !init.arena_radius.is_finite()
        || init.pellet_cell == 0
        || init.tick_rate == 0
    {
        return Err(DecodeError::OutOfRange);
    }
    Ok(init)
}

/// One leaderboard row of a meta frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderboardEntry {
    pub name: String,
    pub score: u32,
}

/// The slow-changing numbers of a room and of the viewer's own run, about once a second.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Meta {
    /// The room's best live snakes, best first, at most [`META_TOP_MAX`].
    pub top: Vec<LeaderboardEntry>,
    /// The viewer's rank among live snakes (1 = best), 0 while it has no live snake.
    pub own_rank: u32,
    pub own_score: u32,
    /// Progress toward the next score point, `0..=255` for `0..1`.
    pub score_fraction: u8,
    /// Boost stamina, `0..=255` for `0..=1`.
    pub oxygen: u8,
    /// Own girth in `1 / GIRTH_STEPS_PER_UNIT` world units.
    pub girth: u32,
    /// Pending smooth tail growth, `0..=255` for `0..1`.
    pub tail_extension: u8,
    pub humans: u32,
    pub bots: u32,
}

/// Scales a value in `0..=1` to `0..=255` (out-of-range and NaN values are clamped).
pub fn unit_to_u8(value: f32) -> u8 {
    if value.is_nan() {
        return 0;
    }
    (value.clamp(0.0, 1.0) * 255.0).round() as u8
}

/// Writes a meta frame. Rows past [`META_TOP_MAX`] are not sent.
pub fn write_meta(writer: &mut Writer<'_>, meta: &Meta) {
    writer.frame(server_type::META, |w| {
        let top = &meta.top[..meta.top.len().min(META_TOP_MAX)];
        w.u8(top.len() as u8);
        for row in top {
            w.varint(row.score);
            w.short_str(&row.name);
        }
        w.varint(meta.own_rank);
        w.varint(meta.own_score);
        w.u8(meta.score_fraction);
        w.u8(meta.oxygen);
        w.varint(meta.girth);
        w.u8(meta.tail_extension);
        w.varint(meta.humans);
        w.varint(meta.bots);
    });
}

fn decode_meta(reader: &mut Reader<'_>) -> Result<Meta, DecodeError> {
    let count = usize::from(reader.u8()?);
    if count > META_TOP_MAX {
        return Err(DecodeError::OutOfRange);
    }
    let mut top = Vec::with_capacity(count);
    for _ in 0..count {
        let score = reader.varint()?;
        let name = reader.short_str()?.to_owned();
        top.push(LeaderboardEntry { name, score });
    }
    Ok(Meta {
        top,
        own_rank: reader.varint()?,
        own_score: reader.varint()?,
        score_fraction: reader.u8()?,
        oxygen: reader.u8()?,
        girth: reader.varint()?,
        tail_extension: reader.u8()?,
        humans: reader.varint()?,
        bots: reader.varint()?,
    })
}

/// The end of the viewer's run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Death {
    /// Name of the snake whose body the viewer hit; `None` for the arena edge.
    pub killer: Option<String>,
    pub final_score: u32,
    /// Rank the final score would have had among the live snakes at the moment of death.
    pub rank: u32,
}

/// Writes a death frame: `[has killer u8][killer name short_str if 1][score varint][rank varint]`.
pub fn write_death(writer: &mut Writer<'_>, death: &Death) {
    writer.frame(server_type::DEATH, |w| {
        match &death.killer {
            Some(name) => {
                w.u8(1);
                w.short_str(name);
            }
            None => w.u8(0),
        }
        w.varint(death.final_score);
        w.varint(death.rank);
    });
}

fn decode_death(reader: &mut Reader<'_>) -> Result<Death, DecodeError> {
    let killer = match reader.u8()? {
        0 => None,
        1 => Some(reader.short_str()?.to_owned()),
        _ => return Err(DecodeError::OutOfRange),
    };
    Ok(Death {
        killer,
        final_score: reader.varint()?,
        rank: reader.varint()?,
    })
}

/// Writes a state frame.
pub fn write_state(writer: &mut Writer<'_>, state: &StateFrame) {
    writer.frame(server_type::STATE, |w| state.write_payload(w));
}

/// One decoded server arena frame.
#[derive(Debug, Clone, PartialEq)]
pub enum ArenaServerFrame {
    Init(Init),
    State(StateFrame),
    Meta(Meta),
    Death(Death),
}

/// Decodes the payload of a server arena frame. Returns `Ok(None)` for a frame type this
/// module does not own (runtime frames, or newer game frames a client may skip).
pub fn decode_server_frame(
    frame_type: u8,
    payload: &[u8],
) -> Result<Option<ArenaServerFrame>, DecodeError> {
    let mut reader = Reader::new(payload);
    let frame = match frame_type {
        server_type::INIT => ArenaServerFrame::Init(decode_init(&mut reader)?),
        server_type::STATE => {
            let mut state = StateFrame::default();
            state.decode_payload_into(&mut reader)?;
            ArenaServerFrame::State(state)
        }
        server_type::META => ArenaServerFrame::Meta(decode_meta(&mut reader)?),
        server_type::DEATH => ArenaServerFrame::Death(decode_death(&mut reader)?),
        _ => return Ok(None),
    };
    reader.finish()?;
    Ok(Some(frame))
}

/// Decodes a state frame payload into `state`, reusing its buffers (the cheap path for
/// clients that apply a frame every tick).
pub fn decode_state_into(payload: &[u8], state: &mut StateFrame) -> Result<(), DecodeError> {
    let mut reader = Reader::new(payload);
    state.decode_payload_into(&mut reader)?;
    reader.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::server_frames;
    use proptest::prelude::*;

    fn one_frame(out: &[u8]) -> ArenaServerFrame {
        let frames: Vec<_> = server_frames(out).collect::<Result<_, _>>().unwrap();
        assert_eq!(frames.len(), 1);
        decode_server_frame(frames[0].0, frames[0].1)
            .unwrap()
            .unwrap()
    }

    proptest! {
        #[test]
        fn input_round_trips(angle in any::<u16>(), boost in any::<bool>()) {
            let mut out = Vec::new();
            encode_input(Input { angle, boost }, &mut out);
            prop_assert_eq!(out.len(), 4);
            prop_assert_eq!(decode_client_frame(&out), Ok(ArenaClientFrame::Input(Input { angle, boost })));
        }

        #[test]
        fn angle_conversion_is_within_one_step(radians in -20.0f32..20.0) {
            let back = angle_from_u16(angle_to_u16(radians));
            let difference = (back - radians).rem_euclid(std::f32::consts::TAU);
            let distance = difference.min(std::f32::consts::TAU - difference);
            prop_assert!(distance <= std::f32::consts::TAU / 65536.0 + 1e-3);
        }

        #[test]
        fn init_round_trips(snake_id in any::<u16>(), radius in 1.0f32..1e5, tick_rate in 1u8..=60, quantum in 0.01f32..100.0,
                            spacing in 0.1f32..100.0, half_width in any::<u16>(), half_height in any::<u16>(), cell in 1u8..=255) {
            let init = Init { snake_id, arena_radius: radius, tick_rate, position_quantum: quantum, segment_spacing: spacing,
                              view_half_width: half_width, view_half_height: half_height, pellet_cell: cell };
            let mut out = Vec::new();
            write_init(&mut Writer::new(&mut out), &init);
            // Type byte, one-byte length, 20 bytes of payload (docs/protocol.md 4.1).
            prop_assert_eq!(out.len(), 22);
            prop_assert_eq!(one_frame(&out), ArenaServerFrame::Init(init));
        }

        #[test]
        fn meta_round_trips(top in proptest::collection::vec(("[a-zA-Z0-9 ]{0,16}", any::<u32>()), 0..=10),
                            numbers in proptest::array::uniform6(any::<u32>()), bytes in proptest::array::uniform3(any::<u8>())) {
            let meta = Meta {
                top: top.into_iter().map(|(name, score)| LeaderboardEntry { name, score }).collect(),
                own_rank: numbers[0], own_score: numbers[1], score_fraction: bytes[0], oxygen: bytes[1],
                girth: numbers[2], tail_extension: bytes[2], humans: numbers[3], bots: numbers[4],
            };
            let mut out = Vec::new();
            write_meta(&mut Writer::new(&mut out), &meta);
            prop_assert_eq!(one_frame(&out), ArenaServerFrame::Meta(meta));
        }

        #[test]
        fn death_round_trips(killer in proptest::option::of("[a-zA-Z0-9 ]{1,16}"), score in any::<u32>(), rank in any::<u32>()) {
            let death = Death { killer, final_score: score, rank };
            let mut out = Vec::new();
            write_death(&mut Writer::new(&mut out), &death);
            prop_assert_eq!(one_frame(&out), ArenaServerFrame::Death(death));
        }

        #[test]
        fn client_decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..16)) {
            let _ = decode_client_frame(&bytes);
        }

        #[test]
        fn server_decoders_never_panic(frame_type in 0x90u8..=0x94, bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode_server_frame(frame_type, &bytes);
        }
    }

    #[test]
    fn client_frames_reject_garbage() {
        assert_eq!(decode_client_frame(&[]), Err(DecodeError::Empty));
        assert_eq!(
            decode_client_frame(&[0x10, 0, 0]),
            Err(DecodeError::Truncated)
        );
        assert_eq!(
            decode_client_frame(&[0x10, 0, 0, 2]),
            Err(DecodeError::OutOfRange)
        );
        assert_eq!(
            decode_client_frame(&[0x11, 0]),
            Err(DecodeError::TrailingBytes(1))
        );
        assert_eq!(
            decode_client_frame(&[0x12]),
            Err(DecodeError::UnknownType(0x12))
        );
        let mut out = Vec::new();
        encode_respawn(&mut out);
        assert_eq!(decode_client_frame(&out), Ok(ArenaClientFrame::Respawn));
    }

    #[test]
    fn meta_refuses_long_leaderboards_and_unknown_frames_are_skipped() {
        assert_eq!(
            decode_server_frame(server_type::META, &[11]),
            Err(DecodeError::OutOfRange)
        );
        assert_eq!(decode_server_frame(0x9f, &[1, 2, 3]), Ok(None));
        assert_eq!(
            decode_server_frame(server_type::DEATH, &[2]),
            Err(DecodeError::OutOfRange)
        );
    }

    #[test]
    fn unit_scaling_clamps() {
        assert_eq!(unit_to_u8(f32::NAN), 0);
        assert_eq!(unit_to_u8(-1.0), 0);
        assert_eq!(unit_to_u8(2.0), 255);
        assert_eq!(unit_to_u8(0.5), 128);
    }
}
