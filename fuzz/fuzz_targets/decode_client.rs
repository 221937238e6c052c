//! Every client message goes through `decode_client` first: it must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = coil_protocol::envelope::decode_client(data);
});
