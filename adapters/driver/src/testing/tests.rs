//! The driver under the harness: real `WebSocket`s, an in-memory pipe, virtual time.

use super::{Peer, Sim, texts};
use crate::{Config, Error, WebSocket};
use std::io;
use std::pin::pin;
use std::task::Poll;
use std::time::Duration;
use tether_core::{CloseCode, CloseReason, Event, Message, Role, SendError, Timeout};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// No keep-alive: only what the test does happens.
fn quiet() -> Config {
    let mut config = Config::default();
    config.timeouts.ping_interval = None;
    config.timeouts.pong_timeout = None;
    config
}

/// A text message of `len` bytes that starts with its number.
fn numbered(i: usize, len: usize) -> Message {
    let mut text = format!("m{i} ");
    text.extend(std::iter::repeat_n('.', len - text.len()));
    Message::text(text)
}

/// A server connection with a write high-water mark of 1 KiB over a pipe that takes 1 KiB
/// towards a peer that reads nothing, filled with 1,000-byte messages until its output is
/// at the mark; returns it, its peer and the message's payload.
fn full_at_the_mark(sim: &Sim, mut config: Config) -> (WebSocket, Peer, bytes::Bytes) {
    config.write_high_water_mark = 1024;
    let (mut ws, peer) = sim.open_with_capacity(Role::Server, &config, 1024, 1 << 20);
    let data = bytes::Bytes::from(vec![0u8; 1000]);
    while ws.buffered_amount() < 1024 {
        sim.block_on(ws.send_binary(data.clone())).unwrap();
        sim.run();
    }
    (ws, peer, data)
}

/// Sends `message`, letting the peer read (into `replies`) whenever the send waits.
fn send_while_the_peer_reads(
    sim: &Sim,
    ws: &mut WebSocket,
    peer: &mut Peer,
    message: Message,
    replies: &mut Vec<String>,
) {
    let mut send = pin!(ws.send(message));
    while sim.poll(send.as_mut()).is_pending() {
        replies.extend(texts(&peer.read()));
        sim.run();
    }
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

/// The application echoes to a peer that sends 40 messages and reads nothing. Its sends
/// wait at the high-water mark, and the driver then stops reading the peer's input
/// (messages still wait for the application): memory is the mark plus one read. Once the
/// peer reads, the waiting send completes and the driver reads the rest.
#[test]
fn reading_pauses_while_the_output_is_at_the_high_water_mark() {
    const COUNT: usize = 40;
    let sim = Sim::new();
    let mut config = quiet();
    config.write_high_water_mark = 4096;
    let (mut ws, mut peer) = sim.open_with_capacity(Role::Server, &config, 1024, 1 << 20);
    for i in 0..COUNT {
        peer.queue(numbered(i, 1000));
    }
    assert!(peer.flush());
    let sender = ws.sender();
    let inner = ws.inner().clone();
    let mut replies = Vec::new();
    // Echo until the output reaches the mark.
    let mut taken = 0;
    let (message, left) = loop {
        let message = sim.block_on(ws.recv()).unwrap().unwrap();
        taken += 1;
        if sender.buffered_amount() >= 4096 {
            // What the one read of 32 KiB so far left in the pipe.
            break (message, peer.unread_by_driver());
        }
        sim.block_on(ws.send(message)).unwrap();
        sim.run();
    };
    assert!(left > 0);
    {
        let mut send = pin!(ws.send(message));
        assert!(sim.poll(send.as_mut()).is_pending(), "the send waits");
        // Past the reply grace (100 ms), only the full output holds the input back.
        sim.advance(Duration::from_secs(2));
        assert_eq!(peer.unread_by_driver(), left, "the driver read on");
        assert!(inner.lock().conn.pending_events().1 <= 32 * 1024);
        assert!(!sim.woken());
        assert!(sim.poll(send.as_mut()).is_pending(), "the send still waits");

        // The peer reads: the waiting send completes, and the driver reads the rest.
        replies.extend(texts(&peer.read()));
        sim.run();
        assert!(sim.woken());
        assert!(sim.poll(send.as_mut()).is_ready());
        assert_eq!(peer.unread_by_driver(), 0, "reading resumed");
    }
    for _ in taken..COUNT {
        let message = sim.block_on(ws.recv()).unwrap().unwrap();
        send_while_the_peer_reads(&sim, &mut ws, &mut peer, message, &mut replies);
    }
    while peer.unread() > 0 || sender.buffered_amount() > 0 {
        replies.extend(texts(&peer.read()));
        sim.run();
    }
    let sent: Vec<String> = (0..COUNT)
        .map(|i| numbered(i, 1000).as_text().unwrap().to_owned())
        .collect();
    assert!(replies == sent, "{} replies", replies.len());
}

/// The application holds neither `recv()` nor `send()`: the keep-alive ping still goes out
/// at the ping interval, and without an answer the pong deadline fails the connection
/// (1011), all in virtual time.
#[test]
fn keepalive_runs_while_the_application_is_busy() {
    let sim = Sim::new();
    let mut config = Config::default();
    config.timeouts.ping_interval = Some(Duration::from_secs(20));
    config.timeouts.pong_timeout = Some(Duration::from_secs(20));
    let (mut ws, mut peer) = sim.open(Role::Server, &config);
    sim.advance(Duration::from_secs(20) - ms(1));
    assert!(peer.read().is_empty());
    assert!(
        !ws.inner().wake.has_background(),
        "idle: no background task"
    );
    sim.advance(ms(1));
    let events = peer.read();
    assert!(matches!(events[..], [Event::Ping(_)]), "{events:?}");
    // The peer's core queued a pong; it is never flushed.
    sim.advance(Duration::from_secs(20) - ms(1));
    assert!(peer.read().is_empty());
    assert!(ws.close_reason().is_none());
    sim.advance(ms(1));
    let events = peer.read();
    match &events[..] {
        [Event::Closed(reason)] => assert_eq!(reason.code(), CloseCode::INTERNAL_ERROR),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        sim.block_on(ws.recv()),
        Some(Err(Error::Timeout(Timeout::Pong)))
    ));
    assert!(sim.block_on(ws.recv()).is_none());
    assert_eq!(sim.elapsed(), Duration::from_secs(40));
}

/// A `recv()` future polled once and dropped (the other branch of a `select!` won) loses
/// nothing: the message that arrives afterwards is read by the background task, and the
/// next `recv()` returns it.
#[test]
fn a_recv_dropped_in_a_select_loses_nothing() {
    let sim = Sim::new();
    let (mut ws, mut peer) = sim.open(Role::Server, &quiet());
    sim.advance(Duration::from_secs(2));
    assert_eq!(
        sim.tasks(),
        0,
        "nobody drives: no background task, no timer task"
    );
    {
        let mut recv = pin!(ws.recv());
        assert!(sim.poll(recv.as_mut()).is_pending());
    }
    peer.send(Message::text("late"));
    sim.run();
    assert_eq!(peer.unread_by_driver(), 0, "the background task read it");
    assert_eq!(ws.inner().lock().pending_messages(), 1);
    let message = sim.block_on(ws.recv()).unwrap().unwrap();
    assert_eq!(message, Message::text("late"));
}

/// A send waiting at the high-water mark when the peer's close frame arrives is woken, and
/// fails: the connection is closed.
#[test]
fn a_send_waiting_for_room_fails_when_the_peer_closes() {
    let sim = Sim::new();
    let (mut ws, mut peer, data) = full_at_the_mark(&sim, quiet());
    let mut send = pin!(ws.send_binary(data.clone()));
    assert!(sim.poll(send.as_mut()).is_pending());
    peer.close(CloseCode::NORMAL, "bye");
    sim.run();
    assert!(sim.woken(), "the waiting send is woken");
    assert!(matches!(
        sim.poll(send.as_mut()),
        Poll::Ready(Err(Error::Send(SendError::Closed)))
    ));
    assert!(sim.block_on(ws.recv()).is_none());
    assert!(ws.close_reason().unwrap().is_clean());
    assert_eq!(sim.elapsed(), Duration::ZERO, "no timer was needed");
}

/// A `Sender`'s send waiting at the high-water mark when the application itself closes
/// (the peer reads nothing, so the close frame cannot be written): the send is woken by the
/// close and fails at once. The close timeout then ends the connection, and the transport
/// is let go although its output was never written.
#[test]
fn a_send_waiting_for_room_fails_when_the_application_closes() {
    let sim = Sim::new();
    let (mut ws, _peer, data) = full_at_the_mark(&sim, quiet());
    let sender = ws.sender();
    let mut send = pin!(sender.send(Message::Binary(data.clone())));
    assert!(sim.poll(send.as_mut()).is_pending());
    {
        let mut close = pin!(ws.close(CloseCode::NORMAL, "bye"));
        assert!(
            sim.poll(close.as_mut()).is_pending(),
            "the close frame waits"
        );
    }
    sim.run();
    assert!(sim.woken(), "woken by the close");
    let sent = sim.poll(send.as_mut());
    assert!(
        matches!(sent, Poll::Ready(Err(Error::Send(SendError::Closed)))),
        "{sent:?}"
    );
    sim.advance(Duration::from_secs(5));
    assert!(matches!(
        sim.block_on(ws.recv()),
        Some(Err(Error::Timeout(Timeout::Close)))
    ));
    sim.advance(Duration::from_secs(5));
    assert!(
        ws.inner().lock().app.driver_done(),
        "the transport is let go"
    );
}

/// A peer that stops reading while our output is full: the keep-alive's pong deadline
/// fails the connection, and then the transport is let go after the close timeout, although
/// the close frame could never be written (no socket kept forever), and no task is left.
#[test]
fn a_peer_that_stops_reading_is_let_go_after_the_pong_and_close_timeouts() {
    let sim = Sim::new();
    let mut config = Config::default();
    config.timeouts.ping_interval = Some(Duration::from_secs(20));
    config.timeouts.pong_timeout = Some(Duration::from_secs(20));
    config.timeouts.close = Some(Duration::from_secs(5));
    let (mut ws, peer, _) = full_at_the_mark(&sim, config);
    sim.advance(Duration::from_secs(40));
    assert!(matches!(
        sim.block_on(ws.recv()),
        Some(Err(Error::Timeout(Timeout::Pong)))
    ));
    assert!(
        !ws.inner().lock().app.driver_done(),
        "still writing what it can"
    );
    sim.advance(Duration::from_secs(5));
    assert!(
        ws.inner().lock().app.driver_done(),
        "the transport is let go"
    );
    assert_eq!(peer.unread(), 1024, "the peer never read");
    sim.advance(Duration::from_secs(2));
    assert_eq!(sim.tasks(), 0, "no task left");
}

/// The peer writes 100 messages and a close frame at once; the application takes each and
/// replies. The close waits behind the untaken messages (`has_deferred_end`), so the peer
/// gets all 100 replies, then the close echo: a clean close (RFC 6455 §5.5.1).
#[test]
fn replies_go_out_before_the_close_echo() {
    let sim = Sim::new();
    let (mut ws, mut peer) = sim.open(Role::Server, &quiet());
    for i in 0..100 {
        peer.queue(Message::text(format!("m{i}")));
    }
    peer.close(CloseCode::NORMAL, "");
    for _ in 0..100 {
        let message = sim.block_on(ws.recv()).unwrap().unwrap();
        sim.block_on(ws.send(message)).unwrap();
    }
    assert!(sim.block_on(ws.recv()).is_none());
    sim.run();
    let events = peer.read();
    let sent: Vec<String> = (0..100).map(|i| format!("m{i}")).collect();
    assert_eq!(texts(&events), sent);
    match events.last() {
        Some(Event::Closed(reason @ CloseReason::Clean { .. })) => {
            assert_eq!(reason.code(), CloseCode::NORMAL)
        }
        other => panic!("{other:?}"),
    }
    assert!(ws.close_reason().unwrap().is_clean());
    assert_eq!(sim.elapsed(), Duration::ZERO, "no timer was needed");
}

/// A masked frame with a reserved opcode (0x3): a protocol violation (1002) from a client.
const VIOLATION: [u8; 6] = [0x83, 0x80, 1, 2, 3, 4];

/// The core holds input after a read that brought a message, until the application
/// replies: a violation that arrives meanwhile is read only after the reply went out, so
/// the peer sees the reply before the close frame (RFC 6455 §7.1.7), even when the
/// application takes its time (less than the grace).
#[test]
fn input_is_held_for_the_reply_then_read() {
    let sim = Sim::new();
    let (mut ws, mut peer) = sim.open(Role::Server, &quiet());
    peer.send(Message::text("m"));
    let message = sim.block_on(ws.recv()).unwrap().unwrap();
    assert_eq!(message.as_text(), Some("m"));
    peer.write_raw(&VIOLATION);
    sim.advance(ms(60));
    assert_eq!(peer.unread_by_driver(), VIOLATION.len(), "input is held");
    sim.block_on(ws.send(Message::text("re m"))).unwrap();
    sim.run();
    assert_eq!(peer.unread_by_driver(), 0, "the reply ended the hold");
    let events = peer.read();
    assert_eq!(texts(&events), ["re m"]);
    match events.last() {
        Some(Event::Closed(reason)) => assert_eq!(reason.code(), CloseCode::PROTOCOL_ERROR),
        other => panic!("{other:?}"),
    }
    assert!(matches!(sim.block_on(ws.recv()), Some(Err(_))));
}

/// Without a reply, the hold ends with the core's reply grace (100 ms by default).
#[test]
fn the_hold_ends_after_the_reply_grace() {
    let sim = Sim::new();
    let (mut ws, mut peer) = sim.open(Role::Server, &quiet());
    peer.send(Message::text("m"));
    let _message = sim.block_on(ws.recv()).unwrap().unwrap();
    peer.write_raw(&VIOLATION);
    sim.advance(ms(99));
    assert_eq!(peer.unread_by_driver(), VIOLATION.len(), "input is held");
    sim.advance(ms(1));
    assert_eq!(peer.unread_by_driver(), 0, "the grace is over");
    let events = peer.read();
    assert!(texts(&events).is_empty());
    match events.last() {
        Some(Event::Closed(reason)) => assert_eq!(reason.code(), CloseCode::PROTOCOL_ERROR),
        other => panic!("{other:?}"),
    }
    assert!(sim.block_on(ws.send(Message::text("late"))).is_err());
}

/// Output stuck behind a peer that reads nothing is not work: the background task ends
/// after its linger instead of waking every second, and the peer's next read brings one
/// back to write the rest.
#[test]
fn a_background_task_does_not_spin_on_output_that_cannot_be_written() {
    let sim = Sim::new();
    let (ws, mut peer, _) = full_at_the_mark(&sim, quiet());
    sim.advance(Duration::from_secs(10));
    assert_eq!(sim.tasks(), 0, "a task still waits for the stuck output");
    let mut received = peer.read().len();
    while ws.buffered_amount() > 0 || received < 3 {
        sim.run();
        received += peer.read().len();
        assert!(sim.elapsed() < Duration::from_secs(11));
    }
    assert!(received >= 3, "{received} messages");
}

/// A fan-out through a [`crate::Cork`]: the messages of idle connections wait for
/// [`crate::Cork::flush`], which writes them from the calling task, without a task woken or
/// spawned; a second message for a connection already corked queues behind the first and
/// goes out with it.
#[test]
fn a_cork_writes_from_the_calling_task() {
    let sim = Sim::new();
    let mut conns: Vec<_> = (0..3).map(|_| sim.open(Role::Server, &quiet())).collect();
    sim.run();
    sim.advance(Duration::from_secs(2));
    assert_eq!(sim.tasks(), 0, "idle: no task of their own");
    let first = tether_core::PreparedFrame::new(&Message::text("to all")).unwrap();
    let second = tether_core::PreparedFrame::new(&Message::text("and again")).unwrap();
    let mut cork = crate::Cork::new();
    for (ws, _) in &conns {
        ws.sender()
            .try_send_prepared_corked(&first, &mut cork)
            .unwrap();
    }
    conns[0]
        .0
        .sender()
        .try_send_prepared_corked(&second, &mut cork)
        .unwrap();
    assert_eq!(cork.len(), 3, "each connection once");
    for (_, peer) in &conns {
        assert_eq!(peer.unread(), 0, "nothing written before the flush");
    }
    cork.flush();
    assert!(cork.is_empty());
    assert_eq!(sim.tasks(), 0, "written by the flush: no task spawned");
    assert_eq!(texts(&conns[0].1.read()), ["to all", "and again"]);
    for (_, peer) in &mut conns[1..] {
        assert_eq!(texts(&peer.read()), ["to all"]);
    }
    // Without a flush, dropping the cork writes.
    let mut cork = crate::Cork::new();
    conns[1]
        .0
        .sender()
        .try_send_prepared_corked(&second, &mut cork)
        .unwrap();
    drop(cork);
    assert_eq!(texts(&conns[1].1.read()), ["and again"]);
}

/// A cork's flush only writes (no read is tried) when nothing else happened since the
/// connection's last drive; what did happen is not lost: a message that arrived meanwhile
/// still reaches `recv()`, and what the transport cannot take goes out once it has room.
#[test]
fn a_cork_flush_leaves_arrivals_and_a_full_transport_to_the_driver() {
    let sim = Sim::new();
    let (mut ws, mut peer) = sim.open(Role::Server, &quiet());
    let (small, mut small_peer) = sim.open_with_capacity(Role::Server, &quiet(), 64, 4096);
    sim.run();
    // A message arrives (the transport wakes the connection), and before anyone drives,
    // a corked message goes out: the flush drives a full round.
    peer.send(Message::text("hello"));
    let frame = tether_core::PreparedFrame::new(&numbered(1, 200)).unwrap();
    // Both connections get the frame through one cork, flushed.
    let corked_to_both = |ws: &WebSocket, small: &WebSocket| {
        let mut cork = crate::Cork::new();
        for conn in [ws, small] {
            conn.sender()
                .try_send_prepared_corked(&frame, &mut cork)
                .unwrap();
        }
        cork.flush();
    };
    corked_to_both(&ws, &small);
    assert_eq!(texts(&peer.read()).len(), 1, "written by the flush");
    assert_eq!(
        sim.block_on(ws.recv()).unwrap().unwrap(),
        Message::text("hello")
    );
    // The 64-byte pipe took part of the 200 bytes: the rest follows as the peer reads.
    let mut got = Vec::new();
    for _ in 0..20 {
        got.extend(texts(&small_peer.read()));
        sim.run();
        if !got.is_empty() {
            break;
        }
    }
    assert_eq!(got.len(), 1, "the whole message, once");
    assert!(got[0].starts_with("m1 "));
    // Now idle again: a corked message to the idle connection, and one to the first
    // (idle too): both written by the flush alone, no task spawned.
    sim.run();
    let tasks = sim.tasks();
    corked_to_both(&ws, &small);
    assert_eq!(texts(&peer.read()).len(), 1);
    assert_eq!(sim.tasks(), tasks, "no task woken for the first");
}

/// A write that fails in a cork's flush ends the connection there and then: the error
/// reaches `recv()`, and the connection takes nothing more.
#[test]
fn a_write_error_in_a_cork_flush_ends_the_connection() {
    let sim = Sim::new();
    let (mut ws, mut peer) = sim.open(Role::Server, &quiet());
    sim.run();
    sim.advance(Duration::from_secs(1));
    peer.fail_driver_write(io::ErrorKind::BrokenPipe);
    let frame = tether_core::PreparedFrame::new(&Message::text("lost")).unwrap();
    let mut cork = crate::Cork::new();
    ws.sender()
        .try_send_prepared_corked(&frame, &mut cork)
        .unwrap();
    cork.flush();
    assert!(ws.sender().is_closed(), "ended by the flush");
    assert!(ws.close_reason().is_some(), "finished by the flush: {ws:?}");
    let error = sim.block_on(ws.recv());
    assert!(
        matches!(&error, Some(Err(Error::Io(e))) if e.kind() == io::ErrorKind::BrokenPipe),
        "{error:?}"
    );
    assert_eq!(peer.unread(), 0);
    assert_eq!(sim.tasks(), 0, "no task left behind");
}
