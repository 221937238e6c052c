//! Every arena server frame decoder (init, state, meta, death) and the runtime envelope
//! decoder, on the first byte as frame type and the rest as payload, and on whole messages.
#![no_main]

use coil_protocol::arena::{StateFrame, decode_server_frame, decode_state_into};
use coil_protocol::codec::server_frames;
use coil_protocol::envelope::decode_server_envelope;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some((&frame_type, payload)) = data.split_first() {
        let _ = decode_server_frame(frame_type, payload);
        let _ = decode_server_envelope(frame_type, payload);
        let mut state = StateFrame::default();
        let _ = decode_state_into(payload, &mut state);
    }
    for (frame_type, payload) in server_frames(data).flatten() {
        let _ = decode_server_frame(frame_type, payload);
    }
});
