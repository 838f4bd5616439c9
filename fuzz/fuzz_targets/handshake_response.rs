//! Fuzz target `handshake_response`: see `core/tests/fuzz_checks/handshake_response.rs` for the invariants checked.
#![no_main]

#[path = "../../core/tests/fuzz_checks/mod.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    checks::handshake_response::check_bytes(data);
});
