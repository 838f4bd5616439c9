//! tether-gateway: the tether WebSocket server.
//!
//! This crate is the `tether` binary and the modules it is built from:
//!
//! - [`config`]: the configuration (TOML file, `TETHER_*` environment, flags), validated;
//! - [`auth`]: JWT and the dev mode's identities, before the upgrade;
//! - [`origin`]: the `Origin` check of upgrades;
//! - [`envelope`]: the client protocol's JSON envelope (`PROTOCOL.md`);
//! - [`ratelimit`]: the per-connection token bucket;
//! - [`server`]: the axum router and [`server::serve`] (`/health`, `/`, `/ws`);
//! - [`error`]: the JSON error of HTTP refusals.

pub mod auth;
pub mod config;
pub mod envelope;
pub mod error;
pub mod origin;
pub mod ratelimit;
pub mod server;
