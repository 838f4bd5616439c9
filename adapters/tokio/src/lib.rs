//! # tether-tokio
//!
//! WebSocket clients and servers (RFC 6455, with permessage-deflate, RFC 7692) for
//! [tokio], built on the sans-IO protocol core `tether-core`.
//!
//! A client:
//!
//! ```no_run
//! use tether_tokio::{Message, connect};
//!
//! # async fn run() -> Result<(), tether_tokio::Error> {
//! let (mut ws, _response) = connect("ws://127.0.0.1:9001/chat").await?;
//! ws.send_text("hello").await?;
//! while let Some(message) = ws.recv().await {
//!     if let Message::Text(text) = message? {
//!         println!("{text}");
//!         ws.close(1000, "bye").await?;
//!     }
//! }
//! # Ok(())
//! # }
//! ```
//!
//! A server that accepts connections to `/chat` and echoes what it receives:
//!
//! ```no_run
//! use tether_tokio::{Accept, Config, Message, Reject, accept_with};
//!
//! # async fn run() -> std::io::Result<()> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:9001").await?;
//! loop {
//!     let (stream, _) = listener.accept().await?;
//!     tokio::spawn(async move {
//!         let check = |req: &tether_tokio::Request| match req.path() {
//!             "/chat" => Ok(Accept::new()),
//!             _ => Err(Reject::new(404)),
//!         };
//!         let Ok(mut ws) = accept_with(stream, Config::default(), check).await else { return };
//!         while let Some(Ok(message)) = ws.recv().await {
//!             if matches!(message, Message::Text(_) | Message::Binary(_)) {
//!                 let _ = ws.send(message).await;
//!             }
//!         }
//!     });
//! }
//! # }
//! ```
//!
//! ## How it works
//!
//! A task waiting in [`WebSocket::recv`] reads and writes the socket itself, so a
//! request/reply loop costs one task wake-up per message. Whenever no task waits in
//! `recv()` and there is work (a ping to answer, a keep-alive to send, queued messages to
//! write, a timeout to enforce), a background task spawned with the runtime's handle does
//! it, and ends after a second without work: an idle connection costs no task besides the
//! application's, and no timer of its own (the connections made on one thread share one
//! queue of deadlines). [`WebSocket::recv`] and [`WebSocket::send`] are cancel-safe, and
//! [`WebSocket::split`] gives halves that two tasks can use at once.
//!
//! Sends wait while [`Config::write_high_water_mark`] bytes are queued for the socket, and
//! the connection stops reading while messages pile up unread (see [`Limits`]), so memory
//! stays bounded in both directions.
//!
//! ## Holding many connections
//!
//! A connection manager keeps each connection's [`ConnectionId`] and a cloneable
//! [`Sender`]: [`Sender::try_send`] never waits (it answers [`TrySendError::Full`] at the
//! high-water mark), [`Sender::closed`] resolves once the connection has ended. A broadcast
//! is encoded once, as a [`PreparedFrame`] whose bytes every connection shares (they go to
//! the socket with a vectored write, not copied):
//!
//! ```
//! use tether_tokio::{Message, PreparedFrame, Sender};
//!
//! /// Queues `text` on every member; returns how many took it and how many were full.
//! fn broadcast(members: &[Sender], text: &str) -> (usize, usize) {
//!     let frame = PreparedFrame::new(&Message::text(text)).expect("a data message");
//!     let (mut queued, mut full) = (0, 0);
//!     for member in members {
//!         match member.try_send_prepared(&frame) {
//!             Ok(()) => queued += 1,
//!             Err(e) if e.is_full() => full += 1, // a slow consumer
//!             Err(_) => {}                        // closing
//!         }
//!     }
//!     (queued, full)
//! }
//! ```
//!
//! [`incoming`] accepts in two steps, for checks that await: see its docs.
//!
//! ## Configuration
//!
//! [`Config`] holds the protocol settings of `tether_core::Config` (limits, timers,
//! compression), reached directly (`config.deflate.enabled = true`), plus the buffer
//! settings of the adapter.
//!
//! ## Staying connected
//!
//! [`reconnecting`] starts a [`ReconnectingClient`]: it redials lost connections with
//! exponential backoff and full jitter as the core's reconnect policy decides
//! ([`ReconnectConfig`]), builds each request afresh (for refreshed credentials), keeps
//! messages sent while offline in a bounded outbox and sends them in order after
//! reconnecting (at most once: a message in flight when a connection dies is lost), can run
//! an application-level [`Heartbeat`], and reports its lifecycle as a stream of
//! [`ClientEvent`]s and through callbacks. [`ReconnectingClient::send`] waits for room in
//! the outbox (and, connected, below the connection's write high-water mark);
//! [`ReconnectingClient::try_send`] never waits. The policy itself ([`ReconnectPolicy`],
//! its [`Decision`]s, [`Disconnect`] and [`GiveUpReason`]) is re-exported here too.
//! `examples/reconnecting_client.rs` shows it.
//!
//! ## TLS
//!
//! With the `tls` feature, `wss://` URLs connect through rustls with the Mozilla root
//! certificates (webpki-roots), or with your own `rustls::ClientConfig` through
//! `connect_with_tls`. A TLS server accepts with `tokio_rustls::TlsAcceptor` and hands
//! the TLS stream to [`accept_with`]; both crates are re-exported.
//!
//! ## hyper and axum
//!
//! With the `hyper` feature, a WebSocket can share a port with an HTTP application: hyper
//! or axum parses the request, `upgrade` checks it and negotiates the subprotocol and
//! permessage-deflate exactly as [`accept_with`] would, and returns the 101 response
//! together with an `Upgrading` future that resolves to the open [`WebSocket`] once hyper
//! has handed over the connection (`negotiate`, `Negotiated::response`,
//! `Negotiated::into_websocket` and `error_response` are the steps, for other uses).
//! `examples/axum_server.rs` is a complete server.
//!
//! The same API, for async-std, smol and other futures-io runtimes, is in
//! `tether-async-std`.
#![cfg_attr(
    feature = "hyper",
    doc = r#"
An axum handler that echoes, next to the application's other routes:

```no_run
use axum::{Router, extract::Request, response::Response, routing::{any, get}};
use tether_tokio::{Accept, Config, Message};

async fn ws(mut req: Request) -> Response {
    let mut config = Config::default();
    config.deflate.enabled = true;
    match tether_tokio::upgrade(&mut req, &config, Accept::new()) {
        Ok((response, upgrading)) => {
            tokio::spawn(async move {
                let Ok(mut ws) = upgrading.await else { return };
                while let Some(Ok(message)) = ws.recv().await {
                    if matches!(message, Message::Text(_) | Message::Binary(_)) {
                        let _ = ws.send(message).await;
                    }
                }
            });
            response
        }
        Err(response) => response,
    }
}

# async fn run() -> std::io::Result<()> {
let app = Router::new()
    .route("/ws", any(ws))
    .route("/health", get(|| async { "ok" }));
let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
axum::serve(listener, app).await
# }
```
"#
)]
#![forbid(unsafe_code)]

use bytes::BytesMut;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

pub use tether_driver::api::*;
#[cfg(feature = "tls")]
pub use tokio_rustls::{self, rustls};
#[cfg(feature = "hyper")]
pub use upgrade::{Negotiated, Upgrading, error_response, negotiate, upgrade};

#[cfg(feature = "hyper")]
mod upgrade;

// `connect`, `connect_with`, `client`, `accept`, `accept_with`, `incoming`,
// `from_upgraded`, `reconnecting` (and, with `tls`, `connect_with_tls`, `incoming_tls`,
// `reconnecting_with_tls`): the same in every adapter, written once in tether-driver.
tether_driver::runtime_functions! {
    krate: "tether_tokio",
    tcp: TcpStream,
    tcp_doc: "tokio::net::TcpStream",
    stream: [AsyncRead + AsyncWrite + Unpin + Send + 'static],
    wrap: Io,
    runs: "Must be called from within a tokio runtime, which then runs the connection's (or \
           the reconnecting client's) task.",
}

/// How tokio reaches the network (see [`tether_driver::net`]): TCP, and TLS with the
/// configurations given (or, for clients, the default one).
#[derive(Default)]
struct Net {
    #[cfg(feature = "tls")]
    client_tls: Option<Arc<rustls::ClientConfig>>,
    #[cfg(feature = "tls")]
    server_tls: Option<Arc<rustls::ServerConfig>>,
}

impl tether_driver::net::Net for Net {
    type Tcp = TcpStream;
    type Plain = Io<TcpStream>;

    fn runtime(&self) -> Arc<dyn tether_driver::Runtime> {
        runtime()
    }

    async fn connect_tcp(&self, host: &str, port: u16) -> io::Result<TcpStream> {
        let stream = TcpStream::connect((host, port)).await?;
        stream.set_nodelay(true)?;
        Ok(stream)
    }

    fn plain(&self, tcp: TcpStream) -> Io<TcpStream> {
        Io(tcp)
    }

    fn peer_addr(&self, tcp: &TcpStream) -> Option<std::net::SocketAddr> {
        tcp.peer_addr().ok()
    }

    fn name(&self) -> &'static str {
        "tether-tokio"
    }

    #[cfg(feature = "tls")]
    fn has_tls(&self) -> bool {
        true
    }

    #[cfg(feature = "tls")]
    fn connect_tls(&self, tcp: TcpStream, host: &str) -> tether_driver::net::TlsFuture {
        let tls = self
            .client_tls
            .clone()
            .unwrap_or_else(tether_driver::net::default_tls);
        let name = rustls::pki_types::ServerName::try_from(host.to_owned());
        Box::pin(async move {
            let name = name.map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
            let stream = tokio_rustls::TlsConnector::from(tls)
                .connect(name, tcp)
                .await?;
            Ok(Box::new(Io(stream)) as Box<dyn tether_driver::Transport>)
        })
    }

    #[cfg(feature = "tls")]
    fn accept_tls(&self, tcp: TcpStream) -> tether_driver::net::TlsFuture {
        let tls = self.server_tls.clone();
        let error = self.no_tls();
        Box::pin(async move {
            let stream = tokio_rustls::TlsAcceptor::from(tls.ok_or(error)?)
                .accept(tcp)
                .await?;
            Ok(Box::new(Io(stream)) as Box<dyn tether_driver::Transport>)
        })
    }
}

/// The tokio runtime the caller runs on. Connections share one handle per runtime (kept
/// per thread), instead of allocating one each.
pub(crate) fn runtime() -> Arc<dyn tether_driver::Runtime> {
    thread_local! {
        static CACHE: std::cell::RefCell<Option<(tokio::runtime::Id, Arc<dyn tether_driver::Runtime>)>> =
            const { std::cell::RefCell::new(None) };
    }
    let handle = tokio::runtime::Handle::current();
    let id = handle.id();
    let make = |handle| -> Arc<dyn tether_driver::Runtime> { Arc::new(Tokio(handle)) };
    CACHE
        .try_with(|cache| {
            let mut cache = cache.borrow_mut();
            match &*cache {
                Some((cached, runtime)) if *cached == id => runtime.clone(),
                _ => {
                    let runtime = make(handle.clone());
                    *cache = Some((id, runtime.clone()));
                    runtime
                }
            }
        })
        .unwrap_or_else(|_| make(handle))
}

#[derive(Debug)]
struct Tokio(tokio::runtime::Handle);

impl tether_driver::Runtime for Tokio {
    fn spawn(&self, future: Pin<Box<dyn Future<Output = ()> + Send>>) {
        self.0.spawn(future);
    }

    fn timer(&self, deadline: Instant) -> Pin<Box<dyn tether_driver::Timer>> {
        Box::pin(Sleep {
            sleep: tokio::time::sleep_until(deadline.into()),
        })
    }

    fn now(&self) -> Instant {
        tokio::time::Instant::now().into_std()
    }
}

pin_project_lite::pin_project! {
    #[derive(Debug)]
    struct Sleep {
        #[pin]
        sleep: tokio::time::Sleep,
    }
}

impl tether_driver::Timer for Sleep {
    fn reset(self: Pin<&mut Self>, deadline: Instant) {
        self.project().sleep.reset(deadline.into());
    }

    fn poll_expired(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.project().sleep.poll(cx)
    }
}

/// Any tokio stream as the driver's transport.
pub(crate) struct Io<S>(pub(crate) S);

/// Polls `f` once outside tokio's cooperative budget.
fn unconstrained<T>(
    cx: &mut Context<'_>,
    mut f: impl FnMut(&mut Context<'_>) -> Poll<T>,
) -> Poll<T> {
    let future = tokio::task::unconstrained(std::future::poll_fn(&mut f));
    std::pin::pin!(future).poll(cx)
}

impl<S> tether_driver::Transport for Io<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut BytesMut) -> Poll<io::Result<usize>> {
        tokio_util::io::poll_read_buf(Pin::new(&mut self.0), cx, buf)
    }

    // Writes are left out of tokio's cooperative budget: the driver writes what the core
    // queued until the transport would block, so it yields by itself; and a fan-out
    // (`tether_driver::Cork`) writes to many connections from one task, where a budget cut
    // would only defer the rest to each connection's own task, at a wake-up apiece. Reads
    // keep the budget.
    fn poll_write(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let stream = &mut self.0;
        unconstrained(cx, |cx| Pin::new(&mut *stream).poll_write(cx, buf))
    }

    fn poll_write_vectored(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let stream = &mut self.0;
        unconstrained(cx, |cx| {
            Pin::new(&mut *stream).poll_write_vectored(cx, bufs)
        })
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}
