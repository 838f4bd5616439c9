//! `echo_server ADDR`: a single-threaded WebSocket echo server (tokio `current_thread`).
//!
//! Accepts every upgrade request, negotiates permessage-deflate whenever the client offers
//! it (compressing every message), and echoes every text and binary message. Silent per
//! message, so that it can be benchmarked and run against the Autobahn TestSuite's fuzzing
//! client.
//!
//! ```text
//! cargo run --release -p tether-tokio --example echo_server -- 127.0.0.1:9001
//! ```

use tether_tokio::{self as ws, Accept, accept_with};

#[path = "../../examples/echo.rs"]
mod echo;

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9001".to_owned());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(&addr).await?;
        eprintln!("echo_server listening on {}", listener.local_addr()?);
        let config = echo::config();
        loop {
            let (stream, _) = listener.accept().await?;
            stream.set_nodelay(true)?;
            // The connection starts now; its task awaits the handshake and echoes.
            let accepting = accept_with(stream, config.clone(), |_| Ok(Accept::new()));
            // (The future itself, not `async move { echo(accepting).await }`, which would
            // keep a second copy of `accepting` for the connection's lifetime.)
            tokio::spawn(echo::echo(accepting));
        }
    })
}
