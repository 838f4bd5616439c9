//! Connecting and accepting over the network, written once for every runtime: an adapter
//! implements [`Net`] (a TCP connection, TLS both ways when it has it) and the functions
//! here do the rest, the same way for every adapter: the handshake timeout as one
//! deadline over DNS, TCP, TLS and the opening handshake, then the WebSocket.

use crate::config::Config;
use crate::error::Error;
use crate::runtime::{Runtime, Transport, with_deadline};
use crate::socket::WebSocket;
use crate::start::{self, Incoming};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;
use tether_core::{ClientRequest, Response, Timeout};

/// A boxed future of a TLS stream.
pub type TlsFuture = Pin<Box<dyn Future<Output = io::Result<Box<dyn Transport>>> + Send>>;

/// What an adapter provides to reach the network: the runtime, a TCP connection, and TLS
/// over it (client and server side) when the adapter is built with TLS.
pub trait Net: Send + Sync {
    /// A connected TCP stream.
    type Tcp: Send + 'static;
    /// A TCP stream as the driver's transport.
    type Plain: Transport;

    /// The runtime the connection runs on.
    fn runtime(&self) -> Arc<dyn Runtime>;

    /// Resolves `host` and connects to `port` (with `TCP_NODELAY`).
    fn connect_tcp(
        &self,
        host: &str,
        port: u16,
    ) -> impl Future<Output = io::Result<Self::Tcp>> + Send;

    /// The TCP stream as the driver's transport.
    fn plain(&self, tcp: Self::Tcp) -> Self::Plain;

    /// The peer's address of a TCP stream, if it can be had.
    fn peer_addr(&self, tcp: &Self::Tcp) -> Option<SocketAddr>;

    /// Whether the adapter is built with TLS (without, `wss://` URLs fail at once, saying
    /// which feature to turn on).
    fn has_tls(&self) -> bool {
        false
    }

    /// The adapter's crate name, for error messages.
    fn name(&self) -> &'static str;

    /// Runs the client side of TLS over `tcp` for the server name `host`.
    fn connect_tls(&self, tcp: Self::Tcp, host: &str) -> TlsFuture {
        let _ = (tcp, host);
        let error = self.no_tls();
        Box::pin(async move { Err(error) })
    }

    /// Runs the server side of TLS over `tcp`.
    fn accept_tls(&self, tcp: Self::Tcp) -> TlsFuture {
        let _ = tcp;
        let error = self.no_tls();
        Box::pin(async move { Err(error) })
    }

    /// The error of a TLS operation without TLS.
    fn no_tls(&self) -> io::Error {
        io::Error::new(
            io::ErrorKind::Unsupported,
            format!("TLS needs the `tls` feature of {}", self.name()),
        )
    }
}

/// A boxed transport is a transport (TLS streams, whose types the adapters box).
impl Transport for Box<dyn Transport> {
    fn poll_read(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut bytes::BytesMut,
    ) -> Poll<io::Result<usize>> {
        (**self).poll_read(cx, buf)
    }

    fn poll_write(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        (**self).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        (**self).poll_write_vectored(cx, bufs)
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        (**self).poll_flush(cx)
    }

    fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        (**self).poll_shutdown(cx)
    }
}

/// The handshake deadline of a connection started at `started` (`None`: no limit, or one
/// too far to be an `Instant`).
fn deadline(config: &Config, started: Instant) -> Option<Instant> {
    config
        .timeouts
        .handshake
        .and_then(|d| started.checked_add(d))
}

/// Connects to the request's URL: DNS and TCP, TLS for `wss://`, then the opening
/// handshake, all bounded by the handshake timeout ([`Error::Timeout`]).
pub async fn connect<N: Net>(
    net: &N,
    request: &ClientRequest,
    config: &Config,
) -> Result<(WebSocket, Response), Error> {
    if request.is_tls() && !net.has_tls() {
        return Err(Error::Io(io::Error::new(
            io::ErrorKind::Unsupported,
            format!("wss:// URLs need the `tls` feature of {}", net.name()),
        )));
    }
    let rt = net.runtime();
    let started = rt.now();
    let deadline = deadline(config, started);
    // (Without the brackets of an IPv6 literal.)
    let host = request.host();
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let tcp = with_deadline(&*rt, deadline, net.connect_tcp(host, request.port()))
        .await
        .ok_or(Error::Timeout(Timeout::Handshake))??;
    if request.is_tls() {
        let stream = with_deadline(&*rt, deadline, net.connect_tls(tcp, host))
            .await
            .ok_or(Error::Timeout(Timeout::Handshake))??;
        return start::client(rt, stream, request, config, started).await;
    }
    start::client(rt, net.plain(tcp), request, config, started).await
}

/// Accepts a connection in two steps over TLS: the TLS handshake, then the request (see
/// [`start::incoming`]), both bounded by the handshake timeout, which counts from the call.
/// The peer's address is recorded.
pub async fn incoming_tls<N: Net>(
    net: &N,
    tcp: N::Tcp,
    config: &Config,
) -> Result<Incoming, Error> {
    let rt = net.runtime();
    let started = rt.now();
    let peer = net.peer_addr(&tcp);
    let stream = with_deadline(&*rt, deadline(config, started), net.accept_tls(tcp))
        .await
        .ok_or(Error::Timeout(Timeout::Handshake))??;
    let incoming = start::incoming(rt, stream, config, started);
    match peer {
        Some(addr) => incoming.peer_addr(addr).await,
        None => incoming.await,
    }
}

/// The client TLS configuration of `wss://` URLs when the application gives none: rustls
/// with the ring provider and the Mozilla roots (webpki-roots), built once and shared.
#[cfg(feature = "tls")]
pub fn default_tls() -> Arc<rustls::ClientConfig> {
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
