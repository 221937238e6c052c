//! Opaque secrets the server hands out or accepts and stores only as SHA-256: refresh tokens
//! (32 random bytes, base64url) and guest device secrets (chosen by the client).
//!
//! A fast hash is right here, unlike for passwords: both secrets carry at least 128 random
//! bits, so there is nothing to brute-force, and the hash only makes a database leak useless
//! for logging in. Lookups are by hash, so no secret is ever compared in Rust.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Length of a refresh token's text (32 bytes, base64url without padding).
pub const REFRESH_TOKEN_CHARS: usize = 43;
/// Shortest device secret accepted: 22 base64url characters carry 128 bits.
pub const MIN_DEVICE_SECRET_CHARS: usize = 22;
/// Longest device secret accepted.
pub const MAX_DEVICE_SECRET_CHARS: usize = 256;

/// A fresh refresh token: 256 bits from the operating system, base64url.
pub fn new_refresh_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// SHA-256 of the text, lowercase hex: the only form in which a secret is stored.
pub fn secret_hash(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Whether a presented refresh token is even shaped like one (checked before any lookup).
pub fn is_refresh_token_shaped(text: &str) -> bool {
    text.len() == REFRESH_TOKEN_CHARS
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Why a device secret was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceSecretError {
    #[error(
        "deviceSecret must be {MIN_DEVICE_SECRET_CHARS} to {MAX_DEVICE_SECRET_CHARS} characters of A-Z, a-z, 0-9, '-' and '_' (for example 32 random bytes in base64url)"
    )]
    Malformed,
}

/// Checks a client's device secret: long enough to carry 128 random bits, base64url alphabet.
pub fn validate_device_secret(secret: &str) -> Result<(), DeviceSecretError> {
    let shaped = (MIN_DEVICE_SECRET_CHARS..=MAX_DEVICE_SECRET_CHARS).contains(&secret.len())
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if shaped {
        Ok(())
    } else {
        Err(DeviceSecretError::Malformed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_tokens_are_random_and_shaped() {
        let a = new_refresh_token();
        let b = new_refresh_token();
        assert_ne!(a, b);
        assert!(is_refresh_token_shaped(&a));
        assert!(!is_refresh_token_shaped(&a[1..]));
        assert!(!is_refresh_token_shaped(&format!("{}!", &a[1..])));
    }

    #[test]
    fn hashes_are_sha256_hex() {
        // FIPS 180-2 test vector.
        assert_eq!(
            secret_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn device_secrets_must_carry_128_bits() {
        assert!(validate_device_secret(&"a".repeat(22)).is_ok());
        assert!(validate_device_secret(&"a".repeat(21)).is_err());
        assert!(validate_device_secret(&"a".repeat(257)).is_err());
        assert!(validate_device_secret("aaaaaaaaaaaaaaaaaaaaa=").is_err());
        assert!(validate_device_secret(&new_refresh_token()).is_ok());
    }
}
