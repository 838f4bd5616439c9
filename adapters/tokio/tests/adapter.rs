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
