// What a connection manager holds of a connection (issue 21, part A): its `ConnectionId`,
// the cloneable `Sender`, backpressure against a peer that sends and never reads, the
// write half dropped while the read half lives, and replies to messages that arrived
// just before the peer's Close. Included by `tests/adapter.rs` of both adapters after
// `suite.rs` (it uses that file's helpers).

use ws::{PreparedFrame, Sender, TrySendError};

/// A listener whose accepted sockets have small kernel buffers both ways (which turns off
/// their autotuning): what a peer can push into the kernel stays small, so what it pushes
/// beyond that is what the server itself holds.
fn small_buffer_listener() -> std::net::TcpListener {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(16 * 1024).unwrap();
    socket.set_send_buffer_size(16 * 1024).unwrap();
    let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    socket.bind(&addr.into()).unwrap();
    socket.listen(64).unwrap();
    socket.into()
}

/// A server that accepts one WebSocket (accepting any request) and runs `f` on it; returns
/// its address and the future of `f`'s output.
fn serve_once<F, Fut>(f: F) -> (SocketAddr, impl Future<Output = Fut::Output>)
where
    F: FnOnce(ws::WebSocket) -> Fut + Send + 'static,
    Fut: Future + Send + 'static,
    Fut::Output: Send + 'static,
{
    let listener = rt::listener(std_listener(None));
    let addr = listener.local_addr().unwrap();
    let server = rt::spawn(async move {
        let stream = rt::accept(&listener).await;
        f(ws::accept(stream).await.unwrap()).await
    });
    (addr, server)
}

/// Accepts `count` connections on `listener` and returns their senders, in order.
async fn accept_senders(
    listener: rt::Listener,
    count: usize,
    config: Config,
) -> (Vec<Sender>, Vec<ws::WebSocket>) {
    let mut senders = Vec::new();
    let mut sockets = Vec::new();
    for _ in 0..count {
        let stream = rt::accept(&listener).await;
        let ws = ws::accept_with(stream, config.clone(), |_| Ok(Accept::new()))
            .await
            .unwrap();
        senders.push(ws.sender());
        sockets.push(ws);
    }
    (senders, sockets)
}

#[test]
fn connection_ids_are_unique_and_shared_by_every_handle() {
    rt::block_on(async {
        let addr = echo_server(Config::default()).await;
        let (a, _) = ws::connect(&url(addr, "/")).await.unwrap();
        let (b, _) = ws::connect(&url(addr, "/")).await.unwrap();
        assert_ne!(a.id(), b.id());
        assert_eq!(a.sender().id(), a.id());
        assert_eq!(a.id().to_string(), a.id().get().to_string());
        let id = b.id();
        let (read, write) = b.split();
        assert_eq!((read.id(), write.id(), write.sender().id()), (id, id, id));
    });
}

#[test]
fn senders_from_many_tasks_deliver_and_closed_resolves_once_with_the_reason() {
    rt::block_on(async {
        const TASKS: usize = 4;
        const EACH: usize = 50;
        let addr = echo_server(Config::default()).await;
        let (mut client, _) = ws::connect(&url(addr, "/")).await.unwrap();
        let sender = client.sender();
        let waiter = rt::spawn({
            let sender = sender.clone();
            async move { sender.closed().await }
        });
        let tasks: Vec<_> = (0..TASKS)
            .map(|t| {
                let sender = sender.clone();
                rt::spawn(async move {
                    for i in 0..EACH {
                        sender
                            .send(Message::text(format!("{t}:{i}")))
                            .await
                            .unwrap();
                    }
                })
            })
            .collect();
        for task in tasks {
            timeout(Duration::from_secs(10), task).await.expect("sent");
        }
        // Every message comes back, in order per task.
        let mut next = [0usize; TASKS];
        for _ in 0..TASKS * EACH {
            let message = timeout(Duration::from_secs(10), client.recv()).await;
            let Some(Some(Ok(Message::Text(text)))) = message else {
                panic!("{message:?}");
            };
            let (t, i) = text.split_once(':').unwrap();
            let (t, i): (usize, usize) = (t.parse().unwrap(), i.parse().unwrap());
            assert_eq!(i, next[t], "task {t}");
            next[t] += 1;
        }
        assert!(!sender.is_closed());
        sender.close(4000, "bye").unwrap();
        // Idempotent.
        sender.close(4001, "again").unwrap();
        assert!(sender.is_closed());
        assert!(matches!(
            sender.try_send(Message::text("late")),
            Err(TrySendError::Closed(_))
        ));
        assert!(client.recv().await.is_none());
        let reason = timeout(Duration::from_secs(5), waiter)
            .await
            .expect("closed() resolved");
        assert!(reason.is_clean(), "{reason:?}");
        let CloseReason::Clean { local, .. } = &*reason else {
            unreachable!()
        };
        assert_eq!(local.as_ref().unwrap().code, CloseCode(4000));
        // Once ended, it resolves at once.
        let again = timeout(SHORT, sender.closed()).await.expect("at once");
        assert!(again.is_clean());
        assert!(sender.send(Message::text("late")).await.is_err());
    });
}

#[test]
fn try_send_answers_full_at_the_high_water_mark_and_hands_the_message_back() {
    rt::block_on(async {
        let (addr, _silent) = silent_server(true);
        let request = ClientRequest::new(&url(addr, "/")).unwrap();
        let mut config = no_pings();
        config.write_high_water_mark = 64 * 1024;
        let (client, _) = ws::connect_with(request, config).await.unwrap();
        let sender = client.sender();
        let chunk = bytes::Bytes::from(pattern(16 * 1024));
        let mut queued = 0usize;
        // Queue until the socket takes no more (the kernel's buffers grow for a while):
        // `Full` five times in a row, 50 ms apart.
        let mut fulls = 0;
        let full = loop {
            match sender.try_send(Message::Binary(chunk.clone())) {
                Ok(()) => {
                    queued += chunk.len();
                    fulls = 0;
                    // Let the driver write what the socket takes.
                    yield_once().await;
                }
                Err(e) if e.is_full() && fulls < 5 => {
                    fulls += 1;
                    rt::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => break e,
            }
            assert!(queued < 64 << 20, "try_send never said Full");
        };
        assert!(full.is_full(), "{full}");
        let Some(Message::Binary(back)) = full.into_inner() else {
            panic!("the message is handed back");
        };
        assert_eq!(back, chunk);
        let buffered = sender.buffered_amount();
        assert!(buffered >= 64 * 1024, "{buffered}");
        assert!(buffered <= 64 * 1024 + chunk.len() + 14, "{buffered}");
        // An awaiting send waits for room rather than failing.
        assert!(
            timeout(SHORT, sender.send(Message::Binary(chunk.clone())))
                .await
                .is_none()
        );
        assert!(matches!(
            sender.try_send(Message::Ping(vec![0; 126].into())),
            Err(TrySendError::Full(_))
        ));
        drop(client);
    });
}

#[test]
fn a_prepared_frame_reaches_every_connection_with_and_without_deflate() {
    rt::block_on(async {
        const CLIENTS: usize = 6;
        let listener = rt::listener(std_listener(None));
        let addr = listener.local_addr().unwrap();
        let mut server_config = Config::default();
        server_config.deflate.enabled = true;
        server_config.deflate.server_no_context_takeover = true;
        let server = rt::spawn(accept_senders(listener, CLIENTS, server_config));
        let mut clients = Vec::new();
        for i in 0..CLIENTS {
            let mut config = Config::default();
            // Half the clients negotiate permessage-deflate.
            config.deflate.enabled = i % 2 == 0;
            let request = ClientRequest::new(&url(addr, "/")).unwrap();
            let (client, _) = ws::connect_with(request, config).await.unwrap();
            assert_eq!(client.deflate_params().is_some(), i % 2 == 0);
            clients.push(client);
        }
        let (senders, _server_sockets) = timeout(Duration::from_secs(10), server)
            .await
            .expect("accepted");
        let text = text_of(10_000);
        let frame = PreparedFrame::new(&Message::text(text.clone()))
            .unwrap()
            .compressed(15, 6);
        for sender in &senders {
            sender.try_send_prepared(&frame).unwrap();
        }
        for sender in &senders {
            sender.send_prepared(&frame).await.unwrap();
        }
        for client in &mut clients {
            for _ in 0..2 {
                expect_text(client, &text).await;
            }
        }
    });
}

#[test]
fn backpressure_a_peer_that_sends_and_never_reads_costs_the_mark_not_its_flood() {
    rt::block_on(async {
        const CHUNK: usize = 16 * 1024;
        let listener = rt::listener(small_buffer_listener());
        let addr = listener.local_addr().unwrap();
        // The echo server of the adapters' examples: it echoes every message, and its
        // sends wait at the high-water mark (the default, 128 KiB).
        drop(rt::spawn(async move {
            let stream = rt::accept(&listener).await;
            let mut ws = ws::accept(stream).await.unwrap();
            while let Some(Ok(m)) = ws.recv().await {
                if ws.send(m).await.is_err() {
                    break;
                }
            }
        }));
        // A raw client with small kernel buffers that sends binary messages as fast as the
        // server takes them and never reads.
        let flooder = std::thread::spawn(move || {
            let socket =
                socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
            socket.set_recv_buffer_size(16 * 1024).unwrap();
            socket.set_send_buffer_size(16 * 1024).unwrap();
            socket.connect(&addr.into()).unwrap();
            let mut stream: std::net::TcpStream = socket.into();
            stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let now = Instant::now();
            let request = ClientRequest::new(&url(addr, "/")).unwrap();
            let mut conn = tether_core::Connection::client(
                tether_core::Config::default(),
                &request,
                [3; 32],
                now,
            )
            .unwrap();
            stream.write_all(&raw_output(&mut conn)).unwrap();
            let mut buf = [0u8; 4096];
            loop {
                let n = stream.read(&mut buf).unwrap();
                assert!(n > 0);
                conn.handle_input(now, &buf[..n]);
                if let Some(tether_core::Event::Connected(_)) = conn.poll_event() {
                    break;
                }
            }
            // Stop once a write has made no progress for a while: the server stopped
            // reading.
            stream
                .set_write_timeout(Some(Duration::from_millis(700)))
                .unwrap();
            let mut accepted = 0usize;
            let mut frame = Vec::new();
            conn.send(now, Message::Binary(pattern(CHUNK).into()))
                .unwrap();
            conn.poll_transmit(&mut frame);
            let mut pos = 0;
            while accepted < 64 << 20 {
                match stream.write(&frame[pos..]) {
                    Ok(n) => {
                        accepted += n;
                        pos = (pos + n) % frame.len();
                    }
                    Err(_) => break,
                }
            }
            (accepted, stream)
        });
        let (accepted, _stream) = flooder.join().unwrap();
        eprintln!("a peer that never reads pushed {accepted} bytes before the server stopped reading");
        // Kernel buffers (16 KiB asked for, doubled by Linux, both ways and both ends),
        // the 128 KiB mark, the message being echoed and one read: well under 1 MiB.
        // Without the read pause the server reads on until its input limit (16 MiB).
        assert!(accepted < 1 << 20, "the server took {accepted} bytes");
    });
}

#[test]
fn dropping_the_write_half_leaves_the_connection_working_through_the_read_half() {
    rt::block_on(async {
        let (addr, server) = serve_once(|mut ws| async move {
            // The client drops its write half, then sends through a Sender.
            expect_text(&mut ws, "from the sender").await;
            ws.send_text("one").await.unwrap();
            ws.send_text("two").await.unwrap();
            // Pings are still answered.
            ws.ping("alive").await.unwrap();
            match timeout(Duration::from_secs(5), ws.recv()).await {
                Some(Some(Ok(Message::Pong(p)))) => assert_eq!(&p[..], b"alive"),
                other => panic!("{other:?}"),
            }
            ws.close(1000, "done").await.unwrap();
            assert!(ws.recv().await.is_none());
            ws.close_reason().unwrap()
        });
        let (client, _) = ws::connect_with(ClientRequest::new(&url(addr, "/")).unwrap(), no_pings())
            .await
            .unwrap();
        let (mut read, write) = client.split();
        let sender = write.sender();
        drop(write);
        sender.try_send(Message::text("from the sender")).unwrap();
        expect_text_half(&mut read, "one").await;
        expect_text_half(&mut read, "two").await;
        // The server's ping (answered by the connection itself), then the end.
        loop {
            match timeout(Duration::from_secs(5), read.recv()).await {
                Some(Some(Ok(Message::Ping(p)))) => assert_eq!(&p[..], b"alive"),
                Some(None) => break,
                other => panic!("{other:?}"),
            }
        }
        assert!(read.close_reason().unwrap().is_clean());
        let reason = timeout(Duration::from_secs(5), server).await.expect("server");
        assert!(reason.is_clean(), "{reason:?}");
    });
}

async fn expect_text_half(read: &mut ws::ReadHalf, expected: &str) {
    match timeout(Duration::from_secs(5), read.recv()).await {
        Some(Some(Ok(Message::Text(t)))) => assert_eq!(t, expected),
        other => panic!("expected {expected:?}, got {other:?}"),
    }
}

#[test]
fn dropping_both_halves_closes_normally_even_while_senders_live() {
    rt::block_on(async {
        let (addr, server) = serve_once(|mut ws| async move {
            assert!(timeout(Duration::from_secs(5), ws.recv()).await.unwrap().is_none());
            ws.close_reason().unwrap()
        });
        let (client, _) = ws::connect(&url(addr, "/")).await.unwrap();
        let sender = client.sender();
        drop(client);
        let reason = timeout(Duration::from_secs(5), server).await.expect("server");
        let CloseReason::Clean { remote, .. } = &*reason else {
            panic!("{reason:?}")
        };
        assert_eq!(remote.as_ref().unwrap().code, CloseCode::NORMAL);
        let ended = timeout(Duration::from_secs(5), sender.closed()).await;
        assert!(ended.expect("closed() resolved").is_clean());
        assert!(sender.is_closed());
    });
}

#[test]
fn two_step_accept_awaits_the_applications_checks_and_keeps_the_request() {
    rt::block_on(async {
        let listener = rt::listener(std_listener(None));
        let addr = listener.local_addr().unwrap();
        let server = rt::spawn(async move {
            let (stream, peer) = {
                let stream = rt::accept(&listener).await;
                let peer = rt::peer_addr(&stream);
                (stream, peer)
            };
            let incoming = ws::incoming(stream, Config::default())
                .peer_addr(peer)
                .await
                .unwrap();
            assert_eq!(incoming.peer_addr(), Some(peer));
            assert!(incoming.is_upgrade());
            let request = incoming.request();
            assert_eq!(request.path(), "/chat");
            assert_eq!(request.query_param("token").as_deref(), Some("a b"));
            assert_eq!(request.subprotocols(), ["chat"]);
            // A check that awaits (a token lookup).
            rt::sleep(Duration::from_millis(50)).await;
            let mut ws = incoming
                .accept(Accept::new().subprotocol("chat").header("x-user", "alice"))
                .unwrap();
            assert_eq!(ws.subprotocol(), Some("chat"));
            let kept = ws.request().expect("the request is kept");
            assert_eq!(kept.path(), "/chat");
            assert_eq!(ws.peer_addr(), Some(peer), "the peer's address is kept");
            assert_eq!(kept.query_param("token").as_deref(), Some("a b"));
            ws.send_text("hi alice").await.unwrap();
            while ws.recv().await.is_some() {}
        });
        let request = ClientRequest::new(&url(addr, "/chat?token=a%20b"))
            .unwrap()
            .subprotocol("chat");
        let (mut client, response) = ws::connect_with(request, Config::default()).await.unwrap();
        assert_eq!(response.header("x-user"), Some(&b"alice"[..]));
        expect_text(&mut client, "hi alice").await;
        client.close(1000, "").await.unwrap();
        assert!(client.recv().await.is_none());
        timeout(Duration::from_secs(5), server).await.expect("server");
    });
}

#[test]
fn two_step_reject_sends_the_status_headers_and_body() {
    rt::block_on(async {
        let listener = rt::listener(std_listener(None));
        let addr = listener.local_addr().unwrap();
        drop(rt::spawn(async move {
            let stream = rt::accept(&listener).await;
            let incoming = ws::incoming(stream, Config::default()).await.unwrap();
            rt::sleep(Duration::from_millis(20)).await;
            incoming
                .reject(
                    Reject::new(401)
                        .header("www-authenticate", "Bearer")
                        .body("a valid token is needed"),
                )
                .unwrap();
        }));
        let err = ws::connect(&url(addr, "/")).await.unwrap_err();
        let Error::Rejected {
            status: 401,
            response: Some(response),
        } = &err
        else {
            panic!("{err:?}")
        };
        assert_eq!(response.header("www-authenticate"), Some(&b"Bearer"[..]));
        assert_eq!(&response.body()[..], b"a valid token is needed");
    });
}

#[test]
fn the_handshake_timeout_bounds_the_applications_checks() {
    rt::block_on(async {
        let listener = rt::listener(std_listener(None));
        let addr = listener.local_addr().unwrap();
        let server = rt::spawn(async move {
            let stream = rt::accept(&listener).await;
            let mut config = Config::default();
            config.timeouts.handshake = Some(SHORT);
            let started = Instant::now();
            let incoming = ws::incoming(stream, config).await.unwrap();
            // The application's check takes longer than the handshake may.
            rt::sleep(SHORT * 2).await;
            let result = incoming.accept(Accept::new());
            (result.map(|_| ()), started.elapsed())
        });
        let client = rt::spawn(async move { ws::connect(&url(addr, "/")).await.map(|_| ()) });
        let (result, elapsed) = timeout(Duration::from_secs(5), server).await.expect("server");
        assert!(
            matches!(result, Err(Error::Timeout(Timeout::Handshake))),
            "{result:?}"
        );
        assert!(elapsed < SHORT * 2 + SLACK);
        // The client is not left hanging: the connection is dropped.
        let client = timeout(Duration::from_secs(5), client).await.expect("client");
        assert!(client.is_err(), "{client:?}");
    });
}

#[test]
fn plain_http_requests_share_the_websocket_port_when_enabled() {
    rt::block_on(async {
        let listener = rt::listener(std_listener(None));
        let addr = listener.local_addr().unwrap();
        drop(rt::spawn(async move {
            let mut config = Config::default();
            config.plain_http = true;
            loop {
                let stream = rt::accept(&listener).await;
                let config = config.clone();
                drop(rt::spawn(async move {
                    let incoming = ws::incoming(stream, config).await.unwrap();
                    if !incoming.is_upgrade() {
                        let reply = match incoming.request().path() {
                            "/health" => Reject::new(200)
                                .header("content-type", "application/json")
                                .body(r#"{"status":"ok"}"#),
                            _ => Reject::new(404),
                        };
                        incoming.reject(reply).unwrap();
                        return;
                    }
                    let mut ws = incoming.accept(Accept::new()).unwrap();
                    while let Some(Ok(m)) = ws.recv().await {
                        if m.is_text() && ws.send(m).await.is_err() {
                            break;
                        }
                    }
                }));
            }
        }));
        let get = |path: &'static str| {
            std::thread::spawn(move || {
                let mut stream = std::net::TcpStream::connect(addr).unwrap();
                stream
                    .set_read_timeout(Some(Duration::from_secs(5)))
                    .unwrap();
                write!(stream, "GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").unwrap();
                let mut response = Vec::new();
                stream.read_to_end(&mut response).unwrap();
                String::from_utf8(response).unwrap()
            })
        };
        let health = get("/health").join().unwrap();
        assert!(health.starts_with("HTTP/1.1 200"), "{health}");
        assert!(health.ends_with(r#"{"status":"ok"}"#), "{health}");
        assert!(get("/other").join().unwrap().starts_with("HTTP/1.1 404"));
        // The WebSocket on the same port.
        let (mut client, _) = ws::connect(&url(addr, "/ws")).await.unwrap();
        client.send_text("still a websocket").await.unwrap();
        expect_text(&mut client, "still a websocket").await;
    });
}

#[test]
fn plain_http_requests_get_400_when_not_enabled() {
    rt::block_on(async {
        let listener = rt::listener(std_listener(None));
        let addr = listener.local_addr().unwrap();
        let server = rt::spawn(async move {
            let stream = rt::accept(&listener).await;
            ws::incoming(stream, Config::default()).await.map(|_| ())
        });
        let response = std::thread::spawn(move || {
            let mut stream = std::net::TcpStream::connect(addr).unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            stream
                .write_all(b"GET /health HTTP/1.1\r\nHost: test\r\n\r\n")
                .unwrap();
            let mut response = Vec::new();
            stream.read_to_end(&mut response).unwrap();
            String::from_utf8_lossy(&response).into_owned()
        })
        .join()
        .unwrap();
        assert!(response.starts_with("HTTP/1.1 400"), "{response}");
        let result = timeout(Duration::from_secs(5), server).await.expect("server");
        assert!(matches!(result, Err(Error::Handshake(_))), "{result:?}");
    });
}

#[test]
fn incoming_tls_is_bounded_by_the_handshake_timeout_and_accepts() {
    rt::block_on(async {
        let (server_tls, client_tls) = tls_configs();
        let listener = rt::listener(std_listener(None));
        let port = listener.local_addr().unwrap().port();
        let server = rt::spawn(async move {
            let mut config = Config::default();
            config.timeouts.handshake = Some(SHORT);
            // A peer that connects and never starts TLS.
            let stream = rt::accept(&listener).await;
            let started = Instant::now();
            let silent = ws::incoming_tls(stream, server_tls.clone(), config.clone()).await;
            assert!(
                matches!(silent, Err(Error::Timeout(Timeout::Handshake))),
                "{silent:?}"
            );
            assert!(started.elapsed() < SHORT + SLACK);
            let stream = rt::accept(&listener).await;
            let incoming = ws::incoming_tls(stream, server_tls, config).await.unwrap();
            assert!(incoming.peer_addr().is_some());
            let mut ws = incoming.accept(Accept::new()).unwrap();
            ws.send_text("secure hello").await.unwrap();
            while ws.recv().await.is_some() {}
        });
        let _silent = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        rt::sleep(SHORT * 2).await;
        let request = ClientRequest::new(&format!("wss://localhost:{port}/")).unwrap();
        let (mut client, _) = ws::connect_with_tls(request, Config::default(), Arc::new(client_tls))
            .await
            .unwrap();
        expect_text(&mut client, "secure hello").await;
        client.close(1000, "").await.unwrap();
        timeout(Duration::from_secs(5), server).await.expect("server");
    });
}

#[test]
fn rfc6455_5_5_1_a_clients_replies_to_messages_before_a_close_go_out_first() {
    rt::block_on(async {
        let listener = std_listener(None);
        let addr = listener.local_addr().unwrap();
        // A raw server that answers the handshake, 100 messages and its Close in one write,
        // then reads until the client is gone.
        let server = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            let now = Instant::now();
            let mut conn = raw_accept(&mut stream);
            for i in 0..100 {
                conn.send(now, Message::text(format!("m{i}"))).unwrap();
            }
            conn.close(now, CloseCode::NORMAL, "").unwrap();
            stream.write_all(&raw_output(&mut conn)).unwrap();
            raw_read_all(&mut stream, &mut conn)
        });
        let (mut client, _) = ws::connect(&url(addr, "/")).await.unwrap();
        let mut echoed = 0;
        while let Some(message) = timeout(Duration::from_secs(5), client.recv())
            .await
            .expect("the connection ends")
        {
            let message = message.unwrap();
            assert!(message.is_text());
            client.send(message).await.unwrap();
            echoed += 1;
        }
        assert_eq!(echoed, 100);
        assert!(client.close_reason().unwrap().is_clean());
        let events = server.join().unwrap();
        let texts = raw_texts(&events);
        let sent: Vec<String> = (0..100).map(|i| format!("m{i}")).collect();
        assert_eq!(texts, sent, "{events:?}");
        match events.last() {
            Some(tether_core::Event::Closed(reason)) => assert!(reason.is_clean(), "{reason:?}"),
            other => panic!("{other:?}"),
        }
    });
}
