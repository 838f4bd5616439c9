// The reconnecting client's shared tests, included by `tests/adapter.rs` of tether-tokio and
// tether-async-std right after `suite.rs`, whose helpers (`rt`, `ws`, `url`, `timeout`,
// `std_listener`, `silent_server`, `short_timers`, `SHORT`, `SLACK`, ...) they use.
//
// Real loopback servers that are stopped and restarted, refuse, close or go silent. Timers
// are a few hundred milliseconds; upper bounds on detection times add `SLACK`, lower bounds
// count from before the client started, so a loaded machine only makes them easier.

mod reconnect {
    use super::*;
    use std::sync::Mutex;
    use std::task::Waker;
    use ws::{
        ClientEvent, Disconnect, DisconnectReason, GiveUpReason, Heartbeat, OutboxError,
        OutboxLimits, ReconnectConfig, ReconnectingClient,
    };

    /// Bound on every wait for an event.
    const EVENT_WAIT: Duration = Duration::from_secs(10);

    /// A one-shot signal for many waiters.
    #[derive(Clone, Default)]
    struct Stop(Arc<Mutex<(bool, Vec<Waker>)>>);

    impl Stop {
        fn fire(&self) {
            let mut s = self.0.lock().unwrap();
            s.0 = true;
            for waker in s.1.drain(..) {
                waker.wake();
            }
        }

        async fn wait(&self) {
            poll_fn(|cx| {
                let mut s = self.0.lock().unwrap();
                if s.0 {
                    return Poll::Ready(());
                }
                if !s.1.iter().any(|w| w.will_wake(cx.waker())) {
                    s.1.push(cx.waker().clone());
                }
                Poll::Pending
            })
            .await
        }
    }

    /// What a [`TestServer`] does with a connection.
    #[derive(Clone, Copy, Debug)]
    enum Behaviour {
        /// Echoes text and binary messages.
        Echo,
        /// Reads and records, never answers (WebSocket pings are still answered).
        Sink,
        /// Refuses the upgrade with this status.
        Reject(u16),
        /// Accepts, then closes at once with this code.
        CloseWith(u16),
    }

    /// What a [`TestServer`] saw.
    #[derive(Default, Debug)]
    struct Log {
        /// Upgrade requests seen.
        dials: usize,
        /// Their `authorization` headers.
        tokens: Vec<String>,
        /// Text messages received, in order.
        received: Vec<String>,
    }

    /// A WebSocket server on loopback that can be stopped (listener and connections closed)
    /// and started again on the same port.
    struct TestServer {
        addr: SocketAddr,
        stop: Stop,
        accept_loop: std::pin::Pin<Box<dyn Future<Output = ()> + Send>>,
        log: Arc<Mutex<Log>>,
    }

    impl TestServer {
        async fn start(addr: Option<SocketAddr>, behaviour: Behaviour) -> Self {
            let socket =
                socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
            // Rebinding a port whose old connections linger in TIME_WAIT.
            socket.set_reuse_address(true).unwrap();
            let addr = addr.unwrap_or_else(|| "127.0.0.1:0".parse().unwrap());
            socket.bind(&addr.into()).unwrap();
            socket.listen(64).unwrap();
            let listener = rt::listener(socket.into());
            let addr = listener.local_addr().unwrap();
            let stop = Stop::default();
            let log = Arc::new(Mutex::new(Log::default()));
            let (s, l) = (stop.clone(), log.clone());
            let accept_loop = Box::pin(rt::spawn(async move {
                loop {
                    let stream = {
                        let stopped = std::pin::pin!(s.wait());
                        let accepted = std::pin::pin!(rt::accept(&listener));
                        match future::select(stopped, accepted).await {
                            Either::Left(_) => return, // drops the listener
                            Either::Right((stream, _)) => stream,
                        }
                    };
                    let (s, l) = (s.clone(), l.clone());
                    drop(rt::spawn(async move {
                        let check = check(behaviour, l.clone());
                        if let Ok(conn) = ws::accept_with(stream, Config::default(), check).await {
                            serve(conn, behaviour, s, l).await;
                        }
                    }));
                }
            }));
            Self {
                addr,
                stop,
                accept_loop,
                log,
            }
        }

        /// Closes the listener and every connection; returns once the listener is closed.
        async fn stop(self) -> Arc<Mutex<Log>> {
            self.stop.fire();
            self.accept_loop.await;
            self.log
        }
    }

    /// The accept callback: records the request, answers as `behaviour` says.
    fn check(
        behaviour: Behaviour,
        log: Arc<Mutex<Log>>,
    ) -> impl FnOnce(&ws::Request) -> Result<Accept, Reject> + Send + 'static {
        move |req| {
            let mut log = log.lock().unwrap();
            log.dials += 1;
            let token = req.header_str("authorization").unwrap_or_default();
            log.tokens.push(token.to_owned());
            match behaviour {
                Behaviour::Reject(status) => Err(Reject::new(status)),
                _ => Ok(Accept::new()),
            }
        }
    }

    async fn serve(
        mut conn: ws::WebSocket,
        behaviour: Behaviour,
        stop: Stop,
        log: Arc<Mutex<Log>>,
    ) {
        if let Behaviour::CloseWith(code) = behaviour {
            let _ = conn.close(code, "bye").await;
            while let Some(Ok(_)) = conn.recv().await {}
            return;
        }
        loop {
            let next = {
                let stopped = std::pin::pin!(stop.wait());
                let received = std::pin::pin!(conn.recv());
                match future::select(stopped, received).await {
                    Either::Left(_) => return, // drops the connection: a normal close
                    Either::Right((next, _)) => next,
                }
            };
            let Some(Ok(message)) = next else { return };
            if let Message::Text(text) = &message {
                log.lock().unwrap().received.push(text.to_string());
            }
            if matches!(behaviour, Behaviour::Echo)
                && matches!(message, Message::Text(_) | Message::Binary(_))
                && conn.send(message).await.is_err()
            {
                return;
            }
        }
    }

    /// Quick retries for tests: caps of 20 ms, 40 ms, ... up to 100 ms.
    fn fast_policy() -> ReconnectConfig {
        ReconnectConfig {
            initial_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(100),
            ..ReconnectConfig::default()
        }
    }

    fn request_to(addr: SocketAddr) -> impl FnMut(u32) -> Result<ClientRequest, Error> + Send {
        move |_| Ok(ClientRequest::new(&url(addr, "/"))?)
    }

    /// A loopback address where nothing listens.
    fn dead_addr() -> SocketAddr {
        let listener = std_listener(None);
        listener.local_addr().unwrap()
    }

    async fn next(client: &mut ReconnectingClient) -> Option<ClientEvent> {
        timeout(EVENT_WAIT, client.next_event())
            .await
            .expect("no event in time")
    }

    async fn expect_event(client: &mut ReconnectingClient) -> ClientEvent {
        next(client).await.expect("the event stream ended")
    }

    /// Takes events until one matches; returns it and those before it.
    async fn until(
        client: &mut ReconnectingClient,
        mut wanted: impl FnMut(&ClientEvent) -> bool,
    ) -> (ClientEvent, Vec<ClientEvent>) {
        let mut before = Vec::new();
        loop {
            let event = expect_event(client).await;
            if wanted(&event) {
                return (event, before);
            }
            before.push(event);
        }
    }

    fn is_text(event: &ClientEvent, expected: &str) -> bool {
        matches!(event, ClientEvent::Message(Message::Text(t)) if t == expected)
    }

    /// Closes the client and checks the end of its events.
    async fn close_and_finish(mut client: ReconnectingClient) {
        client.close(1000, "done");
        let (event, _) = until(&mut client, |e| matches!(e, ClientEvent::GaveUp(_))).await;
        assert!(
            matches!(
                event,
                ClientEvent::GaveUp(GiveUpReason::Terminal(Disconnect::ClosedByApplication))
            ),
            "{event:?}"
        );
        assert!(next(&mut client).await.is_none(), "events after GaveUp");
        assert!(client.is_stopped());
        assert!(matches!(
            client.try_send_text("late"),
            Err(OutboxError::Closed(_))
        ));
        let late = timeout(EVENT_WAIT, client.send_text("late")).await;
        assert!(matches!(late, Some(Err(OutboxError::Closed(_)))), "{late:?}");
    }

    #[test]
    fn reconnect_survives_server_restart_and_sends_queued_messages_in_order() {
        rt::block_on(async {
            let server = TestServer::start(None, Behaviour::Echo).await;
            let addr = server.addr;
            let connects = Arc::new(AtomicUsize::new(0));
            let messages = Arc::new(AtomicUsize::new(0));
            let closes = Arc::new(AtomicUsize::new(0));
            let tokens = Arc::new(AtomicUsize::new(0));
            let (c, m, x) = (connects.clone(), messages.clone(), closes.clone());
            let mut client = ws::reconnecting(move |_attempt| {
                // A fresh token for every dial, as an expiring credential would be.
                let n = tokens.fetch_add(1, Ordering::SeqCst);
                ClientRequest::new(&url(addr, "/"))
                    .map(|r| r.header("authorization", format!("Bearer token-{n}")))
            })
            .policy(fast_policy())
            .seed(7)
            .on_connect(move |_| {
                c.fetch_add(1, Ordering::SeqCst);
            })
            .on_message(move |_| {
                m.fetch_add(1, Ordering::SeqCst);
            })
            .on_close(move |_| {
                x.fetch_add(1, Ordering::SeqCst);
            })
            .start()
            .unwrap();

            assert!(matches!(
                expect_event(&mut client).await,
                ClientEvent::Connecting { attempt: 0 }
            ));
            let event = expect_event(&mut client).await;
            assert!(matches!(event, ClientEvent::Connected(_)), "{event:?}");
            assert!(client.is_connected());
            client.try_send_text("before").unwrap();
            let event = expect_event(&mut client).await;
            assert!(is_text(&event, "before"), "{event:?}");

            let first = server.stop().await;
            let event = expect_event(&mut client).await;
            assert!(
                matches!(
                    event,
                    ClientEvent::Disconnected(DisconnectReason::Closed(_))
                ),
                "{event:?}"
            );
            assert!(!client.is_connected());
            for i in 0..5 {
                client.try_send_text(format!("queued {i}")).unwrap();
            }
            // The server is down: at least one redial fails before it comes back.
            let (_, during) = until(&mut client, |e| {
                matches!(
                    e,
                    ClientEvent::Disconnected(DisconnectReason::DialFailed(_))
                )
            })
            .await;
            assert_eq!(client.outbox_len(), 5, "nothing is sent while offline");
            let cap = fast_policy().max_delay;
            assert!(
                during.iter().any(|e| matches!(
                    e,
                    ClientEvent::Reconnecting { attempt: 1, delay } if *delay <= cap
                )),
                "{during:?}"
            );

            let server = TestServer::start(Some(addr), Behaviour::Echo).await;
            let (_, during) = until(&mut client, |e| matches!(e, ClientEvent::Connected(_))).await;
            for event in &during {
                match event {
                    ClientEvent::Reconnecting { attempt, delay } => {
                        assert!(*attempt >= 1 && *delay <= cap, "{event:?}")
                    }
                    ClientEvent::Connecting { attempt } => assert!(*attempt >= 1, "{event:?}"),
                    ClientEvent::Disconnected(DisconnectReason::DialFailed(_)) => {}
                    other => panic!("unexpected while reconnecting: {other:?}"),
                }
            }
            assert!(client.is_connected());
            for i in 0..5 {
                let event = expect_event(&mut client).await;
                assert!(is_text(&event, &format!("queued {i}")), "{event:?}");
            }
            assert_eq!(client.outbox_len(), 0);

            close_and_finish(client).await;
            let second = server.stop().await;
            let first = first.lock().unwrap();
            let second = second.lock().unwrap();
            assert_eq!(first.received, ["before"]);
            let queued: Vec<String> = (0..5).map(|i| format!("queued {i}")).collect();
            assert_eq!(second.received, queued, "delivered once each, in order");
            assert_eq!(first.tokens, ["Bearer token-0"]);
            assert_eq!(second.tokens.len(), 1);
            assert_ne!(
                second.tokens[0], first.tokens[0],
                "the request is built afresh"
            );
            assert_eq!(connects.load(Ordering::SeqCst), 2);
            assert_eq!(messages.load(Ordering::SeqCst), 6);
            // The lost connection, the failed dials, the final close.
            assert!(closes.load(Ordering::SeqCst) >= 3);
        });
    }

    #[test]
    fn reconnect_detects_silent_server_within_ping_interval_plus_pong_timeout() {
        rt::block_on(async {
            let (addr, _silent) = silent_server(true);
            let config = short_timers();
            let deadline =
                config.timeouts.ping_interval.unwrap() + config.timeouts.pong_timeout.unwrap();
            let started = Instant::now();
            let mut client = ws::reconnecting(request_to(addr))
                .config(config)
                .policy(fast_policy())
                .start()
                .unwrap();
            let (_, _) = until(&mut client, |e| matches!(e, ClientEvent::Connected(_))).await;
            let connected = Instant::now();
            let event = expect_event(&mut client).await;
            let detected = Instant::now();
            match &event {
                ClientEvent::Disconnected(DisconnectReason::Closed(reason)) => {
                    assert!(
                        matches!(**reason, CloseReason::TimedOut(Timeout::Pong)),
                        "{reason:?}"
                    )
                }
                other => panic!("expected a pong timeout, got {other:?}"),
            }
            assert!(detected - started >= deadline, "{:?}", detected - started);
            assert!(
                detected - connected <= deadline + SLACK,
                "{:?}",
                detected - connected
            );
            let event = expect_event(&mut client).await;
            assert!(
                matches!(event, ClientEvent::Reconnecting { attempt: 1, .. }),
                "{event:?}"
            );
            close_and_finish(client).await;
        });
    }

    #[test]
    fn reconnect_app_heartbeat_without_reply_reconnects() {
        rt::block_on(async {
            let server = TestServer::start(None, Behaviour::Sink).await;
            let interval = Duration::from_millis(100);
            let reply_timeout = Duration::from_millis(200);
            let started = Instant::now();
            let mut client = ws::reconnecting(request_to(server.addr))
                .config(no_pings()) // only the heartbeat can notice
                .policy(fast_policy())
                .heartbeat(
                    Heartbeat::new("hb", interval)
                        .reply("hb-ack")
                        .timeout(reply_timeout),
                )
                .start()
                .unwrap();
            until(&mut client, |e| matches!(e, ClientEvent::Connected(_))).await;
            let connected = Instant::now();
            let event = expect_event(&mut client).await;
            let detected = Instant::now();
            assert!(
                matches!(
                    event,
                    ClientEvent::Disconnected(DisconnectReason::HeartbeatTimeout)
                ),
                "{event:?}"
            );
            assert!(detected - started >= interval + reply_timeout);
            assert!(detected - connected <= interval + reply_timeout + SLACK);
            let (_, _) = until(&mut client, |e| matches!(e, ClientEvent::Connected(_))).await;
            close_and_finish(client).await;
            let log = server.stop().await;
            let log = log.lock().unwrap();
            assert!(log.dials >= 2, "{log:?}");
            assert!(log.received.iter().all(|m| m == "hb"), "{log:?}");
            assert!(!log.received.is_empty());
        });
    }

    #[test]
    fn reconnect_app_heartbeat_answered_keeps_the_connection() {
        rt::block_on(async {
            let server = TestServer::start(None, Behaviour::Echo).await;
            let interval = Duration::from_millis(50);
            let reply_timeout = Duration::from_millis(1000);
            let mut client = ws::reconnecting(request_to(server.addr))
                .config(no_pings())
                .policy(fast_policy())
                .heartbeat(
                    Heartbeat::new("hb", interval)
                        .reply("hb")
                        .timeout(reply_timeout),
                )
                .start()
                .unwrap();
            until(&mut client, |e| matches!(e, ClientEvent::Connected(_))).await;
            client.try_send_text("data").unwrap();
            // Without the echoed replies, the connection would be dropped after 1.05 s.
            let mut seen = Vec::new();
            let window = reply_timeout + Duration::from_millis(500);
            let ended = timeout(window, async {
                loop {
                    let event = client.next_event().await;
                    let disconnected = matches!(event, None | Some(ClientEvent::Disconnected(_)));
                    seen.push(event);
                    if disconnected {
                        break;
                    }
                }
            })
            .await;
            assert!(ended.is_none(), "disconnected: {seen:?}");
            assert_eq!(
                seen.len(),
                1,
                "only the data echo, no heartbeat reply: {seen:?}"
            );
            assert!(
                matches!(&seen[0], Some(e) if is_text(e, "data")),
                "{seen:?}"
            );
            assert!(client.is_connected());
            close_and_finish(client).await;
            let log = server.stop().await;
            let log = log.lock().unwrap();
            assert_eq!(log.dials, 1);
            assert!(
                log.received.iter().filter(|m| *m == "hb").count() >= 5,
                "{log:?}"
            );
        });
    }

    #[test]
    fn reconnect_heartbeat_replies_are_not_delivered_but_other_messages_are() {
        rt::block_on(async {
            let server = TestServer::start(None, Behaviour::Echo).await;
            let mut client = ws::reconnecting(request_to(server.addr))
                .policy(fast_policy())
                // Replies are awaited for longer than the interval: a loaded machine (the
                // tests run side by side) must not turn a late echo into a timeout.
                .heartbeat(
                    Heartbeat::new("hb", Duration::from_millis(20))
                        .reply("hb")
                        .timeout(Duration::from_secs(5)),
                )
                .start()
                .unwrap();
            until(&mut client, |e| matches!(e, ClientEvent::Connected(_))).await;
            // Let some heartbeats go round first.
            rt::sleep(Duration::from_millis(200)).await;
            client.try_send_text("data").unwrap();
            let event = expect_event(&mut client).await;
            assert!(is_text(&event, "data"), "{event:?}");
            close_and_finish(client).await;
            let log = server.stop().await;
            assert!(log.lock().unwrap().received.iter().any(|m| m == "hb"));
        });
    }

    #[test]
    fn reconnect_outbox_full_returns_the_message_and_never_blocks() {
        rt::block_on(async {
            let addr = dead_addr();
            let client = ws::reconnecting(request_to(addr))
                .policy(fast_policy())
                .outbox(OutboxLimits {
                    max_messages: 3,
                    max_bytes: 1000,
                })
                .start()
                .unwrap();
            for i in 0..3 {
                client.try_send_text(format!("m{i}")).unwrap();
            }
            match client.try_send_text("m3") {
                Err(OutboxError::Full(Message::Text(t))) => assert_eq!(t, "m3"),
                other => panic!("expected Full, got {other:?}"),
            }
            assert_eq!(client.outbox_len(), 3);
            assert!(!client.is_connected());
            close_and_finish(client).await;

            let client = ws::reconnecting(request_to(addr))
                .policy(fast_policy())
                .outbox(OutboxLimits {
                    max_messages: 100,
                    max_bytes: 10,
                })
                .start()
                .unwrap();
            client.try_send_binary(vec![0u8; 5]).unwrap();
            assert!(matches!(
                client.try_send_binary(vec![0u8; 6]),
                Err(OutboxError::Full(_))
            ));
            client.try_send_binary(vec![0u8; 5]).unwrap();
            assert!(matches!(client.try_send_text("x"), Err(OutboxError::Full(_))));
            assert!(matches!(
                client.try_send(Message::Close(None)),
                Err(OutboxError::CloseMessage(_))
            ));
            let error = client.try_send_text("y").unwrap_err();
            assert!(matches!(error.into_message(), Message::Text(t) if t == "y"));
            close_and_finish(client).await;
        });
    }

    #[test]
    fn reconnect_awaited_send_waits_for_room_and_goes_out_after_connecting() {
        rt::block_on(async {
            // Nothing listens there yet; the server comes up later on the same port.
            let addr = dead_addr();
            let mut client = ws::reconnecting(request_to(addr))
                .policy(fast_policy())
                .outbox(OutboxLimits {
                    max_messages: 2,
                    max_bytes: 1000,
                })
                .start()
                .unwrap();
            let handle = client.handle();
            handle.send_text("m0").await.unwrap(); // room: resolves at once
            handle.try_send_text("m1").unwrap();
            assert_eq!(handle.outbox_len(), 2);

            // Full while offline: the awaiting send waits (where `try_send` fails).
            assert!(matches!(
                handle.try_send_text("m2"),
                Err(OutboxError::Full(_))
            ));
            // On a task of its own, so that only the client's wake-ups can finish it.
            let sender = handle.clone();
            let mut waiting = std::pin::pin!(rt::spawn(async move {
                sender.send_text("m2").await.map_err(|e| e.to_string())
            }));
            assert!(
                timeout(Duration::from_millis(300), waiting.as_mut())
                    .await
                    .is_none(),
                "resolved with the outbox full"
            );
            // A waiting send that is dropped queues nothing and takes nothing away.
            let dropped = timeout(Duration::from_millis(100), handle.send_text("dropped")).await;
            assert!(dropped.is_none(), "{dropped:?}");
            assert_eq!(handle.outbox_len(), 2);
            // Messages too large to ever fit fail at once instead of waiting forever.
            let huge = timeout(EVENT_WAIT, handle.send_binary(vec![0u8; 1001])).await;
            assert!(matches!(huge, Some(Err(OutboxError::Full(_)))), "{huge:?}");
            assert!(!client.is_connected());
            assert_eq!(handle.outbox_len(), 2);

            // The server comes up: the client connects, drains the outbox, the send resolves.
            let server = TestServer::start(Some(addr), Behaviour::Echo).await;
            let sent = timeout(EVENT_WAIT, waiting.as_mut()).await;
            assert!(matches!(sent, Some(Ok(()))), "{sent:?}");
            until(&mut client, |e| matches!(e, ClientEvent::Connected(_))).await;
            for expected in ["m0", "m1", "m2"] {
                let event = expect_event(&mut client).await;
                assert!(is_text(&event, expected), "{event:?}");
            }
            assert_eq!(client.outbox_len(), 0);
            close_and_finish(client).await;
            let log = server.stop().await;
            assert_eq!(
                log.lock().unwrap().received,
                ["m0", "m1", "m2"],
                "in order, once each, without the dropped send"
            );
        });
    }

    #[test]
    fn reconnect_awaited_send_while_connected_goes_out() {
        rt::block_on(async {
            let server = TestServer::start(None, Behaviour::Echo).await;
            let mut client = ws::reconnecting(request_to(server.addr))
                .policy(fast_policy())
                .start()
                .unwrap();
            until(&mut client, |e| matches!(e, ClientEvent::Connected(_))).await;
            for i in 0..20 {
                let sent = timeout(EVENT_WAIT, client.send_text(format!("c{i}"))).await;
                assert!(matches!(sent, Some(Ok(()))), "{sent:?}");
            }
            let sent = timeout(EVENT_WAIT, client.send_binary(vec![7u8; 3])).await;
            assert!(matches!(sent, Some(Ok(()))), "{sent:?}");
            for i in 0..20 {
                let event = expect_event(&mut client).await;
                assert!(is_text(&event, &format!("c{i}")), "{event:?}");
            }
            let event = expect_event(&mut client).await;
            assert!(
                matches!(&event, ClientEvent::Message(Message::Binary(b)) if b[..] == [7u8; 3]),
                "{event:?}"
            );
            let closed = timeout(EVENT_WAIT, client.send(Message::Close(None))).await;
            assert!(
                matches!(closed, Some(Err(OutboxError::CloseMessage(_)))),
                "{closed:?}"
            );
            close_and_finish(client).await;
            let log = server.stop().await;
            let expected: Vec<String> = (0..20).map(|i| format!("c{i}")).collect();
            assert_eq!(log.lock().unwrap().received, expected);
        });
    }

    #[test]
    fn reconnect_awaited_send_waits_at_the_connection_high_water_mark() {
        rt::block_on(async {
            // A server that completes the handshake, then reads nothing: the socket buffers
            // fill, then the connection's write buffer reaches its high-water mark.
            let (addr, silent) = silent_server(true);
            let mut config = no_pings();
            config.write_high_water_mark = 16 * 1024;
            config.timeouts.close = Some(SHORT);
            // An outbox far larger than what the loop below can send: a send that waits,
            // waits for the connection.
            let limits = OutboxLimits {
                max_messages: 1 << 16,
                max_bytes: 1 << 40,
            };
            let mut client = ws::reconnecting(request_to(addr))
                .config(config)
                .policy(fast_policy())
                .outbox(limits)
                .start()
                .unwrap();
            until(&mut client, |e| matches!(e, ClientEvent::Connected(_))).await;
            let handle = client.handle();
            let chunk = Message::binary(vec![1u8; 64 * 1024]);
            // The kernel's socket buffers take a few megabytes; 64 MiB cannot all fit.
            let mut sent = 0usize;
            loop {
                assert!(sent < 1024, "{sent} sends of 64 KiB never waited");
                match timeout(Duration::from_millis(500), handle.send(chunk.clone())).await {
                    Some(result) => {
                        result.unwrap();
                        sent += 1;
                    }
                    None => break,
                }
            }
            assert!(client.is_connected());
            // Connected, the outbox holds at most what reaches the high-water mark (here one
            // message) before awaiting sends wait: it is no second buffer in front.
            let queued = handle.outbox_len();
            assert!(queued <= 1, "{queued} messages in the outbox");
            // `try_send` does not wait for the connection: it queues up to the outbox's bounds.
            for _ in 0..4 {
                handle.try_send(chunk.clone()).unwrap();
            }
            close_and_finish(client).await;
            drop(silent);
        });
    }

    #[test]
    fn reconnect_gives_up_on_401_without_retry() {
        rt::block_on(async {
            let server = TestServer::start(None, Behaviour::Reject(401)).await;
            let errors = Arc::new(AtomicUsize::new(0));
            let e = errors.clone();
            let mut client = ws::reconnecting(request_to(server.addr))
                .policy(fast_policy())
                .on_error(move |error| {
                    assert_eq!(error.status(), Some(401));
                    e.fetch_add(1, Ordering::SeqCst);
                })
                .start()
                .unwrap();
            assert!(matches!(
                expect_event(&mut client).await,
                ClientEvent::Connecting { attempt: 0 }
            ));
            match expect_event(&mut client).await {
                ClientEvent::Disconnected(DisconnectReason::DialFailed(error)) => {
                    assert_eq!(error.status(), Some(401))
                }
                other => panic!("{other:?}"),
            }
            let event = expect_event(&mut client).await;
            assert!(
                matches!(
                    event,
                    ClientEvent::GaveUp(GiveUpReason::Terminal(Disconnect::HandshakeRejected {
                        status: 401
                    }))
                ),
                "{event:?}"
            );
            assert!(next(&mut client).await.is_none());
            assert!(client.is_stopped());
            assert_eq!(errors.load(Ordering::SeqCst), 1);
            let log = server.stop().await;
            assert_eq!(log.lock().unwrap().dials, 1, "no retry");
        });
    }

    #[test]
    fn reconnect_retries_other_statuses_until_attempts_are_exhausted() {
        rt::block_on(async {
            let server = TestServer::start(None, Behaviour::Reject(503)).await;
            let mut client = ws::reconnecting(request_to(server.addr))
                .policy(ReconnectConfig {
                    max_attempts: 2,
                    ..fast_policy()
                })
                .start()
                .unwrap();
            let (event, before) = until(&mut client, |e| matches!(e, ClientEvent::GaveUp(_))).await;
            assert!(
                matches!(event, ClientEvent::GaveUp(GiveUpReason::AttemptsExhausted)),
                "{event:?}"
            );
            let attempts: Vec<u32> = before
                .iter()
                .filter_map(|e| match e {
                    ClientEvent::Connecting { attempt } => Some(*attempt),
                    _ => None,
                })
                .collect();
            assert_eq!(attempts, [0, 1, 2]);
            assert!(next(&mut client).await.is_none());
            let log = server.stop().await;
            assert_eq!(log.lock().unwrap().dials, 3);

            // The terminal statuses are configurable: 503 can end it too.
            let server = TestServer::start(None, Behaviour::Reject(503)).await;
            let mut client = ws::reconnecting(request_to(server.addr))
                .policy(ReconnectConfig {
                    terminal_statuses: vec![503],
                    ..fast_policy()
                })
                .start()
                .unwrap();
            let (event, _) = until(&mut client, |e| matches!(e, ClientEvent::GaveUp(_))).await;
            assert!(
                matches!(
                    event,
                    ClientEvent::GaveUp(GiveUpReason::Terminal(Disconnect::HandshakeRejected {
                        status: 503
                    }))
                ),
                "{event:?}"
            );
            let log = server.stop().await;
            assert_eq!(log.lock().unwrap().dials, 1);
        });
    }

    #[test]
    fn reconnect_stops_on_a_terminal_close_code_and_retries_others() {
        rt::block_on(async {
            let server = TestServer::start(None, Behaviour::CloseWith(1008)).await;
            let mut client = ws::reconnecting(request_to(server.addr))
                .policy(fast_policy())
                .start()
                .unwrap();
            let (event, before) = until(&mut client, |e| matches!(e, ClientEvent::GaveUp(_))).await;
            let why = Disconnect::Closed {
                code: Some(CloseCode::POLICY_VIOLATION),
                initiated_locally: false,
            };
            assert!(
                matches!(event, ClientEvent::GaveUp(GiveUpReason::Terminal(w)) if w == why),
                "{event:?} after {before:?}"
            );
            assert!(
                !before
                    .iter()
                    .any(|e| matches!(e, ClientEvent::Reconnecting { .. }))
            );
            server.stop().await;

            let server = TestServer::start(None, Behaviour::CloseWith(1012)).await;
            let mut client = ws::reconnecting(request_to(server.addr))
                .policy(fast_policy())
                .start()
                .unwrap();
            let (_, before) = until(&mut client, |e| {
                matches!(e, ClientEvent::Reconnecting { attempt: 1, .. })
            })
            .await;
            assert!(
                before.iter().any(|e| matches!(
                    e,
                    ClientEvent::Disconnected(DisconnectReason::Closed(r))
                        if r.code() == CloseCode::SERVICE_RESTART
                )),
                "{before:?}"
            );
            close_and_finish(client).await;
            server.stop().await;
        });
    }

    #[test]
    fn reconnect_close_while_waiting_to_redial_gives_up_at_once() {
        rt::block_on(async {
            let mut client = ws::reconnecting(request_to(dead_addr()))
                .policy(ReconnectConfig {
                    initial_delay: Duration::from_secs(60),
                    max_delay: Duration::from_secs(60),
                    ..ReconnectConfig::default()
                })
                .seed(3)
                .start()
                .unwrap();
            let (event, _) = until(&mut client, |e| {
                matches!(e, ClientEvent::Reconnecting { .. })
            })
            .await;
            assert_eq!(client.attempt(), 1, "{event:?}");
            let started = Instant::now();
            close_and_finish(client).await;
            // Far less than the (up to) 60 s wait.
            assert!(started.elapsed() < Duration::from_secs(10));
        });
    }
}
