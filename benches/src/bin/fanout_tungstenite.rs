//! `fanout_tungstenite ADDR`: a fan-out peer (issue 22): tokio-tungstenite with a hub task
//! and mpsc channels, the shape of gorilla's chat hub in tokio. The hub task owns the
//! registry (a bounded `mpsc::Sender` per connection) and receives every message the
//! connections' readers get; it hands each one to every connection's queue with
//! `try_send` (a clone of the message: its payload is shared `Bytes`). Each connection's
//! writer task takes a message, `feed`s it and everything else already queued, then flushes
//! once. Any path is accepted. Single-threaded (tokio `current_thread`).
//!
//! A full queue ([`QUEUE`] messages) drops the delivery: counted as `dropped` (see
//! [`tether_bench::fanout`]).

use futures_util::{SinkExt, StreamExt};
use std::collections::HashMap;
use tether_bench::fanout::{Counters, report};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

static STATS: Counters = Counters::new();

/// Each connection's queue (messages).
const QUEUE: usize = 256;

/// What the hub task receives.
enum Event {
    Join(u64, mpsc::Sender<Message>),
    Leave(u64),
    Message(Message),
}

async fn hub(mut events: mpsc::UnboundedReceiver<Event>) {
    let mut clients: HashMap<u64, mpsc::Sender<Message>> = HashMap::new();
    while let Some(event) = events.recv().await {
        match event {
            Event::Join(id, tx) => {
                clients.insert(id, tx);
            }
            Event::Leave(id) => {
                clients.remove(&id);
            }
            Event::Message(msg) => {
                Counters::add(&STATS.relayed, 1);
                let (mut queued, mut dropped) = (0, 0);
                for tx in clients.values() {
                    match tx.try_send(msg.clone()) {
                        Ok(()) => queued += 1,
                        Err(_) => dropped += 1,
                    }
                }
                Counters::add(&STATS.queued, queued);
                Counters::add(&STATS.dropped, dropped);
            }
        }
    }
}

async fn connection(stream: tokio::net::TcpStream, id: u64, hub: mpsc::UnboundedSender<Event>) {
    let Ok(ws) = tokio_tungstenite::accept_async(stream).await else {
        return;
    };
    Counters::add(&STATS.conns, 1);
    let (mut sink, mut stream) = ws.split();
    let (tx, mut rx) = mpsc::channel::<Message>(QUEUE);
    let _ = hub.send(Event::Join(id, tx));
    let mut writer = tokio::spawn(async move {
        while let Some(msg) = rx.recv().await {
            if sink.feed(msg).await.is_err() {
                return;
            }
            while let Ok(msg) = rx.try_recv() {
                if sink.feed(msg).await.is_err() {
                    return;
                }
            }
            if sink.flush().await.is_err() {
                return;
            }
        }
    });
    let to_hub = hub.clone();
    let mut reader = tokio::spawn(async move {
        while let Some(Ok(msg)) = stream.next().await {
            if (msg.is_text() || msg.is_binary()) && to_hub.send(Event::Message(msg)).is_err() {
                return;
            }
        }
    });
    tokio::select! {
        _ = &mut writer => reader.abort(),
        _ = &mut reader => writer.abort(),
    }
    let _ = hub.send(Event::Leave(id));
    Counters::sub_one(&STATS.conns);
}

fn main() -> std::io::Result<()> {
    let (runtime, listener) = tether_bench::current_thread_server("fanout_tungstenite")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        tokio::spawn(report("fanout_tungstenite", &STATS));
        let (events, rx) = mpsc::unbounded_channel();
        tokio::spawn(hub(rx));
        let mut next_id = 0u64;
        loop {
            let (stream, _) = listener.accept().await?;
            stream.set_nodelay(true)?;
            next_id += 1;
            tokio::spawn(connection(stream, next_id, events.clone()));
        }
    })
}
