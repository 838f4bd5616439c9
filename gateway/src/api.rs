//! The HTTP API: what an application's backend calls to reach the WebSocket clients, and
//! what operators read.
//!
//! | method and path | body / query | answer |
//! | --- | --- | --- |
//! | `POST /api/broadcast` (`/api/ws/broadcast`) | `{"type", "content"}` | `{"delivered", ...}` |
//! | `POST /api/send` (`/api/ws/send`) | `{"type", "to", "content"}` | `{"delivered", ...}`, 404 if `to` is offline |
//! | `POST /api/rooms/{room}/publish` | `{"type"?, "content"}` | `{"delivered", "offset"?, "epoch"?}` |
//! | `POST /api/users/{id}/disconnect` | `{"code"?, "reason"?}` or nothing | `{"disconnected"}`, 404 if offline |
//! | `GET /api/status` (`/api/ws/status`) | | `{"online_count", "online_users", "connections"}` |
//! | `GET /api/stats` (`/ws/stats`) | | the hub's counters ([`tether_hub::StatsSnapshot`]) |
//! | `GET /api/rooms` | | `{"rooms": [{"name", "members"}]}` |
//! | `GET /api/rooms/{room}/presence` | | `{"room", "count", "users", "members"}`, 404 if empty |
//! | `GET /api/rooms/{room}/history` | `?since=OFFSET&limit=N` | `{"room", "messages", "latest", "oldest_offset"}` |
//! | `GET /health` (`/ws/health`) | | `{"status": "ok"}`, or 503 |
//!
//! Bodies are JSON of at most `limits.max_message_size` bytes (413 beyond); `content`
//! (alias `data`) is any JSON and is relayed as it came. Every refusal is
//! `{"code", "message"}` ([`HttpError`]): 400 for a body or query that does not parse
//! (serde's message says where), 401 without a valid credential, 403 for a token without
//! the admin claim, 404 for an offline user or an empty room, 405, 413, and 503 while the server
//! shuts down or when the broker fails.
//!
//! ## Credentials
//!
//! A request needs `X-API-Key: <api_key>` (compared in constant time) or
//! `Authorization: Bearer <jwt>`: a token verified like the WebSocket ones
//! ([`crate::auth::Authenticator::verify`]) whose claim `auth.admin_claim` (default `admin`)
//! is `true`. In dev mode with neither an `api_key` nor a key in `[auth]`, the API is open
//! (and the start-up log says so). With `admin_listen` set, the API is served on that
//! listener only; `/api/ws/connect` (the WebSocket upgrade, authenticated like `/ws`) stays
//! on the public one.
//!
//! ## Health
//!
//! The hub's broker has no health call: `/health` asks it for the history of the reserved
//! room [`HEALTH_ROOM`] (one message at most), bounded by [`HEALTH_TIMEOUT`]. The memory
//! broker answers at once; a networked broker that is down (an error, or no answer in
//! time) turns `/health` into 503.

use crate::config::Config;
use crate::envelope::{Envelope, MessageType};
use crate::error::HttpError;
use crate::publish::PublishError;
use crate::server::AppState;
use axum::Router;
use axum::body::Body;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;
use tether_hub::{CloseCode, Payload, SendReport};

/// The room `/health` asks the broker about (its history, which stays empty: nothing can
/// publish to it, as its name is not a valid room name).
pub const HEALTH_ROOM: &str = "(tether health)";

/// How long `/health` waits for the broker.
pub const HEALTH_TIMEOUT: Duration = Duration::from_secs(2);

/// How long presence and history requests wait for the broker (503 after).
pub const BROKER_TIMEOUT: Duration = Duration::from_secs(5);

/// How many history messages `GET /api/rooms/{room}/history` returns without `limit`.
pub const DEFAULT_HISTORY_LIMIT: usize = 100;

/// The most history messages one request returns (a larger `limit` is lowered to it).
pub const MAX_HISTORY_LIMIT: usize = 1000;

/// The longest close reason (a close frame's payload is at most 125 bytes, 2 for the code).
const MAX_CLOSE_REASON: usize = 123;

type ApiResult = Result<Response, HttpError>;

/// The API's routes, behind the credential check (the aliases included, except the
/// upgrade `/api/ws/connect` and `/ws/health`, which the server mounts itself).
pub(crate) fn routes(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/api/broadcast", post(broadcast))
        .route("/api/ws/broadcast", post(broadcast))
        .route("/api/send", post(send))
        .route("/api/ws/send", post(send))
        .route("/api/rooms", get(rooms))
        .route("/api/rooms/{room}/publish", post(publish))
        .route("/api/rooms/{room}/presence", get(presence))
        .route("/api/rooms/{room}/history", get(history))
        .route("/api/users/{id}/disconnect", post(disconnect))
        .route("/api/status", get(status))
        .route("/api/ws/status", get(status))
        .route("/api/stats", get(stats))
        .route("/ws/stats", get(stats))
        .method_not_allowed_fallback(method_not_allowed)
        .route_layer(middleware::from_fn_with_state(state.clone(), guard))
}

async fn method_not_allowed(request: Request) -> HttpError {
    HttpError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!(
            "{} is not a method of {} (the API's writes are POST, its reads GET)",
            request.method(),
            request.uri().path()
        ),
    )
}

/// Logs loudly when the configuration leaves the API open (dev mode without credentials).
pub(crate) fn log_if_open(config: &Config) {
    if is_open(config) {
        tracing::warn!(
            "DEV MODE: the HTTP API (/api/...) is open to anyone who can reach it; set \
             api_key or a key in [auth] (tokens with the admin claim) to protect it"
        );
    }
}

/// Whether the API takes requests without a credential: dev mode with neither an
/// `api_key` nor a key to verify tokens with.
fn is_open(config: &Config) -> bool {
    config.dev && config.api_key.is_none() && !config.auth.has_key()
}

/// The credential check in front of every API route, and the 503 of a shutdown.
async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if state.is_stopping() || state.hub().is_shutting_down() {
        return HttpError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            "the server is shutting down: retry on another instance",
        )
        .into_response();
    }
    match authorize(&state, request.headers()) {
        Ok(()) => next.run(request).await,
        Err(e) => {
            tracing::info!(code = e.code, path = %request.uri().path(), "API request refused");
            e.into_response()
        }
    }
}

/// Checks the request's credential: `X-API-Key`, or a bearer token with the admin claim.
fn authorize(state: &AppState, headers: &HeaderMap) -> Result<(), HttpError> {
    let config = state.config();
    if is_open(config) {
        return Ok(());
    }
    let unauthorized = |code, message: &str| {
        Err(HttpError::new(
            StatusCode::UNAUTHORIZED,
            code,
            message.to_owned(),
        ))
    };
    if let Some(given) = headers.get("x-api-key") {
        return match &config.api_key {
            Some(key) if same_key(given.as_bytes(), key.as_bytes()) => Ok(()),
            Some(_) => unauthorized("invalid_api_key", "the X-API-Key is not the api_key"),
            None => unauthorized(
                "api_key_disabled",
                "no api_key is configured: send `Authorization: Bearer <token>` with a token \
                 whose admin claim is true",
            ),
        };
    }
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        if !config.auth.has_key() {
            return unauthorized(
                "tokens_disabled",
                "no key in [auth] verifies tokens here: send the X-API-Key header",
            );
        }
        let token = value
            .to_str()
            .ok()
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty());
        let Some(token) = token else {
            return unauthorized(
                "invalid_token",
                "the Authorization header is not `Bearer <token>`",
            );
        };
        state.authenticator().verify(token)?;
        let claim = &config.auth.admin_claim;
        if claim_is_true(token, claim) {
            return Ok(());
        }
        return Err(HttpError::new(
            StatusCode::FORBIDDEN,
            "not_admin",
            format!(
                "the token is valid but its `{claim}` claim is not true: the API needs an admin token"
            ),
        ));
    }
    let message = match (&config.api_key, config.auth.has_key()) {
        (Some(_), true) => {
            "send the API key in X-API-Key, or `Authorization: Bearer <token>` with an admin token"
        }
        (Some(_), false) => "send the API key in the X-API-Key header",
        _ => "send `Authorization: Bearer <token>` with a token whose admin claim is true",
    };
    unauthorized("missing_credentials", message)
}

/// Compares a given key with the configured one in a time that depends only on the
/// configured key's length.
fn same_key(given: &[u8], expected: &[u8]) -> bool {
    let mut diff = given.len() ^ expected.len();
    for (i, e) in expected.iter().enumerate() {
        diff |= usize::from(given.get(i).copied().unwrap_or(0) ^ e);
    }
    std::hint::black_box(diff) == 0
}

/// Whether the claim `name` of a token is `true`. Call it only on a token that
/// [`crate::auth::Authenticator::verify`] accepted: it reads the claims without checking
/// the signature.
fn claim_is_true(token: &str, name: &str) -> bool {
    let Some(claims) = token.split('.').nth(1) else {
        return false;
    };
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(claims.trim_end_matches('='))
        .ok()
        .and_then(|bytes| serde_json::from_slice::<serde_json::Map<String, Value>>(&bytes).ok())
        .is_some_and(|claims| claims.get(name) == Some(&Value::Bool(true)))
}

/// Reads a JSON body of at most `limits.max_message_size` bytes (413 beyond, 400 when it
/// does not parse, with serde's message). An empty body is `{}` when `empty_is_default`.
async fn read_json<T: DeserializeOwned + Default>(
    state: &AppState,
    body: Body,
    empty_is_default: bool,
) -> Result<T, HttpError> {
    let limit = state.config().limits.max_message_size;
    let too_large = || {
        HttpError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("the body is over {limit} bytes (limits.max_message_size)"),
        )
    };
    let bytes = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| too_large())?;
    if empty_is_default && bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(&bytes)
        .map_err(|e| HttpError::new(StatusCode::BAD_REQUEST, "invalid_body", e.to_string()))
}

/// A path parameter, or 400.
fn path(param: Result<Path<String>, PathRejection>) -> Result<String, HttpError> {
    param
        .map(|Path(p)| p)
        .map_err(|e| HttpError::new(StatusCode::BAD_REQUEST, "invalid_path", e.body_text()))
}

/// A room name from the path, checked ([`tether_hub::validate_room_name`]), or 400.
fn room_name(param: Result<Path<String>, PathRejection>) -> Result<String, HttpError> {
    let room = path(param)?;
    tether_hub::validate_room_name(&room).map_err(|e| {
        HttpError::new(
            StatusCode::BAD_REQUEST,
            "invalid_room",
            format!("`{room}` is not a room name: {e}"),
        )
    })?;
    Ok(room)
}

fn json_response(status: StatusCode, value: &impl Serialize) -> Response {
    match serde_json::to_string(value) {
        Ok(body) => (status, [(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(e) => internal(e).into_response(),
    }
}

fn ok(value: &impl Serialize) -> ApiResult {
    Ok(json_response(StatusCode::OK, value))
}

fn internal(e: impl std::fmt::Display) -> HttpError {
    HttpError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        format!("the server failed: {e}"),
    )
}

fn unavailable(e: impl std::fmt::Display) -> HttpError {
    HttpError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "broker_unavailable",
        format!("{e}: retry later"),
    )
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// What a send did: `delivered` (the recipients that took the message), then the hub's
/// [`SendReport`] counts.
#[derive(Serialize)]
struct Delivery {
    delivered: usize,
    recipients: usize,
    #[serde(flatten)]
    report: SendReport,
}

impl Delivery {
    fn of(report: SendReport) -> Self {
        Delivery {
            delivered: report.queued,
            recipients: report.recipients(),
            report,
        }
    }
}

/// An envelope of type `kind` with `content`, stamped with the server's time.
fn envelope(kind: MessageType, content: Box<RawValue>) -> Envelope {
    Envelope {
        content: Some(content),
        ts: Some(now_ms()),
        ..Envelope::new(kind)
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct BroadcastBody {
    #[serde(rename = "type")]
    kind: Option<MessageType>,
    #[serde(alias = "data")]
    content: Option<Box<RawValue>>,
}

/// A required field, or 400 like serde's own message.
fn required<T>(value: Option<T>, name: &str) -> Result<T, HttpError> {
    value.ok_or_else(|| {
        HttpError::new(
            StatusCode::BAD_REQUEST,
            "invalid_body",
            format!("missing field `{name}`"),
        )
    })
}

/// The type of a message the API sends: `publish`, `send` or an application's type, not
/// one of the protocol's requests and answers (`join`, `ack`, `error`...), which clients
/// would take for what they are not. 400 otherwise.
fn sendable(kind: MessageType) -> Result<MessageType, HttpError> {
    match kind {
        MessageType::Publish | MessageType::Send | MessageType::App(_) => Ok(kind),
        other => Err(HttpError::new(
            StatusCode::BAD_REQUEST,
            "invalid_body",
            format!(
                "`type` {other} is one of the protocol's own messages: use an application \
                 type (letters, digits, _ - . :) such as `notification`"
            ),
        )),
    }
}

/// `POST /api/broadcast {type, content}`: to every connection.
async fn broadcast(State(state): State<AppState>, body: Body) -> ApiResult {
    let body: BroadcastBody = read_json(&state, body, false).await?;
    let env = envelope(
        sendable(required(body.kind, "type")?)?,
        required(body.content, "content")?,
    );
    let report = state.hub().broadcast(Payload::text(env.encode()));
    ok(&Delivery::of(report))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct SendBody {
    #[serde(rename = "type")]
    kind: Option<MessageType>,
    #[serde(alias = "user_id")]
    to: Option<String>,
    #[serde(alias = "data")]
    content: Option<Box<RawValue>>,
}

/// `POST /api/send {type, to, content}`: to every session of the user `to`.
async fn send(State(state): State<AppState>, body: Body) -> ApiResult {
    let body: SendBody = read_json(&state, body, false).await?;
    let kind = sendable(required(body.kind, "type")?)?;
    let to = required(body.to, "to")?;
    let content = required(body.content, "content")?;
    if to.is_empty() || to.len() > crate::auth::MAX_USER_ID_LEN {
        return Err(HttpError::new(
            StatusCode::BAD_REQUEST,
            "invalid_body",
            format!(
                "`to` must be a user id of 1 to {} bytes (to reach everyone, POST /api/broadcast)",
                crate::auth::MAX_USER_ID_LEN
            ),
        ));
    }
    if !state.hub().is_online(&to) {
        return Err(user_not_found(&to));
    }
    let env = Envelope {
        to: Some(to.clone()),
        ..envelope(kind, content)
    };
    let report = state.hub().send_to_user(&to, Payload::text(env.encode()));
    ok(&Delivery::of(report))
}

fn user_not_found(user: &str) -> HttpError {
    HttpError::new(
        StatusCode::NOT_FOUND,
        "user_not_found",
        format!("the user `{user}` has no connection"),
    )
}

/// What a room publish did: the members handed the message, and its position in a room
/// with history.
#[derive(Serialize)]
struct Published {
    delivered: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    offset: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    epoch: Option<String>,
}

/// `POST /api/rooms/{room}/publish {type?, content}`: to the room's members, through the
/// gateway's one room-publish path ([`crate::publish::publish_to_room`]): an envelope from
/// the server (no `from`), numbered (offset, epoch) and kept in rooms with history, the
/// content bare in raw rooms.
async fn publish(
    State(state): State<AppState>,
    room: Result<Path<String>, PathRejection>,
    body: Body,
) -> ApiResult {
    let room = room_name(room)?;
    let body: BroadcastBody = read_json(&state, body, false).await?;
    let kind = body.kind.unwrap_or(MessageType::Publish);
    let content = required(body.content, "content")?;
    let published = crate::publish::publish_to_room(&state, &room, None, kind.as_str(), &content)
        .await
        .map_err(|e| match e {
            PublishError::InvalidRoom(_) => {
                HttpError::new(StatusCode::BAD_REQUEST, "invalid_room", e.to_string())
            }
            PublishError::Unavailable(_) => unavailable(e),
            _ => HttpError::new(StatusCode::BAD_REQUEST, "invalid_body", e.to_string()),
        })?;
    ok(&Published {
        delivered: published.delivered,
        offset: published.offset,
        epoch: published.epoch,
    })
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct DisconnectBody {
    code: Option<u16>,
    reason: Option<String>,
}

/// `POST /api/users/{id}/disconnect {code?, reason?}`: closes every session of the user
/// (default 1000, "disconnected by the server").
async fn disconnect(
    State(state): State<AppState>,
    user: Result<Path<String>, PathRejection>,
    body: Body,
) -> ApiResult {
    let user = path(user)?;
    let body: DisconnectBody = read_json(&state, body, true).await?;
    let code = CloseCode::from(body.code.unwrap_or(1000));
    if !code.is_sendable() {
        return Err(HttpError::new(
            StatusCode::BAD_REQUEST,
            "invalid_body",
            format!(
                "`code` {} cannot be sent in a close frame: use 1000, 1008, or 3000-4999",
                code.0
            ),
        ));
    }
    let reason = body
        .reason
        .unwrap_or_else(|| "disconnected by the server".to_owned());
    if reason.len() > MAX_CLOSE_REASON {
        return Err(HttpError::new(
            StatusCode::BAD_REQUEST,
            "invalid_body",
            format!("`reason` is over {MAX_CLOSE_REASON} bytes"),
        ));
    }
    let sessions = state.hub().user_sessions(&user);
    if sessions.is_empty() {
        return Err(user_not_found(&user));
    }
    let mut disconnected = 0;
    for session in sessions.iter().filter(|s| !s.is_closed()) {
        session.close(code, &reason);
        disconnected += 1;
    }
    tracing::info!(%user, disconnected, code = code.0, "disconnected through the API");
    ok(&json!({ "user": user, "disconnected": disconnected }))
}

/// `GET /api/status`: the users online.
async fn status(State(state): State<AppState>) -> ApiResult {
    let hub = state.hub();
    let mut users = hub.online_users();
    users.sort_unstable();
    ok(&json!({
        "online_count": users.len(),
        "online_users": users,
        "connections": hub.connection_count(),
    }))
}

/// `GET /api/stats`: the hub's counters.
async fn stats(State(state): State<AppState>) -> ApiResult {
    ok(&state.hub().stats())
}

/// `GET /api/rooms`: every room with its member count, by name.
async fn rooms(State(state): State<AppState>) -> ApiResult {
    let hub = state.hub();
    let mut names = hub.rooms();
    names.sort_unstable();
    let rooms: Vec<Value> = names
        .into_iter()
        .map(|name| json!({ "members": hub.member_count(&name), "name": name }))
        .collect();
    ok(&json!({ "count": rooms.len(), "rooms": rooms }))
}

/// A room member, as presence shows it.
#[derive(Serialize)]
struct Member {
    id: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<String>,
    /// The node, for members on another node of a cluster.
    #[serde(skip_serializing_if = "Option::is_none")]
    node: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    labels: BTreeMap<String, String>,
}

/// `GET /api/rooms/{room}/presence`: who is in the room.
async fn presence(
    State(state): State<AppState>,
    room: Result<Path<String>, PathRejection>,
) -> ApiResult {
    let room = room_name(room)?;
    let infos = tokio::time::timeout(BROKER_TIMEOUT, state.hub().presence(&room))
        .await
        .map_err(|_| unavailable("the broker did not answer in time"))?
        .map_err(unavailable)?;
    if infos.is_empty() {
        return Err(HttpError::new(
            StatusCode::NOT_FOUND,
            "room_not_found",
            format!("the room `{room}` has no member"),
        ));
    }
    let mut members: Vec<Member> = infos
        .into_iter()
        .map(|p| Member {
            id: p.id,
            user: p.user.map(|u| u.to_string()),
            node: p.node.map(|n| n.to_string()),
            labels: p
                .labels
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        })
        .collect();
    members.sort_by(|a, b| (&a.node, a.id).cmp(&(&b.node, b.id)));
    let mut users: Vec<&str> = members.iter().filter_map(|m| m.user.as_deref()).collect();
    users.sort_unstable();
    users.dedup();
    ok(&json!({
        "room": room,
        "count": members.len(),
        "users": users,
        "members": members,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HistoryQuery {
    #[serde(default)]
    since: u64,
    limit: Option<usize>,
}

/// `GET /api/rooms/{room}/history?since=OFFSET&limit=N`: the room's kept messages after
/// `since` (all with 0), oldest first, at most `limit` ([`DEFAULT_HISTORY_LIMIT`], at most
/// [`MAX_HISTORY_LIMIT`]).
async fn history(
    State(state): State<AppState>,
    room: Result<Path<String>, PathRejection>,
    query: Result<Query<HistoryQuery>, QueryRejection>,
) -> ApiResult {
    let room = room_name(room)?;
    let Query(query) = query
        .map_err(|e| HttpError::new(StatusCode::BAD_REQUEST, "invalid_query", e.body_text()))?;
    let limit = query
        .limit
        .unwrap_or(DEFAULT_HISTORY_LIMIT)
        .min(MAX_HISTORY_LIMIT);
    let hub = state.hub();
    let kept = crate::publish::history_size(state.config(), &room) > 0;
    if !kept && hub.room_history(&room).is_none() {
        return Err(HttpError::new(
            StatusCode::NOT_FOUND,
            "no_history",
            format!("the room `{room}` keeps no history (its rule's history_size is 0)"),
        ));
    }
    let history = tokio::time::timeout(
        BROKER_TIMEOUT,
        hub.broker().history(&room, query.since, limit),
    )
    .await
    .map_err(|_| unavailable("the broker did not answer in time"))?
    .map_err(unavailable)?;
    // Each message as members got it: the envelope with its offset and epoch.
    let messages: Vec<Value> = history
        .publications
        .iter()
        .map(|p| message_json(&crate::publish::positioned(p), p.position.as_ref()))
        .collect();
    ok(&json!({
        "room": room,
        "messages": messages,
        "latest": history.latest,
        "oldest_offset": history.oldest_offset,
    }))
}

/// A kept message as JSON: the JSON text itself (an envelope), or, for a payload that is
/// not JSON, `{"offset", "epoch", "text"}` (or `"binary"`, in base64).
fn message_json(payload: &Payload, position: Option<&tether_hub::StreamPosition>) -> Value {
    if let Some(text) = payload.as_text()
        && let Ok(value) = serde_json::from_str::<Value>(text)
    {
        return value;
    }
    let mut m = serde_json::Map::new();
    if let Some(pos) = position {
        m.insert("offset".into(), pos.offset.into());
        m.insert("epoch".into(), pos.epoch.to_string().into());
    }
    match payload.as_text() {
        Some(text) => m.insert("text".into(), text.into()),
        None => m.insert(
            "binary".into(),
            base64::engine::general_purpose::STANDARD
                .encode(payload.as_bytes().map(|b| b.as_ref()).unwrap_or_default())
                .into(),
        ),
    };
    Value::Object(m)
}

/// `GET /health` (and `/ws/health`): 200 `{"status": "ok"}` when the server runs and its
/// broker answers (see the module's documentation), 503 otherwise.
pub(crate) async fn health(State(state): State<AppState>) -> Response {
    let failed = |code: &str, message: String| {
        json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({ "status": "unavailable", "code": code, "message": message }),
        )
    };
    if state.is_stopping() || state.hub().is_shutting_down() {
        return failed("shutting_down", "the server is shutting down".to_owned());
    }
    let probe = state.hub().broker().history(HEALTH_ROOM, 0, 1);
    match tokio::time::timeout(HEALTH_TIMEOUT, probe).await {
        Ok(Ok(_)) => json_response(StatusCode::OK, &json!({ "status": "ok" })),
        Ok(Err(e)) => {
            tracing::warn!("health check: {e}");
            failed("broker_unavailable", e.to_string())
        }
        Err(_) => {
            tracing::warn!("health check: the broker did not answer in {HEALTH_TIMEOUT:?}");
            failed(
                "broker_timeout",
                format!("the broker did not answer in {HEALTH_TIMEOUT:?}"),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_compare_whole() {
        assert!(same_key(b"0123456789abcdef", b"0123456789abcdef"));
        assert!(!same_key(b"0123456789abcdeX", b"0123456789abcdef"));
        assert!(!same_key(b"0123456789abcde", b"0123456789abcdef"));
        assert!(!same_key(b"0123456789abcdef0", b"0123456789abcdef"));
        assert!(!same_key(b"", b"0123456789abcdef"));
    }

    #[test]
    fn the_health_room_cannot_be_published_to() {
        assert!(tether_hub::validate_room_name(HEALTH_ROOM).is_err());
    }

    #[test]
    fn admin_claim_is_read_from_the_payload() {
        let enc = |v: Value| {
            format!(
                "h.{}.s",
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
            )
        };
        assert!(claim_is_true(&enc(json!({"admin": true})), "admin"));
        assert!(!claim_is_true(&enc(json!({"admin": "true"})), "admin"));
        assert!(!claim_is_true(&enc(json!({"admin": false})), "admin"));
        assert!(!claim_is_true(&enc(json!({"role": true})), "admin"));
        assert!(claim_is_true(&enc(json!({"role": true})), "role"));
        assert!(!claim_is_true("not-a-token", "admin"));
    }
}
