//! Starting a connection: spawn the driver, run the opening handshake.

use crate::config::Config;
use crate::error::Error;
use crate::runtime::{Runtime, Transport};
use crate::shared::{Handshake, Inner, set_waker};
use crate::socket::WebSocket;
use std::future::poll_fn;
use std::io;
use std::sync::Arc;
use std::task::Poll;
use std::time::Instant;
use tether_core::{
    Accept, ClientRequest, Connection, DeflateParams, Reject, Request, Response, Role,
};

/// Makes the connection's shared state for `conn` on `runtime`, starts its background task
/// (which runs the opening handshake) and returns the application's handle. `open`: the
/// connection has no opening handshake of its own.
fn start<T: Transport>(
    runtime: Arc<dyn Runtime>,
    io: T,
    conn: Connection,
    config: &Config,
    open: bool,
) -> WebSocket {
    let inner = Arc::new(Inner::new(runtime, conn, Box::new(io), config, open));
    inner.wake_background();
    WebSocket::new(inner)
}

/// 32 bytes from the operating system's secure generator, to seed the masking keys
/// (RFC 6455 §10.3).
fn seed() -> Result<[u8; 32], Error> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| Error::Io(io::Error::other(e.to_string())))?;
    Ok(seed)
}

/// Runs the client side of the opening handshake (RFC 6455 §4.1) over a connected `io`,
/// then hands the connection to a background driver.
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
    let response = poll_fn(|cx| {
        let mut sh = ws.inner().lock();
        if let Some(Handshake::Response(response)) = sh.app.handshake.take() {
            ws.inner().set_info(&sh.conn);
            return Poll::Ready(Ok(response));
        }
        if let Some(error) = sh.app.error.take() {
            return Poll::Ready(Err(error));
        }
        if sh.app.ended {
            return Poll::Ready(Err(Error::Abnormal));
        }
        set_waker(&mut sh.app.recv_waker, cx.waker());
        Poll::Pending
    })
    .await?;
    Ok((ws, *response))
}

/// Runs the server side of the opening handshake (RFC 6455 §4.2) over `io`: waits for the
/// upgrade request, asks `callback` whether to accept it, and sends the answer. Returns the
/// open connection, or [`Error::Rejected`] after sending the rejection.
///
/// The handshake timeout counts from the call. Dropping the future abandons the
/// connection.
pub async fn accept<T, F>(
    runtime: Arc<dyn Runtime>,
    io: T,
    config: &Config,
    callback: F,
) -> Result<WebSocket, Error>
where
    T: Transport,
    F: FnOnce(&Request) -> Result<Accept, Reject>,
{
    let now = runtime.now();
    let conn = Connection::server(config.connection_config(), now);
    let ws = start(runtime, io, conn, config, false);
    let request = poll_fn(|cx| {
        let mut sh = ws.inner().lock();
        if let Some(Handshake::Request(request)) = sh.app.handshake.take() {
            return Poll::Ready(Ok(request));
        }
        if let Some(error) = sh.app.error.take() {
            return Poll::Ready(Err(error));
        }
        if sh.app.ended {
            return Poll::Ready(Err(Error::Abnormal));
        }
        set_waker(&mut sh.app.recv_waker, cx.waker());
        Poll::Pending
    })
    .await?;
    let answer = callback(&request);
    let inner = ws.inner();
    let mut sh = inner.lock();
    let now = inner.runtime.now();
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
    drop(sh);
    // The answer is written by the background task; on error the connection is over (a
    // rejection is still written).
    inner.kick(true);
    result?;
    Ok(ws)
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
    Ok(ws)
}
