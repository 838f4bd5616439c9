//! The adapters' shared suite on async-io / async-net (the async-std and smol stack).

use tether_async_std as ws;

mod rt {
    use async_net::TcpStream;
    use std::future::Future;
    use std::net::SocketAddr;
    use std::sync::{Arc, Mutex, Once};
    use std::task::{Poll, Waker};
    use std::time::Duration;

    pub type Listener = async_net::TcpListener;

    /// The tests' tasks run on two threads, as they would under async-std or smol.
    static EXECUTOR: async_executor::Executor<'static> = async_executor::Executor::new();

    pub fn block_on<F: Future>(future: F) -> F::Output {
        static START: Once = Once::new();
        START.call_once(|| {
            for _ in 0..2 {
                std::thread::spawn(|| {
                    async_io::block_on(EXECUTOR.run(std::future::pending::<()>()))
                });
            }
        });
        async_io::block_on(future)
    }

    pub fn spawn<F>(future: F) -> impl Future<Output = F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        // Detached, as a tokio task: dropping the returned future does not cancel it.
        let slot = Arc::new(Mutex::new((None, None::<Waker>)));
        let filler = slot.clone();
        EXECUTOR
            .spawn(async move {
                let output = future.await;
                let mut slot = filler.lock().unwrap();
                slot.0 = Some(output);
                if let Some(waker) = slot.1.take() {
                    waker.wake();
                }
            })
            .detach();
        std::future::poll_fn(move |cx| {
            let mut slot = slot.lock().unwrap();
            match slot.0.take() {
                Some(output) => Poll::Ready(output),
                None => {
                    slot.1 = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
        })
    }

    pub async fn sleep(d: Duration) {
        async_io::Timer::after(d).await;
    }

    pub fn listener(std: std::net::TcpListener) -> Listener {
        Listener::try_from(std).unwrap()
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
        config: Arc<tether_async_std::rustls::ServerConfig>,
        stream: TcpStream,
    ) -> tether_async_std::futures_rustls::server::TlsStream<TcpStream> {
        tether_async_std::futures_rustls::TlsAcceptor::from(config)
            .accept(stream)
            .await
            .unwrap()
    }
}

include!("../../tests/suite.rs");
include!("../../tests/reconnect.rs");
include!("../../tests/handle.rs");
