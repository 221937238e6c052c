//! The Rust client mirror applying arbitrary server messages (split on 0xfe 0xfe so one input
//! is a sequence of messages and can build up state first).
#![no_main]

use coil_game::arena::client::ClientMirror;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut mirror = ClientMirror::new();
    let mut rest = data;
    while !rest.is_empty() {
        let end = rest.windows(2).position(|pair| pair == [0xfe, 0xfe]).unwrap_or(rest.len());
        let _ = mirror.apply_message(&rest[..end]);
        rest = rest.get(end + 2..).unwrap_or_default();
    }
});
