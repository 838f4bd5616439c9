//! `hub_registry [N]`: the hub's registry operations (issue 22: "connect, join, leave,
//! disconnect at ≥ 1 M/s on one core in a micro benchmark, and a 100k-member room
//! join/leave without O(n²) behaviour"), on one thread, without sockets.
//!
//! ```text
//! cargo run --release -p tether-bench --bin hub_registry            # N = 100,000
//! valgrind --tool=callgrind target/release/hub_registry 20000       # instructions per call
//! ```
//!
//! Each connection is a real `tether_driver` WebSocket (`tether_driver::open`, already
//! upgraded) over an idle in-memory transport, on a runtime whose timers never fire, served
//! by [`Hub::serve`] with no hooks; what is timed is the hub's public API:
//!
//! - connect: the serve future's first poll (registers the connection with a user and a
//!   peer address, then waits for messages: the poll of its receive and queue futures);
//! - join / leave: [`Hub::join`] / [`Hub::leave`] of room `r{i % ROOMS}` (`ROOMS`, default
//!   1,000);
//! - disconnect: dropping the serve future: unregisters the connection, and drops the
//!   WebSocket (the driver's connection state, the transport) as a real disconnect does.
//!
//! Making the WebSockets and the serve futures is not timed. First in batches of 10,000
//! (each operation over the whole batch, then the next), then in cycles (connect, join,
//! leave, disconnect of one connection before the next); heap allocations per operation
//! from a counting allocator. Then one room: 100,000 members (`ROOM_N`) join it, then leave
//! it, with the time per join and leave for the first 10k, up to 50k and up to 100k: flat
//! per-operation times are linear totals. Numbers go to standard output.

use bytes::BytesMut;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use std::alloc::System;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};
use tether_bench::runtime::Kept;
use tether_core::Role;
use tether_driver::{Config, ConnectionId, Runtime, Transport, WebSocket};
use tether_hub::{Hub, HubError, Identity};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// A transport with nothing to read, ever, that takes every write.
struct Idle;

impl Transport for Idle {
    fn poll_read(&mut self, _: &mut Context<'_>, _: &mut BytesMut) -> Poll<io::Result<usize>> {
        Poll::Pending
    }

    fn poll_write(&mut self, _: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

type Serve = Pin<Box<dyn Future<Output = Result<Arc<tether_driver::CloseReason>, HubError>>>>;

/// `n` connections, not yet registered: their ids and serve futures. Connection `i` has
/// user `u{i % 1000}` and peer address 10.x.y.z:i.
fn prepare(hub: &Hub, runtime: &Arc<Kept>, n: usize) -> (Vec<ConnectionId>, Vec<Serve>) {
    let config = Config::default();
    let mut ids = Vec::with_capacity(n);
    let mut futures = Vec::with_capacity(n);
    for i in 0..n {
        let ws: WebSocket = tether_driver::open(
            runtime.clone() as Arc<dyn Runtime>,
            Idle,
            Role::Server,
            None,
            None,
            &config,
        )
        .expect("open");
        ids.push(ws.id());
        let ip = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | (i as u32 >> 8)));
        let identity = Identity::new()
            .with_user(format!("u{}", i % 1000))
            .with_peer_addr(SocketAddr::new(ip, (i % 65536) as u16));
        let hub = hub.clone();
        futures.push(Box::pin(async move { hub.serve(ws, identity, ()).await }) as Serve);
    }
    (ids, futures)
}

fn connect(futures: &mut [Serve]) {
    let mut cx = Context::from_waker(Waker::noop());
    for f in futures {
        assert!(f.as_mut().poll(&mut cx).is_pending(), "connected");
    }
}

/// The time and allocations of `f`, run once.
fn measure(f: impl FnOnce()) -> (Duration, usize) {
    let region = Region::new(GLOBAL);
    let start = Instant::now();
    f();
    let elapsed = start.elapsed();
    (elapsed, region.change().allocations)
}

fn report(what: &str, n: usize, (elapsed, allocs): (Duration, usize)) -> f64 {
    let ns = elapsed.as_nanos() as f64 / n as f64;
    println!(
        "{what:<44} {ns:>8.1} ns/op {:>12.0} ops/s {:>6.2} allocs/op",
        1e9 / ns,
        allocs as f64 / n as f64
    );
    ns
}

fn main() {
    let n = tether_bench::count_arg(100_000);
    let rooms: usize = std::env::var("ROOMS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(1000);
    let room_n: usize = std::env::var("ROOM_N")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(100_000);
    let names: Vec<String> = (0..rooms).map(|r| format!("r{r}")).collect();
    let runtime = Arc::new(Kept::default());
    let hub = Hub::default();
    let batch = 10_000.min(n);
    println!(
        "hub registry: {n} connections in batches of {batch}, {rooms} rooms; \
         each with a user (1,000 users) and a peer address"
    );

    // Batches: each operation over the whole batch.
    let mut totals = [(Duration::ZERO, 0usize); 4];
    let mut done = 0;
    while done < n {
        let (ids, mut futures) = prepare(&hub, &runtime, batch);
        let add = |t: &mut (Duration, usize), m: (Duration, usize)| {
            t.0 += m.0;
            t.1 += m.1;
        };
        add(&mut totals[0], measure(|| connect(&mut futures)));
        add(
            &mut totals[1],
            measure(|| {
                for (i, id) in ids.iter().enumerate() {
                    assert!(hub.join(*id, &names[i % rooms]).expect("join"));
                }
            }),
        );
        add(
            &mut totals[2],
            measure(|| {
                for (i, id) in ids.iter().enumerate() {
                    assert!(hub.leave(*id, &names[i % rooms]));
                }
            }),
        );
        add(&mut totals[3], measure(|| drop(futures)));
        assert_eq!(hub.connection_count(), 0);
        drop(runtime.take()); // the drivers' background tasks, never polled
        done += batch;
    }
    let mut sum = 0.0;
    for (what, t) in ["connect", "join", "leave", "disconnect"]
        .iter()
        .zip(totals)
    {
        sum += report(&format!("batch: {what}"), done, t);
    }
    println!(
        "{:<44} {:>8.1} ns/op {:>12.0} ops/s",
        "batch: the four, mean",
        sum / 4.0,
        4e9 / sum
    );

    // Cycles: one connection's four operations before the next's.
    let mut total = (Duration::ZERO, 0);
    let mut done = 0;
    while done < n {
        let (ids, futures) = prepare(&hub, &runtime, batch);
        let (elapsed, allocs) = measure(|| {
            let mut cx = Context::from_waker(Waker::noop());
            for (i, (id, mut f)) in ids.iter().zip(futures).enumerate() {
                assert!(f.as_mut().poll(&mut cx).is_pending());
                assert!(hub.join(*id, &names[i % rooms]).expect("join"));
                assert!(hub.leave(*id, &names[i % rooms]));
                drop(f);
            }
        });
        total.0 += elapsed;
        total.1 += allocs;
        drop(runtime.take()); // the drivers' background tasks, never polled
        done += batch;
    }
    let ns = report("cycle: connect+join+leave+disconnect", done, total);
    println!(
        "{:<44} {:>8.1} ns/op {:>12.0} ops/s",
        "cycle: per operation (a quarter)",
        ns / 4.0,
        4e9 / ns
    );

    // One room: join every connection, then leave; the time per operation by segment.
    let marks: Vec<usize> = [10_000, 50_000, 100_000]
        .into_iter()
        .map(|m| m * room_n / 100_000)
        .collect();
    let (ids, mut futures) = prepare(&hub, &runtime, room_n);
    connect(&mut futures);
    for (what, join) in [("join", true), ("leave", false)] {
        let mut from = 0;
        let start = Instant::now();
        for &to in &marks {
            let seg = Instant::now();
            for id in &ids[from..to] {
                if join {
                    assert!(hub.join(*id, "one").expect("join"));
                } else {
                    assert!(hub.leave(*id, "one"));
                }
            }
            let seg = seg.elapsed();
            println!(
                "one room: {what} members {:>6}..{to:<6} {:>8.1} ns/op, {:>8.1} ms in total so far",
                from + 1,
                seg.as_nanos() as f64 / (to - from) as f64,
                start.elapsed().as_secs_f64() * 1e3
            );
            from = to;
        }
        if join {
            assert_eq!(hub.member_count("one"), room_n);
            // A fan-out after the joins: it rebuilds the member list once.
            let t = Instant::now();
            let report = hub.publish("one", "x");
            println!(
                "one room: a publish to {} members after the joins: {:.1} ms",
                report.queued,
                t.elapsed().as_secs_f64() * 1e3
            );
        }
    }
    assert_eq!(hub.room_count(), 0);
    drop(futures);
    assert_eq!(hub.connection_count(), 0);
}
