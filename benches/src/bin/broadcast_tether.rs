//! `broadcast_tether ADDR`: the broadcast benchmark's server (issue 21), a single-threaded
//! tether-tokio server (tokio `current_thread`, like the echo servers) that publishes
//! messages to every connection it holds, on command.
//!
//! It accepts every upgrade request (no compression, no keep-alive pings) and keeps a [`Sender`] per
//! connection. A text message `MODE M S B` on any connection publishes `M` binary messages
//! of `S` bytes to every connection held at that moment, yielding to the runtime (so that
//! the connections' drivers write) after every `B` messages. `MODE` is
//!
//! - `prepared`: each message is encoded once as a [`PreparedFrame`] and queued on every
//!   connection with [`Sender::try_send_prepared`], its bytes shared, not copied;
//! - `per-connection`: the baseline, [`Sender::try_send`] of the message (its payload
//!   shared as [`Bytes`]) to every connection, encoded by each connection.
//!
//! A `Full` answer (the connection's queue at its high-water mark) is counted, and the
//! message is then sent with the waiting send, so that every delivery still happens; a
//! `Closed` answer is counted and the message dropped for that connection. Once done, the
//! server answers on the commanding connection, after the messages, with a text message
//! `recipients=N full=F closed=C publish_us=T`.
//!
//! ```text
//! broadcast_tether 127.0.0.1:9001
//! load broadcast --addr 127.0.0.1:9001 --pid PID --conns 1000 --cases 20:1000
//! ```
//!
//! `scripts/bench-broadcast.sh` runs it, pinned to one CPU.

use bytes::Bytes;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tether_tokio::{Accept, Config, Message, PreparedFrame, Sender, TrySendError, accept_with};

/// The connections held: a `Sender` for each.
type Registry = Arc<Mutex<Vec<Sender>>>;

/// How a message reaches its recipients.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// One [`PreparedFrame`] per message, shared by every connection.
    Prepared,
    /// One [`Message`] per recipient, encoded by each connection.
    PerConnection,
}

/// A publishing command: `MODE M S B`.
#[derive(Clone, Copy, Debug)]
struct Command {
    mode: Mode,
    msgs: usize,
    size: usize,
    burst: usize,
}

impl Command {
    fn parse(text: &str) -> Option<Self> {
        let mut it = text.split_whitespace();
        let mode = match it.next()? {
            "prepared" => Mode::Prepared,
            "per-connection" => Mode::PerConnection,
            _ => return None,
        };
        let msgs = it.next()?.parse().ok()?;
        let size = it.next()?.parse().ok()?;
        let burst = it.next().map_or(Some(1), |b| b.parse().ok())?;
        Some(Self {
            mode,
            msgs,
            size,
            burst: usize::max(burst, 1),
        })
    }
}

/// What a publication met.
#[derive(Default)]
struct Outcome {
    full: u64,
    closed: u64,
}

/// Publishes `cmd` to `senders`; returns the `Full` and `Closed` answers met.
async fn publish(senders: &[Sender], cmd: Command) -> Outcome {
    let mut out = Outcome::default();
    // Printable payload; every message has the same bytes (a new encoding each time).
    let payload = Bytes::from(
        (0..cmd.size)
            .map(|i| b'a' + (i % 26) as u8)
            .collect::<Vec<_>>(),
    );
    for i in 0..cmd.msgs {
        match cmd.mode {
            Mode::Prepared => {
                let frame = PreparedFrame::new(&Message::binary(payload.clone()))
                    .expect("a binary message");
                for s in senders {
                    match s.try_send_prepared(&frame) {
                        Ok(()) => {}
                        Err(TrySendError::Full(())) => {
                            out.full += 1;
                            if s.send_prepared(&frame).await.is_err() {
                                out.closed += 1;
                            }
                        }
                        Err(_) => out.closed += 1,
                    }
                }
            }
            Mode::PerConnection => {
                for s in senders {
                    match s.try_send(Message::binary(payload.clone())) {
                        Ok(()) => {}
                        Err(TrySendError::Full(m)) => {
                            out.full += 1;
                            if s.send(m).await.is_err() {
                                out.closed += 1;
                            }
                        }
                        Err(_) => out.closed += 1,
                    }
                }
            }
        }
        if (i + 1) % cmd.burst == 0 {
            tokio::task::yield_now().await;
        }
    }
    out
}

fn main() -> std::io::Result<()> {
    let (runtime, listener) = tether_bench::current_thread_server("broadcast_tether")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let registry: Registry = Arc::default();
        let mut config = Config::default();
        // No keep-alive pings: the load client does not answer them, and a publication
        // may outlast the interval.
        config.timeouts.ping_interval = None;
        loop {
            let (stream, _) = listener.accept().await?;
            stream.set_nodelay(true)?;
            let accepting = accept_with(stream, config.clone(), |_| Ok(Accept::new()));
            let registry = registry.clone();
            tokio::spawn(async move {
                let Ok(mut ws) = accepting.await else {
                    return;
                };
                let me = ws.sender();
                registry.lock().expect("registry").push(me.clone());
                // Awaiting `recv` drives the connection (reads, writes, pings).
                while let Some(Ok(message)) = ws.recv().await {
                    let Message::Text(text) = message else {
                        continue;
                    };
                    let Some(cmd) = Command::parse(&text) else {
                        let _ = me.try_send(Message::text(format!("error=bad command {text}")));
                        continue;
                    };
                    let me = me.clone();
                    let registry = registry.clone();
                    tokio::spawn(async move {
                        let senders: Vec<Sender> = {
                            let mut held = registry.lock().expect("registry");
                            held.retain(|s| !s.is_closed());
                            held.clone()
                        };
                        let t0 = Instant::now();
                        let out = publish(&senders, cmd).await;
                        let us = t0.elapsed().as_micros();
                        let report = format!(
                            "recipients={} full={} closed={} publish_us={us}",
                            senders.len(),
                            out.full,
                            out.closed
                        );
                        let _ = me.send(Message::text(report)).await;
                    });
                }
            });
        }
    })
}
