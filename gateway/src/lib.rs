//! tether-gateway: the tether WebSocket server.
//!
//! This crate is the `tether` binary and the modules it is built from:
//!
//! - [`config`]: the configuration (TOML file, `TETHER_*` environment, flags), validated;
//! - [`origin`]: the `Origin` check of upgrades;
//! - [`error`]: the JSON error of HTTP refusals.

pub mod config;
pub mod error;
pub mod origin;
