//! `broadcast_server ADDR`: serves `ws://ADDR/ws`; every text or binary message any client
//! sends goes to every connected client, the sender included (the semantics of gorilla's
//! chat example). What fan-out benchmarks run against.
//!
//! Each message is encoded once and shared by every recipient. `TETHER_WORKERS=N` runs N
//! worker threads (a multi-threaded tokio runtime); the default, 1, runs everything on one
//! thread (`current_thread`). A subscriber that falls behind is handled by the hub's
//! slow-consumer policy: `TETHER_POLICY=disconnect` (the default, 1008, as gorilla's hub),
//! `drop-new` or `drop-oldest`, with a queue of `TETHER_QUEUE` messages (default 1024)
//! beyond the connection's write buffer. `TETHER_ROOM=1` joins every connection to one room
//! (`all`) and publishes each message to that room instead (the same recipients, through
//! the room's member list): what the memory of an idle connection in one room is measured
//! with. `TETHER_SIZES=1` prints the size of each connection's task future (a debug log).
//! `TETHER_FLUSH_MS=N` sets the hub's flush interval: a connection's messages wait up to
//! N ms to go out together in one write (fewer writes under heavy fan-out, for at most N ms
//! more latency); unset or 0, each goes at once.
//!
//! Once a second, while they change, it prints the hub's counters on standard error:
//! `broadcast_server: stats conns=… relayed=… queued=… dropped=… cut=…` (the fan-out
//! benchmark keeps the last line): connections, messages received, deliveries, messages
//! dropped (queue full), connections cut as slow consumers.
//!
//! ```text
//! cargo run --release -p tether-hub --example broadcast_server -- 127.0.0.1:9002
//! ```

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use tether_hub::{Handler, Hub, HubConfig, HubError, Identity, Payload, Policy, Session};
use tether_tokio::{Accept, Config, Reject, WebSocket, accept_with};

/// Every message to everyone: to every connection, or, with `room`, every connection
/// joins room `all` and each message goes to it.
struct Broadcast {
    room: bool,
}

impl Handler for Broadcast {
    async fn on_connect(&self, hub: &Hub, session: &Session) -> Result<(), HubError> {
        if self.room {
            hub.join(session.id(), "all")?;
        }
        Ok(())
    }

    async fn on_message(&self, hub: &Hub, _session: &Session, payload: Payload) {
        if self.room {
            hub.publish("all", payload);
        } else {
            hub.broadcast(payload);
        }
    }
}

/// One connection's task: the handshake, then the hub's serve future. Spawned as it is (an
/// `async move` block around them would hold `accepting` twice, for the connection's
/// life), and given what it keeps as small as it comes: the identity (one pointer) rather
/// than the peer's address (32 bytes), the handshake future boxed (8 bytes of it stay in
/// the task for its life, not 64).
async fn connection(
    hub: Hub,
    handler: Arc<Broadcast>,
    accepting: Pin<Box<impl Future<Output = Result<WebSocket, tether_tokio::Error>>>>,
    identity: Identity,
) {
    let Ok(ws) = accepting.await else { return };
    let _ = hub.serve(ws, identity, handler).await;
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
    let room = std::env::var("TETHER_ROOM").is_ok_and(|r| r == "1");
    let sizes = std::env::var("TETHER_SIZES").is_ok_and(|r| r == "1");
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(&addr).await?;
        eprintln!(
            "broadcast_server listening on ws://{}/ws ({workers} worker thread(s){})",
            listener.local_addr()?,
            if room { ", one room" } else { "" }
        );
        let mut hub_config = HubConfig::default();
        hub_config.policy = match std::env::var("TETHER_POLICY").as_deref() {
            Ok("drop-new") => Policy::DropNew,
            Ok("drop-oldest") => Policy::DropOldest,
            _ => Policy::default(),
        };
        if let Some(n) = std::env::var("TETHER_QUEUE")
            .ok()
            .and_then(|n| n.parse().ok())
        {
            hub_config.max_queue_messages = n;
        }
        let flush_ms: u64 = std::env::var("TETHER_FLUSH_MS")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        if flush_ms > 0 {
            hub_config.flush_interval = Some(std::time::Duration::from_millis(flush_ms));
        }
        let hub = Hub::new(hub_config);
        if flush_ms > 0 {
            hub.set_sleep(|d| Box::pin(tokio::time::sleep(d)));
        }
        if workers > 1 {
            // A fan-out to hundreds writes from every worker thread that is free.
            hub.set_fan_out_helpers(workers - 1, |job| {
                tokio::task::spawn_blocking(job);
            });
        }
        tokio::spawn(report(hub.clone()));
        let handler = Arc::new(Broadcast { room });
        let config = Config::default();
        loop {
            let (stream, peer) = listener.accept().await?;
            stream.set_nodelay(true)?;
            let check = |req: &tether_tokio::Request| match req.path() {
                "/ws" => Ok(Accept::new()),
                _ => Err(Reject::new(404)),
            };
            let accepting = accept_with(stream, config.clone(), check);
            let identity = Identity::new().with_peer_addr(peer);
            let task = connection(hub.clone(), handler.clone(), Box::pin(accepting), identity);
            if sizes {
                eprintln!(
                    "a connection's task future: {} bytes",
                    std::mem::size_of_val(&task)
                );
            }
            tokio::spawn(task);
        }
    })
}

/// Prints the hub's counters once a second while they change.
async fn report(hub: Hub) {
    let mut last = String::new();
    loop {
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        let s = hub.stats();
        let d = &s.deliveries;
        let line = format!(
            "conns={} relayed={} queued={} dropped={} cut={}",
            s.connections,
            s.messages_in,
            d.delivered,
            d.dropped_new + d.dropped_oldest,
            d.disconnected_slow
        );
        if line != last {
            eprintln!("broadcast_server: stats {line}");
            last = line;
        }
    }
}
