//! Target `handshake_request`: the server's parsing of the upgrade request (RFC 6455 §4.2.1),
//! through `Connection::server` and `handle_input`, on arbitrary bytes in arbitrary chunks.
//!
//! Invariants: the connection's buffers stay within the handshake size limit plus a small
//! constant while the head is read; `Event::Request` is reported only for a head that an
//! independent reading finds valid under §4.2.1 (GET, HTTP/1.1, one Host, `Upgrade:
//! websocket`, `Connection: upgrade`, one `Sec-WebSocket-Key` of 16 bytes, one
//! `Sec-WebSocket-Version: 13`); accepting it writes a 101 whose `Sec-WebSocket-Accept`
//! matches the key (§4.2.2); a refused request gets a 4xx response; nothing follows the
//! terminal event.

use super::enc::Enc;
use super::wire::{self, OutputChecker};
use arbitrary::{Arbitrary, Unstructured};
use std::time::Instant;
use tether_core::{
    Accept, CloseReason, Config, Connection, DeflateConfig, Event, HandshakeLimits, Reject, Role,
    State,
};

/// Slack above the handshake size limit for the connection's other buffers (queues of a
/// few entries, the head just parsed).
pub const CAPACITY_SLACK: usize = 4096;

/// What the application does with a request.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// `accept(Accept::new())`.
    Accept,
    /// Accept with the first subprotocol offered.
    AcceptProtocol,
    /// `reject(Reject::new(403))`.
    Reject,
    /// Nothing: the request stays pending.
    Nothing,
}

impl Answer {
    fn index(self) -> u32 {
        match self {
            Self::Accept => 0,
            Self::AcceptProtocol => 1,
            Self::Reject => 2,
            Self::Nothing => 3,
        }
    }
}

/// The server's configuration, the chunking and the bytes.
#[derive(Arbitrary, Debug, PartialEq, Eq)]
pub struct RequestInput<'a> {
    /// Use a 1 KiB head limit with 16 headers instead of the defaults.
    pub small_limits: bool,
    /// Accept permessage-deflate offers.
    pub deflate: bool,
    /// What to do with a request.
    pub answer: Answer,
    /// End the stream after the data.
    pub eof: bool,
    /// Chunk lengths (modulo 2048, plus one).
    pub cuts: Vec<u16>,
    /// The bytes the client sends.
    pub data: &'a [u8],
}

/// What happened.
#[derive(Debug, Default)]
pub struct RequestOutcome {
    /// Requests reported.
    pub requests: usize,
    /// The status of the 101 or error response written, if one was.
    pub response_status: Option<u16>,
    /// Whether the connection ended open.
    pub open: bool,
    /// Whether a terminal event was seen.
    pub closed: bool,
}

/// Writes `input` in the format [`check_bytes`] reads.
pub fn encode(input: &RequestInput<'_>) -> Vec<u8> {
    Enc::new()
        .bool(input.small_limits)
        .bool(input.deflate)
        .tag(input.answer.index(), 4)
        .bool(input.eof)
        .u16s(&input.cuts)
        .rest(input.data)
        .finish()
}

/// Decodes fuzzer bytes and runs [`check`].
pub fn check_bytes(data: &[u8]) -> RequestOutcome {
    match RequestInput::arbitrary_take_rest(Unstructured::new(data)) {
        Ok(input) => check(&input),
        Err(_) => RequestOutcome::default(),
    }
}

/// The limits a server uses for `input`.
pub fn limits(small: bool) -> HandshakeLimits {
    if small {
        let mut limits = HandshakeLimits::default();
        limits.max_size = 1024;
        limits.max_headers = 16;
        limits.max_body = 1024;
        limits
    } else {
        HandshakeLimits::default()
    }
}

/// Feeds the request to a server and checks the invariants of the module docs.
pub fn check(input: &RequestInput<'_>) -> RequestOutcome {
    let now = Instant::now();
    let mut cfg = Config::default();
    cfg.limits.handshake = limits(input.small_limits);
    if input.deflate {
        cfg.deflate = DeflateConfig::enabled();
    }
    let max_size = cfg.limits.handshake.max_size;
    let mut conn = Connection::server(cfg, now);
    let mut outcome = RequestOutcome::default();
    let mut written = Vec::new();
    let raw_output = |conn: &mut Connection, written: &mut Vec<u8>| {
        while conn.poll_transmit(written).is_some() {}
    };
    let mut answered = false;
    for chunk in super::chunks(input.data, &input.cuts, 2048) {
        let was_handshake = conn.state() == State::Handshake;
        conn.handle_input(now, chunk);
        if was_handshake && conn.state() != State::Accepting {
            assert!(
                conn.buffer_capacity() <= max_size + CAPACITY_SLACK,
                "buffers hold {} bytes while reading a head of at most {max_size}",
                conn.buffer_capacity()
            );
        }
        drain_events(&mut conn, input, &mut outcome, &mut answered, now);
        raw_output(&mut conn, &mut written);
    }
    if input.eof {
        conn.handle_eof(now);
    }
    drain_events(&mut conn, input, &mut outcome, &mut answered, now);
    raw_output(&mut conn, &mut written);
    outcome.open = conn.state() == State::Open;
    outcome.response_status = check_written(&written, input, &outcome);
    outcome
}

fn drain_events(
    conn: &mut Connection,
    input: &RequestInput<'_>,
    outcome: &mut RequestOutcome,
    answered: &mut bool,
    now: Instant,
) {
    while let Some(event) = conn.poll_event() {
        assert!(!outcome.closed, "event after the terminal one: {event:?}");
        match event {
            Event::Request(req) => {
                assert_eq!(outcome.requests, 0, "second request reported");
                outcome.requests += 1;
                let head = validate_independently(input.data, limits(input.small_limits));
                assert_eq!(req.method(), "GET");
                let key = head.values("sec-websocket-key").next().expect("one key");
                assert_eq!(req.key().as_bytes(), key, "key differs from the wire");
                assert_eq!(conn.state(), State::Accepting);
                *answered = true;
                match input.answer {
                    Answer::Accept => conn.accept(now, Accept::new()).expect("accept"),
                    Answer::AcceptProtocol => {
                        let offered = req.subprotocols();
                        let accept = match offered.first() {
                            Some(p) => Accept::new().subprotocol(*p),
                            None => Accept::new(),
                        };
                        conn.accept(now, accept)
                            .expect("accept with an offered protocol");
                    }
                    Answer::Reject => conn.reject(now, Reject::new(403)).expect("reject"),
                    Answer::Nothing => {}
                }
            }
            Event::Closed(reason) => {
                outcome.closed = true;
                if let CloseReason::HandshakeFailed(e) = &reason {
                    assert_eq!(outcome.requests, 0, "handshake failed after a request: {e}");
                }
            }
            Event::Message(tether_core::Message::Text(t)) => {
                assert!(std::str::from_utf8(t.as_bytes()).is_ok());
            }
            _ => {}
        }
    }
}

/// The checks of RFC 6455 §4.2.1 (and RFC 7230 §5.4 for Host), on the raw bytes: returns the
/// parsed head, or panics naming the rule the reported request breaks.
pub fn validate_independently(data: &[u8], limits: HandshakeLimits) -> wire::Head {
    let len = wire::head_len(data).expect("a request was reported without a complete head");
    assert!(
        len <= limits.max_size,
        "request head of {len} bytes above the limit"
    );
    let head = wire::parse_head(&data[..len]).expect("the reported request is not an HTTP head");
    let parts = head.start_parts();
    assert_eq!(
        parts.len(),
        3,
        "request line {:?}",
        String::from_utf8_lossy(&head.start)
    );
    assert_eq!(parts[0], b"GET", "§4.2.1 point 1: the method must be GET");
    assert!(
        parts[2] == b"HTTP/1.1",
        "§4.2.1 point 1: HTTP/1.1 required, got {:?}",
        String::from_utf8_lossy(parts[2])
    );
    assert_eq!(
        head.count("host"),
        1,
        "§4.2.1 point 2 / RFC 7230 §5.4: exactly one Host"
    );
    assert!(
        head.tokens("upgrade").iter().any(|t| t == "websocket"),
        "§4.2.1 point 3: Upgrade must include websocket"
    );
    assert!(
        head.tokens("connection").iter().any(|t| t == "upgrade"),
        "§4.2.1 point 4: Connection must include upgrade"
    );
    assert_eq!(
        head.count("sec-websocket-key"),
        1,
        "§11.3.1: Sec-WebSocket-Key must appear exactly once"
    );
    let key = head.values("sec-websocket-key").next().unwrap_or_default();
    assert!(wire::key_is_valid(key), "§4.2.1 point 5: key of 16 bytes");
    let versions: Vec<&[u8]> = head.values("sec-websocket-version").collect();
    assert_eq!(
        versions,
        [b"13"],
        "§4.2.1 point 6 / §11.3.5: one version, 13"
    );
    head
}

/// Checks the bytes the server wrote: a 101 with the right accept value after an accepted
/// request, a 4xx after a refused one, then only valid frames.
fn check_written(
    written: &[u8],
    input: &RequestInput<'_>,
    outcome: &RequestOutcome,
) -> Option<u16> {
    if written.is_empty() {
        return None;
    }
    let len = wire::head_len(written).expect("the server wrote an HTTP head");
    let head = wire::parse_head(&written[..len]).expect("the server's head parses");
    let parts = head.start_parts();
    assert_eq!(parts[0], b"HTTP/1.1");
    let status: u16 = std::str::from_utf8(parts[1]).unwrap().parse().unwrap();
    let request = (outcome.requests == 1).then(|| {
        let len = wire::head_len(input.data).unwrap();
        wire::parse_head(&input.data[..len]).unwrap()
    });
    match (status, &request) {
        (101, Some(req)) => {
            let key = req.values("sec-websocket-key").next().unwrap();
            let accept: Vec<&[u8]> = head.values("sec-websocket-accept").collect();
            assert_eq!(
                accept,
                [wire::accept_for(key).as_bytes()],
                "§4.2.2 accept value"
            );
            assert!(head.tokens("upgrade").iter().any(|t| t == "websocket"));
            assert!(head.tokens("connection").iter().any(|t| t == "upgrade"));
            let offered = req.tokens("sec-websocket-protocol");
            for p in head.tokens("sec-websocket-protocol") {
                assert!(offered.contains(&p), "chose {p}, which was not offered");
            }
            let offered_deflate = req
                .tokens("sec-websocket-extensions")
                .iter()
                .any(|e| e.starts_with("permessage-deflate"));
            for e in head.tokens("sec-websocket-extensions") {
                assert!(
                    input.deflate && offered_deflate,
                    "extension {e} not offered"
                );
                assert!(e.starts_with("permessage-deflate"));
            }
            let mut frames = OutputChecker::new(Role::Server, input.deflate);
            frames.feed(&written[len..]);
        }
        (101, None) => panic!("101 without a request"),
        (400..=499, _) => {
            assert!(outcome.closed, "error response without a terminal event");
        }
        (s, _) => panic!("unexpected status {s}"),
    }
    Some(status)
}
