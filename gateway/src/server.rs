//! The HTTP server: the axum routes (`/ws`, `/health`, the demo chat at `/`) and [`serve`].
//!
//! `/ws` checks the `Origin` ([`crate::origin`]), authenticates ([`crate::auth`]) and counts
//! the connection against the limits **before** answering the upgrade, so a refused request
//! gets a 401, 403, 429 or 503 with a JSON body, never a 101.
//!
//! An accepted connection runs on the hub ([`AppState::hub`]) with the gateway's handler of
//! the client protocol (`PROTOCOL.md`): its user id and labels come from the token, its
//! messages are rate limited, it is closed with 1008 when its token expires, and with 1001
//! (after its queue drains) when the gateway shuts down.

use crate::auth::{self, Authenticator, Identity};
use crate::config::Config;
use crate::error::HttpError;
use crate::origin::OriginPolicy;
use crate::telemetry;
use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tether_tokio::{Accept, CloseCode, WebSocket};
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};

/// How long [`serve`] waits for WebSocket connections to close after a shutdown request
/// before it returns anyway.
pub const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(10);

/// What the handlers share: the configuration and what was built from it.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    auth: Authenticator,
    origins: OriginPolicy,
    trusted_proxies: Vec<crate::proxy::IpNet>,
    websocket: tether_tokio::Config,
    connections: Arc<Connections>,
    shutdown: watch::Sender<bool>,
    metrics: metrics_exporter_prometheus::PrometheusHandle,
    hub: tether_hub::Hub,
    handler: Box<dyn crate::handler::DynHandler>,
}

impl AppState {
    /// Builds the state of a configuration: validates it ([`Config::validate`]) and reads
    /// the keys; an error names the configuration key at fault. Application message types
    /// are refused (`unknown_type`); see [`with_handler`](Self::with_handler).
    pub fn new(config: Config) -> Result<Self, crate::config::ConfigError> {
        Self::with_handler(config, ())
    }

    /// [`new`](Self::new), with an embedded application's [`Handler`](crate::Handler) for
    /// its own message types and the connections' start and end.
    pub fn with_handler(
        config: Config,
        handler: impl crate::Handler,
    ) -> Result<Self, crate::config::ConfigError> {
        Self::build(config, handler, Arc::new(tether_hub::MemoryBroker::new()))
    }

    /// [`new`](Self::new) with the hub's broker given (a networked one for a cluster, or
    /// one that fails in a test) instead of a [`tether_hub::MemoryBroker`].
    pub fn with_broker(
        config: Config,
        broker: Arc<dyn tether_hub::Broker>,
    ) -> Result<Self, crate::config::ConfigError> {
        Self::build(config, (), broker)
    }

    fn build(
        config: Config,
        handler: impl crate::Handler,
        broker: Arc<dyn tether_hub::Broker>,
    ) -> Result<Self, crate::config::ConfigError> {
        config.validate()?;
        crate::api::log_if_open(&config);
        let auth = Authenticator::from_config(&config)?;
        let origins = OriginPolicy::from_config(&config);
        let trusted_proxies = config
            .trusted_proxies
            .iter()
            .filter_map(|p| crate::proxy::IpNet::parse(p).ok())
            .collect();
        let mut websocket = tether_tokio::Config::default();
        let max = config.limits.max_message_size;
        websocket.limits.max_message_size = max;
        websocket.limits.max_frame_size = max;
        websocket.limits.max_buffered_input = websocket
            .limits
            .max_buffered_input
            .max(max.saturating_mul(2).saturating_add(64));
        let hub = tether_hub::Hub::with_broker(hub_config(&config), broker);
        hub.set_envelope(|_room, publication| crate::publish::positioned(publication));
        // A broadcast to thousands writes from as many threads as there are workers.
        hub.set_fan_out_helpers(config.worker_threads().saturating_sub(1), |job| {
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn_blocking(job);
            }
        });
        Ok(AppState {
            inner: Arc::new(Inner {
                config,
                auth,
                origins,
                trusted_proxies,
                websocket,
                connections: Arc::default(),
                shutdown: watch::channel(false).0,
                metrics: telemetry::recorder(),
                hub,
                handler: Box::new(handler),
            }),
        })
    }

    /// Starts the shutdown: the hub takes no new connection, and closes every WebSocket
    /// connection with 1001 (going away) once what is queued for it is sent (at most
    /// [`SHUTDOWN_DEADLINE`] later, it closes those left at once). [`serve`] calls it; an
    /// application that mounted [`router`] in its own server calls it when that server
    /// shuts down, then awaits [`drained`](Self::drained). Outside a tokio runtime the
    /// connections are closed at once.
    pub fn shutdown(&self) {
        if self.inner.shutdown.send_replace(true) {
            return; // started already
        }
        let hub = self.inner.hub.clone();
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    let clean = hub.shutdown(tokio::time::sleep(SHUTDOWN_DEADLINE)).await;
                    if !clean {
                        tracing::warn!("shutdown: connections closed before their queues drained");
                    }
                });
            }
            Err(_) => {
                // No runtime to wait on: a deadline that has passed closes them now.
                let shutdown = std::pin::pin!(hub.shutdown(std::future::ready(())));
                let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
                let _ = shutdown.poll(&mut cx);
            }
        }
    }

    pub(crate) fn handler(&self) -> &dyn crate::handler::DynHandler {
        &*self.inner.handler
    }

    /// Completes when no WebSocket connection is open any more.
    pub async fn drained(&self) {
        self.inner.connections.drained().await;
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The hub that holds the WebSocket connections (users, rooms, sends).
    pub fn hub(&self) -> &tether_hub::Hub {
        &self.inner.hub
    }

    /// WebSocket connections open now.
    pub fn open_connections(&self) -> usize {
        self.inner.connections.total.load(Ordering::SeqCst)
    }
}

/// What the HTTP API ([`crate::api`]) reads of the state.
impl AppState {
    pub(crate) fn authenticator(&self) -> &Authenticator {
        &self.inner.auth
    }

    /// Whether [`shutdown`](Self::shutdown) was called.
    pub(crate) fn is_stopping(&self) -> bool {
        *self.inner.shutdown.borrow()
    }
}

/// The hub's settings from the gateway's: the outgoing queue bounds and policy
/// (`limits.max_queue_*`, `limits.slow_consumer`), the rooms per connection. The connection
/// limits are the gateway's own, checked before the upgrade.
fn hub_config(config: &Config) -> tether_hub::HubConfig {
    let limits = &config.limits;
    let mut hub = tether_hub::HubConfig::default();
    hub.policy = limits.slow_consumer.policy();
    hub.max_queue_messages = limits.max_queue_messages;
    hub.max_queue_bytes = limits.max_queue_bytes;
    hub.max_rooms_per_connection = limits.max_rooms_per_connection;
    hub
}

/// The gateway's routes for embedding in an application: `/ws` (and its alias
/// `/api/ws/connect`), `GET /health`, `GET /metrics` (Prometheus) and the HTTP API
/// ([`crate::api`], behind its credentials), without a fallback (the application keeps its
/// own). Serve it with `into_make_service_with_connect_info::<SocketAddr>()` so that the
/// per-IP connection limit sees the peer's address (without it only the total is limited).
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/health", get(crate::api::health))
        .route("/ws/health", get(crate::api::health))
        .route("/metrics", get(metrics))
        .route("/ws", any(ws))
        .route("/api/ws/connect", any(ws))
        .merge(crate::api::routes(&state))
        .with_state(state)
}

/// What the `tether` binary serves on `listen`: `/ws` (and `/api/ws/connect`),
/// `GET /health` (and `/ws/health`), the demo chat at `/` ([`DEMO_FILES`]), `GET /metrics`
/// and the HTTP API unless `admin_listen` is set (then [`admin_app`] serves them), and a
/// JSON 404 for every other path.
pub fn app(state: AppState) -> Router {
    let mut app = Router::new();
    for &(path, content_type, body) in DEMO_FILES {
        app = app.route(path, get(move || demo_file(content_type, body)));
    }
    app = app
        .route("/health", get(crate::api::health))
        .route("/ws/health", get(crate::api::health))
        .route("/ws", any(ws))
        .route("/api/ws/connect", any(ws))
        .route("/dev/token", get(dev_token));
    if state.config().admin_listen.is_none() {
        app = app
            .route("/metrics", get(metrics))
            .merge(crate::api::routes(&state));
    }
    app.fallback(not_found).with_state(state)
}

/// `GET /dev/token?user=NAME`, in dev mode without `auth.hmac_secret` only: a token for
/// NAME, signed with the process's random secret (see
/// [`Authenticator::dev_token`](crate::auth::Authenticator::dev_token)): how the demo page
/// gets an identity for the name it picks. A JSON 404 otherwise.
async fn dev_token(
    State(state): State<AppState>,
    axum::extract::Query(query): axum::extract::Query<HashMap<String, String>>,
) -> Response {
    let user = query.get("user").map(String::as_str).unwrap_or("");
    match state.inner.auth.dev_token(user) {
        Some(Ok(token)) => {
            axum::Json(serde_json::json!({ "token": token, "user": user })).into_response()
        }
        Some(Err(e)) => HttpError::new(StatusCode::BAD_REQUEST, e.code, e.message).into_response(),
        None => HttpError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "dev tokens exist in dev mode without auth.hmac_secret only: \
             get tokens from your issuer",
        )
        .into_response(),
    }
}

/// What the `tether` binary serves on `admin_listen`: `GET /metrics`, `GET /health` (and
/// `/ws/health`) and the HTTP API ([`crate::api`]).
pub fn admin_app(state: AppState) -> Router {
    Router::new()
        .route("/health", get(crate::api::health))
        .route("/ws/health", get(crate::api::health))
        .route("/metrics", get(metrics))
        .merge(crate::api::routes(&state))
        .fallback(not_found)
        .with_state(state)
}

/// Serves the gateway on `listener` (over TLS when `tls.cert` and `tls.key` are set), and
/// [`admin_app`] on `admin_listen` when it is set, until `shutdown` completes; then stops
/// accepting, closes the WebSocket connections with 1001 (going away) and waits for them,
/// at most [`SHUTDOWN_DEADLINE`].
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// println!("listening on {}", listener.local_addr()?);
/// let config = tether_gateway::config::Config::default();
/// tether_gateway::server::serve(config, listener, async {
///     let _ = tokio::signal::ctrl_c().await;
/// })
/// .await?;
/// # Ok(()) }
/// ```
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let admin = match config.admin_listen {
        Some(addr) => Some(TcpListener::bind(addr).await.map_err(|e| {
            ServeError::Io(std::io::Error::new(
                e.kind(),
                format!("cannot listen on {addr} (key `admin_listen`): {e}"),
            ))
        })?),
        None => None,
    };
    serve_with(config, listener, admin, shutdown).await
}

/// [`serve`] with the admin listener given (bound by the caller, e.g. on port 0 in tests)
/// instead of bound from `admin_listen`.
pub async fn serve_with(
    config: Config,
    listener: TcpListener,
    admin: Option<TcpListener>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let tls = match (&config.tls.cert, &config.tls.key) {
        (Some(cert), Some(key)) => {
            Some(crate::tls::server_config(cert, key).map_err(ServeError::Config)?)
        }
        _ => None,
    };
    let mut config = config;
    if admin.is_some() && config.admin_listen.is_none() {
        // Given an admin listener, /metrics is served there only.
        config.admin_listen = admin.as_ref().and_then(|l| l.local_addr().ok());
    }
    let state = AppState::new(config).map_err(ServeError::Config)?;
    let on_stop = state.clone();
    let forward = tokio::spawn(async move {
        shutdown.await;
        tracing::info!("shutting down: closing WebSocket connections with 1001");
        on_stop.shutdown();
    });
    let admin = admin.map(|listener| {
        let app = admin_app(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
        let stop = stopping(state.inner.shutdown.subscribe());
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(stop)
                .await
        })
    });
    let stop = stopping(state.inner.shutdown.subscribe());
    let result = match tls {
        Some(tls) => {
            crate::tls::serve(listener, app(state.clone()), tls, stop).await;
            Ok(())
        }
        None => {
            let app = app(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
            axum::serve(listener, app)
                .with_graceful_shutdown(stop)
                .await
                .map_err(ServeError::Io)
        }
    };
    // The public server may also end without the shutdown (an error): close anyway.
    forward.abort();
    state.shutdown();
    if let Some(admin) = admin {
        let _ = admin.await;
    }
    let drained = tokio::time::timeout(SHUTDOWN_DEADLINE, state.drained()).await;
    if drained.is_err() {
        tracing::warn!(
            open = state.open_connections(),
            "shutdown deadline passed with connections still open"
        );
    }
    result
}

/// Why [`serve`] failed.
#[derive(Debug)]
pub enum ServeError {
    /// The configuration's keys could not be used.
    Config(crate::config::ConfigError),
    /// Accepting connections failed.
    Io(std::io::Error),
}

impl std::fmt::Display for ServeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServeError::Config(e) => e.fmt(f),
            ServeError::Io(e) => write!(f, "serving failed: {e}"),
        }
    }
}

impl std::error::Error for ServeError {}

/// The gateway's metrics, then the hub's counters (`tether_hub_*`).
async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let mut text = state.inner.metrics.render();
    text.push_str(&state.hub().stats().to_prometheus("tether_hub"));
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text)
}

/// The demo chat of `/` (gateway/static/, embedded in the binary): `(path, content type,
/// body)`. `tether-client.js` is the protocol client (a `TetherClient` class) that `app.js`
/// drives; no CDN, no build step.
pub const DEMO_FILES: &[(&str, &str, &str)] = &[
    (
        "/",
        "text/html; charset=utf-8",
        include_str!("../static/index.html"),
    ),
    (
        "/app.js",
        "text/javascript; charset=utf-8",
        include_str!("../static/app.js"),
    ),
    (
        "/tether-client.js",
        "text/javascript; charset=utf-8",
        include_str!("../static/tether-client.js"),
    ),
    (
        "/style.css",
        "text/css; charset=utf-8",
        include_str!("../static/style.css"),
    ),
];

async fn demo_file(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            // Revalidated on each load, so that a new binary's page is never mixed with an
            // old cached script.
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
}

async fn not_found() -> HttpError {
    HttpError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such path: the WebSocket is at /ws, the health check at /health",
    )
}

/// The upgrade: origin, authentication, limits, then 101 and the connection's task.
pub(crate) async fn ws(State(state): State<AppState>, mut request: Request) -> Response {
    let inner = &state.inner;
    if inner.hub.is_shutting_down() {
        let e = HttpError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            "the server is shutting down: retry later (or on another instance)",
        );
        telemetry::upgrade_refused(e.code);
        return e.into_response();
    }
    if let Err(e) = inner.origins.check(request.headers()) {
        tracing::info!(code = e.code, "upgrade refused: origin");
        telemetry::upgrade_refused(e.code);
        return e.into_response();
    }
    let identity = match inner.auth.authenticate(request.headers(), request.uri()) {
        Ok(identity) => identity,
        Err(e) => {
            tracing::info!(code = e.code, "upgrade refused: authentication");
            telemetry::upgrade_refused(e.code);
            return e.to_http().into_response();
        }
    };
    let ip = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| {
            crate::proxy::client_ip(addr.ip(), request.headers(), &inner.trusted_proxies)
        });
    let guard = match inner.connections.admit(ip, &inner.config) {
        Ok(guard) => guard,
        Err(e) => {
            tracing::info!(code = e.code, "upgrade refused: connection limit");
            telemetry::upgrade_refused(e.code);
            return e.into_response();
        }
    };
    let mut accept = Accept::new();
    match auth::choose_subprotocol(request.headers()) {
        Some(protocol) => accept = accept.subprotocol(protocol),
        // Browsers fail a handshake whose 101 names no subprotocol when they offered some,
        // and the token must not be echoed: say so instead of a 101 they would refuse.
        None if auth::protocol_token(request.headers()).is_some() => {
            let e = HttpError::new(
                StatusCode::BAD_REQUEST,
                "subprotocol_required",
                "offer a subprotocol next to the token, e.g. new WebSocket(url, \
                 [\"tether.v1\", \"bearer.\" + token]): the 101 echoes it, never the token",
            );
            telemetry::upgrade_refused(e.code);
            return e.into_response();
        }
        None => {}
    }
    match tether_tokio::upgrade(&mut request, &inner.websocket, accept) {
        Ok((response, upgrading)) => {
            telemetry::upgrade_accepted();
            let state = state.clone();
            tokio::spawn(async move {
                match upgrading.await {
                    Ok(ws) => run(state, ws, identity, guard).await,
                    Err(e) => tracing::debug!("upgrade failed: {e}"),
                }
            });
            response
        }
        Err(response) => {
            telemetry::upgrade_refused("bad_upgrade");
            response
        }
    }
}

/// Runs an accepted connection on the hub until it ends; closes it with 1008 when its
/// token expires. The guard counts it open until then.
async fn run(state: AppState, ws: WebSocket, identity: Identity, _guard: ConnectionGuard) {
    let sender = ws.sender();
    let expiry = expiry(identity.expires_at, &state.inner.config);
    let hub_identity = hub_identity(&identity);
    let connection = crate::session::Connection::new(state.clone(), identity);
    let serve = state.inner.hub.serve(ws, hub_identity, connection);
    tokio::pin!(serve);
    tokio::select! {
        result = &mut serve => {
            if let Err(e) = result {
                tracing::debug!("connection refused by the hub: {e}");
            }
        }
        () = expiry => {
            tracing::debug!("token expired: closing");
            let _ = sender.close(
                CloseCode::POLICY_VIOLATION,
                "token expired: reconnect with a new token",
            );
            let _ = serve.await;
        }
    }
}

/// The hub's identity of a connection: its user id (none when anonymous), and labels
/// `auth` (`token`, `dev_user_id` or `anonymous`) and `meta` (the token's metadata claim,
/// as JSON text) when it has one.
fn hub_identity(identity: &Identity) -> tether_hub::Identity {
    let mut hub = tether_hub::Identity::new();
    if !identity.user_id.is_empty() {
        hub = hub.with_user(identity.user_id.as_str());
    }
    let source = match identity.source {
        auth::IdentitySource::Token => "token",
        auth::IdentitySource::DevUserId => "dev_user_id",
        auth::IdentitySource::Anonymous => "anonymous",
    };
    hub = hub.with_label("auth", source);
    if let Some(meta) = &identity.meta {
        hub = hub.with_label("meta", meta.to_string());
    }
    hub
}

/// Completes when the connection's token expires (its `exp` plus the leeway), when
/// `auth.expire_connections` is on; never otherwise.
async fn expiry(expires_at: Option<u64>, config: &Config) {
    let Some(exp) = expires_at.filter(|_| config.auth.expire_connections) else {
        return std::future::pending().await;
    };
    let deadline =
        std::time::UNIX_EPOCH + Duration::from_secs(exp.saturating_add(config.auth.leeway_secs));
    let left = deadline
        .duration_since(std::time::SystemTime::now())
        .unwrap_or(Duration::ZERO);
    tokio::time::sleep(left).await;
}

/// Completes when the shutdown flag turns true (the sender lives as long as the state).
async fn stopping(mut shutdown: watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// Open WebSocket connections, in all and per IP address.
#[derive(Default)]
struct Connections {
    total: AtomicUsize,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    none_left: Notify,
}

/// A connection counted in [`Connections`]; dropping it uncounts it.
struct ConnectionGuard {
    connections: Arc<Connections>,
    ip: Option<IpAddr>,
}

impl Connections {
    fn admit(
        self: &Arc<Self>,
        ip: Option<IpAddr>,
        config: &Config,
    ) -> Result<ConnectionGuard, HttpError> {
        let limits = &config.limits;
        let mut per_ip = self.per_ip.lock().unwrap_or_else(|e| e.into_inner());
        if self.total.load(Ordering::SeqCst) >= limits.max_connections {
            return Err(HttpError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "too_many_connections",
                "the server is at its connection limit (limits.max_connections): retry later",
            ));
        }
        if let Some(ip) = ip {
            let count = per_ip.entry(ip).or_insert(0);
            if *count >= limits.max_connections_per_ip {
                return Err(HttpError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too_many_connections_from_ip",
                    "too many connections from this address \
                     (limits.max_connections_per_ip): close some first",
                ));
            }
            *count += 1;
        }
        self.total.fetch_add(1, Ordering::SeqCst);
        metrics::gauge!(telemetry::CONNECTIONS).increment(1.0);
        Ok(ConnectionGuard {
            connections: self.clone(),
            ip,
        })
    }

    async fn drained(&self) {
        loop {
            let notified = self.none_left.notified();
            if self.total.load(Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        let c = &self.connections;
        let mut per_ip = c.per_ip.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(ip) = self.ip
            && let Some(count) = per_ip.get_mut(&ip)
        {
            *count -= 1;
            if *count == 0 {
                per_ip.remove(&ip);
            }
        }
        metrics::gauge!(telemetry::CONNECTIONS).decrement(1.0);
        if c.total.fetch_sub(1, Ordering::SeqCst) == 1 {
            c.none_left.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_limits() {
        let config = Config {
            limits: crate::config::Limits {
                max_connections: 3,
                max_connections_per_ip: 2,
                ..Default::default()
            },
            ..Config::default()
        };
        let c = Arc::new(Connections::default());
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        let a1 = c.admit(Some(a), &config).unwrap();
        let a2 = c.admit(Some(a), &config).unwrap();
        let e = c.admit(Some(a), &config).err().unwrap();
        assert_eq!(e.status, StatusCode::TOO_MANY_REQUESTS);
        let b1 = c.admit(Some(b), &config).unwrap();
        let e = c.admit(Some(b), &config).err().unwrap();
        assert_eq!(e.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(c.total.load(Ordering::SeqCst), 3);
        drop(a1);
        assert!(
            c.admit(Some(a), &config).is_ok(),
            "a slot freed (and freed again)"
        );
        drop((a2, b1));
        assert_eq!(c.total.load(Ordering::SeqCst), 0);
        assert!(c.per_ip.lock().unwrap().is_empty(), "no entry left behind");
    }
}
