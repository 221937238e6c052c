//! The state frame (0x91): what changed, for one viewer, since that viewer's previous state
//! frame. This module owns the layout and the decoder; which changes go in is decided by the
//! per-viewer encoder in `coil-game`, and how a client applies them is specified in
//! `docs/protocol.md` ("Applying a state frame") and implemented by `coil-game`'s
//! `ClientMirror`.
//!
//! Layout, in order:
//! 1. removed snakes: `count varint`, then `id u16 LE` each;
//! 2. entered snakes: `count varint`, then one [`SnakeEntry`] each (body steps inline);
//! 3. moves: `count varint`, then `ceil(count / 2)` bytes of 4-bit [`MoveCode`]s, low nibble
//!    first (an odd count pads the last high nibble with 0), one per snake the client already
//!    knew, in ascending id order;
//! 4. one [`Extension`] for every [`MoveCode::Extended`], in the same order;
//! 5. eaten pellets: `count varint`, then ascending indices into the client's pellet list as
//!    gaps (`first index`, then `index - previous - 1`), varints;
//! 6. new pellets: `count varint`, then one packed 3-byte [`PelletEntry`] each.
//!
//! The decoder reuses the frame's buffers and never reserves capacity from a length field, so
//! hostile counts cost at most the bytes actually present.

use std::sync::OnceLock;

use crate::codec::{DecodeError, Reader, Writer};

/// A viewer's first sight of a snake's name and skin (sent once per snake per connection).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnakeIdentity {
    pub skin: u8,
    pub name: String,
}

/// A snake entering the viewer's view, sent in full.
///
/// Wire: `id u16 LE`, `flags u8` (bit0 identity follows, bit1 boosting, other bits 0),
/// [`skin u8`, `name short_str`], `length varint`, `girth varint`, `head x svarint`,
/// `head y svarint`, `velocity x svarint`, `velocity y svarint`, `body count varint`, then
/// `body count` direction bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnakeEntry {
    pub id: u16,
    pub identity: Option<SnakeIdentity>,
    pub boosting: bool,
    /// Length in whole body units.
    pub length: u32,
    /// Girth in `1 / GIRTH_STEPS_PER_UNIT` world units.
    pub girth: u32,
    /// Head position in position units.
    pub head: [i32; 2],
    /// The head's last movement in position units per tick: the prediction base for moves.
    pub velocity: [i32; 2],
    /// Number of body steps of this entry in [`StateFrame::body_directions`].
    pub body_len: u32,
}

/// How one known snake's head moved this tick, relative to the client's prediction
/// `head + velocity`. Four bits on the wire: `0..=8` is a residual with each axis in `-1..=1`
/// (`code = (dx + 1) + 3 * (dy + 1)`), `15` means an [`Extension`] follows; `9..=14` are
/// reserved and refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MoveCode {
    Residual { dx: i8, dy: i8 },
    Extended,
}

const EXTENDED_NIBBLE: u8 = 15;

impl MoveCode {
    /// The short code for a residual, if both axes are within `-1..=1`.
    pub fn small(dx: i32, dy: i32) -> Option<MoveCode> {
        ((-1..=1).contains(&dx) && (-1..=1).contains(&dy)).then_some(MoveCode::Residual {
            dx: dx as i8,
            dy: dy as i8,
        })
    }

    fn to_nibble(self) -> u8 {
        match self {
            MoveCode::Residual { dx, dy } => {
                ((dx.clamp(-1, 1) + 1) + 3 * (dy.clamp(-1, 1) + 1)) as u8
            }
            MoveCode::Extended => EXTENDED_NIBBLE,
        }
    }

    fn from_nibble(nibble: u8) -> Result<MoveCode, DecodeError> {
        match nibble {
            0..=8 => Ok(MoveCode::Residual {
                dx: (nibble % 3) as i8 - 1,
                dy: (nibble / 3) as i8 - 1,
            }),
            EXTENDED_NIBBLE => Ok(MoveCode::Extended),
            _ => Err(DecodeError::OutOfRange),
        }
    }
}

/// The long form of a move, with sparse field changes.
///
/// Wire: `flags u8` (bit0 residual follows, bit1 length delta, bit2 girth delta, bit3 boost
/// toggled, other bits 0), then `residual x svarint, residual y svarint` if bit0, `length delta
/// svarint` if bit1, `girth delta svarint` if bit2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Extension {
    pub residual: [i32; 2],
    pub length_delta: i32,
    pub girth_delta: i32,
    pub boost_toggled: bool,
}

const EXT_RESIDUAL: u8 = 1;
const EXT_LENGTH: u8 = 2;
const EXT_GIRTH: u8 = 4;
const EXT_BOOST: u8 = 8;
const EXT_KNOWN: u8 = EXT_RESIDUAL | EXT_LENGTH | EXT_GIRTH | EXT_BOOST;

/// A pellet entering the viewer's pellet list, packed into 3 bytes (`u24` little-endian):
/// bits 0..9 cell x, 9..18 cell y, 18..22 color, 22..24 size class. Cells are counted on a
/// global grid of `pellet_cell` position units, from the cell holding the view box's minimum
/// corner (see `docs/protocol.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PelletEntry {
    /// `0..512`.
    pub cell_x: u16,
    /// `0..512`.
    pub cell_y: u16,
    /// `0..16`.
    pub color: u8,
    /// `0..4`.
    pub size: u8,
}

/// Largest cell offset a pellet entry can carry, plus one.
pub const PELLET_CELLS: u16 = 512;
/// Largest size class, plus one.
pub const PELLET_SIZES: u8 = 4;

impl PelletEntry {
    fn pack(self) -> u32 {
        u32::from(self.cell_x & 0x1ff)
            | u32::from(self.cell_y & 0x1ff) << 9
            | u32::from(self.color & 0xf) << 18
            | u32::from(self.size & 0x3) << 22
    }

    fn unpack(packed: u32) -> PelletEntry {
        PelletEntry {
            cell_x: (packed & 0x1ff) as u16,
            cell_y: ((packed >> 9) & 0x1ff) as u16,
            color: ((packed >> 18) & 0xf) as u8,
            size: ((packed >> 22) & 0x3) as u8,
        }
    }
}

/// One state frame, decoded or about to be encoded. Buffers are reused across ticks.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StateFrame {
    /// Snakes the client must forget, ascending ids.
    pub removed: Vec<u16>,
    /// Snakes entering view, ascending ids.
    pub entered: Vec<SnakeEntry>,
    /// Body steps of every entered snake, concatenated in entry order; see [`body_direction`].
    pub body_directions: Vec<u8>,
    /// One per snake the client knew before this frame (after `removed`), ascending ids.
    pub moves: Vec<MoveCode>,
    /// One per [`MoveCode::Extended`] in `moves`, in order.
    pub extensions: Vec<Extension>,
    /// Ascending indices into the client's pellet list after the view cull.
    pub eaten: Vec<u32>,
    pub new_pellets: Vec<PelletEntry>,
}

impl StateFrame {
    /// Empties every list, keeping capacity.
    pub fn clear(&mut self) {
        self.removed.clear();
        self.entered.clear();
        self.body_directions.clear();
        self.moves.clear();
        self.extensions.clear();
        self.eaten.clear();
        self.new_pellets.clear();
    }

    /// The body steps of `entered[index]`, if the frame is consistent.
    pub fn body_of(&self, index: usize) -> Option<&[u8]> {
        let start: usize = self
            .entered
            .get(..index)?
            .iter()
            .map(|e| e.body_len as usize)
            .sum();
        let len = self.entered.get(index)?.body_len as usize;
        self.body_directions.get(start..start.checked_add(len)?)
    }

    /// Writes the payload (no frame header). The caller keeps `extensions` in step with the
    /// extended moves and `eaten` ascending; the encoder writes what it is given.
    pub fn write_payload(&self, w: &mut Writer<'_>) {
        w.varint(self.removed.len() as u32);
        for id in &self.removed {
            w.u16(*id);
        }
        w.varint(self.entered.len() as u32);
        let mut body_start = 0usize;
        for entry in &self.entered {
            w.u16(entry.id);
            let flags = u8::from(entry.identity.is_some()) | u8::from(entry.boosting) << 1;
            w.u8(flags);
            if let Some(identity) = &entry.identity {
                w.u8(identity.skin);
                w.short_str(&identity.name);
            }
            w.varint(entry.length);
            w.varint(entry.girth);
            w.svarint(entry.head[0]);
            w.svarint(entry.head[1]);
            w.svarint(entry.velocity[0]);
            w.svarint(entry.velocity[1]);
            let body_end = (body_start + entry.body_len as usize).min(self.body_directions.len());
            let body = &self.body_directions[body_start.min(body_end)..body_end];
            w.varint(body.len() as u32);
            w.bytes(body);
            body_start = body_end;
        }
        w.varint(self.moves.len() as u32);
        for pair in self.moves.chunks(2) {
            let low = pair[0].to_nibble();
            let high = pair.get(1).map_or(0, |code| code.to_nibble());
            w.u8(low | high << 4);
        }
        for extension in &self.extensions {
            let mut flags = 0;
            if extension.residual != [0, 0] {
                flags |= EXT_RESIDUAL;
            }
            if extension.length_delta != 0 {
                flags |= EXT_LENGTH;
            }
            if extension.girth_delta != 0 {
                flags |= EXT_GIRTH;
            }
            if extension.boost_toggled {
                flags |= EXT_BOOST;
            }
            w.u8(flags);
            if flags & EXT_RESIDUAL != 0 {
                w.svarint(extension.residual[0]);
                w.svarint(extension.residual[1]);
            }
            if flags & EXT_LENGTH != 0 {
                w.svarint(extension.length_delta);
            }
            if flags & EXT_GIRTH != 0 {
                w.svarint(extension.girth_delta);
            }
        }
        w.varint(self.eaten.len() as u32);
        let mut next_free = 0u32;
        for index in &self.eaten {
            w.varint(index.wrapping_sub(next_free));
            next_free = index.wrapping_add(1);
        }
        w.varint(self.new_pellets.len() as u32);
        for pellet in &self.new_pellets {
            let packed = pellet.pack();
            w.bytes(&packed.to_le_bytes()[..3]);
        }
    }

    /// Decodes a payload into `self`, replacing its contents.
    pub fn decode_payload_into(&mut self, r: &mut Reader<'_>) -> Result<(), DecodeError> {
        self.clear();
        let removed = r.varint()? as usize;
        if removed > r.remaining() / 2 {
            return Err(DecodeError::Truncated);
        }
        for _ in 0..removed {
            self.removed.push(r.u16()?);
        }
        let entered = r.varint()?;
        for _ in 0..entered {
            let id = r.u16()?;
            let flags = r.u8()?;
            if flags & !3 != 0 {
                return Err(DecodeError::OutOfRange);
            }
            let identity = if flags & 1 != 0 {
                let skin = r.u8()?;
                Some(SnakeIdentity {
                    skin,
                    name: r.short_str()?.to_owned(),
                })
            } else {
                None
            };
            let length = r.varint()?;
            let girth = r.varint()?;
            let head = [r.svarint()?, r.svarint()?];
            let velocity = [r.svarint()?, r.svarint()?];
            let body_len = r.varint()?;
            let body = r.bytes(body_len as usize)?;
            self.body_directions.extend_from_slice(body);
            self.entered.push(SnakeEntry {
                id,
                identity,
                boosting: flags & 2 != 0,
                length,
                girth,
                head,
                velocity,
                body_len,
            });
        }
        let moves = r.varint()? as usize;
        if moves.div_ceil(2) > r.remaining() {
            return Err(DecodeError::Truncated);
        }
        let mut extended = 0usize;
        for pair_index in 0..moves.div_ceil(2) {
            let byte = r.u8()?;
            let low = MoveCode::from_nibble(byte & 0xf)?;
            self.moves.push(low);
            extended += usize::from(low == MoveCode::Extended);
            if pair_index * 2 + 1 < moves {
                let high = MoveCode::from_nibble(byte >> 4)?;
                self.moves.push(high);
                extended += usize::from(high == MoveCode::Extended);
            } else if byte >> 4 != 0 {
                return Err(DecodeError::OutOfRange);
            }
        }
        for _ in 0..extended {
            let flags = r.u8()?;
            if flags & !EXT_KNOWN != 0 {
                return Err(DecodeError::OutOfRange);
            }
            let mut extension = Extension {
                boost_toggled: flags & EXT_BOOST != 0,
                ..Extension::default()
            };
            if flags & EXT_RESIDUAL != 0 {
                extension.residual = [r.svarint()?, r.svarint()?];
            }
            if flags & EXT_LENGTH != 0 {
                extension.length_delta = r.svarint()?;
            }
            if flags & EXT_GIRTH != 0 {
                extension.girth_delta = r.svarint()?;
            }
            self.extensions.push(extension);
        }
        let eaten = r.varint()?;
        let mut next_free = 0u32;
        for _ in 0..eaten {
            let index = next_free
                .checked_add(r.varint()?)
                .ok_or(DecodeError::OutOfRange)?;
            self.eaten.push(index);
            next_free = index.checked_add(1).ok_or(DecodeError::OutOfRange)?;
        }
        let new_pellets = r.varint()? as usize;
        if new_pellets > r.remaining() / 3 {
            return Err(DecodeError::Truncated);
        }
        for _ in 0..new_pellets {
            let b = r.bytes(3)?;
            self.new_pellets
                .push(PelletEntry::unpack(u32::from_le_bytes([
                    b[0], b[1], b[2], 0,
                ])));
        }
        Ok(())
    }
}

fn direction_table() -> &'static [[f32; 2]; 256] {
    static TABLE: OnceLock<[[f32; 2]; 256]> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut table = [[0.0; 2]; 256];
        for (k, entry) in table.iter_mut().enumerate() {
            let angle = k as f64 * std::f64::consts::TAU / 256.0;
            *entry = [angle.cos() as f32, angle.sin() as f32];
        }
        table
    })
}

/// The unit vector of body direction `k`: angle `k * 2π / 256` counter-clockwise from +x.
/// Body point `i + 1 = point i + segment_spacing * body_direction(k_i)`, starting at the head.
pub fn body_direction(k: u8) -> [f32; 2] {
    direction_table()[usize::from(k)]
}

/// The body direction closest to the vector `(dx, dy)` (0 for a zero or non-finite vector).
pub fn nearest_body_direction(dx: f32, dy: f32) -> u8 {
    let angle = dy.atan2(dx);
    if !angle.is_finite() {
        return 0;
    }
    let steps = (angle / std::f32::consts::TAU * 256.0).round() as i32;
    steps.rem_euclid(256) as u8
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn move_code() -> impl Strategy<Value = MoveCode> {
        prop_oneof![
            (-1i8..=1, -1i8..=1).prop_map(|(dx, dy)| MoveCode::Residual { dx, dy }),
            Just(MoveCode::Extended)
        ]
    }

    fn entry() -> impl Strategy<Value = (SnakeEntry, Vec<u8>)> {
        (
            any::<u16>(),
            proptest::option::of((any::<u8>(), "[a-zA-Z0-9 ]{0,16}")),
            any::<bool>(),
            (any::<u32>(), any::<u32>()),
            proptest::array::uniform4(any::<i32>()),
            proptest::collection::vec(any::<u8>(), 0..40),
        )
            .prop_map(|(id, identity, boosting, (length, girth), numbers, body)| {
                let entry = SnakeEntry {
                    id,
                    identity: identity.map(|(skin, name)| SnakeIdentity { skin, name }),
                    boosting,
                    length,
                    girth,
                    head: [numbers[0], numbers[1]],
                    velocity: [numbers[2], numbers[3]],
                    body_len: body.len() as u32,
                };
                (entry, body)
            })
    }

    fn extension() -> impl Strategy<Value = Extension> {
        (
            any::<i32>(),
            any::<i32>(),
            any::<i32>(),
            any::<i32>(),
            any::<bool>(),
        )
            .prop_map(|(x, y, length, girth, boost)| Extension {
                residual: [x, y],
                length_delta: length,
                girth_delta: girth,
                boost_toggled: boost,
            })
    }

    prop_compose! {
        fn state_frame()(removed in proptest::collection::vec(any::<u16>(), 0..8),
                         entered in proptest::collection::vec(entry(), 0..4),
                         moves in proptest::collection::vec(move_code(), 0..30),
                         extensions in proptest::collection::vec(extension(), 30),
                         mut eaten in proptest::collection::btree_set(0u32..5000, 0..20),
                         pellets in proptest::collection::vec((0u16..512, 0u16..512, 0u8..16, 0u8..4), 0..20)) -> StateFrame {
            let extended = moves.iter().filter(|m| **m == MoveCode::Extended).count();
            let mut frame = StateFrame {
                removed,
                moves,
                extensions: extensions[..extended].to_vec(),
                eaten: std::mem::take(&mut eaten).into_iter().collect(),
                new_pellets: pellets.into_iter().map(|(cell_x, cell_y, color, size)| PelletEntry { cell_x, cell_y, color, size }).collect(),
                ..StateFrame::default()
            };
            for (entry, body) in entered {
                frame.entered.push(entry);
                frame.body_directions.extend(body);
            }
            frame
        }
    }

    proptest! {
        #[test]
        fn state_round_trips(frame in state_frame()) {
            let mut out = Vec::new();
            frame.write_payload(&mut Writer::new(&mut out));
            let mut decoded = StateFrame::default();
            let mut reader = Reader::new(&out);
            decoded.decode_payload_into(&mut reader).unwrap();
            prop_assert!(reader.finish().is_ok());
            prop_assert_eq!(decoded, frame);
        }

        #[test]
        fn state_decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let mut frame = StateFrame::default();
            let _ = frame.decode_payload_into(&mut Reader::new(&bytes));
            // Nothing decoded may exceed what the input could describe.
            prop_assert!(frame.moves.len() <= 2 * bytes.len() + 2);
            prop_assert!(frame.body_directions.len() <= bytes.len());
        }

        #[test]
        fn nearest_direction_is_within_half_a_step(k in any::<u8>(), scale in 0.1f32..1000.0) {
            let [x, y] = body_direction(k);
            prop_assert_eq!(nearest_body_direction(x * scale, y * scale), k);
        }
    }

    #[test]
    fn huge_counts_fail_without_allocating() {
        // A removed count of u32::MAX with nothing behind it.
        let bytes = [0xff, 0xff, 0xff, 0xff, 0x0f];
        let mut frame = StateFrame::default();
        assert_eq!(
            frame.decode_payload_into(&mut Reader::new(&bytes)),
            Err(DecodeError::Truncated)
        );
        // Zero removed, zero entered, u32::MAX moves.
        let bytes = [0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f];
        assert_eq!(
            frame.decode_payload_into(&mut Reader::new(&bytes)),
            Err(DecodeError::Truncated)
        );
        assert!(frame.moves.capacity() < 64);
    }

    #[test]
    fn reserved_move_codes_and_padding_are_refused() {
        let mut frame = StateFrame::default();
        // 1 move with code 9.
        assert_eq!(
            frame.decode_payload_into(&mut Reader::new(&[0, 0, 1, 0x09, 0, 0])),
            Err(DecodeError::OutOfRange)
        );
        // 1 move with a non-zero padding nibble.
        assert_eq!(
            frame.decode_payload_into(&mut Reader::new(&[0, 0, 1, 0x14, 0, 0])),
            Err(DecodeError::OutOfRange)
        );
        assert_eq!(
            frame.decode_payload_into(&mut Reader::new(&[0, 0, 1, 0x04, 0, 0])),
            Ok(())
        );
        assert_eq!(frame.moves, vec![MoveCode::Residual { dx: 0, dy: 0 }]);
    }
}
