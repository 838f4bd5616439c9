//! `fanout_axum ADDR`: a fan-out peer (issue 22) written the way axum's chat example is:
//! axum's `WebSocketUpgrade` on `/ws`, one `tokio::sync::broadcast` channel, and per
//! connection a task that forwards what its receiver yields to the socket (`send`: one
//! write and flush per message) while the connection's reader publishes every text or
//! binary message it receives to the channel. Single-threaded (tokio `current_thread`),
//! like the other peers.
//!
//! The channel holds [`CAPACITY`] messages; a receiver that falls further behind is told
//! `Lagged(n)`, and those `n` deliveries are lost: counted as `dropped` (see
//! [`tether_bench::fanout`]).

use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use axum::routing::get;
use axum::serve::ListenerExt;
use futures_util::{SinkExt, StreamExt};
use tether_bench::fanout::{Counters, report};
use tokio::sync::broadcast;

static STATS: Counters = Counters::new();

/// The broadcast channel's capacity (messages).
const CAPACITY: usize = 1024;

async fn ws(upgrade: WebSocketUpgrade, State(tx): State<broadcast::Sender<Message>>) -> Response {
    upgrade.on_upgrade(move |socket| connection(socket, tx))
}

async fn connection(socket: WebSocket, tx: broadcast::Sender<Message>) {
    Counters::add(&STATS.conns, 1);
    let (mut sink, mut stream) = socket.split();
    let mut rx = tx.subscribe();
    let mut forward = tokio::spawn(async move {
        loop {
            match rx.recv().await {
                Ok(msg) => {
                    if sink.send(msg).await.is_err() {
                        break;
                    }
                    Counters::add(&STATS.queued, 1);
                }
                Err(broadcast::error::RecvError::Lagged(n)) => Counters::add(&STATS.dropped, n),
                Err(broadcast::error::RecvError::Closed) => break,
            }
        }
    });
    let mut read = tokio::spawn(async move {
        while let Some(Ok(msg)) = stream.next().await {
            if matches!(msg, Message::Text(_) | Message::Binary(_)) {
                Counters::add(&STATS.relayed, 1);
                let _ = tx.send(msg);
            }
        }
    });
    tokio::select! {
        _ = &mut forward => read.abort(),
        _ = &mut read => forward.abort(),
    }
    Counters::sub_one(&STATS.conns);
}

fn main() -> std::io::Result<()> {
    let (runtime, listener) = tether_bench::current_thread_server("fanout_axum")?;
    runtime.block_on(async {
        // TCP_NODELAY on every connection, like the other peers.
        let listener = tokio::net::TcpListener::from_std(listener)?.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        tokio::spawn(report("fanout_axum", &STATS));
        let (tx, _) = broadcast::channel::<Message>(CAPACITY);
        let app = axum::Router::new().route("/ws", get(ws)).with_state(tx);
        axum::serve(listener, app).await
    })
}
