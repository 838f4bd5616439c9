//! `negotiate_upgrade`: answering an upgrade request that another HTTP server parsed
//! (hyper, axum) exactly as `Connection::accept` answers one the core parsed itself.

use std::time::Instant;
use tether_core::{
    Accept, ClientRequest, Config, Connection, Event, HandshakeError, Header, Message, Role,
    Transmit, UpgradeResponse, negotiate_upgrade,
};

const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

fn deflate_config() -> Config {
    let mut config = Config::default();
    config.deflate.enabled = true;
    config
}

/// The fields of a valid upgrade request, plus `extra`.
fn request_headers<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut headers = vec![
        ("Host", "example.com"),
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", KEY),
        ("Sec-WebSocket-Version", "13"),
    ];
    headers.extend_from_slice(extra);
    headers
}

fn negotiate(
    method: &str,
    headers: &[(&str, &str)],
    config: &Config,
    accept: &Accept,
) -> Result<UpgradeResponse, HandshakeError> {
    negotiate_upgrade(
        method,
        headers.iter().map(|&(n, v)| (n, v.as_bytes())),
        config,
        accept,
    )
}

fn field<'a>(headers: &'a [Header], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case(name))
        .map(|h| std::str::from_utf8(&h.value).unwrap())
}

/// The header fields of the 101 response that `Connection::accept` writes for the same
/// request, in order.
fn accept_on_connection(
    headers: &[(&str, &str)],
    config: &Config,
    accept: Accept,
) -> Vec<(String, String)> {
    let now = Instant::now();
    let mut head = String::from("GET /chat HTTP/1.1\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let mut server = Connection::server(config.clone(), now);
    server.handle_input(now, head.as_bytes());
    assert!(matches!(server.poll_event(), Some(Event::Request(_))));
    server.accept(now, accept).unwrap();
    let mut out = Vec::new();
    while server.poll_transmit(&mut out).is_some() {}
    let text = String::from_utf8(out).unwrap();
    let head = text.strip_suffix("\r\n\r\n").unwrap();
    head.lines()
        .skip(1)
        .map(|line| {
            let (name, value) = line.split_once(": ").unwrap();
            (name.to_owned(), value.to_owned())
        })
        .collect()
}

fn as_pairs(answer: &UpgradeResponse) -> Vec<(String, String)> {
    answer
        .headers()
        .iter()
        .map(|h| (h.name.clone(), String::from_utf8(h.value.clone()).unwrap()))
        .collect()
}

#[test]
fn rfc6455_4_2_2_answer_carries_accept_key_upgrade_and_connection() {
    let answer = negotiate(
        "GET",
        &request_headers(&[]),
        &Config::default(),
        &Accept::new(),
    )
    .unwrap();
    assert_eq!(
        as_pairs(&answer),
        [
            ("Upgrade".to_owned(), "websocket".to_owned()),
            ("Connection".to_owned(), "Upgrade".to_owned()),
            (
                "Sec-WebSocket-Accept".to_owned(),
                "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=".to_owned()
            ),
        ]
    );
    assert_eq!(answer.subprotocol(), None);
    assert_eq!(answer.deflate_params(), None);
}

#[test]
fn same_answer_as_connection_accept() {
    let offers = [
        "permessage-deflate",
        "permessage-deflate; client_max_window_bits",
        "permessage-deflate; server_max_window_bits=10; client_no_context_takeover",
        "x-webkit-deflate-frame, permessage-deflate; server_no_context_takeover",
        "permessage-deflate; unknown_param, permessage-deflate",
    ];
    let mut configs = vec![Config::default(), deflate_config()];
    let mut small = deflate_config();
    small.deflate.server_max_window_bits = 9;
    small.deflate.client_max_window_bits = 11;
    configs.push(small);
    for config in &configs {
        for offer in offers {
            let headers = request_headers(&[
                ("Sec-WebSocket-Extensions", offer),
                ("Sec-WebSocket-Protocol", "chat, superchat"),
            ]);
            let accept = Accept::new()
                .subprotocol("superchat")
                .header("Set-Cookie", "id=1");
            let answer = negotiate("GET", &headers, config, &accept).unwrap();
            assert_eq!(
                as_pairs(&answer),
                accept_on_connection(&headers, config, accept),
                "offer {offer:?}, deflate {:?}",
                config.deflate
            );
            assert_eq!(answer.subprotocol(), Some("superchat"));
            assert_eq!(
                answer.deflate_params().is_some(),
                config.deflate.enabled,
                "{offer}"
            );
        }
    }
}

#[test]
fn rfc7692_5_deflate_negotiated_when_enabled_and_offered() {
    let headers = request_headers(&[(
        "Sec-WebSocket-Extensions",
        "permessage-deflate; client_max_window_bits",
    )]);
    let answer = negotiate("GET", &headers, &deflate_config(), &Accept::new()).unwrap();
    assert_eq!(
        field(answer.headers(), "sec-websocket-extensions"),
        Some("permessage-deflate")
    );
    let params = answer.deflate_params().unwrap();
    assert_eq!(
        (params.server_max_window_bits, params.client_max_window_bits),
        (15, 15)
    );

    // Disabled: the offer is ignored.
    let answer = negotiate("GET", &headers, &Config::default(), &Accept::new()).unwrap();
    assert_eq!(field(answer.headers(), "sec-websocket-extensions"), None);
    assert_eq!(answer.deflate_params(), None);

    // Enabled but not offered.
    let answer = negotiate(
        "GET",
        &request_headers(&[]),
        &deflate_config(),
        &Accept::new(),
    )
    .unwrap();
    assert_eq!(answer.deflate_params(), None);
}

#[test]
fn rfc6455_4_2_1_field_names_are_case_insensitive_and_lists_split() {
    let headers = [
        ("upgrade", "WebSocket"),
        ("CONNECTION", "keep-alive, Upgrade"),
        ("sec-websocket-key", KEY),
        ("sec-websocket-version", "13"),
        ("sec-websocket-protocol", "a"),
        ("sec-websocket-protocol", "b"),
        ("sec-websocket-extensions", "x-unknown"),
        ("sec-websocket-extensions", "permessage-deflate"),
    ];
    let answer = negotiate(
        "GET",
        &headers,
        &deflate_config(),
        &Accept::new().subprotocol("b"),
    )
    .unwrap();
    assert_eq!(field(answer.headers(), "sec-websocket-protocol"), Some("b"));
    assert!(answer.deflate_params().is_some());
}

#[test]
fn rfc6455_4_2_1_violations_give_the_status_to_answer() {
    let without = |name: &str| {
        request_headers(&[])
            .into_iter()
            .filter(|(n, _)| !n.eq_ignore_ascii_case(name))
            .collect::<Vec<_>>()
    };
    let with = |name: &'static str, value: &'static str| {
        let mut headers = without(name);
        headers.push((name, value));
        headers
    };
    type Fields = Vec<(&'static str, &'static str)>;
    let cases: Vec<(&str, Fields, u16)> = vec![
        ("POST", request_headers(&[]), 405),
        ("GET", without("Upgrade"), 400),
        ("GET", with("Upgrade", "h2c"), 400),
        ("GET", without("Connection"), 400),
        ("GET", with("Connection", "keep-alive"), 400),
        ("GET", without("Sec-WebSocket-Key"), 400),
        ("GET", with("Sec-WebSocket-Key", "c2hvcnQ="), 400),
        ("GET", request_headers(&[("Sec-WebSocket-Key", KEY)]), 400),
        ("GET", without("Sec-WebSocket-Version"), 426),
        ("GET", with("Sec-WebSocket-Version", "8"), 426),
        ("GET", request_headers(&[("Content-Length", "5")]), 400),
        (
            "GET",
            request_headers(&[("Transfer-Encoding", "chunked")]),
            400,
        ),
    ];
    for (method, headers, status) in cases {
        let err = negotiate(method, &headers, &deflate_config(), &Accept::new()).unwrap_err();
        assert_eq!(
            err.http_status(),
            Some(status),
            "{method} {headers:?}: {err}"
        );
        let expected: &[(&str, &str)] = match status {
            426 => &[("Sec-WebSocket-Version", "13")],
            405 => &[("Allow", "GET")],
            _ => &[],
        };
        assert_eq!(err.response_headers(), expected, "{err}");
    }
}

#[test]
fn rfc6455_4_2_2_accept_must_choose_an_offered_subprotocol() {
    let headers = request_headers(&[("Sec-WebSocket-Protocol", "chat")]);
    let err = negotiate(
        "GET",
        &headers,
        &Config::default(),
        &Accept::new().subprotocol("other"),
    )
    .unwrap_err();
    assert!(matches!(err, HandshakeError::InvalidSubprotocol), "{err}");
    assert_eq!(
        err.http_status(),
        None,
        "the application's mistake, not the client's"
    );

    let err = negotiate(
        "GET",
        &headers,
        &Config::default(),
        &Accept::new().header("X-Evil", "a\r\nb: c"),
    )
    .unwrap_err();
    assert!(matches!(err, HandshakeError::InvalidHeader), "{err}");
}

/// Moves everything `from` wants to write into `to`.
fn pump(from: &mut Connection, to: &mut Connection, now: Instant) {
    let mut buf = Vec::new();
    while let Some(t) = from.poll_transmit(&mut buf) {
        if t == Transmit::Data {
            to.handle_input(now, &buf);
            buf.clear();
        }
    }
}

#[test]
fn rfc7692_negotiated_params_open_a_working_compressed_connection() {
    let now = Instant::now();
    let config = deflate_config();
    let request = ClientRequest::new("ws://example.com/chat")
        .unwrap()
        .subprotocol("chat");
    let mut client = Connection::client(config.clone(), &request, [3; 32], now).unwrap();

    // The HTTP server's part: parse the request head (here by hand), answer it.
    let mut head = Vec::new();
    while client.poll_transmit(&mut head).is_some() {}
    let head = String::from_utf8(head).unwrap();
    let mut lines = head.strip_suffix("\r\n\r\n").unwrap().lines();
    let method = lines.next().unwrap().split(' ').next().unwrap().to_owned();
    let headers: Vec<(&str, &str)> = lines.map(|l| l.split_once(": ").unwrap()).collect();
    let answer = negotiate(
        &method,
        &headers,
        &config,
        &Accept::new().subprotocol("chat"),
    )
    .unwrap();
    let mut response = String::from("HTTP/1.1 101 Switching Protocols\r\n");
    for h in answer.headers() {
        response.push_str(&format!(
            "{}: {}\r\n",
            h.name,
            String::from_utf8_lossy(&h.value)
        ));
    }
    response.push_str("\r\n");
    client.handle_input(now, response.as_bytes());
    assert!(matches!(client.poll_event(), Some(Event::Connected(_))));
    assert_eq!(client.subprotocol(), Some("chat"));
    assert_eq!(client.deflate_params(), answer.deflate_params());

    // The upgraded transport: an open server connection with the negotiated parameters.
    let mut server = Connection::open(config, Role::Server, answer.deflate_params(), [0; 32], now);
    let text = "compress me ".repeat(200);
    server.send(now, Message::text(text.clone())).unwrap();
    let mut wire = Vec::new();
    while server.poll_transmit(&mut wire).is_some() {}
    assert_eq!(
        wire[0] & 0x40,
        0x40,
        "RSV1: the message went out compressed"
    );
    assert!(wire.len() < text.len() / 4);
    client.handle_input(now, &wire);
    match client.poll_event() {
        Some(Event::Message(Message::Text(t))) => assert_eq!(t, text.as_str()),
        other => panic!("{other:?}"),
    }
    client
        .send(now, Message::binary(text.clone().into_bytes()))
        .unwrap();
    pump(&mut client, &mut server, now);
    match server.poll_event() {
        Some(Event::Message(Message::Binary(b))) => assert_eq!(b, text.as_bytes()),
        other => panic!("{other:?}"),
    }
}
