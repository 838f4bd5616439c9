//! The policies a driver executes but the core decides: how long input is held for the
//! application's reply (`input_held`, `Timeouts::reply_grace`), what every handle being
//! gone means (`abandon`), and how long a closed connection's transport is kept
//! (`linger`).

mod util;

use std::time::Duration;
use tether_core::{CloseCode, Config, Event, Message, State};
use util::{Pair, client_frame};

fn text(s: &str) -> Vec<u8> {
    client_frame(true, 0x1, s.as_bytes())
}

/// A read that brings a message holds input until the application sends with nothing left
/// to take.
#[test]
fn input_is_held_until_the_application_replies() {
    let mut pair = Pair::open();
    let now = pair.now;
    let server = &mut pair.server.conn;
    assert!(!server.input_held());
    let mut input = text("a");
    input.extend(text("b"));
    server.handle_input(now, &input);
    assert!(
        server.input_held(),
        "a read that brought messages holds input"
    );
    assert!(matches!(server.poll_event(), Some(Event::Message(_))));
    // A send with a message still waiting does not end the hold: the reply to `b` comes.
    server.send(now, Message::text("re a")).unwrap();
    assert!(server.input_held());
    assert!(matches!(server.poll_event(), Some(Event::Message(_))));
    server.send(now, Message::text("re b")).unwrap();
    assert!(
        !server.input_held(),
        "the reply to the last message ends the hold"
    );
}

/// Coming back for more with nothing left ends the hold too (an application that does not
/// reply).
#[test]
fn an_empty_poll_ends_the_hold() {
    let mut pair = Pair::open();
    let now = pair.now;
    let server = &mut pair.server.conn;
    server.handle_input(now, &text("a"));
    assert!(server.input_held());
    assert!(server.poll_event().is_some());
    assert!(
        server.input_held(),
        "taking the message is not yet coming back"
    );
    assert!(server.poll_event().is_none());
    assert!(!server.input_held());
}

/// Without the application, the grace ends the hold, through the ordinary timer interface.
#[test]
fn the_grace_ends_the_hold_by_the_timer() {
    let mut pair = Pair::open();
    let now = pair.now;
    let grace = Config::default()
        .timeouts
        .reply_grace
        .expect("on by default");
    let server = &mut pair.server.conn;
    server.handle_input(now, &text("a"));
    assert!(server.input_held());
    assert_eq!(server.poll_timeout(), Some(now + grace));
    server.handle_timeout(now + grace - Duration::from_millis(1));
    assert!(server.input_held());
    server.handle_timeout(now + grace);
    assert!(!server.input_held());
    // The message is still there for the application; nothing else changed.
    assert_eq!(server.state(), State::Open);
    assert!(matches!(server.poll_event(), Some(Event::Message(_))));
}

/// The hold is counted from the first read that brought messages, not extended by later
/// ones; and `reply_grace: None` turns it off.
#[test]
fn the_hold_is_not_extended_and_can_be_turned_off() {
    let mut pair = Pair::open();
    let now = pair.now;
    let grace = Config::default().timeouts.reply_grace.unwrap();
    let server = &mut pair.server.conn;
    server.handle_input(now, &text("a"));
    server.handle_input(now + Duration::from_millis(50), &text("b"));
    assert_eq!(server.poll_timeout(), Some(now + grace));

    let mut config = Config::default();
    config.timeouts.reply_grace = None;
    let mut pair = Pair::open_with(Config::default(), config);
    let now = pair.now;
    pair.server.conn.handle_input(now, &text("a"));
    assert!(!pair.server.conn.input_held());
}

/// Only events hold input: a partial frame does not.
#[test]
fn a_partial_frame_does_not_hold_input() {
    let mut pair = Pair::open();
    let now = pair.now;
    let frame = text("hello");
    pair.server.conn.handle_input(now, &frame[..3]);
    assert!(!pair.server.conn.input_held());
    pair.server.conn.handle_input(now, &frame[3..]);
    assert!(pair.server.conn.input_held());
}

/// Every handle gone: an open connection closes with 1000 and runs its closing handshake;
/// one in its opening handshake is to be dropped at once; a closing one goes on.
#[test]
fn abandon_closes_an_open_connection_normally() {
    let mut pair = Pair::open();
    let now = pair.now;
    assert!(!pair.server.conn.abandon(now));
    assert_eq!(pair.server.conn.state(), State::Closing);
    pair.drive();
    let reason = pair.client.closed().expect("the client saw the close");
    assert_eq!(reason.code(), CloseCode::NORMAL);
    // Again, once closing or closed: nothing more happens.
    assert!(!pair.server.conn.abandon(now));

    let mut pair = Pair::new(Config::default(), Config::default());
    let now = pair.now;
    assert!(
        pair.client.conn.abandon(now),
        "a client still in its handshake"
    );
    pair.drive();
    assert_eq!(pair.server.conn.state(), State::Accepting);
    assert!(pair.server.conn.abandon(now), "a request not answered yet");
}

/// The linger is the close timeout, or 10 s without one.
#[test]
fn linger_follows_the_close_timeout() {
    let pair = Pair::open();
    assert_eq!(pair.server.conn.linger(), Duration::from_secs(5));
    let mut config = Config::default();
    config.timeouts.close = None;
    let pair = Pair::open_with(config.clone(), config);
    assert_eq!(pair.server.conn.linger(), Duration::from_secs(10));
}
