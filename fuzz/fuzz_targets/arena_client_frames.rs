//! Arena client frames (input, respawn), decoded directly and through a live arena game.
#![no_main]

use coil_game::arena::{Arena, ArenaSettings};
use coil_game::{Game, JoinInfo, PlayerId};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = coil_protocol::arena::decode_client_frame(data);
    let mut game = Arena::new(ArenaSettings::default());
    game.add_player(PlayerId(1), &JoinInfo { name: "fuzz".to_owned(), skin: 0 });
    for frame in data.split(|byte| *byte == 0xff) {
        let _ = game.handle_message(PlayerId(1), frame);
    }
    let mut events = Vec::new();
    game.tick(0.05, &mut events);
    let mut out = Vec::new();
    game.write_update(PlayerId(1), &mut out);
});
