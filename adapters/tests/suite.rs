// The adapters' shared test suite, included by `tests/adapter.rs` of tether-tokio and
// tether-async-std. Before the `include!`, the including file defines `ws` (the adapter
// crate) and a module `rt` with the runtime's primitives: `block_on`, `spawn` (returns a
// future of the output), `sleep`, `Listener`, `listener(std) -> Listener`, `accept`,
// `connect` and `tls_accept`.
//
// Real loopback sockets; timers are 200 ms or less, and every wait is bounded.

use futures_util::future::{self, Either};
use futures_util::{SinkExt, StreamExt};
use std::future::{Future, poll_fn};
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::Poll;
use std::time::{Duration, Instant};
use ws::{
    Accept, ClientRequest, CloseCode, CloseReason, Config, Error, Message, Reject, Role, SendError,
    Timeout,
};

const SHORT: Duration = Duration::from_millis(200);
/// Generous upper bound for "within a timeout": slack for a loaded 2-core CI machine.
const SLACK: Duration = Duration::from_millis(1500);

fn url(addr: SocketAddr, path: &str) -> String {
    format!("ws://{addr}{path}")
}

/// Runs `f` for at most `d`.
async fn timeout<F: Future>(d: Duration, f: F) -> Option<F::Output> {
    let f = std::pin::pin!(f);
    let sleep = std::pin::pin!(rt::sleep(d));
    match future::select(f, sleep).await {
        Either::Left((v, _)) => Some(v),
        Either::Right(_) => None,
    }
}

/// Pending once, then ready: a `select` competitor that cancels the other side often.
async fn yield_once() {
    let mut yielded = false;
    poll_fn(|cx| {
        if yielded {
            Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    })
    .await
}

/// A bound std listener on loopback, optionally with a small receive buffer (which turns
/// off the kernel's buffer autotuning, so that a peer that does not read fills up fast).
fn std_listener(recv_buffer: Option<usize>) -> std::net::TcpListener {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    if let Some(size) = recv_buffer {
        socket.set_recv_buffer_size(size).unwrap();
    }
    let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    socket.bind(&addr.into()).unwrap();
    socket.listen(64).unwrap();
    socket.into()
}

fn short_timers() -> Config {
    let mut config = Config::default();
    config.timeouts.ping_interval = Some(SHORT);
    config.timeouts.pong_timeout = Some(SHORT);
    config.timeouts.handshake = Some(SHORT);
    config.timeouts.close = Some(SHORT);
    config
}

fn no_pings() -> Config {
    let mut config = Config::default();
    config.timeouts.ping_interval = None;
    config
}

/// An echo server for text and binary messages; returns its address.
async fn echo_server(config: Config) -> SocketAddr {
    let listener = rt::listener(std_listener(None));
    let addr = listener.local_addr().unwrap();
    drop(rt::spawn(async move {
        loop {
            let stream = rt::accept(&listener).await;
            let config = config.clone();
            drop(rt::spawn(async move {
                let Ok(mut ws) = ws::accept_with(stream, config, |_| Ok(Accept::new())).await
                else {
                    return;
                };
                while let Some(Ok(m)) = ws.recv().await {
                    if matches!(m, Message::Text(_) | Message::Binary(_))
                        && ws.send(m).await.is_err()
                    {
                        break;
                    }
                }
            }));
        }
    }));
    addr
}

/// Keeps a silent peer's socket open until dropped.
struct Silent(#[allow(dead_code)] std::sync::mpsc::Sender<()>);

/// A peer that accepts TCP, completes the opening handshake (if `handshake`), then
/// neither reads nor writes. Its receive buffer is small, so it soon stops accepting data.
fn silent_server(handshake: bool) -> (SocketAddr, Silent) {
    let listener = std_listener(Some(4096));
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        if handshake {
            let mut conn = raw_accept(&mut stream);
            stream.write_all(&raw_output(&mut conn)).unwrap();
        }
        // Silent until the test drops its guard.
        let _ = rx.recv();
    });
    (addr, Silent(tx))
}

/// A server that answers the opening handshake and sends `extra` in the same write, then
/// reads until the client is gone; returns the events its (core) connection saw.
fn raw_server(extra: Vec<u8>) -> (SocketAddr, std::thread::JoinHandle<Vec<tether_core::Event>>) {
    let listener = std_listener(None);
    let addr = listener.local_addr().unwrap();
    let handle = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut conn = raw_accept(&mut stream);
        let mut out = raw_output(&mut conn);
        out.extend_from_slice(&extra);
        stream.write_all(&out).unwrap();
        raw_read_all(&mut stream, &mut conn)
    });
    (addr, handle)
}

/// Reads an upgrade request from a blocking socket into a server connection of the core
/// and accepts it; the 101 waits in the connection's output.
fn raw_accept(stream: &mut std::net::TcpStream) -> tether_core::Connection {
    let now = Instant::now();
    let mut conn = tether_core::Connection::server(tether_core::Config::default(), now);
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).unwrap();
        assert!(n > 0, "client went away during the handshake");
        conn.handle_input(now, &buf[..n]);
        while let Some(event) = conn.poll_event() {
            if let tether_core::Event::Request(_) = event {
                conn.accept(now, Accept::new()).unwrap();
                return conn;
            }
        }
    }
}

/// A client that completes the opening handshake by hand over a blocking socket: returns
/// the raw stream and the core connection, to encode and decode frames by hand.
fn raw_client(addr: SocketAddr) -> (std::net::TcpStream, tether_core::Connection) {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let now = Instant::now();
    let request = ClientRequest::new(&url(addr, "/")).unwrap();
    let mut conn =
        tether_core::Connection::client(tether_core::Config::default(), &request, [1; 32], now)
            .unwrap();
    stream.write_all(&raw_output(&mut conn)).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).unwrap();
        assert!(n > 0, "server went away during the handshake");
        conn.handle_input(now, &buf[..n]);
        if let Some(tether_core::Event::Connected(_)) = conn.poll_event() {
            return (stream, conn);
        }
    }
}

/// The text messages among a raw peer's events.
fn raw_texts(events: &[tether_core::Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            tether_core::Event::Message(m) => m.as_text().map(str::to_owned),
            _ => None,
        })
        .collect()
}

fn raw_output(conn: &mut tether_core::Connection) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(tether_core::Transmit::Data) = conn.poll_transmit(&mut out) {}
    out
}

/// Reads until end of stream (blocking), feeding `conn` and writing its output (and
/// shutting the write side down when it asks); returns its events.
fn raw_read_all(
    stream: &mut std::net::TcpStream,
    conn: &mut tether_core::Connection,
) -> Vec<tether_core::Event> {
    let now = Instant::now();
    let mut buf = [0u8; 4096];
    let mut events = Vec::new();
    loop {
        let n = match stream.read(&mut buf) {
            Ok(n) => n,
            Err(e) => panic!("{e}; events so far: {events:?}, state {:?}", conn.state()),
        };
        if n == 0 {
            conn.handle_eof(now);
        } else {
            conn.handle_input(now, &buf[..n]);
        }
        let mut out = Vec::new();
        let mut shutdown = false;
        while let Some(t) = conn.poll_transmit(&mut out) {
            shutdown |= t == tether_core::Transmit::Shutdown;
        }
        let _ = stream.write_all(&out);
        if shutdown {
            // The closing handshake is over: close our side, as a server does first.
            let _ = stream.shutdown(std::net::Shutdown::Write);
        }
        while let Some(event) = conn.poll_event() {
            events.push(event);
        }
        if n == 0 {
            return events;
        }
    }
}

fn pattern(size: usize) -> Vec<u8> {
    (0..size).map(|i| (i % 251) as u8).collect()
}

/// Valid UTF-8 of exactly `size` bytes, with multi-byte characters.
fn text_of(size: usize) -> String {
    let mut s = "é".repeat(size / 2);
    if size % 2 == 1 {
        s.push('x');
    }
    s
}

async fn expect_binary(ws: &mut ws::WebSocket, expected: &[u8]) {
    match ws.recv().await {
        Some(Ok(Message::Binary(b))) => {
            assert!(b == expected, "binary of {} bytes differs", expected.len())
        }
        other => panic!("expected {} binary bytes, got {other:?}", expected.len()),
    }
}

async fn expect_text(ws: &mut ws::WebSocket, expected: &str) {
    match ws.recv().await {
        Some(Ok(Message::Text(t))) => {
            assert!(t == expected, "text of {} bytes differs", expected.len())
        }
        other => panic!("expected {} text bytes, got {other:?}", expected.len()),
    }
}

/// Waits (at most `SLACK` for each message) for `expected`, skipping the keep-alive pings
/// that may come first.
async fn expect_text_after_pings(ws: &mut ws::WebSocket, expected: &str) {
    loop {
        match timeout(SLACK, ws.recv()).await {
            Some(Some(Ok(Message::Ping(_)))) => {}
            Some(Some(Ok(Message::Text(t)))) => break assert_eq!(t, expected),
            other => panic!("expected {expected:?}, got {other:?}"),
        }
    }
}

#[test]
fn rfc6455_5_6_round_trip_text_and_binary_0_b_to_8_mib() {
    rt::block_on(async {
        let addr = echo_server(Config::default()).await;
        let (mut client, response) = ws::connect(&url(addr, "/")).await.unwrap();
        assert_eq!(response.status(), 101);
        assert!(client.deflate_params().is_none());
        for size in [0, 1, 125, 126, 65_535, 65_536, 1 << 20, 8 << 20] {
            let data = pattern(size);
            client.send_binary(data.clone()).await.unwrap();
            expect_binary(&mut client, &data).await;
            let text = text_of(size);
            client.send_text(text.clone()).await.unwrap();
            expect_text(&mut client, &text).await;
        }
        client.close(CloseCode::NORMAL, "done").await.unwrap();
        assert!(client.recv().await.is_none());
        let reason = client.close_reason().unwrap();
        assert!(reason.is_clean(), "{reason:?}");
    });
}

#[test]
fn rfc7692_round_trip_with_permessage_deflate() {
    rt::block_on(async {
        let mut config = Config::default();
        config.deflate.enabled = true;
        let addr = echo_server(config.clone()).await;
        let request = ClientRequest::new(&url(addr, "/")).unwrap();
        let (mut client, _) = ws::connect_with(request, config).await.unwrap();
        assert!(client.deflate_params().is_some());
        for size in [0, 1, 100, 65_536, 1 << 20] {
            let text = "the quick brown fox ".repeat(size / 20 + 1)[..size].to_owned();
            client.send_text(text.clone()).await.unwrap();
            expect_text(&mut client, &text).await;
            let data = pattern(size);
            client.send_binary(data.clone()).await.unwrap();
            expect_binary(&mut client, &data).await;
        }
    });
}

#[test]
fn stream_and_sink_interfaces() {
    rt::block_on(async {
        let addr = echo_server(Config::default()).await;
        let (mut client, _) = ws::connect(&url(addr, "/")).await.unwrap();
        for i in 0..10 {
            SinkExt::send(&mut client, Message::text(format!("m{i}")))
                .await
                .unwrap();
        }
        for i in 0..10 {
            match StreamExt::next(&mut client).await {
                Some(Ok(Message::Text(t))) => assert_eq!(t, format!("m{i}").as_str()),
                other => panic!("{other:?}"),
            }
        }
        SinkExt::close(&mut client).await.unwrap();
        assert!(StreamExt::next(&mut client).await.is_none());
        match client.close_reason().as_deref() {
            Some(CloseReason::Clean { local, .. }) => {
                assert_eq!(local.as_ref().unwrap().code, CloseCode::NORMAL)
            }
            other => panic!("{other:?}"),
        }
    });
}

#[test]
fn rfc6455_4_2_2_rejected_handshake_carries_status_headers_and_body() {
    rt::block_on(async {
        let listener = rt::listener(std_listener(None));
        let addr = listener.local_addr().unwrap();
        let server = rt::spawn(async move {
            let stream = rt::accept(&listener).await;
            ws::accept_with(stream, Config::default(), |req| {
                assert_eq!(req.path(), "/private");
                Err(Reject::new(403)
                    .header("x-reason", "members only")
                    .body("go away"))
            })
            .await
        });
        let err = ws::connect(&url(addr, "/private")).await.unwrap_err();
        // One error for a refusal, on both sides.
        assert!(matches!(err, Error::Rejected { status: 403, .. }), "{err:?}");
        assert_eq!(err.status(), Some(403), "{err:?}");
        let response = err.response().expect("the response");
        assert_eq!(response.status(), 403);
        assert_eq!(response.header("x-reason"), Some(&b"members only"[..]));
        assert_eq!(&response.body()[..], b"go away");
        match server.await {
            Err(Error::Rejected {
                status: 403,
                response: None,
            }) => {}
            other => panic!("{other:?}"),
        }
    });
}

#[test]
fn rfc6455_4_request_details_and_subprotocol_negotiation() {
    rt::block_on(async {
        let listener = rt::listener(std_listener(None));
        let addr = listener.local_addr().unwrap();
        let server = rt::spawn(async move {
            let stream = rt::accept(&listener).await;
            let mut ws = ws::accept_with(stream, Config::default(), |req| {
                assert_eq!(req.path(), "/room");
                assert_eq!(req.query(), Some("id=7"));
                assert_eq!(req.origin(), Some("https://example.com"));
                assert_eq!(req.header_str("x-token"), Some("abc"));
                assert!(req.subprotocols().contains(&"chat"));
                Ok(Accept::new()
                    .subprotocol("chat")
                    .header("x-server", "tether"))
            })
            .await
            .unwrap();
            assert_eq!(ws.subprotocol(), Some("chat"));
            ws.send_text("welcome").await.unwrap();
            while ws.recv().await.is_some() {}
        });
        let request = ClientRequest::new(&url(addr, "/room?id=7"))
            .unwrap()
            .origin("https://example.com")
            .subprotocol("chat.v2")
            .subprotocol("chat")
            .header("x-token", "abc");
        let (mut client, response) = ws::connect_with(request, Config::default()).await.unwrap();
        assert_eq!(response.header("x-server"), Some(&b"tether"[..]));
        assert_eq!(client.subprotocol(), Some("chat"));
        expect_text(&mut client, "welcome").await;
        client.close(1000, "").await.unwrap();
        assert!(client.recv().await.is_none());
        server.await;
    });
}

#[test]
fn rfc6455_5_5_2_keepalive_ping_goes_out_and_is_answered() {
    rt::block_on(async {
        // The server pings every 200 ms and gives up 200 ms after an unanswered ping.
        let addr = echo_server(short_timers()).await;
        let request = ClientRequest::new(&url(addr, "/")).unwrap();
        let (mut client, _) = ws::connect_with(request, no_pings()).await.unwrap();
        let started = Instant::now();
        match timeout(SLACK, client.recv()).await {
            Some(Some(Ok(Message::Ping(_)))) => {}
            other => panic!("expected a keep-alive ping, got {other:?}"),
        }
        assert!(started.elapsed() >= SHORT - Duration::from_millis(20));
        // Our automatic pongs keep the server's deadlines happy across several pings.
        let mut pings = 1;
        while started.elapsed() < 4 * SHORT {
            match timeout(SLACK, client.recv()).await {
                Some(Some(Ok(Message::Ping(_)))) => pings += 1,
                other => panic!("{other:?}"),
            }
        }
        assert!(pings >= 3, "{pings} pings");
        client.send_text("still here").await.unwrap();
        expect_text_after_pings(&mut client, "still here").await;
    });
}

#[test]
fn keepalive_detects_silent_peer_while_waiting_in_recv() {
    rt::block_on(async {
        let (addr, _silent) = silent_server(true);
        let request = ClientRequest::new(&url(addr, "/")).unwrap();
        let (mut client, _) = ws::connect_with(request, short_timers()).await.unwrap();
        let started = Instant::now();
        match timeout(2 * SHORT + SLACK, client.recv()).await {
            Some(Some(Err(Error::Timeout(Timeout::Pong)))) => {}
            other => panic!("expected a pong timeout, got {other:?}"),
        }
        assert!(started.elapsed() >= 2 * SHORT - Duration::from_millis(20));
        assert!(client.recv().await.is_none());
        assert!(matches!(
            client.close_reason().as_deref(),
            Some(CloseReason::TimedOut(Timeout::Pong))
        ));
    });
}

#[test]
fn keepalive_detects_silent_peer_while_only_sending() {
    rt::block_on(async {
        let (addr, _silent) = silent_server(true);
        let request = ClientRequest::new(&url(addr, "/")).unwrap();
        let (mut client, _) = ws::connect_with(request, short_timers()).await.unwrap();
        let started = Instant::now();
        let error = timeout(2 * SHORT + SLACK, async {
            loop {
                if let Err(e) = client.send_text("tick").await {
                    break e;
                }
                rt::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("the dead peer is detected without reading");
        assert!(matches!(error, Error::Send(SendError::Closed)), "{error:?}");
        assert!(started.elapsed() >= 2 * SHORT - Duration::from_millis(20));
        assert!(matches!(
            client.close_reason().as_deref(),
            Some(CloseReason::TimedOut(Timeout::Pong))
        ));
    });
}

#[test]
fn keepalive_pings_are_answered_while_the_application_reads_nothing() {
    rt::block_on(async {
        // The server pings every 200 ms and gives up 200 ms after an unanswered ping.
        let addr = echo_server(short_timers()).await;
        let request = ClientRequest::new(&url(addr, "/")).unwrap();
        let (mut client, _) = ws::connect_with(request, no_pings()).await.unwrap();
        // A `recv()` that loses a race (its task drove the connection, then handed it
        // back), then only sleeping: the background task answers the pings.
        assert!(timeout(Duration::from_millis(20), client.recv()).await.is_none());
        rt::sleep(5 * SHORT).await;
        client.send_text("still here").await.unwrap();
        expect_text_after_pings(&mut client, "still here").await;
    });
}

#[test]
fn keepalive_runs_while_a_held_recv_future_is_not_polled() {
    rt::block_on(async {
        let (addr, _silent) = silent_server(true);
        let request = ClientRequest::new(&url(addr, "/")).unwrap();
        let (client, _) = ws::connect_with(request, short_timers()).await.unwrap();
        let (mut read, write) = client.split();
        let mut recv = std::pin::pin!(read.recv());
        // Polled once (its task becomes the connection's driver), then left alone.
        match future::select(recv.as_mut(), std::pin::pin!(yield_once())).await {
            Either::Left((other, _)) => panic!("{other:?}"),
            Either::Right(_) => {}
        }
        // A ping goes out after 200 ms, and the silent peer is given up 200 ms later.
        rt::sleep(2 * SHORT + SHORT / 2).await;
        assert!(
            matches!(
                write.close_reason().as_deref(),
                Some(CloseReason::TimedOut(Timeout::Pong))
            ),
            "{:?}",
            write.close_reason()
        );
        match recv.await {
            Some(Err(Error::Timeout(Timeout::Pong))) => {}
            other => panic!("{other:?}"),
        }
    });
}

#[test]
fn a_recv_future_polled_from_another_waker_still_gets_its_message() {
    rt::block_on(async {
        let addr = echo_server(no_pings()).await;
        let request = ClientRequest::new(&url(addr, "/")).unwrap();
        let (client, _) = ws::connect_with(request, no_pings()).await.unwrap();
        let (mut read, mut write) = client.split();
        let mut recv = std::pin::pin!(read.recv());
        // First polled with a waker that goes nowhere (as if by another task)...
        let mut elsewhere = std::task::Context::from_waker(std::task::Waker::noop());
        assert!(recv.as_mut().poll(&mut elsewhere).is_pending());
        // ...then awaited here: the echo must wake this task, not the first waker (the
        // timeout's last poll would find the message anyway, so the time is checked).
        let started = Instant::now();
        write.send_text("moved").await.unwrap();
        match timeout(SLACK, recv).await {
            Some(Some(Ok(Message::Text(t)))) => assert_eq!(t, "moved"),
            other => panic!("{other:?}"),
        }
        assert!(started.elapsed() < SLACK / 2, "woken late: {:?}", started.elapsed());
    });
}

#[test]
fn rfc6455_4_1_client_handshake_timeout() {
    rt::block_on(async {
        let (addr, _mute) = silent_server(false);
        let request = ClientRequest::new(&url(addr, "/")).unwrap();
        let started = Instant::now();
        match timeout(SHORT + SLACK, ws::connect_with(request, short_timers())).await {
            Some(Err(Error::Timeout(Timeout::Handshake))) => {}
            other => panic!("expected a handshake timeout, got {other:?}"),
        }
        assert!(started.elapsed() >= SHORT - Duration::from_millis(20));
    });
}

#[test]
fn rfc6455_4_2_server_handshake_timeout() {
    rt::block_on(async {
        let listener = rt::listener(std_listener(None));
        let addr = listener.local_addr().unwrap();
        // A client that connects and says nothing.
        let _quiet = std::net::TcpStream::connect(addr).unwrap();
        let stream = rt::accept(&listener).await;
        let started = Instant::now();
        let result = timeout(
            SHORT + SLACK,
            ws::accept_with(stream, short_timers(), |_| Ok(Accept::new())),
        )
        .await;
        match result {
            Some(Err(Error::Timeout(Timeout::Handshake))) => {}
            other => panic!("expected a handshake timeout, got {other:?}"),
        }
        assert!(started.elapsed() >= SHORT - Duration::from_millis(20));
    });
}

#[test]
fn rfc6455_7_1_2_close_timeout_with_silent_peer() {
    rt::block_on(async {
        let (addr, _silent) = silent_server(true);
        let request = ClientRequest::new(&url(addr, "/")).unwrap();
        let mut config = short_timers();
        config.timeouts.ping_interval = None;
        let (mut client, _) = ws::connect_with(request, config).await.unwrap();
        client.close(1000, "bye").await.unwrap();
        let started = Instant::now();
        match timeout(SHORT + SLACK, client.recv()).await {
            Some(Some(Err(Error::Timeout(Timeout::Close)))) => {}
            other => panic!("expected a close timeout, got {other:?}"),
        }
        assert!(started.elapsed() >= SHORT - Duration::from_millis(50));
        assert!(client.recv().await.is_none());
        assert!(matches!(
            client.send_text("late").await,
            Err(Error::Send(SendError::Closed))
        ));
    });
}

#[test]
fn rfc6455_7_1_4_clean_close_both_sides() {
    rt::block_on(async {
        let listener = rt::listener(std_listener(None));
        let addr = listener.local_addr().unwrap();
        let server = rt::spawn(async move {
            let stream = rt::accept(&listener).await;
            let mut ws = ws::accept(stream).await.unwrap();
            while let Some(m) = ws.recv().await {
                m.unwrap();
            }
            ws.close_reason().unwrap()
        });
        let (mut client, _) = ws::connect(&url(addr, "/")).await.unwrap();
        client.close(4000, "bye").await.unwrap();
        assert!(client.recv().await.is_none());
        match client.close_reason().as_deref() {
            Some(CloseReason::Clean {
                initiated_locally: true,
                remote: Some(frame),
                ..
            }) => assert_eq!(frame.code, CloseCode(4000)),
            other => panic!("{other:?}"),
        }
        match &*server.await {
            CloseReason::Clean {
                initiated_locally: false,
                remote: Some(frame),
                ..
            } => {
                assert_eq!(frame.code, CloseCode(4000));
                assert_eq!(frame.reason, "bye");
            }
            other => panic!("{other:?}"),
        }
    });
}

/// Timeouts of any length (`Duration::MAX` for "never") work on both sides: no deadline
/// overflows in the core, the driver or the adapter.
#[test]
fn timeouts_of_any_length_are_accepted() {
    rt::block_on(async {
        let mut config = Config::default();
        config.timeouts.handshake = Some(Duration::MAX);
        config.timeouts.ping_interval = Some(Duration::MAX);
        config.timeouts.pong_timeout = Some(Duration::MAX);
        config.timeouts.idle = Some(Duration::MAX);
        config.timeouts.close = Some(Duration::MAX);
        let addr = echo_server(config.clone()).await;
        let request = ws::ClientRequest::new(&url(addr, "/")).unwrap();
        let (mut client, _) = ws::connect_with(request, config).await.unwrap();
        client.send_text("forever").await.unwrap();
        expect_text(&mut client, "forever").await;
        client.close(1000, "").await.unwrap();
        let end = timeout(Duration::from_secs(5), client.recv()).await;
        assert!(matches!(end, Some(None)), "{end:?}");
        assert!(client.close_reason().is_some_and(|r| r.is_clean()));
    });
}

#[test]
fn dropping_the_handle_closes_normally() {
    rt::block_on(async {
        let listener = rt::listener(std_listener(None));
        let addr = listener.local_addr().unwrap();
        let server = rt::spawn(async move {
            let stream = rt::accept(&listener).await;
            let mut ws = ws::accept(stream).await.unwrap();
            let first = ws.recv().await;
            assert!(ws.recv().await.is_none());
            (first, ws.close_reason().unwrap())
        });
        let (mut client, _) = ws::connect(&url(addr, "/")).await.unwrap();
        client.send_text("last words").await.unwrap();
        drop(client);
        let (first, reason) = timeout(SLACK, server).await.expect("server sees the close");
        assert!(matches!(first, Some(Ok(Message::Text(t))) if t == "last words"));
        assert_eq!(reason.code(), CloseCode::NORMAL, "{reason:?}");
    });
}

#[test]
fn rfc6455_7_1_7_peer_protocol_violation_is_reported() {
    rt::block_on(async {
        let listener = rt::listener(std_listener(None));
        let addr = listener.local_addr().unwrap();
        let server = rt::spawn(async move {
            let stream = rt::accept(&listener).await;
            let mut ws = ws::accept(stream).await.unwrap();
            let first = ws.recv().await;
            (first, ws.recv().await.is_none(), ws.close_reason().unwrap())
        });
        // The server runs in its own task, so blocking this one for the handshake is fine.
        let (mut raw, _) = raw_client(addr);
        // An unmasked frame from a client (RFC 6455 §5.1): the server fails with 1002.
        raw.write_all(&[0x81, 0x02, b'h', b'i']).unwrap();
        let (first, ended, reason) = timeout(SLACK, server).await.expect("server reports");
        assert!(matches!(first, Some(Err(Error::Protocol(_)))), "{first:?}");
        assert!(ended);
        assert_eq!(reason.code(), CloseCode::PROTOCOL_ERROR);
    });
}

#[test]
fn rfc6455_7_1_7_replies_to_messages_before_a_violation_go_out_first() {
    rt::block_on(async {
        let addr = echo_server(Config::default()).await;
        // The server runs in its own tasks, so blocking this one is fine.
        let (mut raw, mut conn) = raw_client(addr);
        let now = Instant::now();
        conn.send(now, Message::text("a")).unwrap();
        conn.send(now, Message::text("b")).unwrap();
        let mut input = raw_output(&mut conn);
        // A frame with a reserved opcode (§5.2), in the same write.
        input.extend_from_slice(&[0x83, 0x80, 0, 0, 0, 0]);
        raw.write_all(&input).unwrap();
        let events = raw_read_all(&mut raw, &mut conn);
        let texts = raw_texts(&events);
        assert_eq!(texts, ["a", "b"], "{events:?}");
        match events.last() {
            Some(tether_core::Event::Closed(reason)) => {
                assert_eq!(reason.code(), CloseCode::PROTOCOL_ERROR)
            }
            other => panic!("{other:?}"),
        }
    });
}

#[test]
fn rfc6455_5_5_1_replies_to_messages_before_a_close_go_out_first() {
    rt::block_on(async {
        let addr = echo_server(Config::default()).await;
        // The server runs in its own tasks, so blocking this one is fine.
        let (mut raw, mut conn) = raw_client(addr);
        let now = Instant::now();
        for i in 0..100 {
            conn.send(now, Message::text(format!("m{i}"))).unwrap();
        }
        conn.close(now, CloseCode::NORMAL, "").unwrap();
        // The messages and the close frame, in one write.
        raw.write_all(&raw_output(&mut conn)).unwrap();
        let events = raw_read_all(&mut raw, &mut conn);
        let texts = raw_texts(&events);
        let sent: Vec<String> = (0..100).map(|i| format!("m{i}")).collect();
        assert_eq!(texts, sent, "{events:?}");
        match events.last() {
            Some(tether_core::Event::Closed(reason)) => assert!(reason.is_clean(), "{reason:?}"),
            other => panic!("{other:?}"),
        }
    });
}

#[test]
fn rfc6455_7_1_7_reply_goes_out_before_a_violation_in_a_later_read() {
    rt::block_on(async {
        // Reads of 7 bytes: exactly the masked frame of "a", so that the bad frame comes in
        // a later read. The application still gets to echo before the connection fails.
        let mut config = Config::default();
        config.read_buffer_size = 7;
        let addr = echo_server(config).await;
        for round in 0..20 {
            let (mut raw, mut conn) = raw_client(addr);
            raw.set_nodelay(true).unwrap();
            conn.send(Instant::now(), Message::text("a")).unwrap();
            raw.write_all(&raw_output(&mut conn)).unwrap();
            raw.write_all(&[0x83, 0x80, 0, 0, 0, 0]).unwrap();
            let events = raw_read_all(&mut raw, &mut conn);
            assert!(
                matches!(&events[0], tether_core::Event::Message(Message::Text(t)) if t == "a"),
                "round {round}: {events:?}"
            );
            match events.last() {
                Some(tether_core::Event::Closed(reason)) => {
                    assert_eq!(reason.code(), CloseCode::PROTOCOL_ERROR)
                }
                other => panic!("round {round}: {other:?}"),
            }
        }
    });
}

#[test]
fn rfc6455_7_1_7_client_replies_before_a_violation_sent_with_the_handshake() {
    rt::block_on(async {
        // The 101 response, a message and a frame with a reserved opcode, in one write.
        let (addr, server) = raw_server(vec![0x81, 0x01, b'a', 0x83, 0x00]);
        let (mut client, _) = ws::connect(&url(addr, "/")).await.unwrap();
        let message = client.recv().await.unwrap().unwrap();
        assert_eq!(message, Message::text("a"));
        client.send(message).await.unwrap();
        assert!(matches!(client.recv().await, Some(Err(Error::Protocol(_)))));
        assert!(client.recv().await.is_none());
        let events = server.join().unwrap();
        assert!(
            matches!(&events[0], tether_core::Event::Message(Message::Text(t)) if t == "a"),
            "{events:?}"
        );
        match events.last() {
            Some(tether_core::Event::Closed(reason)) => {
                assert_eq!(reason.code(), CloseCode::PROTOCOL_ERROR)
            }
            other => panic!("{other:?}"),
        }
    });
}

#[test]
fn backpressure_send_waits_when_the_peer_never_reads() {
    rt::block_on(async {
        let (addr, _silent) = silent_server(true);
        let request = ClientRequest::new(&url(addr, "/")).unwrap();
        let mut config = no_pings();
        config.write_high_water_mark = 64 * 1024;
        let (mut client, _) = ws::connect_with(request, config).await.unwrap();
        let chunk = bytes::Bytes::from(pattern(16 * 1024));
        let bound = 64 * 1024 + chunk.len() + 14;
        let mut sent = 0usize;
        loop {
            match timeout(
                Duration::from_millis(300),
                client.send_binary(chunk.clone()),
            )
            .await
            {
                Some(result) => result.unwrap(),
                None => break,
            }
            sent += chunk.len();
            assert!(
                client.buffered_amount() <= bound,
                "{}",
                client.buffered_amount()
            );
            assert!(sent < 256 << 20, "send never waited");
        }
        assert!(client.buffered_amount() >= 64 * 1024);
        assert!(client.buffered_amount() <= bound);
    });
}

#[test]
fn backpressure_slow_reader_pauses_reading_instead_of_failing() {
    rt::block_on(async {
        const COUNT: usize = 512;
        const SIZE: usize = 32 * 1024;
        let listener = rt::listener(std_listener(Some(16 * 1024)));
        let addr = listener.local_addr().unwrap();
        // Short keep-alive timers: the pause outlasts ping interval + pong deadline, and a
        // slow application must not make a live peer look dead.
        let mut config = short_timers();
        config.limits.max_message_size = 64 * 1024;
        config.limits.max_frame_size = 64 * 1024;
        config.limits.max_buffered_input = 256 * 1024;
        let go = Arc::new(AtomicUsize::new(0));
        let server = rt::spawn({
            let go = go.clone();
            async move {
                let stream = rt::accept(&listener).await;
                let mut ws = ws::accept_with(stream, config, |_| Ok(Accept::new()))
                    .await
                    .unwrap();
                while go.load(Ordering::SeqCst) == 0 {
                    rt::sleep(Duration::from_millis(10)).await;
                }
                let mut i = 0;
                while i < COUNT {
                    match ws.recv().await {
                        Some(Ok(Message::Binary(b))) => {
                            assert_eq!(b.len(), SIZE);
                            assert_eq!(&b[..4], &(i as u32).to_be_bytes());
                            i += 1;
                        }
                        // Keep-alive pongs once reading has resumed.
                        Some(Ok(Message::Pong(_))) => {}
                        other => panic!("message {i}: {other:?}"),
                    }
                }
                assert!(ws.recv().await.is_none());
                ws.close_reason().unwrap()
            }
        });
        let progress = Arc::new(AtomicUsize::new(0));
        let client = rt::spawn({
            let progress = progress.clone();
            async move {
                let (mut ws, _) = ws::connect(&url(addr, "/")).await.unwrap();
                for i in 0..COUNT {
                    let mut data = vec![0u8; SIZE];
                    data[..4].copy_from_slice(&(i as u32).to_be_bytes());
                    ws.send_binary(data).await.unwrap();
                    progress.store(i + 1, Ordering::SeqCst);
                }
                ws.close(1000, "").await.unwrap();
                while ws.recv().await.is_some() {}
            }
        });
        // The server application does not read: its task must stop reading too, so the
        // client's sends stall instead of the server buffering everything (or failing).
        rt::sleep(SHORT * 3).await;
        let stalled = progress.load(Ordering::SeqCst);
        rt::sleep(SHORT * 2).await;
        assert_eq!(
            progress.load(Ordering::SeqCst),
            stalled,
            "sends did not stall"
        );
        assert!(stalled < COUNT, "everything was buffered");
        go.store(1, Ordering::SeqCst);
        let reason = timeout(Duration::from_secs(30), server)
            .await
            .expect("server done");
        assert!(reason.is_clean(), "{reason:?}");
        timeout(Duration::from_secs(5), client)
            .await
            .expect("client done");
    });
}

#[test]
fn rfc6455_5_5_3_a_peer_flooding_pings_and_reading_nothing_cannot_grow_memory() {
    rt::block_on(async {
        const PINGS: u32 = 200_000;
        let listener = rt::listener(std_listener(None));
        let addr = listener.local_addr().unwrap();
        let server = rt::spawn(async move {
            let stream = rt::accept(&listener).await;
            let mut ws = ws::accept(stream).await.unwrap();
            let mut pings = 0u32;
            let mut most_buffered = 0;
            while pings < PINGS {
                match ws.recv().await {
                    Some(Ok(Message::Ping(_))) => pings += 1,
                    other => panic!("after {pings} pings: {other:?}"),
                }
                most_buffered = most_buffered.max(ws.buffered_amount());
            }
            most_buffered
        });
        // A raw client that sends pings of 125 bytes (26 MB of them) and never reads: the
        // server's answers fill the socket buffers (a few MB) and then must stop piling up.
        let writer = std::thread::spawn(move || {
            let (mut stream, mut conn) = raw_client(addr);
            let mut batch = Vec::new();
            for i in 0..PINGS {
                let mut payload = vec![0u8; 125];
                payload[..4].copy_from_slice(&i.to_be_bytes());
                conn.ping(Instant::now(), payload.into()).unwrap();
                if i % 1000 == 999 {
                    while let Some(tether_core::Transmit::Data) = conn.poll_transmit(&mut batch) {}
                    stream.write_all(&batch).unwrap();
                    batch.clear();
                }
            }
            stream
        });
        let most_buffered = timeout(Duration::from_secs(60), server)
            .await
            .expect("every ping arrived");
        // The socket buffers take the first pongs; then only the latest waits (plus what
        // was queued before the coalescing starts at 16 KiB).
        assert!(
            most_buffered < 64 * 1024,
            "{most_buffered} bytes of pongs queued"
        );
        drop(writer.join().unwrap());
    });
}

#[test]
fn recv_and_send_are_cancel_safe() {
    rt::block_on(async {
        // At least this many messages, and more (up to 10 times as many) until both sides
        // have been cancelled: how often a send waits depends on the machine's load.
        const COUNT: usize = 400;
        let addr = echo_server(Config::default()).await;
        let request = ClientRequest::new(&url(addr, "/")).unwrap();
        let mut config = Config::default();
        // Every send waits until the previous message is written, so sends are pending
        // whenever the socket buffers are full when the competitor wins.
        config.write_high_water_mark = 1;
        let (client, _) = ws::connect_with(request, config).await.unwrap();
        let (mut read, mut write) = client.split();
        let write_cancelled = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writer = rt::spawn({
            let write_cancelled = write_cancelled.clone();
            let stop = stop.clone();
            async move {
                let mut i = 0usize;
                while !stop.load(Ordering::SeqCst) && i < COUNT * 10 {
                    // Large enough to fill the socket buffers now and then: a send waits
                    // only while the transport takes no more.
                    let message = Message::text(format!("{i:08}{}", "x".repeat(64 * 1024)));
                    loop {
                        let send = std::pin::pin!(write.send(message.clone()));
                        match future::select(send, std::pin::pin!(yield_once())).await {
                            Either::Left((result, _)) => break result.unwrap(),
                            Either::Right(_) => {
                                write_cancelled.fetch_add(1, Ordering::SeqCst);
                            }
                        }
                    }
                    i += 1;
                }
                write.send_text("end").await.unwrap();
                write
            }
        });
        // Read nothing for a while: the buffers on the way fill up and sends wait.
        rt::sleep(SHORT / 2).await;
        let mut cancelled = 0usize;
        let mut next = 0usize;
        loop {
            let recv = std::pin::pin!(read.recv());
            match future::select(recv, std::pin::pin!(yield_once())).await {
                Either::Left((Some(Ok(Message::Text(t))), _)) if t == "end" => break,
                Either::Left((Some(Ok(Message::Text(t))), _)) => {
                    assert_eq!(&t[..8], format!("{next:08}"), "lost or repeated message");
                    next += 1;
                    if next >= COUNT && cancelled > 0 && write_cancelled.load(Ordering::SeqCst) > 0
                    {
                        stop.store(true, Ordering::SeqCst);
                    }
                }
                Either::Left((other, _)) => panic!("{other:?}"),
                Either::Right(_) => cancelled += 1,
            }
        }
        let write = writer.await;
        assert!(next >= COUNT, "{next} messages");
        assert!(cancelled > 0, "recv was never cancelled");
        assert!(
            write_cancelled.load(Ordering::SeqCst) > 0,
            "send was never cancelled in {next} messages"
        );
        let mut client = read.reunite(write).unwrap();
        client.close(1000, "").await.unwrap();
        assert!(client.recv().await.is_none());
    });
}

#[test]
fn split_halves_work_from_two_tasks_at_once() {
    rt::block_on(async {
        const COUNT: usize = 500;
        let addr = echo_server(Config::default()).await;
        let (client, _) = ws::connect(&url(addr, "/")).await.unwrap();
        let (mut read, mut write) = client.split();
        // The reader waits first; the writer must not be blocked by it.
        let reader = rt::spawn(async move {
            for i in 0..COUNT {
                match read.recv().await {
                    Some(Ok(Message::Binary(b))) => assert_eq!(&b[..], &(i as u32).to_be_bytes()),
                    other => panic!("{other:?}"),
                }
            }
            read
        });
        rt::sleep(Duration::from_millis(20)).await;
        let writer = rt::spawn(async move {
            for i in 0..COUNT {
                write
                    .send_binary((i as u32).to_be_bytes().to_vec())
                    .await
                    .unwrap();
            }
            write
        });
        let write = timeout(Duration::from_secs(10), writer)
            .await
            .expect("writer");
        let read = timeout(Duration::from_secs(10), reader)
            .await
            .expect("reader");
        let mut client = read.reunite(write).unwrap();
        client.close(1000, "").await.unwrap();
        assert!(client.recv().await.is_none());
    });
}

#[test]
fn from_upgraded_streams_talk_without_a_handshake() {
    rt::block_on(async {
        let listener = rt::listener(std_listener(None));
        let addr = listener.local_addr().unwrap();
        let accepted = rt::spawn(async move { rt::accept(&listener).await });
        let a = rt::connect(addr).await;
        let b = accepted.await;
        let mut client = ws::from_upgraded(a, Role::Client, None, Config::default()).unwrap();
        let mut server = ws::from_upgraded(b, Role::Server, None, Config::default()).unwrap();
        client.send_text("up").await.unwrap();
        expect_text(&mut server, "up").await;
        server.send_binary(vec![1, 2, 3]).await.unwrap();
        expect_binary(&mut client, &[1, 2, 3]).await;
        server.close(1000, "").await.unwrap();
        assert!(client.recv().await.is_none());
        assert!(server.recv().await.is_none());
    });
}

#[test]
fn connect_errors_are_typed() {
    rt::block_on(async {
        // Nothing listens on a port that was just released.
        let addr = std_listener(None).local_addr().unwrap();
        assert!(matches!(
            ws::connect(&url(addr, "/")).await,
            Err(Error::Io(_))
        ));
        assert!(matches!(
            ws::connect("http://example.com/").await,
            Err(Error::Handshake(_))
        ));
    });
}

/// A server configuration with a certificate for `localhost` generated on the spot, and a
/// client configuration that trusts it (rustls with the ring provider).
fn tls_configs() -> (Arc<ws::rustls::ServerConfig>, ws::rustls::ClientConfig) {
    use ws::rustls;
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert_der = cert.cert.der().clone();
    let key_der = rustls::pki_types::PrivateKeyDer::Pkcs8(cert.signing_key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert_der.clone()], key_der)
        .unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert_der).unwrap();
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    (Arc::new(server), client)
}

#[test]
fn tls_round_trip_with_a_generated_certificate() {
    rt::block_on(async {
        let (server_tls, client_tls) = tls_configs();
        let listener = rt::listener(std_listener(None));
        let port = listener.local_addr().unwrap().port();
        drop(rt::spawn(async move {
            let stream = rt::accept(&listener).await;
            let tls = rt::tls_accept(server_tls, stream).await;
            let mut ws = ws::accept(tls).await.unwrap();
            while let Some(Ok(m)) = ws.recv().await {
                if matches!(m, Message::Text(_) | Message::Binary(_)) {
                    ws.send(m).await.unwrap();
                }
            }
        }));
        let request = ClientRequest::new(&format!("wss://localhost:{port}/secure")).unwrap();
        let (mut client, _) =
            ws::connect_with_tls(request, Config::default(), Arc::new(client_tls))
                .await
                .unwrap();
        client.send_text("over tls").await.unwrap();
        expect_text(&mut client, "over tls").await;
        let data = pattern(1 << 20);
        client.send_binary(data.clone()).await.unwrap();
        expect_binary(&mut client, &data).await;
        client.close(1000, "").await.unwrap();
        assert!(client.recv().await.is_none());
        assert!(client.close_reason().unwrap().is_clean());
    });
}
