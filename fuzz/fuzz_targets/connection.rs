//! Fuzz target `connection`: see `core/tests/fuzz_checks/connection.rs` for the invariants checked.
#![no_main]

#[path = "../../core/tests/fuzz_checks/mod.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    checks::connection::check_bytes(data);
});
