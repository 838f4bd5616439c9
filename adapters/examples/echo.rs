//! What the `echo_server` example of each adapter does with a connection, written once:
//! the example (`adapters/{tokio,async-std}/examples/echo_server.rs`) includes this file as
//! a module, with the adapter crate in scope as `crate::ws`, and adds its runtime's
//! listener and tasks.

use crate::ws::{Config, Message, WebSocket};

/// permessage-deflate accepted, and every message compressed however short (the Autobahn
/// runner expects even 16-byte echoes compressed).
pub fn config() -> Config {
    let mut config = Config::default();
    config.deflate.enabled = true;
    config.deflate.threshold = 0;
    config
}

/// Sends back every text and binary message until the connection ends.
pub async fn echo(mut ws: WebSocket) {
    while let Some(Ok(message)) = ws.recv().await {
        if matches!(message, Message::Text(_) | Message::Binary(_))
            && ws.send(message).await.is_err()
        {
            break;
        }
    }
}
