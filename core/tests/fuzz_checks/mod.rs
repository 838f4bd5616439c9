//! Invariant checkers shared by the cargo-fuzz targets in `fuzz/` and by the corpus replay
//! test `core/tests/fuzz_replay.rs`.
//!
//! Each submodule owns one target: an input type (derived with `arbitrary`), a `check_bytes`
//! function that decodes raw fuzzer bytes the way libFuzzer hands them over and panics on a
//! broken invariant, and an `encode` function, the inverse of the `arbitrary` decoding, used
//! to write seed inputs from valid traffic. The fuzz targets include this file with
//! `#[path = "../../core/tests/fuzz_checks/mod.rs"] mod checks;`, so a fuzzer and
//! `cargo test` run the same code.
#![allow(dead_code)]

pub mod connection;
pub mod deflate;
pub mod enc;
pub mod frame;
pub mod handshake_request;
pub mod handshake_response;
pub mod wire;

/// The names of the targets, as directories under `fuzz/corpus/`.
pub const TARGETS: [&str; 5] = [
    "frame",
    "handshake_request",
    "handshake_response",
    "connection",
    "deflate",
];

/// Runs the checker of `target` on raw fuzzer bytes.
pub fn check_target(target: &str, data: &[u8]) {
    match target {
        "frame" => {
            frame::check_bytes(data);
        }
        "handshake_request" => {
            handshake_request::check_bytes(data);
        }
        "handshake_response" => {
            handshake_response::check_bytes(data);
        }
        "connection" => {
            connection::check_bytes(data);
        }
        "deflate" => {
            deflate::check_bytes(data);
        }
        other => panic!("unknown fuzz target {other}"),
    }
}

/// Splits `data` into the chunks a transport might deliver: `cuts` are chunk lengths
/// (taken modulo `modulus`, plus one), used in turn; what they leave is the last chunk.
pub fn chunks<'a>(data: &'a [u8], cuts: &[u16], modulus: usize) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut rest = data;
    for &c in cuts {
        if rest.is_empty() {
            break;
        }
        let n = (usize::from(c) % modulus.max(1) + 1).min(rest.len());
        let (head, tail) = rest.split_at(n);
        out.push(head);
        rest = tail;
    }
    if !rest.is_empty() {
        out.push(rest);
    }
    out
}
