//! The gateway's configuration: serde structs with defaults, loaded in layers.
//!
//! Every key has one name in three places (see [`KEYS`]):
//!
//! | layer (later wins) | how a key is named | example |
//! | --- | --- | --- |
//! | TOML file (`--config tether.toml`) | its dotted path | `[limits]` `burst = 20` |
//! | environment | `TETHER_` + the path in capitals, `.` written `__` | `TETHER_LIMITS__BURST=20` |
//! | flags | `--` + the path, `.` and `_` written `-` | `--limits-burst 20` |
//!
//! Unknown keys are errors in every layer (a typo is never silently ignored), and
//! [`Config::validate`] refuses values the server cannot run with, naming the key.
//!
//! ```
//! use tether_gateway::config::{load, Sources};
//!
//! let sources = Sources {
//!     file: None,
//!     env: vec![("TETHER_LIMITS__BURST".into(), "20".into())],
//!     flags: vec![("listen".into(), "127.0.0.1:9000".into())],
//! };
//! let config = load(&sources).unwrap();
//! assert_eq!(config.limits.burst, 20);
//! assert_eq!(config.listen.port(), 9000);
//! ```

use jsonwebtoken::Algorithm;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The most worker threads `workers` may ask for.
pub const MAX_WORKERS: usize = 1024;

/// The whole configuration of the gateway. `Config::default()` is what the server runs with
/// when nothing is configured: dev mode on `127.0.0.1:8080`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address of the public listener (WebSocket and HTTP).
    pub listen: SocketAddr,
    /// Worker threads of the tokio runtime; 0 means one per core.
    pub workers: usize,
    /// Dev mode: connections without a token are accepted (anonymous), localhost origins
    /// are allowed. On by default so that the server runs with no set-up; logged loudly.
    pub dev: bool,
    /// Log format: `text` or `json`.
    pub log_format: LogFormat,
    /// Separate listener for the HTTP API and metrics; when unset they are on `listen`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_listen: Option<SocketAddr>,
    /// API key of the HTTP API (sent as `X-API-Key`); unset means the API needs a JWT with
    /// the admin claim (or is open in dev mode).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
    /// Allowed `Origin`s: exact (`https://app.example.com`) or wildcard subdomains
    /// (`https://*.example.com`). Empty means same-origin only (plus localhost in dev mode).
    pub origins: Vec<String>,
    /// Reverse proxies (addresses or networks, `10.0.0.0/8`) whose `X-Forwarded-For` gives
    /// the client's address for the per-IP limit. Empty: the peer's address counts.
    pub trusted_proxies: Vec<String>,
    /// JWT authentication.
    pub auth: AuthConfig,
    /// Limits per connection and per process.
    pub limits: Limits,
    /// TLS from PEM files.
    pub tls: TlsConfig,
    /// Permission rules per room pattern; the first rule whose pattern matches a room
    /// applies, and a room no rule matches allows nothing.
    pub rooms: Vec<RoomRule>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            workers: 0,
            dev: true,
            log_format: LogFormat::Text,
            admin_listen: None,
            api_key: None,
            origins: Vec::new(),
            trusted_proxies: Vec::new(),
            auth: AuthConfig::default(),
            limits: Limits::default(),
            tls: TlsConfig::default(),
            // The built-in catch-all rule keeps history, so that the demo page (and any
            // client) recovers what it missed across a reconnect out of the box.
            rooms: vec![RoomRule {
                history_size: DEFAULT_HISTORY_SIZE,
                ..RoomRule::default()
            }],
        }
    }
}

/// The history of the built-in catch-all room rule (used when no `[[rooms]]` is
/// configured): the last 100 messages of every room.
pub const DEFAULT_HISTORY_SIZE: usize = 100;

/// The log output's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// JWT authentication: which keys verify tokens, which claims are checked and where a
/// token may come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Secret of the HMAC algorithms (HS256/384/512), at least 32 bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hmac_secret: Option<String>,
    /// PEM file with an RSA, EC (P-256/P-384) or Ed25519 public key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_key: Option<PathBuf>,
    /// JWKS file (a JSON `{"keys": [...]}`); a token's `kid` picks the key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks_file: Option<PathBuf>,
    /// Accepted algorithms; empty means every algorithm of the configured keys' families.
    pub algorithms: Vec<Algorithm>,
    /// Required `iss` claim, if set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// Required `aud` claim, if set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    /// Clock skew allowed when checking `exp` and `nbf`, in seconds.
    pub leeway_secs: u64,
    /// Whether a token without `exp` is refused.
    pub require_exp: bool,
    /// Whether a connection is closed (1008) when its token's `exp` passes (plus the
    /// leeway); otherwise `exp` is only checked at the upgrade.
    pub expire_connections: bool,
    /// Whether a token may come in the `?token=` query parameter (it ends up in access logs).
    pub query_token: bool,
    /// Dev mode only: whether `?user_id=` is accepted as the identity, without a token.
    pub dev_user_id: bool,
    /// Claim with the rooms the user may use (a list of room patterns).
    pub rooms_claim: String,
    /// Claim with the user's metadata (any JSON), shown in presence.
    pub meta_claim: String,
    /// Claim that must be `true` in a token for it to be accepted by the HTTP API
    /// (`Authorization: Bearer`), next to `api_key`.
    pub admin_claim: String,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            hmac_secret: None,
            public_key: None,
            jwks_file: None,
            algorithms: Vec::new(),
            issuer: None,
            audience: None,
            leeway_secs: 5,
            require_exp: true,
            expire_connections: true,
            query_token: false,
            dev_user_id: false,
            rooms_claim: "rooms".to_owned(),
            meta_claim: "meta".to_owned(),
            admin_claim: "admin".to_owned(),
        }
    }
}

impl AuthConfig {
    /// Whether a key is configured (a secret, a public key or a JWKS file).
    pub fn has_key(&self) -> bool {
        self.hmac_secret.is_some() || self.public_key.is_some() || self.jwks_file.is_some()
    }
}

/// Limits. Zero is refused everywhere: to lift a limit, set it high.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest incoming message, in bytes.
    pub max_message_size: usize,
    /// Connections the process accepts in all.
    pub max_connections: usize,
    /// Connections accepted from one IP address.
    pub max_connections_per_ip: usize,
    /// Sustained incoming messages per second per connection (token bucket rate).
    pub messages_per_second: u32,
    /// Incoming messages a connection may send at once (token bucket size).
    pub burst: u32,
    /// Outgoing messages waiting in the hub for one connection (beyond what its socket
    /// buffers); over it, `slow_consumer` applies.
    pub max_queue_messages: usize,
    /// Outgoing bytes waiting in the hub for one connection; over it, `slow_consumer`
    /// applies.
    pub max_queue_bytes: usize,
    /// What happens to a connection whose outgoing queue is full.
    pub slow_consumer: SlowConsumer,
    /// Rooms one connection may be in at once.
    pub max_rooms_per_connection: usize,
}

/// What the hub does with a message for a connection whose outgoing queue is full
/// (`limits.slow_consumer`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SlowConsumer {
    /// Close the connection with 1008: the client reconnects (and recovers, in rooms
    /// with history).
    Disconnect,
    /// Drop the oldest queued messages to make room.
    DropOldest,
    /// Drop the new message.
    DropNew,
}

impl SlowConsumer {
    /// The hub's policy for it.
    pub fn policy(self) -> tether_hub::Policy {
        match self {
            SlowConsumer::Disconnect => {
                tether_hub::Policy::Disconnect(tether_hub::CloseCode::POLICY_VIOLATION)
            }
            SlowConsumer::DropOldest => tether_hub::Policy::DropOldest,
            SlowConsumer::DropNew => tether_hub::Policy::DropNew,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_size: 64 * 1024,
            max_connections: 100_000,
            max_connections_per_ip: 1_000,
            messages_per_second: 50,
            burst: 100,
            max_queue_messages: 1024,
            max_queue_bytes: 1 << 20,
            slow_consumer: SlowConsumer::Disconnect,
            max_rooms_per_connection: 1000,
        }
    }
}

/// TLS from PEM files: both or neither.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// Certificate chain (PEM).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert: Option<PathBuf>,
    /// Private key (PEM).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<PathBuf>,
}

/// Who may do something in a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    /// Every connection, anonymous ones (dev mode) included.
    Anyone,
    /// Every identified connection (a verified token, or `?user_id=` in dev mode).
    User,
    /// Connections whose token lists the room in its rooms claim.
    Claim,
    /// Nobody (only the HTTP API publishes).
    Nobody,
}

/// What a client asks to do in a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Join (receive the room's messages).
    Join,
    /// Publish to the room.
    Publish,
    /// See who is in the room.
    Presence,
    /// Read the room's history.
    History,
}

/// Permissions of the rooms whose name matches `pattern`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RoomRule {
    /// Room names this rule applies to: `*` matches any run of characters
    /// (`chat:*`, `*`), everything else matches itself.
    pub pattern: String,
    /// Who may join.
    pub join: Access,
    /// Who may publish.
    pub publish: Access,
    /// Who may see presence.
    pub presence: Access,
    /// Who may read history.
    pub history: Access,
    /// Messages kept per room for recovery; 0 (a rule's default) keeps none. The built-in
    /// rule, used when no rule is configured, keeps [`DEFAULT_HISTORY_SIZE`].
    pub history_size: usize,
    /// Raw mode: the room carries payloads as they are (binary frames, or text that is
    /// not an envelope), delivered bare, without an envelope and without history.
    pub raw: bool,
}

impl Default for RoomRule {
    fn default() -> Self {
        RoomRule {
            pattern: "*".to_owned(),
            join: Access::User,
            publish: Access::User,
            presence: Access::User,
            history: Access::User,
            history_size: 0,
            raw: false,
        }
    }
}

impl RoomRule {
    /// The access this rule gives for `action`.
    pub fn access(&self, action: Action) -> Access {
        match action {
            Action::Join => self.join,
            Action::Publish => self.publish,
            Action::Presence => self.presence,
            Action::History => self.history,
        }
    }
}

/// Who is asking, as far as room permissions are concerned.
#[derive(Debug, Clone, Copy)]
pub struct Requester<'a> {
    /// Whether the connection has an identity (a token, or `?user_id=` in dev mode).
    pub identified: bool,
    /// The room patterns of the token's rooms claim, if it had one.
    pub rooms_claim: Option<&'a [String]>,
}

impl Config {
    /// The rule that applies to `room`: the first whose pattern matches.
    pub fn room_rule(&self, room: &str) -> Option<&RoomRule> {
        self.rooms
            .iter()
            .find(|rule| glob_match(&rule.pattern, room))
    }

    /// Whether `who` may do `action` in `room`, by the first matching rule (none: no).
    pub fn allows(&self, room: &str, action: Action, who: Requester<'_>) -> bool {
        let Some(rule) = self.room_rule(room) else {
            return false;
        };
        match rule.access(action) {
            Access::Anyone => true,
            Access::User => who.identified,
            Access::Claim => {
                who.identified
                    && who
                        .rooms_claim
                        .is_some_and(|rooms| rooms.iter().any(|p| glob_match(p, room)))
            }
            Access::Nobody => false,
        }
    }

    /// The number of worker threads to start: `workers`, or one per core when it is 0.
    pub fn worker_threads(&self) -> usize {
        if self.workers > 0 {
            self.workers
        } else {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        }
    }

    /// Checks what serde cannot: limits of zero, files that cannot be read, TLS and auth
    /// settings that do not go together, origins that are not origins.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let l = &self.limits;
        for (key, value) in [
            ("limits.max_message_size", l.max_message_size),
            ("limits.max_connections", l.max_connections),
            ("limits.max_connections_per_ip", l.max_connections_per_ip),
            ("limits.messages_per_second", l.messages_per_second as usize),
            ("limits.burst", l.burst as usize),
            ("limits.max_queue_messages", l.max_queue_messages),
            ("limits.max_queue_bytes", l.max_queue_bytes),
            (
                "limits.max_rooms_per_connection",
                l.max_rooms_per_connection,
            ),
        ] {
            if value == 0 {
                return Err(ConfigError::key(
                    key,
                    "must be at least 1 (to lift the limit, set a large value)",
                ));
            }
        }
        if l.max_connections_per_ip > l.max_connections {
            return Err(ConfigError::key(
                "limits.max_connections_per_ip",
                format!(
                    "is {} but limits.max_connections is {}: lower it or raise the total",
                    l.max_connections_per_ip, l.max_connections
                ),
            ));
        }
        if self.workers > MAX_WORKERS {
            return Err(ConfigError::key(
                "workers",
                format!(
                    "is {}, at most {MAX_WORKERS}: use 0 for one per core",
                    self.workers
                ),
            ));
        }
        if self.admin_listen == Some(self.listen) {
            return Err(ConfigError::key(
                "admin_listen",
                "is the same address as `listen`: pick another port, or leave it unset to \
                 serve the API on `listen`",
            ));
        }
        if let Some(key) = &self.api_key
            && key.len() < 16
        {
            return Err(ConfigError::key(
                "api_key",
                "must be at least 16 characters (generate one, e.g. `openssl rand -hex 32`)",
            ));
        }
        match (&self.tls.cert, &self.tls.key) {
            (Some(cert), Some(key)) => {
                readable("tls.cert", cert)?;
                readable("tls.key", key)?;
            }
            (Some(_), None) => {
                return Err(ConfigError::key(
                    "tls.key",
                    "is missing: tls.cert is set, TLS needs both",
                ));
            }
            (None, Some(_)) => {
                return Err(ConfigError::key(
                    "tls.cert",
                    "is missing: tls.key is set, TLS needs both",
                ));
            }
            (None, None) => {}
        }
        let auth = &self.auth;
        if let Some(secret) = &auth.hmac_secret
            && secret.len() < 32
        {
            return Err(ConfigError::key(
                "auth.hmac_secret",
                "must be at least 32 bytes (generate one, e.g. `openssl rand -hex 32`)",
            ));
        }
        if let Some(path) = &auth.public_key {
            readable("auth.public_key", path)?;
        }
        if let Some(path) = &auth.jwks_file {
            readable("auth.jwks_file", path)?;
        }
        if !self.dev && !auth.has_key() {
            return Err(ConfigError::key(
                "auth",
                "no key to verify tokens with: set auth.hmac_secret, auth.public_key or \
                 auth.jwks_file (or dev = true to accept connections without a token)",
            ));
        }
        if auth.rooms_claim.is_empty() {
            return Err(ConfigError::key("auth.rooms_claim", "must not be empty"));
        }
        if auth.meta_claim.is_empty() {
            return Err(ConfigError::key("auth.meta_claim", "must not be empty"));
        }
        if auth.admin_claim.is_empty() {
            return Err(ConfigError::key("auth.admin_claim", "must not be empty"));
        }
        for (i, origin) in self.origins.iter().enumerate() {
            crate::origin::OriginPattern::parse(origin)
                .map_err(|e| ConfigError::key(format!("origins[{i}]"), e))?;
        }
        for (i, proxy) in self.trusted_proxies.iter().enumerate() {
            crate::proxy::IpNet::parse(proxy)
                .map_err(|e| ConfigError::key(format!("trusted_proxies[{i}]"), e))?;
        }
        for (i, rule) in self.rooms.iter().enumerate() {
            if rule.pattern.is_empty() {
                return Err(ConfigError::key(
                    format!("rooms[{i}].pattern"),
                    "must not be empty (`*` matches every room)",
                ));
            }
            if rule.raw && rule.history_size > 0 {
                return Err(ConfigError::key(
                    format!("rooms[{i}].history_size"),
                    "must be 0 in a raw room (raw = true): raw payloads carry no offset to \
                     recover from",
                ));
            }
        }
        Ok(())
    }
}

fn readable(key: &str, path: &Path) -> Result<(), ConfigError> {
    std::fs::File::open(path)
        .map(drop)
        .map_err(|e| ConfigError::key(key, format!("cannot read `{}`: {e}", path.display())))
}

/// Whether `name` matches `pattern`, where `*` matches any run of characters (none
/// included) and everything else matches itself.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = name.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty(); // no `*`: an exact match
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// A configuration error: the key it is about (when there is one) and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The key, as a dotted path (`limits.burst`, `rooms[0].join`), if the error is about one.
    pub key: Option<String>,
    /// What is wrong, and what to do.
    pub message: String,
}

impl ConfigError {
    /// An error about `key`.
    pub fn key(key: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            key: Some(key.into()),
            message: message.into(),
        }
    }

    fn general(message: impl Into<String>) -> Self {
        ConfigError {
            key: None,
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.key {
            Some(key) => write!(f, "configuration key `{key}`: {}", self.message),
            None => write!(f, "configuration: {}", self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

/// How a key's value is written in the environment and on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A string (an address, a path, a name).
    Str,
    /// A non-negative integer.
    Int,
    /// `true` or `false` (also `1`/`0`, `yes`/`no`, `on`/`off`).
    Bool,
    /// A list of strings, comma-separated.
    List,
    /// An inline TOML value (for the rooms' array of tables).
    Toml,
}

/// A configuration key, as [`KEYS`] lists them.
#[derive(Debug, Clone, Copy)]
pub struct Key {
    /// Dotted path in the TOML file.
    pub path: &'static str,
    /// How its value is written in the environment and on the command line.
    pub kind: Kind,
    /// What it does.
    pub help: &'static str,
}

impl Key {
    /// The environment variable that sets it: `TETHER_` + the path in capitals, `.` as `__`.
    pub fn env(&self) -> String {
        format!("TETHER_{}", self.path.to_uppercase().replace('.', "__"))
    }

    /// The long flag that sets it (without `--`): the path with `.` and `_` as `-`.
    pub fn flag(&self) -> String {
        self.path.replace(['.', '_'], "-")
    }

    /// Parses a value from the environment or the command line into the TOML value the
    /// key's field is deserialized from.
    pub fn parse_value(&self, raw: &str) -> Result<toml::Value, String> {
        match self.kind {
            Kind::Str => Ok(toml::Value::String(raw.to_owned())),
            Kind::Int => raw
                .trim()
                .parse::<i64>()
                .map(toml::Value::Integer)
                .map_err(|_| format!("expects a whole number, got `{raw}`")),
            Kind::Bool => match raw.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => Ok(toml::Value::Boolean(true)),
                "false" | "0" | "no" | "off" => Ok(toml::Value::Boolean(false)),
                _ => Err(format!("expects true or false, got `{raw}`")),
            },
            Kind::List => Ok(toml::Value::Array(
                raw.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| toml::Value::String(s.to_owned()))
                    .collect(),
            )),
            Kind::Toml => toml::from_str::<toml::Table>(&format!("value = {raw}"))
                .ok()
                .and_then(|mut t| t.remove("value"))
                .ok_or_else(|| {
                    format!(
                        "expects an inline TOML value, e.g. [{{pattern = \"*\", join = \"user\"}}], got `{raw}`"
                    )
                }),
        }
    }
}

const fn key(path: &'static str, kind: Kind, help: &'static str) -> Key {
    Key { path, kind, help }
}

/// Every configuration key: the TOML file, the `TETHER_*` environment variables and the
/// flags all use these names.
pub const KEYS: &[Key] = &[
    key(
        "listen",
        Kind::Str,
        "Address of the public listener (WebSocket and HTTP).",
    ),
    key(
        "workers",
        Kind::Int,
        "Worker threads; 0 means one per core.",
    ),
    key(
        "dev",
        Kind::Bool,
        "Dev mode: no token required, localhost origins allowed. Turn it off in production.",
    ),
    key("log_format", Kind::Str, "Log format: text or json."),
    key(
        "admin_listen",
        Kind::Str,
        "Separate listener for the HTTP API and metrics (unset: on `listen`).",
    ),
    key(
        "api_key",
        Kind::Str,
        "API key of the HTTP API (header X-API-Key), at least 16 characters. Unset: the API takes a token with the admin claim (auth.admin_claim), or is open in dev mode without a key in [auth].",
    ),
    key(
        "origins",
        Kind::List,
        "Allowed origins, comma-separated: exact (https://app.example.com) or wildcard subdomains (https://*.example.com). Empty: same-origin only, plus localhost in dev mode.",
    ),
    key(
        "trusted_proxies",
        Kind::List,
        "Reverse proxies whose X-Forwarded-For gives the client's address (per-IP limit), comma-separated addresses or networks (10.0.0.0/8). Empty: the peer's address counts.",
    ),
    key(
        "auth.hmac_secret",
        Kind::Str,
        "Secret of HS256/HS384/HS512 tokens, at least 32 bytes.",
    ),
    key(
        "auth.public_key",
        Kind::Str,
        "PEM file with the RSA, EC or Ed25519 public key of RS*/PS*/ES*/EdDSA tokens.",
    ),
    key(
        "auth.jwks_file",
        Kind::Str,
        "JWKS file (JSON) with the public keys of tokens; the token's kid picks the key.",
    ),
    key(
        "auth.algorithms",
        Kind::List,
        "Accepted algorithms, comma-separated (HS256, RS256, ES256, EdDSA...). Empty: all of the configured keys' families.",
    ),
    key(
        "auth.issuer",
        Kind::Str,
        "Required iss claim (unset: not checked).",
    ),
    key(
        "auth.audience",
        Kind::Str,
        "Required aud claim (unset: not checked).",
    ),
    key(
        "auth.leeway_secs",
        Kind::Int,
        "Clock skew allowed when checking exp and nbf, in seconds.",
    ),
    key(
        "auth.require_exp",
        Kind::Bool,
        "Refuse tokens without an exp claim.",
    ),
    key(
        "auth.expire_connections",
        Kind::Bool,
        "Close a connection (1008) when its token's exp passes (plus the leeway); off: exp is checked at the upgrade only.",
    ),
    key(
        "auth.query_token",
        Kind::Bool,
        "Accept the token in the ?token= query parameter (it appears in access logs).",
    ),
    key(
        "auth.dev_user_id",
        Kind::Bool,
        "Dev mode only: accept ?user_id= as the identity, without a token.",
    ),
    key(
        "auth.rooms_claim",
        Kind::Str,
        "Claim listing the room patterns a user may use (rules with access = \"claim\").",
    ),
    key(
        "auth.meta_claim",
        Kind::Str,
        "Claim with the user's metadata (any JSON).",
    ),
    key(
        "auth.admin_claim",
        Kind::Str,
        "Claim that must be true in a token (Authorization: Bearer) for the HTTP API to accept it, next to api_key.",
    ),
    key(
        "limits.max_message_size",
        Kind::Int,
        "Largest incoming message, in bytes.",
    ),
    key(
        "limits.max_connections",
        Kind::Int,
        "Connections accepted in all.",
    ),
    key(
        "limits.max_connections_per_ip",
        Kind::Int,
        "Connections accepted from one IP address.",
    ),
    key(
        "limits.messages_per_second",
        Kind::Int,
        "Incoming messages per second per connection (token bucket rate).",
    ),
    key(
        "limits.burst",
        Kind::Int,
        "Incoming messages a connection may send at once (token bucket size).",
    ),
    key(
        "limits.max_queue_messages",
        Kind::Int,
        "Outgoing messages waiting in the hub for one connection; over it, limits.slow_consumer applies.",
    ),
    key(
        "limits.max_queue_bytes",
        Kind::Int,
        "Outgoing bytes waiting in the hub for one connection; over it, limits.slow_consumer applies.",
    ),
    key(
        "limits.slow_consumer",
        Kind::Str,
        "What a full outgoing queue does: disconnect (1008), drop_oldest or drop_new.",
    ),
    key(
        "limits.max_rooms_per_connection",
        Kind::Int,
        "Rooms one connection may be in at once (a join over it gets an error).",
    ),
    key(
        "tls.cert",
        Kind::Str,
        "TLS certificate chain (PEM file); needs tls.key.",
    ),
    key(
        "tls.key",
        Kind::Str,
        "TLS private key (PEM file); needs tls.cert.",
    ),
    key(
        "rooms",
        Kind::Toml,
        "Permission rules per room pattern, as an inline TOML array of tables: [{pattern = \"chat:*\", join = \"user\", publish = \"claim\", presence = \"user\", history = \"user\", history_size = 100, raw = false}]. Access: anyone, user, claim, nobody.",
    ),
];

/// Looks a key up by its dotted path.
pub fn find_key(path: &str) -> Option<&'static Key> {
    KEYS.iter().find(|k| k.path == path)
}

/// Environment variables starting with `TETHER_` that are not configuration keys.
pub const OTHER_ENV: &[&str] = &["TETHER_CONFIG", "TETHER_LOG"];

/// Where the configuration comes from, in increasing precedence.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// The TOML file, if any.
    pub file: Option<PathBuf>,
    /// Environment variables (all of them, or just the `TETHER_*` ones): those that start
    /// with `TETHER_` set keys, and an unknown one is an error.
    pub env: Vec<(String, String)>,
    /// Values given on the command line, by key path.
    pub flags: Vec<(String, String)>,
}

/// Loads the configuration: defaults, then the file, then the environment, then the flags;
/// then [`Config::validate`].
pub fn load(sources: &Sources) -> Result<Config, ConfigError> {
    let mut table = match &sources.file {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                ConfigError::general(format!(
                    "cannot read the configuration file `{}`: {e}",
                    path.display()
                ))
            })?;
            toml::from_str::<toml::Table>(&text).map_err(|e| {
                ConfigError::general(format!("`{}` is not valid TOML: {e}", path.display()))
            })?
        }
        None => toml::Table::new(),
    };
    // Which layer set each key last, to say so in errors.
    let mut set_by: Vec<(&'static str, String)> = Vec::new();
    for (name, raw) in &sources.env {
        if !name.starts_with("TETHER_") || OTHER_ENV.contains(&name.as_str()) {
            continue;
        }
        let key = KEYS.iter().find(|k| k.env() == *name).ok_or_else(|| {
            ConfigError::general(format!(
                "unknown environment variable {name}: no configuration key has that name \
                 (`tether --help` lists them); unset it"
            ))
        })?;
        set(&mut table, key, raw, name)?;
        set_by.push((key.path, name.clone()));
    }
    for (path, raw) in &sources.flags {
        let key = find_key(path)
            .ok_or_else(|| ConfigError::general(format!("unknown configuration key `{path}`")))?;
        let flag = format!("--{}", key.flag());
        set(&mut table, key, raw, &flag)?;
        set_by.push((key.path, flag));
    }
    let from_file = sources
        .file
        .as_ref()
        .map(|p| format!("in `{}`", p.display()));
    let source_of = |key: &str| {
        set_by
            .iter()
            .rev()
            .find(|(path, _)| key == *path || key.starts_with(&format!("{path}[")))
            .map(|(_, source)| format!("set by {source}"))
            .or_else(|| from_file.clone())
    };
    let config: Config =
        serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
            let path = e.path().to_string();
            // The first line: toml adds the key's name on the next ones.
            let inner = e.into_inner().to_string();
            let inner = inner.lines().next().unwrap_or("").to_owned();
            if path == "." || path.is_empty() {
                ConfigError::general(inner)
            } else {
                let message = match source_of(&path) {
                    Some(source) => format!("{inner} ({source})"),
                    None => inner,
                };
                ConfigError::key(path, message)
            }
        })?;
    config.validate().map_err(|mut e| {
        if let Some(source) = e.key.as_deref().and_then(source_of) {
            e.message = format!("{} ({source})", e.message);
        }
        e
    })?;
    Ok(config)
}

fn set(table: &mut toml::Table, key: &Key, raw: &str, source: &str) -> Result<(), ConfigError> {
    let value = key
        .parse_value(raw)
        .map_err(|e| ConfigError::key(key.path, format!("(from {source}) {e}")))?;
    let mut parts = key.path.split('.').peekable();
    let mut table = table;
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            table.insert(part.to_owned(), value);
            return Ok(());
        }
        let entry = table
            .entry(part.to_owned())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        table = entry
            .as_table_mut()
            .ok_or_else(|| ConfigError::key(part, "must be a table (a [section] in the file)"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn from_toml(text: &str) -> Result<Config, ConfigError> {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!(
            "tether-config-test-{}-{n}.toml",
            std::process::id()
        ));
        std::fs::write(&path, text).unwrap();
        let result = load(&Sources {
            file: Some(path.clone()),
            ..Sources::default()
        });
        std::fs::remove_file(path).unwrap();
        result
    }

    #[test]
    fn defaults() {
        let config = load(&Sources::default()).unwrap();
        assert_eq!(config, Config::default());
        assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
        assert!(config.dev);
        assert_eq!(config.workers, 0);
        assert!(config.worker_threads() >= 1);
        assert_eq!(config.limits.max_message_size, 65536);
        // Every room keeps history by default (the demo page recovers out of the box) ...
        assert_eq!(config.rooms.len(), 1);
        assert_eq!(config.rooms[0].pattern, "*");
        assert_eq!(config.rooms[0].history_size, DEFAULT_HISTORY_SIZE);
        // ... but a configured rule keeps none unless it says so (raw rooms can keep none).
        let config = from_toml("[[rooms]]\npattern = \"feed:*\"\nraw = true\n").unwrap();
        assert_eq!(config.rooms[0].history_size, 0);
    }

    #[test]
    fn the_example_file_is_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tether.toml");
        let config = load(&Sources {
            file: Some(path),
            ..Sources::default()
        })
        .unwrap();
        assert_eq!(config, Config::default());
    }

    #[test]
    fn the_example_file_documents_every_key() {
        let text =
            std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tether.toml"))
                .unwrap();
        for key in KEYS {
            let name = key.path.rsplit('.').next().unwrap();
            assert!(
                text.lines().any(|l| {
                    let l = l.trim_start_matches(['#', ' ']);
                    l.starts_with(&format!("{name} =")) || l.starts_with(&format!("[[{name}]]"))
                }),
                "tether.toml does not document `{}`",
                key.path
            );
        }
    }

    #[test]
    fn every_key_is_a_field() {
        // Setting each key through the flags layer with a valid value deserializes, so a
        // key in KEYS that is not a field (or the other way round) fails here.
        for key in KEYS {
            let raw = match key.kind {
                Kind::Str => match key.path {
                    "listen" | "admin_listen" => "127.0.0.1:9999",
                    "log_format" => "json",
                    "limits.slow_consumer" => "drop_oldest",
                    _ => "x",
                },
                Kind::Int => "3",
                Kind::Bool => "true",
                Kind::List => match key.path {
                    "auth.algorithms" => "HS256,RS256",
                    _ => "https://a.example.com",
                },
                Kind::Toml => "[{pattern = \"*\"}]",
            };
            let mut table = toml::Table::new();
            set(&mut table, key, raw, "test").unwrap();
            let result: Result<Config, _> =
                serde_path_to_error::deserialize(toml::Value::Table(table));
            assert!(result.is_ok(), "{}: {:?}", key.path, result.err());
        }
        // And a serialized default config has no key outside KEYS.
        let table = toml::Table::try_from(Config::default()).unwrap();
        for (name, value) in &table {
            match value {
                toml::Value::Table(inner) => {
                    for sub in inner.keys() {
                        assert!(find_key(&format!("{name}.{sub}")).is_some(), "{name}.{sub}");
                    }
                }
                _ => assert!(find_key(name).is_some(), "{name}"),
            }
        }
    }

    #[test]
    fn names() {
        let k = find_key("auth.hmac_secret").unwrap();
        assert_eq!(k.env(), "TETHER_AUTH__HMAC_SECRET");
        assert_eq!(k.flag(), "auth-hmac-secret");
        assert_eq!(find_key("listen").unwrap().env(), "TETHER_LISTEN");
    }

    #[test]
    fn layers_in_order() {
        let config = from_toml("listen = \"127.0.0.1:1000\"\n[limits]\nburst = 7\n").unwrap();
        assert_eq!(config.listen.port(), 1000);
        assert_eq!(config.limits.burst, 7);
        assert_eq!(config.limits.messages_per_second, 50);

        let sources = Sources {
            file: None,
            env: env(&[
                ("TETHER_LISTEN", "127.0.0.1:2000"),
                ("TETHER_LIMITS__BURST", "8"),
                (
                    "TETHER_ORIGINS",
                    "https://a.example.com, https://*.b.example.com",
                ),
                ("TETHER_DEV", "off"),
                (
                    "TETHER_AUTH__HMAC_SECRET",
                    "0123456789abcdef0123456789abcdef",
                ),
                ("PATH", "/bin"),
                ("TETHER_CONFIG", "ignored.toml"),
            ]),
            flags: vec![("listen".into(), "127.0.0.1:3000".into())],
        };
        let config = load(&sources).unwrap();
        assert_eq!(config.listen.port(), 3000, "flags win over the environment");
        assert_eq!(config.limits.burst, 8);
        assert!(!config.dev);
        assert_eq!(
            config.origins,
            ["https://a.example.com", "https://*.b.example.com"]
        );
    }

    #[test]
    fn rooms_from_the_environment() {
        let sources = Sources {
            env: env(&[(
                "TETHER_ROOMS",
                r#"[{pattern = "news:*", join = "anyone", publish = "nobody", history_size = 10}]"#,
            )]),
            ..Sources::default()
        };
        let config = load(&sources).unwrap();
        assert_eq!(config.rooms.len(), 1);
        assert_eq!(config.rooms[0].pattern, "news:*");
        assert_eq!(config.rooms[0].publish, Access::Nobody);
        assert_eq!(config.rooms[0].presence, Access::User, "default of a rule");
        assert_eq!(config.rooms[0].history_size, 10);
    }

    #[test]
    fn errors_name_the_key() {
        let e = from_toml("listen = \"nowhere\"\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("listen"), "{e}");
        let e = from_toml("[limits]\nburst = 0\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("limits.burst"), "{e}");
        assert!(e.to_string().contains("limits.burst"));
        let e = from_toml("[limits]\nburst = -1\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("limits.burst"), "{e}");
        let e = from_toml("[auth]\nhmac_secrett = \"x\"\n").unwrap_err();
        assert!(e.to_string().contains("hmac_secrett"), "{e}");
        let e = from_toml("lissen = \"127.0.0.1:1\"\n").unwrap_err();
        assert!(e.to_string().contains("lissen"), "{e}");
        let e = from_toml("[[rooms]]\npattern = \"a\"\njoin = \"everyone\"\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("rooms[0].join"), "{e}");
        let e = from_toml("log_format = \"xml\"\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("log_format"), "{e}");
        let e = from_toml("[auth]\nalgorithms = [\"none\"]\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("auth.algorithms[0]"), "{e}");
        let e = from_toml("[auth]\npublic_key = \"/nonexistent/key.pem\"\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("auth.public_key"), "{e}");
        assert!(e.message.contains("/nonexistent/key.pem"));
        let e = from_toml("[tls]\ncert = \"/nonexistent/cert.pem\"\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("tls.key"), "{e}");
        let e = from_toml("dev = false\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("auth"), "{e}");
        let e = from_toml("[auth]\nhmac_secret = \"short\"\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("auth.hmac_secret"), "{e}");
        let e = from_toml("origins = [\"example.com\"]\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("origins[0]"), "{e}");
        let e = from_toml("listen = ").unwrap_err();
        assert!(e.key.is_none() && e.message.contains("TOML"), "{e}");
        let e = from_toml("trusted_proxies = [\"10.0.0.0/40\"]\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("trusted_proxies[0]"), "{e}");
        let e = from_toml("workers = 100000\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("workers"), "{e}");
        let e =
            from_toml("[[rooms]]\npattern = \"a\"\nraw = true\nhistory_size = 5\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("rooms[0].history_size"), "{e}");
        let e = from_toml("[limits]\nslow_consumer = \"wait\"\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("limits.slow_consumer"), "{e}");
        let e = from_toml("[limits]\nmax_queue_messages = 0\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("limits.max_queue_messages"), "{e}");
        let config = from_toml("[limits]\nslow_consumer = \"drop_oldest\"\n").unwrap();
        assert_eq!(config.limits.slow_consumer, SlowConsumer::DropOldest);
        let e = from_toml("admin_listen = \"127.0.0.1:8080\"\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("admin_listen"), "{e}");
    }

    #[test]
    fn environment_errors() {
        let e = load(&Sources {
            env: env(&[("TETHER_LIMITS__BURSTT", "1")]),
            ..Sources::default()
        })
        .unwrap_err();
        assert!(e.message.contains("TETHER_LIMITS__BURSTT"), "{e}");
        let e = load(&Sources {
            env: env(&[("TETHER_WORKERS", "many")]),
            ..Sources::default()
        })
        .unwrap_err();
        assert_eq!(e.key.as_deref(), Some("workers"));
        assert!(e.message.contains("TETHER_WORKERS"), "{e}");
        let e = load(&Sources {
            env: env(&[("TETHER_LIMITS__BURST", "0")]),
            ..Sources::default()
        })
        .unwrap_err();
        assert_eq!(e.key.as_deref(), Some("limits.burst"));
        assert!(e.message.contains("set by TETHER_LIMITS__BURST"), "{e}");
        let e = load(&Sources {
            flags: vec![("listen".into(), "nowhere".into())],
            ..Sources::default()
        })
        .unwrap_err();
        assert_eq!(e.key.as_deref(), Some("listen"));
        assert!(e.message.contains("set by --listen"), "{e}");
        let e = load(&Sources {
            env: env(&[("TETHER_DEV", "maybe")]),
            ..Sources::default()
        })
        .unwrap_err();
        assert_eq!(e.key.as_deref(), Some("dev"));
    }

    #[test]
    fn missing_file() {
        let e = load(&Sources {
            file: Some("/nonexistent/tether.toml".into()),
            ..Sources::default()
        })
        .unwrap_err();
        assert!(e.message.contains("/nonexistent/tether.toml"), "{e}");
    }

    #[test]
    fn globs() {
        assert!(glob_match("*", ""));
        assert!(glob_match("*", "anything"));
        assert!(glob_match("chat:*", "chat:"));
        assert!(glob_match("chat:*", "chat:lobby"));
        assert!(!glob_match("chat:*", "cha"));
        assert!(!glob_match("chat:*", "news:x"));
        assert!(glob_match("a*b*c", "abc"));
        assert!(glob_match("a*b*c", "a-b-b-c"));
        assert!(!glob_match("a*b*c", "a-c-b"));
        assert!(glob_match("lobby", "lobby"));
        assert!(!glob_match("lobby", "lobby2"));
        assert!(!glob_match("*x", ""));
        assert!(glob_match("*:*", "a:b"));
        assert!(!glob_match("ab*ba", "aba"), "the parts may not overlap");
    }

    #[test]
    fn permissions() {
        let config = from_toml(
            r#"
[[rooms]]
pattern = "public:*"
join = "anyone"
publish = "user"
presence = "nobody"
history = "anyone"

[[rooms]]
pattern = "team:*"
join = "claim"
publish = "claim"
"#,
        )
        .unwrap();
        let anonymous = Requester {
            identified: false,
            rooms_claim: None,
        };
        let user = Requester {
            identified: true,
            rooms_claim: None,
        };
        let claim = ["team:red".to_owned(), "team:blue*".to_owned()];
        let member = Requester {
            identified: true,
            rooms_claim: Some(&claim),
        };
        assert!(config.allows("public:x", Action::Join, anonymous));
        assert!(!config.allows("public:x", Action::Publish, anonymous));
        assert!(config.allows("public:x", Action::Publish, user));
        assert!(!config.allows("public:x", Action::Presence, member));
        assert!(!config.allows("team:red", Action::Join, user));
        assert!(config.allows("team:red", Action::Join, member));
        assert!(config.allows("team:blue-2", Action::Publish, member));
        assert!(!config.allows("team:green", Action::Join, member));
        assert!(
            config.allows("team:red", Action::Presence, member),
            "default: user"
        );
        assert!(
            !config.allows("other", Action::Join, member),
            "no rule: nothing"
        );
    }
}
