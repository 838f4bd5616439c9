//! What the gateway's integration tests share: the gateway served on free loopback ports.
#![allow(dead_code)] // each test file uses its part

use std::net::SocketAddr;
use std::time::Duration;
use tether_gateway::config::Config;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How long any step of a test may take.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// `tether_gateway::server::serve_with` on a free port, until [`Server::stop`].
pub struct Server {
    /// The public listener.
    pub addr: SocketAddr,
    /// The admin listener, with [`Server::start_with`]`(config, true)`.
    pub admin: Option<SocketAddr>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), tether_gateway::server::ServeError>>,
}

impl Server {
    /// Serves `config` on a free port.
    pub async fn start(config: Config) -> Server {
        Self::start_with(config, false).await
    }

    /// With `admin`, an admin listener on another free port.
    pub async fn start_with(config: Config, admin: bool) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let admin_listener = match admin {
            true => Some(TcpListener::bind("127.0.0.1:0").await.unwrap()),
            false => None,
        };
        let admin = admin_listener.as_ref().map(|l| l.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(tether_gateway::server::serve_with(
            config,
            listener,
            admin_listener,
            async {
                let _ = stopped.await;
            },
        ));
        Server {
            addr,
            admin,
            stop: Some(stop),
            task,
        }
    }

    /// Shuts the server down and waits for `serve` to return.
    pub async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(TIMEOUT, self.task)
            .await
            .expect("serve returns after the shutdown")
            .unwrap()
            .unwrap();
    }
}
