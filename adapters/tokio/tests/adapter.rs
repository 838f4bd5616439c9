//! The adapters' shared suite on tokio, plus tokio-specific tests.

use tether_tokio as ws;

mod rt {
    use std::future::Future;
    use std::net::SocketAddr;
    use std::sync::Arc;
    use std::time::Duration;
    use tokio::net::TcpStream;

    pub type Listener = tokio::net::TcpListener;

    /// A multi-threaded runtime, so that tasks really run in parallel.
    pub fn block_on<F: Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
            .block_on(future)
    }

    pub fn spawn<F>(future: F) -> impl Future<Output = F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let handle = tokio::spawn(future);
        async move { handle.await.unwrap() }
    }

    pub async fn sleep(d: Duration) {
        tokio::time::sleep(d).await
    }

    pub fn listener(std: std::net::TcpListener) -> Listener {
        std.set_nonblocking(true).unwrap();
        Listener::from_std(std).unwrap()
    }

    pub async fn accept(listener: &Listener) -> TcpStream {
        listener.accept().await.unwrap().0
    }

    pub fn peer_addr(stream: &TcpStream) -> SocketAddr {
        stream.peer_addr().unwrap()
    }

    pub async fn connect(addr: SocketAddr) -> TcpStream {
        TcpStream::connect(addr).await.unwrap()
    }

    pub async fn tls_accept(
        config: Arc<tether_tokio::rustls::ServerConfig>,
        stream: TcpStream,
    ) -> tether_tokio::tokio_rustls::server::TlsStream<TcpStream> {
        tether_tokio::tokio_rustls::TlsAcceptor::from(config)
            .accept(stream)
            .await
            .unwrap()
    }
}

include!("../../tests/suite.rs");
include!("../../tests/reconnect.rs");
include!("../../tests/handle.rs");

/// Cancel safety under `tokio::select!` against a timer, in a loop (RFC-independent).
#[test]
fn tokio_select_against_a_timer_loses_nothing() {
    rt::block_on(async {
        const COUNT: usize = 300;
        let addr = echo_server(Config::default()).await;
        let request = ClientRequest::new(&url(addr, "/")).unwrap();
        let mut config = Config::default();
        config.write_high_water_mark = 1;
        let (client, _) = ws::connect_with(request, config).await.unwrap();
        let (mut read, mut write) = client.split();
        let mut sent = 0usize;
        let mut received = 0usize;
        let mut cancelled_sends = 0usize;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while received < COUNT {
            assert!(
                tokio::time::Instant::now() < deadline,
                "stuck at {received}"
            );
            // Large enough to fill the socket buffers now and then: a send is pending only
            // while the transport takes no more.
            let message = Message::text(format!("{sent:06}{}", "x".repeat(64 * 1024)));
            tokio::select! {
                result = write.send(message), if sent < COUNT => {
                    result.unwrap();
                    sent += 1;
                    continue;
                }
                m = read.recv() => match m {
                    Some(Ok(Message::Text(t))) => {
                        assert_eq!(&t[..6], format!("{received:06}").as_str());
                        received += 1;
                    }
                    other => panic!("{other:?}"),
                },
                _ = tokio::time::sleep(Duration::from_micros(500)) => {}
            }
            // Another branch won: a pending send (if any) was dropped and is retried.
            if sent < COUNT {
                cancelled_sends += 1;
            }
        }
        assert_eq!(sent, COUNT);
        assert!(cancelled_sends > 0, "no send was ever cancelled");
    });
}

/// Counts the writes that reach a stream.
struct CountingWrites {
    inner: tokio::net::TcpStream,
    writes: Arc<std::sync::atomic::AtomicUsize>,
}

impl tokio::io::AsyncRead for CountingWrites {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for CountingWrites {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let result = std::pin::Pin::new(&mut self.inner).poll_write(cx, buf);
        if result.is_ready() {
            self.writes.fetch_add(1, Ordering::SeqCst);
        }
        result
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A reply is written at once from the task that received the request; a burst of sends
/// from that task afterwards goes out in a few coalesced writes, not one write each.
/// (One thread, so that the background task runs only when the application waits.)
#[test]
fn replies_go_out_at_once_and_bursts_are_coalesced() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        const BURST: usize = 1000;
        let addr = echo_server(Config::default()).await;
        let writes = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let stream = CountingWrites {
            inner: rt::connect(addr).await,
            writes: writes.clone(),
        };
        let request = ClientRequest::new(&url(addr, "/")).unwrap();
        let (mut client, _) = ws::client(stream, request, Config::default())
            .await
            .unwrap();
        // Request/reply: each reply is written by the send itself, before it returns.
        for i in 0..3 {
            client.send_text(format!("ping {i}")).await.unwrap();
            expect_text(&mut client, &format!("ping {i}")).await;
            let before = writes.load(Ordering::SeqCst);
            client.send_text("reply").await.unwrap();
            assert_eq!(
                writes.load(Ordering::SeqCst),
                before + 1,
                "reply not written at once"
            );
            expect_text(&mut client, "reply").await;
        }
        let before = writes.load(Ordering::SeqCst);
        for i in 0..BURST {
            client.send_text(format!("{i:06}")).await.unwrap();
        }
        client.flush().await.unwrap();
        let burst_writes = writes.load(Ordering::SeqCst) - before;
        assert!(
            burst_writes <= 10,
            "{burst_writes} writes for {BURST} messages"
        );
        for i in 0..BURST {
            expect_text(&mut client, &format!("{i:06}")).await;
        }
        client.close(1000, "").await.unwrap();
    });
}

/// An idle connection costs no task of its own: the handshake is driven by the task that
/// awaits it, a background task, once spawned for work nobody waiting in `recv()` could
/// do (a timer, say), ends after a second without work, and the connections made on one
/// thread share one timer task.
#[test]
fn idle_connections_have_no_background_task() {
    rt::block_on(async {
        // More than the timer tasks there can be (see below).
        const CONNS: usize = 64;
        let addr = echo_server(Config::default()).await;
        let tasks = || {
            tokio::runtime::Handle::current()
                .metrics()
                .num_alive_tasks()
        };
        // The echo server's accept loop is the only task so far.
        let base = tasks();
        let mut clients = Vec::new();
        for i in 0..CONNS {
            let (mut ws, _) = ws::connect(&url(addr, "/")).await.unwrap();
            ws.send_text(format!("hello {i}")).await.unwrap();
            expect_text(&mut ws, &format!("hello {i}")).await;
            clients.push(ws);
        }
        // One task per server connection (the echo loop), none per client: the clients'
        // handshakes and echoes ran in this task. Besides, the timer tasks of the queue of
        // each thread that made connections (this one and the runtime's two workers): at
        // most one per shard, one shard per CPU up to 16.
        let shards = std::thread::available_parallelism().map_or(1, |n| n.get().min(16));
        let timer_tasks = 3 * shards;
        assert!(timer_tasks < CONNS);
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let alive = tasks() - base;
            if (CONNS..=CONNS + timer_tasks).contains(&alive) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{alive} tasks for {CONNS} idle connections"
            );
            rt::sleep(Duration::from_millis(50)).await;
        }
        // They still work.
        for (i, ws) in clients.iter_mut().enumerate() {
            ws.send_text(format!("again {i}")).await.unwrap();
            expect_text(ws, &format!("again {i}")).await;
            ws.close(1000, "").await.unwrap();
        }
    });
}
