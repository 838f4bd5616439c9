//! The registry gives back what connections took (issue 22, point 1): a counting global
//! allocator watches the whole process while 2,000 connections (`TETHER_HUB_CYCLES`, in
//! hundreds), each with a user and a room, come and go in batches of 100; once the hub is
//! empty again, the memory in use is back where it was after a warm-up. The whole process
//! is counted, so this file holds a single test. The issue's 100,000 cycles:
//!
//! ```text
//! TETHER_HUB_CYCLES=100000 cargo test --release -p tether-hub --test memory -- --nocapture
//! ```
//!
//! The clients' source addresses go round 127.1.0.0/16, so that so many connections do
//! not run out of ports on one address.

use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};
use std::alloc::System;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};
use tether_hub::{Hooks, Hub, Identity};
use tether_tokio::{Accept, Config, accept_with};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Serves the hub on a current-thread runtime: each connection gets the user of its
/// `?user=` and joins room `r`.
fn serve(listener: TcpListener, hub: Hub) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        listener.set_nonblocking(true).expect("nonblocking");
        let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
        let hooks = Hooks::new()
            .on_connect(|hub, session| async move { hub.join(session.id(), "r").map(|_| ()) });
        loop {
            let (stream, peer) = listener.accept().await.expect("accept");
            let (hub, hooks) = (hub.clone(), hooks.clone());
            tokio::spawn(async move {
                let mut identity = Identity::new().with_peer_addr(peer);
                let check = |request: &tether_tokio::Request| {
                    if let Some(user) = request.query_param("user") {
                        identity = identity.clone().with_user(&*user);
                    }
                    Ok(Accept::new())
                };
                let Ok(ws) = accept_with(stream, Config::default(), check).await else {
                    return;
                };
                let _ = hub.serve(ws, identity, hooks).await;
            });
        }
    });
}

/// Opens a WebSocket with blocking I/O, from source address number `n` of 127.1.0.0/16.
fn open(addr: SocketAddr, user: usize, n: usize) -> TcpStream {
    let socket =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    let source = std::net::Ipv4Addr::new(127, 1, (n / 250 % 250) as u8, (n % 250 + 1) as u8);
    socket
        .bind(&SocketAddr::from((source, 0)).into())
        .expect("bind a source address");
    socket.connect(&addr.into()).expect("connect");
    let mut stream: TcpStream = socket.into();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET /?user=u{user} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).expect("a response");
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"));
    stream
}

/// Sends a close frame (1000, masked with a zero key) and reads until the server closes.
fn close(mut stream: TcpStream) {
    stream
        .write_all(&[0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8])
        .unwrap();
    let mut sink = [0; 256];
    while matches!(stream.read(&mut sink), Ok(n) if n > 0) {}
}

fn in_use() -> isize {
    let s = GLOBAL.stats();
    s.bytes_allocated as isize - s.bytes_deallocated as isize
}

fn wait_empty(hub: &Hub) {
    let start = Instant::now();
    while hub.connection_count() != 0 {
        assert!(start.elapsed() < Duration::from_secs(10), "the hub empties");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn cycles(addr: SocketAddr, hub: &Hub, batches: usize) {
    for b in 0..batches {
        let streams: Vec<TcpStream> = (0..100).map(|i| open(addr, i % 10, b * 100 + i)).collect();
        streams.into_iter().for_each(close);
    }
    wait_empty(hub);
}

#[test]
fn memory_is_back_after_connections_come_and_go() {
    let batches = std::env::var("TETHER_HUB_CYCLES")
        .ok()
        .and_then(|n| n.parse::<usize>().ok())
        .map_or(20, |n| n.div_ceil(100));
    let hub = Hub::default();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server_hub = hub.clone();
    std::thread::spawn(move || serve(listener, server_hub));
    // Warm up: runtime, buffer pools, the shards' first allocations.
    cycles(addr, &hub, 3);
    let before = in_use();
    let start = Instant::now();
    cycles(addr, &hub, batches);
    let after = in_use();
    eprintln!(
        "{} connections came and went in {:.1} s",
        batches * 100,
        start.elapsed().as_secs_f64()
    );
    assert_eq!(hub.stats().connections_total, 300 + batches as u64 * 100);
    assert_eq!((hub.user_count(), hub.room_count()), (0, 0));
    // A leak of even 100 bytes per connection would show as 200 KB at 2,000.
    let grown = after - before;
    eprintln!("memory in use: {before} bytes before, {after} after");
    assert!(
        grown < 64 * 1024,
        "{grown} bytes more in use after {} connections",
        batches * 100
    );
}
