//! The driver under the harness: real `WebSocket`s, an in-memory pipe, virtual time.

use super::{Sim, texts};
use crate::{Config, Error};
use std::io;
use std::time::Duration;
use tether_core::{CloseCode, Event, Message, Role};

/// No keep-alive: only what the test does happens.
fn quiet() -> Config {
    let mut config = Config::default();
    config.timeouts.ping_interval = None;
    config.timeouts.pong_timeout = None;
    config
}

/// The harness at work: an opening handshake, messages both ways, and a clean close
/// started by the peer, without sockets and without time passing.
#[test]
fn messages_go_both_ways_without_sockets() {
    let sim = Sim::new();
    let (mut ws, mut peer) = sim.accept(&quiet());
    peer.queue(Message::text("hello"));
    peer.queue(Message::text("world"));
    assert!(peer.flush());
    for _ in 0..2 {
        let message = sim.block_on(ws.recv()).unwrap().unwrap();
        sim.block_on(ws.send(message)).unwrap();
    }
    assert_eq!(peer.unread_by_driver(), 0);
    sim.run();
    assert_eq!(texts(&peer.read()), ["hello", "world"]);
    peer.close(CloseCode::NORMAL, "done");
    assert!(sim.block_on(ws.recv()).is_none());
    assert!(ws.close_reason().unwrap().is_clean());
    sim.run();
    let events = peer.read();
    assert!(
        matches!(&events[..], [Event::Closed(r)] if r.is_clean()),
        "{events:?}"
    );
    assert_eq!(sim.elapsed(), Duration::ZERO);
}

/// An idle connection has no task of its own: the background task that opening it
/// spawned ends once it has had nothing to do for a second.
#[test]
fn an_idle_connection_has_no_task_of_its_own() {
    let sim = Sim::new();
    let (_ws, _peer) = sim.open(Role::Server, &quiet());
    sim.run();
    assert!(sim.tasks() > 0);
    sim.advance(Duration::from_millis(999));
    assert!(sim.tasks() > 0);
    sim.advance(Duration::from_millis(1));
    assert_eq!(sim.tasks(), 0);
}

/// The peer's end of stream without a close frame: an abnormal closure (1006).
#[test]
fn end_of_stream_without_a_close_is_abnormal() {
    let sim = Sim::new();
    let (mut ws, mut peer) = sim.open(Role::Server, &quiet());
    peer.send(Message::text("last"));
    peer.shutdown();
    assert_eq!(
        sim.block_on(ws.recv()).unwrap().unwrap(),
        Message::text("last")
    );
    assert!(matches!(
        sim.block_on(ws.recv()),
        Some(Err(Error::Abnormal))
    ));
    assert!(sim.block_on(ws.recv()).is_none());
}

/// Transport errors, reading and writing, end the connection and are reported as such.
#[test]
fn transport_errors_are_reported() {
    let sim = Sim::new();
    let (mut ws, mut peer) = sim.open(Role::Server, &quiet());
    peer.fail_driver_read(io::ErrorKind::ConnectionReset);
    let error = sim.block_on(ws.recv());
    assert!(
        matches!(&error, Some(Err(Error::Io(e))) if e.kind() == io::ErrorKind::ConnectionReset),
        "{error:?}"
    );

    let (mut ws, mut peer) = sim.open(Role::Client, &quiet());
    peer.fail_driver_write(io::ErrorKind::BrokenPipe);
    sim.block_on(ws.send(Message::text("lost"))).unwrap();
    let error = sim.block_on(ws.recv());
    assert!(
        matches!(&error, Some(Err(Error::Io(e))) if e.kind() == io::ErrorKind::BrokenPipe),
        "{error:?}"
    );
    assert_eq!(peer.unread(), 0);
}
