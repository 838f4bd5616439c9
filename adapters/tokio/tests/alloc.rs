//! Steady-state echoes allocate nothing (issue 7): a counting global allocator watches a
//! tether-tokio echo server (its own thread, a current-thread runtime, the code of the
//! `echo_server` example) while a blocking client that does not allocate in its loop sends
//! 20-byte, 1 KiB and 16 KiB binary messages, one at a time.
//!
//! The whole process is counted, so this file holds a single test.

use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};
use std::alloc::System;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use tether_tokio::{Accept, Config, Message, accept_with};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

fn serve(listener: TcpListener) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        listener.set_nonblocking(true).expect("nonblocking");
        let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
        loop {
            let (stream, _) = listener.accept().await.expect("accept");
            stream.set_nodelay(true).expect("nodelay");
            tokio::spawn(async move {
                let Ok(mut ws) =
                    accept_with(stream, Config::default(), |_| Ok(Accept::new())).await
                else {
                    return;
                };
                while let Some(Ok(message)) = ws.recv().await {
                    if matches!(message, Message::Text(_) | Message::Binary(_))
                        && ws.send(message).await.is_err()
                    {
                        break;
                    }
                }
            });
        }
    });
}

/// A masked binary frame from a client (key 1, 2, 3, 4) and the server's unmasked reply.
fn frames(size: usize) -> (Vec<u8>, Vec<u8>) {
    let payload: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
    let mut reply = vec![0x82];
    let mut frame = vec![0x82];
    match size {
        0..=125 => {
            frame.push(0x80 | size as u8);
            reply.push(size as u8);
        }
        126..=65535 => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(size as u16).to_be_bytes());
            reply.push(126);
            reply.extend_from_slice(&(size as u16).to_be_bytes());
        }
        _ => unreachable!("test sizes stay below 64 KiB"),
    }
    let key = [1u8, 2, 3, 4];
    frame.extend_from_slice(&key);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    reply.extend_from_slice(&payload);
    (frame, reply)
}

#[test]
fn steady_state_echoes_allocate_nothing() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || serve(listener));

    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_nodelay(true).expect("nodelay");
    write!(
        s,
        "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .expect("upgrade request");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).expect("response head");
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"), "no 101");

    const WARMUP: usize = 500;
    const MESSAGES: usize = 5_000;
    for size in [20, 1024, 16 * 1024] {
        let (frame, expected) = frames(size);
        let mut reply = vec![0u8; expected.len()];
        let echo = |s: &mut TcpStream, reply: &mut [u8]| {
            s.write_all(&frame).expect("write");
            s.read_exact(reply).expect("read");
        };
        for _ in 0..WARMUP {
            echo(&mut s, &mut reply);
        }
        assert_eq!(reply, expected, "{size} B: the echo differs");
        let before = GLOBAL.stats();
        for _ in 0..MESSAGES {
            echo(&mut s, &mut reply);
        }
        let after = GLOBAL.stats();
        let allocations =
            (after.allocations + after.reallocations) - (before.allocations + before.reallocations);
        eprintln!("{size} B: {allocations} allocations in {MESSAGES} echoes");
        // Not one per message: a rare allocation inside the runtime (a timer wheel level,
        // a scheduler queue growing) is tolerated, a per-message one fails by far.
        assert!(
            allocations <= MESSAGES / 100,
            "{size} B: {allocations} allocations in {MESSAGES} echoes"
        );
    }
}
