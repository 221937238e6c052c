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
