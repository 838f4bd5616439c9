//! tether-gateway: the tether WebSocket server, as the `tether` binary or embedded in an
//! axum application.
//!
//! The binary (`cargo run -p tether-gateway -- --help`) serves `/ws`, `/health` and `/` from
//! a configuration read from a TOML file, `TETHER_*` environment variables and flags. A
//! WebSocket connection runs on the hub ([`AppState::hub`], tether-hub) and speaks the JSON
//! envelope protocol of `PROTOCOL.md` (rooms, sends, recovery, raw rooms). An application
//! embeds the same routes next to its own, and may add message types of its own with a
//! [`Handler`]:
//!
//! ```no_run
//! use axum::{Router, routing::get};
//! use std::net::SocketAddr;
//! use tether_gateway::envelope::Envelope;
//! use tether_gateway::{AppState, Context, Handler, Refusal, config::Config};
//!
//! /// `app.hello` is answered with the user's name; other application types are refused.
//! struct Hello;
//!
//! impl Handler for Hello {
//!     async fn on_message(&self, cx: &Context, message: Envelope) -> Result<Option<Envelope>, Refusal> {
//!         if message.kind.as_str() != "app.hello" {
//!             return Err(Refusal::unknown_type(&message.kind));
//!         }
//!         let name = serde_json::to_string(cx.user().unwrap_or("stranger")).unwrap();
//!         Ok(Some(Envelope {
//!             content: serde_json::value::RawValue::from_string(name).ok(),
//!             ..message
//!         }))
//!     }
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let mut config = Config::default();
//! config.dev = false;
//! config.auth.hmac_secret = Some(std::env::var("JWT_SECRET")?);
//! let gateway = AppState::with_handler(config, Hello)?;
//! let app = Router::new()
//!     .route("/hello", get(|| async { "the application's own route" }))
//!     .merge(tether_gateway::router(gateway.clone()));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
//!     .with_graceful_shutdown(async { let _ = tokio::signal::ctrl_c().await; })
//!     .await?;
//! gateway.shutdown(); // send what is queued, close the WebSocket connections with 1001
//! gateway.drained().await;
//! # Ok(()) }
//! ```
//!
//! The modules:
//!
//! - [`config`]: the configuration (TOML file, `TETHER_*` environment, flags), validated;
//! - [`auth`]: JWT and the dev mode's identities, before the upgrade;
//! - [`origin`]: the `Origin` check of upgrades;
//! - [`proxy`]: the client's address behind trusted reverse proxies;
//! - [`envelope`]: the client protocol's JSON envelope (`PROTOCOL.md`);
//! - [`handler`]: an embedded application's message types ([`Handler`]);
//! - [`publish`]: publishing to a room (the WebSocket `publish` and the HTTP API);
//! - [`ratelimit`]: the per-connection token bucket;
//! - [`server`]: the axum router and [`serve`] (`/health`, `/`, `/ws` on the hub);
//! - [`api`]: the HTTP API (`/api/...`: broadcast, send, publish, disconnect, status,
//!   stats, rooms, presence, history), behind `api_key` or an admin token;
//! - [`telemetry`]: the Prometheus metrics (`GET /metrics`);
//! - [`tls`]: TLS from PEM files with rustls;
//! - [`error`]: the JSON error of HTTP refusals.

pub mod api;
pub mod auth;
pub mod config;
pub mod envelope;
pub mod error;
pub mod handler;
pub mod origin;
pub mod proxy;
pub mod publish;
pub mod ratelimit;
pub mod server;
mod session;
pub mod telemetry;
pub mod tls;

pub use handler::{Context, Handler, Refusal};
pub use server::{AppState, router, serve};
