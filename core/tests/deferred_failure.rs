//! `Connection::has_deferred_end`: what an adapter with its own event queue checks so
//! that replies to messages decoded before a peer's violation go out before the close.

use std::time::Instant;
use tether_core::{Accept, ClientRequest, CloseCode, Config, Connection, Event, Message, Transmit};

fn output(conn: &mut Connection) -> Vec<u8> {
    let mut buf = Vec::new();
    while let Some(Transmit::Data) = conn.poll_transmit(&mut buf) {}
    buf
}

#[test]
fn rfc6455_7_1_7_failure_behind_messages_is_reported_as_deferred() {
    let now = Instant::now();
    let request = ClientRequest::new("ws://example.com/").unwrap();
    let mut client = Connection::client(Config::default(), &request, [3; 32], now).unwrap();
    let mut server = Connection::server(Config::default(), now);
    server.handle_input(now, &output(&mut client));
    assert!(matches!(server.poll_event(), Some(Event::Request(_))));
    server.accept(now, Accept::new()).unwrap();
    client.handle_input(now, &output(&mut server));
    assert!(matches!(client.poll_event(), Some(Event::Connected(_))));
    assert!(!server.has_deferred_end());

    // Two messages and a frame with a reserved opcode (§5.2), in one read.
    client.send(now, Message::text("a")).unwrap();
    client.send(now, Message::text("b")).unwrap();
    let mut input = output(&mut client);
    input.extend_from_slice(&[0x83, 0x80, 0, 0, 0, 0]);
    server.handle_input(now, &input);
    assert!(server.has_deferred_end());
    assert!(server.has_events());

    assert!(matches!(server.poll_event(), Some(Event::Message(Message::Text(t))) if t == "a"));
    assert!(server.has_deferred_end());
    assert!(matches!(server.poll_event(), Some(Event::Message(Message::Text(t))) if t == "b"));
    // The failure itself is the next event.
    assert!(server.has_events());
    server.send(now, Message::text("reply")).unwrap();
    // Taking the next event fails the connection, after the reply.
    match server.poll_event() {
        Some(Event::Closed(reason)) => assert_eq!(reason.code(), CloseCode::PROTOCOL_ERROR),
        other => panic!("{other:?}"),
    }
    assert!(!server.has_deferred_end());
    assert!(!server.has_events());
    client.handle_input(now, &output(&mut server));
    assert!(matches!(client.poll_event(), Some(Event::Message(Message::Text(t))) if t == "reply"));
    match client.poll_event() {
        Some(Event::Closed(reason)) => assert_eq!(reason.code(), CloseCode::PROTOCOL_ERROR),
        other => panic!("{other:?}"),
    }
}
