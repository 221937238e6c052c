//! Join tokens: the matchmaker signs, game nodes verify.
//!
//! Owns the token format, the Ed25519 signing and verifying keys, the key file and the replay
//! guard. It must not read the clock (callers pass `now_ms`) and must not do network IO; the only
//! IO is [`TokenSigner::load_or_create`], which runs once at startup.
//!
//! Format: `base64url(payload) "." base64url(signature)`, no padding. The payload is binary:
//!
//! ```text
//! u8 version (3; version 1 ends after the nonce and means mode "arena", a player, no party;
//!              version 2 ends after the flags)
//! u8 len, player_id bytes   u8 len, player_name bytes (UTF-8)
//! u8 len, room_id bytes     u8 len, node_id bytes
//! u64 big-endian expires_at_ms
//! 16 bytes nonce
//! -- version 2 only --
//! u8 len, mode bytes        u8 role (0 player, 1 spectator)
//! u8 team (255 = none)      u8 len, party bytes (0 = none)
//! u8 len, cosmetics bytes   u8 flags (bit 0: player_id is an account or guest id, not anonymous;
//!                                     bit 1: the player hosts the room's custom lobby;
//!                                     bit 2: the room is a private lobby;
//!                                     bit 3: the lobby has a password)
//! -- version 3 only --
//! u8 len, lobby rules bytes (0 = a quick-play room; `coil_game::LobbyRules::normalized`)
//! u8 len, lobby password hash (Argon2id PHC text; 0 = none; only in the creator's token)
//! ```
//!
//! Lobby invites are signed with the same key under their own context ([`INVITE_CONTEXT`]):
//! `base64url(u64 big-endian expiry ‖ signature)`, the signature over the context, the lobby's
//! room id and the expiry, so an invite needs no storage and cannot be moved to another lobby.
//!
//! The signature covers [`SIGNATURE_CONTEXT`] followed by the payload, so a signature made by the
//! same key for another purpose (score receipts, say) can never pass as a join token.
//!
//! The nonce doubles as the seat reservation id in the room directory: a node that accepted a
//! token confirms the seat with `claims.nonce`, no extra lookup needed.

use std::collections::{BTreeSet, HashMap};
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use rand::RngCore;
use rand::rngs::OsRng;

/// Bytes prepended to the payload before signing (domain separation).
pub const SIGNATURE_CONTEXT: &[u8] = b"coil/join-token/v1\0";

/// Bytes prepended to a lobby invite's signed message.
pub const INVITE_CONTEXT: &[u8] = b"coil/lobby-invite/v1\0";

const PAYLOAD_V1: u8 = 1;
const PAYLOAD_V2: u8 = 2;
const PAYLOAD_VERSION: u8 = 3;
const FLAG_ACCOUNT: u8 = 1;
const FLAG_HOST: u8 = 2;
const FLAG_PRIVATE: u8 = 4;
const FLAG_PASSWORD: u8 = 8;

/// The mode a version-1 token (from a matchmaker before modes) places into.
pub const DEFAULT_MODE: &str = "arena";

/// No team requested (the team byte of the payload).
const NO_TEAM: u8 = u8::MAX;

/// Upper bound on the token text we even try to decode; real tokens are well under 300 bytes.
pub const MAX_TOKEN_LEN: usize = 1024;

/// A 16-byte random value: the token nonce and, equally, the seat reservation id.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Nonce(pub [u8; 16]);

impl Nonce {
    /// A fresh nonce from the operating system's random source.
    pub fn random() -> Nonce {
        let mut bytes = [0u8; 16];
        OsRng.fill_bytes(&mut bytes);
        Nonce(bytes)
    }

    /// Lowercase hex, 32 characters; the form stored in Redis and logged.
    pub fn to_hex(&self) -> String {
        let mut text = String::with_capacity(32);
        for byte in self.0 {
            text.push_str(&format!("{byte:02x}"));
        }
        text
    }

    /// Parses the form written by [`Nonce::to_hex`].
    pub fn from_hex(text: &str) -> Option<Nonce> {
        if text.len() != 32 || !text.is_ascii() {
            return None;
        }
        let mut bytes = [0u8; 16];
        for (index, byte) in bytes.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&text[index * 2..index * 2 + 2], 16).ok()?;
        }
        Some(Nonce(bytes))
    }
}

impl std::fmt::Debug for Nonce {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Nonce({})", self.to_hex())
    }
}

impl std::fmt::Display for Nonce {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// What a join token says. Every string is at most 255 bytes (one length byte on the wire).
/// The node takes the player's identity from these claims, never from the join frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinClaims {
    pub player_id: String,
    pub player_name: String,
    pub room_id: String,
    pub node_id: String,
    pub expires_at_ms: u64,
    pub nonce: Nonce,
    /// The game mode of the room (`arena`, `breach`, …).
    pub mode: String,
    /// 0 = player, 1 = spectator (`coil_game::Role`'s wire form).
    pub role: u8,
    pub team: Option<u8>,
    pub party: Option<String>,
    /// Equipped cosmetics, opaque to the matchmaker and the runtime (at most 255 bytes).
    pub cosmetics: Vec<u8>,
    /// The player id is an account (or guest account) id, not an anonymous one.
    pub account: bool,
    /// The player created the room's custom lobby and hosts it.
    pub host: bool,
    /// The room is a private lobby: quick play never fills it.
    pub private: bool,
    /// The lobby has a password (the API checked it; the node only lists the fact).
    pub password: bool,
    /// The custom lobby's normalized rules (the room is created with them); `None`: quick play.
    pub rules: Option<String>,
    /// The lobby password's Argon2id hash, for the node to publish to the directory (internal
    /// only) so any API replica can check a join; only the creator's token carries it.
    pub password_hash: Option<String>,
}

/// Why a token was refused. Each variant is its own stable client-facing code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Malformed, forged or tampered: the bytes do not decode or the signature does not verify.
    #[error("join token is invalid")]
    Invalid,
    /// Correctly signed but past its expiry.
    #[error("join token has expired")]
    Expired,
    /// Correctly signed and fresh, but issued for another room or another node.
    #[error("join token was issued for another room")]
    WrongRoom,
}

impl TokenError {
    /// Stable code for logs, metrics labels and the protocol error frame.
    pub fn code(self) -> &'static str {
        match self {
            TokenError::Invalid => "token_invalid",
            TokenError::Expired => "token_expired",
            TokenError::WrongRoom => "token_wrong_room",
        }
    }
}

/// Errors of the signing side (startup and issuing), never shown to players.
#[derive(Debug, thiserror::Error)]
pub enum SigningKeyError {
    #[error("key file {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("key material is not base64 of a 32-byte Ed25519 seed")]
    BadKeyMaterial,
    #[error("claim field {field} is longer than 255 bytes")]
    ClaimTooLong { field: &'static str },
}

/// Holds the Ed25519 signing key. Lives only in the matchmaker.
pub struct TokenSigner {
    signing_key: SigningKey,
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret half.
        f.debug_struct("TokenSigner")
            .field("public_key", &self.public_key_base64())
            .finish()
    }
}

impl TokenSigner {
    /// A fresh random key (tests, or a process that does not need to survive restarts).
    pub fn generate() -> TokenSigner {
        TokenSigner {
            signing_key: SigningKey::generate(&mut OsRng),
        }
    }

    /// A key from the standard-base64 text of its 32-byte seed (`COIL_JOIN_SIGNING_KEY`, say).
    pub fn from_seed_base64(text: &str) -> Result<TokenSigner, SigningKeyError> {
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|_| SigningKeyError::BadKeyMaterial)?;
        let seed: [u8; 32] = bytes
            .try_into()
            .map_err(|_| SigningKeyError::BadKeyMaterial)?;
        Ok(TokenSigner {
            signing_key: SigningKey::from_bytes(&seed),
        })
    }

    /// Reads the seed from `path`, or creates the file with a fresh seed (mode 0600 on Unix).
    ///
    /// Creation writes a temporary file and hard-links it into place, so two processes starting
    /// at once never see a half-written key and never overwrite each other: the loser reads the
    /// winner's key.
    pub fn load_or_create(path: &Path) -> Result<TokenSigner, SigningKeyError> {
        let io_error = |source: std::io::Error| SigningKeyError::Io {
            path: path.display().to_string(),
            source,
        };
        match std::fs::read_to_string(path) {
            Ok(text) => return TokenSigner::from_seed_base64(&text),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(io_error(error)),
        }
        if let Some(parent) = path
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty())
        {
            std::fs::create_dir_all(parent).map_err(io_error)?;
        }
        let signer = TokenSigner::generate();
        let text = format!("{}\n", STANDARD.encode(signer.signing_key.to_bytes()));
        let temporary = path.with_extension(format!("tmp-{}", Nonce::random().to_hex()));
        let write_result = (|| {
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            let mut file = options.open(&temporary)?;
            file.write_all(text.as_bytes())?;
            file.sync_all()?;
            std::fs::hard_link(&temporary, path)
        })();
        // The temporary name is removed whatever happened; the link (if made) keeps the content.
        let _ = std::fs::remove_file(&temporary);
        match write_result {
            Ok(()) => Ok(signer),
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
                let text = std::fs::read_to_string(path).map_err(io_error)?;
                TokenSigner::from_seed_base64(&text)
            }
            Err(error) => Err(io_error(error)),
        }
    }

    /// The public half, standard base64; what nodes are configured with.
    pub fn public_key_base64(&self) -> String {
        STANDARD.encode(self.signing_key.verifying_key().to_bytes())
    }

    /// A verifier for the public half (the all-in-one process uses both).
    pub fn verifier(&self) -> TokenVerifier {
        TokenVerifier {
            verifying_key: self.signing_key.verifying_key(),
        }
    }

    /// Signs the claims into the compact token text.
    pub fn sign(&self, claims: &JoinClaims) -> Result<String, SigningKeyError> {
        let payload = encode_payload(claims)?;
        let signature = self.signing_key.sign(&signed_message(&payload));
        let mut token = URL_SAFE_NO_PAD.encode(&payload);
        token.push('.');
        token.push_str(&URL_SAFE_NO_PAD.encode(signature.to_bytes()));
        Ok(token)
    }

    /// An invite code for the lobby in room `lobby`, valid until `expires_at_ms`.
    pub fn sign_invite(&self, lobby: &str, expires_at_ms: u64) -> String {
        let signature = self.signing_key.sign(&invite_message(lobby, expires_at_ms));
        let mut bytes = expires_at_ms.to_be_bytes().to_vec();
        bytes.extend_from_slice(&signature.to_bytes());
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// Whether `code` is an unexpired invite to `lobby` signed by this key.
    pub fn verify_invite(&self, code: &str, lobby: &str, now_ms: u64) -> Result<(), TokenError> {
        self.verifier().verify_invite(code, lobby, now_ms)
    }
}

fn invite_message(lobby: &str, expires_at_ms: u64) -> Vec<u8> {
    let mut message = INVITE_CONTEXT.to_vec();
    message.extend_from_slice(lobby.as_bytes());
    message.push(0);
    message.extend_from_slice(&expires_at_ms.to_be_bytes());
    message
}

/// Holds only the Ed25519 public key. Lives in every game node.
#[derive(Debug, Clone)]
pub struct TokenVerifier {
    verifying_key: VerifyingKey,
}

impl TokenVerifier {
    /// [`TokenSigner::verify_invite`] with the public key: `Invalid` for a forged code or one
    /// for another lobby, `Expired` past its expiry.
    pub fn verify_invite(&self, code: &str, lobby: &str, now_ms: u64) -> Result<(), TokenError> {
        let bytes = URL_SAFE_NO_PAD
            .decode(code.trim())
            .map_err(|_| TokenError::Invalid)?;
        if bytes.len() != 8 + 64 {
            return Err(TokenError::Invalid);
        }
        let (expiry, signature) = bytes.split_at(8);
        let expires_at_ms = u64::from_be_bytes(expiry.try_into().map_err(|_| TokenError::Invalid)?);
        let signature = Signature::from_slice(signature).map_err(|_| TokenError::Invalid)?;
        self.verifying_key
            .verify_strict(&invite_message(lobby, expires_at_ms), &signature)
            .map_err(|_| TokenError::Invalid)?;
        if expires_at_ms <= now_ms {
            return Err(TokenError::Expired);
        }
        Ok(())
    }

    /// The key from the text printed by [`TokenSigner::public_key_base64`].
    pub fn from_public_key_base64(text: &str) -> Result<TokenVerifier, SigningKeyError> {
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|_| SigningKeyError::BadKeyMaterial)?;
        let bytes: [u8; 32] = bytes
            .try_into()
            .map_err(|_| SigningKeyError::BadKeyMaterial)?;
        let verifying_key =
            VerifyingKey::from_bytes(&bytes).map_err(|_| SigningKeyError::BadKeyMaterial)?;
        Ok(TokenVerifier { verifying_key })
    }

    /// Checks signature, expiry, room and node, in that order, so that nothing about an unsigned
    /// token (not even whether it "would have" expired) is revealed. Single use is checked
    /// separately by [`ReplayGuard`], after this succeeds.
    pub fn verify(
        &self,
        token: &[u8],
        expected_room: &str,
        expected_node: &str,
        now_ms: u64,
    ) -> Result<JoinClaims, TokenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::Invalid);
        }
        let dot = token
            .iter()
            .position(|&byte| byte == b'.')
            .ok_or(TokenError::Invalid)?;
        let payload = URL_SAFE_NO_PAD
            .decode(&token[..dot])
            .map_err(|_| TokenError::Invalid)?;
        let signature_bytes = URL_SAFE_NO_PAD
            .decode(&token[dot + 1..])
            .map_err(|_| TokenError::Invalid)?;
        let signature = Signature::from_slice(&signature_bytes).map_err(|_| TokenError::Invalid)?;
        self.verifying_key
            // Strict: also refuses malleable signatures and weak keys.
            .verify_strict(&signed_message(&payload), &signature)
            .map_err(|_| TokenError::Invalid)?;
        // Signed by us, so a decode failure means a version we do not speak: still invalid.
        let claims = decode_payload(&payload).ok_or(TokenError::Invalid)?;
        if claims.expires_at_ms <= now_ms {
            return Err(TokenError::Expired);
        }
        // A token for the right room on the wrong node is a token for a room that is not here.
        if claims.room_id != expected_room || claims.node_id != expected_node {
            return Err(TokenError::WrongRoom);
        }
        Ok(claims)
    }
}

fn signed_message(payload: &[u8]) -> Vec<u8> {
    let mut message = Vec::with_capacity(SIGNATURE_CONTEXT.len() + payload.len());
    message.extend_from_slice(SIGNATURE_CONTEXT);
    message.extend_from_slice(payload);
    message
}

fn push_short(
    payload: &mut Vec<u8>,
    field: &'static str,
    value: &[u8],
) -> Result<(), SigningKeyError> {
    let length = u8::try_from(value.len()).map_err(|_| SigningKeyError::ClaimTooLong { field })?;
    payload.push(length);
    payload.extend_from_slice(value);
    Ok(())
}

fn encode_payload(claims: &JoinClaims) -> Result<Vec<u8>, SigningKeyError> {
    let mut payload = Vec::with_capacity(
        64 + claims.player_id.len() + claims.player_name.len() + claims.cosmetics.len(),
    );
    payload.push(PAYLOAD_VERSION);
    push_short(&mut payload, "player_id", claims.player_id.as_bytes())?;
    push_short(&mut payload, "player_name", claims.player_name.as_bytes())?;
    push_short(&mut payload, "room_id", claims.room_id.as_bytes())?;
    push_short(&mut payload, "node_id", claims.node_id.as_bytes())?;
    payload.extend_from_slice(&claims.expires_at_ms.to_be_bytes());
    payload.extend_from_slice(&claims.nonce.0);
    push_short(&mut payload, "mode", claims.mode.as_bytes())?;
    payload.push(claims.role);
    payload.push(claims.team.unwrap_or(NO_TEAM));
    push_short(
        &mut payload,
        "party",
        claims.party.as_deref().unwrap_or_default().as_bytes(),
    )?;
    push_short(&mut payload, "cosmetics", &claims.cosmetics)?;
    let flag = |set: bool, bit: u8| if set { bit } else { 0 };
    payload.push(
        flag(claims.account, FLAG_ACCOUNT)
            | flag(claims.host, FLAG_HOST)
            | flag(claims.private, FLAG_PRIVATE)
            | flag(claims.password, FLAG_PASSWORD),
    );
    push_short(
        &mut payload,
        "rules",
        claims.rules.as_deref().unwrap_or_default().as_bytes(),
    )?;
    push_short(
        &mut payload,
        "password_hash",
        claims
            .password_hash
            .as_deref()
            .unwrap_or_default()
            .as_bytes(),
    )?;
    Ok(payload)
}

/// A cursor over a payload; every read is `None` past the end.
struct PayloadReader<'a>(&'a [u8]);

impl<'a> PayloadReader<'a> {
    fn bytes(&mut self, length: usize) -> Option<&'a [u8]> {
        if self.0.len() < length {
            return None;
        }
        let (taken, rest) = self.0.split_at(length);
        self.0 = rest;
        Some(taken)
    }

    fn u8(&mut self) -> Option<u8> {
        self.bytes(1).map(|bytes| bytes[0])
    }

    fn short(&mut self) -> Option<&'a [u8]> {
        let length = self.u8()?;
        self.bytes(usize::from(length))
    }

    fn string(&mut self) -> Option<String> {
        String::from_utf8(self.short()?.to_vec()).ok()
    }
}

/// Decodes a payload; `None` for anything that is not exactly one well-formed v1 or v2 payload.
fn decode_payload(payload: &[u8]) -> Option<JoinClaims> {
    let mut reader = PayloadReader(payload);
    let version = reader.u8()?;
    if ![PAYLOAD_V1, PAYLOAD_V2, PAYLOAD_VERSION].contains(&version) {
        return None;
    }
    let player_id = reader.string()?;
    let player_name = reader.string()?;
    let room_id = reader.string()?;
    let node_id = reader.string()?;
    let expires_at_ms = u64::from_be_bytes(reader.bytes(8)?.try_into().ok()?);
    let nonce = Nonce(reader.bytes(16)?.try_into().ok()?);
    let mut claims = JoinClaims {
        player_id,
        player_name,
        room_id,
        node_id,
        expires_at_ms,
        nonce,
        mode: DEFAULT_MODE.to_owned(),
        role: 0,
        team: None,
        party: None,
        cosmetics: Vec::new(),
        account: false,
        host: false,
        private: false,
        rules: None,
        password: false,
        password_hash: None,
    };
    if version >= PAYLOAD_V2 {
        claims.mode = reader.string()?;
        claims.role = reader.u8()?;
        claims.team = Some(reader.u8()?).filter(|team| *team != NO_TEAM);
        claims.party = Some(reader.string()?).filter(|party| !party.is_empty());
        claims.cosmetics = reader.short()?.to_vec();
        let flags = reader.u8()?;
        claims.account = flags & FLAG_ACCOUNT != 0;
        if version >= PAYLOAD_VERSION {
            claims.host = flags & FLAG_HOST != 0;
            claims.private = flags & FLAG_PRIVATE != 0;
            claims.password = flags & FLAG_PASSWORD != 0;
            claims.rules = Some(reader.string()?).filter(|rules| !rules.is_empty());
            claims.password_hash = Some(reader.string()?).filter(|hash| !hash.is_empty());
        }
    }
    reader.0.is_empty().then_some(claims)
}

/// Why [`ReplayGuard::check_and_remember`] refused a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    /// This nonce was already used on this node.
    #[error("join token was already used")]
    Replayed,
    /// The guard is full of unexpired nonces; refusing is the safe answer (a flood of fresh
    /// tokens must not push out remembered ones and re-open them for replay).
    #[error("join token replay guard is full")]
    GuardFull,
}

impl ReplayError {
    /// Stable code, like [`TokenError::code`].
    pub fn code(self) -> &'static str {
        match self {
            ReplayError::Replayed => "token_replayed",
            ReplayError::GuardFull => "token_guard_full",
        }
    }
}

/// Remembers used nonces until their token expires: a token is single use per node, and since a
/// token names its node, per node is everywhere. Memory is bounded by `capacity`; expired nonces
/// are pruned on every call (amortized O(log n) each). Shareable: `&self` methods, one short lock.
#[derive(Debug)]
pub struct ReplayGuard {
    capacity: usize,
    state: Mutex<ReplayState>,
}

#[derive(Debug, Default)]
struct ReplayState {
    expiry_by_nonce: HashMap<Nonce, u64>,
    by_expiry: BTreeSet<(u64, Nonce)>,
}

impl ReplayGuard {
    /// Default capacity: 65,536 nonces (about 3 MB), i.e. >2,000 joins per second per node
    /// sustained over a 30 s token lifetime.
    pub const DEFAULT_CAPACITY: usize = 65_536;

    pub fn new(capacity: usize) -> ReplayGuard {
        ReplayGuard {
            capacity: capacity.max(1),
            state: Mutex::new(ReplayState::default()),
        }
    }

    /// Accepts the token's nonce once; refuses it afterwards until it expires (after which the
    /// verifier refuses the token as expired anyway).
    pub fn check_and_remember(&self, claims: &JoinClaims, now_ms: u64) -> Result<(), ReplayError> {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        state.prune(now_ms);
        if state.expiry_by_nonce.contains_key(&claims.nonce) {
            return Err(ReplayError::Replayed);
        }
        if state.expiry_by_nonce.len() >= self.capacity {
            return Err(ReplayError::GuardFull);
        }
        state
            .expiry_by_nonce
            .insert(claims.nonce, claims.expires_at_ms);
        state.by_expiry.insert((claims.expires_at_ms, claims.nonce));
        Ok(())
    }

    /// Number of remembered nonces (for metrics).
    pub fn len(&self) -> usize {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .expiry_by_nonce
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Default for ReplayGuard {
    fn default() -> ReplayGuard {
        ReplayGuard::new(ReplayGuard::DEFAULT_CAPACITY)
    }
}

impl ReplayState {
    fn prune(&mut self, now_ms: u64) {
        while let Some(&(expires_at_ms, nonce)) = self.by_expiry.first() {
            if expires_at_ms > now_ms {
                break;
            }
            self.by_expiry.pop_first();
            self.expiry_by_nonce.remove(&nonce);
        }
    }
}

/// Everything a node refuses a join for, as one enum with stable codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum JoinRejection {
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error(transparent)]
    Replay(#[from] ReplayError),
}

impl JoinRejection {
    pub fn code(self) -> &'static str {
        match self {
            JoinRejection::Token(error) => error.code(),
            JoinRejection::Replay(error) => error.code(),
        }
    }
}

/// A node's whole token check: verify, then remember the nonce. Verification comes first so a
/// forged token can never burn a real nonce.
pub fn admit_join(
    verifier: &TokenVerifier,
    guard: &ReplayGuard,
    token: &[u8],
    expected_room: &str,
    expected_node: &str,
    now_ms: u64,
) -> Result<JoinClaims, JoinRejection> {
    let claims = verifier.verify(token, expected_room, expected_node, now_ms)?;
    guard.check_and_remember(&claims, now_ms)?;
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const NOW: u64 = 1_760_000_000_000;

    fn claims() -> JoinClaims {
        JoinClaims {
            player_id: "p-42".into(),
            player_name: "Ånna 🐍".into(),
            room_id: "us-east-3f2a9c10".into(),
            node_id: "node-a".into(),
            expires_at_ms: NOW + 20_000,
            nonce: Nonce::random(),
            mode: "breach".into(),
            role: 1,
            team: Some(2),
            party: Some("party-7".into()),
            cosmetics: vec![3, 0, 255],
            account: true,
            host: false,
            private: false,
            rules: None,
            password: false,
            password_hash: None,
        }
    }

    #[test]
    fn a_version_1_token_reads_as_an_arena_player() {
        let signer = TokenSigner::generate();
        let claims = claims();
        let mut payload = vec![PAYLOAD_V1];
        for field in [
            &claims.player_id,
            &claims.player_name,
            &claims.room_id,
            &claims.node_id,
        ] {
            push_short(&mut payload, "field", field.as_bytes()).unwrap();
        }
        payload.extend_from_slice(&claims.expires_at_ms.to_be_bytes());
        payload.extend_from_slice(&claims.nonce.0);
        let signature = signer.signing_key.sign(&signed_message(&payload));
        let token = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(&payload),
            URL_SAFE_NO_PAD.encode(signature.to_bytes())
        );
        let verified = signer
            .verifier()
            .verify(token.as_bytes(), &claims.room_id, &claims.node_id, NOW)
            .unwrap();
        assert_eq!(
            (
                verified.mode.as_str(),
                verified.role,
                verified.team,
                verified.party,
                verified.account
            ),
            (DEFAULT_MODE, 0, None, None, false)
        );
        assert_eq!(verified.player_name, claims.player_name);
        // A payload with bytes after its last field is not a payload of any version.
        payload.push(0);
        assert!(decode_payload(&payload).is_none());
    }

    #[test]
    fn valid_token_round_trips_its_claims() {
        let signer = TokenSigner::generate();
        let claims = claims();
        let token = signer.sign(&claims).unwrap();
        let verifier = TokenVerifier::from_public_key_base64(&signer.public_key_base64()).unwrap();
        let verified = verifier
            .verify(token.as_bytes(), "us-east-3f2a9c10", "node-a", NOW)
            .unwrap();
        assert_eq!(verified, claims);
        assert!(token.len() < 220, "token is compact: {} bytes", token.len());
        let anonymous = JoinClaims {
            team: None,
            party: None,
            cosmetics: Vec::new(),
            ..claims.clone()
        };
        let token = signer.sign(&anonymous).unwrap();
        let verified = verifier
            .verify(token.as_bytes(), "us-east-3f2a9c10", "node-a", NOW)
            .unwrap();
        assert_eq!(verified, anonymous);
    }

    #[test]
    fn expired_token_is_refused_as_expired_at_and_after_expiry() {
        let signer = TokenSigner::generate();
        let claims = claims();
        let token = signer.sign(&claims).unwrap();
        let verifier = signer.verifier();
        for now in [claims.expires_at_ms, claims.expires_at_ms + 1, u64::MAX] {
            assert_eq!(
                verifier.verify(token.as_bytes(), &claims.room_id, &claims.node_id, now),
                Err(TokenError::Expired)
            );
        }
        assert!(
            verifier
                .verify(
                    token.as_bytes(),
                    &claims.room_id,
                    &claims.node_id,
                    claims.expires_at_ms - 1
                )
                .is_ok()
        );
    }

    #[test]
    fn token_signed_by_another_key_is_invalid() {
        let matchmaker = TokenSigner::generate();
        let forger = TokenSigner::generate();
        let claims = claims();
        let forged = forger.sign(&claims).unwrap();
        assert_eq!(
            matchmaker
                .verifier()
                .verify(forged.as_bytes(), &claims.room_id, &claims.node_id, NOW),
            Err(TokenError::Invalid)
        );
    }

    #[test]
    fn tampered_payload_is_invalid_even_when_the_result_decodes() {
        let signer = TokenSigner::generate();
        let claims = claims();
        let token = signer.sign(&claims).unwrap();
        let (payload_text, signature_text) = token.split_once('.').unwrap();
        let mut payload = URL_SAFE_NO_PAD.decode(payload_text).unwrap();
        // Push the expiry one hour later: a well-formed payload the signature does not cover.
        let expiry_offset = 1 + [
            &claims.player_id,
            &claims.player_name,
            &claims.room_id,
            &claims.node_id,
        ]
        .iter()
        .map(|field| 1 + field.len())
        .sum::<usize>();
        let later = (claims.expires_at_ms + 3_600_000).to_be_bytes();
        payload[expiry_offset..expiry_offset + 8].copy_from_slice(&later);
        assert!(decode_payload(&payload).is_some());
        let tampered = format!("{}.{signature_text}", URL_SAFE_NO_PAD.encode(&payload));
        assert_eq!(
            signer
                .verifier()
                .verify(tampered.as_bytes(), &claims.room_id, &claims.node_id, NOW),
            Err(TokenError::Invalid)
        );
    }

    #[test]
    fn signature_without_the_context_prefix_is_invalid() {
        // Same key, same payload, but signed without domain separation (another use of the key).
        let signer = TokenSigner::generate();
        let claims = claims();
        let payload = encode_payload(&claims).unwrap();
        let signature = signer.signing_key.sign(&payload);
        let token = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(&payload),
            URL_SAFE_NO_PAD.encode(signature.to_bytes())
        );
        assert_eq!(
            signer
                .verifier()
                .verify(token.as_bytes(), &claims.room_id, &claims.node_id, NOW),
            Err(TokenError::Invalid)
        );
    }

    #[test]
    fn wrong_room_and_wrong_node_are_refused_as_wrong_room() {
        let signer = TokenSigner::generate();
        let claims = claims();
        let token = signer.sign(&claims).unwrap();
        let verifier = signer.verifier();
        assert_eq!(
            verifier.verify(token.as_bytes(), "us-east-other", &claims.node_id, NOW),
            Err(TokenError::WrongRoom)
        );
        assert_eq!(
            verifier.verify(token.as_bytes(), &claims.room_id, "node-b", NOW),
            Err(TokenError::WrongRoom)
        );
    }

    #[test]
    fn replayed_token_is_refused_and_forgotten_after_expiry() {
        let signer = TokenSigner::generate();
        let verifier = signer.verifier();
        let guard = ReplayGuard::default();
        let claims = claims();
        let token = signer.sign(&claims).unwrap();
        let admit = |now| {
            admit_join(
                &verifier,
                &guard,
                token.as_bytes(),
                &claims.room_id,
                &claims.node_id,
                now,
            )
        };
        assert_eq!(admit(NOW).unwrap(), claims);
        assert_eq!(
            admit(NOW + 1),
            Err(JoinRejection::Replay(ReplayError::Replayed))
        );
        assert_eq!(admit(NOW + 1).unwrap_err().code(), "token_replayed");
        // After expiry the verifier refuses it, and the guard has let go of the nonce.
        assert_eq!(
            admit(claims.expires_at_ms),
            Err(JoinRejection::Token(TokenError::Expired))
        );
        guard
            .check_and_remember(
                &JoinClaims {
                    expires_at_ms: NOW + 99_999,
                    ..claims.clone()
                },
                claims.expires_at_ms,
            )
            .unwrap();
        assert_eq!(guard.len(), 1);
    }

    #[test]
    fn forged_token_does_not_burn_the_real_nonce() {
        let signer = TokenSigner::generate();
        let forger = TokenSigner::generate();
        let guard = ReplayGuard::default();
        let claims = claims();
        let forged = forger.sign(&claims).unwrap();
        let real = signer.sign(&claims).unwrap();
        let verifier = signer.verifier();
        assert_eq!(
            admit_join(
                &verifier,
                &guard,
                forged.as_bytes(),
                &claims.room_id,
                &claims.node_id,
                NOW
            ),
            Err(JoinRejection::Token(TokenError::Invalid))
        );
        assert!(
            admit_join(
                &verifier,
                &guard,
                real.as_bytes(),
                &claims.room_id,
                &claims.node_id,
                NOW
            )
            .is_ok()
        );
    }

    #[test]
    fn replay_guard_memory_is_bounded_and_refuses_when_full() {
        let guard = ReplayGuard::new(3);
        let mut template = claims();
        for index in 0..3 {
            template.nonce = Nonce::random();
            template.expires_at_ms = NOW + 1_000 + index;
            guard.check_and_remember(&template, NOW).unwrap();
        }
        template.nonce = Nonce::random();
        assert_eq!(
            guard.check_and_remember(&template, NOW),
            Err(ReplayError::GuardFull)
        );
        // Once the oldest expires there is room again.
        guard.check_and_remember(&template, NOW + 1_000).unwrap();
        assert_eq!(guard.len(), 3);
    }

    #[test]
    fn every_distinct_error_has_its_own_code() {
        let codes = [
            JoinRejection::Token(TokenError::Invalid).code(),
            JoinRejection::Token(TokenError::Expired).code(),
            JoinRejection::Token(TokenError::WrongRoom).code(),
            JoinRejection::Replay(ReplayError::Replayed).code(),
            JoinRejection::Replay(ReplayError::GuardFull).code(),
        ];
        let unique: std::collections::HashSet<_> = codes.iter().collect();
        assert_eq!(unique.len(), codes.len());
    }

    #[test]
    fn overlong_claims_are_refused_at_signing() {
        let signer = TokenSigner::generate();
        let claims = JoinClaims {
            player_name: "x".repeat(256),
            ..claims()
        };
        assert!(matches!(
            signer.sign(&claims),
            Err(SigningKeyError::ClaimTooLong {
                field: "player_name"
            })
        ));
    }

    #[test]
    fn key_file_is_created_private_and_reloaded() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("keys/join-signing.key");
        let created = TokenSigner::load_or_create(&path).unwrap();
        let reloaded = TokenSigner::load_or_create(&path).unwrap();
        assert_eq!(created.public_key_base64(), reloaded.public_key_base64());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let leftovers = std::fs::read_dir(path.parent().unwrap()).unwrap().count();
        assert_eq!(leftovers, 1, "no temporary files are left behind");
        let seed_text = std::fs::read_to_string(&path).unwrap();
        let from_seed = TokenSigner::from_seed_base64(&seed_text).unwrap();
        assert_eq!(from_seed.public_key_base64(), created.public_key_base64());
    }

    #[test]
    fn bad_key_material_is_refused() {
        assert!(TokenSigner::from_seed_base64("not base64!").is_err());
        assert!(TokenSigner::from_seed_base64(&STANDARD.encode([1u8; 31])).is_err());
        assert!(TokenVerifier::from_public_key_base64(&STANDARD.encode([1u8; 33])).is_err());
    }

    #[test]
    fn nonce_hex_round_trips() {
        let nonce = Nonce::random();
        assert_eq!(Nonce::from_hex(&nonce.to_hex()), Some(nonce));
        assert_eq!(Nonce::from_hex("zz"), None);
        assert_eq!(Nonce::from_hex(&"é".repeat(16)), None);
    }

    #[test]
    fn invites_verify_for_their_lobby_until_they_expire() {
        let signer = TokenSigner::generate();
        let code = signer.sign_invite("us-east-lobby1", NOW + 1_000);
        assert_eq!(signer.verify_invite(&code, "us-east-lobby1", NOW), Ok(()));
        assert_eq!(
            signer.verify_invite(&code, "us-east-lobby1", NOW + 1_000),
            Err(TokenError::Expired)
        );
        assert_eq!(
            signer.verify_invite(&code, "us-east-lobby2", NOW),
            Err(TokenError::Invalid)
        );
        assert_eq!(
            TokenSigner::generate().verify_invite(&code, "us-east-lobby1", NOW),
            Err(TokenError::Invalid)
        );
        let mut forged = code.clone().into_bytes();
        forged[3] = if forged[3] == b'A' { b'B' } else { b'A' };
        let forged = String::from_utf8(forged).unwrap();
        assert_eq!(
            signer.verify_invite(&forged, "us-east-lobby1", NOW),
            Err(TokenError::Invalid)
        );
        assert_eq!(
            signer.verify_invite("", "us-east-lobby1", NOW),
            Err(TokenError::Invalid)
        );
        assert_eq!(
            signer.verify_invite("%%%", "us-east-lobby1", NOW),
            Err(TokenError::Invalid)
        );
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic_and_never_verify(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let verifier = TokenSigner::generate().verifier();
            prop_assert_eq!(verifier.verify(&bytes, "room", "node", NOW), Err(TokenError::Invalid));
            let _ = decode_payload(&bytes);
        }

        #[test]
        fn any_claims_round_trip(player_id in ".{0,40}", player_name in ".{0,40}", room in "[a-z0-9-]{1,32}", expiry in any::<u64>(), mode in "[a-z]{1,16}", role in 0u8..2, team in proptest::option::of(0u8..255), party in proptest::option::of("[a-z0-9]{1,20}"), cosmetics in proptest::collection::vec(any::<u8>(), 0..64), account in any::<bool>(), host in any::<bool>(), private in any::<bool>(), rules in proptest::option::of("[a-zA-Z0-9=;]{1,200}")) {
            let claims = JoinClaims { player_id, player_name, room_id: room, node_id: "n".into(), expires_at_ms: expiry, nonce: Nonce::random(), mode, role, team, party, cosmetics, account, host, private, password: private && host, rules, password_hash: None };
            let payload = encode_payload(&claims).unwrap();
            prop_assert_eq!(decode_payload(&payload), Some(claims));
        }

        #[test]
        fn flipping_any_bit_of_a_token_makes_it_invalid(position in 0usize..1000, bit in 0u8..8) {
            let signer = TokenSigner::generate();
            let claims = claims();
            let mut token = signer.sign(&claims).unwrap().into_bytes();
            let index = position % token.len();
            token[index] ^= 1 << bit;
            let result = signer.verifier().verify(&token, &claims.room_id, &claims.node_id, NOW);
            // Flipping a bit that base64 ignores (the unused low bits of the last character) may
            // leave the decoded bytes unchanged; then the token is still the original, valid one.
            match result {
                Ok(verified) => prop_assert_eq!(verified, claims),
                Err(error) => prop_assert_eq!(error, TokenError::Invalid),
            }
        }
    }
}
