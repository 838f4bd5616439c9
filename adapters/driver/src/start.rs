//! Starting a connection and running its opening handshake, driven by the task that
//! awaits it.

use crate::config::Config;
use crate::error::Error;
use crate::runtime::{Runtime, Transport};
use crate::shared::{Handshake, Inner};
use crate::socket::WebSocket;
use std::fmt;
use std::future::{Future, poll_fn};
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;
use tether_core::{
    Accept, ClientRequest, Connection, DeflateParams, Reject, Request, Response, Role,
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
        if sh.app.ended {
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
    ws.inner().set_info(&ws.inner().lock().conn);
    Ok((ws, *response))
}

/// Starts the server side of the opening handshake (RFC 6455 §4.2) over `io`. The returned
/// future waits for the upgrade request, asks `callback` whether to accept it, sends the
/// answer, and resolves to the open connection, or to [`Error::Rejected`] once the
/// rejection is on its way.
///
/// The task that awaits it drives the handshake; the handshake timeout counts from this
/// call. Dropping the future abandons the connection.
pub fn accept<T, F>(runtime: Arc<dyn Runtime>, io: T, config: &Config, callback: F) -> Accepting<F>
where
    T: Transport,
    F: FnOnce(&Request) -> Result<Accept, Reject>,
{
    let now = runtime.now();
    let conn = Connection::server(config.connection_config(), now);
    Accepting {
        ws: Some(start(runtime, io, conn, config, false)),
        callback: Some(callback),
        designated: false,
    }
}

/// The future of [`accept`] (and of the adapters' `accept` and `accept_with`): the open
/// connection once the opening handshake is done.
#[must_use = "futures do nothing unless polled"]
pub struct Accepting<F> {
    ws: Option<WebSocket>,
    callback: Option<F>,
    /// The awaiting task is the connection's designated driver.
    designated: bool,
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
        let Some(ws) = this.ws.as_ref() else {
            panic!("`Accepting` polled after completion");
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
        let callback = this.callback.take().expect("called once");
        let answer = callback(&request);
        let mut sh = inner.lock();
        let now = inner.runtime().now();
        let result = match answer {
            Ok(accept) => sh.conn.accept(now, accept).map_err(Error::Send),
            Err(reject) => {
                let status = reject.status();
                sh.conn
                    .reject(now, reject)
                    .map_err(Error::Send)
                    .and(Err(Error::Rejected { status }))
            }
        };
        if result.is_ok() {
            inner.set_info(&sh.conn);
        }
        // The answer goes out now, from this task (the rest, if the socket is full, in the
        // background); on error the connection is over (a rejection is still written).
        inner.drive_at(&mut sh, Some(now));
        inner.unlock_and_kick(sh);
        Poll::Ready(result.map(|()| ws))
    }
}

impl<F> Drop for Accepting<F> {
    fn drop(&mut self) {
        if self.designated
            && let Some(ws) = &self.ws
        {
            ws.inner().resign();
        }
    }
}

impl<F> fmt::Debug for Accepting<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Accepting")
            .field("done", &self.ws.is_none())
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
/// server that upgraded the request), open from the start. `deflate` is what that
/// handshake negotiated.
pub fn open<T: Transport>(
    runtime: Arc<dyn Runtime>,
    io: T,
    role: Role,
    deflate: Option<DeflateParams>,
    config: &Config,
) -> Result<WebSocket, Error> {
    let now = runtime.now();
    let conn = Connection::open(config.connection_config(), role, deflate, seed()?, now);
    let ws = start(runtime, io, conn, config, true);
    ws.inner().set_info(&ws.inner().lock().conn);
    // Nobody drives yet: the background task arms the timers (keep-alive) and reads.
    ws.inner().wake_background();
    Ok(ws)
}
