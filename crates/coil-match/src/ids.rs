//! Validated identifiers shared by the directory and placement.
//!
//! Owns the spelling rules for room, node and region names (1–32 characters of
//! `A-Z a-z 0-9 - _`, the same rule as `coil-server`'s `RoomId`). Ids end up inside Redis keys and
//! URLs, so anything else is refused at the edge, never escaped later.

use serde::{Deserialize, Serialize};

/// Why a name was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("{kind} must be 1 to 32 characters of letters, digits, '-' and '_'")]
    Malformed { kind: &'static str },
    #[error("mode must be 1 to 16 characters of lowercase letters, digits and '-'")]
    Mode,
}

fn validate(kind: &'static str, text: &str) -> Result<(), IdError> {
    let well_formed = !text.is_empty()
        && text.len() <= 32
        && text
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_');
    if well_formed {
        Ok(())
    } else {
        Err(IdError::Malformed { kind })
    }
}

macro_rules! id_type {
    ($(#[$meta:meta])* $name:ident, $kind:literal) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub const MAX_LEN: usize = 32;

            pub fn parse(text: &str) -> Result<$name, IdError> {
                validate($kind, text)?;
                Ok($name(text.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(text: String) -> Result<$name, IdError> {
                validate($kind, &text)?;
                Ok($name(text))
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_type!(
    /// A room's name, unique across the fleet (`<region>-<8 hex>` when the matchmaker makes one).
    RoomId,
    "room id"
);
id_type!(
    /// A game node's instance id.
    NodeId,
    "node id"
);
id_type!(
    /// A region name such as `us-east`.
    Region,
    "region"
);

/// A game mode's name (`arena`, `breach`, …): 1–16 characters of `a-z 0-9 -`, the rule of
/// `coil_game::valid_mode_name`. Rooms of one mode are placed only with players of that mode.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct GameMode(String);

impl GameMode {
    pub const MAX_LEN: usize = 16;
    /// The mode of rooms and requests that name none (clients and nodes from before modes).
    pub const DEFAULT: &'static str = "arena";

    pub fn parse(text: &str) -> Result<GameMode, IdError> {
        let well_formed = !text.is_empty()
            && text.len() <= Self::MAX_LEN
            && text
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if well_formed {
            Ok(GameMode(text.to_owned()))
        } else {
            Err(IdError::Mode)
        }
    }

    /// The arena: what requests, heartbeats and tokens without a mode mean.
    pub fn arena() -> GameMode {
        GameMode(Self::DEFAULT.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for GameMode {
    fn default() -> GameMode {
        GameMode::arena()
    }
}

impl TryFrom<String> for GameMode {
    type Error = IdError;
    fn try_from(text: String) -> Result<GameMode, IdError> {
        GameMode::parse(&text)
    }
}

impl From<GameMode> for String {
    fn from(mode: GameMode) -> String {
        mode.0
    }
}

impl std::fmt::Display for GameMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl RoomId {
    /// A fresh room id for `region`: `<region>-<8 hex digits>`, cut to fit 32 characters.
    pub fn generate(region: &Region) -> RoomId {
        let suffix = format!("{:08x}", rand::random::<u32>());
        let keep = region
            .as_str()
            .len()
            .min(RoomId::MAX_LEN - 1 - suffix.len());
        RoomId(format!("{}-{suffix}", &region.as_str()[..keep]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_room_name_rule() {
        assert!(RoomId::parse("us-east-0a1b2c3d").is_ok());
        assert!(NodeId::parse("node_7").is_ok());
        for bad in [
            "",
            "has space",
            "colon:key",
            "slash/x",
            &"a".repeat(33),
            "é",
        ] {
            assert!(RoomId::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn modes_are_short_lowercase_names() {
        assert_eq!(GameMode::parse("breach").unwrap().as_str(), "breach");
        assert_eq!(GameMode::default().as_str(), "arena");
        for bad in ["", "Breach", "a_b", "a/b", &"m".repeat(17)] {
            assert!(GameMode::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn generated_room_ids_are_valid_even_for_long_regions() {
        let long = Region::parse(&"r".repeat(32)).unwrap();
        let id = RoomId::generate(&long);
        assert!(RoomId::parse(id.as_str()).is_ok());
        let short = RoomId::generate(&Region::parse("us-east").unwrap());
        assert!(short.as_str().starts_with("us-east-"));
        assert_eq!(short.as_str().len(), "us-east-".len() + 8);
    }

    #[test]
    fn serde_refuses_malformed_ids() {
        assert!(serde_json::from_str::<RoomId>("\"ok-room\"").is_ok());
        assert!(serde_json::from_str::<RoomId>("\"bad room\"").is_err());
    }
}
