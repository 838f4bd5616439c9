//! The HTTP API on a served gateway (port 0): its credentials (API key, admin token, dev
//! mode), its refusals, the admin listener's split, `/health` with a failing broker, and
//! real WebSocket clients (tether-tokio) receiving what the API sends.

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tether_gateway::AppState;
use tether_gateway::config::{Access, AuthConfig, Config, Limits, RoomRule};
use tether_hub::{
    Broker, BrokerError, BrokerFuture, BrokerSink, BrokerTarget, History, HistoryOptions,
    Publication, StreamPosition,
};
use tether_tokio::{ClientRequest, Message, WebSocket};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

mod common;
use common::{Server, TIMEOUT};

const SECRET: &str = "0123456789abcdef0123456789abcdef";
const API_KEY: &str = "test-api-key-0123456789";

// ---- the server ----

/// Serves `app(state)` (the binary's public routes) of a state built by the test.
async fn serve_state(state: AppState) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app =
        tether_gateway::server::app(state).into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// Dev mode with `?user_id=` for the WebSocket clients, the API behind the key, and a
/// room rule that lets anyone join, plus `news:*` with a history of 10.
fn dev_with_key() -> Config {
    Config {
        api_key: Some(API_KEY.to_owned()),
        auth: AuthConfig {
            dev_user_id: true,
            ..AuthConfig::default()
        },
        rooms: vec![
            RoomRule {
                pattern: "news:*".to_owned(),
                join: Access::Anyone,
                history: Access::Anyone,
                history_size: 10,
                ..RoomRule::default()
            },
            RoomRule {
                pattern: "*".to_owned(),
                join: Access::Anyone,
                ..RoomRule::default()
            },
        ],
        ..Config::default()
    }
}

/// Production: no dev mode, HS256 tokens, and the API key.
fn production() -> Config {
    Config {
        dev: false,
        api_key: Some(API_KEY.to_owned()),
        auth: AuthConfig {
            hmac_secret: Some(SECRET.to_owned()),
            ..AuthConfig::default()
        },
        ..Config::default()
    }
}

fn token(claims: &Value) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(SECRET.as_bytes()).unwrap(),
    )
    .unwrap()
}

fn in_an_hour() -> u64 {
    jsonwebtoken::get_current_timestamp() + 3600
}

// ---- HTTP by hand ----

#[derive(Debug)]
struct Reply {
    status: u16,
    head: String,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} {:?}", self.status, self.body))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    /// Asserts the status and that the body is a JSON error with this code and a message.
    #[track_caller]
    fn assert_error(&self, status: u16, code: &str) -> Value {
        assert_eq!(self.status, status, "{self:?}");
        assert_eq!(self.header("content-type"), Some("application/json"));
        let v = self.json();
        assert_eq!(v["code"], code, "{v}");
        assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
        v
    }
}

/// One request on its own connection (`Connection: close`), the whole response read.
async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Reply {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let mut text = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    if let Some(body) = body {
        text.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    text.push_str("\r\n");
    text.push_str(body.unwrap_or(""));
    stream.write_all(text.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(TIMEOUT, stream.read_to_end(&mut buf))
        .await
        .expect("the response in time")
        .unwrap();
    let text = String::from_utf8(buf).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").expect("a response head");
    Reply {
        status: head[9..12].parse().unwrap(),
        head: head.to_owned(),
        body: body.to_owned(),
    }
}

const KEY: (&str, &str) = ("X-API-Key", API_KEY);

async fn get(addr: SocketAddr, path: &str) -> Reply {
    http(addr, "GET", path, &[KEY], None).await
}

async fn post(addr: SocketAddr, path: &str, body: Value) -> Reply {
    http(addr, "POST", path, &[KEY], Some(&body.to_string())).await
}

// ---- WebSocket clients ----

async fn client(addr: SocketAddr, path: &str) -> WebSocket {
    let request = ClientRequest::new(&format!("ws://{addr}{path}")).unwrap();
    let (ws, _) = tokio::time::timeout(
        TIMEOUT,
        tether_tokio::connect_with(request, tether_tokio::Config::default()),
    )
    .await
    .expect("the upgrade in time")
    .unwrap_or_else(|e| panic!("upgrade of {path}: {e}"));
    ws
}

/// The next text message, as JSON.
async fn next_json(ws: &mut WebSocket) -> Value {
    loop {
        let message = tokio::time::timeout(TIMEOUT, ws.recv())
            .await
            .expect("a message in time")
            .expect("the connection is open")
            .expect("no error");
        if let Message::Text(text) = message {
            return serde_json::from_str(text.as_str()).unwrap();
        }
    }
}

/// Joins `room` through the client protocol and waits for the `ack`.
async fn join(ws: &mut WebSocket, room: &str) {
    ws.send_text(json!({"type": "join", "room": room, "id": room}).to_string())
        .await
        .unwrap();
    let ack = next_json(ws).await;
    assert_eq!(
        (&ack["type"], &ack["id"]),
        (&json!("ack"), &json!(room)),
        "{ack}"
    );
}

/// Waits until the hub has `n` connections (the upgrade's 101 comes before the
/// registration).
async fn wait_connections(addr: SocketAddr, n: u64) {
    for _ in 0..200 {
        if get(addr, "/api/status").await.json()["connections"] == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the hub never had {n} connections");
}

/// The close code a client got from the server, once its connection ended.
async fn closed_with(ws: &mut WebSocket) -> u16 {
    while let Some(message) = tokio::time::timeout(TIMEOUT, ws.recv())
        .await
        .expect("the close in time")
    {
        assert!(message.is_ok(), "{message:?}");
    }
    match ws.close_reason().as_deref() {
        Some(tether_tokio::CloseReason::Clean {
            remote: Some(frame),
            ..
        }) => frame.code.0,
        other => panic!("not a clean close: {other:?}"),
    }
}

// ---- tests ----

#[tokio::test]
async fn health_and_metrics_with_the_hub_counters() {
    let server = Server::start(Config::default()).await;
    for path in ["/health", "/ws/health"] {
        let reply = http(server.addr, "GET", path, &[], None).await;
        assert_eq!(reply.status, 200, "{path}");
        assert_eq!(reply.json(), json!({"status": "ok"}));
    }
    let metrics = http(server.addr, "GET", "/metrics", &[], None).await;
    assert_eq!(metrics.status, 200);
    assert!(
        metrics
            .body
            .contains("# TYPE tether_hub_connections gauge\n")
    );
    assert!(metrics.body.contains("tether_hub_deliveries_total "));
    server.stop().await;
}

#[tokio::test]
async fn dev_mode_without_credentials_leaves_the_api_open() {
    let server = Server::start(Config::default()).await;
    let reply = http(server.addr, "GET", "/api/status", &[], None).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(
        reply.json(),
        json!({"online_count": 0, "online_users": [], "connections": 0})
    );
    let reply = http(
        server.addr,
        "POST",
        "/api/broadcast",
        &[],
        Some(r#"{"type":"news","content":1}"#),
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.json()["delivered"], 0);
    server.stop().await;
}

#[tokio::test]
async fn the_api_key_or_an_admin_token() {
    let mut config = production();
    config.auth.admin_claim = "tether_admin".to_owned();
    let server = Server::start(config).await;
    let addr = server.addr;
    let status = |headers: Vec<(&'static str, String)>| async move {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        http(addr, "GET", "/api/status", &headers, None).await
    };

    status(vec![])
        .await
        .assert_error(401, "missing_credentials");
    for wrong in [
        "nope",
        "test-api-key-0123456780",
        "test-api-key-01234567890",
    ] {
        status(vec![("X-API-Key", wrong.to_owned())])
            .await
            .assert_error(401, "invalid_api_key");
    }
    assert_eq!(
        status(vec![("X-API-Key", API_KEY.to_owned())]).await.status,
        200
    );

    let bearer = |claims: Value| vec![("Authorization", format!("Bearer {}", token(&claims)))];
    let exp = in_an_hour();
    assert_eq!(
        status(bearer(
            json!({"sub": "ops", "exp": exp, "tether_admin": true})
        ))
        .await
        .status,
        200
    );
    // The configured claim, and `true` only.
    for claims in [
        json!({"sub": "ops", "exp": exp}),
        json!({"sub": "ops", "exp": exp, "admin": true}),
        json!({"sub": "ops", "exp": exp, "tether_admin": "true"}),
        json!({"sub": "ops", "exp": exp, "tether_admin": false}),
    ] {
        status(bearer(claims)).await.assert_error(403, "not_admin");
    }
    // The token is verified like a WebSocket one.
    status(bearer(
        json!({"sub": "ops", "exp": 1000, "tether_admin": true}),
    ))
    .await
    .assert_error(401, "token_expired");
    let forged = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &json!({"sub": "ops", "exp": exp, "tether_admin": true}),
        &EncodingKey::from_secret(b"another secret, also 32 bytes long!").unwrap(),
    )
    .unwrap();
    status(vec![("Authorization", format!("Bearer {forged}"))])
        .await
        .assert_error(401, "invalid_signature");
    status(vec![("Authorization", "Basic b3BzOm9wcw==".to_owned())])
        .await
        .assert_error(401, "invalid_token");

    // Every API route and alias is behind the check, the health check is not.
    for (method, path) in [
        ("POST", "/api/broadcast"),
        ("POST", "/api/ws/broadcast"),
        ("POST", "/api/send"),
        ("POST", "/api/ws/send"),
        ("POST", "/api/rooms/r/publish"),
        ("POST", "/api/users/u/disconnect"),
        ("GET", "/api/status"),
        ("GET", "/api/ws/status"),
        ("GET", "/api/stats"),
        ("GET", "/ws/stats"),
        ("GET", "/api/rooms"),
        ("GET", "/api/rooms/r/presence"),
        ("GET", "/api/rooms/r/history"),
    ] {
        let body = (method == "POST").then_some("{}");
        http(addr, method, path, &[], body)
            .await
            .assert_error(401, "missing_credentials");
    }
    assert_eq!(http(addr, "GET", "/ws/health", &[], None).await.status, 200);
    server.stop().await;
}

#[tokio::test]
async fn dev_mode_with_only_an_api_key() {
    let config = Config {
        api_key: Some(API_KEY.to_owned()),
        ..Config::default()
    };
    let server = Server::start(config).await;
    let addr = server.addr;
    http(addr, "GET", "/api/status", &[], None)
        .await
        .assert_error(401, "missing_credentials");
    let bearer = format!("Bearer {}", token(&json!({"sub": "x", "admin": true})));
    http(
        addr,
        "GET",
        "/api/status",
        &[("Authorization", &bearer)],
        None,
    )
    .await
    .assert_error(401, "tokens_disabled");
    assert_eq!(get(addr, "/api/status").await.status, 200);
    server.stop().await;
}

#[tokio::test]
async fn refusals_are_json_with_the_right_status() {
    let mut config = dev_with_key();
    config.limits = Limits {
        max_message_size: 1024,
        ..Limits::default()
    };
    let server = Server::start(config).await;
    let addr = server.addr;

    // Bodies that do not parse: serde's message says why.
    let e = http(addr, "POST", "/api/broadcast", &[KEY], Some("{not json"))
        .await
        .assert_error(400, "invalid_body");
    assert!(e["message"].as_str().unwrap().contains("line 1"), "{e}");
    let e = post(addr, "/api/broadcast", json!({"type": "news"}))
        .await
        .assert_error(400, "invalid_body");
    assert!(e["message"].as_str().unwrap().contains("`content`"), "{e}");
    let e = post(addr, "/api/broadcast", json!({"content": 1}))
        .await
        .assert_error(400, "invalid_body");
    assert!(e["message"].as_str().unwrap().contains("`type`"), "{e}");
    let e = post(
        addr,
        "/api/broadcast",
        json!({"type": "news", "content": 1, "cotnent": 2}),
    )
    .await
    .assert_error(400, "invalid_body");
    assert!(
        e["message"].as_str().unwrap().contains("unknown field"),
        "{e}"
    );
    post(
        addr,
        "/api/broadcast",
        json!({"type": "not a type", "content": 1}),
    )
    .await
    .assert_error(400, "invalid_body");
    for kind in ["ack", "error", "join", "pong"] {
        post(addr, "/api/broadcast", json!({"type": kind, "content": 1}))
            .await
            .assert_error(400, "invalid_body");
    }
    post(
        addr,
        "/api/send",
        json!({"type": "dm", "to": "", "content": 1}),
    )
    .await
    .assert_error(400, "invalid_body");

    // Over limits.max_message_size.
    let big = json!({"type": "news", "content": "x".repeat(2000)});
    post(addr, "/api/broadcast", big)
        .await
        .assert_error(413, "too_large");

    // Rooms, users, queries.
    post(addr, "/api/rooms/bad%20room/publish", json!({"content": 1}))
        .await
        .assert_error(400, "invalid_room");
    post(
        addr,
        "/api/send",
        json!({"type": "dm", "to": "nobody", "content": 1}),
    )
    .await
    .assert_error(404, "user_not_found");
    http(addr, "POST", "/api/users/nobody/disconnect", &[KEY], None)
        .await
        .assert_error(404, "user_not_found");
    post(addr, "/api/users/nobody/disconnect", json!({"code": 1005}))
        .await
        .assert_error(400, "invalid_body");
    post(
        addr,
        "/api/users/nobody/disconnect",
        json!({"reason": "r".repeat(124)}),
    )
    .await
    .assert_error(400, "invalid_body");
    get(addr, "/api/rooms/empty/presence")
        .await
        .assert_error(404, "room_not_found");
    get(addr, "/api/rooms/plain/history")
        .await
        .assert_error(404, "no_history");
    get(addr, "/api/rooms/news:x/history?since=abc")
        .await
        .assert_error(400, "invalid_query");
    get(addr, "/api/nothing")
        .await
        .assert_error(404, "not_found");
    server.stop().await;
}

#[tokio::test]
async fn history_rooms_number_what_the_api_publishes() {
    let server = Server::start(dev_with_key()).await;
    let addr = server.addr;
    let mut epoch = Value::Null;
    for i in 1..=3u64 {
        let reply = post(
            addr,
            "/api/rooms/news:eu/publish",
            json!({"content": {"n": i}}),
        );
        let v = reply.await.json();
        assert_eq!(v["offset"], i, "{v}");
        assert_eq!(v["delivered"], 0);
        assert!(v["epoch"].is_string());
        if i > 1 {
            assert_eq!(v["epoch"], epoch, "one epoch");
        }
        epoch = v["epoch"].clone();
    }
    // A room without history answers without a position.
    let v = post(addr, "/api/rooms/plain/publish", json!({"content": 1}))
        .await
        .json();
    assert_eq!(v["delivered"], 0);
    assert!(v.get("offset").is_none(), "{v}");

    let history = get(addr, "/api/rooms/news:eu/history?since=1").await.json();
    assert_eq!(history["room"], "news:eu");
    assert_eq!(history["latest"], json!({"offset": 3, "epoch": epoch}));
    assert_eq!(history["oldest_offset"], 1);
    let messages = history["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 2, "{history}");
    assert_eq!(messages[0]["offset"], 2);
    assert_eq!(messages[1]["offset"], 3);
    assert_eq!(messages[0]["epoch"], epoch);
    assert!(
        messages[1].to_string().contains(r#"{"n":3}"#),
        "the content is kept: {history}"
    );
    let limited = get(addr, "/api/rooms/news:eu/history?limit=1").await.json();
    let messages = limited["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0]["offset"], 1);
    server.stop().await;
}

/// A broker whose every call fails, or never answers.
struct BrokenBroker {
    hang: bool,
}

impl BrokenBroker {
    fn fail<'a, T: Send + 'a>(&'a self) -> BrokerFuture<'a, T> {
        let hang = self.hang;
        Box::pin(async move {
            if hang {
                std::future::pending::<()>().await;
            }
            Err(BrokerError::Unavailable("connection refused".to_owned()))
        })
    }
}

impl Broker for BrokenBroker {
    fn attach(&self, _sink: Arc<dyn BrokerSink>) {}

    fn publish<'a>(
        &'a self,
        _target: BrokerTarget,
        _publication: Publication,
        _history: Option<HistoryOptions>,
    ) -> BrokerFuture<'a, Option<StreamPosition>> {
        self.fail()
    }

    fn subscribe(&self, _room: &str) {}

    fn unsubscribe(&self, _room: &str) {}

    fn history<'a>(
        &'a self,
        _room: &'a str,
        _since: u64,
        _limit: usize,
    ) -> BrokerFuture<'a, History> {
        self.fail()
    }
}

#[tokio::test]
async fn health_is_503_when_the_broker_fails() {
    let state =
        AppState::with_broker(dev_with_key(), Arc::new(BrokenBroker { hang: false })).unwrap();
    let addr = serve_state(state).await;
    for path in ["/health", "/ws/health"] {
        let reply = http(addr, "GET", path, &[], None).await;
        let v = reply.assert_error(503, "broker_unavailable");
        assert_eq!(v["status"], "unavailable");
        assert!(
            v["message"]
                .as_str()
                .unwrap()
                .contains("connection refused")
        );
    }
    // What goes through the broker is 503 too; what does not still works.
    post(addr, "/api/rooms/news:eu/publish", json!({"content": 1}))
        .await
        .assert_error(503, "broker_unavailable");
    get(addr, "/api/rooms/news:eu/history")
        .await
        .assert_error(503, "broker_unavailable");
    assert_eq!(get(addr, "/api/status").await.status, 200);
}

#[tokio::test]
async fn health_is_503_when_the_broker_does_not_answer() {
    let state =
        AppState::with_broker(Config::default(), Arc::new(BrokenBroker { hang: true })).unwrap();
    let addr = serve_state(state).await;
    let started = std::time::Instant::now();
    let reply = http(addr, "GET", "/health", &[], None).await;
    reply.assert_error(503, "broker_timeout");
    assert!(started.elapsed() >= tether_gateway::api::HEALTH_TIMEOUT);
}

#[tokio::test]
async fn shutting_down_is_503() {
    let state = AppState::new(dev_with_key()).unwrap();
    let addr = serve_state(state.clone()).await;
    assert_eq!(get(addr, "/api/status").await.status, 200);
    state.shutdown();
    get(addr, "/api/status")
        .await
        .assert_error(503, "shutting_down");
    http(addr, "GET", "/health", &[], None)
        .await
        .assert_error(503, "shutting_down");
}

#[tokio::test]
async fn with_an_admin_listener_the_api_is_served_there_only() {
    let server = Server::start_with(dev_with_key(), true).await;
    let (public, admin) = (server.addr, server.admin.unwrap());
    for path in [
        "/api/status",
        "/api/ws/status",
        "/api/stats",
        "/ws/stats",
        "/api/rooms",
    ] {
        get(public, path).await.assert_error(404, "not_found");
        assert_eq!(get(admin, path).await.status, 200, "{path}");
        http(admin, "GET", path, &[], None)
            .await
            .assert_error(401, "missing_credentials");
    }
    post(public, "/api/broadcast", json!({"type": "t", "content": 1}))
        .await
        .assert_error(404, "not_found");
    assert_eq!(
        post(admin, "/api/broadcast", json!({"type": "t", "content": 1}))
            .await
            .status,
        200
    );
    http(public, "GET", "/metrics", &[], None)
        .await
        .assert_error(404, "not_found");
    assert_eq!(http(admin, "GET", "/metrics", &[], None).await.status, 200);
    for addr in [public, admin] {
        assert_eq!(http(addr, "GET", "/health", &[], None).await.status, 200);
        assert_eq!(http(addr, "GET", "/ws/health", &[], None).await.status, 200);
    }
    // The upgrade alias stays on the public listener only, and what the admin listener's
    // API sends reaches its connections.
    let mut ws = client(public, "/api/ws/connect?user_id=carol").await;
    wait_connections(admin, 1).await;
    let status = get(admin, "/api/status").await.json();
    assert_eq!(status["online_users"], json!(["carol"]));
    let reply = post(
        admin,
        "/api/send",
        json!({"type": "dm", "to": "carol", "content": "hi"}),
    );
    assert_eq!(reply.await.json()["delivered"], 1);
    let m = next_json(&mut ws).await;
    assert_eq!((&m["type"], &m["content"]), (&json!("dm"), &json!("hi")));
    http(admin, "GET", "/api/ws/connect", &[], None)
        .await
        .assert_error(404, "not_found");
    server.stop().await;
}

#[tokio::test]
async fn websocket_clients_receive_what_the_api_sends() {
    let server = Server::start(dev_with_key()).await;
    let addr = server.addr;
    // /ws and its alias /api/ws/connect, as the dev mode's users.
    let mut alice1 = client(addr, "/ws?user_id=alice").await;
    let mut alice2 = client(addr, "/api/ws/connect?user_id=alice").await;
    let mut bob = client(addr, "/ws?user_id=bob").await;
    wait_connections(addr, 3).await;
    for path in ["/api/status", "/api/ws/status"] {
        assert_eq!(
            get(addr, path).await.json(),
            json!({"online_count": 2, "online_users": ["alice", "bob"], "connections": 3})
        );
    }

    // Broadcast: everyone, and the alias with `data`.
    let v = post(
        addr,
        "/api/broadcast",
        json!({"type": "notice", "content": {"text": "hi"}}),
    )
    .await
    .json();
    assert_eq!(v["delivered"], 3, "{v}");
    assert_eq!(
        (&v["recipients"], &v["dropped"], &v["disconnected"]),
        (&json!(3), &json!(0), &json!(0))
    );
    for ws in [&mut alice1, &mut alice2, &mut bob] {
        let m = next_json(ws).await;
        assert_eq!(m["type"], "notice");
        assert_eq!(m["content"], json!({"text": "hi"}));
        assert!(m["ts"].as_u64().unwrap() > 1_700_000_000_000, "{m}");
    }
    let v = post(
        addr,
        "/api/ws/broadcast",
        json!({"type": "notice", "data": 2}),
    )
    .await
    .json();
    assert_eq!(v["delivered"], 3);
    for ws in [&mut alice1, &mut alice2, &mut bob] {
        assert_eq!(next_json(ws).await["content"], 2);
    }

    // Send: every session of one user, and the alias with `user_id`.
    let v = post(
        addr,
        "/api/send",
        json!({"type": "dm", "to": "alice", "content": "psst"}),
    )
    .await
    .json();
    assert_eq!(v["delivered"], 2);
    for ws in [&mut alice1, &mut alice2] {
        let m = next_json(ws).await;
        assert_eq!(
            (&m["type"], &m["to"], &m["content"]),
            (&json!("dm"), &json!("alice"), &json!("psst"))
        );
    }
    let v = post(
        addr,
        "/api/ws/send",
        json!({"type": "dm", "user_id": "bob", "data": "yo"}),
    )
    .await
    .json();
    assert_eq!(v["delivered"], 1);
    // Bob's next message is his own: the send to alice did not reach him.
    let m = next_json(&mut bob).await;
    assert_eq!((&m["to"], &m["content"]), (&json!("bob"), &json!("yo")));

    // Rooms, presence, publish.
    join(&mut alice1, "chat:lobby").await;
    join(&mut alice2, "chat:lobby").await;
    join(&mut bob, "news:eu").await;
    assert_eq!(
        get(addr, "/api/rooms").await.json(),
        json!({"count": 2, "rooms": [
            {"name": "chat:lobby", "members": 2},
            {"name": "news:eu", "members": 1},
        ]})
    );
    let p = get(addr, "/api/rooms/chat:lobby/presence").await.json();
    assert_eq!(
        (&p["room"], &p["count"], &p["users"]),
        (&json!("chat:lobby"), &json!(2), &json!(["alice"]))
    );
    assert_eq!(p["members"].as_array().unwrap().len(), 2);
    assert_eq!(p["members"][0]["user"], "alice");

    let v = post(
        addr,
        "/api/rooms/chat:lobby/publish",
        json!({"content": {"text": "hello"}}),
    )
    .await
    .json();
    assert_eq!(v["delivered"], 2, "{v}");
    assert!(v.get("offset").is_none(), "no history in chat:lobby: {v}");
    for ws in [&mut alice1, &mut alice2] {
        let m = next_json(ws).await;
        assert_eq!(
            (&m["type"], &m["room"]),
            (&json!("publish"), &json!("chat:lobby"))
        );
        assert_eq!(m["content"], json!({"text": "hello"}));
    }
    let v = post(
        addr,
        "/api/rooms/news:eu/publish",
        json!({"type": "headline", "content": "rates up"}),
    )
    .await
    .json();
    assert_eq!(
        (&v["delivered"], &v["offset"]),
        (&json!(1), &json!(1)),
        "{v}"
    );
    let m = next_json(&mut bob).await;
    assert_eq!(
        (&m["type"], &m["room"], &m["content"]),
        (&json!("headline"), &json!("news:eu"), &json!("rates up"))
    );
    assert_eq!((&m["offset"], &m["epoch"]), (&json!(1), &v["epoch"]), "{m}");
    assert!(m.get("from").is_none(), "from the server: {m}");
    // The history holds the same envelope.
    let h = get(addr, "/api/rooms/news:eu/history").await.json();
    assert_eq!(h["messages"], json!([m]), "{h}");

    // Stats and metrics count it all.
    for path in ["/api/stats", "/ws/stats"] {
        let s = get(addr, path).await.json();
        assert_eq!(
            (&s["connections"], &s["users"], &s["rooms"]),
            (&json!(3), &json!(2), &json!(2)),
            "{s}"
        );
        // The three joins' acks are deliveries too.
        let sent = 3 + 3 + 2 + 1 + 3 + 2 + 1;
        assert_eq!(s["deliveries"]["delivered"], sent, "{s}");
    }
    let metrics = http(addr, "GET", "/metrics", &[], None).await.body;
    assert!(
        metrics.contains("\ntether_hub_connections 3\n"),
        "{metrics}"
    );

    // Disconnect: every session of the user, with the code and reason given.
    let v = post(
        addr,
        "/api/users/alice/disconnect",
        json!({"code": 4001, "reason": "suspended"}),
    )
    .await
    .json();
    assert_eq!(v, json!({"user": "alice", "disconnected": 2}));
    assert_eq!(closed_with(&mut alice1).await, 4001);
    assert_eq!(closed_with(&mut alice2).await, 4001);
    wait_connections(addr, 1).await;
    assert_eq!(
        get(addr, "/api/status").await.json()["online_users"],
        json!(["bob"])
    );
    // Without a body: 1000.
    let v = http(addr, "POST", "/api/users/bob/disconnect", &[KEY], None)
        .await
        .json();
    assert_eq!(v["disconnected"], 1);
    assert_eq!(closed_with(&mut bob).await, 1000);
    server.stop().await;
}

#[tokio::test]
async fn the_upgrade_alias_is_the_websocket_endpoint() {
    // /api/ws/connect authenticates like /ws (the WebSocket's token, not the API's
    // credentials), and upgrades.
    let server = Server::start(production()).await;
    let addr = server.addr;
    for path in ["/ws", "/api/ws/connect"] {
        let reply = http(
            addr,
            "GET",
            path,
            &[
                ("Upgrade", "websocket"),
                ("Connection", "Upgrade"),
                ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
                ("Sec-WebSocket-Version", "13"),
                KEY,
            ],
            None,
        )
        .await;
        reply.assert_error(401, "missing_token");
        let user = token(&json!({"sub": "dana", "exp": in_an_hour()}));
        let request = ClientRequest::new(&format!("ws://{addr}{path}"))
            .unwrap()
            .subprotocol("tether.v1")
            .subprotocol(format!("bearer.{user}"));
        let (ws, response) = tether_tokio::connect_with(request, tether_tokio::Config::default())
            .await
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(response.status(), 101);
        drop(ws);
    }
    server.stop().await;
}

#[tokio::test]
async fn raw_rooms_get_the_content_bare() {
    let mut config = dev_with_key();
    config.rooms.insert(
        0,
        RoomRule {
            pattern: "raw:*".to_owned(),
            join: Access::Anyone,
            raw: true,
            ..RoomRule::default()
        },
    );
    let server = Server::start(config).await;
    let addr = server.addr;
    let mut ws = client(addr, "/ws?user_id=erin").await;
    join(&mut ws, "raw:ticks").await;
    let v = post(
        addr,
        "/api/rooms/raw:ticks/publish",
        json!({"content": "EURUSD 1.0842"}),
    )
    .await
    .json();
    assert_eq!(v, json!({"delivered": 1}));
    let message = tokio::time::timeout(TIMEOUT, ws.recv())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    match message {
        Message::Text(text) => assert_eq!(text.as_str(), "EURUSD 1.0842"),
        other => panic!("{other:?}"),
    }
    get(addr, "/api/rooms/raw:ticks/history")
        .await
        .assert_error(404, "no_history");
    server.stop().await;
}
