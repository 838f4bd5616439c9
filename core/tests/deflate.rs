//! permessage-deflate (RFC 7692) through whole connections.

mod util;

use std::time::Duration;
use tether_core::{
    CloseCode, CloseReason, Config, DeflateConfig, DeflateParams, Event, Message, OpCode,
    PreparedFrame, ProtocolError,
};
use util::*;

fn deflate_config(f: impl FnOnce(&mut DeflateConfig)) -> Config {
    let mut d = DeflateConfig::enabled();
    f(&mut d);
    let mut cfg = Config::default();
    cfg.deflate = d;
    cfg
}

fn text(n: usize) -> String {
    "The quick brown fox jumps over the lazy dog. ".repeat(n / 45 + 1)[..n].to_string()
}

#[test]
fn rfc7692_5_negotiated_and_messages_round_trip_compressed() {
    let mut pair = Pair::open_with(deflate_config(|_| {}), deflate_config(|_| {}));
    let params = pair.client.conn.deflate_params().expect("negotiated");
    assert_eq!(Some(params), pair.server.conn.deflate_params());
    for n in [0, 1, 31, 32, 1000, 100_000] {
        pair.client
            .conn
            .send(pair.now, Message::text(text(n)))
            .unwrap();
        pair.server
            .conn
            .send(pair.now, Message::binary(text(n).into_bytes()))
            .unwrap();
    }
    let up = pair.client.take_output();
    let f = frames(&up);
    // RSV1 on messages at or above the 32-byte threshold only (§6).
    let rsv: Vec<bool> = f.iter().map(|f| f.header.rsv1).collect();
    assert_eq!(rsv, [false, false, false, true, true, true]);
    assert!(
        up.len() < 20_000,
        "100 kB of repetitive text compresses: {}",
        up.len()
    );
    pair.server.conn.handle_input(pair.now, &up);
    pair.drive();
    let got: Vec<Message> = pair.server.messages();
    assert_eq!(got.len(), 6);
    for (m, n) in got.iter().zip([0, 1, 31, 32, 1000, 100_000]) {
        assert_eq!(*m, Message::text(text(n)));
    }
    assert_eq!(pair.client.messages().len(), 6);
}

#[test]
fn rfc7692_7_1_declined_when_one_side_disabled() {
    let pair = Pair::open_with(deflate_config(|_| {}), Config::default());
    assert!(pair.client.conn.deflate_params().is_none());
    assert!(pair.server.conn.deflate_params().is_none());
}

#[test]
fn rfc7692_7_1_1_no_context_takeover_both_ways() {
    let cfg = deflate_config(|d| {
        d.server_no_context_takeover = true;
        d.client_no_context_takeover = true;
    });
    let mut pair = Pair::open_with(cfg.clone(), cfg);
    let p = pair.server.conn.deflate_params().unwrap();
    assert!(p.server_no_context_takeover && p.client_no_context_takeover);
    for _ in 0..3 {
        pair.server
            .conn
            .send(pair.now, Message::text(text(500)))
            .unwrap();
    }
    let down = pair.server.take_output();
    let f = frames(&down);
    // Without context takeover, identical messages compress identically.
    assert_eq!(f[0].payload, f[1].payload);
    assert_eq!(f[1].payload, f[2].payload);
    pair.client.conn.handle_input(pair.now, &down);
    pair.client.drain_events();
    assert_eq!(pair.client.messages().len(), 3);
}

#[test]
fn rfc7692_7_1_2_small_windows_round_trip() {
    for bits in [8u8, 9, 10, 12, 15] {
        let cfg = deflate_config(|d| {
            d.server_max_window_bits = bits;
            d.client_max_window_bits = bits;
        });
        let mut pair = Pair::open_with(cfg.clone(), cfg);
        let p = pair.client.conn.deflate_params().unwrap();
        assert_eq!(p.server_max_window_bits, bits, "{p:?}");
        let msg = Message::binary(
            (0..200_000u32)
                .map(|i| (i * 7 % 251) as u8)
                .collect::<Vec<_>>(),
        );
        pair.client.conn.send(pair.now, msg.clone()).unwrap();
        pair.server.conn.send(pair.now, msg.clone()).unwrap();
        pair.drive();
        assert_eq!(
            pair.server.messages(),
            std::slice::from_ref(&msg),
            "bits {bits}"
        );
        assert_eq!(pair.client.messages(), [msg], "bits {bits}");
    }
}

#[test]
fn rfc7692_6_1_compressed_messages_fragmented_both_ways() {
    let mut cfg = deflate_config(|_| {});
    cfg.max_outgoing_frame_size = Some(100);
    let mut pair = Pair::open_with(cfg.clone(), cfg);
    let msg = Message::text(text(50_000) + "ünïcödé");
    pair.client.conn.send(pair.now, msg.clone()).unwrap();
    let up = pair.client.take_output();
    let f = frames(&up);
    assert!(f.len() > 1);
    assert!(f[0].header.rsv1 && f[0].header.opcode == OpCode::Text);
    assert!(
        f[1..]
            .iter()
            .all(|f| !f.header.rsv1 && f.header.opcode == OpCode::Continuation)
    );
    // Delivered in odd chunks.
    for piece in up.chunks(37) {
        pair.server.conn.handle_input(pair.now, piece);
    }
    pair.server.drain_events();
    assert_eq!(pair.server.messages(), [msg]);
}

#[test]
fn rfc7692_per_message_opt_out() {
    let mut pair = Pair::open_with(deflate_config(|_| {}), deflate_config(|_| {}));
    pair.client
        .conn
        .send_uncompressed(pair.now, Message::binary(vec![0u8; 10_000]))
        .unwrap();
    let up = pair.client.take_output();
    assert!(!frames(&up)[0].header.rsv1);
    assert!(up.len() > 10_000);
}

#[test]
fn rfc7692_7_2_2_decompression_bomb_closes_with_1009_in_bounded_memory() {
    let mut server_cfg = deflate_config(|_| {});
    server_cfg.limits.max_message_size = 1 << 20;
    let mut pair = Pair::open_with(deflate_config(|_| {}), server_cfg);
    // 64 MiB of zeros compresses to about 64 KiB.
    pair.client
        .conn
        .send(pair.now, Message::binary(vec![0u8; 64 << 20]))
        .unwrap();
    let up = pair.client.take_output();
    assert!(up.len() < 200_000, "{}", up.len());
    let mut max_capacity = 0;
    for piece in up.chunks(4096) {
        pair.server.conn.handle_input(pair.now, piece);
        max_capacity = max_capacity.max(pair.server.conn.buffer_capacity());
    }
    pair.server.drain_events();
    assert!(matches!(
        pair.server.closed(),
        Some(CloseReason::ProtocolError {
            error: ProtocolError::MessageTooLarge,
            code: CloseCode::MESSAGE_TOO_BIG
        })
    ));
    assert!(max_capacity <= 2 << 20, "buffers grew to {max_capacity}");
}

#[test]
fn rfc7692_invalid_utf8_in_compressed_text_is_1007() {
    // Compress invalid UTF-8 as a binary message on a client, then flip the opcode to text.
    let mut pair = Pair::open_with(deflate_config(|_| {}), deflate_config(|_| {}));
    let mut bad = text(1000).into_bytes();
    bad[500] = 0xFF;
    pair.client
        .conn
        .send(pair.now, Message::binary(bad))
        .unwrap();
    let mut up = pair.client.take_output();
    assert_eq!(up[0] & 0x0F, 2);
    up[0] = (up[0] & 0xF0) | 1;
    pair.server.conn.handle_input(pair.now, &up);
    pair.server.drain_events();
    assert_eq!(
        pair.server.closed().unwrap().code(),
        CloseCode::INVALID_PAYLOAD
    );
}

#[test]
fn rfc7692_6_rsv1_on_continuation_or_without_negotiation_fails() {
    let mut pair = Pair::open();
    let mut f = client_frame(true, 2, b"x");
    f[0] |= 0x40;
    pair.server.conn.handle_input(pair.now, &f);
    pair.server.drain_events();
    assert_eq!(pair.server.closed().unwrap().code(), CloseCode(1002));

    let mut pair = Pair::open_with(deflate_config(|_| {}), deflate_config(|_| {}));
    let mut wire = client_frame(false, 2, b"x");
    let mut cont = client_frame(true, 0, b"y");
    cont[0] |= 0x40;
    wire.extend(cont);
    pair.server.conn.handle_input(pair.now, &wire);
    pair.server.drain_events();
    assert_eq!(pair.server.closed().unwrap().code(), CloseCode(1002));
}

#[test]
fn rfc7692_prepared_frame_compressed_once_for_no_context_takeover_peers() {
    let shared = deflate_config(|d| d.server_no_context_takeover = true);
    let prepared = PreparedFrame::new(&Message::text(text(5000)))
        .unwrap()
        .compressed(15, 6);
    let mut bodies = Vec::new();
    for _ in 0..3 {
        let mut pair = Pair::open_with(deflate_config(|_| {}), shared.clone());
        pair.server.conn.send_prepared(pair.now, &prepared).unwrap();
        let down = pair.server.take_output();
        bodies.push(down.clone());
        pair.client.conn.handle_input(pair.now, &down);
        pair.client.drain_events();
        assert_eq!(pair.client.messages(), [Message::text(text(5000))]);
    }
    assert!(bodies.windows(2).all(|w| w[0] == w[1]));
    assert!(frames(&bodies[0])[0].header.rsv1);
    // With context takeover, the connection compresses with its own context instead.
    let mut pair = Pair::open_with(deflate_config(|_| {}), deflate_config(|_| {}));
    pair.server.conn.send_prepared(pair.now, &prepared).unwrap();
    pair.server.conn.send_prepared(pair.now, &prepared).unwrap();
    pair.drive();
    assert_eq!(pair.client.messages().len(), 2);
}

#[test]
fn rfc7692_compression_state_is_released_when_quiet_without_takeover() {
    let cfg = deflate_config(|d| {
        d.server_no_context_takeover = true;
        d.client_no_context_takeover = true;
    });
    let mut pair = Pair::open_with(cfg.clone(), cfg);
    assert!(
        !pair.server.conn.has_compression_state(),
        "allocated lazily"
    );
    pair.client
        .conn
        .send(pair.now, Message::text(text(1000)))
        .unwrap();
    pair.server
        .conn
        .send(pair.now, Message::text(text(1000)))
        .unwrap();
    pair.drive();
    assert!(pair.server.conn.has_compression_state());
    pair.advance(Duration::from_secs(21));
    assert!(!pair.server.conn.has_compression_state());
    assert!(!pair.client.conn.has_compression_state());
    // And rebuilt on demand.
    pair.client
        .conn
        .send(pair.now, Message::text(text(1000)))
        .unwrap();
    pair.drive();
    assert_eq!(pair.server.messages().len(), 2);
}

#[test]
fn rfc7692_opened_connection_with_given_params() {
    let params = DeflateParams {
        server_no_context_takeover: false,
        client_no_context_takeover: false,
        server_max_window_bits: 15,
        client_max_window_bits: 15,
    };
    let now = std::time::Instant::now();
    let mut client = tether_core::Connection::open(
        Config::default(),
        tether_core::Role::Client,
        Some(params),
        seed(),
        now,
    );
    let mut server = tether_core::Connection::open(
        Config::default(),
        tether_core::Role::Server,
        Some(params),
        seed(),
        now,
    );
    client.send(now, Message::text(text(300))).unwrap();
    let mut buf = Vec::new();
    client.poll_transmit(&mut buf);
    assert!(frames(&buf)[0].header.rsv1);
    server.handle_input(now, &buf);
    match server.poll_event() {
        Some(Event::Message(m)) => assert_eq!(m, Message::text(text(300))),
        other => panic!("{other:?}"),
    }
}
