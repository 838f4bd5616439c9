//! Replays the fuzz corpora (`fuzz/corpus/<target>/*`) through the same invariant checkers
//! the cargo-fuzz targets run, so that `cargo test` exercises every target without a
//! fuzzer; checks that the seed corpus is generated from valid traffic; and keeps the inputs
//! that fuzzing found as named regression tests.
//!
//! Regenerate the seeds with `TETHER_WRITE_CORPUS=1 cargo test -p tether-core --test
//! fuzz_replay seeds`.

mod fuzz_checks;
#[path = "fuzz_replay/seeds.rs"]
mod seeds;

use std::path::PathBuf;

fn corpus_dir(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target)
}

/// Runs the checker of `target` on every file of its corpus; returns how many there were.
fn replay(target: &str) -> usize {
    let dir = corpus_dir(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    for file in &files {
        let data = std::fs::read(file).expect("corpus file");
        let name = file.display().to_string();
        let result = std::panic::catch_unwind(|| fuzz_checks::check_target(target, &data));
        if let Err(e) = result {
            std::panic::resume_unwind(Box::new(format!(
                "{name}: {}",
                e.downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| e.downcast_ref::<&str>().copied())
                    .unwrap_or("panic")
            )));
        }
    }
    files.len()
}

#[test]
fn corpus_replay_frame() {
    assert!(replay("frame") >= 10);
}

#[test]
fn corpus_replay_handshake_request() {
    assert!(replay("handshake_request") >= 10);
}

#[test]
fn corpus_replay_handshake_response() {
    assert!(replay("handshake_response") >= 10);
}

#[test]
fn corpus_replay_connection() {
    assert!(replay("connection") >= 10);
}

#[test]
fn corpus_replay_deflate() {
    assert!(replay("deflate") >= 10);
}

/// Every seed is built from valid traffic (or a classic violation) and its checker reports
/// what the seed says; with `TETHER_WRITE_CORPUS=1` the seeds are written to the corpus.
#[test]
fn seeds_are_valid_traffic() {
    let all = seeds::all();
    for target in fuzz_checks::TARGETS {
        assert!(
            all.iter().filter(|s| s.target == target).count() >= 10,
            "{target}"
        );
    }
    if std::env::var_os("TETHER_WRITE_CORPUS").is_some() {
        for s in &all {
            let dir = corpus_dir(s.target);
            std::fs::create_dir_all(&dir).expect("corpus directory");
            std::fs::write(dir.join(format!("seed-{}", s.name)), &s.data).expect("write seed");
        }
    }
}

#[test]
fn arbitrary_encoding_of_enum_tags_round_trips() {
    use arbitrary::{Arbitrary, Unstructured};
    use fuzz_checks::connection::LimitsChoice;
    for (i, want) in [
        LimitsChoice::Default,
        LimitsChoice::Small,
        LimitsChoice::Tiny,
    ]
    .into_iter()
    .enumerate()
    {
        let bytes = fuzz_checks::enc::Enc::new().tag(i as u32, 3).finish();
        assert_eq!(
            LimitsChoice::arbitrary(&mut Unstructured::new(&bytes)).unwrap(),
            want
        );
    }
}
