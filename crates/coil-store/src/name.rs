//! Player names: the one rule for what a display name shown to other players and on the
//! leaderboard may contain, and the stricter rule for usernames people log in with.
//!
//! **Display names** are Unicode, as players expect (`José`, `山田`, `Zoë 🐍`): 1 to 16
//! characters after trimming and NFC normalization, made of letters, combining marks, digits,
//! punctuation, symbols and plain spaces. What would let a name lie about itself is refused:
//! control and format characters (bidirectional overrides and isolates that reorder text,
//! zero-width joiners and other default-ignorable characters that hide differences), any
//! whitespace but the ASCII space, unassigned and private-use code points, and names that mix
//! scripts in a way Unicode's UTS #39 calls not single-script (Latin `a` next to Cyrillic `а`:
//! `аdmin` impersonating `admin`). The check comes from `unicode-security`, the unicode-rs crate
//! rustc's own confusable-identifier lint uses.
//!
//! **Usernames** (what an account logs in with, unique across accounts) stay ASCII letters,
//! digits, space, `_`, `-` and `.` ([`validate_ascii_name`]): a login must be typeable
//! anywhere, and uniqueness up to look-alikes is then a small, auditable rule (`coil-auth`).
//!
//! This module does no IO.

use unicode_normalization::UnicodeNormalization;
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};
use unicode_security::MixedScript;

/// Longest accepted name, in characters, after trimming.
pub const MAX_PLAYER_NAME_CHARS: usize = 16;

/// Why a player name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("name is empty")]
    Empty,
    #[error("name is {length} characters long; at most {max} are allowed")]
    TooLong { length: usize, max: usize },
    #[error("name contains a control character at position {position}")]
    ControlCharacter { position: usize },
    #[error(
        "name contains {character:?} at position {position}; names use letters, digits, marks, punctuation, symbols and spaces"
    )]
    DisallowedCharacter { character: char, position: usize },
    #[error("name mixes scripts that can impersonate another name (e.g. Latin and Cyrillic)")]
    MixedScripts,
}

/// Trims, normalizes to NFC and checks a display name (see the module docs). Returns the
/// normalized name. Positions in errors count characters of the trimmed, normalized name.
pub fn validate_player_name(name: &str) -> Result<String, NameError> {
    let trimmed = name.trim();
    if trimmed.is_empty() {
        return Err(NameError::Empty);
    }
    // Bound the work before normalizing: a name far over the limit is refused as it is.
    let raw_length = trimmed.chars().count();
    if raw_length > MAX_PLAYER_NAME_CHARS * 4 {
        return Err(NameError::TooLong {
            length: raw_length,
            max: MAX_PLAYER_NAME_CHARS,
        });
    }
    let normalized: String = trimmed.nfc().collect();
    // Characters are checked before the length so that a long name full of control characters
    // is reported for what is actually wrong with it.
    for (position, character) in normalized.chars().enumerate() {
        if character.is_control() {
            return Err(NameError::ControlCharacter { position });
        }
        if !allowed(character, position) {
            return Err(NameError::DisallowedCharacter {
                character,
                position,
            });
        }
    }
    let length = normalized.chars().count();
    if length > MAX_PLAYER_NAME_CHARS {
        return Err(NameError::TooLong {
            length,
            max: MAX_PLAYER_NAME_CHARS,
        });
    }
    if !normalized.as_str().is_single_script() {
        return Err(NameError::MixedScripts);
    }
    Ok(normalized)
}

/// Whether one character may appear in a display name at `position`.
fn allowed(character: char, position: usize) -> bool {
    use GeneralCategory::*;
    if character == ' ' {
        return true;
    }
    // Default-ignorable characters that are letters or marks (the rest are format characters,
    // refused below): invisible fillers that make a blank or look-alike name.
    if matches!(
        character,
        '\u{115f}'
            | '\u{1160}'
            | '\u{3164}'
            | '\u{ffa0}'
            | '\u{34f}'
            | '\u{17b4}'
            | '\u{17b5}'
            | '\u{180b}'..='\u{180f}'
    ) {
        return false;
    }
    match character.general_category() {
        UppercaseLetter | LowercaseLetter | TitlecaseLetter | ModifierLetter | OtherLetter => true,
        // A mark needs a base to sit on.
        NonspacingMark | SpacingMark | EnclosingMark => position > 0,
        DecimalNumber | LetterNumber | OtherNumber => true,
        ConnectorPunctuation | DashPunctuation | OpenPunctuation | ClosePunctuation
        | InitialPunctuation | FinalPunctuation | OtherPunctuation => true,
        MathSymbol | CurrencySymbol | ModifierSymbol | OtherSymbol => true,
        // Other spaces, line/paragraph separators, controls, format characters (bidi, zero
        // width), surrogates, private use, unassigned.
        SpaceSeparator | LineSeparator | ParagraphSeparator | Control | Format | Surrogate
        | PrivateUse | Unassigned => false,
    }
}

/// The username rule: 1 to 16 characters after trimming, each an ASCII letter or digit, a
/// space, `_`, `-` or `.`. Returns the trimmed name.
pub fn validate_ascii_name(name: &str) -> Result<String, NameError> {
    let trimmed = name.trim();
    if trimmed.is_empty() {
        return Err(NameError::Empty);
    }
    for (position, character) in trimmed.chars().enumerate() {
        if character.is_control() {
            return Err(NameError::ControlCharacter { position });
        }
        let allowed =
            character.is_ascii_alphanumeric() || matches!(character, ' ' | '_' | '-' | '.');
        if !allowed {
            return Err(NameError::DisallowedCharacter {
                character,
                position,
            });
        }
    }
    // Every accepted character is ASCII, so the byte length is the character count.
    let length = trimmed.len();
    if length > MAX_PLAYER_NAME_CHARS {
        return Err(NameError::TooLong {
            length,
            max: MAX_PLAYER_NAME_CHARS,
        });
    }
    Ok(trimmed.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_names_players_expect_and_trims() {
        for name in [
            "José",
            "Zoë",
            "山田太郎",
            "Ада",
            "snake 🐍",
            "Ada_L-1.0",
            "two  spaces",
        ] {
            assert_eq!(validate_player_name(name).as_deref(), Ok(name), "{name}");
        }
        assert_eq!(validate_player_name("  Ada \t").as_deref(), Ok("Ada"));
        let sixteen = "abcdefghijklmnop";
        assert_eq!(validate_player_name(sixteen).as_deref(), Ok(sixteen));
    }

    #[test]
    fn normalizes_to_one_spelling() {
        // "e" + combining acute is the same name as "é".
        assert_eq!(
            validate_player_name("Jose\u{301}").as_deref(),
            Ok("Jos\u{e9}")
        );
    }

    #[test]
    fn refuses_empty_and_whitespace_only() {
        assert_eq!(validate_player_name(""), Err(NameError::Empty));
        assert_eq!(validate_player_name(" \t\n "), Err(NameError::Empty));
    }

    #[test]
    fn refuses_oversized_names() {
        assert_eq!(
            validate_player_name("abcdefghijklmnopq"),
            Err(NameError::TooLong {
                length: 17,
                max: 16
            })
        );
        let huge = "x".repeat(1_000_000);
        assert!(matches!(
            validate_player_name(&huge),
            Err(NameError::TooLong { max: 16, .. })
        ));
    }

    #[test]
    fn refuses_control_and_format_characters() {
        assert_eq!(
            validate_player_name("ab\ncd"),
            Err(NameError::ControlCharacter { position: 2 })
        );
        assert_eq!(
            validate_player_name("x\u{9b}y"),
            Err(NameError::ControlCharacter { position: 1 })
        );
        // Right-to-left override and isolates would reorder how a name renders.
        for hidden in [
            '\u{202e}', '\u{2066}', '\u{200b}', '\u{200d}', '\u{feff}', '\u{a0}', '\u{3164}',
        ] {
            assert!(
                matches!(
                    validate_player_name(&format!("a{hidden}b")),
                    Err(NameError::DisallowedCharacter { position: 1, .. })
                ),
                "{hidden:?}"
            );
        }
        // A mark with nothing to sit on, and private use.
        assert!(validate_player_name("\u{301}a").is_err());
        assert!(validate_player_name("a\u{e000}").is_err());
    }

    #[test]
    fn refuses_mixed_script_impersonation() {
        // Cyrillic 'а' among Latin letters: `аdmin` would pass for `admin`.
        assert_eq!(
            validate_player_name("\u{430}dmin"),
            Err(NameError::MixedScripts)
        );
        // A whole name in one script is fine, symbols and digits belong to every script.
        assert!(validate_player_name("Админ 2").is_ok());
    }

    #[test]
    fn usernames_stay_ascii() {
        assert_eq!(
            validate_ascii_name(" Ada_L-1.0 ").as_deref(),
            Ok("Ada_L-1.0")
        );
        assert!(matches!(
            validate_ascii_name("José"),
            Err(NameError::DisallowedCharacter {
                character: 'é', ..
            })
        ));
        assert!(validate_ascii_name("<script>").is_err());
    }

    #[test]
    fn errors_explain_the_problem() {
        let message = validate_player_name("abcdefghijklmnopqrstu")
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("21") && message.contains("16"),
            "{message}"
        );
        let message = validate_player_name("a\u{200b}b").unwrap_err().to_string();
        assert!(message.contains("position 1"), "{message}");
    }

    proptest! {
        #[test]
        fn any_input_is_either_refused_or_yields_a_valid_normalized_name(input in any::<String>()) {
            if let Ok(name) = validate_player_name(&input) {
                let chars = name.chars().count();
                prop_assert!((1..=MAX_PLAYER_NAME_CHARS).contains(&chars));
                prop_assert_eq!(name.trim(), name.as_str());
                prop_assert!(name.chars().all(|c| !c.is_control()));
                // Validating a valid name changes nothing.
                prop_assert_eq!(validate_player_name(&name), Ok(name.clone()));
            }
        }

        #[test]
        fn ascii_names_from_the_old_alphabet_are_still_accepted(name in "[A-Za-z0-9_.-][A-Za-z0-9 _.-]{0,14}[A-Za-z0-9_.-]") {
            prop_assert_eq!(validate_player_name(&name), Ok(name.clone()));
            prop_assert_eq!(validate_ascii_name(&name), Ok(name.clone()));
        }
    }
}
