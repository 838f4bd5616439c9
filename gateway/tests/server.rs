//! The gateway served on a free port: refusals before the upgrade (401, 403, 429), the
//! upgrade with HS256 and ES256 tokens, the rate limit and the message size limit,
//! `/health`, and the graceful shutdown. (The client protocol itself is in `protocol.rs`.) Requests are written by hand on a TCP stream, so that the status
//! line is exactly what a client sees.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use tether_gateway::config::{AuthConfig, Config, Limits};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

mod common;
use common::{Server, TIMEOUT};

const SECRET: &str = "0123456789abcdef0123456789abcdef";
const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

fn keys(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/keys")
        .join(name)
}

/// Production: dev mode off, HS256 secret and the ES256 public key.
fn production() -> Config {
    Config {
        dev: false,
        auth: AuthConfig {
            hmac_secret: Some(SECRET.to_owned()),
            jwks_file: Some(keys("jwks.json")),
            ..AuthConfig::default()
        },
        ..Config::default()
    }
}

fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

fn hs256(claims: &Value) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(SECRET.as_bytes()).unwrap(),
    )
    .unwrap()
}

fn es256(claims: &Value) -> String {
    let pem = std::fs::read(keys("es256_private.pem")).unwrap();
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some("test-es256".to_owned());
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_ec_pem(&pem).unwrap()).unwrap()
}

struct Reply {
    status: u16,
    head: String,
    body: String,
    stream: TcpStream,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }
}

/// Sends a request with `headers` and reads the response head (and a body of
/// `Content-Length` bytes).
async fn request(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let mut text = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\n");
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str("\r\n");
    stream.write_all(text.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let mut chunk = [0u8; 1024];
        let n = tokio::time::timeout(TIMEOUT, stream.read(&mut chunk))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "connection closed before the response head");
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8(buf[..head_end].to_vec()).unwrap();
    let status = head[9..12].parse().unwrap();
    let mut reply = Reply {
        status,
        head,
        body: String::new(),
        stream,
    };
    let length: usize = reply
        .header("content-length")
        .map_or(0, |v| v.parse().unwrap());
    let mut body = buf[head_end..].to_vec();
    while body.len() < length {
        let mut chunk = [0u8; 1024];
        let n = reply.stream.read(&mut chunk).await.unwrap();
        assert!(n > 0);
        body.extend_from_slice(&chunk[..n]);
    }
    reply.body = String::from_utf8(body).unwrap();
    reply
}

async fn upgrade(addr: SocketAddr, path: &str, extra: &[(&str, &str)]) -> Reply {
    let mut headers = vec![
        ("Connection", "Upgrade"),
        ("Upgrade", "websocket"),
        ("Sec-WebSocket-Version", "13"),
        ("Sec-WebSocket-Key", KEY),
    ];
    headers.extend_from_slice(extra);
    request(addr, "GET", path, &headers).await
}

/// Writes a masked client frame.
async fn send_frame<S: AsyncWrite + Unpin>(stream: &mut S, opcode: u8, payload: &[u8]) {
    let mut frame = vec![0x80 | opcode];
    match payload.len() {
        n if n < 126 => frame.push(0x80 | n as u8),
        n if n <= 0xffff => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    let mask = [0x12, 0x34, 0x56, 0x78];
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    stream.write_all(&frame).await.unwrap();
}

/// Reads one server frame (unmasked): (opcode, payload).
async fn read_frame<S: AsyncRead + Unpin>(stream: &mut S) -> (u8, Vec<u8>) {
    let read = async {
        let mut head = [0u8; 2];
        stream.read_exact(&mut head).await.unwrap();
        let len = match head[1] & 0x7f {
            126 => {
                let mut b = [0u8; 2];
                stream.read_exact(&mut b).await.unwrap();
                u64::from(u16::from_be_bytes(b))
            }
            127 => {
                let mut b = [0u8; 8];
                stream.read_exact(&mut b).await.unwrap();
                u64::from_be_bytes(b)
            }
            n => u64::from(n),
        };
        let mut payload = vec![0u8; len as usize];
        stream.read_exact(&mut payload).await.unwrap();
        (head[0] & 0x0f, payload)
    };
    tokio::time::timeout(TIMEOUT, read).await.expect("a frame")
}

fn close_code(payload: &[u8]) -> u16 {
    u16::from_be_bytes([payload[0], payload[1]])
}

#[tokio::test]
async fn health() {
    let server = Server::start(production()).await;
    let reply = request(server.addr, "GET", "/health", &[]).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(reply.json(), json!({"status": "ok"}));
    let reply = request(server.addr, "GET", "/", &[]).await;
    assert_eq!(reply.status, 200);
    assert!(
        reply.body.contains("src=\"/app.js\""),
        "the demo chat (tests/demo_page.rs)"
    );
    let reply = request(server.addr, "GET", "/nowhere", &[]).await;
    assert_eq!(reply.status, 404);
    assert_eq!(reply.json()["code"], "not_found");
    server.stop().await;
}

#[tokio::test]
async fn refused_upgrades_get_401_never_101() {
    let server = Server::start(production()).await;
    let t = now();
    let expired = hs256(&json!({"sub": "alice", "exp": t - 3600}));
    let enc = |v: Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let alg_none = format!(
        "{}.{}.",
        enc(json!({"alg": "none", "typ": "JWT"})),
        enc(json!({"sub": "alice", "exp": t + 600}))
    );
    let wrong_secret = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &json!({"sub": "alice", "exp": t + 600}),
        &EncodingKey::from_secret(b"not the secret, not the secret!!").unwrap(),
    )
    .unwrap();
    let bearer = |t: &str| format!("Bearer {t}");
    for (headers, code) in [
        (vec![], "missing_token"),
        (vec![("Authorization", bearer("garbage"))], "invalid_token"),
        (vec![("Authorization", bearer(&expired))], "token_expired"),
        (
            vec![("Authorization", bearer(&alg_none))],
            "algorithm_not_allowed",
        ),
        (
            vec![("Authorization", bearer(&wrong_secret))],
            "invalid_signature",
        ),
        (
            vec![(
                "Sec-WebSocket-Protocol",
                format!("tether.v1, bearer.{expired}"),
            )],
            "token_expired",
        ),
    ] {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let reply = upgrade(server.addr, "/ws", &headers).await;
        assert_eq!(reply.status, 401, "{code}: {}", reply.head);
        assert_eq!(reply.header("content-type"), Some("application/json"));
        let body = reply.json();
        assert_eq!(body["code"], code);
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    let good = hs256(&json!({"sub": "alice", "exp": t + 600}));
    let reply = upgrade(server.addr, &format!("/ws?token={good}"), &[]).await;
    assert_eq!(reply.status, 401, "?token= is off by default");
    assert_eq!(reply.json()["code"], "query_token_disabled");
    server.stop().await;
}

#[tokio::test]
async fn refused_origin_gets_403() {
    let server = Server::start(production()).await;
    let token = format!("Bearer {}", hs256(&json!({"sub": "a", "exp": now() + 600})));
    let reply = upgrade(
        server.addr,
        "/ws",
        &[
            ("Authorization", &token),
            ("Origin", "https://evil.example"),
        ],
    )
    .await;
    assert_eq!(reply.status, 403);
    assert_eq!(reply.json()["code"], "origin_not_allowed");
    // Same-origin passes.
    let same = format!("http://{}", server.addr);
    let reply = upgrade(
        server.addr,
        "/ws",
        &[("Authorization", &token), ("Origin", &same)],
    )
    .await;
    assert_eq!(reply.status, 101, "{}", reply.head);
    drop(reply);
    server.stop().await;
}

#[tokio::test]
async fn hs256_token_upgrades_and_answers() {
    let server = Server::start(production()).await;
    let token = format!(
        "Bearer {}",
        hs256(&json!({"sub": "alice", "exp": now() + 600}))
    );
    let mut reply = upgrade(server.addr, "/ws", &[("Authorization", &token)]).await;
    assert_eq!(reply.status, 101, "{}", reply.head);
    assert_eq!(reply.header("sec-websocket-protocol"), None);
    send_frame(&mut reply.stream, 1, br#"{"type":"ping","id":1}"#).await;
    assert_eq!(
        read_frame(&mut reply.stream).await,
        (1, br#"{"type":"pong","id":1}"#.to_vec())
    );
    // A binary message outside raw rooms: an error, and the connection goes on.
    send_frame(&mut reply.stream, 2, &[0, 1, 2]).await;
    let (opcode, payload) = read_frame(&mut reply.stream).await;
    assert_eq!(opcode, 1);
    let error: Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(error["content"]["code"], "bad_request");
    send_frame(&mut reply.stream, 1, br#"{"type":"ping","id":"b"}"#).await;
    assert_eq!(
        read_frame(&mut reply.stream).await,
        (1, br#"{"type":"pong","id":"b"}"#.to_vec())
    );
    drop(reply);
    server.stop().await;
}

#[tokio::test]
async fn es256_token_in_the_protocol_header_upgrades() {
    let server = Server::start(production()).await;
    let token = es256(&json!({"sub": "bob", "exp": now() + 600}));
    let offer = format!("tether.v1, bearer.{token}");
    let reply = upgrade(server.addr, "/ws", &[("Sec-WebSocket-Protocol", &offer)]).await;
    assert_eq!(reply.status, 101, "{}", reply.head);
    assert_eq!(
        reply.header("sec-websocket-protocol"),
        Some("tether.v1"),
        "the protocol is echoed, never the token"
    );
    assert!(!reply.head.contains(&token));
    drop(reply);
    // A token entry alone: a browser would refuse a 101 without a subprotocol.
    let alone = format!("bearer.{token}");
    let reply = upgrade(server.addr, "/ws", &[("Sec-WebSocket-Protocol", &alone)]).await;
    assert_eq!(reply.status, 400, "{}", reply.head);
    assert_eq!(reply.json()["code"], "subprotocol_required");
    // And in the Authorization header.
    let bearer = format!("Bearer {token}");
    let reply = upgrade(server.addr, "/ws", &[("Authorization", &bearer)]).await;
    assert_eq!(reply.status, 101, "{}", reply.head);
    drop(reply);
    server.stop().await;
}

#[tokio::test]
async fn rate_limit_and_message_size() {
    let config = Config {
        limits: Limits {
            messages_per_second: 1,
            burst: 2,
            max_message_size: 100,
            ..Limits::default()
        },
        ..Config::default() // dev mode: anonymous connections
    };
    let server = Server::start(config).await;
    let mut reply = upgrade(server.addr, "/ws", &[]).await;
    assert_eq!(reply.status, 101, "{}", reply.head);
    for i in 0..2 {
        let text = format!(r#"{{"type":"ping","id":{i}}}"#);
        send_frame(&mut reply.stream, 1, text.as_bytes()).await;
        let pong = format!(r#"{{"type":"pong","id":{i}}}"#);
        assert_eq!(read_frame(&mut reply.stream).await.1, pong.as_bytes());
    }
    send_frame(&mut reply.stream, 1, br#"{"type":"ping","id":2}"#).await;
    let (opcode, payload) = read_frame(&mut reply.stream).await;
    assert_eq!(opcode, 1);
    let error: Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(error["type"], "error");
    assert_eq!(error["id"], 2);
    assert_eq!(error["content"]["code"], "rate_limited");
    assert_eq!(error["content"]["number"], 112);
    drop(reply);

    // Over max_message_size: closed with 1009.
    let mut reply = upgrade(server.addr, "/ws", &[]).await;
    assert_eq!(reply.status, 101);
    send_frame(&mut reply.stream, 1, &[b'x'; 101]).await;
    let (opcode, payload) = read_frame(&mut reply.stream).await;
    assert_eq!(opcode, 8);
    assert_eq!(close_code(&payload), 1009);
    drop(reply);
    server.stop().await;
}

#[tokio::test]
async fn connections_per_ip() {
    let config = Config {
        limits: Limits {
            max_connections_per_ip: 1,
            ..Limits::default()
        },
        ..Config::default()
    };
    let server = Server::start(config).await;
    let first = upgrade(server.addr, "/ws", &[]).await;
    assert_eq!(first.status, 101);
    let second = upgrade(server.addr, "/ws", &[]).await;
    assert_eq!(second.status, 429);
    assert_eq!(second.json()["code"], "too_many_connections_from_ip");
    drop(first);
    // The slot frees once the server sees the connection end.
    let mut status = 0;
    for _ in 0..100 {
        status = upgrade(server.addr, "/ws", &[]).await.status;
        if status == 101 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(status, 101);
    server.stop().await;
}

#[tokio::test]
async fn shutdown_closes_with_1001() {
    let server = Server::start(Config::default()).await;
    let mut reply = upgrade(server.addr, "/ws", &[]).await;
    assert_eq!(reply.status, 101);
    let mut stream = reply.stream;
    let stop = tokio::spawn(server.stop());
    let (opcode, payload) = read_frame(&mut stream).await;
    assert_eq!(opcode, 8);
    assert_eq!(close_code(&payload), 1001);
    // Answer the close; the server then returns.
    send_frame(&mut stream, 8, &payload[..2]).await;
    tokio::time::timeout(TIMEOUT, stop).await.unwrap().unwrap();
    reply.stream = stream;
}

#[tokio::test]
async fn embedded_next_to_an_application_route() {
    use axum::routing::get;
    let gateway = tether_gateway::AppState::new(production()).unwrap();
    let app = axum::Router::new()
        .route("/hello", get(|| async { "app" }))
        .merge(tether_gateway::router(gateway.clone()));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
    });
    let reply = request(addr, "GET", "/hello", &[]).await;
    assert_eq!((reply.status, reply.body.as_str()), (200, "app"));
    assert_eq!(request(addr, "GET", "/health", &[]).await.status, 200);
    assert_eq!(upgrade(addr, "/ws", &[]).await.status, 401);
    let token = format!("Bearer {}", hs256(&json!({"sub": "a", "exp": now() + 600})));
    let mut reply = upgrade(addr, "/ws", &[("Authorization", &token)]).await;
    assert_eq!(reply.status, 101);
    assert_eq!(gateway.open_connections(), 1);
    gateway.shutdown();
    let (opcode, payload) = read_frame(&mut reply.stream).await;
    assert_eq!((opcode, close_code(&payload)), (8, 1001));
    drop(reply);
    tokio::time::timeout(TIMEOUT, gateway.drained())
        .await
        .unwrap();
    server.abort();
}

#[tokio::test]
async fn tls_from_pem_files() {
    use std::sync::Arc;
    use tokio_rustls::rustls;
    let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let dir = std::env::temp_dir().join(format!("tether-tls-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, generated.cert.pem()).unwrap();
    std::fs::write(&key, generated.signing_key.serialize_pem()).unwrap();
    let mut config = production();
    config.tls.cert = Some(cert);
    config.tls.key = Some(key);
    config.validate().unwrap();
    let server = Server::start(config).await;

    let mut roots = rustls::RootCertStore::empty();
    roots.add(generated.cert.der().clone()).unwrap();
    let client = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
    let connect = || async {
        let tcp = TcpStream::connect(server.addr).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        connector.connect(name, tcp).await.unwrap()
    };

    // GET /health over TLS.
    let mut stream = connect().await;
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = Vec::new();
    let _ = tokio::time::timeout(TIMEOUT, stream.read_to_end(&mut response)).await;
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.ends_with(r#"{"status":"ok"}"#), "{response}");

    // wss: refused without a token, 101 and a pong with one.
    let token = hs256(&json!({"sub": "a", "exp": now() + 600}));
    for (auth, status) in [(None, "401"), (Some(token), "101")] {
        let mut stream = connect().await;
        let mut request = format!(
            "GET /ws HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {KEY}\r\n"
        );
        if let Some(token) = &auth {
            request.push_str(&format!("Authorization: Bearer {token}\r\n"));
        }
        request.push_str("\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut byte = [0u8; 1];
            stream.read_exact(&mut byte).await.unwrap();
            head.push(byte[0]);
        }
        let head = String::from_utf8(head).unwrap();
        assert_eq!(&head[9..12], status, "{head}");
        if auth.is_some() {
            send_frame(&mut stream, 1, br#"{"type":"ping","id":"tls"}"#).await;
            assert_eq!(
                read_frame(&mut stream).await,
                (1, br#"{"type":"pong","id":"tls"}"#.to_vec())
            );
        }
    }
    server.stop().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn metrics_on_the_listener_or_the_admin_listener() {
    let server = Server::start(production()).await;
    assert_eq!(upgrade(server.addr, "/ws", &[]).await.status, 401);
    let reply = request(server.addr, "GET", "/metrics", &[]).await;
    assert_eq!(reply.status, 200);
    assert!(
        reply
            .body
            .contains(r#"tether_upgrades_total{result="refused",code="missing_token"}"#),
        "{}",
        reply.body
    );
    assert!(reply.body.contains("# TYPE tether_upgrades_total counter"));
    server.stop().await;

    // With an admin listener, /metrics is there and not on the public one.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (addr, admin_addr) = (listener.local_addr().unwrap(), admin.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(tether_gateway::server::serve_with(
        production(),
        listener,
        Some(admin),
        async {
            let _ = stopped.await;
        },
    ));
    assert_eq!(
        request(admin_addr, "GET", "/metrics", &[]).await.status,
        200
    );
    assert_eq!(request(admin_addr, "GET", "/health", &[]).await.status, 200);
    assert_eq!(request(addr, "GET", "/metrics", &[]).await.status, 404);
    assert_eq!(request(addr, "GET", "/health", &[]).await.status, 200);
    stop.send(()).unwrap();
    tokio::time::timeout(TIMEOUT, task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn connections_close_when_the_token_expires() {
    let mut config = production();
    config.auth.leeway_secs = 0;
    let server = Server::start(config).await;
    // At least one whole second left, so that the pong comes before the close.
    let token = format!("Bearer {}", hs256(&json!({"sub": "a", "exp": now() + 2})));
    let mut reply = upgrade(server.addr, "/ws", &[("Authorization", &token)]).await;
    assert_eq!(reply.status, 101);
    send_frame(&mut reply.stream, 1, br#"{"type":"ping"}"#).await;
    assert_eq!(read_frame(&mut reply.stream).await.1, br#"{"type":"pong"}"#);
    let (opcode, payload) = read_frame(&mut reply.stream).await;
    assert_eq!((opcode, close_code(&payload)), (8, 1008));
    assert!(String::from_utf8_lossy(&payload[2..]).contains("token expired"));
    drop(reply);
    server.stop().await;
}

#[tokio::test]
async fn per_ip_limit_behind_a_trusted_proxy() {
    let mut config = Config {
        limits: Limits {
            max_connections_per_ip: 1,
            ..Limits::default()
        },
        ..Config::default()
    };
    // Untrusted: X-Forwarded-For is ignored, both count as 127.0.0.1.
    let server = Server::start(config.clone()).await;
    let a = upgrade(server.addr, "/ws", &[("X-Forwarded-For", "1.1.1.1")]).await;
    assert_eq!(a.status, 101);
    let b = upgrade(server.addr, "/ws", &[("X-Forwarded-For", "2.2.2.2")]).await;
    assert_eq!(b.status, 429);
    drop((a, b));
    server.stop().await;

    // Trusted: each client counts on its own.
    config.trusted_proxies = vec!["127.0.0.0/8".to_owned()];
    let server = Server::start(config).await;
    let a = upgrade(server.addr, "/ws", &[("X-Forwarded-For", "1.1.1.1")]).await;
    assert_eq!(a.status, 101);
    let b = upgrade(server.addr, "/ws", &[("X-Forwarded-For", "2.2.2.2")]).await;
    assert_eq!(b.status, 101);
    let c = upgrade(server.addr, "/ws", &[("X-Forwarded-For", "1.1.1.1")]).await;
    assert_eq!(c.status, 429);
    drop((a, b, c));
    server.stop().await;
}

/// Dev mode without a secret: `GET /dev/token?user=NAME` gives a token for NAME (what the
/// demo page connects with), accepted at the upgrade as that user; a token signed with
/// another secret is not. Outside dev mode there is no such path.
#[tokio::test]
async fn dev_tokens_in_dev_mode_only() {
    let server = Server::start(Config::default()).await;
    let reply = request(server.addr, "GET", "/dev/token?user=alice", &[]).await;
    assert_eq!(reply.status, 200, "{}", reply.head);
    let token = reply.json()["token"].as_str().unwrap().to_owned();
    let offer = format!("tether.v1, bearer.{token}");
    let mut ws = upgrade(server.addr, "/ws", &[("Sec-WebSocket-Protocol", &offer)]).await;
    assert_eq!(ws.status, 101, "{}", ws.head);
    // Joining needs an identified user (the default rule): anonymous would be refused.
    send_frame(
        &mut ws.stream,
        1,
        br#"{"type":"join","room":"lobby","id":1}"#,
    )
    .await;
    let (_, payload) = read_frame(&mut ws.stream).await;
    let ack: Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(ack["type"], "ack", "{ack}");
    send_frame(
        &mut ws.stream,
        1,
        br#"{"type":"publish","room":"lobby","content":"hi"}"#,
    )
    .await;
    let (_, payload) = read_frame(&mut ws.stream).await;
    let message: Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(message["from"], "alice", "{message}");
    drop(ws);
    let reply = request(server.addr, "GET", "/dev/token?user=", &[]).await;
    assert_eq!(reply.status, 400, "{}", reply.head);
    assert_eq!(reply.json()["code"], "invalid_user_id");
    let forged = format!(
        "tether.v1, bearer.{}",
        hs256(&json!({"sub": "mallory", "exp": now() + 600}))
    );
    let reply = upgrade(server.addr, "/ws", &[("Sec-WebSocket-Protocol", &forged)]).await;
    assert_eq!(reply.status, 401, "{}", reply.head);
    server.stop().await;

    let server = Server::start(production()).await;
    let reply = request(server.addr, "GET", "/dev/token?user=alice", &[]).await;
    assert_eq!(reply.status, 404, "{}", reply.head);
    assert_eq!(reply.json()["code"], "not_found");
    server.stop().await;
}
