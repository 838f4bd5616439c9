//! Fuzz target `frame`: see `core/tests/fuzz_checks/frame.rs` for the invariants checked.
#![no_main]

#[path = "../../core/tests/fuzz_checks/mod.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    checks::frame::check_bytes(data);
});
