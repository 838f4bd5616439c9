//! `client URL`: a line-based WebSocket client. Sends every line of standard input as a
//! text message and prints every message received; closes at end of input.
//!
//! ```text
//! cargo run -p tether-async-std --example client -- ws://127.0.0.1:9001
//! ```

use async_io::block_on;
use std::io::BufRead;
use tether_async_std::{Error, Message, connect};

fn main() -> Result<(), Error> {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "ws://127.0.0.1:9001".to_owned());
    let (ws, response) = block_on(connect(&url))?;
    eprintln!("connected: {}", response.status());
    let (mut read, mut write) = ws.split();

    // Standard input blocks, so the sending half lives on a thread of its own.
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if block_on(write.send_text(line)).is_err() {
                return;
            }
        }
        let _ = block_on(write.close(1000, ""));
    });

    block_on(async {
        while let Some(message) = read.recv().await {
            match message {
                Ok(Message::Text(text)) => println!("{text}"),
                Ok(Message::Binary(data)) => println!("<{} bytes of binary>", data.len()),
                Ok(other) => println!("{other:?}"),
                Err(e) => eprintln!("error: {e}"),
            }
        }
    });
    if let Some(reason) = read.close_reason() {
        eprintln!("closed: {} {reason:?}", reason.code());
    }
    Ok(())
}
