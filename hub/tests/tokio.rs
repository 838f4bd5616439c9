//! The hub's suite on tokio (a multi-threaded runtime with two workers).

use tether_tokio as ws;

mod rt {
    use std::future::Future;
    use std::net::SocketAddr;
    use std::time::Duration;

    pub type Listener = tokio::net::TcpListener;
    pub type Stream = tokio::net::TcpStream;

    pub fn block_on<F: Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
            .block_on(future)
    }

    pub fn spawn<F: Future<Output = ()> + Send + 'static>(future: F) {
        tokio::spawn(future);
    }

    pub async fn sleep(d: Duration) {
        tokio::time::sleep(d).await
    }

    pub fn listener() -> Listener {
        let std = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        std.set_nonblocking(true).unwrap();
        Listener::from_std(std).unwrap()
    }

    pub async fn accept(listener: &Listener) -> (Stream, SocketAddr) {
        listener.accept().await.unwrap()
    }
}

include!("shared/suite.rs");
