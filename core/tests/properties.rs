//! Property tests: chunking invariance, frame round trips, and a model of the connection
//! state machine.

mod util;

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use std::time::Duration;
use tether_core::{
    Accept, CloseCode, CloseReason, Config, Event, Frame, FrameDecoder, FrameHeader, Message,
    OpCode, Role, SendError, State,
};
use util::*;

/// A comparable summary of an event.
fn summarize(e: &Event) -> String {
    match e {
        Event::Message(Message::Text(t)) => format!("text:{}", t.as_str()),
        Event::Message(Message::Binary(b)) => format!("bin:{b:?}"),
        Event::Ping(p) => format!("ping:{p:?}"),
        Event::Pong(p) => format!("pong:{p:?}"),
        Event::Closed(r) => format!("closed:{}", r.code()),
        other => format!("{other:?}"),
    }
}

#[derive(Clone, Debug)]
enum WireItem {
    Text(String, usize),
    Binary(Vec<u8>, usize),
    Ping(Vec<u8>),
    Close(u16),
    Garbage(Vec<u8>),
}

fn wire_item() -> impl Strategy<Value = WireItem> {
    prop_oneof![
        4 => (".{0,40}", 1usize..4).prop_map(|(s, n)| WireItem::Text(s, n)),
        4 => (proptest::collection::vec(any::<u8>(), 0..300), 1usize..4)
            .prop_map(|(b, n)| WireItem::Binary(b, n)),
        2 => proptest::collection::vec(any::<u8>(), 0..20).prop_map(WireItem::Ping),
        1 => prop_oneof![Just(1000u16), Just(1001), Just(1005), Just(3000), Just(999)].prop_map(WireItem::Close),
        1 => proptest::collection::vec(any::<u8>(), 1..20).prop_map(WireItem::Garbage),
    ]
}

/// Encodes items as a client would send them, splitting data messages into `n` fragments
/// with a ping between fragments.
fn encode(items: &[WireItem]) -> Vec<u8> {
    let mut wire = Vec::new();
    for item in items {
        match item {
            WireItem::Text(s, n) => fragments(&mut wire, 1, s.as_bytes(), *n),
            WireItem::Binary(b, n) => fragments(&mut wire, 2, b, *n),
            WireItem::Ping(p) => wire.extend(client_frame(true, 9, p)),
            WireItem::Close(code) => wire.extend(client_frame(true, 8, &code.to_be_bytes())),
            WireItem::Garbage(g) => wire.extend_from_slice(g),
        }
    }
    wire
}

fn fragments(wire: &mut Vec<u8>, opcode: u8, data: &[u8], n: usize) {
    let size = data.len().div_ceil(n).max(1);
    let parts: Vec<&[u8]> = if data.is_empty() {
        vec![&[][..]]
    } else {
        data.chunks(size).collect()
    };
    for (i, part) in parts.iter().enumerate() {
        let op = if i == 0 { opcode } else { 0 };
        wire.extend(client_frame(i + 1 == parts.len(), op, part));
        if i + 1 < parts.len() {
            wire.extend(client_frame(true, 9, b"between"));
        }
    }
}

fn run_server(wire: &[u8], cuts: &[usize]) -> (Vec<String>, Vec<u8>) {
    let mut pair = Pair::open();
    let mut last = 0;
    for &cut in cuts.iter().chain(std::iter::once(&wire.len())) {
        let cut = cut.min(wire.len()).max(last);
        pair.server.conn.handle_input(pair.now, &wire[last..cut]);
        last = cut;
    }
    pair.server.drain_events();
    let out = pair.server.take_output();
    (pair.server.events.iter().map(summarize).collect(), out)
}

/// [`run_server`] through `handle_input_buf`, the way an adapter reads: one buffer of
/// `capacity` bytes, reused for every chunk (room is made as the driver makes it: reclaimed
/// once the messages pointing into it are gone, else grown). The events are only looked
/// at after the last chunk, so a payload overwritten by a later read would show.
fn run_server_buf(wire: &[u8], cuts: &[usize], capacity: usize) -> (Vec<String>, Vec<u8>) {
    let mut pair = Pair::open();
    let mut read = BytesMut::with_capacity(capacity);
    let mut last = 0;
    for &cut in cuts.iter().chain(std::iter::once(&wire.len())) {
        let cut = cut.min(wire.len()).max(last);
        let chunk = &wire[last..cut];
        last = cut;
        if read.capacity() - read.len() < chunk.len() && !read.try_reclaim(capacity) {
            read.reserve(chunk.len().max(capacity));
        }
        read.extend_from_slice(chunk);
        pair.server.conn.handle_input_buf(pair.now, &mut read);
        assert!(
            read.is_empty(),
            "handle_input_buf left bytes in the caller's buffer"
        );
    }
    pair.server.drain_events();
    let out = pair.server.take_output();
    (pair.server.events.iter().map(summarize).collect(), out)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Handing over a reused read buffer yields what copying the same bytes in yields.
    #[test]
    fn handed_over_buffers_match_copied_input(
        items in proptest::collection::vec(wire_item(), 1..12),
        mut cuts in proptest::collection::vec(0usize..4000, 0..40),
        capacity in prop_oneof![1usize..16, 16usize..600],
    ) {
        let wire = encode(&items);
        cuts.sort_unstable();
        let copied = run_server(&wire, &cuts);
        prop_assert_eq!(&copied, &run_server_buf(&wire, &cuts, capacity));
        prop_assert_eq!(&copied, &run_server_buf(&wire, &[], capacity));
    }

    /// Any chunking of the input bytes yields the same events and the same output.
    #[test]
    fn chunking_invariance(items in proptest::collection::vec(wire_item(), 1..12),
                           mut cuts in proptest::collection::vec(0usize..4000, 0..40)) {
        let wire = encode(&items);
        cuts.sort_unstable();
        let whole = run_server(&wire, &[]);
        let chunked = run_server(&wire, &cuts);
        prop_assert_eq!(&whole.0, &chunked.0);
        // Output differs only in pong/close bytes, which are deterministic for a server.
        prop_assert_eq!(whole.1, chunked.1);
        let byte_at_a_time: Vec<usize> = (0..wire.len()).collect();
        prop_assert_eq!(whole.0, run_server(&wire, &byte_at_a_time).0);
    }

    /// Encoding then decoding a frame gives it back, for every role and length form.
    #[test]
    fn frame_round_trip(fin in any::<bool>(), rsv1 in any::<bool>(),
                        op in prop_oneof![Just(0u8), Just(1), Just(2), Just(8), Just(9), Just(10)],
                        payload in proptest::collection::vec(any::<u8>(), 0..70_000),
                        mask in proptest::option::of(any::<[u8; 4]>())) {
        let opcode = OpCode::from_u8(op).unwrap();
        let payload = if opcode.is_control() { &payload[..payload.len().min(125)] } else { &payload[..] };
        let fin = fin || opcode.is_control();
        let header = FrameHeader { fin, rsv1, rsv2: false, rsv3: false, opcode, mask: None, payload_len: 0 };
        let frame = Frame { header, payload: Bytes::copy_from_slice(payload) };
        let mut out = Vec::new();
        frame.encode(mask, &mut out);
        let role = if mask.is_some() { Role::Server } else { Role::Client };
        let mut buf = BytesMut::from(&out[..]);
        let decoded = FrameDecoder::new(role, 1 << 20).allow_rsv1(true).decode(&mut buf).unwrap().unwrap();
        prop_assert!(buf.is_empty());
        prop_assert_eq!(&decoded.payload[..], payload);
        prop_assert_eq!(decoded.header.fin, fin);
        prop_assert_eq!(decoded.header.rsv1, rsv1);
        prop_assert_eq!(decoded.header.opcode, opcode);
        prop_assert_eq!(decoded.header.mask, mask);
    }

    /// Arbitrary bytes never panic the decoder, and what it accepts re-encodes identically
    /// up to the length form.
    #[test]
    fn frame_decoder_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let mut buf = BytesMut::from(&bytes[..]);
        if let Ok(Some(frame)) = FrameDecoder::new(Role::Server, 1 << 20).allow_rsv1(true).decode(&mut buf) {
            let mut out = Vec::new();
            frame.encode(frame.header.mask, &mut out);
            let mut again = BytesMut::from(&out[..]);
            let back = FrameDecoder::new(Role::Server, 1 << 20).allow_rsv1(true).decode(&mut again).unwrap().unwrap();
            prop_assert_eq!(back, frame);
        }
    }
}

/// Operations on a pair, for the model-based test.
#[derive(Clone, Debug)]
enum Op {
    ClientSend(String),
    ServerSend(String),
    ClientPing,
    ClientClose(u16),
    ServerClose(u16),
    Deliver,
    DeliverClientOnly,
    /// Advance both clocks, delivering everything on the way.
    Advance(u64),
    /// Fire the client's (`true`) or server's next timer, delivering nothing: every timer
    /// (keep-alive, pong, idle, close) can run out while the peer's answer is in flight.
    FireTimer(bool),
    ClientEof,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => "[a-z]{0,8}".prop_map(Op::ClientSend),
        3 => "[a-z]{0,8}".prop_map(Op::ServerSend),
        1 => Just(Op::ClientPing),
        1 => prop_oneof![Just(1000u16), Just(1001), Just(4000)].prop_map(Op::ClientClose),
        1 => prop_oneof![Just(1000u16), Just(1001), Just(4000)].prop_map(Op::ServerClose),
        4 => Just(Op::Deliver),
        1 => Just(Op::DeliverClientOnly),
        1 => (1u64..30).prop_map(Op::Advance),
        2 => any::<bool>().prop_map(Op::FireTimer),
        1 => Just(Op::ClientEof),
    ]
}

/// A configuration with random timers, each possibly off (the close timer mostly on).
fn timed_config() -> impl Strategy<Value = Config> {
    let secs = |max: u64| proptest::option::of((1..max).prop_map(Duration::from_secs));
    (
        secs(20),
        secs(30),
        secs(30),
        secs(60),
        proptest::option::weighted(0.9, (1u64..10).prop_map(Duration::from_secs)),
    )
        .prop_map(|(handshake, ping_interval, pong_timeout, idle, close)| {
            let mut cfg = Config::default();
            cfg.timeouts.handshake = handshake;
            cfg.timeouts.ping_interval = ping_interval;
            cfg.timeouts.pong_timeout = pong_timeout;
            cfg.timeouts.idle = idle;
            cfg.timeouts.close = close;
            cfg
        })
}

/// What the model expects of one side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ModelState {
    Handshake,
    Open,
    Closing,
    Closed,
}

fn model_state(s: State) -> ModelState {
    match s {
        State::Handshake | State::Accepting => ModelState::Handshake,
        State::Open => ModelState::Open,
        State::Closing => ModelState::Closing,
        State::Closed => ModelState::Closed,
    }
}

/// The terminal-event invariant, for one side: [`Event::Closed`] was emitted iff `state()`
/// is `Closed`, at most once, and no event followed it.
fn check_terminal(side: &Side) -> Result<(), TestCaseError> {
    let terminal: Vec<usize> = side
        .events
        .iter()
        .enumerate()
        .filter(|(_, e)| matches!(e, Event::Closed(_)))
        .map(|(i, _)| i)
        .collect();
    prop_assert!(terminal.len() <= 1, "{:?}", side.events);
    if let Some(&i) = terminal.first() {
        prop_assert_eq!(i, side.events.len() - 1, "event after the terminal one");
    }
    prop_assert_eq!(
        terminal.len() == 1,
        side.conn.state() == State::Closed,
        "state {:?}, events {:?}",
        side.conn.state(),
        side.events
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// A model of the connection's life from both sides, every timer included: states only
    /// move forward, sends succeed exactly while open, every message sent before a close
    /// arrives in order, and after every step, on each side, [`Event::Closed`] has been
    /// emitted iff the state is `Closed`, exactly once, with no event after it.
    #[test]
    fn model_close_handshake(
        client_cfg in timed_config(),
        server_cfg in timed_config(),
        accept_after in proptest::option::of(1u64..25),
        ops in proptest::collection::vec(op(), 1..40),
    ) {
        // The opening handshake, the server taking its time to accept (the handshake
        // timer may run out meanwhile).
        let mut pair = Pair::new(client_cfg, server_cfg);
        pair.drive();
        if let Some(s) = accept_after {
            pair.advance(Duration::from_secs(s));
        }
        if pair.server.conn.state() == State::Accepting {
            pair.server.conn.accept(pair.now, Accept::new()).unwrap();
        }
        pair.drive();
        check_terminal(&pair.client)?;
        check_terminal(&pair.server)?;
        let mut sent_by_client: Vec<String> = Vec::new();
        let mut sent_by_server: Vec<String> = Vec::new();
        let mut prev = (model_state(pair.client.conn.state()), model_state(pair.server.conn.state()));
        for op in ops {
            let c_open = pair.client.conn.state() == State::Open;
            let s_open = pair.server.conn.state() == State::Open;
            let c_handshake = pair.client.conn.state() == State::Handshake;
            match op {
                Op::ClientSend(s) => {
                    let r = pair.client.conn.send(pair.now, Message::text(s.as_str()));
                    prop_assert_eq!(r.is_ok(), c_open);
                    if c_open {
                        sent_by_client.push(s)
                    } else if c_handshake {
                        prop_assert!(matches!(r, Err(SendError::NotOpen)))
                    } else {
                        prop_assert!(matches!(r, Err(SendError::Closed)))
                    }
                }
                Op::ServerSend(s) => {
                    let r = pair.server.conn.send(pair.now, Message::text(s.as_str()));
                    prop_assert_eq!(r.is_ok(), s_open);
                    if s_open { sent_by_server.push(s) }
                }
                Op::ClientPing => { let _ = pair.client.conn.ping(pair.now, Bytes::from_static(b"p")); }
                Op::ClientClose(c) => {
                    prop_assert_eq!(pair.client.conn.close(pair.now, CloseCode(c), "").is_ok(), c_open);
                }
                Op::ServerClose(c) => {
                    prop_assert_eq!(pair.server.conn.close(pair.now, CloseCode(c), "").is_ok(), s_open);
                }
                Op::Deliver => pair.drive(),
                Op::DeliverClientOnly => {
                    let out = pair.client.take_output();
                    pair.server.conn.handle_input(pair.now, &out);
                    pair.server.drain_events();
                }
                Op::Advance(s) => pair.advance(Duration::from_secs(s)),
                Op::FireTimer(client) => {
                    let side = if client { &mut pair.client } else { &mut pair.server };
                    if let Some(at) = side.conn.poll_timeout() {
                        pair.now = pair.now.max(at);
                        side.conn.handle_timeout(pair.now);
                        prop_assert!(side.conn.poll_timeout().is_none_or(|t| t > pair.now));
                    }
                }
                Op::ClientEof => {
                    pair.server.conn.handle_eof(pair.now);
                    pair.server.drain_events();
                }
            }
            pair.client.drain_events();
            pair.server.drain_events();
            let now = (model_state(pair.client.conn.state()), model_state(pair.server.conn.state()));
            // Monotonic: Handshake -> Open -> Closing -> Closed.
            prop_assert!(now.0 as u8 >= prev.0 as u8 && now.1 as u8 >= prev.1 as u8, "{prev:?} -> {now:?}");
            prev = now;
            check_terminal(&pair.client)?;
            check_terminal(&pair.server)?;
        }
        // Finish: deliver everything and let timers run out.
        pair.drive();
        pair.advance(Duration::from_secs(120));
        pair.client.conn.close(pair.now, CloseCode::NORMAL, "").ok();
        pair.drive();
        pair.advance(Duration::from_secs(10));
        // Messages arrive in order, as a prefix of what was sent.
        let got_server: Vec<String> = pair.server.messages().iter().map(|m| match m { Message::Text(t) => t.to_string(), _ => unreachable!() }).collect();
        let got_client: Vec<String> = pair.client.messages().iter().map(|m| match m { Message::Text(t) => t.to_string(), _ => unreachable!() }).collect();
        prop_assert!(sent_by_client.starts_with(&got_server), "{got_server:?} vs {sent_by_client:?}");
        prop_assert!(sent_by_server.starts_with(&got_client));
        // Both sides end closed, and a clean close on one side means a clean close on the other.
        prop_assert_eq!(pair.client.conn.state(), State::Closed);
        prop_assert_eq!(pair.server.conn.state(), State::Closed);
        check_terminal(&pair.client)?;
        check_terminal(&pair.server)?;
        let c = pair.client.closed().unwrap();
        let s = pair.server.closed().unwrap();
        if let (CloseReason::Clean { .. }, CloseReason::Clean { .. }) = (c, s) {
            prop_assert!(pair.client.shut_down && pair.server.shut_down);
        }
        if !matches!(s, CloseReason::Abnormal) && c.is_clean() && s.is_clean() {
            prop_assert_eq!(sent_by_client.len(), got_server.len());
        }
    }
}
