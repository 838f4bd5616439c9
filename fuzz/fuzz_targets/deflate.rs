//! Fuzz target `deflate`: see `core/tests/fuzz_checks/deflate.rs` for the invariants checked.
#![no_main]

#[path = "../../core/tests/fuzz_checks/mod.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    checks::deflate::check_bytes(data);
});
