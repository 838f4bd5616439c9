//! The client protocol (PROTOCOL.md) against a real server on a free port, with
//! tether-tokio clients: rooms, sends, permissions, errors, the rate limit, history and
//! recovery, raw rooms, the shutdown, and an embedded application's handler.

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tether_gateway::config::{Access, AuthConfig, Config, Limits, RoomRule};
use tether_gateway::envelope::{Envelope, ErrorCode, MessageType};
use tether_gateway::{AppState, Context, Handler, Refusal};
use tether_tokio::{ClientRequest, Message, WebSocket};
use tokio::net::TcpListener;

mod common;
use common::{Server, TIMEOUT};

const SECRET: &str = "0123456789abcdef0123456789abcdef";
/// How long a client waits to be sure that nothing more comes.
const QUIET: Duration = Duration::from_millis(300);

fn rule(pattern: &str) -> RoomRule {
    RoomRule {
        pattern: pattern.to_owned(),
        ..RoomRule::default()
    }
}

/// Production mode (HS256 tokens) with these room rules, then the catch-all `*`.
fn config(rules: Vec<RoomRule>) -> Config {
    let mut rooms = rules;
    rooms.push(rule("*"));
    Config {
        dev: false,
        auth: AuthConfig {
            hmac_secret: Some(SECRET.to_owned()),
            ..AuthConfig::default()
        },
        rooms,
        ..Config::default()
    }
}

fn token(user: &str, rooms: Option<&[&str]>) -> String {
    let mut claims = json!({"sub": user, "exp": jsonwebtoken::get_current_timestamp() + 600});
    if let Some(rooms) = rooms {
        claims["rooms"] = json!(rooms);
    }
    if user == "alice" {
        claims["meta"] = json!({"name": "Alice"});
    }
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(SECRET.as_bytes()).unwrap(),
    )
    .unwrap()
}

struct Client {
    ws: WebSocket,
}

impl Client {
    async fn connect(addr: SocketAddr, user: &str) -> Client {
        Self::connect_with(addr, user, None).await
    }

    async fn connect_with(addr: SocketAddr, user: &str, rooms: Option<&[&str]>) -> Client {
        let request = ClientRequest::new(&format!("ws://{addr}/ws"))
            .unwrap()
            .header("Authorization", format!("Bearer {}", token(user, rooms)));
        let (ws, _) = tokio::time::timeout(
            TIMEOUT,
            tether_tokio::connect_with(request, tether_tokio::Config::default()),
        )
        .await
        .unwrap()
        .unwrap();
        Client { ws }
    }

    async fn send(&mut self, message: Value) {
        self.send_text(&message.to_string()).await;
    }

    async fn send_text(&mut self, text: &str) {
        self.ws.send_text(text.to_owned()).await.unwrap();
    }

    async fn message(&mut self) -> Message {
        let message = tokio::time::timeout(TIMEOUT, self.ws.recv())
            .await
            .expect("a message in time");
        message.expect("the connection is open").unwrap()
    }

    /// The next message, a JSON text.
    async fn recv(&mut self) -> Value {
        match self.message().await {
            Message::Text(text) => serde_json::from_str(text.as_str()).unwrap(),
            other => panic!("not a text message: {other:?}"),
        }
    }

    /// Sends a request and returns the next message.
    async fn request(&mut self, message: Value) -> Value {
        self.send(message).await;
        self.recv().await
    }

    /// Joins `room`: the `ack` of its id.
    async fn join(&mut self, room: &str) -> Value {
        let ack = self
            .request(json!({"type": "join", "room": room, "id": room}))
            .await;
        assert_eq!(ack["type"], "ack", "{ack}");
        assert_eq!(ack["id"], room);
        ack
    }

    /// Asserts that nothing arrives for a while.
    async fn nothing(&mut self) {
        if let Ok(message) = tokio::time::timeout(QUIET, self.ws.recv()).await {
            panic!("unexpected: {message:?}");
        }
    }

    /// Waits for the end of the connection: its close code.
    async fn closed(&mut self) -> u16 {
        loop {
            match tokio::time::timeout(TIMEOUT, self.ws.recv()).await {
                Ok(Some(Ok(_))) => continue,
                Ok(_) => break,
                Err(_) => panic!("the connection did not close"),
            }
        }
        self.ws.close_reason().expect("closed").code().into()
    }
}

fn error_code(message: &Value) -> &str {
    assert_eq!(message["type"], "error", "{message}");
    message["content"]["code"].as_str().unwrap()
}

#[tokio::test]
async fn two_users_exchange_publishes_in_a_room() {
    let server = Server::start(config(vec![])).await;
    let mut alice = Client::connect(server.addr, "alice").await;
    let mut bob = Client::connect(server.addr, "bob").await;
    alice.join("chat:lobby").await;
    bob.join("chat:lobby").await;

    // A spoofed `from` is replaced by the sender's user id.
    alice
        .send(
            json!({"type": "publish", "room": "chat:lobby", "from": "mallory", "ts": 1,
                     "content": {"text": "hello"}, "id": 3}),
        )
        .await;
    let got = bob.recv().await;
    assert_eq!(got["type"], "publish");
    assert_eq!(got["room"], "chat:lobby");
    assert_eq!(got["from"], "alice");
    assert_eq!(got["content"], json!({"text": "hello"}));
    assert!(got["ts"].as_u64().unwrap() > 1_700_000_000_000, "{got}");
    assert!(got.get("offset").is_none(), "no history in this room");
    // The sender is a member too: its own message, then the ack.
    assert_eq!(alice.recv().await, got);
    assert_eq!(alice.recv().await, json!({"type": "ack", "id": 3}));

    bob.send(json!({"type": "publish", "room": "chat:lobby", "content": "hi alice"}))
        .await;
    let got = alice.recv().await;
    assert_eq!(
        (got["from"].as_str(), got["content"].as_str()),
        (Some("bob"), Some("hi alice"))
    );
    assert_eq!(bob.recv().await["from"], "bob");
    bob.nothing().await; // no id: no ack

    // After leaving, nothing more comes from the room.
    let ack = bob
        .request(json!({"type": "leave", "room": "chat:lobby", "id": "l"}))
        .await;
    assert_eq!(ack, json!({"type": "ack", "id": "l"}));
    alice
        .send(json!({"type": "publish", "room": "chat:lobby", "content": 1}))
        .await;
    assert_eq!(alice.recv().await["content"], 1);
    bob.nothing().await;
    server.stop().await;
}

#[tokio::test]
async fn send_reaches_every_session_of_the_user() {
    let server = Server::start(config(vec![])).await;
    let mut alice = Client::connect(server.addr, "alice").await;
    let mut bob1 = Client::connect(server.addr, "bob").await;
    let mut bob2 = Client::connect(server.addr, "bob").await;
    let mut carol = Client::connect(server.addr, "carol").await;
    let ack = alice
        .request(json!({"type": "send", "to": "bob", "content": {"text": "psst"}, "id": 4}))
        .await;
    assert_eq!(ack, json!({"type": "ack", "id": 4}));
    for bob in [&mut bob1, &mut bob2] {
        let got = bob.recv().await;
        assert_eq!(got["type"], "send");
        assert_eq!(got["to"], "bob");
        assert_eq!(got["from"], "alice");
        assert_eq!(got["content"]["text"], "psst");
        assert!(got["ts"].is_u64());
    }
    carol.nothing().await;

    // To a user who is not connected.
    let error = alice
        .request(json!({"type": "send", "to": "dave", "content": 1, "id": 5}))
        .await;
    assert_eq!(error_code(&error), "not_found");
    assert_eq!(error["id"], 5);

    // An empty `to`: everyone, the sender included.
    bob1.send(json!({"type": "send", "to": "", "content": "all"}))
        .await;
    for client in [&mut alice, &mut bob1, &mut bob2, &mut carol] {
        let got = client.recv().await;
        assert_eq!(
            (got["type"].as_str(), got["from"].as_str()),
            (Some("send"), Some("bob"))
        );
        assert_eq!(got["content"], "all");
        assert!(got.get("to").is_none());
    }
    server.stop().await;
}

#[tokio::test]
async fn permission_refusals_carry_the_request_id() {
    let rules = vec![
        RoomRule {
            join: Access::Claim,
            publish: Access::Claim,
            ..rule("team:*")
        },
        RoomRule {
            publish: Access::Nobody,
            ..rule("news:*")
        },
        RoomRule {
            publish: Access::Nobody,
            ..rule("$broadcast")
        },
        RoomRule {
            history: Access::Nobody,
            history_size: 10,
            ..rule("secret:*")
        },
    ];
    let server = Server::start(config(rules)).await;
    let mut eve = Client::connect(server.addr, "eve").await;
    let mut red = Client::connect_with(server.addr, "ruby", Some(&["team:red"])).await;

    let error = eve
        .request(json!({"type": "join", "room": "team:red", "id": 1}))
        .await;
    assert_eq!(error_code(&error), "forbidden");
    assert_eq!(error["id"], 1);
    assert_eq!(error["content"]["number"], 111);
    let error = eve
        .request(json!({"type": "publish", "room": "team:red", "content": 1, "id": "p"}))
        .await;
    assert_eq!(
        (error_code(&error), &error["id"]),
        ("forbidden", &json!("p"))
    );
    let error = eve
        .request(json!({"type": "publish", "room": "news:today", "content": 1, "id": 2}))
        .await;
    assert_eq!((error_code(&error), &error["id"]), ("forbidden", &json!(2)));
    let error = eve
        .request(json!({"type": "send", "content": "spam", "id": 3}))
        .await;
    assert_eq!((error_code(&error), &error["id"]), ("forbidden", &json!(3)));
    // Recovery reads the history: it needs the history access too.
    let error = eve
        .request(json!({"type": "recover", "room": "secret:1", "offset": 0, "epoch": "e", "id": 6}))
        .await;
    assert_eq!((error_code(&error), &error["id"]), ("forbidden", &json!(6)));
    eve.join("secret:1").await;

    // The claim lets ruby in; news can be joined, not published to.
    red.join("team:red").await;
    let error = red
        .request(json!({"type": "join", "room": "team:blue", "id": 4}))
        .await;
    assert_eq!((error_code(&error), &error["id"]), ("forbidden", &json!(4)));
    red.join("news:today").await;
    red.send(json!({"type": "publish", "room": "team:red", "content": "go", "id": 5}))
        .await;
    assert_eq!(red.recv().await["content"], "go");
    assert_eq!(red.recv().await, json!({"type": "ack", "id": 5}));
    eve.nothing().await;
    server.stop().await;
}

#[tokio::test]
async fn bad_messages_get_errors_and_the_connection_goes_on() {
    let server = Server::start(config(vec![])).await;
    let mut alice = Client::connect(server.addr, "alice").await;
    for (text, code, id) in [
        ("not json", "malformed", Value::Null),
        ("[1, 2]", "malformed", Value::Null),
        (
            r#"{"type": "ping", "rom": "x", "id": 9}"#,
            "unknown_field",
            json!(9),
        ),
        (r#"{"room": "x", "id": 10}"#, "invalid_field", json!(10)),
        (
            r#"{"type": "order.created", "id": 11}"#,
            "unknown_type",
            json!(11),
        ),
        (
            r#"{"type": "publish", "content": 1, "id": 12}"#,
            "bad_request",
            json!(12),
        ),
        (
            r#"{"type": "publish", "room": "r", "id": 13}"#,
            "bad_request",
            json!(13),
        ),
        (
            r#"{"type": "recover", "room": "r", "id": 14}"#,
            "bad_request",
            json!(14),
        ),
        (r#"{"type": "ack", "id": 15}"#, "bad_request", json!(15)),
        (
            r#"{"type": "join", "room": "", "id": 16}"#,
            "invalid_field",
            json!(16),
        ),
    ] {
        alice.send_text(text).await;
        let error = alice.recv().await;
        assert_eq!(error_code(&error), code, "{text}: {error}");
        assert_eq!(error["id"], id, "{text}");
        let ping = alice.request(json!({"type": "ping", "id": "still"})).await;
        assert_eq!(ping, json!({"type": "pong", "id": "still"}), "after {text}");
    }
    // A pong from the client is taken silently.
    alice.send(json!({"type": "pong"})).await;
    alice.nothing().await;
    server.stop().await;
}

#[tokio::test]
async fn rate_limit() {
    let mut config = config(vec![]);
    config.limits = Limits {
        messages_per_second: 1,
        burst: 3,
        ..Limits::default()
    };
    let server = Server::start(config).await;
    let mut alice = Client::connect(server.addr, "alice").await;
    for i in 0..3 {
        let pong = alice.request(json!({"type": "ping", "id": i})).await;
        assert_eq!(pong["type"], "pong");
    }
    let error = alice.request(json!({"type": "ping", "id": 3})).await;
    assert_eq!(error_code(&error), "rate_limited");
    assert_eq!(error["id"], 3);
    alice.ws.send_binary(vec![1u8]).await.unwrap();
    assert_eq!(error_code(&alice.recv().await), "rate_limited");
    // The bucket refills: one message a second.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let pong = alice.request(json!({"type": "ping", "id": 4})).await;
    assert_eq!(pong, json!({"type": "pong", "id": 4}));
    server.stop().await;
}

#[tokio::test]
async fn history_rooms_recover_what_was_missed() {
    let rules = vec![
        RoomRule {
            history_size: 100,
            ..rule("h:*")
        },
        RoomRule {
            history_size: 2,
            ..rule("short:*")
        },
    ];
    let server = Server::start(config(rules)).await;
    let mut publisher = Client::connect(server.addr, "pub").await;
    let mut alice = Client::connect(server.addr, "alice").await;
    let ack = alice.join("h:1").await;
    assert_eq!(ack["offset"], 0);
    let epoch = ack["epoch"].as_str().unwrap().to_owned();

    let publish = |n: u64| json!({"type": "publish", "room": "h:1", "content": n, "id": n});
    for n in 1..=2 {
        let ack = publisher.request(publish(n)).await;
        assert_eq!(
            ack,
            json!({"type": "ack", "id": n, "offset": n, "epoch": epoch})
        );
    }
    let first = alice.recv().await;
    assert_eq!(
        (first["offset"].as_u64(), first["epoch"].as_str()),
        (Some(1), Some(&*epoch))
    );
    assert_eq!(first["content"], 1);
    assert_eq!(alice.recv().await["offset"], 2);
    // Alice goes away after 2; 3, 4 and 5 are published meanwhile.
    drop(alice);
    for n in 3..=5 {
        assert_eq!(publisher.request(publish(n)).await["offset"], n);
    }
    let mut alice = Client::connect(server.addr, "alice").await;
    alice
        .send(json!({"type": "recover", "room": "h:1", "offset": 2, "epoch": epoch, "id": "r"}))
        .await;
    for n in 3..=5u64 {
        let got = alice.recv().await;
        assert_eq!(got["type"], "publish");
        assert_eq!(
            (got["offset"].as_u64(), got["content"].as_u64()),
            (Some(n), Some(n))
        );
        assert_eq!(got["from"], "pub");
    }
    assert_eq!(
        alice.recv().await,
        json!({"type": "ack", "id": "r", "offset": 5, "epoch": epoch})
    );
    // It is in the room again: the next message comes live.
    publisher.request(publish(6)).await;
    assert_eq!(alice.recv().await["offset"], 6);

    // Another epoch: recovery is impossible, the error says where the stream is.
    let mut bob = Client::connect(server.addr, "bob").await;
    let error = bob
        .request(json!({"type": "recover", "room": "h:1", "offset": 2, "epoch": "other", "id": 7}))
        .await;
    assert_eq!(error_code(&error), "not_found");
    assert_eq!(error["id"], 7);
    assert_eq!(
        (error["offset"].as_u64(), error["epoch"].as_str()),
        (Some(6), Some(&*epoch))
    );
    // ... and bob is in the room from now on.
    publisher.request(publish(7)).await;
    assert_eq!(bob.recv().await["offset"], 7);

    // Too far behind: the room keeps 2 messages.
    for n in 1..=5 {
        let ack = publisher
            .request(json!({"type": "publish", "room": "short:1", "content": n, "id": n}))
            .await;
        assert_eq!(ack["offset"], n);
    }
    let error = bob
        .request(
            json!({"type": "recover", "room": "short:1", "offset": 1, "epoch": epoch, "id": 8}),
        )
        .await;
    assert_eq!((error_code(&error), &error["id"]), ("not_found", &json!(8)));
    // A room without history.
    let error = bob
        .request(json!({"type": "recover", "room": "plain", "offset": 1, "epoch": epoch, "id": 9}))
        .await;
    assert_eq!((error_code(&error), &error["id"]), ("not_found", &json!(9)));
    server.stop().await;
}

#[tokio::test]
async fn raw_rooms_relay_payloads_bare() {
    let rules = vec![RoomRule {
        raw: true,
        ..rule("raw:*")
    }];
    let server = Server::start(config(rules)).await;
    let mut alice = Client::connect(server.addr, "alice").await;
    let mut bob = Client::connect(server.addr, "bob").await;
    let mut carol = Client::connect(server.addr, "carol").await;
    alice.join("raw:game").await;
    bob.join("raw:game").await;
    carol.join("other").await;

    alice.ws.send_binary(vec![0u8, 1, 2, 255]).await.unwrap();
    match bob.message().await {
        Message::Binary(data) => assert_eq!(&data[..], [0, 1, 2, 255]),
        other => panic!("{other:?}"),
    }
    alice.nothing().await; // the sender does not get its own back
    carol.nothing().await;

    // A publish envelope: its content goes out bare (a string's text).
    let ack = bob
        .request(json!({"type": "publish", "room": "raw:game", "content": "move e4", "id": 1}))
        .await;
    assert_eq!(ack, json!({"type": "ack", "id": 1}));
    match alice.message().await {
        Message::Text(text) => assert_eq!(text.as_str(), "move e4"),
        other => panic!("{other:?}"),
    }
    // Binary from a connection in no raw room: an error.
    carol.ws.send_binary(vec![1u8]).await.unwrap();
    assert_eq!(error_code(&carol.recv().await), "bad_request");
    server.stop().await;
}

#[tokio::test]
async fn shutdown_closes_clients_with_1001() {
    let server = Server::start(config(vec![])).await;
    let mut alice = Client::connect(server.addr, "alice").await;
    let mut bob = Client::connect(server.addr, "bob").await;
    alice.join("r").await;
    bob.join("r").await;
    alice
        .send(json!({"type": "publish", "room": "r", "content": "last"}))
        .await;
    assert_eq!(bob.recv().await["content"], "last");
    let stop = tokio::spawn(server.stop());
    assert_eq!(alice.closed().await, 1001);
    assert_eq!(bob.closed().await, 1001);
    tokio::time::timeout(TIMEOUT, stop).await.unwrap().unwrap();
}

/// An application: `echo.me` is answered with `echo.reply`, `note.add` is acked and
/// counted, the user `banned` is refused; connections are counted.
#[derive(Default)]
struct App {
    open: AtomicUsize,
    closed: AtomicUsize,
    notes: AtomicUsize,
}

impl Handler for App {
    async fn on_connect(&self, cx: &Context) -> Result<(), Refusal> {
        if cx.user() == Some("banned") {
            return Err(Refusal::new(ErrorCode::Forbidden, "banned"));
        }
        self.open.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    async fn on_message(
        &self,
        cx: &Context,
        message: Envelope,
    ) -> Result<Option<Envelope>, Refusal> {
        match message.kind.as_str() {
            "echo.me" => Ok(Some(Envelope {
                from: cx.user().map(str::to_owned),
                content: message.content,
                ..Envelope::new(MessageType::App("echo.reply".to_owned()))
            })),
            "note.add" => {
                self.notes.fetch_add(1, Ordering::SeqCst);
                Ok(None)
            }
            _ => Err(Refusal::unknown_type(&message.kind)),
        }
    }

    async fn on_close(&self, _cx: &Context) {
        self.closed.fetch_add(1, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn an_embedded_handler_takes_application_types() {
    let app = Arc::new(App::default());
    let state = AppState::with_handler(config(vec![]), app.clone()).unwrap();
    let router = tether_gateway::router(state.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
    });
    let mut alice = Client::connect(addr, "alice").await;
    let reply = alice
        .request(json!({"type": "echo.me", "content": {"x": [1, 2]}, "id": 1}))
        .await;
    assert_eq!(
        reply,
        json!({"type": "echo.reply", "from": "alice", "content": {"x": [1, 2]}, "id": 1})
    );
    let ack = alice.request(json!({"type": "note.add", "id": "n"})).await;
    assert_eq!(ack, json!({"type": "ack", "id": "n"}));
    assert_eq!(app.notes.load(Ordering::SeqCst), 1);
    let error = alice.request(json!({"type": "other.thing", "id": 2})).await;
    assert_eq!(
        (error_code(&error), &error["id"]),
        ("unknown_type", &json!(2))
    );
    // The protocol's own types still work.
    alice.join("room").await;

    let mut banned = Client::connect(addr, "banned").await;
    assert_eq!(banned.closed().await, 1008);
    assert_eq!(app.open.load(Ordering::SeqCst), 1);

    state.shutdown();
    assert_eq!(alice.closed().await, 1001);
    // No new connection once the shutdown has started: 503 before the upgrade.
    let request = ClientRequest::new(&format!("ws://{addr}/ws"))
        .unwrap()
        .header("Authorization", format!("Bearer {}", token("late", None)));
    let Err(refused) = tether_tokio::connect_with(request, tether_tokio::Config::default()).await
    else {
        panic!("an upgrade during the shutdown was accepted");
    };
    assert_eq!(refused.status(), Some(503), "{refused}");
    tokio::time::timeout(TIMEOUT, state.drained())
        .await
        .unwrap();
    assert_eq!(app.closed.load(Ordering::SeqCst), 1);
    server.abort();
}

#[tokio::test]
async fn presence_and_history_reads() {
    let rules = vec![
        RoomRule {
            history_size: 10,
            ..rule("h:*")
        },
        RoomRule {
            presence: Access::Nobody,
            history: Access::Nobody,
            history_size: 10,
            ..rule("hidden:*")
        },
    ];
    let server = Server::start(config(rules)).await;
    let mut alice = Client::connect(server.addr, "alice").await;
    let mut bob1 = Client::connect(server.addr, "bob").await;
    let mut bob2 = Client::connect(server.addr, "bob").await;
    for client in [&mut alice, &mut bob1, &mut bob2] {
        client.join("h:1").await;
    }
    let presence = alice
        .request(json!({"type": "presence", "room": "h:1", "id": 1}))
        .await;
    assert_eq!(
        presence,
        json!({"type": "presence", "room": "h:1", "id": 1, "content": {
            "connections": 3, "users": [{"user": "alice", "meta": {"name": "Alice"}}, {"user": "bob"}]}})
    );

    for n in 1..=3 {
        alice
            .send(json!({"type": "publish", "room": "h:1", "content": n}))
            .await;
        for client in [&mut alice, &mut bob1, &mut bob2] {
            assert_eq!(client.recv().await["offset"], n);
        }
    }
    let history = bob1
        .request(json!({"type": "history", "room": "h:1", "offset": 1, "id": 2}))
        .await;
    assert_eq!(history["type"], "history", "{history}");
    assert_eq!(
        (history["id"].as_u64(), history["offset"].as_u64()),
        (Some(2), Some(3))
    );
    let epoch = history["epoch"].as_str().unwrap().to_owned();
    let list = history["content"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    for (message, n) in list.iter().zip(2..) {
        assert_eq!(message["type"], "publish");
        assert_eq!(message["from"], "alice");
        assert_eq!(
            (message["offset"].as_u64(), message["content"].as_u64()),
            (Some(n), Some(n))
        );
        assert_eq!(message["epoch"], epoch.as_str());
    }
    // From the start, and from another epoch.
    let all = bob1
        .request(json!({"type": "history", "room": "h:1", "id": 3}))
        .await;
    assert_eq!(all["content"].as_array().unwrap().len(), 3);
    let error = bob1
        .request(json!({"type": "history", "room": "h:1", "offset": 1, "epoch": "old", "id": 4}))
        .await;
    assert_eq!((error_code(&error), &error["id"]), ("not_found", &json!(4)));
    assert_eq!(error["offset"], 3);
    // Refusals: the rules, and a room without history.
    for (request, code) in [
        (
            json!({"type": "presence", "room": "hidden:1", "id": 5}),
            "forbidden",
        ),
        (
            json!({"type": "history", "room": "hidden:1", "id": 5}),
            "forbidden",
        ),
        (
            json!({"type": "history", "room": "plain", "id": 5}),
            "not_found",
        ),
        (json!({"type": "presence", "id": 5}), "bad_request"),
    ] {
        let error = bob2.request(request.clone()).await;
        assert_eq!(
            (error_code(&error), &error["id"]),
            (code, &json!(5)),
            "{request}"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn rooms_per_connection_are_limited() {
    let mut config = config(vec![]);
    config.limits.max_rooms_per_connection = 2;
    let server = Server::start(config).await;
    let mut alice = Client::connect(server.addr, "alice").await;
    alice.join("a").await;
    alice.join("b").await;
    let error = alice
        .request(json!({"type": "join", "room": "c", "id": 1}))
        .await;
    assert_eq!((error_code(&error), &error["id"]), ("forbidden", &json!(1)));
    alice.join("a").await; // a member already: fine
    let ack = alice
        .request(json!({"type": "leave", "room": "a", "id": 2}))
        .await;
    assert_eq!(ack["type"], "ack");
    alice.join("c").await;
    server.stop().await;
}
