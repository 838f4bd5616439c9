//! `client URL`: a line-based WebSocket client. Sends every line of standard input as a
//! text message and prints every message received; closes at end of input.
//!
//! ```text
//! cargo run -p tether-tokio --example client -- ws://127.0.0.1:9001
//! ```

use tether_tokio::{Error, Message, connect};
use tokio::io::AsyncBufReadExt;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "ws://127.0.0.1:9001".to_owned());
    let (ws, response) = connect(&url).await?;
    eprintln!("connected: {}", response.status());
    let (mut read, mut write) = ws.split();

    let printer = tokio::spawn(async move {
        while let Some(message) = read.recv().await {
            match message {
                Ok(Message::Text(text)) => println!("{text}"),
                Ok(Message::Binary(data)) => println!("<{} bytes of binary>", data.len()),
                Ok(other) => println!("{other:?}"),
                Err(e) => eprintln!("error: {e}"),
            }
        }
        if let Some(reason) = read.close_reason() {
            eprintln!("closed: {} {reason:?}", reason.code());
        }
    });

    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await? {
        if write.send_text(line).await.is_err() {
            break;
        }
    }
    let _ = write.close(1000, "").await;
    let _ = printer.await;
    Ok(())
}
