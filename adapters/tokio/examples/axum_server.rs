//! `axum_server ADDR`: an axum application with a tether WebSocket on the same port.
//!
//! - `/ws` (and `/`, so that the interop scripts can drive it like `echo_server`): a
//!   WebSocket echo (text and binary) on a tether connection, with permessage-deflate
//!   accepted whenever the client offers it. axum parses the request; `tether_tokio::upgrade`
//!   checks it, negotiates and answers 101 (or 400, 405, 426), and the upgraded connection
//!   becomes a `WebSocket`.
//! - `/health`: `200` with `{"status":"ok"}` (`application/json`).
//!
//! Prints `axum_server listening on ADDR` on stderr once it accepts connections.
//!
//! ```text
//! cargo run -p tether-tokio --features hyper --example axum_server -- 127.0.0.1:3000
//! ```

use axum::Router;
use axum::extract::{Request, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use tether_tokio::{Accept, Config, Message, WebSocket};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:3000".to_owned());
    let mut config = Config::default();
    config.deflate.enabled = true;
    let app = Router::new()
        .route("/", any(ws))
        .route("/ws", any(ws))
        .route("/health", get(health))
        .with_state(config);
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    eprintln!("axum_server listening on {}", listener.local_addr()?);
    axum::serve(listener, app).await
}

/// Upgrades the request and echoes on the connection, in a task of its own.
async fn ws(State(config): State<Config>, mut request: Request) -> Response {
    match tether_tokio::upgrade(&mut request, &config, Accept::new()) {
        Ok((response, upgrading)) => {
            tokio::spawn(async move {
                match upgrading.await {
                    Ok(ws) => echo(ws).await,
                    Err(e) => eprintln!("upgrade failed: {e}"),
                }
            });
            response
        }
        Err(response) => response,
    }
}

async fn echo(mut ws: WebSocket) {
    while let Some(Ok(message)) = ws.recv().await {
        if matches!(message, Message::Text(_) | Message::Binary(_))
            && ws.send(message).await.is_err()
        {
            break;
        }
    }
}

async fn health() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        r#"{"status":"ok"}"#,
    )
}
