//! Breach's decoders on arbitrary bytes. The first byte picks the target:
//! even — the input path of a running match: the rest is split on 0xfe 0xfe into client
//!   frames, each applied to a seated player, with a tick after each (the room must keep
//!   ticking and its encoder keep writing);
//! odd — the client mirror: the rest is split on 0xfe 0xfe into server messages applied in
//!   order, so one input can build up state before the garbage.
#![no_main]

use coil_breach::mirror::ClientMirror;
use coil_breach::{Breach, BreachConfig, JoinRequest, Role, Seat};
use libfuzzer_sys::fuzz_target;

fn pieces(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = data;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let end = rest.windows(2).position(|pair| pair == [0xfe, 0xfe]).unwrap_or(rest.len());
        let piece = &rest[..end];
        rest = rest.get(end + 2..).unwrap_or_default();
        Some(piece)
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        let config = BreachConfig {
            min_players: 1,
            countdown_ticks: 1,
            ..BreachConfig::default()
        };
        let mut breach = Breach::new(config, u64::from(mode)).expect("valid config");
        let request = JoinRequest { name: "fuzz", team: None, party: None, role: Role::Player };
        breach.add_player(Seat(1), &request).expect("room has space");
        let mut events = Vec::new();
        let mut out = Vec::new();
        for frame in pieces(rest).take(64) {
            let _ = coil_breach::wire::decode_client_frame(frame);
            let _ = breach.apply_input(Seat(1), frame);
            events.clear();
            breach.step(&mut events);
            out.clear();
            breach.write_update(Seat(1), &mut out);
        }
    } else {
        let mut mirror = ClientMirror::new();
        for message in pieces(rest) {
            let _ = mirror.apply_message(message);
        }
    }
});
