//! A peer's close frame that arrives behind messages the application has not taken yet
//! (RFC 6455 §5.5.1): the replies to those messages go out before the close echo.

mod util;

use std::time::Duration;
use tether_core::{CloseCode, CloseReason, Config, Event, Message, OpCode, State};
use util::{Pair, Side, frames};

const N: usize = 100;

/// Queues `N` text messages and a close frame on `peer`, and returns them as one write.
fn messages_then_close(peer: &mut Side, now: std::time::Instant) -> Vec<u8> {
    for i in 0..N {
        peer.conn.send(now, Message::text(format!("m{i}"))).unwrap();
    }
    peer.conn.close(now, CloseCode::NORMAL, "bye").unwrap();
    peer.take_output()
}

/// `app` receives `N` messages and a close in one input, replies to each after taking it,
/// and the peer receives every reply before the close echo.
fn replies_go_out_before_the_echo(app: &mut Side, peer: &mut Side, now: std::time::Instant) {
    let input = messages_then_close(peer, now);
    app.conn.handle_input(now, &input);
    assert!(app.conn.has_deferred_end());
    assert_eq!(app.conn.state(), State::Open);
    // Nothing is echoed yet.
    assert!(app.take_output().is_empty());

    for i in 0..N {
        match app.conn.poll_event() {
            Some(Event::Message(Message::Text(t))) => assert_eq!(t, format!("m{i}").as_str()),
            other => panic!("message {i}: {other:?}"),
        }
        assert_eq!(app.conn.state(), State::Open);
        app.conn
            .send(now, Message::text(format!("re m{i}")))
            .unwrap();
    }
    assert!(app.conn.has_events());
    match app.conn.poll_event() {
        Some(Event::Closed(CloseReason::Clean {
            initiated_locally: false,
            remote: Some(remote),
            ..
        })) => {
            assert_eq!(remote.code, CloseCode::NORMAL);
            assert_eq!(remote.reason, "bye");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(app.conn.state(), State::Closed);
    assert!(!app.conn.has_deferred_end());
    assert!(app.conn.poll_event().is_none());

    let out = app.take_output();
    let sent = frames(&out);
    assert_eq!(sent.len(), N + 1);
    for (i, f) in sent[..N].iter().enumerate() {
        assert_eq!(f.header.opcode, OpCode::Text);
        assert_eq!(&f.payload[..], format!("re m{i}").as_bytes());
    }
    assert_eq!(sent[N].header.opcode, OpCode::Close);
    assert_eq!(&sent[N].payload[..2], &1000u16.to_be_bytes());

    peer.conn.handle_input(now, &out);
    peer.drain_events();
    let replies = peer.messages();
    assert_eq!(replies.len(), N);
    for (i, m) in replies.iter().enumerate() {
        assert!(matches!(m, Message::Text(t) if t == format!("re m{i}").as_str()));
    }
    match peer.events.last() {
        Some(Event::Closed(reason @ CloseReason::Clean { .. })) => {
            assert!(matches!(
                reason,
                CloseReason::Clean {
                    initiated_locally: true,
                    ..
                }
            ));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(peer.conn.state(), State::Closed);
}

#[test]
fn rfc6455_5_5_1_server_replies_to_messages_before_echoing_the_close() {
    let mut pair = Pair::open();
    let now = pair.now;
    replies_go_out_before_the_echo(&mut pair.server, &mut pair.client, now);
    // §7.1.1: the server closes the transport after the echo.
    pair.server.take_output();
    assert!(pair.server.shut_down);
}

#[test]
fn rfc6455_5_5_1_client_replies_to_messages_before_echoing_the_close() {
    let mut pair = Pair::open();
    let now = pair.now;
    replies_go_out_before_the_echo(&mut pair.client, &mut pair.server, now);
    // The client waits for the server to close TCP, and the server does.
    pair.server.take_output();
    assert!(pair.server.shut_down);
    pair.drive();
    assert!(pair.client.shut_down);
}

#[test]
fn rfc6455_5_5_1_input_after_a_deferred_close_is_discarded() {
    let mut pair = Pair::open();
    let now = pair.now;
    let mut input = messages_then_close(&mut pair.client, now);
    // Bytes after the close frame (a peer must send none): dropped, as is later input.
    input.extend_from_slice(&util::client_frame(true, 1, b"after"));
    pair.server.conn.handle_input(now, &input);
    pair.server
        .conn
        .handle_input(now, &util::client_frame(true, 1, b"later"));
    pair.server.conn.handle_eof(now);
    pair.server.drain_events();
    assert_eq!(pair.server.messages().len(), N);
    assert_eq!(pair.server.events.len(), N + 1);
    assert!(pair.server.closed().is_some_and(CloseReason::is_clean));
}

#[test]
fn rfc6455_5_5_1_deferred_close_is_bounded_by_the_close_timeout() {
    for server_is_app in [true, false] {
        let mut cfg = Config::default();
        cfg.timeouts.close = Some(Duration::from_secs(5));
        cfg.timeouts.ping_interval = Some(Duration::from_secs(1));
        let mut pair = Pair::open_with(cfg.clone(), cfg);
        let now = pair.now;
        let (app, peer) = if server_is_app {
            (&mut pair.server, &mut pair.client)
        } else {
            (&mut pair.client, &mut pair.server)
        };
        let input = messages_then_close(peer, now);
        app.conn.handle_input(now, &input);
        // The application takes one message and answers it, then stalls.
        assert!(matches!(app.conn.poll_event(), Some(Event::Message(_))));
        app.conn.send(now, Message::text("re m0")).unwrap();
        assert!(app.take_output().len() > 2);
        // Only the close timer runs (no keep-alive ping while the end waits).
        let deadline = app.conn.poll_timeout().unwrap();
        assert_eq!(deadline, now + Duration::from_secs(5));
        app.conn.handle_timeout(now + Duration::from_millis(4999));
        assert!(app.conn.has_deferred_end());
        assert!(app.take_output().is_empty());

        app.conn.handle_timeout(deadline);
        assert!(!app.conn.has_deferred_end());
        assert_eq!(app.conn.state(), State::Closed);
        // The echo goes out and the transport is shut down.
        let out = app.take_output();
        assert!(app.shut_down);
        let sent = frames(&out);
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].header.opcode, OpCode::Close);
        // The untaken messages stay in front of the terminal event.
        app.drain_events();
        assert_eq!(app.messages().len(), N - 1);
        assert_eq!(app.events.len(), N);
        assert!(matches!(
            app.events.last(),
            Some(Event::Closed(CloseReason::Clean {
                initiated_locally: false,
                ..
            }))
        ));
    }
}

#[test]
fn rfc6455_5_5_1_close_without_pending_messages_is_echoed_at_once() {
    for server_is_app in [true, false] {
        let mut pair = Pair::open();
        let now = pair.now;
        let (app, peer) = if server_is_app {
            (&mut pair.server, &mut pair.client)
        } else {
            (&mut pair.client, &mut pair.server)
        };
        // A message that was taken already does not hold the close back.
        peer.conn.send(now, Message::text("first")).unwrap();
        let input = peer.take_output();
        app.conn.handle_input(now, &input);
        assert!(matches!(app.conn.poll_event(), Some(Event::Message(_))));

        peer.conn.close(now, CloseCode::NORMAL, "").unwrap();
        let input = peer.take_output();
        app.conn.handle_input(now, &input);
        assert!(!app.conn.has_deferred_end());
        assert_eq!(app.conn.state(), State::Closed);
        let sent = frames(&app.take_output());
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].header.opcode, OpCode::Close);
        assert!(matches!(
            app.conn.poll_event(),
            Some(Event::Closed(CloseReason::Clean { .. }))
        ));
    }
}

#[test]
fn rfc6455_5_5_1_local_close_while_the_peers_close_waits() {
    let mut pair = Pair::open();
    let now = pair.now;
    let input = messages_then_close(&mut pair.client, now);
    pair.server.conn.handle_input(now, &input);
    assert!(matches!(
        pair.server.conn.poll_event(),
        Some(Event::Message(_))
    ));
    // The application closes instead of answering: its close frame completes the
    // handshake with the one already received, and there is no second close frame.
    pair.server
        .conn
        .close(now, CloseCode::GOING_AWAY, "done")
        .unwrap();
    pair.server.drain_events();
    assert!(matches!(
        pair.server.events.last(),
        Some(Event::Closed(CloseReason::Clean {
            initiated_locally: true,
            ..
        }))
    ));
    let sent = frames(&pair.server.take_output());
    assert_eq!(sent.len(), 1);
    assert_eq!(&sent[0].payload[..2], &1001u16.to_be_bytes());
    assert_eq!(pair.server.conn.state(), State::Closed);
}
