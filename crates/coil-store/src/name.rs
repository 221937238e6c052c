//! Player display names: the one rule for what a name shown on the leaderboard may contain.
//!
//! Names are restricted to ASCII letters, digits, space, `_`, `-` and `.` so that nothing on the
//! leaderboard can impersonate another name with look-alike Unicode, reorder text with
//! bidirectional controls, or break a terminal or log line. This module does no IO.

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
        "name contains {character:?} at position {position}; only letters A-Z, digits, space, '_', '-' and '.' are allowed"
    )]
    DisallowedCharacter { character: char, position: usize },
}

/// Trims surrounding whitespace and checks what remains: 1 to 16 characters, each an ASCII
/// letter or digit, a space, `_`, `-` or `.`. Returns the trimmed name.
///
/// Positions in errors count characters (not bytes) from the start of the trimmed name.
pub fn validate_player_name(name: &str) -> Result<String, NameError> {
    let trimmed = name.trim();
    if trimmed.is_empty() {
        return Err(NameError::Empty);
    }
    // Characters are checked before the length so that a long name full of control characters
    // is reported for what is actually wrong with it; the scan stops at the first bad character.
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
    fn accepts_allowed_characters_and_trims() {
        assert_eq!(
            validate_player_name("  Ada_L-1.0 \t").as_deref(),
            Ok("Ada_L-1.0")
        );
        assert_eq!(validate_player_name("a").as_deref(), Ok("a"));
        assert_eq!(
            validate_player_name("two  spaces").as_deref(),
            Ok("two  spaces")
        );
        let sixteen = "abcdefghijklmnop";
        assert_eq!(validate_player_name(sixteen).as_deref(), Ok(sixteen));
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
        assert_eq!(
            validate_player_name(&huge),
            Err(NameError::TooLong {
                length: 1_000_000,
                max: 16
            })
        );
    }

    #[test]
    fn refuses_control_characters_inside_the_name() {
        assert_eq!(
            validate_player_name("ab\ncd"),
            Err(NameError::ControlCharacter { position: 2 })
        );
        assert_eq!(
            validate_player_name("a\u{0}"),
            Err(NameError::ControlCharacter { position: 1 })
        );
        assert_eq!(
            validate_player_name("x\u{9b}y"),
            Err(NameError::ControlCharacter { position: 1 })
        );
    }

    #[test]
    fn refuses_unicode_and_punctuation() {
        assert_eq!(
            validate_player_name("Zoë"),
            Err(NameError::DisallowedCharacter {
                character: 'ë',
                position: 2
            })
        );
        // Cyrillic 'а' looks like Latin 'a': refused so names cannot impersonate each other.
        assert_eq!(
            validate_player_name("\u{430}dmin"),
            Err(NameError::DisallowedCharacter {
                character: '\u{430}',
                position: 0
            })
        );
        // Right-to-left override would reorder how the leaderboard renders.
        assert!(matches!(
            validate_player_name("a\u{202e}b"),
            Err(NameError::DisallowedCharacter { position: 1, .. })
        ));
        assert!(matches!(
            validate_player_name("<script>"),
            Err(NameError::DisallowedCharacter { character: '<', .. })
        ));
        assert!(matches!(
            validate_player_name("🐍"),
            Err(NameError::DisallowedCharacter { .. })
        ));
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
        let message = validate_player_name("a$b").unwrap_err().to_string();
        assert!(message.contains("'$'"), "{message}");
    }

    proptest! {
        #[test]
        fn any_input_is_either_refused_or_yields_a_valid_trimmed_name(input in any::<String>()) {
            if let Ok(name) = validate_player_name(&input) {
                prop_assert!(!name.is_empty() && name.len() <= MAX_PLAYER_NAME_CHARS);
                prop_assert_eq!(name.trim(), name.as_str());
                prop_assert!(input.contains(name.as_str()));
                prop_assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || " _-.".contains(c)));
            }
        }

        #[test]
        fn names_from_the_allowed_alphabet_are_accepted(name in "[A-Za-z0-9_.-][A-Za-z0-9 _.-]{0,14}[A-Za-z0-9_.-]") {
            prop_assert_eq!(validate_player_name(&name), Ok(name.clone()));
        }
    }
}
