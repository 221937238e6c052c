//! Usernames: what a new one may be, and the keys under which it must be unique.
//!
//! A username follows Coil's ASCII name rule ([`coil_store::validate_ascii_name`]: 1–16
//! ASCII letters, digits, space, `_`, `-`, `.`), so a username is always a valid leaderboard
//! name (display names may be Unicode; logins may not). That rule already refuses non-ASCII
//! look-alikes (Cyrillic `а` for Latin `a`); what
//! remains is ASCII that reads the same: `l`/`I`/`1`/`|`, `O`/`0`, `rn`/`m`, and case. (UTS #39
//! does not list `vv`/`w` or `cl`/`d` as confusable, so neither do we.)
//!
//! Uniqueness uses the confusable *skeleton* of Unicode UTS #39 (§4), from `unicode-security`
//! (the unicode-rs crate that rustc's own `confusable_idents` lint uses). Every username gets
//! two keys, `skeleton(lowercase(name))` and `lowercase(skeleton(name))`, and two accounts may
//! not share a key: the first catches `Admin` vs `adrnin`, the second catches case changes of
//! letters whose skeleton differs by case (`AdmIn` → `Adrnln` vs `admln`). The store enforces
//! it with a primary key on the keys, so racing registrations cannot both win.
//!
//! Names starting with `guest` are reserved: guests are shown as `guest-xxxxxx`.

use coil_store::{NameError, UsernameKeys, validate_ascii_name};
use unicode_security::confusable_detection::skeleton;

/// Why a username was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsernameError {
    #[error("username: {0}")]
    Rules(#[from] NameError),
    #[error("username must not start with \"guest\" (guest names look like that)")]
    Reserved,
    #[error("username must contain a letter or a digit")]
    NoLetterOrDigit,
}

/// Validates a username and computes its unique keys.
pub fn username_keys(raw: &str) -> Result<UsernameKeys, UsernameError> {
    let username = validate_ascii_name(raw)?;
    if !username.bytes().any(|b| b.is_ascii_alphanumeric()) {
        return Err(UsernameError::NoLetterOrDigit);
    }
    let folded = username.to_ascii_lowercase();
    let skeleton_of_folded: String = skeleton(&folded).collect();
    let folded_skeleton: String = skeleton(&username).collect::<String>().to_lowercase();
    if skeleton_of_folded.starts_with("guest") || folded_skeleton.starts_with("guest") {
        return Err(UsernameError::Reserved);
    }
    let mut keys = vec![skeleton_of_folded, folded_skeleton];
    keys.sort();
    keys.dedup();
    Ok(UsernameKeys {
        username,
        folded,
        keys,
    })
}

/// The lower-cased form logins look an account up by (no confusable folding: a login names
/// the account exactly, up to case).
pub fn login_key(raw: &str) -> String {
    raw.trim().to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn share_a_key(a: &str, b: &str) -> bool {
        let a = username_keys(a).unwrap();
        let b = username_keys(b).unwrap();
        a.keys.iter().any(|key| b.keys.contains(key))
    }

    #[test]
    fn case_and_ascii_confusables_collide() {
        for (a, b) in [
            ("Admin", "admin"),
            ("admin", "ADMIN"),
            ("admin", "adrnin"),
            ("bill", "bi11"),
            ("bill", "biII"),
            ("Bob", "B0b"),
            ("AdmIn", "admln"),
        ] {
            assert!(share_a_key(a, b), "{a} and {b} should be confusable");
        }
        for (a, b) in [("alice", "bob"), ("ada", "adam"), ("mike", "nike")] {
            assert!(!share_a_key(a, b), "{a} and {b} are different names");
        }
    }

    #[test]
    fn display_name_rules_apply() {
        assert!(matches!(
            username_keys("\u{430}dmin"),
            Err(UsernameError::Rules(NameError::DisallowedCharacter { .. }))
        ));
        assert!(matches!(
            username_keys(""),
            Err(UsernameError::Rules(NameError::Empty))
        ));
        assert!(matches!(
            username_keys("a-very-long-username"),
            Err(UsernameError::Rules(NameError::TooLong { .. }))
        ));
        assert_eq!(username_keys("---"), Err(UsernameError::NoLetterOrDigit));
        assert_eq!(username_keys("Guest-1"), Err(UsernameError::Reserved));
        assert!(username_keys("questor").is_ok());
        let keys = username_keys("  Ada Lovelace ").unwrap();
        assert_eq!(keys.username, "Ada Lovelace");
        assert_eq!(keys.folded, "ada lovelace");
        assert_eq!(login_key(" ADA Lovelace"), "ada lovelace");
    }
}
