//! What the driver needs from an async runtime and from a transport.

use bytes::BytesMut;
use std::fmt;
use std::future::Future;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

/// The services of an async runtime the driver uses: spawning a task and timers.
///
/// An adapter implements it once for its runtime (tokio, async-io, ...). It is object-safe;
/// connections hold it as `Arc<dyn Runtime>`.
pub trait Runtime: Send + Sync + fmt::Debug + 'static {
    /// Runs `future` in the background until it completes.
    fn spawn(&self, future: Pin<Box<dyn Future<Output = ()> + Send>>);

    /// Returns a timer that fires at `deadline`.
    fn timer(&self, deadline: Instant) -> Pin<Box<dyn Timer>>;

    /// The current time, as the runtime's timers see it. Defaults to [`Instant::now`].
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// A resettable one-shot timer, made by [`Runtime::timer`].
pub trait Timer: Send + fmt::Debug {
    /// Moves the deadline to `deadline` (earlier or later); the timer fires again after it.
    fn reset(self: Pin<&mut Self>, deadline: Instant);

    /// Returns `Ready` once the deadline has passed, and registers the waker otherwise.
    fn poll_expired(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()>;
}

/// A byte stream the driver reads from and writes to: TCP, TLS, an upgraded HTTP
/// connection, a Unix socket, an in-memory pipe.
///
/// The methods mirror `AsyncRead`/`AsyncWrite` of tokio and futures-io; the adapters
/// implement it for every stream of their runtime.
pub trait Transport: Send + Unpin + 'static {
    /// Reads into the spare capacity of `buf`, appending to it, and returns how many bytes
    /// were read. `Ok(0)` (with spare capacity available) means end of stream.
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut BytesMut) -> Poll<io::Result<usize>>;

    /// Writes some of `buf` and returns how many bytes were written.
    fn poll_write(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>>;

    /// Writes some of `bufs`, in order, and returns how many bytes were written: one
    /// vectored write (`writev`) where the transport has them, so that bytes shared by
    /// many connections (a broadcast's prepared frame) go out without being copied. The
    /// default writes the first non-empty slice with [`poll_write`](Self::poll_write).
    fn poll_write_vectored(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let buf = bufs
            .iter()
            .find(|b| !b.is_empty())
            .map_or(&[][..], |b| &**b);
        self.poll_write(cx, buf)
    }

    /// Flushes bytes buffered inside the transport (TLS records, for example).
    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;

    /// Shuts down the write side (TCP FIN, TLS close_notify).
    fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;
}

/// Polls `future` until it completes or `deadline` passes (`None`: no deadline); returns
/// `None` on expiry. Used by the adapters to bound DNS, TCP and TLS set-up by the handshake
/// timeout.
pub async fn with_deadline<F: Future>(
    runtime: &dyn Runtime,
    deadline: Option<Instant>,
    future: F,
) -> Option<F::Output> {
    let Some(deadline) = deadline else {
        return Some(future.await);
    };
    let mut timer = runtime.timer(deadline);
    let mut future = std::pin::pin!(future);
    std::future::poll_fn(|cx| {
        if let Poll::Ready(out) = future.as_mut().poll(cx) {
            return Poll::Ready(Some(out));
        }
        match timer.as_mut().poll_expired(cx) {
            Poll::Ready(()) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}
