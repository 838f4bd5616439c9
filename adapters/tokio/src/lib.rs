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

/// Connects to a `ws://` (or, with the `tls` feature, `wss://`) URL with the default
/// configuration and runs the opening handshake. Returns the open connection and the
/// server's response.
///
/// A server that refuses the upgrade gives [`Error::Rejected`], which carries the status,
/// headers and body ([`Error::response`]).
pub async fn connect(url: &str) -> Result<(WebSocket, Response), Error> {
    connect_with(ClientRequest::new(url)?, Config::default()).await
}

/// Connects with a prepared request (headers, subprotocols, `Origin`) and a configuration.
///
/// DNS, TCP (with `TCP_NODELAY`), TLS and the opening handshake together are bounded by
/// the handshake timeout (`config.timeouts.handshake`), which fails with
/// [`Error::Timeout`].
pub async fn connect_with(
    request: ClientRequest,
    config: Config,
) -> Result<(WebSocket, Response), Error> {
    tether_driver::net::connect(&Net::default(), &request, &config).await
}

/// Connects like [`connect_with`], using `tls` for `wss://` URLs instead of the default
/// rustls configuration (for private roots, client certificates, ...).
#[cfg(feature = "tls")]
pub async fn connect_with_tls(
    request: ClientRequest,
    config: Config,
    tls: Arc<rustls::ClientConfig>,
) -> Result<(WebSocket, Response), Error> {
    let net = Net {
        client_tls: Some(tls),
        ..Net::default()
    };
    tether_driver::net::connect(&net, &request, &config).await
}

/// Runs the client handshake over a stream that is already connected (a proxy tunnel, a
/// Unix socket, a TLS stream set up by hand). The handshake timeout counts from the call.
pub async fn client<S>(
    stream: S,
    request: ClientRequest,
    config: Config,
) -> Result<(WebSocket, Response), Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let rt = runtime();
    let now = rt.now();
    tether_driver::client(rt, Io(stream), &request, &config, now).await
}

/// Accepts a WebSocket on any stream (TCP, TLS, an upgraded HTTP connection) with the
/// default configuration, accepting every valid upgrade request; see [`accept_with`].
pub fn accept<S>(stream: S) -> Accepting<AcceptAll>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    accept_with(stream, Config::default(), accept_all)
}

/// The callback of [`accept`]: every valid upgrade request is accepted.
pub type AcceptAll = fn(&Request) -> Result<Accept, Reject>;

fn accept_all(_: &Request) -> Result<Accept, Reject> {
    Ok(Accept::new())
}

/// Accepts a WebSocket on any stream: the returned future waits for the upgrade request
/// (RFC 6455 §4.2), shows it to `callback`, which accepts it ([`Accept`]: subprotocol,
/// extra headers) or rejects it ([`Reject`]: status, headers, body), sends the answer and
/// resolves to the open connection.
///
/// It resolves to [`Error::Rejected`] when the callback rejected the request (the
/// response is still written in the background). The connection starts at this call (the
/// handshake timeout counts from it); the task awaiting the future drives the handshake.
/// Must be called from within a tokio runtime, which the connection then runs on.
pub fn accept_with<S, F>(stream: S, config: Config, callback: F) -> Accepting<F>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    F: FnOnce(&Request) -> Result<Accept, Reject>,
{
    tether_driver::accept(runtime(), Io(stream), &config, callback)
}

/// Accepts a connection in two steps, for checks that await (a token lookup, a database):
/// the returned future resolves to an [`Incoming`] once the request has arrived (path,
/// query, headers, offered subprotocols; [`IncomingFuture::peer_addr`] records the peer's
/// address), and the application then accepts it ([`Incoming::accept`]) or rejects it with
/// a status, headers and body ([`Incoming::reject`]). The accepted connection keeps its
/// request ([`WebSocket::request`]).
///
/// The handshake timeout counts from this call and bounds the application's checks too.
/// With [`Config::plain_http`](tether_driver::Config) on, plain HTTP requests arrive as
/// well ([`Incoming::is_upgrade`] is false), to be answered with [`Incoming::reject`]:
/// `/health` or a page can share the WebSocket's port.
///
/// ```no_run
/// use tether_tokio::{Accept, Config, Reject, incoming};
///
/// # async fn run(stream: tokio::net::TcpStream, addr: std::net::SocketAddr) -> Result<(), tether_tokio::Error> {
/// # async fn user_for(_token: &str) -> Option<String> { None }
/// let request = incoming(stream, Config::default()).peer_addr(addr).await?;
/// let token = request.request().query_param("token").map(|t| t.into_owned());
/// let user = match token {
///     Some(token) => user_for(&token).await,
///     None => None,
/// };
/// let Some(user) = user else {
///     return request.reject(Reject::new(401).body("a valid ?token= is needed"));
/// };
/// let mut ws = request.accept(Accept::new())?;
/// ws.send_text(format!("hello {user}")).await?;
/// # Ok(())
/// # }
/// ```
pub fn incoming<S>(stream: S, config: Config) -> IncomingFuture
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let rt = runtime();
    let now = rt.now();
    tether_driver::incoming(rt, Io(stream), &config, now)
}

/// [`incoming`] over TLS: the TLS handshake with `tls`, then the WebSocket request, both
/// bounded by the handshake timeout, which counts from this call. The peer's address is
/// recorded ([`Incoming::peer_addr`]).
#[cfg(feature = "tls")]
pub async fn incoming_tls(
    stream: TcpStream,
    tls: Arc<rustls::ServerConfig>,
    config: Config,
) -> Result<Incoming, Error> {
    let net = Net {
        server_tls: Some(tls),
        ..Net::default()
    };
    tether_driver::net::incoming_tls(&net, stream, &config).await
}

/// Wraps a stream whose opening handshake was done elsewhere (for example by an HTTP
/// server that upgraded the request): the connection is open from the start. `deflate` is
/// what that handshake negotiated, if anything.
///
/// Must be called from within a tokio runtime, which runs the connection's task.
pub fn from_upgraded<S>(
    stream: S,
    role: Role,
    deflate: Option<DeflateParams>,
    config: Config,
) -> Result<WebSocket, Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    tether_driver::open(runtime(), Io(stream), role, deflate, None, &config)
}

/// Starts building a [`ReconnectingClient`]: a client that redials lost connections as the
/// core's reconnect policy decides, with an outbox, an optional heartbeat, events and
/// callbacks (see its docs). `make_request` builds the request for every dial (its
/// argument is the attempt number), so credentials can change between dials; dials go
/// through [`connect_with`]. Must be called from within a tokio runtime, which runs the
/// client's task.
///
/// ```no_run
/// use std::time::Duration;
/// use tether_tokio::{
///     ClientEvent, ClientRequest, Disconnect, GiveUpReason, Heartbeat, OutboxError,
///     OutboxLimits, ReconnectConfig, reconnecting,
/// };
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let mut client = reconnecting(|_attempt| ClientRequest::new("ws://127.0.0.1:9001/"))
///     .policy(ReconnectConfig { max_delay: Duration::from_secs(10), ..Default::default() })
///     .outbox(OutboxLimits { max_messages: 100, max_bytes: 64 * 1024 })
///     .heartbeat(Heartbeat::new("ping", Duration::from_secs(15)).reply("pong"))
///     .on_message(|message| println!("recv: {message:?}"))
///     .start()?;
/// // Waits while the outbox is full (or, connected, while the server reads too slowly).
/// client.send_text("queued until connected").await?;
/// // Never waits: a full outbox hands the message back.
/// if let Err(OutboxError::Full(_)) = client.try_send_text("dropped if full") {
///     println!("outbox full");
/// }
/// while let Some(event) = client.next_event().await {
///     match event {
///         ClientEvent::Connected(_) => println!("connected"),
///         ClientEvent::GaveUp(GiveUpReason::Terminal(Disconnect::ClosedByApplication)) => {}
///         ClientEvent::GaveUp(reason) => eprintln!("gave up: {reason:?}"),
///         _ => {}
///     }
/// }
/// # Ok(())
/// # }
/// ```
pub fn reconnecting<F, E>(make_request: F) -> ReconnectBuilder
where
    F: FnMut(u32) -> Result<ClientRequest, E> + Send + 'static,
    E: Into<Error>,
{
    ReconnectBuilder::new(runtime(), dial, make_request)
}

/// Starts building a [`ReconnectingClient`] like [`reconnecting`], using `tls` for
/// `wss://` URLs instead of the default rustls configuration.
#[cfg(feature = "tls")]
pub fn reconnecting_with_tls<F, E>(
    make_request: F,
    tls: Arc<rustls::ClientConfig>,
) -> ReconnectBuilder
where
    F: FnMut(u32) -> Result<ClientRequest, E> + Send + 'static,
    E: Into<Error>,
{
    let dial = move |request, config| -> tether_driver::DialFuture {
        Box::pin(connect_with_tls(request, config, tls.clone()))
    };
    ReconnectBuilder::new(runtime(), dial, make_request)
}

/// The reconnecting client's dialer.
fn dial(request: ClientRequest, config: Config) -> tether_driver::DialFuture {
    Box::pin(connect_with(request, config))
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
        let tls = self.client_tls.clone().unwrap_or_else(default_tls);
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

/// rustls with the ring provider and the Mozilla roots, built once.
#[cfg(feature = "tls")]
fn default_tls() -> Arc<rustls::ClientConfig> {
    static CONFIG: std::sync::OnceLock<Arc<rustls::ClientConfig>> = std::sync::OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let mut roots = rustls::RootCertStore::empty();
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .expect("the ring provider supports the default TLS versions")
                .with_root_certificates(roots)
                .with_no_client_auth();
            Arc::new(config)
        })
        .clone()
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

impl<S> tether_driver::Transport for Io<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut BytesMut) -> Poll<io::Result<usize>> {
        tokio_util::io::poll_read_buf(Pin::new(&mut self.0), cx, buf)
    }

    fn poll_write(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}
