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
use tether_tokio::{ClientRequest, WebSocket};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

const SECRET: &str = "0123456789abcdef0123456789abcdef";
const API_KEY: &str = "test-api-key-0123456789";
const TIMEOUT: Duration = Duration::from_secs(10);

// ---- the server ----

struct Server {
    addr: SocketAddr,
    admin: Option<SocketAddr>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), tether_gateway::server::ServeError>>,
}

impl Server {
    async fn start(config: Config) -> Server {
        Self::start_with(config, false).await
    }

    /// With `admin`, an admin listener on another free port.
    async fn start_with(config: Config, admin: bool) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let admin_listener = match admin {
            true => Some(TcpListener::bind("127.0.0.1:0").await.unwrap()),
            false => None,
        };
        let admin = admin_listener.as_ref().map(|l| l.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(tether_gateway::server::serve_with(
            config,
            listener,
            admin_listener,
            async {
                let _ = stopped.await;
            },
        ));
        Server {
            addr,
            admin,
            stop: Some(stop),
            task,
        }
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(TIMEOUT, self.task)
            .await
            .expect("serve returns after the shutdown")
            .unwrap()
            .unwrap();
    }
}

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
    // The upgrade alias stays on the public listener only.
    let ws = client(public, "/api/ws/connect?user_id=carol").await;
    drop(ws);
    http(admin, "GET", "/api/ws/connect", &[], None)
        .await
        .assert_error(404, "not_found");
    server.stop().await;
}
