//! Target `handshake_response`: the client's validation of the server's response
//! (RFC 6455 §4.1, RFC 7692 §7.1), through `Connection::client`, `handle_input` and
//! `handle_eof`, on arbitrary bytes in arbitrary chunks.
//!
//! Invariants: `Event::Connected` only for a response whose status is 101, with `Upgrade:
//! websocket`, `Connection: upgrade`, and exactly one `Sec-WebSocket-Accept` equal to the
//! value computed here from the key read back from the client's own request; a subprotocol
//! only if offered, a single one; an extension only if offered, and deflate parameters
//! exactly when permessage-deflate was accepted; a non-101 response is reported with its
//! status; buffers stay bounded; nothing follows the terminal event.

use super::enc::Enc;
use super::wire::{self, OutputChecker};
use arbitrary::{Arbitrary, Unstructured};
use std::time::Instant;
use tether_core::{
    ClientRequest, CloseReason, Config, Connection, DeflateConfig, Event, HandshakeError, Role,
    State,
};

/// The subprotocols a client may offer; bit `i` of [`ResponseInput::protocols`] offers the
/// `i`th.
pub const PROTOCOLS: [&str; 3] = ["chat", "superchat", "v2.json"];

/// The client's seed: fixed, so that the key (and the matching accept value) is the same in
/// every run and seeds can carry the right answer.
pub const SEED: [u8; 32] = [7; 32];

/// The client's configuration, the chunking and the server's bytes.
#[derive(Arbitrary, Debug, PartialEq, Eq)]
pub struct ResponseInput<'a> {
    /// Offer permessage-deflate.
    pub deflate: bool,
    /// Which of [`PROTOCOLS`] to offer (bit mask).
    pub protocols: u8,
    /// End the stream after the data.
    pub eof: bool,
    /// Chunk lengths (modulo 2048, plus one).
    pub cuts: Vec<u16>,
    /// The bytes the server sends.
    pub data: &'a [u8],
}

/// What happened.
#[derive(Debug, Default)]
pub struct ResponseOutcome {
    /// Whether `Event::Connected` was reported.
    pub connected: bool,
    /// The status of a rejection, if the handshake failed with one.
    pub rejected: Option<u16>,
    /// Whether a terminal event was seen.
    pub closed: bool,
    /// Messages received after the handshake.
    pub messages: usize,
}

/// Writes `input` in the format [`check_bytes`] reads.
pub fn encode(input: &ResponseInput<'_>) -> Vec<u8> {
    Enc::new()
        .bool(input.deflate)
        .u8(input.protocols)
        .bool(input.eof)
        .u16s(&input.cuts)
        .rest(input.data)
        .finish()
}

/// Decodes fuzzer bytes and runs [`check`].
pub fn check_bytes(data: &[u8]) -> ResponseOutcome {
    match ResponseInput::arbitrary_take_rest(Unstructured::new(data)) {
        Ok(input) => check(&input),
        Err(_) => ResponseOutcome::default(),
    }
}

/// The client for `deflate` and `protocols`, and the request head it wrote.
pub fn client(deflate: bool, protocols: u8, now: Instant) -> (Connection, Vec<u8>) {
    let mut request = ClientRequest::new("ws://example.com/chat").expect("valid URL");
    for (i, p) in PROTOCOLS.iter().enumerate() {
        if protocols & (1 << i) != 0 {
            request = request.subprotocol(*p);
        }
    }
    let mut cfg = Config::default();
    if deflate {
        cfg.deflate = DeflateConfig::enabled();
    }
    let mut conn = Connection::client(cfg, &request, SEED, now).expect("client");
    let mut head = Vec::new();
    while conn.poll_transmit(&mut head).is_some() {}
    (conn, head)
}

/// The `Sec-WebSocket-Key` the client sends, read from its request.
pub fn client_key() -> Vec<u8> {
    let (_, head) = client(false, 0, Instant::now());
    let parsed = wire::parse_head(&head).expect("request head");
    parsed
        .values("sec-websocket-key")
        .next()
        .expect("key")
        .to_vec()
}

/// Feeds the response to a client and checks the invariants of the module docs.
pub fn check(input: &ResponseInput<'_>) -> ResponseOutcome {
    let now = Instant::now();
    let (mut conn, request) = client(input.deflate, input.protocols, now);
    let request = wire::parse_head(&request).expect("the client's request parses");
    let key = request.values("sec-websocket-key").next().expect("a key");
    assert!(wire::key_is_valid(key));
    let expected = wire::accept_for(key);
    let offered = request.tokens("sec-websocket-protocol");
    let limits = conn.config().limits.handshake;
    let bound = limits.max_size + limits.max_body + 4096;
    let mut outcome = ResponseOutcome::default();
    let mut frames = None;
    for chunk in super::chunks(input.data, &input.cuts, 2048) {
        conn.handle_input(now, chunk);
        assert!(
            conn.buffer_capacity() <= bound.max(conn.buffered_input() + 4096),
            "buffers hold {} bytes",
            conn.buffer_capacity()
        );
        drain(
            &mut conn,
            input,
            &expected,
            &offered,
            &mut outcome,
            &mut frames,
        );
    }
    if input.eof {
        conn.handle_eof(now);
    }
    drain(
        &mut conn,
        input,
        &expected,
        &offered,
        &mut outcome,
        &mut frames,
    );
    if outcome.connected {
        assert_ne!(conn.state(), State::Handshake);
    }
    outcome
}

fn drain(
    conn: &mut Connection,
    input: &ResponseInput<'_>,
    expected: &str,
    offered: &[String],
    outcome: &mut ResponseOutcome,
    frames: &mut Option<OutputChecker>,
) {
    while let Some(event) = conn.poll_event() {
        assert!(!outcome.closed, "event after the terminal one: {event:?}");
        match event {
            Event::Connected(resp) => {
                assert!(!outcome.connected, "connected twice");
                outcome.connected = true;
                assert_eq!(resp.status(), 101);
                let head = validate_independently(input.data, expected, offered, input.deflate);
                let accepted_deflate = !head.tokens("sec-websocket-extensions").is_empty();
                assert_eq!(conn.deflate_params().is_some(), accepted_deflate);
                let protocol = head.tokens("sec-websocket-protocol").pop();
                assert_eq!(
                    conn.subprotocol().map(str::to_ascii_lowercase),
                    protocol,
                    "subprotocol"
                );
                *frames = Some(OutputChecker::new(Role::Client, accepted_deflate));
            }
            Event::Closed(reason) => {
                outcome.closed = true;
                if let CloseReason::HandshakeFailed(HandshakeError::Rejected { status, response }) =
                    &reason
                {
                    assert!(!outcome.connected);
                    assert_ne!(*status, 101, "a 101 reported as a rejection");
                    assert_eq!(*status, response.status());
                    assert!(response.body().len() <= conn.config().limits.handshake.max_body);
                    let len = wire::head_len(input.data).expect("a complete head");
                    let head = wire::parse_head(&input.data[..len]).expect("an HTTP head");
                    let parts = head.start_parts();
                    let raw = parts.get(1).and_then(|p| std::str::from_utf8(p).ok());
                    assert_eq!(raw.and_then(|p| p.parse::<u16>().ok()), Some(*status));
                    outcome.rejected = Some(*status);
                }
            }
            Event::Message(m) => {
                assert!(outcome.connected, "message before the handshake completed");
                if let tether_core::Message::Text(t) = &m {
                    assert!(std::str::from_utf8(t.as_bytes()).is_ok());
                }
                outcome.messages += 1;
            }
            _ => {}
        }
    }
    if let Some(frames) = frames {
        frames.drain(conn);
    }
}

/// The client's checks of RFC 6455 §4.1 (points 1 to 6 of the response handling) on the
/// raw bytes; panics naming the rule a connected response breaks.
pub fn validate_independently(
    data: &[u8],
    expected: &str,
    offered: &[String],
    offered_deflate: bool,
) -> wire::Head {
    let len = wire::head_len(data).expect("connected without a complete head");
    let head = wire::parse_head(&data[..len]).expect("connected on something not HTTP");
    let parts = head.start_parts();
    assert!(parts.len() >= 2, "status line");
    assert_eq!(
        parts[1], b"101",
        "§4.1: connected with a status other than 101"
    );
    assert!(
        head.tokens("upgrade").iter().any(|t| t == "websocket"),
        "§4.1 point 2: Upgrade must include websocket"
    );
    assert!(
        head.tokens("connection").iter().any(|t| t == "upgrade"),
        "§4.1 point 3: Connection must include upgrade"
    );
    let accept: Vec<&[u8]> = head.values("sec-websocket-accept").collect();
    assert_eq!(
        accept,
        [expected.as_bytes()],
        "§4.1 point 4 / §11.3.3: exactly one Sec-WebSocket-Accept with the right value"
    );
    let protocols = head.tokens("sec-websocket-protocol");
    assert!(
        protocols.len() <= 1,
        "§4.1 point 6: one subprotocol at most"
    );
    for p in &protocols {
        assert!(offered.contains(p), "§4.1 point 6: {p} was not offered");
    }
    let extensions = head.tokens("sec-websocket-extensions");
    assert!(
        extensions.is_empty() || offered_deflate,
        "§4.1 point 5: extension accepted without an offer"
    );
    assert!(
        extensions.len() <= 1,
        "RFC 7692 §7: permessage-deflate once"
    );
    for e in &extensions {
        assert!(e.starts_with("permessage-deflate"), "unknown extension {e}");
    }
    head
}
