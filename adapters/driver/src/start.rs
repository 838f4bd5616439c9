//! Starting a connection and running its opening handshake, driven by the task that
//! awaits it.

use crate::config::Config;
use crate::error::Error;
use crate::runtime::{Runtime, Transport};
use crate::shared::Inner;
use crate::socket::WebSocket;
use crate::state::Handshake;
use std::fmt;
use std::future::{Future, poll_fn};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;
use tether_core::{
    Accept, ClientRequest, Connection, DeflateParams, HandshakeError, Reject, Request, Response,
    Role,
};

/// Makes the connection's shared state for `conn` on `runtime` and returns the
/// application's handle. `open`: the connection has no opening handshake of its own.
fn start<T: Transport>(
    runtime: Arc<dyn Runtime>,
    io: T,
    conn: Connection,
    config: &Config,
    open: bool,
) -> WebSocket {
    WebSocket::new(Arc::new(Inner::new(
        runtime,
        conn,
        Box::new(io),
        config,
        open,
    )))
}

/// Waits for the opening handshake's event, driving the connection from the calling task
/// meanwhile (it is the designated driver while it waits, see the crate docs).
fn poll_handshake(
    inner: &Arc<Inner>,
    cx: &mut Context<'_>,
    designated: &mut bool,
) -> Poll<Result<Handshake, Error>> {
    let mut sh = inner.lock();
    let mut drove = false;
    let result = loop {
        if let Some(handshake) = sh.app.take_handshake() {
            break Ok(handshake);
        }
        if let Some(error) = sh.app.take_error() {
            break Err(error);
        }
        if sh.app.is_ended() {
            break Err(Error::Abnormal);
        }
        if drove {
            sh.app.reader_waits(cx.waker());
            inner.unlock_and_kick(sh);
            return Poll::Pending;
        }
        // Designated (again, if the waker changed) before driving: a wake-up after the
        // check comes to this task.
        inner.wake.designate(cx.waker(), false);
        *designated = true;
        if inner.needs_drive(&sh) {
            inner.drive(&mut sh);
        }
        drove = true;
    };
    let kick = std::mem::take(&mut sh.app.kick);
    drop(sh);
    if std::mem::take(designated) {
        inner.resign();
    }
    inner.kick(kick);
    Poll::Ready(result)
}

/// 32 bytes from the operating system's secure generator, to seed the masking keys
/// (RFC 6455 §10.3).
fn seed() -> Result<[u8; 32], Error> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| Error::Io(io::Error::other(e.to_string())))?;
    Ok(seed)
}

/// Runs the client side of the opening handshake (RFC 6455 §4.1) over a connected `io`,
/// driven by the task that awaits it.
///
/// `started` is when connecting began: the handshake timeout counts from then, so that it
/// bounds DNS, TCP and TLS set-up too. Dropping the future abandons the connection.
pub async fn client<T: Transport>(
    runtime: Arc<dyn Runtime>,
    io: T,
    request: &ClientRequest,
    config: &Config,
    started: Instant,
) -> Result<(WebSocket, Response), Error> {
    let conn = Connection::client(config.connection_config(), request, seed()?, started)?;
    let ws = start(runtime, io, conn, config, false);
    let mut designated = Designated {
        inner: ws.inner(),
        on: false,
    };
    let response = poll_fn(|cx| poll_handshake(designated.inner, cx, &mut designated.on)).await?;
    drop(designated);
    let Handshake::Response(response) = response else {
        return Err(Error::Abnormal);
    };
    ws.inner().set_info(&ws.inner().lock().conn, None, None);
    Ok((ws, *response))
}

/// Starts the server side of the opening handshake (RFC 6455 §4.2) over `io`. The returned
/// future waits for the upgrade request, asks `callback` whether to accept it, sends the
/// answer, and resolves to the open connection, or to [`Error::Rejected`] once the
/// rejection is on its way.
///
/// The task that awaits it drives the handshake; the handshake timeout counts from this
/// call. Dropping the future abandons the connection. For checks that must await (a token
/// lookup, a database), use [`incoming`] instead.
pub fn accept<T, F>(runtime: Arc<dyn Runtime>, io: T, config: &Config, callback: F) -> Accepting<F>
where
    T: Transport,
    F: FnOnce(&Request) -> Result<Accept, Reject>,
{
    let now = runtime.now();
    Accepting {
        incoming: incoming(runtime, io, config, now),
        callback: Some(callback),
    }
}

/// The future of [`accept`] (and of the adapters' `accept` and `accept_with`): the open
/// connection once the opening handshake is done.
#[must_use = "futures do nothing unless polled"]
pub struct Accepting<F> {
    incoming: IncomingFuture,
    callback: Option<F>,
}

// The callback is only ever moved, never pinned.
impl<F> Unpin for Accepting<F> {}

impl<F> Future for Accepting<F>
where
    F: FnOnce(&Request) -> Result<Accept, Reject>,
{
    type Output = Result<WebSocket, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let incoming = match Pin::new(&mut this.incoming).poll(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(incoming) => incoming?,
        };
        let callback = this.callback.take().expect("called once");
        Poll::Ready(match callback(incoming.request()) {
            // (The callback has seen the request: the connection need not keep it.)
            Ok(accept) => incoming.open(accept, false),
            Err(reject) => {
                let status = reject.status();
                incoming.reject(reject).and(Err(Error::Rejected {
                    status,
                    response: None,
                }))
            }
        })
    }
}

impl<F> fmt::Debug for Accepting<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Accepting")
            .field("incoming", &self.incoming)
            .finish_non_exhaustive()
    }
}

/// Starts the server side of the opening handshake over `io` in two steps: the returned
/// future resolves to an [`Incoming`] once the request has arrived, and the application,
/// after whatever checks it awaits, accepts it (choosing a subprotocol and extra response
/// headers) or rejects it (status, headers, body).
///
/// `started` is when the connection began (say, before a TLS handshake): the handshake
/// timeout counts from then and bounds everything up to the answer, the application's
/// checks included. The task that awaits the future drives the handshake; while the
/// application decides, deadlines are kept in the background. Dropping the future (or the
/// `Incoming`) abandons the connection.
pub fn incoming<T: Transport>(
    runtime: Arc<dyn Runtime>,
    io: T,
    config: &Config,
    started: Instant,
) -> IncomingFuture {
    let conn = Connection::server(config.connection_config(), started);
    IncomingFuture {
        ws: Some(start(runtime, io, conn, config, false)),
        designated: false,
        peer_addr: None,
    }
}

/// The future of [`incoming`] (and of the adapters' `incoming`): the request, once it has
/// arrived, to accept or reject.
#[must_use = "futures do nothing unless polled"]
pub struct IncomingFuture {
    ws: Option<WebSocket>,
    /// The awaiting task is the connection's designated driver.
    designated: bool,
    peer_addr: Option<SocketAddr>,
}

impl IncomingFuture {
    /// Records the peer's address, for [`Incoming::peer_addr`] (an adapter that accepted
    /// the connection from a listener knows it).
    pub fn peer_addr(mut self, addr: SocketAddr) -> Self {
        self.peer_addr = Some(addr);
        self
    }
}

impl Future for IncomingFuture {
    type Output = Result<Incoming, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let Some(ws) = this.ws.as_ref() else {
            panic!("`IncomingFuture` polled after completion");
        };
        let inner = ws.inner().clone();
        let handshake = match poll_handshake(&inner, cx, &mut this.designated) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(result) => result,
        };
        let ws = this.ws.take().expect("checked above");
        let Handshake::Request(request) = handshake? else {
            return Poll::Ready(Err(Error::Abnormal));
        };
        Poll::Ready(Ok(Incoming {
            ws,
            request,
            peer_addr: this.peer_addr,
        }))
    }
}

impl Drop for IncomingFuture {
    fn drop(&mut self) {
        if self.designated
            && let Some(ws) = &self.ws
        {
            ws.inner().resign();
        }
    }
}

impl fmt::Debug for IncomingFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IncomingFuture")
            .field("done", &self.ws.is_none())
            .field("peer_addr", &self.peer_addr)
            .finish_non_exhaustive()
    }
}

/// A request that has arrived, waiting for the application's answer: accept it as a
/// WebSocket ([`accept`](Self::accept)) or answer it with a status, headers and a body
/// ([`reject`](Self::reject)). With [`tether_core::Config::plain_http`] on, plain HTTP
/// requests (not upgrades: [`Request::is_upgrade`] is false) arrive here too, so that a
/// health check or a page can share the WebSocket's port; they can only be answered with
/// [`reject`](Self::reject) (any status, 200 included).
///
/// The handshake timeout keeps running while the application decides: once it has run
/// out, `accept` and `reject` fail with [`Error::Timeout`]. Dropping it abandons the
/// connection.
pub struct Incoming {
    ws: WebSocket,
    request: Box<Request>,
    peer_addr: Option<SocketAddr>,
}

impl Incoming {
    /// The request: method, path, query (see [`Request::query_param`]), headers, offered
    /// subprotocols and extensions.
    pub fn request(&self) -> &Request {
        &self.request
    }

    /// The peer's address, when the adapter knew it.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.peer_addr
    }

    /// Whether the request asks for a WebSocket (it is not a plain HTTP request).
    pub fn is_upgrade(&self) -> bool {
        self.request.is_upgrade()
    }

    /// Accepts the request: the 101 response (with the subprotocol and headers of
    /// `accept`, and permessage-deflate if the configuration and the offer allow it) is
    /// sent, and the connection is open. It keeps the request ([`WebSocket::request`]).
    ///
    /// A plain HTTP request cannot be accepted: it is answered with 426 (Upgrade Required)
    /// and the result is [`Error::Handshake`] with [`HandshakeError::NotAnUpgrade`].
    pub fn accept(self, accept: Accept) -> Result<WebSocket, Error> {
        self.open(accept, true)
    }

    /// [`Incoming::accept`]; `keep`: the connection keeps the request.
    fn open(self, accept: Accept, keep: bool) -> Result<WebSocket, Error> {
        let Incoming {
            ws,
            request,
            peer_addr,
        } = self;
        let inner = ws.inner().clone();
        let mut sh = inner.lock();
        if let Some(error) = sh.app.take_error() {
            return Err(error);
        }
        let now = inner.runtime().now();
        let result = if request.is_upgrade() {
            sh.conn.accept(now, accept).map_err(Error::Send)
        } else {
            let reject = Reject::new(426).header("Upgrade", "websocket");
            sh.conn
                .reject(now, reject)
                .map_err(Error::Send)
                .and(Err(Error::Handshake(HandshakeError::NotAnUpgrade)))
        };
        if result.is_ok() {
            inner.set_info(&sh.conn, keep.then_some(request), peer_addr);
        }
        // The answer goes out now, from this task (the rest, if the socket is full, in the
        // background); on error the connection is over (a rejection is still written).
        inner.drive_at(&mut sh, Some(now));
        inner.unlock_and_kick(sh);
        result.map(|()| ws)
    }

    /// Answers the request with `reject`'s status, headers and body, and ends the
    /// connection once it is written (in the background). For a WebSocket request this
    /// refuses it; for a plain HTTP request it is the response (any status from 200).
    pub fn reject(self, reject: Reject) -> Result<(), Error> {
        let inner = self.ws.inner().clone();
        let mut sh = inner.lock();
        if let Some(error) = sh.app.take_error() {
            return Err(error);
        }
        let now = inner.runtime().now();
        let result = sh.conn.reject(now, reject).map_err(Error::Send);
        inner.drive_at(&mut sh, Some(now));
        inner.unlock_and_kick(sh);
        result
    }
}

impl fmt::Debug for Incoming {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Incoming")
            .field("method", &self.request.method())
            .field("uri", &self.request.uri())
            .field("peer_addr", &self.peer_addr)
            .finish_non_exhaustive()
    }
}

/// While a handshake future waits, its task is the designated driver; dropping it hands
/// the job back.
struct Designated<'a> {
    inner: &'a Arc<Inner>,
    on: bool,
}

impl Drop for Designated<'_> {
    fn drop(&mut self) {
        if std::mem::take(&mut self.on) {
            self.inner.resign();
        }
    }
}

/// Wraps a transport whose opening handshake was done elsewhere (for example by an HTTP
/// server that upgraded the request), open from the start. `deflate` and `subprotocol`
/// are what that handshake negotiated.
pub fn open<T: Transport>(
    runtime: Arc<dyn Runtime>,
    io: T,
    role: Role,
    deflate: Option<DeflateParams>,
    subprotocol: Option<&str>,
    config: &Config,
) -> Result<WebSocket, Error> {
    let now = runtime.now();
    let conn = Connection::open(config.connection_config(), role, deflate, seed()?, now)
        .with_subprotocol(subprotocol);
    let ws = start(runtime, io, conn, config, true);
    ws.inner().set_info(&ws.inner().lock().conn, None, None);
    // Nobody drives yet: the background task arms the timers (keep-alive) and reads.
    ws.inner().wake_background();
    Ok(ws)
}
