//! What a connection manager holds of a connection: its number ([`ConnectionId`]) and a
//! cloneable [`Sender`] that any task can send through, without waiting or with.

use crate::error::Error;
use crate::id::ConnectionId;
use crate::shared::Inner;
use crate::state::{Shared, add_waiter};
use std::fmt;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;
use tether_core::{CloseCode, CloseReason, Message, PreparedFrame, SendError, State};

/// Why [`Sender::try_send`] (or [`Sender::try_send_prepared`]) did not queue a message.
/// `Full` and `Closed` hand the message back.
#[derive(Debug)]
#[non_exhaustive]
pub enum TrySendError<T = Message> {
    /// The bytes queued for the connection are at its high-water mark
    /// ([`Config::write_high_water_mark`](crate::Config::write_high_water_mark)): the peer
    /// reads more slowly than messages come. Nothing was queued.
    Full(T),
    /// The connection is closing or closed: nothing can be sent on it any more.
    Closed(T),
    /// The message itself cannot be sent (a control payload over 125 bytes, a close code
    /// that may not be sent).
    Invalid(SendError),
}

impl<T> TrySendError<T> {
    /// The message that was not queued, if it is handed back.
    pub fn into_inner(self) -> Option<T> {
        match self {
            Self::Full(m) | Self::Closed(m) => Some(m),
            Self::Invalid(_) => None,
        }
    }

    /// Whether the connection was at its high-water mark.
    pub fn is_full(&self) -> bool {
        matches!(self, Self::Full(_))
    }

    /// Whether the connection is closing or closed.
    pub fn is_closed(&self) -> bool {
        matches!(self, Self::Closed(_))
    }
}

impl<T> fmt::Display for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Full(_) => f.write_str("the connection's send buffer is full"),
            Self::Closed(_) => f.write_str("the connection is closing or closed"),
            Self::Invalid(e) => write!(f, "cannot send: {e}"),
        }
    }
}

impl<T: fmt::Debug> std::error::Error for TrySendError<T> {}

/// A handle that sends on a connection, cloneable and usable from any task or thread at
/// once: what a connection manager keeps for each connection. Made by
/// [`WebSocket::sender`](crate::WebSocket::sender) (or either half's `sender`).
///
/// Sending only queues: the connection's driver writes what is queued, coalescing the
/// messages queued meanwhile into one write. [`try_send`](Self::try_send) never waits
/// (it answers [`TrySendError::Full`] at the high-water mark); [`send`](Self::send)
/// waits for room. [`try_send_prepared`](Self::try_send_prepared) queues a
/// [`PreparedFrame`], encoded (and compressed) once for every recipient of a broadcast,
/// without copying its bytes.
///
/// A `Sender` does not keep the connection open: the connection lives while its
/// [`WebSocket`](crate::WebSocket), or one of its halves, does. Once they are all
/// dropped it closes normally (1000), and sends fail with `Closed`.
///
/// ```no_run
/// # async fn run(ws: tether_driver::WebSocket) {
/// use tether_driver::{Message, TrySendError};
/// let sender = ws.sender();
/// println!("connection {}", sender.id());
/// match sender.try_send(Message::text("tick")) {
///     Ok(()) => {}
///     Err(TrySendError::Full(_)) => { /* a slow consumer: drop, or disconnect it */ }
///     Err(e) => println!("not sent: {e}"),
/// }
/// let reason = sender.closed().await;
/// println!("closed with {}", reason.code());
/// # }
/// ```
#[derive(Clone)]
pub struct Sender {
    inner: Arc<Inner>,
}

impl Sender {
    pub(crate) fn new(inner: Arc<Inner>) -> Self {
        Self { inner }
    }

    /// The connection's number.
    pub fn id(&self) -> ConnectionId {
        self.inner.id
    }

    /// Queues `message` unless the connection is at its high-water mark or closing;
    /// never waits. Sending [`Message::Close`] starts the closing handshake.
    pub fn try_send(&self, message: Message) -> Result<(), TrySendError> {
        self.try_queue(message, |sh, now, m| sh.conn.send(now, m))
    }

    /// Queues a message encoded once for many connections (see [`PreparedFrame`]): its
    /// bytes are shared with every other connection it is queued on, not copied. Never
    /// waits.
    pub fn try_send_prepared(&self, frame: &PreparedFrame) -> Result<(), TrySendError<()>> {
        self.try_queue((), |sh, now, ()| sh.conn.send_prepared(now, frame))
    }

    /// [`try_send_prepared`](Self::try_send_prepared) for a fan-out: when the connection
    /// had nothing queued, its driver is not woken; the connection goes into `cork`
    /// instead, and [`Cork::flush`] writes it from the calling task (the bytes of every
    /// connection corked since the last flush, each in one write). A fan-out to many idle
    /// connections then costs one write each and no task wake-up. A connection that had
    /// bytes queued already is left alone: the new message goes out with those, written by
    /// whoever queued them (a cork, its driver, or the transport's wake-up once it has
    /// room). Dropping the cork flushes it.
    ///
    /// ```no_run
    /// # fn fan_out(senders: &[tether_driver::Sender], frame: &tether_core::PreparedFrame) {
    /// let mut cork = tether_driver::Cork::new();
    /// for sender in senders {
    ///     let _ = sender.try_send_prepared_corked(frame, &mut cork);
    /// }
    /// cork.flush(); // one write per connection, from this task
    /// # }
    /// ```
    pub fn try_send_prepared_corked(
        &self,
        frame: &PreparedFrame,
        cork: &mut Cork,
    ) -> Result<(), TrySendError<()>> {
        let inner = &self.inner;
        let mut sh = inner.lock();
        if closed(&sh) {
            return Err(TrySendError::Closed(()));
        }
        let buffered = sh.buffered();
        if buffered > 0 && buffered >= sh.app.hwm as usize {
            return Err(TrySendError::Full(()));
        }
        // (The clock is read once for the cork's connections, until it is flushed.)
        let now = *cork.now.get_or_insert_with(|| inner.runtime().now());
        let result = sh.conn.send_prepared(now, frame);
        // With bytes queued already, whoever queued them writes these too: a cork that will
        // flush, a driver woken for them, or the transport's wake-up once it has room.
        if result.is_ok() && buffered == 0 {
            cork.conns.push(inner.clone());
        }
        drop(sh);
        result.map_err(TrySendError::Invalid)
    }

    /// Queues `message`, waiting first while the connection is at its high-water mark.
    /// Resolves once the message is queued (not written). Fails with [`Error::Send`] once
    /// the connection is closing or closed.
    ///
    /// Cancel-safe: the message is queued only by the poll that returns `Ready(Ok(()))`.
    pub async fn send(&self, message: Message) -> Result<(), Error> {
        let mut message = Some(message);
        poll_fn(|cx| {
            self.poll_queue(cx, |sh, now| {
                let m = message.take().expect("queued once");
                sh.conn.send(now, m)
            })
        })
        .await
    }

    /// [`try_send_prepared`](Self::try_send_prepared), waiting for room like
    /// [`send`](Self::send). Cancel-safe in the same way.
    pub async fn send_prepared(&self, frame: &PreparedFrame) -> Result<(), Error> {
        poll_fn(|cx| self.poll_queue(cx, |sh, now| sh.conn.send_prepared(now, frame))).await
    }

    /// Starts the closing handshake with `code` and a reason of at most 123 bytes, if the
    /// connection is open; does nothing if it is already closing or closed (idempotent).
    /// Never waits: the close frame goes out after what is already queued, and
    /// [`closed`](Self::closed) resolves once the connection has ended.
    pub fn close(&self, code: impl Into<CloseCode>, reason: &str) -> Result<(), Error> {
        let inner = &self.inner;
        let mut sh = inner.lock();
        if sh.conn.state() == State::Open && !sh.app.driver_done() {
            let now = inner.runtime().now();
            sh.conn.close(now, code.into(), reason)?;
            // Sends waiting for room fail now.
            sh.app.wake_senders();
            sh.app.kick = true;
        }
        inner.unlock_and_kick(sh);
        Ok(())
    }

    /// Bytes queued for sending and not yet written to the transport (the browser API's
    /// `bufferedAmount`).
    pub fn buffered_amount(&self) -> usize {
        self.inner.lock().buffered()
    }

    /// Whether nothing can be sent any more: the connection is closing or closed.
    pub fn is_closed(&self) -> bool {
        closed(&self.inner.lock())
    }

    /// Resolves once the connection has ended, for whatever reason, with how it ended
    /// ([`CloseReason::Abnormal`] if the transport was lost without one). Resolves at
    /// once if it has already ended; any number of tasks can wait.
    pub fn closed(&self) -> Closed {
        Closed {
            inner: self.inner.clone(),
        }
    }

    /// Queues with `queue` after the checks of `try_send`.
    fn try_queue<T>(
        &self,
        item: T,
        queue: impl FnOnce(&mut Shared, std::time::Instant, T) -> Result<(), SendError>,
    ) -> Result<(), TrySendError<T>> {
        let inner = &self.inner;
        let mut sh = inner.lock();
        if closed(&sh) {
            return Err(TrySendError::Closed(item));
        }
        if sh.output_full() {
            return Err(TrySendError::Full(item));
        }
        let now = inner.runtime().now();
        let result = queue(&mut sh, now, item);
        if result.is_ok() {
            sh.app.kick = true;
        }
        inner.unlock_and_kick(sh);
        result.map_err(TrySendError::Invalid)
    }

    /// Queues with `queue` once there is room; the waker is registered otherwise.
    fn poll_queue(
        &self,
        cx: &mut Context<'_>,
        queue: impl FnOnce(&mut Shared, std::time::Instant) -> Result<(), SendError>,
    ) -> Poll<Result<(), Error>> {
        let inner = &self.inner;
        let mut sh = inner.lock();
        if closed(&sh) {
            return Poll::Ready(Err(Error::Send(SendError::Closed)));
        }
        if sh.output_full() {
            add_waiter(&mut sh.app.cold().send_waiters, cx.waker());
            return Poll::Pending;
        }
        let now = inner.runtime().now();
        let result = queue(&mut sh, now);
        if result.is_ok() {
            sh.app.kick = true;
        }
        inner.unlock_and_kick(sh);
        Poll::Ready(result.map_err(Error::Send))
    }
}

/// Whether the connection can no longer send.
/// Connections given messages by [`Sender::try_send_prepared_corked`], whose drivers were
/// not woken: [`flush`](Cork::flush) writes them from the calling task. Dropping it flushes.
#[derive(Default)]
pub struct Cork {
    conns: Vec<Arc<Inner>>,
    /// The time the connections were given their messages (read with the first).
    now: Option<Instant>,
}

impl Cork {
    /// An empty cork.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many connections wait for [`flush`](Self::flush).
    pub fn len(&self) -> usize {
        self.conns.len()
    }

    /// Whether no connection waits.
    pub fn is_empty(&self) -> bool {
        self.conns.is_empty()
    }

    /// Drives every corked connection once from the calling task, under its lock, as its
    /// own task would: writes what is queued (as far as the transport takes it without
    /// waiting; the rest goes out when the transport has room, through the connection's
    /// driver), hands over what was read, arms its timers. Then the cork is empty.
    pub fn flush(&mut self) {
        self.now = None;
        // The clock is read once for all of them (a flush takes a fraction of a
        // millisecond: the timers are armed that much early at most).
        let Some(now) = self.conns.first().map(|inner| inner.runtime().now()) else {
            return;
        };
        for inner in self.conns.drain(..) {
            let mut sh = inner.lock();
            inner.drive_output(&mut sh, now);
            inner.unlock_and_kick(sh);
        }
    }
}

impl Drop for Cork {
    fn drop(&mut self) {
        self.flush();
    }
}

impl fmt::Debug for Cork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cork")
            .field("len", &self.conns.len())
            .finish()
    }
}

fn closed(sh: &Shared) -> bool {
    sh.app.driver_done() || sh.conn.state() != State::Open
}

impl fmt::Debug for Sender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender")
            .field("id", &self.inner.id)
            .finish_non_exhaustive()
    }
}

/// The future of [`Sender::closed`]: how the connection ended, once it has.
#[must_use = "futures do nothing unless polled"]
pub struct Closed {
    inner: Arc<Inner>,
}

impl Future for Closed {
    type Output = Arc<CloseReason>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Arc<CloseReason>> {
        let mut sh = self.inner.lock();
        if sh.app.is_ended() {
            let reason = sh.app.close_reason();
            return Poll::Ready(reason.unwrap_or_else(|| Arc::new(CloseReason::Abnormal)));
        }
        add_waiter(&mut sh.app.cold().closed_waiters, cx.waker());
        Poll::Pending
    }
}

impl fmt::Debug for Closed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Closed")
            .field("id", &self.inner.id)
            .finish_non_exhaustive()
    }
}
