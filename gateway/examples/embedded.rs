//! An existing axum application with its own route, plus the gateway's `/ws` and `/health`
//! on the same port.
//!
//! ```text
//! cargo run -p tether-gateway --example embedded -- 127.0.0.1:3000
//! curl http://127.0.0.1:3000/hello
//! ```
//!
//! It runs the gateway in dev mode (connections without a token are accepted); set a key in
//! the configuration for anything else.

use axum::Router;
use axum::routing::get;
use std::net::SocketAddr;
use tether_gateway::AppState;
use tether_gateway::config::Config;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:3000".to_owned());
    let gateway = AppState::new(Config::default())?;
    let app = Router::new()
        .route("/hello", get(|| async { "hello from the application\n" }))
        .merge(tether_gateway::router(gateway.clone()));
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    eprintln!("embedded: listening on {}", listener.local_addr()?);
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    gateway.shutdown();
    gateway.drained().await;
    Ok(())
}
