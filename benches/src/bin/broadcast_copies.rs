//! `broadcast_copies [N]`: the bytes the core copies per broadcast delivery, counted
//! in-process (issue 21). `N` server connections (default 1,000), opened with
//! [`Connection::open`], are each given one message of `S` bytes (20 B, 1 KiB, 16 KiB),
//! then drained the way a driver drains them:
//!
//! - `prepared + poll_transmit_vectored`: one [`PreparedFrame`] queued on every connection
//!   with [`Connection::send_prepared`], drained with
//!   [`Connection::poll_transmit_vectored`] (what the driver does);
//! - `send + poll_transmit`: [`Connection::send`] of the [`Message`] (its payload shared as
//!   [`Bytes`]) to every connection, drained with [`Connection::poll_transmit`], which puts
//!   every byte in the caller's buffer;
//! - `send + poll_transmit_vectored`: the same message drained as the driver drains it.
//!
//! Bytes that end up in the caller's buffer were written there by the core (encoded or
//! copied): they count as copied. Bytes handed over as chunks are counted as shared, and
//! those whose pointer is the prepared frame's (or the message payload's) are counted
//! apart, to check that they are not copies. Prints a markdown table of bytes per delivery.

use bytes::Bytes;
use std::sync::Arc;
use std::time::Instant;
use tether_core::{Config, Connection, Message, PreparedFrame, Role};

/// Bytes per delivery of one way of sending.
#[derive(Default)]
struct Tally {
    /// Bytes on the wire.
    wire: usize,
    /// Bytes in the caller's buffer: written there by the core.
    copied: usize,
    /// Bytes handed over as chunks.
    chunks: usize,
    /// Chunk bytes that are the very bytes of the prepared frame or of the payload.
    same_ptr: usize,
}

/// How the message is queued and drained.
#[derive(Clone, Copy)]
enum Way {
    Prepared,
    SendCopied,
    SendVectored,
}

fn tally(n: usize, size: usize, way: Way) -> Tally {
    let now = Instant::now();
    let config = Arc::new(Config::default());
    let mut conns: Vec<Connection> = (0..n)
        .map(|_| Connection::open(config.clone(), Role::Server, None, [7; 32], now))
        .collect();
    let payload = Bytes::from((0..size).map(|i| b'a' + (i % 26) as u8).collect::<Vec<_>>());
    let message = Message::binary(payload.clone());
    let frame = PreparedFrame::new(&message).expect("a binary message");
    let shared_ptrs = [frame.as_bytes().as_ptr(), payload.as_ptr()];
    let mut t = Tally::default();
    let mut buf = Vec::new();
    let mut chunks = Vec::new();
    for conn in &mut conns {
        match way {
            Way::Prepared => conn.send_prepared(now, &frame).expect("send_prepared"),
            Way::SendCopied | Way::SendVectored => {
                conn.send(now, message.clone()).expect("send");
            }
        }
        buf.clear();
        chunks.clear();
        match way {
            Way::SendCopied => while conn.poll_transmit(&mut buf).is_some() {},
            Way::Prepared | Way::SendVectored => {
                while conn.poll_transmit_vectored(&mut buf, &mut chunks).is_some() {}
            }
        }
        let chunk_bytes: usize = chunks.iter().map(|(_, b)| b.len()).sum();
        t.copied += buf.len();
        t.chunks += chunk_bytes;
        t.wire += buf.len() + chunk_bytes;
        t.same_ptr += chunks
            .iter()
            .filter(|(_, b)| shared_ptrs.contains(&b.as_ptr()))
            .map(|(_, b)| b.len())
            .sum::<usize>();
    }
    t
}

fn main() {
    let n = tether_bench::count_arg(1000);
    println!("{n} server connections, one message each; bytes per delivery.");
    println!();
    println!(
        "| size | way | wire | copied by the core | shared chunks | of which the prepared frame's / payload's own bytes |"
    );
    println!("|---:|---|---:|---:|---:|---:|");
    for size in [20, 1024, 16384] {
        for (name, way) in [
            ("prepared + poll_transmit_vectored", Way::Prepared),
            ("send + poll_transmit", Way::SendCopied),
            ("send + poll_transmit_vectored", Way::SendVectored),
        ] {
            let t = tally(n, size, way);
            let per = |x: usize| x as f64 / n as f64;
            println!(
                "| {size} B | {name} | {:.0} | {:.0} | {:.0} | {:.0} |",
                per(t.wire),
                per(t.copied),
                per(t.chunks),
                per(t.same_ptr)
            );
        }
    }
}
