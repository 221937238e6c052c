//! Byte-level reading and writing: fixed-width little-endian integers, LEB128 varints, and
//! length-prefixed strings. The reader never panics: every shortfall is a [`DecodeError`].

use thiserror::Error;

/// Why a frame could not be decoded. Each maps to a stable error code on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum DecodeError {
    #[error("frame is empty")]
    Empty,
    #[error("frame ended early")]
    Truncated,
    #[error("frame has {0} trailing bytes")]
    TrailingBytes(usize),
    #[error("frame is larger than allowed")]
    Oversized,
    #[error("unknown frame type {0:#04x}")]
    UnknownType(u8),
    #[error("varint is longer than allowed")]
    BadVarint,
    #[error("string is not valid UTF-8")]
    BadUtf8,
    #[error("field value out of range")]
    OutOfRange,
}

/// A cursor over untrusted bytes.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, position: 0 }
    }

    pub fn remaining(&self) -> usize {
        self.bytes.len() - self.position
    }

    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// Fails with [`DecodeError::TrailingBytes`] unless every byte was consumed.
    pub fn finish(&self) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            n => Err(DecodeError::TrailingBytes(n)),
        }
    }

    pub fn bytes(&mut self, len: usize) -> Result<&'a [u8], DecodeError> {
        if self.remaining() < len {
            return Err(DecodeError::Truncated);
        }
        let slice = &self.bytes[self.position..self.position + len];
        self.position += len;
        Ok(slice)
    }

    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.bytes(1)?[0])
    }

    pub fn i8(&mut self) -> Result<i8, DecodeError> {
        Ok(self.u8()? as i8)
    }

    pub fn u16(&mut self) -> Result<u16, DecodeError> {
        let b = self.bytes(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    pub fn i16(&mut self) -> Result<i16, DecodeError> {
        Ok(self.u16()? as i16)
    }

    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        let b = self.bytes(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Unsigned LEB128, at most 5 bytes (values up to `u32::MAX`).
    pub fn varint(&mut self) -> Result<u32, DecodeError> {
        let mut value: u64 = 0;
        for index in 0..5 {
            let byte = self.u8()?;
            value |= u64::from(byte & 0x7f) << (7 * index);
            if byte & 0x80 == 0 {
                return u32::try_from(value).map_err(|_| DecodeError::BadVarint);
            }
        }
        Err(DecodeError::BadVarint)
    }

    /// Zigzag-encoded signed LEB128.
    pub fn svarint(&mut self) -> Result<i32, DecodeError> {
        let raw = self.varint()?;
        Ok(((raw >> 1) as i32) ^ -((raw & 1) as i32))
    }

    /// A string prefixed by a one-byte length.
    pub fn short_str(&mut self) -> Result<&'a str, DecodeError> {
        let len = usize::from(self.u8()?);
        std::str::from_utf8(self.bytes(len)?).map_err(|_| DecodeError::BadUtf8)
    }

    /// Bytes prefixed by a varint length, refusing lengths above `max`.
    pub fn long_bytes(&mut self, max: usize) -> Result<&'a [u8], DecodeError> {
        let len = self.varint()? as usize;
        if len > max {
            return Err(DecodeError::Oversized);
        }
        self.bytes(len)
    }
}

/// Appends encoded values to a reusable buffer (the caller keeps and clears it, so the hot
/// path does not allocate once buffers have grown to their working size).
#[derive(Debug)]
pub struct Writer<'a> {
    out: &'a mut Vec<u8>,
}

impl<'a> Writer<'a> {
    pub fn new(out: &'a mut Vec<u8>) -> Self {
        Self { out }
    }

    pub fn len(&self) -> usize {
        self.out.len()
    }

    pub fn is_empty(&self) -> bool {
        self.out.is_empty()
    }

    pub fn u8(&mut self, value: u8) {
        self.out.push(value);
    }

    pub fn i8(&mut self, value: i8) {
        self.out.push(value as u8);
    }

    pub fn u16(&mut self, value: u16) {
        self.out.extend_from_slice(&value.to_le_bytes());
    }

    pub fn i16(&mut self, value: i16) {
        self.u16(value as u16);
    }

    pub fn u32(&mut self, value: u32) {
        self.out.extend_from_slice(&value.to_le_bytes());
    }

    pub fn varint(&mut self, mut value: u32) {
        while value >= 0x80 {
            self.out.push((value as u8) | 0x80);
            value >>= 7;
        }
        self.out.push(value as u8);
    }

    pub fn svarint(&mut self, value: i32) {
        self.varint(((value << 1) ^ (value >> 31)) as u32);
    }

    pub fn bytes(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    /// Writes a string with a one-byte length, truncating at a character boundary to 255
    /// bytes (names are validated long before this; truncation only guards the format).
    pub fn short_str(&mut self, value: &str) {
        let mut end = value.len().min(255);
        while !value.is_char_boundary(end) {
            end -= 1;
        }
        self.u8(end as u8);
        self.bytes(&value.as_bytes()[..end]);
    }

    pub fn long_bytes(&mut self, bytes: &[u8]) {
        self.varint(bytes.len() as u32);
        self.bytes(bytes);
    }

    /// Writes one server frame: type, payload length, payload. `payload` writes into the same
    /// buffer; the length is patched in afterwards (payloads up to 2^21 bytes use a fixed
    /// 3-byte varint slot only when needed, otherwise the frame is shifted once).
    pub fn frame(&mut self, frame_type: u8, payload: impl FnOnce(&mut Writer<'_>)) {
        self.u8(frame_type);
        let length_at = self.out.len();
        self.out.push(0); // placeholder for a one-byte varint
        let payload_start = self.out.len();
        payload(self);
        let payload_len = self.out.len() - payload_start;
        if payload_len < 0x80 {
            self.out[length_at] = payload_len as u8;
        } else {
            let mut prefix = Vec::with_capacity(5);
            Writer::new(&mut prefix).varint(payload_len as u32);
            self.out
                .splice(length_at..length_at + 1, prefix.iter().copied());
        }
    }
}

/// Iterates over the frames of one server message: `(frame type, payload)`.
pub fn server_frames(message: &[u8]) -> impl Iterator<Item = Result<(u8, &[u8]), DecodeError>> {
    let mut reader = Reader::new(message);
    let mut failed = false;
    std::iter::from_fn(move || {
        if failed || reader.is_empty() {
            return None;
        }
        let next = (|| {
            let frame_type = reader.u8()?;
            let len = reader.varint()? as usize;
            Ok((frame_type, reader.bytes(len)?))
        })();
        failed = next.is_err();
        Some(next)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn varints_round_trip(value in any::<u32>(), signed in any::<i32>()) {
            let mut out = Vec::new();
            let mut writer = Writer::new(&mut out);
            writer.varint(value);
            writer.svarint(signed);
            let mut reader = Reader::new(&out);
            prop_assert_eq!(reader.varint().unwrap(), value);
            prop_assert_eq!(reader.svarint().unwrap(), signed);
            prop_assert!(reader.finish().is_ok());
        }

        #[test]
        fn frames_round_trip(payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..5)) {
            let mut out = Vec::new();
            let mut writer = Writer::new(&mut out);
            for (index, payload) in payloads.iter().enumerate() {
                writer.frame(index as u8, |w| w.bytes(payload));
            }
            let decoded: Vec<_> = server_frames(&out).collect::<Result<_, _>>().unwrap();
            prop_assert_eq!(decoded.len(), payloads.len());
            for (index, (frame_type, payload)) in decoded.into_iter().enumerate() {
                prop_assert_eq!(frame_type, index as u8);
                prop_assert_eq!(payload, payloads[index].as_slice());
            }
        }

        #[test]
        fn reader_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut reader = Reader::new(&bytes);
            let _ = reader.varint();
            let _ = reader.short_str();
            let _ = reader.long_bytes(16);
            let _ = reader.u32();
            let _ = server_frames(&bytes).count();
        }
    }

    #[test]
    fn overlong_varint_is_refused() {
        let bytes = [0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert_eq!(Reader::new(&bytes).varint(), Err(DecodeError::BadVarint));
        let too_big = [0xff, 0xff, 0xff, 0xff, 0x7f];
        assert_eq!(Reader::new(&too_big).varint(), Err(DecodeError::BadVarint));
    }
}
