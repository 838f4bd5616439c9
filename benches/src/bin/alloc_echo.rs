//! `alloc_echo`: heap allocations per echoed message in steady state, counted by a
//! global counting allocator (`stats_alloc`).
//!
//! 1. The core alone: a server `Connection` fed one masked frame at a time through
//!    `handle_input_buf`, echoing with `send` and draining `poll_transmit` into a kept buffer,
//!    the way a driver with a reused read buffer would.
//! 2. Each echo server in this process (its own thread, as in the echo benchmark), against a
//!    blocking client on the main thread that does not allocate in its loop (`write_all` of
//!    a prebuilt frame, `read_exact` into a prebuilt buffer): every allocation counted in
//!    the window is the server's.
//!
//! One message in flight, binary payloads of 20 B, 1 KiB and 16 KiB. The last rows are the
//! runtime floors (`servers::floor_tokio`, `servers::floor_async_io`): what the runtime
//! allocates when the WebSocket code allocates nothing.

use bytes::BytesMut;
use stats_alloc::{INSTRUMENTED_SYSTEM, Stats, StatsAlloc};
use std::alloc::System;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tether_bench::{servers, wire};
use tether_core::{Config, Connection, Event, Role};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const SIZES: [usize; 3] = [20, 1024, 16 * 1024];
const WARMUP: usize = 2_000;
const MESSAGES: usize = 20_000;

fn per_message(before: Stats, after: Stats, n: usize) -> (f64, f64) {
    let allocs =
        (after.allocations + after.reallocations) - (before.allocations + before.reallocations);
    let bytes = after.bytes_allocated - before.bytes_allocated;
    (allocs as f64 / n as f64, bytes as f64 / n as f64)
}

fn core_only(size: usize) -> (f64, f64) {
    let now = Instant::now();
    let mut server = Connection::open(
        Arc::new(Config::default()),
        Role::Server,
        None,
        [0; 32],
        now,
    );
    let frame = wire::client_frame(size);
    let mut read_buf = BytesMut::new();
    let mut out = Vec::new();
    let mut round = |server: &mut Connection| {
        if read_buf.capacity() == read_buf.len() {
            read_buf.reserve(32 * 1024);
        }
        read_buf.extend_from_slice(&frame);
        server.handle_input_buf(now, &mut read_buf);
        while let Some(event) = server.poll_event() {
            if let Event::Message(m) = event {
                server.send(now, m).expect("send");
            }
        }
        while server.poll_transmit(&mut out).is_some() {}
        assert_eq!(out.len(), frame.len() - 4);
        out.clear();
    };
    for _ in 0..WARMUP {
        round(&mut server);
    }
    let before = GLOBAL.stats();
    for _ in 0..MESSAGES {
        round(&mut server);
    }
    per_message(before, GLOBAL.stats(), MESSAGES)
}

/// Starts `server` on its own thread (once per server: it serves every payload size).
fn start(server: &'static str) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    std::thread::spawn(move || servers::run(server, listener));
    Ok(addr)
}

fn over_socket(server: &'static str, addr: SocketAddr, size: usize) -> std::io::Result<(f64, f64)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_nodelay(true)?;
    s.write_all(&wire::upgrade_request(&addr.to_string()))?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while wire::head_end(&head).is_none() {
        s.read_exact(&mut byte)?;
        head.push(byte[0]);
    }
    assert!(wire::is_switching(&head), "{server}: no 101");
    let frame = wire::client_frame(size);
    let mut reply = vec![0u8; frame.len() - 4];
    let mut echo = |s: &mut TcpStream| -> std::io::Result<()> {
        s.write_all(&frame)?;
        s.read_exact(&mut reply)
    };
    for _ in 0..WARMUP {
        echo(&mut s)?;
    }
    let before = GLOBAL.stats();
    for _ in 0..MESSAGES {
        echo(&mut s)?;
    }
    let after = GLOBAL.stats();
    drop(s);
    // Let the server see the end of stream before the next one starts.
    std::thread::sleep(Duration::from_millis(100));
    Ok(per_message(before, after, MESSAGES))
}

fn main() -> std::io::Result<()> {
    println!(
        "heap allocations per echoed message, steady state, 1 in flight ({MESSAGES} messages after {WARMUP} warm-up)"
    );
    println!(
        "{:<34} {:>8} {:>14} {:>14}",
        "server", "payload", "allocs/msg", "bytes/msg"
    );
    for size in SIZES {
        let (a, b) = core_only(size);
        println!(
            "{:<34} {:>8} {:>14.3} {:>14.1}",
            "tether-core (Connection, in memory)", size, a, b
        );
    }
    for server in [
        "tether-tokio",
        "tether-async-std",
        "fastwebsockets",
        "tungstenite",
        "floor-tokio",
        "floor-async-io",
    ] {
        let addr = start(server)?;
        for size in SIZES {
            let (a, b) = over_socket(server, addr, size)?;
            println!("{:<34} {:>8} {:>14.3} {:>14.1}", server, size, a, b);
        }
    }
    Ok(())
}
