//! Property tests over whole conversations: the opening handshake, permessage-deflate and
//! the closing handshake, from both sides.
//!
//! - chunking invariance: a server (or client) fed the peer's recorded bytes in any chunking,
//!   handshake included, compression negotiated or not, closing handshake included, produces
//!   the same events and writes the same bytes as when fed them in one piece;
//! - handshake round trips: what a client request carries (path, query, Origin, subprotocols,
//!   extra headers) reaches the server's `Request` unchanged, and what the server's `Accept`
//!   adds (subprotocol, headers) reaches the client's `Response`.

mod util;

use bytes::Bytes;
use proptest::prelude::*;
use std::time::Instant;
use tether_core::{
    Accept, ClientRequest, CloseCode, Config, Connection, DeflateConfig, Event, Message, Transmit,
};
use util::seed;

/// A comparable summary of an event.
fn summarize(e: &Event) -> String {
    match e {
        Event::Request(r) => format!("request:{}", r.uri()),
        Event::Connected(r) => format!("connected:{}", r.status()),
        Event::Message(Message::Text(t)) => format!("text:{}", t.as_str()),
        Event::Message(Message::Binary(b)) => format!("bin:{b:?}"),
        Event::Ping(p) => format!("ping:{p:?}"),
        Event::Pong(p) => format!("pong:{p:?}"),
        Event::Closed(r) => format!("closed:{:?}", r),
        other => format!("{other:?}"),
    }
}

#[derive(Clone, Debug)]
struct Deflate {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: u8,
    client_max_window_bits: u8,
    threshold: usize,
}

fn deflate() -> impl Strategy<Value = Option<Deflate>> {
    proptest::option::of(
        (any::<bool>(), any::<bool>(), 9u8..=15, 9u8..=15, 0usize..40).prop_map(
            |(s, c, sw, cw, threshold)| Deflate {
                server_no_context_takeover: s,
                client_no_context_takeover: c,
                server_max_window_bits: sw,
                client_max_window_bits: cw,
                threshold,
            },
        ),
    )
}

fn config(d: &Option<Deflate>) -> Config {
    let mut cfg = Config::default();
    if let Some(d) = d {
        cfg.deflate = DeflateConfig::enabled();
        cfg.deflate.server_no_context_takeover = d.server_no_context_takeover;
        cfg.deflate.client_no_context_takeover = d.client_no_context_takeover;
        cfg.deflate.server_max_window_bits = d.server_max_window_bits;
        cfg.deflate.client_max_window_bits = d.client_max_window_bits;
        cfg.deflate.threshold = d.threshold;
    }
    cfg
}

/// A message: repeated words compress well, random bytes do not.
fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        ("[a-c ]{0,12}", 0usize..30).prop_map(|(w, n)| Message::text(w.repeat(n))),
        ".{0,40}".prop_map(|s| Message::text(s.as_str())),
        proptest::collection::vec(any::<u8>(), 0..300).prop_map(Message::binary),
    ]
}

fn take_output(conn: &mut Connection) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let mut shutdown = false;
    while let Some(t) = conn.poll_transmit(&mut out) {
        shutdown |= t == Transmit::Shutdown;
    }
    (out, shutdown)
}

/// A server fed `wire` cut at `cuts`: accepts the request, echoes every message, then
/// closes. Returns its events and everything it wrote.
fn run_server(cfg: &Config, wire: &[u8], cuts: &[usize], now: Instant) -> (Vec<String>, Vec<u8>) {
    serve(cfg, wire, cuts, now, true)
}

fn serve(
    cfg: &Config,
    wire: &[u8],
    cuts: &[usize],
    now: Instant,
    close: bool,
) -> (Vec<String>, Vec<u8>) {
    let mut conn = Connection::server(cfg.clone(), now);
    let mut events = Vec::new();
    let mut written = Vec::new();
    let mut last = 0;
    for &cut in cuts.iter().chain(std::iter::once(&wire.len())) {
        let cut = cut.clamp(last, wire.len());
        conn.handle_input(now, &wire[last..cut]);
        last = cut;
        while let Some(e) = conn.poll_event() {
            events.push(summarize(&e));
            match e {
                Event::Request(_) => conn.accept(now, Accept::new()).unwrap(),
                Event::Message(m) => conn.send(now, m).unwrap(),
                _ => {}
            }
        }
        written.extend(take_output(&mut conn).0);
    }
    // The server ends the conversation, so that the client's side sees a closing handshake.
    if close && conn.close(now, CloseCode::NORMAL, "bye").is_ok() {
        written.extend(take_output(&mut conn).0);
    }
    (events, written)
}

/// A client (same key seed each time) fed `wire` cut at `cuts`. Returns its events and
/// everything it wrote after its request.
fn run_client(cfg: &Config, wire: &[u8], cuts: &[usize], now: Instant) -> (Vec<String>, Vec<u8>) {
    let request = ClientRequest::new("ws://example.com/feed").unwrap();
    let mut conn = Connection::client(cfg.clone(), &request, seed(), now).unwrap();
    let _request_bytes = take_output(&mut conn);
    let mut events = Vec::new();
    let mut written = Vec::new();
    let mut last = 0;
    for &cut in cuts.iter().chain(std::iter::once(&wire.len())) {
        let cut = cut.clamp(last, wire.len());
        conn.handle_input(now, &wire[last..cut]);
        last = cut;
        while let Some(e) = conn.poll_event() {
            events.push(summarize(&e));
        }
        written.extend(take_output(&mut conn).0);
    }
    (events, written)
}

/// A side's events split into data messages and the rest (each in order), and its output.
fn by_kind((events, written): (Vec<String>, Vec<u8>)) -> (Vec<String>, Vec<String>, Vec<u8>) {
    let (data, other) = events
        .into_iter()
        .partition(|e| e.starts_with("text:") || e.starts_with("bin:"));
    (data, other, written)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// A whole conversation (handshake, messages with or without compression, close) gives
    /// the same events and output on either side whatever the chunking of its input.
    #[test]
    fn conversation_chunking_invariance(
        client_deflate in deflate(),
        server_deflate in deflate(),
        messages in proptest::collection::vec(message(), 0..10),
        mut cuts in proptest::collection::vec(0usize..6000, 0..30),
    ) {
        let now = Instant::now();
        let client_cfg = config(&client_deflate);
        let server_cfg = config(&server_deflate);
        // Record the client's side of a conversation: request, messages, close.
        let request = ClientRequest::new("ws://example.com/feed").unwrap();
        let mut client = Connection::client(client_cfg.clone(), &request, seed(), now).unwrap();
        let (mut to_server, _) = take_output(&mut client);
        let (_, server_wire) = serve(&server_cfg, &to_server, &[], now, false);
        client.handle_input(now, &server_wire);
        let mut opened = false;
        while let Some(e) = client.poll_event() {
            opened |= matches!(e, Event::Connected(_));
        }
        if opened {
            for m in &messages {
                client.send(now, m.clone()).unwrap();
            }
            client.ping(now, Bytes::from_static(b"are you there")).unwrap();
            to_server.extend(take_output(&mut client).0);
        }

        cuts.sort_unstable();
        let whole = run_server(&server_cfg, &to_server, &[], now);
        let chunked = run_server(&server_cfg, &to_server, &cuts, now);
        let byte_at_a_time: Vec<usize> = (0..to_server.len()).collect();
        let bytewise = run_server(&server_cfg, &to_server, &byte_at_a_time, now);
        // The same events. The same frames written, except that a pong answering a ping
        // that arrived in the same read as a message goes out before the application's
        // reply to that message: compare what the client makes of each output, data and
        // control frames each in order.
        prop_assert_eq!(&whole.0, &chunked.0);
        prop_assert_eq!(&whole.0, &bytewise.0);
        let seen = |out: &[u8]| by_kind(run_client(&client_cfg, out, &[], now));
        prop_assert_eq!(seen(&whole.1), seen(&chunked.1));
        prop_assert_eq!(seen(&whole.1), seen(&bytewise.1));
        if opened {
            // Every message came through, echoed, and the close was answered.
            let texts_and_bins = whole.0.iter()
                .filter(|e| e.starts_with("text:") || e.starts_with("bin:")).count();
            prop_assert_eq!(texts_and_bins, messages.len());
            prop_assert_eq!(whole.0.last().map(String::as_str), Some("ping:b\"are you there\""));
        }

        // The client's side: the server's whole output, in any chunking.
        let client_whole = run_client(&client_cfg, &whole.1, &[], now);
        let client_chunked = run_client(&client_cfg, &whole.1, &cuts, now);
        prop_assert_eq!(&client_whole, &client_chunked);
        if opened {
            let echoed: Vec<String> = client_whole.0.iter()
                .filter(|e| e.starts_with("text:") || e.starts_with("bin:")).cloned().collect();
            let sent: Vec<String> = messages.iter()
                .map(|m| summarize(&Event::Message(m.clone()))).collect();
            prop_assert_eq!(echoed, sent);
            prop_assert!(client_whole.0.iter().any(|e| e == "pong:b\"are you there\""));
            // The client answered the server's close.
            prop_assert!(!client_whole.1.is_empty());
        }
    }

    /// What a client request carries reaches the server unchanged, and what the server's
    /// answer carries reaches the client.
    #[test]
    fn handshake_round_trip(
        path in "(/[a-zA-Z0-9._~-]{0,8}){1,3}",
        query in proptest::option::of("[a-z]{1,5}=[a-zA-Z0-9%]{0,8}(&[a-z]{1,5}=[0-9]{0,4}){0,2}"),
        origin in proptest::option::of("https?://[a-z]{1,10}\\.example(:[0-9]{2,5})?"),
        protocols in proptest::collection::vec("[a-z][a-z0-9.]{0,10}", 0..4),
        headers in proptest::collection::vec(("x-[a-z]{1,10}", "[ -~]{0,30}"), 0..5),
        choose in any::<prop::sample::Index>(),
        response_headers in proptest::collection::vec(("x-[a-z]{1,10}", "[!-~]([ -~]{0,20}[!-~])?"), 0..3),
        chunk in 1usize..64,
    ) {
        let now = Instant::now();
        let uri = match &query {
            Some(q) => format!("{path}?{q}"),
            None => path.clone(),
        };
        let mut request = ClientRequest::new(&format!("ws://chat.example:8080{uri}")).unwrap();
        if let Some(o) = &origin {
            request = request.origin(o.as_str());
        }
        for p in &protocols {
            request = request.subprotocol(p.as_str());
        }
        // Header values are sent trimmed (RFC 9110 §5.5): compare the trimmed value.
        let headers: Vec<(String, String)> =
            headers.into_iter().map(|(n, v)| (n, v.trim().to_owned())).collect();
        for (n, v) in &headers {
            request = request.header(n.as_str(), v.as_str());
        }
        let mut pair = util::Pair::with_request(Config::default(), Config::default(), &request, now);
        pair.chunk = chunk;
        pair.drive();
        let Some(Event::Request(req)) = pair.server.events.first() else {
            panic!("no request: {:?}", pair.server.events);
        };
        prop_assert_eq!(req.method(), "GET");
        prop_assert_eq!(req.path(), path.as_str());
        prop_assert_eq!(req.query(), query.as_deref());
        prop_assert_eq!(req.uri(), uri.as_str());
        prop_assert_eq!(req.host(), Some("chat.example:8080"));
        prop_assert_eq!(req.origin(), origin.as_deref());
        prop_assert_eq!(req.subprotocols(), protocols.iter().map(String::as_str).collect::<Vec<_>>());
        for (n, v) in &headers {
            // Several headers may share a name: the value is one of them.
            let values: Vec<&str> = req.headers().iter()
                .filter(|h| h.name.eq_ignore_ascii_case(n))
                .map(|h| std::str::from_utf8(&h.value).unwrap())
                .collect();
            prop_assert!(values.contains(&v.as_str()), "{n}: {v:?} not in {values:?}");
        }

        let chosen = (!protocols.is_empty()).then(|| protocols[choose.index(protocols.len())].clone());
        let mut accept = Accept::new();
        if let Some(p) = &chosen {
            accept = accept.subprotocol(p.as_str());
        }
        for (n, v) in &response_headers {
            accept = accept.header(n.as_str(), v.as_str());
        }
        pair.server.events.clear();
        pair.server.conn.accept(pair.now, accept).unwrap();
        pair.drive();
        let Some(Event::Connected(resp)) = pair.client.events.first() else {
            panic!("not connected: {:?}", pair.client.events);
        };
        prop_assert_eq!(resp.status(), 101);
        prop_assert_eq!(resp.subprotocol(), chosen.as_deref());
        prop_assert_eq!(pair.client.conn.subprotocol(), chosen.as_deref());
        for (n, v) in &response_headers {
            let values: Vec<&[u8]> = resp.headers().iter()
                .filter(|h| h.name.eq_ignore_ascii_case(n))
                .map(|h| &h.value[..])
                .collect();
            prop_assert!(values.contains(&v.as_bytes()), "{n}: {v:?} not in {values:?}");
        }
    }
}
