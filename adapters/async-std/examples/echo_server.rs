//! `echo_server ADDR`: a WebSocket echo server on async-io/async-net (what async-std and
//! smol are made of), everything on one thread: the application and the connections'
//! background tasks share one executor (see `tether_async_std::set_executor`).
//!
//! Accepts every upgrade request, negotiates permessage-deflate whenever the client offers
//! it (compressing every message), and echoes every text and binary message. Silent per
//! message, so that it can be benchmarked and run against the Autobahn TestSuite's fuzzing
//! client.
//!
//! It runs the executor inside `async_io::block_on`, which waits on async-io's reactor on
//! this thread whenever no task is ready. That is the cheapest way to run async-io on one
//! thread that we measured (BENCHMARKS.md, "Runtime floors"): a `LocalExecutor` costs the same
//! (it wraps the same executor), while `futures_lite::future::block_on(ex.run(..))` only
//! parks the thread, leaves the reactor to async-io's helper thread and hands every reactor
//! turn over between the two threads (1.4-1.8x the CPU per message). The helper thread that
//! `strace -f` shows polling the reactor is strace's doing: every traced system call stops
//! this thread, so the helper gets to run, finds the reactor unpolled for its back-off
//! interval and takes it over. Untraced (`perf stat --per-thread`), this thread makes
//! practically all the system calls.
//!
//! ```text
//! cargo run --release -p tether-async-std --example echo_server -- 127.0.0.1:9001
//! ```

use tether_async_std::{self as ws, Accept, accept_with};

#[path = "../../examples/echo.rs"]
mod echo;

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9001".to_owned());
    // One thread for everything: the connections' background tasks run on this executor
    // too, next to the tasks spawned below.
    let ex = std::sync::Arc::new(async_executor::Executor::new());
    tether_async_std::set_executor(ex.clone()).expect("no connection has started yet");
    async_io::block_on(ex.run(async {
        let listener = async_net::TcpListener::bind(&addr).await?;
        eprintln!("echo_server listening on {}", listener.local_addr()?);
        let config = echo::config();
        loop {
            let (stream, _) = listener.accept().await?;
            stream.set_nodelay(true)?;
            // The connection starts now; its task awaits the handshake and echoes.
            let accepting = accept_with(stream, config.clone(), |_| Ok(Accept::new()));
            // (The future itself, not `async move { echo(accepting).await }`, which would
            // keep a second copy of `accepting` for the connection's lifetime.)
            ex.spawn(echo::echo(accepting)).detach();
        }
    }))
}
