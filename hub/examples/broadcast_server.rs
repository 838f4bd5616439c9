//! `broadcast_server ADDR`: serves `ws://ADDR/ws`; every text or binary message any client
//! sends goes to every connected client, the sender included (the semantics of gorilla's
//! chat example). What fan-out benchmarks run against.
//!
//! Each message is encoded once and shared by every recipient. `TETHER_WORKERS=N` runs N
//! worker threads (a multi-threaded tokio runtime); the default, 1, runs everything on one
//! thread (`current_thread`).
//!
//! ```text
//! cargo run --release -p tether-hub --example broadcast_server -- 127.0.0.1:9002
//! ```

use tether_hub::{Handler, Hub, Identity, Payload, Session};
use tether_tokio::{Accept, Config, Reject, accept_with};

/// Every message to everyone.
struct Broadcast;

impl Handler for Broadcast {
    async fn on_message(&self, hub: &Hub, _session: &Session, payload: Payload) {
        hub.broadcast(payload);
    }
}

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9002".to_owned());
    let workers: usize = std::env::var("TETHER_WORKERS")
        .ok()
        .and_then(|w| w.parse().ok())
        .unwrap_or(1)
        .max(1);
    let runtime = if workers == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .enable_all()
            .build()?
    };
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(&addr).await?;
        eprintln!(
            "broadcast_server listening on ws://{}/ws ({workers} worker thread(s))",
            listener.local_addr()?
        );
        let hub = Hub::default();
        let config = Config::default();
        loop {
            let (stream, peer) = listener.accept().await?;
            stream.set_nodelay(true)?;
            let check = |req: &tether_tokio::Request| match req.path() {
                "/ws" => Ok(Accept::new()),
                _ => Err(Reject::new(404)),
            };
            let accepting = accept_with(stream, config.clone(), check);
            let hub = hub.clone();
            tokio::spawn(async move {
                let Ok(ws) = accepting.await else { return };
                let identity = Identity::new().with_peer_addr(peer);
                let _ = hub.serve(ws, identity, Broadcast).await;
            });
        }
    })
}
