//! The `hyper` feature: WebSockets served from an axum router through `upgrade`, checked
//! with tether's own client and with raw HTTP requests.

use axum::Router;
use axum::extract::{Request, State};
use axum::response::Response;
use axum::routing::{any, get};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tether_tokio::{
    Accept, ClientRequest, Config, DeflateParams, Error, HandshakeError, Message, connect_with,
    error_response, negotiate,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What the server side saw of each connection: the negotiated subprotocol and deflate
/// parameters (from `Upgrading::negotiated`) and the `WebSocket`'s own view of deflate.
type Seen = Arc<Mutex<Vec<(Option<String>, Option<DeflateParams>, Option<DeflateParams>)>>>;

#[derive(Clone)]
struct App {
    config: Config,
    seen: Seen,
}

async fn ws(State(app): State<App>, mut request: Request) -> Response {
    // Accept "chat" when offered; an offer of "bogus" makes the application choose a
    // subprotocol that was not offered (its mistake: 500).
    let offered = request
        .headers()
        .get("sec-websocket-protocol")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let accept = if offered.contains("chat") {
        Accept::new().subprotocol("chat").header("X-Extra", "1")
    } else if offered.contains("bogus") {
        Accept::new().subprotocol("other")
    } else {
        Accept::new()
    };
    match tether_tokio::upgrade(&mut request, &app.config, accept) {
        Ok((response, upgrading)) => {
            let negotiated = upgrading.negotiated().clone();
            let seen = app.seen.clone();
            tokio::spawn(async move {
                let mut ws = upgrading.await.unwrap();
                assert_eq!(
                    ws.subprotocol(),
                    negotiated.subprotocol(),
                    "the WebSocket knows its subprotocol"
                );
                seen.lock().unwrap().push((
                    negotiated.subprotocol().map(str::to_owned),
                    negotiated.deflate_params(),
                    ws.deflate_params(),
                ));
                while let Some(Ok(message)) = ws.recv().await {
                    if matches!(message, Message::Text(_) | Message::Binary(_)) {
                        let _ = ws.send(message).await;
                    }
                }
            });
            response
        }
        Err(response) => response,
    }
}

async fn serve(deflate: bool) -> (SocketAddr, Seen) {
    let mut config = Config::default();
    config.deflate.enabled = deflate;
    let seen = Seen::default();
    let app = Router::new()
        .route("/ws", any(ws))
        .route("/health", get(|| async { "ok" }))
        .with_state(App {
            config,
            seen: seen.clone(),
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, seen)
}

/// Sends a raw request head and returns the whole response as text (the server closes or
/// the response is complete within the read).
async fn raw(addr: SocketAddr, head: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut buf = vec![0; 4096];
    let n = stream.read(&mut buf).await.unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

fn deflate_client() -> Config {
    let mut config = Config::default();
    config.deflate.enabled = true;
    config
}

#[tokio::test]
async fn rfc7692_axum_upgrade_negotiates_deflate_and_subprotocol_and_echoes() {
    let (addr, seen) = serve(true).await;
    let request = ClientRequest::new(&format!("ws://{addr}/ws"))
        .unwrap()
        .subprotocol("chat");
    let (mut client, response) = connect_with(request, deflate_client()).await.unwrap();
    assert_eq!(response.status(), 101);
    assert_eq!(response.subprotocol(), Some("chat"));
    assert_eq!(response.header("x-extra"), Some(&b"1"[..]));
    let extensions = std::str::from_utf8(response.header("sec-websocket-extensions").unwrap())
        .unwrap()
        .to_owned();
    assert!(extensions.starts_with("permessage-deflate"), "{extensions}");
    assert!(client.deflate_params().is_some());

    for size in [0, 125, 126, 65536, 1 << 20] {
        let text = "tether ".repeat(size / 7 + 1)[..size].to_owned();
        client.send_text(text.clone()).await.unwrap();
        match client.recv().await {
            Some(Ok(Message::Text(t))) => assert_eq!(t, text.as_str()),
            other => panic!("{other:?}"),
        }
        let binary: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        client.send_binary(binary.clone()).await.unwrap();
        match client.recv().await {
            Some(Ok(Message::Binary(b))) => assert_eq!(b, binary),
            other => panic!("{other:?}"),
        }
    }
    client.close(1000, "bye").await.unwrap();
    assert!(client.recv().await.is_none());

    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    let (subprotocol, negotiated, on_socket) = &seen[0];
    assert_eq!(subprotocol.as_deref(), Some("chat"));
    assert_eq!(negotiated, &client.deflate_params());
    assert_eq!(
        on_socket, negotiated,
        "the WebSocket runs with what was negotiated"
    );
}

#[tokio::test]
async fn deflate_disabled_on_the_server_is_not_negotiated() {
    let (addr, seen) = serve(false).await;
    let request = ClientRequest::new(&format!("ws://{addr}/ws")).unwrap();
    let (mut client, response) = connect_with(request, deflate_client()).await.unwrap();
    assert_eq!(response.header("sec-websocket-extensions"), None);
    assert_eq!(client.deflate_params(), None);
    client.send_text("plain").await.unwrap();
    assert!(matches!(client.recv().await, Some(Ok(Message::Text(t))) if t == "plain"));
    client.close(1000, "").await.unwrap();
    assert!(client.recv().await.is_none());
    assert_eq!(seen.lock().unwrap()[0].1, None);
}

#[tokio::test]
async fn rfc6455_4_2_1_bad_requests_get_their_status_and_the_health_route_still_works() {
    let (addr, _) = serve(true).await;
    let head = |method: &str, version: &str, extra: &str| {
        format!(
            "{method} /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: {version}\r\n{extra}\r\n"
        )
    };
    let response = raw(addr, &head("GET", "8", "")).await;
    assert!(response.starts_with("HTTP/1.1 426"), "{response}");
    assert!(
        response
            .to_ascii_lowercase()
            .contains("sec-websocket-version: 13\r\n"),
        "{response}"
    );
    let response = raw(addr, &head("POST", "13", "Content-Length: 0\r\n")).await;
    assert!(response.starts_with("HTTP/1.1 405"), "{response}");
    assert!(response.to_ascii_lowercase().contains("allow: get\r\n"));
    let response = raw(
        addr,
        "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .await;
    assert!(response.starts_with("HTTP/1.1 400"), "{response}");
    let response = raw(
        addr,
        &head("GET", "13", "Sec-WebSocket-Protocol: bogus\r\n"),
    )
    .await;
    assert!(response.starts_with("HTTP/1.1 500"), "{response}");
    let response = raw(
        addr,
        "GET /ws HTTP/1.0\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .await;
    assert!(response.starts_with("HTTP/1.0 400"), "{response}");

    let response = raw(addr, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.ends_with("ok"), "{response}");

    // The client sees a rejection, with the status.
    let request = ClientRequest::new(&format!("ws://{addr}/ws"))
        .unwrap()
        .subprotocol("bogus");
    match connect_with(request, Config::default()).await {
        Err(Error::Rejected { status, .. }) => assert_eq!(status, 500),
        other => panic!("{:?}", other.map(|(_, r)| r)),
    }
}

#[test]
fn negotiate_and_error_response_build_http_responses() {
    let mut headers = http::HeaderMap::new();
    for (name, value) in [
        ("upgrade", "websocket"),
        ("connection", "keep-alive, Upgrade"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ("sec-websocket-version", "13"),
        ("sec-websocket-protocol", "a"),
        ("sec-websocket-protocol", "b"),
        (
            "sec-websocket-extensions",
            "permessage-deflate; client_max_window_bits",
        ),
    ] {
        headers.append(name, http::HeaderValue::from_static(value));
    }
    let config = deflate_client();
    let negotiated = negotiate(
        &http::Method::GET,
        &headers,
        &config,
        Accept::new().subprotocol("b"),
    )
    .unwrap();
    assert_eq!(negotiated.subprotocol(), Some("b"));
    assert!(negotiated.deflate_params().is_some());
    let response: http::Response<()> = negotiated.response();
    assert_eq!(response.status(), http::StatusCode::SWITCHING_PROTOCOLS);
    let h = response.headers();
    assert_eq!(h["upgrade"], "websocket");
    assert_eq!(h["connection"], "Upgrade");
    assert_eq!(h["sec-websocket-accept"], "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    assert_eq!(h["sec-websocket-protocol"], "b");
    assert_eq!(h["sec-websocket-extensions"], "permessage-deflate");

    headers.insert("sec-websocket-version", http::HeaderValue::from_static("7"));
    let err = negotiate(&http::Method::GET, &headers, &config, Accept::new()).unwrap_err();
    let response: http::Response<()> = error_response(&err);
    assert_eq!(response.status(), http::StatusCode::UPGRADE_REQUIRED);
    assert_eq!(response.headers()["sec-websocket-version"], "13");
    let response: http::Response<()> = error_response(&HandshakeError::InvalidSubprotocol);
    assert_eq!(response.status(), http::StatusCode::INTERNAL_SERVER_ERROR);
}
