//! `blocking_echo ADDR`: an echo server on `std::net`, one thread per connection, driving
//! `tether-core` by hand. It shows the core embedded in the plainest possible loop: read with
//! a timeout taken from `poll_timeout`, feed the bytes, write what the core hands out.
//!
//! Text and binary messages are echoed; permessage-deflate is accepted when offered.
//!
//! ```text
//! cargo run --release -p tether-core --example blocking_echo -- 127.0.0.1:9001
//! ```

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::time::{Duration, Instant};
use tether_core::{Accept, Config, Connection, DeflateConfig, Event, Message, Transmit};

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9001".to_string());
    let listener = TcpListener::bind(&addr)?;
    eprintln!("blocking_echo listening on {}", listener.local_addr()?);
    let mut config = Config::default();
    // Accept permessage-deflate whenever offered, and compress every message (the
    // Autobahn runner expects even 16-byte echoes compressed).
    config.deflate = DeflateConfig::enabled();
    config.deflate.threshold = 0;
    let config = std::sync::Arc::new(config);
    for stream in listener.incoming() {
        let stream = stream?;
        let config = config.clone();
        std::thread::spawn(move || {
            if let Err(e) = serve(stream, config) {
                eprintln!("connection error: {e}");
            }
        });
    }
    Ok(())
}

fn serve(mut stream: TcpStream, config: std::sync::Arc<Config>) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut conn = Connection::server(config, Instant::now());
    let mut read_buf = vec![0u8; 64 * 1024];
    let mut write_buf = Vec::new();
    loop {
        // Outputs: events first (they may queue replies), then bytes to write.
        while let Some(event) = conn.poll_event() {
            let now = Instant::now();
            match event {
                Event::Request(_) => conn
                    .accept(now, Accept::new())
                    .map_err(std::io::Error::other)?,
                Event::Message(m @ (Message::Text(_) | Message::Binary(_))) => {
                    // The peer may already be closing; then there is nothing to echo to.
                    let _ = conn.send(now, m);
                }
                _ => {}
            }
        }
        while let Some(t) = conn.poll_transmit(&mut write_buf) {
            match t {
                Transmit::Data => {
                    stream.write_all(&write_buf)?;
                    write_buf.clear();
                }
                Transmit::Shutdown => {
                    let _ = stream.shutdown(Shutdown::Both);
                    return Ok(());
                }
            }
        }
        // Inputs: wait for bytes until the next deadline.
        let timeout = conn.poll_timeout().map(|t| {
            t.saturating_duration_since(Instant::now())
                .max(Duration::from_millis(1))
        });
        stream.set_read_timeout(timeout)?;
        match stream.read(&mut read_buf) {
            Ok(0) => conn.handle_eof(Instant::now()),
            Ok(n) => {
                let now = Instant::now();
                conn.handle_input(now, &read_buf[..n]);
                conn.handle_timeout(now);
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                conn.handle_timeout(Instant::now())
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => conn.handle_eof(Instant::now()),
        }
    }
}
