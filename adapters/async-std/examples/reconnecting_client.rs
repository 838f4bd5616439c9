//! `reconnecting_client URL`: a client that stays connected. Sends `tick N` every 200 ms,
//! prints every message received as `recv: <text>` and every lifecycle event on its own
//! line. Stop the server and start it again: the client reconnects by itself, and the ticks
//! sent meanwhile (kept in its outbox) arrive in order.
//!
//! ```text
//! cargo run --release -p tether-async-std --example echo_server -- 127.0.0.1:9001
//! cargo run -p tether-async-std --example reconnecting_client -- ws://127.0.0.1:9001
//! ```

use std::time::Duration;
use tether_async_std::{
    ClientEvent, ClientRequest, Config, Message, OutboxError, ReconnectConfig, reconnecting,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "ws://127.0.0.1:9001".to_owned());
    // A server that stops answering is found within 2 s + 2 s.
    let mut config = Config::default();
    config.timeouts.ping_interval = Some(Duration::from_secs(2));
    config.timeouts.pong_timeout = Some(Duration::from_secs(2));
    let policy = ReconnectConfig {
        initial_delay: Duration::from_millis(250),
        max_delay: Duration::from_secs(5),
        ..ReconnectConfig::default()
    };
    let mut client = reconnecting(move |_attempt| ClientRequest::new(&url))
        .config(config)
        .policy(policy)
        .start()?;

    // Sending never waits (the outbox is bounded), so a plain thread can tick.
    let ticker = client.handle();
    std::thread::spawn(move || {
        for n in 1u64.. {
            std::thread::sleep(Duration::from_millis(200));
            match ticker.try_send_text(format!("tick {n}")) {
                Ok(()) => {}
                Err(OutboxError::Full(_)) => println!("outbox full: tick {n} dropped"),
                Err(_) => break, // the client stopped
            }
        }
    });

    async_io::block_on(async {
        while let Some(event) = client.next_event().await {
            match event {
                ClientEvent::Message(Message::Text(text)) => println!("recv: {text}"),
                other => println!("{other}"),
            }
        }
    });
    Ok(())
}
