//! The registry gives back what connections took (issue 22, point 1): a counting global
//! allocator watches the whole process while 2,000 connections, each with a user and a
//! room, come and go in batches of 100; once the hub is empty again, the memory in use is
//! back where it was after a warm-up. The whole process is counted, so this file holds a
//! single test.

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

/// Opens a WebSocket with blocking I/O.
fn open(addr: SocketAddr, user: usize) -> TcpStream {
    let mut stream = TcpStream::connect(addr).expect("connect");
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
    for _ in 0..batches {
        let streams: Vec<TcpStream> = (0..100).map(|i| open(addr, i % 10)).collect();
        streams.into_iter().for_each(close);
    }
    wait_empty(hub);
}

#[test]
fn memory_is_back_after_2000_connections_come_and_go() {
    let hub = Hub::default();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server_hub = hub.clone();
    std::thread::spawn(move || serve(listener, server_hub));
    // Warm up: runtime, buffer pools, the shards' first allocations.
    cycles(addr, &hub, 3);
    let before = in_use();
    cycles(addr, &hub, 20);
    let after = in_use();
    assert_eq!(hub.stats().connections_total, 2300);
    assert_eq!((hub.user_count(), hub.room_count()), (0, 0));
    // A leak of even 100 bytes per connection would show as 200 KB.
    let grown = after - before;
    eprintln!("memory in use: {before} bytes before, {after} after");
    assert!(
        grown < 64 * 1024,
        "{grown} bytes more in use after 2,000 connections"
    );
}
