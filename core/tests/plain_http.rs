//! `Config::plain_http`: a server that also answers plain HTTP requests (a `/health` check
//! on the WebSocket port) through `Event::Request` and `reject`.

mod util;

use std::time::Instant;
use tether_core::{
    Accept, CloseReason, Config, Connection, Event, HandshakeError, Message, Reject, SendError,
    State, Transmit,
};
use util::Pair;

fn plain_config() -> Config {
    let mut cfg = Config::default();
    cfg.plain_http = true;
    cfg
}

/// Everything the connection writes, and whether it asked to shut the transport down.
fn output(conn: &mut Connection) -> (String, bool) {
    let mut buf = Vec::new();
    let mut shutdown = false;
    while let Some(t) = conn.poll_transmit(&mut buf) {
        shutdown |= t == Transmit::Shutdown;
    }
    (String::from_utf8(buf).unwrap(), shutdown)
}

/// A server with `cfg` fed `head`: its first event.
fn serve(cfg: Config, head: &str) -> (Connection, Option<Event>) {
    let now = Instant::now();
    let mut server = Connection::server(cfg, now);
    server.handle_input(now, head.as_bytes());
    let event = server.poll_event();
    (server, event)
}

const HEALTH: &str = "GET /health?probe=1 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: lb\r\n\r\n";

#[test]
fn rfc6455_4_2_1_plain_request_fails_the_handshake_by_default() {
    let (mut server, event) = serve(Config::default(), HEALTH);
    match event {
        Some(Event::Closed(CloseReason::HandshakeFailed(HandshakeError::BadRequest(_)))) => {}
        other => panic!("{other:?}"),
    }
    let (out, shutdown) = output(&mut server);
    assert!(out.starts_with("HTTP/1.1 400 "), "{out}");
    assert!(shutdown);
}

#[test]
fn rfc6455_4_2_1_plain_request_is_reported_and_answered_with_reject() {
    let now = Instant::now();
    let (mut server, event) = serve(plain_config(), HEALTH);
    let Some(Event::Request(request)) = event else {
        panic!("{event:?}");
    };
    assert!(!request.is_upgrade());
    assert_eq!(request.method(), "GET");
    assert_eq!(request.path(), "/health");
    assert_eq!(request.query_param("probe").as_deref(), Some("1"));
    assert_eq!(request.header_str("user-agent"), Some("lb"));
    assert_eq!(request.key(), "");
    assert_eq!(server.state(), State::Accepting);

    // It cannot be accepted; the request still waits for its answer.
    match server.accept(now, Accept::new()) {
        Err(SendError::Handshake(HandshakeError::NotAnUpgrade)) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(server.state(), State::Accepting);
    assert!(output(&mut server).0.is_empty());

    server
        .reject(
            now,
            Reject::new(200)
                .header("Content-Type", "text/plain")
                .body("ok\n"),
        )
        .unwrap();
    let (out, shutdown) = output(&mut server);
    assert_eq!(
        out,
        "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 3\r\n\
         Content-Type: text/plain\r\n\r\nok\n"
    );
    assert!(shutdown);
    assert!(matches!(
        server.poll_event(),
        Some(Event::Closed(CloseReason::Rejected { status: 200 }))
    ));
    assert_eq!(server.state(), State::Closed);
}

#[test]
fn rfc9110_15_3_5_no_content_answer_has_no_content_length() {
    let now = Instant::now();
    let (mut server, event) = serve(plain_config(), HEALTH);
    assert!(matches!(event, Some(Event::Request(_))));
    server
        .reject(now, Reject::new(204).body("dropped"))
        .unwrap();
    assert_eq!(
        output(&mut server).0,
        "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n"
    );
}

#[test]
fn rfc9112_3_any_method_and_http_1_0_without_host_are_plain_requests() {
    for head in [
        "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
        "HEAD / HTTP/1.0\r\n\r\n",
        "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET http://x/health HTTP/1.1\r\nHost: x\r\n\r\n",
    ] {
        let (_, event) = serve(plain_config(), head);
        match event {
            Some(Event::Request(r)) => {
                assert!(!r.is_upgrade(), "{head}");
                assert!(head.starts_with(r.method()), "{head}");
            }
            other => panic!("{head}: {other:?}"),
        }
    }
}

#[test]
fn rfc9112_3_2_malformed_plain_requests_still_fail() {
    for head in [
        // HTTP/1.1 requires exactly one Host.
        "GET / HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        // Not a request target.
        "GET health HTTP/1.1\r\nHost: x\r\n\r\n",
    ] {
        let (mut server, event) = serve(plain_config(), head);
        assert!(
            matches!(
                event,
                Some(Event::Closed(CloseReason::HandshakeFailed(
                    HandshakeError::BadRequest(_)
                )))
            ),
            "{head}: {event:?}"
        );
        assert!(output(&mut server).0.starts_with("HTTP/1.1 400 "), "{head}");
    }
}

#[test]
fn rfc6455_4_2_1_upgrade_requests_are_checked_as_upgrades_with_plain_http_on() {
    // `Upgrade: websocket` makes it an upgrade request: its faults are still 400 / 405.
    let bad_key = "GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                   Sec-WebSocket-Key: short\r\nSec-WebSocket-Version: 13\r\n\r\n";
    let (mut server, event) = serve(plain_config(), bad_key);
    assert!(matches!(
        event,
        Some(Event::Closed(CloseReason::HandshakeFailed(
            HandshakeError::BadRequest(_)
        )))
    ));
    assert!(output(&mut server).0.starts_with("HTTP/1.1 400 "));
    let post = "POST /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    let (mut server, event) = serve(plain_config(), post);
    assert!(matches!(
        event,
        Some(Event::Closed(CloseReason::HandshakeFailed(
            HandshakeError::MethodNotAllowed
        )))
    ));
    assert!(output(&mut server).0.starts_with("HTTP/1.1 405 "));

    // A valid upgrade opens as usual.
    let mut pair = Pair::new(Config::default(), plain_config());
    pair.drive();
    let Some(Event::Request(request)) = pair.server.events.first() else {
        panic!("{:?}", pair.server.events);
    };
    assert!(request.is_upgrade());
    pair.server.conn.accept(pair.now, Accept::new()).unwrap();
    pair.drive();
    assert!(matches!(
        pair.client.events.first(),
        Some(Event::Connected(_))
    ));
    pair.client
        .conn
        .send(pair.now, Message::text("hi"))
        .unwrap();
    pair.drive();
    assert_eq!(pair.server.messages(), [Message::text("hi")]);
}
