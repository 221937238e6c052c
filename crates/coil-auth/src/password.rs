//! Passwords: the rules a new password must meet, and Argon2id hashing and verification on a
//! bounded blocking pool.
//!
//! # Cost
//! The default is OWASP's minimum for Argon2id (m = 19 MiB, t = 2, p = 1): one hash took ~24 ms
//! on one core of the 2-vCPU machine this project is measured on. Hashing runs on tokio's
//! blocking threads (never a runtime worker), and a semaphore bounds how many run at once
//! (`max_concurrent`, default half the cores, at least one), so logins can never take every core
//! from the game rooms; at most `max_waiting` requests queue for a permit and the rest are
//! refused at once with [`PasswordError::Busy`] (503 + Retry-After at the edge) instead of
//! piling up memory (19 MiB each while running) and latency.
//!
//! # Timing-safe failure
//! [`PasswordHasher::verify`] takes `Option<&str>`: for an unknown user (or a guest, which has
//! no password) the caller passes `None` and a dummy hash made with the same parameters at
//! startup is verified instead, so both failures cost exactly one Argon2 verification. The
//! [`PasswordHasher::verifications`] counter lets tests check that equality directly.
//!
//! This module must not log a password or a hash.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

use crate::metrics as m;

/// Shortest accepted new password, in characters (NIST SP 800-63B's minimum).
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Longest accepted new password, in characters: long passphrases are welcome, megabytes are not.
pub const MAX_PASSWORD_CHARS: usize = 128;

/// Why a new password was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordRuleError {
    #[error("password must be at least {MIN_PASSWORD_CHARS} characters")]
    TooShort,
    #[error("password must be at most {MAX_PASSWORD_CHARS} characters")]
    TooLong,
    #[error("password must not contain control characters")]
    ControlCharacter,
}

/// Checks a password chosen at registration, upgrade or change. Any printable Unicode is
/// allowed; nothing is trimmed (spaces are part of a passphrase).
pub fn validate_new_password(password: &str) -> Result<(), PasswordRuleError> {
    let length = password.chars().count();
    if length < MIN_PASSWORD_CHARS {
        return Err(PasswordRuleError::TooShort);
    }
    if length > MAX_PASSWORD_CHARS {
        return Err(PasswordRuleError::TooLong);
    }
    if password.chars().any(char::is_control) {
        return Err(PasswordRuleError::ControlCharacter);
    }
    Ok(())
}

/// Argon2id parameters and the pool that runs them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Argon2Settings {
    /// Memory per hash in KiB (m). OWASP minimum: 19,456 (19 MiB).
    pub memory_kib: u32,
    /// Passes over memory (t). OWASP minimum with 19 MiB: 2.
    pub iterations: u32,
    /// Lanes (p). 1: one hash uses one core.
    pub parallelism: u32,
    /// Hashes running at once; each holds `memory_kib` while it runs.
    pub max_concurrent: usize,
    /// Requests allowed to wait for a permit; beyond this they are refused as busy.
    pub max_waiting: usize,
}

impl Default for Argon2Settings {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        Argon2Settings {
            memory_kib: 19 * 1024,
            iterations: 2,
            parallelism: 1,
            max_concurrent: (cores / 2).max(1),
            max_waiting: 64,
        }
    }
}

impl Argon2Settings {
    /// The smallest parameters argon2 accepts (8 KiB, t = 1): for tests and for the load
    /// benchmark that is named as such. Never a production setting.
    pub fn insecure_fast_for_tests() -> Argon2Settings {
        Argon2Settings {
            memory_kib: 8,
            iterations: 1,
            parallelism: 1,
            max_concurrent: 4,
            max_waiting: 1024,
        }
    }
}

/// Errors of hashing and verifying (never "wrong password": that is `Ok(false)`).
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// Every permit is taken and the waiting line is full.
    #[error("password hashing is at capacity")]
    Busy,
    /// The parameters are outside what Argon2 accepts (a configuration error).
    #[error("invalid Argon2 parameters: {0}")]
    Parameters(String),
    /// Hashing failed or its thread was lost; the cause is logged, never sent to a client.
    #[error("password hashing failed: {0}")]
    Internal(String),
}

/// The result of a verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    pub matches: bool,
    /// The stored hash used other parameters than the current ones: store a fresh hash.
    pub needs_rehash: bool,
}

/// Argon2id hashing on a bounded pool. Cheap to share behind an `Arc`.
pub struct PasswordHasher {
    argon: Argon2<'static>,
    settings: Argon2Settings,
    permits: Arc<Semaphore>,
    waiting: AtomicUsize,
    dummy_hash: String,
    verifications: AtomicU64,
}

impl std::fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordHasher")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl PasswordHasher {
    /// Checks the parameters and makes the dummy hash (one Argon2 run, at startup).
    pub fn new(settings: Argon2Settings) -> Result<PasswordHasher, PasswordError> {
        if settings.max_concurrent == 0 {
            return Err(PasswordError::Parameters(
                "max_concurrent must be at least 1".into(),
            ));
        }
        let params = Params::new(
            settings.memory_kib,
            settings.iterations,
            settings.parallelism,
            None,
        )
        .map_err(|error| PasswordError::Parameters(error.to_string()))?;
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let mut filler = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut filler);
        let dummy_password: String = filler.iter().map(|byte| format!("{byte:02x}")).collect();
        let dummy_hash = hash_with(&argon, &dummy_password)?;
        Ok(PasswordHasher {
            argon,
            permits: Arc::new(Semaphore::new(settings.max_concurrent)),
            settings,
            waiting: AtomicUsize::new(0),
            dummy_hash,
            verifications: AtomicU64::new(0),
        })
    }

    pub fn settings(&self) -> &Argon2Settings {
        &self.settings
    }

    /// Argon2 verifications run so far (real and dummy alike).
    pub fn verifications(&self) -> u64 {
        self.verifications.load(Ordering::SeqCst)
    }

    /// Hashes a new password into a PHC string (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`).
    pub async fn hash(&self, password: &str) -> Result<String, PasswordError> {
        let argon = self.argon.clone();
        let password = password.to_owned();
        self.on_pool("hash", move || hash_with(&argon, &password))
            .await?
    }

    /// Verifies `password` against a stored PHC string, or against the dummy hash when
    /// `stored` is `None` (unknown user): the same work either way, and `matches` is then
    /// always false.
    pub async fn verify(
        &self,
        password: &str,
        stored: Option<&str>,
    ) -> Result<Verified, PasswordError> {
        let is_real = stored.is_some();
        let phc = stored.unwrap_or(&self.dummy_hash).to_owned();
        let argon = self.argon.clone();
        let password = password.to_owned();
        let current = (
            self.settings.memory_kib,
            self.settings.iterations,
            self.settings.parallelism,
        );
        self.verifications.fetch_add(1, Ordering::SeqCst);
        let (matches, needs_rehash) = self
            .on_pool("verify", move || {
                let Ok(parsed) = PasswordHash::new(&phc) else {
                    // A stored hash we cannot parse matches nothing; run the dummy so the
                    // time is still one verification.
                    return (false, false);
                };
                let matches = argon.verify_password(password.as_bytes(), &parsed).is_ok();
                let stored_params = Params::try_from(&parsed)
                    .map(|params| (params.m_cost(), params.t_cost(), params.p_cost()))
                    .ok();
                (matches, stored_params != Some(current))
            })
            .await?;
        Ok(Verified {
            matches: matches && is_real,
            needs_rehash: matches && is_real && needs_rehash,
        })
    }

    async fn on_pool<T: Send + 'static>(
        &self,
        operation: &'static str,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, PasswordError> {
        let queued = self.waiting.fetch_add(1, Ordering::SeqCst);
        if queued >= self.settings.max_waiting + self.settings.max_concurrent {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            m::password_refused_busy();
            return Err(PasswordError::Busy);
        }
        let permit = self.permits.clone().acquire_owned().await;
        let started = std::time::Instant::now();
        let result = match permit {
            Ok(permit) => {
                let outcome = tokio::task::spawn_blocking(move || {
                    let value = work();
                    drop(permit);
                    value
                })
                .await;
                outcome.map_err(|error| PasswordError::Internal(error.to_string()))
            }
            Err(closed) => Err(PasswordError::Internal(closed.to_string())),
        };
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        m::password_duration(operation, started.elapsed());
        result
    }
}

fn hash_with(argon: &Argon2<'_>, password: &str) -> Result<String, PasswordError> {
    let salt = SaltString::generate(&mut OsRng);
    argon
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|error| PasswordError::Internal(error.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fast() -> PasswordHasher {
        PasswordHasher::new(Argon2Settings::insecure_fast_for_tests()).unwrap()
    }

    #[test]
    fn new_passwords_follow_the_rules() {
        assert_eq!(
            validate_new_password("short"),
            Err(PasswordRuleError::TooShort)
        );
        assert_eq!(validate_new_password("eight ch"), Ok(()));
        assert_eq!(validate_new_password("pässwörd-ünïcode"), Ok(()));
        assert_eq!(
            validate_new_password(&"x".repeat(129)),
            Err(PasswordRuleError::TooLong)
        );
        assert_eq!(
            validate_new_password("with\nnewline"),
            Err(PasswordRuleError::ControlCharacter)
        );
    }

    #[tokio::test]
    async fn hashes_verify_and_wrong_passwords_do_not() {
        let hasher = fast();
        let hash = hasher.hash("correct horse").await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=8,t=1,p=1$"), "{hash}");
        assert!(!hash.contains("correct horse"));
        let right = hasher.verify("correct horse", Some(&hash)).await.unwrap();
        assert_eq!(
            right,
            Verified {
                matches: true,
                needs_rehash: false
            }
        );
        let wrong = hasher.verify("wrong horse", Some(&hash)).await.unwrap();
        assert!(!wrong.matches);
        // Same password, new salt: a different hash.
        assert_ne!(hasher.hash("correct horse").await.unwrap(), hash);
    }

    #[tokio::test]
    async fn unknown_users_cost_one_verification_like_wrong_passwords() {
        let hasher = fast();
        let hash = hasher.hash("correct horse").await.unwrap();
        let before = hasher.verifications();
        assert!(!hasher.verify("guess", Some(&hash)).await.unwrap().matches);
        assert_eq!(hasher.verifications(), before + 1);
        assert!(!hasher.verify("guess", None).await.unwrap().matches);
        assert_eq!(hasher.verifications(), before + 2);
        // Even the dummy's own password never matches for an unknown user.
        assert!(!hasher.verify("", None).await.unwrap().matches);
        // A corrupt stored hash matches nothing and still counts as one verification.
        assert!(
            !hasher
                .verify("x", Some("not a phc string"))
                .await
                .unwrap()
                .matches
        );
        assert_eq!(hasher.verifications(), before + 4);
    }

    #[tokio::test]
    async fn hashes_made_with_other_parameters_ask_for_a_rehash() {
        let old = PasswordHasher::new(Argon2Settings {
            memory_kib: 16,
            ..Argon2Settings::insecure_fast_for_tests()
        })
        .unwrap();
        let hash = old.hash("correct horse").await.unwrap();
        let current = fast();
        let verified = current.verify("correct horse", Some(&hash)).await.unwrap();
        assert_eq!(
            verified,
            Verified {
                matches: true,
                needs_rehash: true
            }
        );
        let wrong = current.verify("nope", Some(&hash)).await.unwrap();
        assert!(!wrong.needs_rehash, "only a proven password is rehashed");
    }

    #[tokio::test]
    async fn a_full_waiting_line_refuses_instead_of_queueing() {
        let hasher = Arc::new(
            PasswordHasher::new(Argon2Settings {
                max_concurrent: 1,
                max_waiting: 1,
                ..Argon2Settings::insecure_fast_for_tests()
            })
            .unwrap(),
        );
        // Hold the only permit so requests have to wait.
        let held = hasher.permits.clone().acquire_owned().await.unwrap();
        let first = tokio::spawn({
            let hasher = hasher.clone();
            async move { hasher.hash("password-1").await }
        });
        let second = tokio::spawn({
            let hasher = hasher.clone();
            async move { hasher.hash("password-2").await }
        });
        // Wait until both are counted (they are queued on the semaphore).
        while hasher.waiting.load(Ordering::SeqCst) < 2 {
            tokio::task::yield_now().await;
        }
        assert!(matches!(
            hasher.hash("password-3").await,
            Err(PasswordError::Busy)
        ));
        drop(held);
        assert!(first.await.unwrap().is_ok());
        assert!(second.await.unwrap().is_ok());
    }

    #[test]
    fn parameters_are_checked() {
        assert!(matches!(
            PasswordHasher::new(Argon2Settings {
                memory_kib: 1,
                ..Argon2Settings::insecure_fast_for_tests()
            }),
            Err(PasswordError::Parameters(_))
        ));
        assert!(matches!(
            PasswordHasher::new(Argon2Settings {
                max_concurrent: 0,
                ..Argon2Settings::insecure_fast_for_tests()
            }),
            Err(PasswordError::Parameters(_))
        ));
    }
}
