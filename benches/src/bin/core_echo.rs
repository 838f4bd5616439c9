//! `core_echo [N]`: the core's part of one echoed message, the way the adapters drive it
//! (one small frame per read, its reply written before the next read), `N` times
//! (default 1,000,000). Made to count instructions reproducibly:
//!
//! ```text
//! valgrind --tool=callgrind target/release/core_echo 100000
//! ```
//!
//! divides the total by `N` for the core's instructions per echo (the setup is a few
//! thousand instructions in all).

use bytes::BytesMut;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;
use tether_bench::wire;
use tether_core::{Config, Connection, Event, Role};

fn main() {
    let n = tether_bench::count_arg(1_000_000);
    let frame = wire::client_frame(20);
    let now = Instant::now();
    let mut conn = Connection::open(
        Arc::new(Config::default()),
        Role::Server,
        None,
        [9; 32],
        now,
    );
    let mut read_buf = BytesMut::with_capacity(32 * 1024);
    let mut write_buf = Vec::with_capacity(32 * 1024);
    let start = Instant::now();
    for _ in 0..n {
        // The read.
        if !read_buf.try_reclaim(32 * 1024) {
            read_buf = BytesMut::with_capacity(32 * 1024);
        }
        read_buf.extend_from_slice(&frame);
        conn.handle_input_buf(now, &mut read_buf);
        // The application takes the message and replies.
        let Some(Event::Message(m)) = conn.poll_event() else {
            panic!("no message");
        };
        conn.send(now, m).expect("send");
        // The write.
        write_buf.clear();
        while conn.poll_transmit(&mut write_buf).is_some() {}
        black_box(&write_buf);
        // The application waits for the next message.
        assert!(conn.poll_event().is_none());
    }
    let elapsed = start.elapsed();
    println!(
        "{n} echoes, {:.1} ns each",
        elapsed.as_nanos() as f64 / n as f64
    );
}
