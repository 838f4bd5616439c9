//! What the `echo_server` example of each adapter does with a connection, written once:
//! the example (`adapters/{tokio,async-std}/examples/echo_server.rs`) includes this file as
//! a module, with the adapter crate in scope as `crate::ws`, and adds its runtime's
//! listener and tasks.

use crate::ws::{Config, Error, Message, WebSocket};
use std::future::Future;

/// permessage-deflate accepted, and every message compressed however short (the Autobahn
/// runner expects even 16-byte echoes compressed).
pub fn config() -> Config {
    let mut config = Config::default();
    config.deflate.enabled = true;
    config.deflate.threshold = 0;
    config
}

/// Awaits the handshake (`accepting`), then sends back every text and binary message
/// until the connection ends.
pub async fn echo(accepting: impl Future<Output = Result<WebSocket, Error>>) {
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
}
