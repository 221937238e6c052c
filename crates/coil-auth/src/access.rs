//! Access tokens: short-lived JWTs signed with Ed25519 (`alg: EdDSA`). The API replicas sign;
//! anything that only needs to know who a request is from (matchmaker, game nodes, community
//! servers later) verifies with the public key alone.
//!
//! Claims: `sub` (account id), `name` (display name), `roles`, `region` (preferred region, if
//! any), `sid` (session id), `guest`, and the registered `iss`, `aud`, `iat`, `nbf`, `exp`.
//! The signature, `alg`, `iss` and `aud` are checked by `jsonwebtoken`; the times are checked
//! here against the `now` the caller passes, so tests step time by hand and the check is the
//! same pure function everywhere. Only `EdDSA` is accepted: `alg: none` and HMAC tokens (the
//! "public key as HMAC secret" confusion) are refused before any signature work.
//!
//! This module never logs a token or a key.

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use coil_store::{AccountId, Role, SessionId};
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::keyfile::load_or_create_secret_file;

/// Tokens longer than this are refused before parsing (real ones are ~500 bytes).
pub const MAX_ACCESS_TOKEN_LEN: usize = 4096;

/// Who the tokens are from and for, and how long they live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessTokenSettings {
    /// `iss`: names the issuing platform (default `coil`).
    pub issuer: String,
    /// `aud`: names who may accept the token (default `coil-game`).
    pub audience: String,
    /// Lifetime (default 15 minutes).
    pub ttl: Duration,
    /// Clock skew tolerated on `nbf` and `exp` (default 5 s).
    pub leeway: Duration,
}

impl Default for AccessTokenSettings {
    fn default() -> Self {
        AccessTokenSettings {
            issuer: "coil".to_owned(),
            audience: "coil-game".to_owned(),
            ttl: Duration::from_secs(15 * 60),
            leeway: Duration::from_secs(5),
        }
    }
}

/// The claims as they travel (the JSON payload of the JWT).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct WireClaims {
    sub: String,
    name: String,
    roles: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    region: Option<String>,
    sid: String,
    #[serde(default)]
    guest: bool,
    iss: String,
    aud: String,
    iat: u64,
    nbf: u64,
    exp: u64,
}

/// Who a verified access token says the caller is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessClaims {
    pub account_id: AccountId,
    pub display_name: String,
    pub roles: Vec<Role>,
    pub preferred_region: Option<String>,
    pub session_id: SessionId,
    pub guest: bool,
    /// Unix seconds.
    pub issued_at_s: u64,
    /// Unix seconds.
    pub expires_at_s: u64,
}

impl AccessClaims {
    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }
}

/// What a token is issued for (the account's current state and the session).
#[derive(Debug, Clone)]
pub struct AccessGrant<'a> {
    pub account_id: &'a AccountId,
    pub display_name: &'a str,
    pub roles: &'a [Role],
    pub preferred_region: Option<&'a str>,
    pub session_id: &'a SessionId,
    pub guest: bool,
}

/// Why a token was refused. Codes are stable (HTTP `error.code`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AccessTokenError {
    /// Malformed, wrong algorithm, bad signature, wrong issuer or audience, bad claims.
    #[error("access token is invalid")]
    Invalid,
    #[error("access token has expired")]
    Expired,
    #[error("access token is not valid yet")]
    NotYetValid,
}

impl AccessTokenError {
    pub fn code(self) -> &'static str {
        match self {
            AccessTokenError::Invalid => "token_invalid",
            AccessTokenError::Expired => "token_expired",
            AccessTokenError::NotYetValid => "token_not_yet_valid",
        }
    }
}

/// Problems with key material (startup only; never shown to players).
#[derive(Debug, thiserror::Error)]
pub enum AccessKeyError {
    #[error("key is not standard base64 of 32 bytes")]
    BadKeyMaterial,
    #[error("key file {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("signing failed: {0}")]
    Signing(String),
}

/// Holds the Ed25519 signing key. Lives in the API replicas only.
pub struct AccessTokenSigner {
    encoding_key: EncodingKey,
    public_key: [u8; 32],
    settings: AccessTokenSettings,
}

impl std::fmt::Debug for AccessTokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessTokenSigner")
            .field("public_key", &self.public_key_base64())
            .field("settings", &self.settings)
            .finish()
    }
}

impl AccessTokenSigner {
    fn from_signing_key(
        key: &SigningKey,
        settings: AccessTokenSettings,
    ) -> Result<AccessTokenSigner, AccessKeyError> {
        let der = key
            .to_pkcs8_der()
            .map_err(|error| AccessKeyError::Signing(error.to_string()))?;
        Ok(AccessTokenSigner {
            encoding_key: EncodingKey::from_ed_der(der.as_bytes()),
            public_key: key.verifying_key().to_bytes(),
            settings,
        })
    }

    /// A fresh random key (tests; a process whose tokens need not survive it).
    pub fn generate(settings: AccessTokenSettings) -> AccessTokenSigner {
        let key = SigningKey::generate(&mut rand::rngs::OsRng);
        // PKCS#8 encoding of a valid key cannot fail.
        Self::from_signing_key(&key, settings).expect("encoding a fresh Ed25519 key")
    }

    /// The key from standard base64 of its 32-byte seed (`ACCESS_TOKEN_SIGNING_KEY`).
    pub fn from_seed_base64(
        text: &str,
        settings: AccessTokenSettings,
    ) -> Result<AccessTokenSigner, AccessKeyError> {
        let seed: [u8; 32] = STANDARD
            .decode(text.trim())
            .ok()
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or(AccessKeyError::BadKeyMaterial)?;
        Self::from_signing_key(&SigningKey::from_bytes(&seed), settings)
    }

    /// Reads the seed from `path`, creating the file with a fresh one on first start.
    pub fn load_or_create(
        path: &Path,
        settings: AccessTokenSettings,
    ) -> Result<AccessTokenSigner, AccessKeyError> {
        let text = load_or_create_secret_file(path, || {
            let key = SigningKey::generate(&mut rand::rngs::OsRng);
            format!("{}\n", STANDARD.encode(key.to_bytes()))
        })
        .map_err(|source| AccessKeyError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_seed_base64(&text, settings)
    }

    /// The public half, standard base64 (`ACCESS_TOKEN_PUBLIC_KEY` for verifiers).
    pub fn public_key_base64(&self) -> String {
        STANDARD.encode(self.public_key)
    }

    pub fn settings(&self) -> &AccessTokenSettings {
        &self.settings
    }

    /// A verifier for the public half with the same issuer and audience.
    pub fn verifier(&self) -> AccessTokenVerifier {
        AccessTokenVerifier::from_public_key(self.public_key, &self.settings)
    }

    /// Signs a token valid from `now_ms` for the configured lifetime. Returns the token and
    /// its expiry in Unix milliseconds.
    pub fn issue(
        &self,
        grant: &AccessGrant<'_>,
        now_ms: u64,
    ) -> Result<(String, u64), AccessKeyError> {
        let now_s = now_ms / 1000;
        let exp = now_s + self.settings.ttl.as_secs().max(1);
        let claims = WireClaims {
            sub: grant.account_id.to_string(),
            name: grant.display_name.to_owned(),
            roles: grant
                .roles
                .iter()
                .map(|role| role.as_str().to_owned())
                .collect(),
            region: grant.preferred_region.map(str::to_owned),
            sid: grant.session_id.to_string(),
            guest: grant.guest,
            iss: self.settings.issuer.clone(),
            aud: self.settings.audience.clone(),
            iat: now_s,
            nbf: now_s,
            exp,
        };
        let token =
            jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), &claims, &self.encoding_key)
                .map_err(|error| AccessKeyError::Signing(error.to_string()))?;
        Ok((token, exp * 1000))
    }
}

/// Holds only the public key. Cheap to clone; verification takes no lock and does no IO.
#[derive(Clone)]
pub struct AccessTokenVerifier {
    decoding_key: DecodingKey,
    validation: Validation,
    leeway_s: u64,
}

impl std::fmt::Debug for AccessTokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessTokenVerifier")
            .field("issuer", &self.validation.iss)
            .field("audience", &self.validation.aud)
            .finish_non_exhaustive()
    }
}

impl AccessTokenVerifier {
    fn from_public_key(
        public_key: [u8; 32],
        settings: &AccessTokenSettings,
    ) -> AccessTokenVerifier {
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[settings.issuer.as_str()]);
        validation.set_audience(&[settings.audience.as_str()]);
        // Presence is required here; the times themselves are checked in `verify` against the
        // caller's `now`.
        validation.required_spec_claims = ["exp", "nbf", "iss", "aud", "sub"]
            .into_iter()
            .map(str::to_owned)
            .collect::<HashSet<_>>();
        validation.validate_exp = false;
        validation.validate_nbf = false;
        AccessTokenVerifier {
            decoding_key: DecodingKey::from_ed_der(&public_key),
            validation,
            leeway_s: settings.leeway.as_secs(),
        }
    }

    /// A verifier from the text [`AccessTokenSigner::public_key_base64`] prints.
    pub fn from_public_key_base64(
        text: &str,
        settings: &AccessTokenSettings,
    ) -> Result<AccessTokenVerifier, AccessKeyError> {
        let bytes: [u8; 32] = STANDARD
            .decode(text.trim())
            .ok()
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or(AccessKeyError::BadKeyMaterial)?;
        // Refuse points that are not on the curve now rather than at the first request.
        ed25519_dalek::VerifyingKey::from_bytes(&bytes)
            .map_err(|_| AccessKeyError::BadKeyMaterial)?;
        Ok(Self::from_public_key(bytes, settings))
    }

    /// Checks a token: algorithm, signature, issuer, audience, then `nbf`/`exp` against
    /// `now_ms` (with the leeway), then the claims' shapes. Revocation is a separate check
    /// ([`crate::revocation::RevocationList`]), because it needs shared state.
    pub fn verify(&self, token: &str, now_ms: u64) -> Result<AccessClaims, AccessTokenError> {
        if token.len() > MAX_ACCESS_TOKEN_LEN {
            return Err(AccessTokenError::Invalid);
        }
        let data = jsonwebtoken::decode::<WireClaims>(token, &self.decoding_key, &self.validation)
            .map_err(|_| AccessTokenError::Invalid)?;
        let claims = data.claims;
        let now_s = now_ms / 1000;
        if claims.nbf > now_s + self.leeway_s {
            return Err(AccessTokenError::NotYetValid);
        }
        if claims.exp + self.leeway_s <= now_s {
            return Err(AccessTokenError::Expired);
        }
        let account_id = AccountId::parse(&claims.sub).map_err(|_| AccessTokenError::Invalid)?;
        let session_id = SessionId::parse(&claims.sid).map_err(|_| AccessTokenError::Invalid)?;
        let roles = claims
            .roles
            .iter()
            .map(|name| Role::parse(name).ok_or(AccessTokenError::Invalid))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(AccessClaims {
            account_id,
            display_name: claims.name,
            roles,
            preferred_region: claims.region,
            session_id,
            guest: claims.guest,
            issued_at_s: claims.iat,
            expires_at_s: claims.exp,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    const NOW_MS: u64 = 1_800_000_000_000;

    fn signer() -> AccessTokenSigner {
        AccessTokenSigner::generate(AccessTokenSettings::default())
    }

    fn grant_parts() -> (AccountId, SessionId) {
        (AccountId::generate(), SessionId::generate())
    }

    fn issue(signer: &AccessTokenSigner, now_ms: u64) -> (String, AccountId, SessionId) {
        let (account, session) = grant_parts();
        let (token, _) = signer
            .issue(
                &AccessGrant {
                    account_id: &account,
                    display_name: "Ada",
                    roles: &[Role::Player, Role::Admin],
                    preferred_region: Some("eu-central"),
                    session_id: &session,
                    guest: false,
                },
                now_ms,
            )
            .unwrap();
        (token, account, session)
    }

    /// A token with the given header and claims JSON and an arbitrary signature part.
    fn forged(header: &str, claims: &serde_json::Value, signature: &[u8]) -> String {
        format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(claims.to_string()),
            URL_SAFE_NO_PAD.encode(signature)
        )
    }

    fn claims_json(account: &AccountId, session: &SessionId, now_s: u64) -> serde_json::Value {
        serde_json::json!({
            "sub": account.as_str(), "name": "Mallory", "roles": ["player", "admin"],
            "sid": session.as_str(), "guest": false, "iss": "coil", "aud": "coil-game",
            "iat": now_s, "nbf": now_s, "exp": now_s + 900,
        })
    }

    #[test]
    fn issued_tokens_verify_with_the_public_key_alone() {
        let signer = signer();
        let (token, account, session) = issue(&signer, NOW_MS);
        let verifier = AccessTokenVerifier::from_public_key_base64(
            &signer.public_key_base64(),
            signer.settings(),
        )
        .unwrap();
        let claims = verifier.verify(&token, NOW_MS + 1_000).unwrap();
        assert_eq!(claims.account_id, account);
        assert_eq!(claims.session_id, session);
        assert_eq!(claims.display_name, "Ada");
        assert_eq!(claims.roles, vec![Role::Player, Role::Admin]);
        assert_eq!(claims.preferred_region.as_deref(), Some("eu-central"));
        assert!(claims.has_role(Role::Admin));
        assert_eq!(claims.expires_at_s, NOW_MS / 1000 + 900);
        let header: serde_json::Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(token.split('.').next().unwrap())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(header["alg"], "EdDSA");
    }

    #[test]
    fn expired_and_not_yet_valid_tokens_are_refused() {
        let signer = signer();
        let verifier = signer.verifier();
        let (token, ..) = issue(&signer, NOW_MS);
        // 15 minutes plus the 5 s leeway: still fine one second before, refused at the end.
        assert!(verifier.verify(&token, NOW_MS + 904_000).is_ok());
        assert_eq!(
            verifier.verify(&token, NOW_MS + 905_000),
            Err(AccessTokenError::Expired)
        );
        // Issued "in the future" (a replica whose clock is ahead by more than the leeway).
        assert!(verifier.verify(&token, NOW_MS - 5_000).is_ok());
        assert_eq!(
            verifier.verify(&token, NOW_MS - 6_000),
            Err(AccessTokenError::NotYetValid)
        );
    }

    #[test]
    fn a_token_from_another_key_is_refused() {
        let (token, ..) = issue(&signer(), NOW_MS);
        assert_eq!(
            signer().verifier().verify(&token, NOW_MS),
            Err(AccessTokenError::Invalid)
        );
    }

    #[test]
    fn wrong_audience_or_issuer_is_refused() {
        let other_audience = AccessTokenSigner::generate(AccessTokenSettings {
            audience: "someone-else".into(),
            ..AccessTokenSettings::default()
        });
        let (token, ..) = issue(&other_audience, NOW_MS);
        // Same key, verified as the game expects (audience coil-game).
        let verifier = AccessTokenVerifier::from_public_key_base64(
            &other_audience.public_key_base64(),
            &AccessTokenSettings::default(),
        )
        .unwrap();
        assert_eq!(
            verifier.verify(&token, NOW_MS),
            Err(AccessTokenError::Invalid)
        );
        let other_issuer = AccessTokenSigner::generate(AccessTokenSettings {
            issuer: "evil".into(),
            ..AccessTokenSettings::default()
        });
        let (token, ..) = issue(&other_issuer, NOW_MS);
        let verifier = AccessTokenVerifier::from_public_key_base64(
            &other_issuer.public_key_base64(),
            &AccessTokenSettings::default(),
        )
        .unwrap();
        assert_eq!(
            verifier.verify(&token, NOW_MS),
            Err(AccessTokenError::Invalid)
        );
    }

    #[test]
    fn alg_none_and_hmac_with_the_public_key_are_refused() {
        let signer = signer();
        let verifier = signer.verifier();
        let (account, session) = grant_parts();
        let claims = claims_json(&account, &session, NOW_MS / 1000);
        for header in [
            r#"{"alg":"none","typ":"JWT"}"#,
            r#"{"alg":"None","typ":"JWT"}"#,
            r#"{"typ":"JWT"}"#,
        ] {
            let token = forged(header, &claims, b"");
            assert_eq!(
                verifier.verify(&token, NOW_MS),
                Err(AccessTokenError::Invalid),
                "{header}"
            );
            let token = format!("{}.", &token[..token.len()]);
            assert_eq!(
                verifier.verify(&token, NOW_MS),
                Err(AccessTokenError::Invalid)
            );
        }
        // HS256 "signed" with the public key bytes as the secret (algorithm confusion).
        let public = STANDARD.decode(signer.public_key_base64()).unwrap();
        let hmac_token = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(&public).unwrap(),
        )
        .unwrap();
        assert_eq!(
            verifier.verify(&hmac_token, NOW_MS),
            Err(AccessTokenError::Invalid)
        );
        // A real signature over other claims, with the claims swapped: the signature breaks.
        let (real, ..) = issue(&signer, NOW_MS);
        let parts: Vec<&str> = real.split('.').collect();
        let swapped = format!(
            "{}.{}.{}",
            parts[0],
            URL_SAFE_NO_PAD.encode(claims.to_string()),
            parts[2]
        );
        assert_eq!(
            verifier.verify(&swapped, NOW_MS),
            Err(AccessTokenError::Invalid)
        );
    }

    #[test]
    fn garbage_never_panics() {
        let verifier = signer().verifier();
        for garbage in [
            "",
            ".",
            "..",
            "a.b.c",
            "eyJhbGciOiJFZERTQSJ9..",
            &"x".repeat(MAX_ACCESS_TOKEN_LEN + 1),
        ] {
            assert_eq!(
                verifier.verify(garbage, NOW_MS),
                Err(AccessTokenError::Invalid)
            );
        }
    }

    #[test]
    fn keys_load_from_files_and_base64() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("access-token.key");
        let first =
            AccessTokenSigner::load_or_create(&path, AccessTokenSettings::default()).unwrap();
        let second =
            AccessTokenSigner::load_or_create(&path, AccessTokenSettings::default()).unwrap();
        assert_eq!(first.public_key_base64(), second.public_key_base64());
        let seed = std::fs::read_to_string(&path).unwrap();
        let third =
            AccessTokenSigner::from_seed_base64(&seed, AccessTokenSettings::default()).unwrap();
        assert_eq!(third.public_key_base64(), first.public_key_base64());
        assert!(
            !format!("{first:?}").contains(seed.trim()),
            "Debug never shows the seed"
        );
        for bad in ["", "not base64!", "AAAA"] {
            assert!(
                AccessTokenSigner::from_seed_base64(bad, AccessTokenSettings::default()).is_err()
            );
            assert!(
                AccessTokenVerifier::from_public_key_base64(bad, &AccessTokenSettings::default())
                    .is_err()
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn any_text_is_refused_without_panicking(text in ".{0,600}") {
            let verifier = AccessTokenSigner::generate(AccessTokenSettings::default()).verifier();
            proptest::prop_assert!(verifier.verify(&text, NOW_MS).is_err());
        }
    }
}
