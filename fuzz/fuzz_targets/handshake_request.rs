//! Fuzz target `handshake_request`: see `core/tests/fuzz_checks/handshake_request.rs` for the invariants checked.
#![no_main]

#[path = "../../core/tests/fuzz_checks/mod.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    checks::handshake_request::check_bytes(data);
});
