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

use tether_tokio::{Accept, Config, Message, accept_with};

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
        let mut config = Config::default();
        config.deflate.enabled = true;
        // Compress every message, however short (the Autobahn runner expects even 16-byte
        // echoes compressed).
        config.deflate.threshold = 0;
        loop {
            let (stream, _) = listener.accept().await?;
            stream.set_nodelay(true)?;
            // The connection starts now; its task awaits the handshake and echoes.
            let accepting = accept_with(stream, config.clone(), |_| Ok(Accept::new()));
            tokio::spawn(async move {
                let Ok(mut ws) = accepting.await else {
                    return;
                };
                loop {
                    let Some(Ok(message)) = ws.recv().await else {
                        break;
                    };
                    if matches!(message, Message::Text(_) | Message::Binary(_))
                        && ws.send(message).await.is_err()
                    {
                        break;
                    }
                }
            });
        }
    })
}
