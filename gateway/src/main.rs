//! The `tether` binary (work in progress).

fn main() {}
