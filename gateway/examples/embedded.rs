//! An existing axum application with its own route, plus the gateway's `/ws` and `/health`
//! on the same port, and a message type of its own: `{"type": "app.shout", "room": "r",
//! "content": "hi", "id": 1}` publishes `"HI"` to the room `r` (as type `app.shout`, from
//! the sender), where the rules let the sender publish.
//!
//! ```text
//! cargo run -p tether-gateway --example embedded -- 127.0.0.1:3000
//! curl http://127.0.0.1:3000/hello
//! ```
//!
//! It runs the gateway in dev mode (connections without a token are accepted, and
//! `?user_id=` names them); set a key in the configuration for anything else.

use axum::Router;
use axum::routing::get;
use serde_json::value::RawValue;
use std::net::SocketAddr;
use tether_gateway::config::{Action, Config};
use tether_gateway::envelope::{Envelope, ErrorCode};
use tether_gateway::{AppState, Context, Handler, Refusal};

/// The application's message types.
struct Shout;

impl Handler for Shout {
    async fn on_message(
        &self,
        cx: &Context,
        message: Envelope,
    ) -> Result<Option<Envelope>, Refusal> {
        let kind = message.kind.as_str();
        if kind != "app.shout" {
            return Err(Refusal::unknown_type(&message.kind));
        }
        let bad = || Refusal::new(ErrorCode::BadRequest, "app.shout needs a room and a text");
        let room = message.room.as_deref().ok_or_else(bad)?;
        let text: String = message
            .content
            .as_deref()
            .and_then(|c| serde_json::from_str(c.get()).ok())
            .ok_or_else(bad)?;
        let config = cx.state().config();
        if !config.allows(room, Action::Publish, cx.identity().requester()) {
            return Err(Refusal::new(
                ErrorCode::Forbidden,
                "you may not publish there",
            ));
        }
        let loud = serde_json::to_string(&text.to_uppercase()).expect("a string");
        let content = RawValue::from_string(loud).expect("JSON");
        tether_gateway::publish::publish_to_room(cx.state(), room, cx.user(), kind, &content)
            .await
            .map_err(|e| Refusal::new(e.code(), e.to_string()))?;
        Ok(None) // an `ack`
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:3000".to_owned());
    let mut config = Config::default();
    config.auth.dev_user_id = true;
    let gateway = AppState::with_handler(config, Shout)?;
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
