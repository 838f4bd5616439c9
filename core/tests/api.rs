//! Small conveniences of the public API: message kinds, header formatting, close codes.

mod util;

use bytes::Bytes;
use tether_core::{
    CloseCode, CloseFrame, CloseReason, Event, Header, Message, ProtocolError, SendError,
};
use util::{Pair, client_frame};

#[test]
fn rfc6455_5_6_message_kind_getters() {
    let text = Message::text("héllo");
    assert_eq!(text.as_text(), Some("héllo"));
    assert!(text.is_text());
    assert!(!text.is_binary());

    let binary = Message::binary(Bytes::from_static(b"hello"));
    assert_eq!(binary.as_text(), None);
    assert!(binary.is_binary());
    assert!(!binary.is_text());

    for control in [
        Message::Ping(Bytes::from_static(b"p")),
        Message::Pong(Bytes::new()),
        Message::Close(Some(CloseFrame::new(CloseCode::NORMAL, "text reason"))),
    ] {
        assert_eq!(control.as_text(), None, "{control:?}");
        assert!(!control.is_text() && !control.is_binary(), "{control:?}");
    }
}

#[test]
fn rfc9110_5_5_header_debug_shows_values_as_text() {
    let header = Header {
        name: "Sec-WebSocket-Protocol".into(),
        value: b"chat, superchat".to_vec(),
    };
    assert_eq!(
        format!("{header:?}"),
        r#"Header { name: "Sec-WebSocket-Protocol", value: "chat, superchat" }"#
    );
    // obs-text bytes that are not UTF-8 are shown replaced, not as numbers.
    let odd = Header {
        name: "X-Odd".into(),
        value: vec![b'a', 0xFF, b'b'],
    };
    assert_eq!(
        format!("{odd:?}"),
        "Header { name: \"X-Odd\", value: \"a\u{FFFD}b\" }"
    );

    // The headers of a request and a response print the same way.
    let mut pair = Pair::new(Default::default(), Default::default());
    pair.drive();
    let request = format!("{:?}", pair.server.events[0]);
    assert!(
        request.contains(r#"value: "websocket""#),
        "request debug: {request}"
    );
    pair.server
        .conn
        .accept(pair.now, tether_core::Accept::new())
        .unwrap();
    pair.drive();
    let response = format!("{:?}", pair.client.events[0]);
    assert!(
        response.contains(r#"name: "Upgrade", value: "websocket""#),
        "response debug: {response}"
    );
    assert!(
        !response.contains("[119, 101"),
        "response debug: {response}"
    );
}

#[test]
fn rfc6455_7_4_invalid_close_codes_are_close_code_values() {
    let mut pair = Pair::open();
    assert!(matches!(
        pair.client.conn.close(pair.now, CloseCode::ABNORMAL, ""),
        Err(SendError::InvalidCloseCode(CloseCode::ABNORMAL))
    ));
    pair.server.conn.handle_input(
        pair.now,
        &client_frame(true, 8, &CloseCode::TLS_HANDSHAKE.0.to_be_bytes()),
    );
    pair.server.drain_events();
    match pair.server.events.last() {
        Some(Event::Closed(CloseReason::ProtocolError {
            error: ProtocolError::InvalidCloseCode(code),
            code: sent,
        })) => {
            assert_eq!(*code, CloseCode::TLS_HANDSHAKE);
            assert_eq!(*sent, CloseCode::PROTOCOL_ERROR);
        }
        other => panic!("{other:?}"),
    }
}
