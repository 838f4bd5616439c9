//! # tether-bench
//!
//! Benchmarks for Tether, side by side with the libraries a user would pick instead
//! (issue 7). Not published; not part of the test command, but `cargo bench --no-run`
//! builds it.
//!
//! - `benches/micro.rs` (criterion): frame header decode, unmasking, frame encode, UTF-8
//!   validation, deflate and inflate, a `Connection` decoding many small frames, the
//!   handshake parse. `cargo bench -p tether-bench --bench micro`.
//! - The echo benchmark, driven by `scripts/bench.sh`: each server runs as its own
//!   single-threaded process pinned to one core, and the lean load client (`load`, a raw
//!   WebSocket client on a current-thread tokio runtime that builds its frames once) runs
//!   pinned to the other. Servers: the `echo_server` examples of tether-tokio and
//!   tether-async-std, and [`servers::tungstenite`] / [`servers::fastwebsockets`] (the
//!   binaries `echo_tungstenite` and `echo_fastwebsockets`). Optional runtime floors, not
//!   competitors: [`servers::floor_tokio`] / [`servers::floor_async_io`] (`echo_floor_tokio`,
//!   `echo_floor_async_io`), a minimal echo on each runtime. `scripts/async-io-styles.sh`
//!   compares ways of running async-io on one thread ([`servers::AsyncIoStyle`], with the
//!   bin `echo_tether_async_std`).
//! - `alloc_echo`: heap allocations per echoed message in steady state, counted by a
//!   global counting allocator, for each server in-process against a blocking client that
//!   does not allocate.
//! - The broadcast benchmark (issue 21), driven by `scripts/bench-broadcast.sh`: the
//!   server `broadcast_tether` publishes messages to every connection on command, as
//!   prepared frames or one message per connection, against `load broadcast`, which holds
//!   the connections and counts every delivery. `broadcast_copies` counts, in-process, the
//!   bytes the core copies per delivery either way.
//! - The fan-out benchmark (issue 22), driven by `scripts/bench-fanout.sh`: `fanout`, a
//!   load client with N subscribers and P publishers (one message in flight or a rate;
//!   loss from sequence numbers, latency from send timestamps, server CPU per delivery and
//!   memory per connection from `/proc`), against peers that send every message to every
//!   client: `fanout_floor` (no library, one `try_write` per delivery), `fanout_tether`
//!   (tether-tokio without the hub), `fanout_axum` (axum + `tokio::sync::broadcast`),
//!   `fanout_tungstenite` (tokio-tungstenite + an mpsc hub), and, in `benches/peers`, the
//!   gorilla/websocket chat hub (Go) and Node `ws`. [`fanout`] holds their shared counters.
//! - The gateway benchmark (issue 23), driven by `scripts/bench-gateway.sh`:
//!   `gateway_load` against the `tether` binary (and tether-tokio's `echo_server` for the
//!   bare handshake): handshakes per second and server CPU per handshake without a token,
//!   with HS256 and ES256 tokens; memory per idle connection joined to a room; the time a
//!   broadcast (a client's `send` to everyone, or `POST /api/broadcast`) takes to reach the
//!   last of N connections.
//!
//! This library holds what those binaries share: the echo servers of the compared
//! libraries, the fan-out peers' counters, reading a process's CPU time and resident
//! memory from `/proc`, the load clients' wire bytes ([`wire`]), connection set-up
//! ([`client`]) and latency histogram ([`stats`]).

pub mod client;
pub mod fanout;
pub mod proc;
pub mod runtime;
pub mod servers;
pub mod stats;
pub mod wire;

/// The driver under the name `adapters/examples/echo.rs` expects (see [`servers`]).
use tether_driver as ws;

/// The first command-line argument as a count (`N` of the instruction-counting binaries),
/// or `default` when there is none. Exits with a message when it is not a number.
pub fn count_arg(default: usize) -> usize {
    match std::env::args().nth(1) {
        None => default,
        Some(arg) => arg.parse().unwrap_or_else(|_| {
            eprintln!("not a count: {arg}");
            std::process::exit(2)
        }),
    }
}

/// Binds the address given as the first command-line argument (`127.0.0.1:9001` without
/// one), for the echo server binaries, and says `NAME listening on ADDR` on standard error.
pub fn listen_on_arg(name: &str) -> std::io::Result<std::net::TcpListener> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9001".to_owned());
    let listener = std::net::TcpListener::bind(&addr)?;
    eprintln!("{name} listening on {}", listener.local_addr()?);
    Ok(listener)
}

/// The listener of a single-threaded fan-out peer ([`listen_on_arg`], non-blocking) and the
/// current-thread tokio runtime it runs on.
pub fn current_thread_server(
    name: &str,
) -> std::io::Result<(tokio::runtime::Runtime, std::net::TcpListener)> {
    let listener = listen_on_arg(name)?;
    listener.set_nonblocking(true)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    Ok((runtime, listener))
}

/// The next index a pool of workers takes from `next`, below `limit` (`None`: all taken).
pub fn take_next(next: &std::cell::Cell<usize>, limit: usize) -> Option<usize> {
    let i = next.get();
    (i < limit).then(|| {
        next.set(i + 1);
        i
    })
}

/// The second command-line argument, if any (the `STYLE` of the async-io echo binaries).
pub fn second_arg() -> Option<String> {
    std::env::args().nth(2)
}
