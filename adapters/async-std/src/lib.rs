//! # tether-async-std
//!
//! WebSocket clients and servers (RFC 6455, with permessage-deflate, RFC 7692) for
//! async-std, smol and every other runtime built on the `futures-io` traits, on top of the
//! sans-IO protocol core `tether-core`.
//!
//! The crate does not depend on async-std itself (which is discontinued upstream): it uses
//! the crates async-std and smol are made of. Sockets are [`async_net`] types, timers are
//! [`async_io`] timers, and [`accept_with`] and [`client`] take any stream implementing
//! `futures_io::AsyncRead + AsyncWrite`, which async-std's and smol's `TcpStream`, their
//! TLS streams and upgraded HTTP connections all do. Each connection's background task runs
//! on a small executor of this crate (one thread per CPU, started on first use), so it
//! works the same whichever executor runs the application; [`set_executor`] runs them on
//! the application's own executor instead (one thread for everything, if it likes).
//!
//! A client:
//!
//! ```no_run
//! use tether_async_std::{Message, connect};
//!
//! # async fn run() -> Result<(), tether_async_std::Error> {
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
//! A server that accepts connections to `/chat` and echoes what it receives (here on a
//! single-threaded executor, as smol's `LocalExecutor`):
//!
//! ```no_run
//! use tether_async_std::{Accept, Config, Message, Reject, accept_with};
//!
//! # fn main() -> std::io::Result<()> {
//! let ex = async_executor::LocalExecutor::new();
//! async_io::block_on(ex.run(async {
//!     let listener = async_net::TcpListener::bind("127.0.0.1:9001").await?;
//!     loop {
//!         let (stream, _) = listener.accept().await?;
//!         ex.spawn(async move {
//!             let check = |req: &tether_async_std::Request| match req.path() {
//!                 "/chat" => Ok(Accept::new()),
//!                 _ => Err(Reject::new(404)),
//!             };
//!             let Ok(mut ws) = accept_with(stream, Config::default(), check).await else { return };
//!             while let Some(Ok(message)) = ws.recv().await {
//!                 if matches!(message, Message::Text(_) | Message::Binary(_)) {
//!                     let _ = ws.send(message).await;
//!                 }
//!             }
//!         })
//!         .detach();
//!     }
//! }))
//! # }
//! ```
//!
//! ## How it works
//!
//! A task waiting in [`WebSocket::recv`] reads and writes the socket itself, so a
//! request/reply loop costs one task wake-up per message. Whenever no task waits in
//! `recv()` and there is work (a ping to answer, a keep-alive to send, queued messages to
//! write, a timeout to enforce), a background task on the executor (see [`set_executor`]) does
//! it, and ends after a second without work: an idle connection costs no task besides the
//! application's, and no timer of its own (the connections made on one thread share one
//! queue of deadlines). [`WebSocket::recv`] and [`WebSocket::send`] are cancel-safe, and
//! [`WebSocket::split`] gives halves that two tasks can use at once.
//!
//! Sends wait while [`Config::write_high_water_mark`] bytes are queued for the socket, and
//! the connection stops reading while messages pile up unread (see [`Limits`]), so memory
//! stays bounded in both directions.
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
//! `connect_with_tls`. A TLS server accepts with `futures_rustls::TlsAcceptor` and
//! hands the TLS stream to [`accept_with`]; both crates are re-exported.
//!
//! The same API for tokio is in `tether-tokio`.
#![forbid(unsafe_code)]

use bytes::BytesMut;
use futures_io::{AsyncRead, AsyncWrite};
use std::any::Any;
use std::cell::RefCell;
use std::future::Future;
use std::io;
use std::io::Read;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Instant;

#[cfg(feature = "tls")]
pub use futures_rustls::{self, rustls};
pub use tether_driver::api::*;

// `connect`, `connect_with`, `client`, `accept`, `accept_with`, `incoming`,
// `from_upgraded`, `reconnecting` (and, with `tls`, `connect_with_tls`, `incoming_tls`,
// `reconnecting_with_tls`): the same in every adapter, written once in tether-driver.
tether_driver::runtime_functions! {
    krate: "tether_async_std",
    tcp: async_net::TcpStream,
    tcp_doc: "async_net::TcpStream",
    stream: [AsyncRead + AsyncWrite + Unpin + Send + 'static],
    wrap: io,
    runs: "The connection's (or the reconnecting client's) background work runs on this \
           crate's executor (see [`set_executor`]).",
}

/// How async-net reaches the network (see [`tether_driver::net`]): TCP, and TLS with the
/// configurations given (or, for clients, the default one).
#[derive(Default)]
struct Net {
    #[cfg(feature = "tls")]
    client_tls: Option<Arc<rustls::ClientConfig>>,
    #[cfg(feature = "tls")]
    server_tls: Option<Arc<rustls::ServerConfig>>,
}

impl tether_driver::net::Net for Net {
    type Tcp = async_net::TcpStream;
    type Plain = AnyIo<async_net::TcpStream>;

    fn runtime(&self) -> Arc<dyn tether_driver::Runtime> {
        runtime()
    }

    async fn connect_tcp(&self, host: &str, port: u16) -> io::Result<async_net::TcpStream> {
        let stream = async_net::TcpStream::connect((host, port)).await?;
        stream.set_nodelay(true)?;
        Ok(stream)
    }

    fn plain(&self, tcp: async_net::TcpStream) -> AnyIo<async_net::TcpStream> {
        io(tcp)
    }

    fn peer_addr(&self, tcp: &async_net::TcpStream) -> Option<std::net::SocketAddr> {
        tcp.peer_addr().ok()
    }

    fn name(&self) -> &'static str {
        "tether-async-std"
    }

    #[cfg(feature = "tls")]
    fn has_tls(&self) -> bool {
        true
    }

    #[cfg(feature = "tls")]
    fn connect_tls(&self, tcp: async_net::TcpStream, host: &str) -> tether_driver::net::TlsFuture {
        let tls = self
            .client_tls
            .clone()
            .unwrap_or_else(tether_driver::net::default_tls);
        let name = rustls::pki_types::ServerName::try_from(host.to_owned());
        Box::pin(async move {
            let name = name.map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
            let stream = futures_rustls::TlsConnector::from(tls)
                .connect(name, tcp)
                .await?;
            Ok(Box::new(io(stream)) as Box<dyn tether_driver::Transport>)
        })
    }

    #[cfg(feature = "tls")]
    fn accept_tls(&self, tcp: async_net::TcpStream) -> tether_driver::net::TlsFuture {
        let tls = self.server_tls.clone();
        let error = self.no_tls();
        Box::pin(async move {
            let stream = futures_rustls::TlsAcceptor::from(tls.ok_or(error)?)
                .accept(tcp)
                .await?;
            Ok(Box::new(io(stream)) as Box<dyn tether_driver::Transport>)
        })
    }
}

/// The executor that runs the connections' background tasks, once chosen.
static EXECUTOR: OnceLock<Arc<async_executor::Executor<'static>>> = OnceLock::new();

/// Runs the connections' background tasks on `executor`, instead of on this crate's own
/// threads (one per CPU, started when the first connection needs them).
///
/// Call it once, before the first connection. A server that runs everything on one thread
/// then really uses one thread: the tasks that move each connection's bytes run next to the
/// application's tasks, without waking another thread for every message. The executor must
/// be running (`executor.run(..)`) for connections to make progress.
///
/// Returns the executor back if the choice was already made (by an earlier call, or by a
/// connection that started the crate's own threads).
///
/// ```no_run
/// use std::sync::Arc;
///
/// let ex = Arc::new(async_executor::Executor::new());
/// tether_async_std::set_executor(ex.clone()).expect("first call");
/// async_io::block_on(ex.run(async {
///     // accept and spawn connections here, with `ex.spawn(..)`
/// }));
/// ```
pub fn set_executor(
    executor: Arc<async_executor::Executor<'static>>,
) -> Result<(), Arc<async_executor::Executor<'static>>> {
    EXECUTOR.set(executor)
}

/// The chosen executor, or this crate's own, whose threads are started on first use.
fn executor() -> &'static Arc<async_executor::Executor<'static>> {
    EXECUTOR.get_or_init(|| {
        let ex = Arc::new(async_executor::Executor::new());
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        for i in 0..threads {
            let ex = ex.clone();
            // If no thread can be started, tasks still run on the ones that did; with
            // none at all, spawning would queue forever, so fail loudly.
            std::thread::Builder::new()
                .name(format!("tether-{i}"))
                .spawn(move || async_io::block_on(ex.run(std::future::pending::<()>())))
                .expect("start a tether executor thread");
        }
        ex
    })
}

fn runtime() -> Arc<dyn tether_driver::Runtime> {
    static RUNTIME: std::sync::OnceLock<Arc<dyn tether_driver::Runtime>> =
        std::sync::OnceLock::new();
    RUNTIME.get_or_init(|| Arc::new(AsyncIo)).clone()
}

/// async-io timers, and tasks on [`EXECUTOR`].
#[derive(Debug)]
struct AsyncIo;

impl tether_driver::Runtime for AsyncIo {
    fn spawn(&self, future: Pin<Box<dyn Future<Output = ()> + Send>>) {
        executor().spawn(future).detach();
    }

    fn timer(&self, deadline: Instant) -> Pin<Box<dyn tether_driver::Timer>> {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        if let Ok(timer) = timerfd::TimerFd::new(deadline) {
            return Box::pin(timer);
        }
        Box::pin(Timer(async_io::Timer::at(deadline)))
    }
}

/// An async-io timer (where there is no timerfd, or creating one failed).
#[derive(Debug)]
struct Timer(async_io::Timer);

impl tether_driver::Timer for Timer {
    fn reset(self: Pin<&mut Self>, deadline: Instant) {
        self.get_mut().0.set_at(deadline);
    }

    fn poll_expired(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.get_mut().0).poll(cx).map(|_| ())
    }
}

/// The timer of a thread's deadline queue as a Linux timerfd, which async-io watches like a
/// socket. async-io's own timers cost an allocation per reactor turn while any is
/// registered (its reactor splits its map of timers at every turn, `BTreeMap::split_off`),
/// and the queue keeps one registered as long as any connection has a deadline: with
/// one connection that was an allocation per message.
#[cfg(any(target_os = "linux", target_os = "android"))]
mod timerfd {
    use async_io::Async;
    use rustix::time::{
        Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags, Timespec, timerfd_create,
        timerfd_settime,
    };
    use std::io;
    use std::os::fd::OwnedFd;
    use std::pin::Pin;
    use std::task::{Context, Poll};
    use std::time::{Duration, Instant};

    #[derive(Debug)]
    pub(super) struct TimerFd {
        fd: Async<OwnedFd>,
        deadline: Instant,
    }

    impl TimerFd {
        pub(super) fn new(deadline: Instant) -> io::Result<Self> {
            let fd = timerfd_create(
                TimerfdClockId::Monotonic,
                TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC,
            )?;
            let timer = Self {
                fd: Async::new(fd)?,
                deadline,
            };
            timer.arm()?;
            Ok(timer)
        }

        /// Sets the timerfd to expire at the deadline (`Instant` is `CLOCK_MONOTONIC` here),
        /// counted from now: an `Instant` cannot be turned into the clock's absolute time.
        fn arm(&self) -> io::Result<()> {
            // (A zero time would disarm it: a deadline already passed expires at once.)
            let left = self
                .deadline
                .saturating_duration_since(Instant::now())
                .max(Duration::from_nanos(1));
            let it_value = Timespec {
                tv_sec: i64::try_from(left.as_secs()).unwrap_or(i64::MAX),
                tv_nsec: i64::from(left.subsec_nanos()),
            };
            let zero = Timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            let spec = Itimerspec {
                it_interval: zero,
                it_value,
            };
            timerfd_settime(self.fd.get_ref(), TimerfdTimerFlags::empty(), &spec)?;
            Ok(())
        }

        /// Reads the expiry count, if any, so that the timerfd is no longer readable.
        fn drain(&self) {
            let mut count = [0u8; 8];
            let _ = rustix::io::read(self.fd.get_ref(), &mut count);
        }
    }

    impl tether_driver::Timer for TimerFd {
        fn reset(self: Pin<&mut Self>, deadline: Instant) {
            let this = self.get_mut();
            this.deadline = deadline;
            this.drain();
            if this.arm().is_err() {
                // (Not expected for a valid timerfd.) The queue is polled again at once and
                // finds what is due; the next reset tries again.
                this.deadline = Instant::now();
            }
        }

        fn poll_expired(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            let this = self.get_mut();
            loop {
                if Instant::now() >= this.deadline {
                    this.drain();
                    return Poll::Ready(());
                }
                match this.fd.poll_readable(cx) {
                    // Readable: expired (checked against the clock above), or spurious.
                    Poll::Ready(Ok(())) => this.drain(),
                    // (The reactor failed: report the deadline as come rather than never.)
                    Poll::Ready(Err(_)) => return Poll::Ready(()),
                    Poll::Pending => return Poll::Pending,
                }
            }
        }
    }

    #[cfg(test)]
    mod tests {
        use super::TimerFd;
        use std::pin::Pin;
        use std::time::{Duration, Instant};
        use tether_driver::Timer as _;

        fn wait(timer: &mut Pin<Box<TimerFd>>) -> Instant {
            async_io::block_on(std::future::poll_fn(|cx| timer.as_mut().poll_expired(cx)));
            Instant::now()
        }

        /// It expires at its deadline, not before; reset moves it either way, also after it
        /// expired; a deadline already passed expires at once.
        #[test]
        fn expires_at_its_deadline_and_resets() {
            let start = Instant::now();
            let mut timer = Box::pin(TimerFd::new(start + Duration::from_millis(60)).unwrap());
            let at = wait(&mut timer);
            assert!(at >= start + Duration::from_millis(60), "{:?}", at - start);
            assert!(at < start + Duration::from_secs(2), "{:?}", at - start);

            // Later, then earlier again before it comes.
            let start = Instant::now();
            timer.as_mut().reset(start + Duration::from_secs(30));
            timer.as_mut().reset(start + Duration::from_millis(40));
            let at = wait(&mut timer);
            assert!(at >= start + Duration::from_millis(40), "{:?}", at - start);
            assert!(at < start + Duration::from_secs(2), "{:?}", at - start);

            let start = Instant::now();
            timer
                .as_mut()
                .reset(start.checked_sub(Duration::from_millis(5)).unwrap_or(start));
            assert!(wait(&mut timer) < start + Duration::from_secs(1));
        }
    }
}

/// The driver's transport for a stream: an async-net TCP stream gets [`Tcp`], which waits
/// for readiness instead of reading once more after the socket was emptied; any other
/// futures-io stream (TLS, a Unix socket, ...) is used through its `AsyncRead` and
/// `AsyncWrite` ([`Io`]).
fn io<S>(stream: S) -> AnyIo<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut slot = Some(stream);
    if let Some(tcp) = (&mut slot as &mut dyn Any).downcast_mut::<Option<async_net::TcpStream>>()
        && let Some(tcp) = tcp.take()
    {
        return AnyIo::Tcp(Tcp {
            inner: tcp.into(),
            waiting: false,
            drained: false,
        });
    }
    AnyIo::Other(Box::new(Io(slot.expect("not taken"))))
}

/// See [`io`]. Any other stream is boxed, so that the enum, which the driver keeps for as
/// long as the connection lives, is as small as [`Tcp`] rather than as large as the
/// largest stream.
enum AnyIo<S> {
    Tcp(Tcp),
    Other(Box<Io<S>>),
}

impl<S> tether_driver::Transport for AnyIo<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut BytesMut) -> Poll<io::Result<usize>> {
        match self {
            Self::Tcp(t) => t.poll_read(cx, buf),
            Self::Other(o) => o.poll_read(cx, buf),
        }
    }

    fn poll_write(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self {
            Self::Tcp(t) => t.poll_write(cx, buf),
            Self::Other(o) => o.poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self {
            Self::Tcp(t) => Pin::new(&mut &*t.inner).poll_write_vectored(cx, bufs),
            Self::Other(o) => Pin::new(&mut o.0).poll_write_vectored(cx, bufs),
        }
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            Self::Tcp(t) => t.poll_flush(cx),
            Self::Other(o) => o.poll_flush(cx),
        }
    }

    fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            Self::Tcp(t) => t.poll_shutdown(cx),
            Self::Other(o) => o.poll_shutdown(cx),
        }
    }
}

/// Reads with `read` (into initialized memory) and appends what arrived to the spare
/// capacity of `buf`. futures-io and `std::io::Read` read into initialized memory, and
/// zeroing the whole spare capacity for every read would cost more than the read: instead
/// the read goes to a per-thread scratch buffer, zeroed once, and what arrived is copied.
fn read_into(
    buf: &mut BytesMut,
    mut read: impl FnMut(&mut [u8]) -> Poll<io::Result<usize>>,
) -> Poll<io::Result<usize>> {
    thread_local! {
        static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    }
    let want = buf.capacity() - buf.len();
    let mut read_once = Some(&mut read);
    let scratch = SCRATCH.try_with(|scratch| {
        let mut scratch = scratch.try_borrow_mut().ok()?;
        if scratch.len() < want {
            scratch.resize(want, 0);
        }
        let result = read_once.take().expect("once")(&mut scratch[..want]);
        if let Poll::Ready(Ok(n)) = result {
            buf.extend_from_slice(&scratch[..n]);
        }
        Some(result)
    });
    if let Ok(Some(result)) = scratch {
        return result;
    }
    // The scratch buffer is in use or gone (thread exit): zero the spare capacity.
    let start = buf.len();
    buf.resize(buf.capacity(), 0);
    let result = read(&mut buf[start..]);
    let n = match result {
        Poll::Ready(Ok(n)) => n,
        _ => 0,
    };
    buf.truncate(start + n);
    result
}

/// An async-net TCP stream as the driver's transport. After a read that returned less
/// than it asked for, the socket is (almost surely) empty: the next read first waits for
/// readiness, which registers interest with the reactor, instead of making a `recv` that
/// fails with `WouldBlock` and then registering. One system call fewer per message.
struct Tcp {
    inner: std::sync::Arc<async_io::Async<std::net::TcpStream>>,
    /// Interest is registered (the last readiness check was pending): the reactor's event
    /// is to be taken with a readiness check before reading.
    waiting: bool,
    /// The last read returned less than it asked for.
    drained: bool,
}

impl Tcp {
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut BytesMut) -> Poll<io::Result<usize>> {
        if self.waiting || self.drained {
            match self.inner.poll_readable(cx) {
                Poll::Pending => {
                    self.waiting = true;
                    return Poll::Pending;
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(())) => {
                    self.waiting = false;
                    self.drained = false;
                }
            }
        }
        loop {
            let want = buf.capacity() - buf.len();
            let result = read_into(buf, |b| Poll::Ready(self.inner.get_ref().read(b)));
            match result {
                Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                    match self.inner.poll_readable(cx) {
                        Poll::Pending => {
                            self.waiting = true;
                            return Poll::Pending;
                        }
                        Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                        Poll::Ready(Ok(())) => continue,
                    }
                }
                Poll::Ready(Ok(n)) => {
                    self.drained = n > 0 && n < want;
                    return Poll::Ready(Ok(n));
                }
                other => return other,
            }
        }
    }

    fn poll_write(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut &*self.inner).poll_write(cx, buf)
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut &*self.inner).poll_flush(cx)
    }

    fn poll_shutdown(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        // (async-io's `poll_close` only flushes; async-net shuts the write side down.)
        Poll::Ready(self.inner.get_ref().shutdown(std::net::Shutdown::Write))
    }
}

/// Any futures-io stream as the driver's transport.
struct Io<S>(S);

impl<S> Io<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut BytesMut) -> Poll<io::Result<usize>> {
        read_into(buf, |b| Pin::new(&mut self.0).poll_read(cx, b))
    }

    fn poll_write(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_close(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::AnyIo;

    /// The transport of a TCP connection, which the driver boxes and keeps for the
    /// connection's lifetime, is its own small `Tcp`, not as large as a generic stream.
    #[test]
    fn the_transport_of_a_tcp_connection_takes_16_bytes() {
        assert_eq!(std::mem::size_of::<AnyIo<async_net::TcpStream>>(), 16);
        assert!(std::mem::size_of::<super::Io<async_net::TcpStream>>() > 16);
    }
}
