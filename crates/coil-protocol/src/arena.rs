//! Arena frames (being written).
