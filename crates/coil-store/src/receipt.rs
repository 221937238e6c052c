//! Signed score receipts: proof, handed to a player, that the server recorded a given run.
//!
//! A receipt is `base64url(payload) "." base64url(mac)` (no padding), where `payload` is a small
//! versioned JSON object and `mac` is HMAC-SHA256 over a domain-separation prefix followed by the
//! base64url payload text. The key is symmetric because the same service issues and checks
//! receipts; nothing outside the server ever needs to verify one.
//!
//! # What this module must not do
//! - Look at a payload before its MAC has been checked (in constant time): an unauthenticated
//!   receipt is refused without parsing its JSON.
//! - Panic on any input to [`ReceiptKey::verify`], or print the secret (the `Debug` impl is redacted).

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::error::StoreError;
use crate::leaderboard::ScoreEntry;

type HmacSha256 = Hmac<Sha256>;

/// Shortest secret accepted: the full output size of SHA-256, so the key is never the weak link.
pub const MIN_RECEIPT_SECRET_BYTES: usize = 32;

/// Bytes written by [`ReceiptKey::load_or_create`] for a new key.
const GENERATED_SECRET_BYTES: usize = 32;

/// Prefixed to every MAC input so a MAC made with this key for any other purpose can never be
/// passed off as a receipt (and a future receipt format cannot be confused with this one).
const MAC_DOMAIN: &[u8] = b"coil/score-receipt/v1\0";

/// Payload format version carried inside every receipt.
const PAYLOAD_VERSION: u8 = 1;

/// Receipts longer than this are refused before any decoding, so a hostile client cannot make
/// the server base64-decode or MAC megabytes. A real receipt is a few hundred bytes.
const MAX_RECEIPT_CHARS: usize = 2048;

const MAC_BYTES: usize = 32;

/// Why a receipt was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReceiptError {
    /// Not a receipt at all: wrong shape, bad base64, wrong MAC length, too long, or (after a
    /// valid MAC) a payload this version does not understand.
    #[error("receipt is malformed")]
    Malformed,
    /// Well formed, but the MAC does not match: tampered with, or issued under another key.
    #[error("receipt signature does not match")]
    BadSignature,
}

/// The payload as it travels inside a receipt. Kept separate from [`ScoreEntry`] so the stored
/// and wire shapes can evolve independently; `v` lets a later format be told apart.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ReceiptPayload {
    v: u8,
    run_id: String,
    name: String,
    score: u32,
    room: String,
    recorded_at_ms: i64,
}

/// The HMAC-SHA256 secret that issues and checks score receipts.
#[derive(Clone)]
pub struct ReceiptKey {
    /// Keyed once; each issue/verify clones this state instead of re-deriving the HMAC pads.
    keyed_mac: HmacSha256,
}

impl std::fmt::Debug for ReceiptKey {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("ReceiptKey(<redacted>)")
    }
}

impl ReceiptKey {
    /// Uses `secret` as the key. It must be at least [`MIN_RECEIPT_SECRET_BYTES`] long.
    pub fn from_secret(secret: &[u8]) -> Result<ReceiptKey, StoreError> {
        if secret.len() < MIN_RECEIPT_SECRET_BYTES {
            return Err(StoreError::InvalidKey {
                reason: format!(
                    "secret is {} bytes; at least {MIN_RECEIPT_SECRET_BYTES} are required",
                    secret.len()
                ),
            });
        }
        let keyed_mac = HmacSha256::new_from_slice(secret).map_err(|_| StoreError::InvalidKey {
            reason: "HMAC-SHA256 refused the secret".to_owned(),
        })?;
        Ok(ReceiptKey { keyed_mac })
    }

    /// Reads the key from `path` (its raw bytes are the secret), or, if the file does not exist,
    /// creates it with 32 random bytes from the OS, readable by the owner only (0600), creating
    /// parent directories as needed.
    ///
    /// Safe against two processes starting at once: the new key is written to a private temporary
    /// file and hard-linked into place, which fails if the path already exists, so exactly one
    /// key wins and nobody ever reads a half-written file. Blocking file IO: call at startup.
    pub fn load_or_create(path: &Path) -> Result<ReceiptKey, StoreError> {
        match std::fs::read(path) {
            Ok(secret) => return ReceiptKey::from_key_file(path, &secret),
            Err(error) if error.kind() == ErrorKind::NotFound => {}
            Err(source) => return Err(key_file_error(path, "read", source)),
        }
        if create_key_file(path)? {
            tracing::info!(path = %path.display(), "created a new score receipt key");
        }
        let secret = std::fs::read(path).map_err(|source| key_file_error(path, "read", source))?;
        ReceiptKey::from_key_file(path, &secret)
    }

    /// Signs `entry`. The result is URL-safe text (`A-Z a-z 0-9 - _ .`).
    pub fn issue(&self, entry: &ScoreEntry) -> String {
        let payload = ReceiptPayload {
            v: PAYLOAD_VERSION,
            run_id: entry.run_id.clone(),
            name: entry.name.clone(),
            score: entry.score,
            room: entry.room.clone(),
            recorded_at_ms: entry.recorded_at_ms,
        };
        // Serializing a struct of strings and integers into a Vec has no failure path in
        // serde_json (no maps with non-string keys, no IO, no custom Serialize impls).
        let payload_json =
            serde_json::to_vec(&payload).expect("serializing a receipt payload cannot fail");
        let payload_text = URL_SAFE_NO_PAD.encode(payload_json);
        let mac = self.mac_for(&payload_text).finalize().into_bytes();
        format!("{payload_text}.{}", URL_SAFE_NO_PAD.encode(mac))
    }

    /// Checks `receipt` and returns the entry it vouches for. The MAC is compared in constant
    /// time before the payload is decoded.
    pub fn verify(&self, receipt: &str) -> Result<ScoreEntry, ReceiptError> {
        if receipt.len() > MAX_RECEIPT_CHARS {
            return Err(ReceiptError::Malformed);
        }
        let (payload_text, mac_text) = receipt.split_once('.').ok_or(ReceiptError::Malformed)?;
        // Shape checks on public data, before any MAC work: the payload must at least look like
        // base64url, so junk is reported as malformed rather than as a bad signature.
        let is_base64url = |text: &str| {
            text.bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
        };
        if payload_text.is_empty() || !is_base64url(payload_text) || !is_base64url(mac_text) {
            return Err(ReceiptError::Malformed);
        }
        let claimed_mac = URL_SAFE_NO_PAD
            .decode(mac_text)
            .map_err(|_| ReceiptError::Malformed)?;
        if claimed_mac.len() != MAC_BYTES {
            return Err(ReceiptError::Malformed);
        }
        self.mac_for(payload_text)
            .verify_slice(&claimed_mac)
            .map_err(|_| ReceiptError::BadSignature)?;

        // Authentic from here on; a failure below means a payload version we do not understand.
        let payload_json = URL_SAFE_NO_PAD
            .decode(payload_text)
            .map_err(|_| ReceiptError::Malformed)?;
        let payload: ReceiptPayload =
            serde_json::from_slice(&payload_json).map_err(|_| ReceiptError::Malformed)?;
        if payload.v != PAYLOAD_VERSION {
            return Err(ReceiptError::Malformed);
        }
        Ok(ScoreEntry {
            run_id: payload.run_id,
            name: payload.name,
            score: payload.score,
            room: payload.room,
            recorded_at_ms: payload.recorded_at_ms,
        })
    }

    fn mac_for(&self, payload_text: &str) -> HmacSha256 {
        let mut mac = self.keyed_mac.clone();
        mac.update(MAC_DOMAIN);
        mac.update(payload_text.as_bytes());
        mac
    }

    fn from_key_file(path: &Path, secret: &[u8]) -> Result<ReceiptKey, StoreError> {
        warn_if_readable_by_others(path);
        ReceiptKey::from_secret(secret).map_err(|error| match error {
            StoreError::InvalidKey { reason } => StoreError::InvalidKey {
                reason: format!("key file {}: {reason}", path.display()),
            },
            other => other,
        })
    }
}

fn key_file_error(path: &Path, action: &'static str, source: std::io::Error) -> StoreError {
    StoreError::KeyFile {
        path: path.to_path_buf(),
        action,
        source,
    }
}

/// Writes a fresh random key to `path` unless it already exists. Returns whether this call
/// created it (false: another process won the race, and its key is the one to use).
fn create_key_file(path: &Path) -> Result<bool, StoreError> {
    let directory = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&directory)
        .map_err(|source| key_file_error(&directory, "create directory", source))?;

    let mut secret = [0_u8; GENERATED_SECRET_BYTES];
    rand::rngs::OsRng.fill_bytes(&mut secret);

    let file_name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| "receipt-key".to_owned());
    let temporary_path = directory.join(format!(
        ".{file_name}.{:016x}.tmp",
        rand::rngs::OsRng.next_u64()
    ));
    let written = write_private_file(&temporary_path, &secret);
    if let Err(source) = written {
        let _ = std::fs::remove_file(&temporary_path);
        return Err(key_file_error(&temporary_path, "write", source));
    }
    let linked = std::fs::hard_link(&temporary_path, path);
    // The temporary name is only a staging area; whatever happened, it goes.
    let _ = std::fs::remove_file(&temporary_path);
    match linked {
        Ok(()) => {
            // Make the new directory entry durable too, so a crash right after start-up cannot
            // lose a key that receipts were already issued under.
            if let Ok(directory_handle) = File::open(&directory) {
                let _ = directory_handle.sync_all();
            }
            Ok(true)
        }
        Err(error) if error.kind() == ErrorKind::AlreadyExists => Ok(false),
        Err(source) => Err(key_file_error(path, "create", source)),
    }
}

fn write_private_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // Created 0600 from the start (never chmod-ed afterwards), so there is no moment when
        // another user could open it.
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

fn warn_if_readable_by_others(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(metadata) = std::fs::metadata(path) {
            let mode = metadata.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                tracing::warn!(
                    path = %path.display(),
                    mode = format_args!("{mode:o}"),
                    "score receipt key file is accessible to other users; chmod 600 it"
                );
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key() -> ReceiptKey {
        ReceiptKey::from_secret(&[7_u8; 32]).unwrap()
    }

    fn entry() -> ScoreEntry {
        ScoreEntry {
            run_id: "run-42".to_owned(),
            name: "ada".to_owned(),
            score: 1234,
            room: "room-a".to_owned(),
            recorded_at_ms: 1_700_000_000_000,
        }
    }

    /// Builds a receipt with a valid MAC around an arbitrary payload, to reach the checks that
    /// run only after authentication.
    fn authentic_receipt_around(key: &ReceiptKey, payload_json: &[u8]) -> String {
        let payload_text = URL_SAFE_NO_PAD.encode(payload_json);
        let mac = key.mac_for(&payload_text).finalize().into_bytes();
        format!("{payload_text}.{}", URL_SAFE_NO_PAD.encode(mac))
    }

    #[test]
    fn the_mac_covers_the_domain_prefix() {
        // A bare HMAC of the payload text (no domain prefix) must not verify as a receipt.
        let key = key();
        let payload_text = key.issue(&entry()).split_once('.').unwrap().0.to_owned();
        let mut bare = HmacSha256::new_from_slice(&[7_u8; 32]).unwrap();
        bare.update(payload_text.as_bytes());
        let bare_mac = URL_SAFE_NO_PAD.encode(bare.finalize().into_bytes());
        assert_eq!(
            key.verify(&format!("{payload_text}.{bare_mac}")),
            Err(ReceiptError::BadSignature)
        );
    }

    #[test]
    fn authentic_but_unreadable_payloads_are_malformed() {
        let key = key();
        for payload in [
            &b"not json"[..],
            br#"{"v":2,"runId":"r","name":"n","score":1,"room":"x","recordedAtMs":1}"#,
            br#"{"v":1,"runId":"r","name":"n","score":-1,"room":"x","recordedAtMs":1}"#,
            br#"{"v":1,"runId":"r","name":"n","score":1,"room":"x","recordedAtMs":1,"extra":0}"#,
            br#"{"v":1,"runId":"r","name":"n","score":1,"room":"x"}"#,
        ] {
            let receipt = authentic_receipt_around(&key, payload);
            assert_eq!(
                key.verify(&receipt),
                Err(ReceiptError::Malformed),
                "{receipt}"
            );
        }
        // The same construction with a well-formed payload is accepted, so the refusals above
        // are about the payloads and not about the helper.
        let good = br#"{"v":1,"runId":"r","name":"n","score":1,"room":"x","recordedAtMs":1}"#;
        let accepted = key.verify(&authentic_receipt_around(&key, good)).unwrap();
        assert_eq!(accepted.run_id, "r");
    }

    #[test]
    fn debug_output_hides_the_secret() {
        assert_eq!(format!("{:?}", key()), "ReceiptKey(<redacted>)");
    }

    proptest! {
        #[test]
        fn verify_never_panics_and_refuses_garbage(input in any::<String>()) {
            prop_assert!(key().verify(&input).is_err());
        }

        #[test]
        fn verify_refuses_receipts_shaped_like_the_real_thing(
            payload in "[A-Za-z0-9_-]{0,200}",
            mac in "[A-Za-z0-9_-]{0,60}",
        ) {
            let receipt = format!("{payload}.{mac}");
            prop_assert!(key().verify(&receipt).is_err());
        }

        #[test]
        fn any_entry_round_trips(
            run_id in any::<String>(),
            name in any::<String>(),
            score in any::<u32>(),
            room in any::<String>(),
            recorded_at_ms in any::<i64>(),
        ) {
            let entry = ScoreEntry { run_id, name, score, room, recorded_at_ms };
            let receipt = key().issue(&entry);
            if receipt.len() <= MAX_RECEIPT_CHARS {
                prop_assert_eq!(key().verify(&receipt), Ok(entry));
            } else {
                prop_assert_eq!(key().verify(&receipt), Err(ReceiptError::Malformed));
            }
        }
    }
}
