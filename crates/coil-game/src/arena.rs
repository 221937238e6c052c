//! The arena game: coil-sim rules, encoded per viewer with coil-protocol. (being written)
