//! RFC 6455 behaviour of a client/server pair, in memory, named after the RFC's sections.

mod util;

use bytes::Bytes;
use std::time::Duration;
use tether_core::{
    Accept, ClientRequest, CloseCode, CloseReason, Config, Connection, DataKind, Event,
    HandshakeError, Message, OpCode, PreparedFrame, ProtocolError, Reject, SendError, State,
    Timeout, Transmit,
};
use util::*;

fn closed_code_on_wire(wire: &[u8]) -> Option<u16> {
    frames(wire)
        .iter()
        .find(|f| f.header.opcode == OpCode::Close)
        .map(|f| u16::from_be_bytes([f.payload[0], f.payload[1]]))
}

#[test]
fn rfc6455_4_opening_handshake_opens_both_sides() {
    let pair = Pair::open();
    assert_eq!(pair.client.conn.state(), State::Open);
    assert_eq!(pair.server.conn.state(), State::Open);
}

#[test]
fn rfc6455_4_2_1_request_is_exposed_to_the_application() {
    let request = ClientRequest::new("ws://example.com:8080/chat?room=7")
        .unwrap()
        .origin("https://example.com")
        .subprotocol("chat.v2")
        .subprotocol("chat.v1")
        .header("Authorization", "Bearer abc");
    let mut pair = Pair::with_request(
        Config::default(),
        Config::default(),
        &request,
        std::time::Instant::now(),
    );
    pair.drive();
    let Some(Event::Request(req)) = pair.server.events.pop() else {
        panic!("{:?}", pair.server.events)
    };
    assert_eq!(req.method(), "GET");
    assert_eq!(req.path(), "/chat");
    assert_eq!(req.query(), Some("room=7"));
    assert_eq!(req.origin(), Some("https://example.com"));
    assert_eq!(req.header_str("authorization"), Some("Bearer abc"));
    let protocols: Vec<&str> = req.subprotocols().into_iter().collect();
    assert_eq!(protocols, ["chat.v2", "chat.v1"]);
    pair.server
        .conn
        .accept(pair.now, Accept::new().subprotocol("chat.v1"))
        .unwrap();
    pair.drive();
    assert!(matches!(pair.client.events[0], Event::Connected(_)));
    assert_eq!(pair.client.conn.subprotocol(), Some("chat.v1"));
    assert_eq!(pair.server.conn.subprotocol(), Some("chat.v1"));
}

#[test]
fn rfc6455_4_2_2_server_rejects_with_status_and_body() {
    let mut pair = Pair::new(Config::default(), Config::default());
    pair.drive();
    pair.server
        .conn
        .reject(pair.now, Reject::new(401).body("no token"))
        .unwrap();
    pair.drive();
    assert!(matches!(
        pair.server.closed(),
        Some(CloseReason::Rejected { status: 401 })
    ));
    match pair.client.closed() {
        Some(CloseReason::HandshakeFailed(HandshakeError::Rejected { status, response })) => {
            assert_eq!(*status, 401);
            assert_eq!(&response.body()[..], b"no token");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn rfc6455_4_2_1_bytes_after_the_request_are_not_lost() {
    // A client that writes the request and its first frames in one go.
    let now = std::time::Instant::now();
    let request = ClientRequest::new("ws://localhost/").unwrap();
    let mut client = Connection::client(Config::default(), &request, seed(), now).unwrap();
    let mut server = Connection::server(Config::default(), now);
    let mut wire = Vec::new();
    client.poll_transmit(&mut wire);
    wire.extend(client_frame(true, 1, b"early"));
    server.handle_input(now, &wire);
    assert!(matches!(server.poll_event(), Some(Event::Request(_))));
    assert!(server.poll_event().is_none());
    server.accept(now, Accept::new()).unwrap();
    match server.poll_event() {
        Some(Event::Message(Message::Text(t))) => assert_eq!(t, "early"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn rfc6455_4_1_bytes_after_the_response_are_not_lost() {
    let mut pair = Pair::new(Config::default(), Config::default());
    pair.drive();
    pair.server.conn.accept(pair.now, Accept::new()).unwrap();
    pair.server
        .conn
        .send(pair.now, Message::text("first"))
        .unwrap();
    // Response and frame leave the server in one write.
    pair.drive();
    assert!(matches!(pair.client.events[0], Event::Connected(_)));
    assert_eq!(pair.client.messages(), [Message::text("first")]);
}

#[test]
fn rfc6455_4_2_1_invalid_request_gets_400() {
    let now = std::time::Instant::now();
    let mut server = Connection::server(Config::default(), now);
    server.handle_input(now, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut out = Vec::new();
    assert_eq!(server.poll_transmit(&mut out), Some(Transmit::Data));
    assert!(
        out.starts_with(b"HTTP/1.1 400"),
        "{}",
        String::from_utf8_lossy(&out)
    );
    assert_eq!(server.poll_transmit(&mut out), Some(Transmit::Shutdown));
    assert!(matches!(
        server.poll_event(),
        Some(Event::Closed(CloseReason::HandshakeFailed(_)))
    ));
}

#[test]
fn rfc6455_4_2_1_oversized_head_gets_431_with_bounded_memory() {
    let now = std::time::Instant::now();
    let mut server = Connection::server(Config::default(), now);
    server.handle_input(now, b"GET / HTTP/1.1\r\nHost: x\r\n");
    let line = format!("X-Filler: {}\r\n", "a".repeat(1000));
    for _ in 0..1000 {
        server.handle_input(now, line.as_bytes());
        assert!(server.buffer_capacity() <= 64 * 1024);
        if server.state() == State::Closed {
            break;
        }
    }
    let mut out = Vec::new();
    server.poll_transmit(&mut out);
    assert!(
        out.starts_with(b"HTTP/1.1 431"),
        "{}",
        String::from_utf8_lossy(&out)
    );
}

#[test]
fn rfc6455_5_4_fragmented_message_with_interleaved_control_frames() {
    let mut pair = Pair::open();
    let mut wire = Vec::new();
    wire.extend(client_frame(false, 1, "Hel".as_bytes()));
    wire.extend(client_frame(true, 9, b"ping!"));
    wire.extend(client_frame(false, 0, "lo, wö".as_bytes()));
    wire.extend(client_frame(true, 0, "rld".as_bytes()));
    pair.server.conn.handle_input(pair.now, &wire);
    pair.server.drain_events();
    assert!(matches!(&pair.server.events[0], Event::Ping(p) if &p[..] == b"ping!"));
    assert_eq!(pair.server.messages(), [Message::text("Hello, wörld")]);
    // The ping was answered with a pong carrying the same data (§5.5.3).
    let out = pair.server.take_output();
    let f = frames(&out);
    assert_eq!(f[0].header.opcode, OpCode::Pong);
    assert_eq!(&f[0].payload[..], b"ping!");
}

#[test]
fn rfc6455_5_5_3_every_ping_is_answered_while_the_peer_reads() {
    let mut pair = Pair::open();
    let mut wire = Vec::new();
    for i in 0..10 {
        wire.extend(client_frame(true, 9, format!("payload-{i}").as_bytes()));
    }
    pair.server.conn.handle_input(pair.now, &wire);
    let f = frames(&pair.server.take_output());
    let pongs: Vec<Vec<u8>> = f.iter().map(|f| f.payload.to_vec()).collect();
    let expected: Vec<Vec<u8>> = (0..10)
        .map(|i| format!("payload-{i}").into_bytes())
        .collect();
    assert_eq!(pongs, expected);
}

#[test]
fn rfc6455_5_5_3_a_ping_flood_that_reads_nothing_gets_only_the_latest_pong() {
    let mut pair = Pair::open();
    // A peer that floods pings and reads nothing: the answers must not pile up.
    let mut wire = Vec::new();
    for i in 0..100_000u32 {
        wire.extend(client_frame(true, 9, &i.to_be_bytes()));
    }
    pair.server.conn.handle_input(pair.now, &wire);
    let backlog = pair.server.conn.buffered_output();
    assert!(backlog <= 16 * 1024 + 6, "{backlog} bytes queued");
    pair.server.drain_events();
    assert_eq!(pair.server.events.len(), 100_000, "every ping is reported");
    let f = frames(&pair.server.take_output());
    assert!(f.len() < 3_000, "{} pongs", f.len());
    assert!(f.iter().all(|f| f.header.opcode == OpCode::Pong));
    // In order, ending with the answer to the last ping.
    let n: Vec<u32> = f
        .iter()
        .map(|f| u32::from_be_bytes(f.payload[..].try_into().unwrap()))
        .collect();
    assert!(n.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(n.last(), Some(&99_999));

    // Frames queued after a pong end the coalescing: the order on the wire is kept.
    let flood: Vec<u8> = (0..3_000u32)
        .flat_map(|i| client_frame(true, 9, &i.to_be_bytes()))
        .collect();
    pair.server.conn.handle_input(pair.now, &flood);
    pair.server
        .conn
        .send(pair.now, Message::text("data"))
        .unwrap();
    pair.server
        .conn
        .handle_input(pair.now, &client_frame(true, 9, b"c"));
    pair.server
        .conn
        .handle_input(pair.now, &client_frame(true, 9, b"d"));
    let f = frames(&pair.server.take_output());
    let tail: Vec<(OpCode, Vec<u8>)> = f
        .iter()
        .rev()
        .take(3)
        .rev()
        .map(|f| (f.header.opcode, f.payload.to_vec()))
        .collect();
    assert_eq!(
        tail,
        [
            (OpCode::Pong, 2_999u32.to_be_bytes().to_vec()),
            (OpCode::Text, b"data".to_vec()),
            (OpCode::Pong, b"d".to_vec()),
        ]
    );
}

#[test]
fn rfc6455_5_4_continuation_without_start_fails_with_1002() {
    let mut pair = Pair::open();
    pair.server
        .conn
        .handle_input(pair.now, &client_frame(true, 0, b"x"));
    pair.server.drain_events();
    assert!(matches!(
        pair.server.closed(),
        Some(CloseReason::ProtocolError {
            error: ProtocolError::UnexpectedContinuation,
            code: CloseCode::PROTOCOL_ERROR
        })
    ));
    assert_eq!(closed_code_on_wire(&pair.server.take_output()), Some(1002));
}

#[test]
fn rfc6455_5_4_new_message_inside_fragmented_one_fails() {
    let mut pair = Pair::open();
    let mut wire = client_frame(false, 1, b"a");
    wire.extend(client_frame(true, 2, b"b"));
    pair.server.conn.handle_input(pair.now, &wire);
    pair.server.drain_events();
    assert!(matches!(
        pair.server.closed(),
        Some(CloseReason::ProtocolError {
            error: ProtocolError::ExpectedContinuation,
            ..
        })
    ));
}

#[test]
fn rfc6455_5_1_server_fails_on_unmasked_client_frame() {
    let mut pair = Pair::open();
    pair.server
        .conn
        .handle_input(pair.now, &server_frame(true, 1, b"unmasked"));
    pair.server.drain_events();
    assert_eq!(pair.server.closed().unwrap().code(), CloseCode(1002));
    assert_eq!(closed_code_on_wire(&pair.server.take_output()), Some(1002));
    assert!(pair.server.shut_down);
}

#[test]
fn rfc6455_5_1_client_fails_on_masked_server_frame() {
    let mut pair = Pair::open();
    pair.client
        .conn
        .handle_input(pair.now, &client_frame(true, 1, b"masked"));
    pair.client.drain_events();
    assert_eq!(pair.client.closed().unwrap().code(), CloseCode(1002));
}

#[test]
fn rfc6455_5_3_client_frames_are_masked_server_frames_are_not() {
    let mut pair = Pair::open();
    pair.client
        .conn
        .send(pair.now, Message::text("up"))
        .unwrap();
    pair.server
        .conn
        .send(pair.now, Message::text("down"))
        .unwrap();
    let up = pair.client.take_output();
    let down = pair.server.take_output();
    assert!(frames(&up)[0].header.mask.is_some());
    assert!(frames(&down)[0].header.mask.is_none());
}

#[test]
fn rfc6455_5_2_reserved_opcode_and_rsv_bits_fail() {
    for first_byte in [0x83u8, 0x8B, 0xC1, 0xA1, 0x91] {
        let mut pair = Pair::open();
        let mut wire = client_frame(true, 1, b"x");
        wire[0] = first_byte;
        pair.server.conn.handle_input(pair.now, &wire);
        pair.server.drain_events();
        assert_eq!(
            pair.server.closed().unwrap().code(),
            CloseCode(1002),
            "{first_byte:#x}"
        );
    }
}

#[test]
fn rfc6455_5_5_control_frame_too_long_or_fragmented_fails() {
    let mut pair = Pair::open();
    pair.server
        .conn
        .handle_input(pair.now, &client_frame(true, 9, &[0; 126]));
    pair.server.drain_events();
    assert_eq!(pair.server.closed().unwrap().code(), CloseCode(1002));

    let mut pair = Pair::open();
    pair.server
        .conn
        .handle_input(pair.now, &client_frame(false, 9, b"x"));
    pair.server.drain_events();
    assert_eq!(pair.server.closed().unwrap().code(), CloseCode(1002));
}

#[test]
fn rfc6455_8_1_invalid_utf8_fails_fast_inside_a_frame() {
    let mut pair = Pair::open();
    // One 1000-byte text frame whose 10th byte is invalid; deliver only the first 20 bytes.
    let mut payload = vec![b'a'; 1000];
    payload[9] = 0xFF;
    let wire = client_frame(true, 1, &payload);
    pair.server.conn.handle_input(pair.now, &wire[..20]);
    pair.server.drain_events();
    assert!(matches!(
        pair.server.closed(),
        Some(CloseReason::ProtocolError {
            error: ProtocolError::InvalidUtf8,
            code: CloseCode::INVALID_PAYLOAD
        })
    ));
    assert_eq!(closed_code_on_wire(&pair.server.take_output()), Some(1007));
}

#[test]
fn rfc6455_8_1_invalid_utf8_fails_fast_across_fragments() {
    let mut pair = Pair::open();
    // "κόσμε" then a surrogate (ED A0 80), split so the bad sequence starts in fragment 2.
    let mut wire = client_frame(false, 1, "κόσμε".as_bytes());
    wire.extend(client_frame(false, 0, b"\xed\xa0"));
    pair.server.conn.handle_input(pair.now, &wire);
    pair.server.drain_events();
    assert_eq!(pair.server.closed().unwrap().code(), CloseCode(1007));
}

#[test]
fn rfc6455_8_1_text_split_inside_a_code_point_is_fine() {
    let mut pair = Pair::open();
    let bytes = "€uro".as_bytes();
    let mut wire = client_frame(false, 1, &bytes[..1]);
    wire.extend(client_frame(false, 0, &bytes[1..2]));
    wire.extend(client_frame(true, 0, &bytes[2..]));
    pair.chunk = 1;
    for b in &wire {
        pair.server
            .conn
            .handle_input(pair.now, std::slice::from_ref(b));
    }
    pair.server.drain_events();
    assert_eq!(pair.server.messages(), [Message::text("€uro")]);
}

#[test]
fn rfc6455_5_5_1_close_is_echoed_and_server_closes_tcp_first() {
    let mut pair = Pair::open();
    pair.client
        .conn
        .close(pair.now, CloseCode::NORMAL, "bye")
        .unwrap();
    assert_eq!(pair.client.conn.state(), State::Closing);
    pair.drive();
    match pair.server.closed() {
        Some(CloseReason::Clean {
            initiated_locally: false,
            remote: Some(f),
            ..
        }) => {
            assert_eq!(f.code, CloseCode::NORMAL);
            assert_eq!(f.reason, "bye");
        }
        other => panic!("{other:?}"),
    }
    match pair.client.closed() {
        Some(CloseReason::Clean {
            initiated_locally: true,
            remote: Some(f),
            ..
        }) => assert_eq!(f.code, CloseCode::NORMAL),
        other => panic!("{other:?}"),
    }
    // §7.1.1: the server shut down TCP on its own; the client did so only after EOF.
    assert!(pair.server.shut_down);
    assert!(pair.client.shut_down);
    assert!(pair.client.conn.is_finished() && pair.server.conn.is_finished());
}

#[test]
fn rfc6455_7_1_1_client_waits_for_server_tcp_close_then_times_out() {
    let mut pair = Pair::open();
    pair.propagate_eof = false;
    pair.server
        .conn
        .close(pair.now, CloseCode::GOING_AWAY, "")
        .unwrap();
    pair.drive();
    assert!(pair.server.shut_down);
    assert!(
        !pair.client.shut_down,
        "client must wait for the server's TCP close"
    );
    pair.advance(Duration::from_secs(5));
    assert!(pair.client.shut_down);
    assert_eq!(pair.client.closed().unwrap().code(), CloseCode::GOING_AWAY);
}

#[test]
fn rfc6455_7_1_5_eof_without_close_is_1006() {
    let mut pair = Pair::open();
    pair.server.conn.handle_eof(pair.now);
    pair.server.drain_events();
    assert!(matches!(pair.server.closed(), Some(CloseReason::Abnormal)));
    assert_eq!(pair.server.closed().unwrap().code(), CloseCode::ABNORMAL);
}

#[test]
fn rfc6455_7_4_invalid_close_codes_fail_with_1002() {
    for code in [
        0u16, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
    ] {
        let mut pair = Pair::open();
        pair.server
            .conn
            .handle_input(pair.now, &client_frame(true, 8, &code.to_be_bytes()));
        pair.server.drain_events();
        assert!(
            matches!(
                pair.server.closed(),
                Some(CloseReason::ProtocolError {
                    error: ProtocolError::InvalidCloseCode(c),
                    ..
                }) if *c == CloseCode(code)
            ),
            "{code}"
        );
        assert_eq!(closed_code_on_wire(&pair.server.take_output()), Some(1002));
    }
    for code in [
        1000u16, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999,
    ] {
        let mut pair = Pair::open();
        pair.server
            .conn
            .handle_input(pair.now, &client_frame(true, 8, &code.to_be_bytes()));
        pair.server.drain_events();
        assert!(pair.server.closed().unwrap().is_clean(), "{code}");
        assert_eq!(closed_code_on_wire(&pair.server.take_output()), Some(code));
    }
}

#[test]
fn rfc6455_5_5_1_close_with_one_byte_or_bad_utf8_reason() {
    let mut pair = Pair::open();
    pair.server
        .conn
        .handle_input(pair.now, &client_frame(true, 8, &[0x03]));
    pair.server.drain_events();
    assert_eq!(pair.server.closed().unwrap().code(), CloseCode(1002));

    let mut pair = Pair::open();
    pair.server
        .conn
        .handle_input(pair.now, &client_frame(true, 8, b"\x03\xe8\xff\xfe"));
    pair.server.drain_events();
    assert_eq!(pair.server.closed().unwrap().code(), CloseCode(1007));
}

#[test]
fn rfc6455_5_5_1_empty_close_is_echoed_empty() {
    let mut pair = Pair::open();
    pair.server
        .conn
        .handle_input(pair.now, &client_frame(true, 8, b""));
    pair.server.drain_events();
    assert_eq!(pair.server.closed().unwrap().code(), CloseCode::NO_STATUS);
    let f = frames(&pair.server.take_output());
    assert_eq!(f[0].header.opcode, OpCode::Close);
    assert!(f[0].payload.is_empty());
}

#[test]
fn rfc6455_5_5_1_no_data_after_close_and_input_ignored() {
    let mut pair = Pair::open();
    pair.client
        .conn
        .close(pair.now, CloseCode::NORMAL, "")
        .unwrap();
    assert!(matches!(
        pair.client.conn.send(pair.now, Message::text("late")),
        Err(SendError::Closed)
    ));
    pair.drive();
    assert!(matches!(
        pair.server.conn.send(pair.now, Message::text("late")),
        Err(SendError::Closed)
    ));
    // Further input after the terminal event is ignored: no new events.
    let n = pair.server.events.len();
    pair.server
        .conn
        .handle_input(pair.now, &client_frame(true, 1, b"ignored"));
    pair.server.drain_events();
    assert_eq!(pair.server.events.len(), n);
}

#[test]
fn sending_before_open_is_local_misuse() {
    let mut pair = Pair::new(Config::default(), Config::default());
    assert!(matches!(
        pair.client.conn.send(pair.now, Message::text("x")),
        Err(SendError::NotOpen)
    ));
    assert!(matches!(
        pair.client.conn.close(pair.now, CloseCode(1005), ""),
        Err(SendError::NotOpen)
    ));
    let mut pair = Pair::open();
    assert!(matches!(
        pair.client.conn.close(pair.now, CloseCode(1005), ""),
        Err(SendError::InvalidCloseCode(CloseCode(1005)))
    ));
    assert!(matches!(
        pair.client.conn.ping(pair.now, Bytes::from(vec![0; 126])),
        Err(SendError::ControlPayloadTooLong)
    ));
}

#[test]
fn limits_frame_too_large_fails_with_1009_before_allocating() {
    let mut cfg = Config::default();
    cfg.limits.max_frame_size = 1024;
    let mut pair = Pair::open_with(Config::default(), cfg);
    // Header of a 1 GiB frame; only the header is sent.
    let wire = [0x82u8, 0xFF, 0, 0, 0, 0, 0x40, 0, 0, 0, 1, 2, 3, 4];
    pair.server.conn.handle_input(pair.now, &wire);
    pair.server.drain_events();
    assert!(matches!(
        pair.server.closed(),
        Some(CloseReason::ProtocolError {
            code: CloseCode::MESSAGE_TOO_BIG,
            ..
        })
    ));
    assert!(pair.server.conn.buffer_capacity() < 4096);
}

#[test]
fn limits_message_too_large_across_fragments_fails_with_1009() {
    let mut cfg = Config::default();
    cfg.limits.max_message_size = 100;
    let mut pair = Pair::open_with(Config::default(), cfg);
    let mut wire = client_frame(false, 2, &[0; 60]);
    wire.extend(client_frame(true, 0, &[0; 60]));
    pair.server.conn.handle_input(pair.now, &wire);
    pair.server.drain_events();
    assert_eq!(pair.server.closed().unwrap().code(), CloseCode(1009));
    assert_eq!(closed_code_on_wire(&pair.server.take_output()), Some(1009));
}

#[test]
fn limits_buffered_input_fails_with_1009() {
    let mut cfg = Config::default();
    cfg.limits.max_buffered_input = 1000;
    let mut pair = Pair::open_with(Config::default(), cfg);
    // Many small messages that the application never takes.
    let mut wire = Vec::new();
    for _ in 0..20 {
        wire.extend(client_frame(true, 2, &[7; 100]));
    }
    pair.server.conn.handle_input(pair.now, &wire);
    pair.server.drain_events();
    assert_eq!(pair.server.conn.state(), State::Closed);
    assert!(matches!(
        pair.server.closed(),
        Some(CloseReason::ProtocolError {
            error: ProtocolError::InputBufferFull,
            ..
        })
    ));
    // What was buffered before the limit is still delivered; nothing beyond it is kept.
    let n = pair.server.messages().len();
    assert!((1..20).contains(&n), "{n}");
}

#[test]
fn rfc6455_7_1_7_replies_to_earlier_messages_go_out_before_the_failure_close() {
    // Autobahn 3.3: a valid message, then a frame with RSV bits, in one read. The echo of
    // the first message must be on the wire before the 1002 close.
    let mut pair = Pair::open();
    let mut wire = client_frame(true, 1, b"Hello");
    let mut bad = client_frame(true, 1, b"Hello");
    bad[0] |= 0x20;
    wire.extend(bad);
    wire.extend(client_frame(true, 9, b""));
    pair.server.conn.handle_input(pair.now, &wire);
    let mut closed = false;
    while let Some(event) = pair.server.conn.poll_event() {
        match event {
            Event::Message(m) => pair.server.conn.send(pair.now, m).unwrap(),
            Event::Closed(r) => {
                assert_eq!(r.code(), CloseCode(1002));
                closed = true;
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(closed);
    let f = frames(&pair.server.take_output());
    assert_eq!(f.len(), 2, "{f:?}");
    assert_eq!(
        (f[0].header.opcode, &f[0].payload[..]),
        (OpCode::Text, &b"Hello"[..])
    );
    assert_eq!(f[1].header.opcode, OpCode::Close);
    assert!(pair.server.shut_down);
}

/// Input keeps the keep-alive from pinging; the first ping goes out one full interval after
/// the last input, whenever the timer that input did not move comes due in between.
#[test]
fn timer_keepalive_waits_a_full_interval_after_the_last_input() {
    let mut quiet_client = Config::default();
    quiet_client.timeouts.ping_interval = None;
    let mut pair = Pair::open_with(quiet_client, Config::default());
    let server_pings = |pair: &Pair| {
        frames(after_head(&pair.server.wire))
            .iter()
            .filter(|f| f.header.opcode == OpCode::Ping)
            .count()
    };
    // A message every 7 s for 203 s: never 20 s without input.
    for _ in 0..29 {
        pair.advance(Duration::from_secs(7));
        pair.client
            .conn
            .send(pair.now, Message::Text("tick".into()))
            .unwrap();
        pair.drive();
    }
    assert_eq!(server_pings(&pair), 0);
    assert_eq!(pair.server.messages().len(), 29);
    let last = pair.now;
    // The server's timer, armed before the last inputs, comes due first; it waits on.
    pair.advance(Duration::from_millis(19_999));
    assert_eq!(server_pings(&pair), 0);
    assert_eq!(
        pair.server.conn.poll_timeout(),
        Some(last + Duration::from_secs(20))
    );
    pair.advance(Duration::from_millis(1));
    assert_eq!(server_pings(&pair), 1, "a ping 20 s after the last input");
}

#[test]
fn timer_handshake_timeout() {
    let mut pair = Pair::new(Config::default(), Config::default());
    // The request never reaches the server.
    pair.advance(Duration::from_secs(10));
    pair.server.drain_events();
    assert!(matches!(
        pair.server.closed(),
        Some(CloseReason::TimedOut(Timeout::Handshake))
    ));
    assert!(pair.server.shut_down);
}

#[test]
fn timer_keepalive_ping_sent_after_interval_and_answered() {
    let mut pair = Pair::open();
    pair.advance(Duration::from_secs(19));
    assert!(
        !frames(after_head(&pair.client.wire))
            .iter()
            .any(|f| f.header.opcode == OpCode::Ping)
    );
    pair.advance(Duration::from_secs(1));
    let pings = |w: &[u8]| {
        frames(after_head(w))
            .iter()
            .filter(|f| f.header.opcode == OpCode::Ping)
            .count()
    };
    assert!(pings(&pair.client.wire) >= 1);
    // Answered, so a long quiet period keeps the connection open.
    pair.advance(Duration::from_secs(600));
    assert_eq!(pair.client.conn.state(), State::Open);
    assert_eq!(pair.server.conn.state(), State::Open);
    assert!(pings(&pair.client.wire) >= 20);
}

#[test]
fn timer_pong_deadline_declares_a_silent_peer_dead() {
    let mut pair = Pair::open();
    // The server's process hangs: it keeps TCP open but never answers.
    let start = pair.now;
    let mut client = std::mem::replace(
        &mut pair.client.conn,
        Connection::server(Config::default(), start),
    );
    let mut now = start;
    let mut buf = Vec::new();
    while client.state() == State::Open {
        now = client.poll_timeout().unwrap();
        client.handle_timeout(now);
        client.poll_transmit(&mut buf);
    }
    assert_eq!(
        now - start,
        Duration::from_secs(40),
        "ping interval + pong timeout"
    );
    let mut closed = None;
    while let Some(e) = client.poll_event() {
        if let Event::Closed(r) = e {
            closed = Some(r);
        }
    }
    assert!(matches!(closed, Some(CloseReason::TimedOut(Timeout::Pong))));
    assert_eq!(client.poll_transmit(&mut buf), Some(Transmit::Shutdown));
}

#[test]
fn timer_keepalive_suspended_while_the_caller_pauses_input() {
    let mut pair = Pair::open();
    let start = pair.now;
    // The client's application is behind: its adapter stops reading. Nothing the server
    // sends is seen meanwhile, so neither a ping nor a pong deadline may run.
    let mut client = std::mem::replace(
        &mut pair.client.conn,
        Connection::server(Config::default(), start),
    );
    client.set_input_paused(start, true);
    let mut buf = Vec::new();
    assert_eq!(client.poll_timeout(), None, "no timer while paused");
    client.handle_timeout(start + Duration::from_secs(600));
    assert_eq!(client.state(), State::Open);
    assert_eq!(client.poll_transmit(&mut buf), None, "no ping while paused");
    // Resumed: the keep-alive starts again from then, and a silent peer is still caught.
    let resumed = start + Duration::from_secs(600);
    client.set_input_paused(resumed, false);
    assert_eq!(
        client.poll_timeout(),
        Some(resumed + Duration::from_secs(20))
    );
    let mut now = resumed;
    while client.state() == State::Open {
        now = client.poll_timeout().unwrap();
        client.handle_timeout(now);
        client.poll_transmit(&mut buf);
    }
    assert_eq!(now - resumed, Duration::from_secs(40));
    let closed = std::iter::from_fn(|| client.poll_event()).last();
    assert!(matches!(
        closed,
        Some(Event::Closed(CloseReason::TimedOut(Timeout::Pong)))
    ));
}

#[test]
fn timer_pause_during_the_pong_deadline_cancels_it() {
    let mut pair = Pair::open();
    let mut client = std::mem::replace(
        &mut pair.client.conn,
        Connection::server(Config::default(), pair.now),
    );
    // A ping goes out; before any pong is read, the caller pauses its input.
    let ping_at = client.poll_timeout().unwrap();
    client.handle_timeout(ping_at);
    let mut buf = Vec::new();
    assert_eq!(client.poll_transmit(&mut buf), Some(Transmit::Data));
    assert_eq!(
        client.poll_timeout(),
        Some(ping_at + Duration::from_secs(20))
    );
    client.set_input_paused(ping_at, true);
    assert_eq!(client.poll_timeout(), None);
    client.handle_timeout(ping_at + Duration::from_secs(300));
    assert_eq!(client.state(), State::Open);
}

#[test]
fn timer_idle_timeout_of_five_minutes_runs_instantly() {
    let mut cfg = Config::default();
    cfg.timeouts.idle = Some(Duration::from_secs(300));
    let mut pair = Pair::open_with(Config::default(), cfg);
    pair.advance(Duration::from_secs(200));
    pair.client
        .conn
        .send(pair.now, Message::text("still here"))
        .unwrap();
    pair.drive();
    pair.advance(Duration::from_secs(299));
    assert_eq!(
        pair.server.conn.state(),
        State::Open,
        "data reset the idle timer"
    );
    pair.advance(Duration::from_secs(1));
    assert!(matches!(
        pair.server.closed(),
        Some(CloseReason::TimedOut(Timeout::Idle))
    ));
    // The close handshake ran: the client saw 1001.
    assert_eq!(pair.client.closed().unwrap().code(), CloseCode::GOING_AWAY);
    assert!(pair.server.shut_down && pair.client.shut_down);
}

#[test]
fn rfc6455_7_1_2_idle_timeout_reports_closed_only_once_the_handshake_ends() {
    let mut cfg = Config::default();
    cfg.timeouts.idle = Some(Duration::from_secs(60));
    cfg.timeouts.ping_interval = None;
    let mut pair = Pair::open_with(Config::default(), cfg);
    let deadline = pair.server.conn.poll_timeout().unwrap();
    pair.now = deadline;
    pair.server.conn.handle_timeout(deadline);
    pair.server.drain_events();
    // The close frame is queued; the WebSocket is not closed yet, so no terminal event.
    assert_eq!(pair.server.conn.state(), State::Closing);
    assert!(pair.server.closed().is_none());
    assert!(
        pair.server
            .conn
            .send(pair.now, Message::text("late"))
            .is_err()
    );
    // The client answers: now it is closed, for being idle.
    pair.drive();
    assert_eq!(pair.server.conn.state(), State::Closed);
    assert!(matches!(
        pair.server.closed(),
        Some(CloseReason::TimedOut(Timeout::Idle))
    ));
    assert_eq!(pair.server.events.len(), 1);
    assert_eq!(pair.client.closed().unwrap().code(), CloseCode::GOING_AWAY);
}

#[test]
fn rfc6455_7_1_2_idle_timeout_with_a_silent_peer_ends_at_the_close_timeout() {
    let mut cfg = Config::default();
    cfg.timeouts.idle = Some(Duration::from_secs(60));
    cfg.timeouts.ping_interval = None;
    cfg.timeouts.close = Some(Duration::from_secs(5));
    let mut pair = Pair::open_with(Config::default(), cfg);
    let idle = pair.server.conn.poll_timeout().unwrap();
    pair.server.conn.handle_timeout(idle);
    pair.server.take_output(); // lost: the client never sees the close frame
    assert_eq!(pair.server.conn.state(), State::Closing);
    assert!(pair.server.conn.poll_event().is_none());
    let close = pair.server.conn.poll_timeout().unwrap();
    assert_eq!(close, idle + Duration::from_secs(5));
    pair.server.conn.handle_timeout(close);
    assert_eq!(pair.server.conn.state(), State::Closed);
    assert!(matches!(
        pair.server.conn.poll_event(),
        Some(Event::Closed(CloseReason::TimedOut(Timeout::Idle)))
    ));
    assert!(pair.server.conn.poll_event().is_none());
}

#[test]
fn timer_close_timeout_when_peer_never_answers() {
    let mut pair = Pair::open();
    pair.client
        .conn
        .close(pair.now, CloseCode::NORMAL, "")
        .unwrap();
    pair.client.take_output(); // lost
    pair.advance(Duration::from_secs(5));
    assert!(matches!(
        pair.client.closed(),
        Some(CloseReason::TimedOut(Timeout::Close))
    ));
    assert!(pair.client.shut_down);
}

#[test]
fn timer_handle_timeout_is_a_noop_when_nothing_is_due() {
    let mut pair = Pair::open();
    let deadline = pair.client.conn.poll_timeout().unwrap();
    pair.client.conn.handle_timeout(pair.now);
    assert_eq!(pair.client.conn.poll_timeout(), Some(deadline));
    assert!(pair.client.take_output().is_empty());
    pair.client.drain_events();
    assert!(pair.client.events.is_empty());
}

#[test]
fn memory_idle_open_connection_holds_no_buffers() {
    let mut pair = Pair::open();
    for i in 0..10 {
        pair.client
            .conn
            .send(pair.now, Message::binary(vec![i; 100_000]))
            .unwrap();
        pair.server
            .conn
            .send(pair.now, Message::text("ok"))
            .unwrap();
        pair.drive();
    }
    assert_eq!(pair.server.messages().len(), 10);
    assert_eq!(pair.client.conn.buffer_capacity(), 0);
    assert_eq!(pair.server.conn.buffer_capacity(), 0);
    println!(
        "idle open connection: {} bytes of buffers (client), {} (server); struct size {} bytes",
        pair.client.conn.buffer_capacity(),
        pair.server.conn.buffer_capacity(),
        std::mem::size_of::<Connection>()
    );
}

#[test]
fn prepared_frame_is_encoded_once_and_shared() {
    let prepared = PreparedFrame::new(&Message::text("broadcast")).unwrap();
    let mut pairs: Vec<Pair> = (0..3).map(|_| Pair::open()).collect();
    for pair in &mut pairs {
        pair.server.conn.send_prepared(pair.now, &prepared).unwrap();
        pair.drive();
        assert_eq!(pair.client.messages(), [Message::text("broadcast")]);
        assert!(pair.server.wire.ends_with(prepared.as_bytes()));
    }
    // A client connection masks the prepared message itself.
    let mut pair = Pair::open();
    pair.client.conn.send_prepared(pair.now, &prepared).unwrap();
    pair.drive();
    assert_eq!(pair.server.messages(), [Message::text("broadcast")]);
}

#[test]
fn streaming_fragments_without_reassembly() {
    let mut cfg = Config::default();
    cfg.stream_fragments = true;
    cfg.limits.max_message_size = usize::MAX;
    cfg.limits.max_frame_size = 1 << 16;
    cfg.limits.max_buffered_input = 1 << 17;
    let mut pair = Pair::open_with(Config::default(), cfg);
    // A 4 MiB upload in 64 KiB frames, taken fragment by fragment.
    let mut total = 0usize;
    let mut first_seen = false;
    for i in 0..64 {
        let wire = client_frame(i == 63, if i == 0 { 2 } else { 0 }, &vec![i as u8; 1 << 16]);
        pair.server.conn.handle_input(pair.now, &wire);
        while let Some(e) = pair.server.conn.poll_event() {
            match e {
                Event::Fragment(f) => {
                    assert_eq!(f.kind, DataKind::Binary);
                    assert_eq!(f.first, !first_seen);
                    first_seen = true;
                    assert_eq!(f.last, i == 63);
                    total += f.data.len();
                }
                other => panic!("{other:?}"),
            }
        }
        assert!(pair.server.conn.buffered_input() <= 1 << 17);
    }
    assert_eq!(total, 4 << 20);
}

#[test]
fn outgoing_messages_can_be_fragmented() {
    let mut cfg = Config::default();
    cfg.max_outgoing_frame_size = Some(10);
    let mut pair = Pair::open_with(cfg, Config::default());
    pair.client
        .conn
        .send(
            pair.now,
            Message::text("a message of 35 bytes, in 4 frames"),
        )
        .unwrap();
    let out = pair.client.take_output();
    assert_eq!(frames(&out).len(), 4);
    pair.server.conn.handle_input(pair.now, &out);
    pair.server.drain_events();
    assert_eq!(
        pair.server.messages(),
        [Message::text("a message of 35 bytes, in 4 frames")]
    );
}

#[test]
fn large_messages_round_trip_in_small_chunks() {
    let mut pair = Pair::open();
    pair.chunk = 1000;
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    pair.client
        .conn
        .send(pair.now, Message::binary(big.clone()))
        .unwrap();
    pair.drive();
    assert_eq!(pair.server.messages(), [Message::binary(big)]);
}

/// Timeouts as long as `Duration::MAX` ("practically never") are accepted: no deadline
/// overflows, and the connection works, idles and closes as with the defaults.
#[test]
fn the_deadline_counted_from_the_start_matches_poll_timeout() {
    let start = std::time::Instant::now();
    let server = Connection::server(Config::default(), start);
    assert_eq!(server.created_at(), start);
    // Only the handshake timeout (10 s by default) runs before the request.
    assert_eq!(
        server.poll_timeout_since_start(),
        Some(Duration::from_secs(10))
    );
    assert_eq!(server.poll_timeout(), Some(start + Duration::from_secs(10)));
    let mut config = Config::default();
    config.timeouts.handshake = None;
    let server = Connection::server(config, start);
    assert_eq!(server.poll_timeout_since_start(), None);
    assert_eq!(server.poll_timeout(), None);
}

#[test]
fn timeouts_of_any_length_never_overflow() {
    let mut config = Config::default();
    config.timeouts.handshake = Some(Duration::MAX);
    config.timeouts.ping_interval = Some(Duration::MAX);
    config.timeouts.pong_timeout = Some(Duration::MAX);
    config.timeouts.idle = Some(Duration::MAX);
    config.timeouts.close = Some(Duration::MAX);
    let mut pair = Pair::open_with(config.clone(), config);
    let start = pair.now;
    for side in [&pair.client, &pair.server] {
        let at = side.conn.poll_timeout().expect("keep-alive armed");
        assert!(at > start + Duration::from_secs(100 * 365 * 24 * 3600));
        // The same deadline counted from the connection's start.
        let after = side
            .conn
            .poll_timeout_since_start()
            .expect("keep-alive armed");
        assert_eq!(side.conn.created_at() + after, at);
    }
    pair.client
        .conn
        .send(pair.now, Message::Text("hi".into()))
        .unwrap();
    pair.drive();
    assert_eq!(pair.server.messages(), [Message::Text("hi".into())]);
    pair.advance(Duration::from_secs(3600));
    assert!(pair.server.closed().is_none() && pair.client.closed().is_none());
    pair.client
        .conn
        .close(pair.now, CloseCode::NORMAL, "bye")
        .unwrap();
    pair.drive();
    assert!(
        matches!(pair.server.closed(), Some(CloseReason::Clean { .. })),
        "{:?}",
        pair.server.closed()
    );
}
