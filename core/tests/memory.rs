//! Heap bytes held by an idle open server connection, measured with a counting allocator
//! (its own test binary); the figure is
//! exactly what dropping the connection frees. Run with `--nocapture` to see
//! the figures recorded in BENCHMARKS.md.

mod util;

use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};
use std::alloc::System;
use std::time::{Duration, Instant};
use tether_core::{Accept, ClientRequest, Config, Connection, DeflateConfig, Event, Message};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Bytes currently allocated by the whole test binary.
fn live() -> isize {
    let s = GLOBAL.stats();
    (s.bytes_allocated as isize - s.bytes_deallocated as isize) + s.bytes_reallocated
}

fn pump(from: &mut Connection, to: &mut Connection, now: Instant) {
    let mut buf = Vec::new();
    while from.poll_transmit(&mut buf).is_some() {}
    to.handle_input(now, &buf);
}

/// Heap bytes held by one server connection after a handshake and `rounds` echoes, then
/// (optionally) a quiet period.
fn idle_server_bytes(config: Config, quiet: Option<Duration>) -> isize {
    let config = std::sync::Arc::new(config);
    let mut now = Instant::now();
    let request = ClientRequest::new("ws://localhost/").unwrap();
    let mut client = Connection::client(config.clone(), &request, [1; 32], now).unwrap();
    let mut server = Connection::server(config.clone(), now);
    pump(&mut client, &mut server, now);
    assert!(matches!(server.poll_event(), Some(Event::Request(_))));
    server.accept(now, Accept::new()).unwrap();
    pump(&mut server, &mut client, now);
    while client.poll_event().is_some() {}
    for i in 0..10 {
        client
            .send(now, Message::text(format!("message {i} ").repeat(50)))
            .unwrap();
        pump(&mut client, &mut server, now);
        while let Some(e) = server.poll_event() {
            if let Event::Message(m) = e {
                server.send(now, m).unwrap();
            }
        }
        pump(&mut server, &mut client, now);
        while client.poll_event().is_some() {}
    }
    if let Some(q) = quiet {
        now += q;
        server.handle_timeout(now);
        client.handle_timeout(now);
        pump(&mut server, &mut client, now);
        pump(&mut client, &mut server, now);
        while server.poll_event().is_some() {}
        // The server's pong to the client's keep-alive ping goes out too: nothing waits.
        pump(&mut server, &mut client, now);
        while client.poll_event().is_some() {}
    }
    // What the server holds is exactly what dropping it frees.
    drop(client);
    let with_server = live();
    drop(server);
    with_server - live()
}

#[test]
fn memory_per_idle_server_connection() {
    let plain = idle_server_bytes(Config::default(), None);
    let deflate = |no_takeover: bool| {
        let mut cfg = Config::default();
        cfg.deflate = DeflateConfig::enabled();
        cfg.deflate.server_no_context_takeover = no_takeover;
        cfg.deflate.client_no_context_takeover = no_takeover;
        cfg
    };
    let takeover = idle_server_bytes(deflate(false), None);
    // Context takeover with the smallest windows RFC 7692 allows zlib to honour (9 bits;
    // an 8-bit request is negotiated and run as 9).
    let mut small = Config::default();
    small.deflate = DeflateConfig::enabled();
    small.deflate.server_max_window_bits = 9;
    small.deflate.client_max_window_bits = 9;
    let small_windows = idle_server_bytes(small, None);
    let no_takeover_busy = idle_server_bytes(deflate(true), None);
    let no_takeover_quiet = idle_server_bytes(deflate(true), Some(Duration::from_secs(21)));
    println!(
        "heap per idle server connection (struct: {} bytes):",
        std::mem::size_of::<Connection>()
    );
    println!("  no compression:                               {plain} bytes");
    println!("  permessage-deflate, context takeover:         {takeover} bytes");
    println!("  permessage-deflate, context takeover, 9-bit windows: {small_windows} bytes");
    println!(
        "  permessage-deflate, no context takeover:      {no_takeover_busy} bytes (just after traffic)"
    );
    println!(
        "  permessage-deflate, no context takeover:      {no_takeover_quiet} bytes (after a quiet ping interval)"
    );
    // An idle connection holds no buffers; the config is shared and not counted.
    assert_eq!(
        plain, 0,
        "an idle connection without compression holds no heap memory"
    );
    assert!(no_takeover_quiet < 1024, "{no_takeover_quiet}");
    assert!(takeover < 512 * 1024, "{takeover}");
    assert!(small_windows < takeover, "{small_windows} vs {takeover}");
}
