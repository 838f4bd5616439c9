//! The hub's suite on async-io / async-net (the async-std and smol stack), two executor
//! threads.

use tether_async_std as ws;

mod rt {
    use std::future::Future;
    use std::net::SocketAddr;
    use std::sync::Once;
    use std::time::Duration;

    pub type Listener = async_net::TcpListener;
    pub type Stream = async_net::TcpStream;

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

    pub fn spawn<F: Future<Output = ()> + Send + 'static>(future: F) {
        EXECUTOR.spawn(future).detach();
    }

    pub async fn sleep(d: Duration) {
        async_io::Timer::after(d).await;
    }

    pub fn listener() -> Listener {
        let std = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        Listener::try_from(std).unwrap()
    }

    pub async fn accept(listener: &Listener) -> (Stream, SocketAddr) {
        listener.accept().await.unwrap()
    }
}

include!("shared/suite.rs");
