//! The application's handles: `WebSocket` and its two halves, and the futures of their
//! `recv` and `send`.

use crate::driver::Drive;
use crate::error::Error;
use crate::id::ConnectionId;
use crate::sender::Sender;
use crate::shared::Inner;
use crate::state::{Shared, Writer, set_waker};
use bytes::Bytes;
use futures_core::Stream;
use futures_sink::Sink;
use std::fmt;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;
use tether_core::{
    CloseCode, CloseFrame, CloseReason, DeflateParams, Message, Request, State, Utf8Bytes,
};

/// A WebSocket connection (RFC 6455), driven by the task waiting in [`recv`](Self::recv)
/// or, when none is, by a background task (see the [crate docs](crate)).
///
/// Receive with [`recv`](Self::recv) or as a [`Stream`]; send with
/// [`send`](Self::send) and friends or as a [`Sink`]. [`split`](Self::split) gives a
/// [`ReadHalf`] and a [`WriteHalf`] that can be used from different tasks at once.
///
/// Keep-alive pings, pong deadlines and the close and idle timeouts run whether the
/// application waits in `recv()`, only sends, or does something else.
///
/// Dropping every handle of an open connection starts a normal closure (1000) in the
/// background; the task ends once the closing handshake or the close timeout is over.
pub struct WebSocket {
    read: ReadHalf,
    write: WriteHalf,
}

/// The receiving half of a [`WebSocket`], from [`WebSocket::split`].
///
/// Dropping it discards further incoming messages; the connection stays open for sending
/// through the [`WriteHalf`] (and closes normally, 1000, once that is dropped too).
pub struct ReadHalf {
    inner: Arc<Inner>,
}

/// The sending half of a [`WebSocket`], from [`WebSocket::split`].
///
/// Dropping it while the [`ReadHalf`] lives leaves the connection working through the
/// reading half: messages are still received, pings answered, keep-alive and timeouts
/// kept, and [`Sender`]s still send. The connection closes normally (1000) once the
/// reading half is dropped too, or when the peer closes it.
pub struct WriteHalf {
    inner: Arc<Inner>,
}

/// The halves given to [`ReadHalf::reunite`] belong to different connections.
#[derive(Debug)]
pub struct ReuniteError(pub ReadHalf, pub WriteHalf);

impl fmt::Display for ReuniteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the halves belong to different connections")
    }
}

impl std::error::Error for ReuniteError {}

impl WebSocket {
    pub(crate) fn new(inner: Arc<Inner>) -> Self {
        Self {
            read: ReadHalf {
                inner: inner.clone(),
            },
            write: WriteHalf { inner },
        }
    }

    pub(crate) fn inner(&self) -> &Arc<Inner> {
        &self.read.inner
    }

    /// Receives the next message: text, binary, or a ping or pong (pings are answered
    /// automatically). Resolves to `None` once the connection is closed; an unclean end (a
    /// protocol violation, a timeout, a transport error) is reported as one `Some(Err(_))`
    /// first. [`close_reason`](Self::close_reason) then tells how it ended.
    ///
    /// Cancel-safe: a message is taken only by the poll that returns it, so dropping the
    /// future (in `select!`, on a timeout) loses nothing.
    pub fn recv(&mut self) -> RecvFuture<'_> {
        self.read.recv()
    }

    /// Polls for the next message; see [`recv`](Self::recv).
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Message, Error>>> {
        self.read.poll_recv(cx)
    }

    /// Queues a message for sending, waiting first while the write buffer is at its
    /// high-water mark ([`crate::Config::write_high_water_mark`]). Resolves once the message
    /// is queued, not once it is written; see [`flush`](Self::flush).
    ///
    /// Sending [`Message::Close`] starts the closing handshake, as [`close`](Self::close).
    ///
    /// Cancel-safe: the message is queued only by the poll that returns `Ready`; if the
    /// future is dropped before, the message was not queued and nothing was sent.
    pub fn send(&mut self, message: Message) -> SendFuture<'_> {
        self.write.send(message)
    }

    /// Sends a text message; see [`send`](Self::send). Cancel-safe in the same way.
    pub fn send_text(&mut self, text: impl Into<Utf8Bytes>) -> SendFuture<'_> {
        self.write.send_text(text)
    }

    /// Sends a binary message; see [`send`](Self::send). Cancel-safe in the same way.
    pub fn send_binary(&mut self, data: impl Into<Bytes>) -> SendFuture<'_> {
        self.write.send_binary(data)
    }

    /// Sends a ping with up to 125 bytes of data (RFC 6455 §5.5.2); the pong arrives as
    /// [`Message::Pong`]. Cancel-safe like [`send`](Self::send).
    pub fn ping(&mut self, data: impl Into<Bytes>) -> SendFuture<'_> {
        self.write.ping(data)
    }

    /// Starts the closing handshake (RFC 6455 §7.1.2) with a code and a reason of at most
    /// 123 bytes, and waits until the close frame is written. Keep calling
    /// [`recv`](Self::recv) to read what the peer sent before its close frame, until it
    /// returns `None`; the close timeout bounds the wait for the peer.
    ///
    /// The close frame is queued at once, ignoring the high-water mark. Cancel-safe: if
    /// the future is dropped, the close frame is still sent when it was queued (the first
    /// poll queues it).
    pub async fn close(&mut self, code: impl Into<CloseCode>, reason: &str) -> Result<(), Error> {
        self.write.close(code, reason).await
    }

    /// Waits until every queued message is written to the transport and flushed.
    /// Cancel-safe: it only waits.
    pub async fn flush(&mut self) -> Result<(), Error> {
        self.write.flush().await
    }

    /// Bytes queued for sending and not yet written to the transport (the browser API's
    /// `bufferedAmount`). Sends wait while it is at or above the high-water mark.
    pub fn buffered_amount(&self) -> usize {
        self.write.buffered_amount()
    }

    /// How the connection ended, once it has (for example the peer's close frame in
    /// [`CloseReason::Clean`]); `None` while it is open.
    pub fn close_reason(&self) -> Option<Arc<CloseReason>> {
        self.read.close_reason()
    }

    /// Messages received and not yet taken by [`recv`](Self::recv): the next `recv()`
    /// returns at once while this is above zero. (Bytes still in the transport are not
    /// counted.)
    pub fn messages_waiting(&self) -> usize {
        self.read.messages_waiting()
    }

    /// The subprotocol agreed in the opening handshake (RFC 6455 §1.9), if any.
    pub fn subprotocol(&self) -> Option<&str> {
        self.read.subprotocol()
    }

    /// The upgrade request, for a server connection accepted in two steps
    /// ([`Incoming::accept`](crate::Incoming::accept)): path, query, headers.
    pub fn request(&self) -> Option<&Request> {
        self.inner().info().and_then(|i| i.request.as_deref())
    }

    /// The peer's address, for a server connection accepted in two steps from a listener
    /// (recorded by [`IncomingFuture::peer_addr`](crate::IncomingFuture::peer_addr), which
    /// the adapters' `incoming_tls` and a server's accept loop call).
    pub fn peer_addr(&self) -> Option<std::net::SocketAddr> {
        self.inner().info().and_then(|i| i.peer_addr)
    }

    /// The permessage-deflate parameters agreed in the handshake (RFC 7692), if any.
    pub fn deflate_params(&self) -> Option<DeflateParams> {
        self.inner().info().and_then(|i| i.deflate)
    }

    /// The connection's number, unique in the process.
    pub fn id(&self) -> ConnectionId {
        self.inner().id
    }

    /// A cloneable handle that sends on this connection from any task (see [`Sender`]).
    /// It does not keep the connection open.
    pub fn sender(&self) -> Sender {
        Sender::new(self.inner().clone())
    }

    /// Splits the connection into a receiving and a sending half, usable from different
    /// tasks at once: a reader waiting in `recv()` never blocks a writer.
    pub fn split(self) -> (ReadHalf, WriteHalf) {
        (self.read, self.write)
    }
}

impl fmt::Debug for WebSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_handle(f, "WebSocket", self.inner())
    }
}

fn debug_handle(f: &mut fmt::Formatter<'_>, name: &str, inner: &Inner) -> fmt::Result {
    let sh = inner.lock();
    f.debug_struct(name)
        .field("state", &sh.conn.state())
        .field("pending_messages", &sh.pending_messages())
        .field("buffered_amount", &sh.buffered())
        .finish_non_exhaustive()
}

impl ReadHalf {
    /// Receives the next message; see [`WebSocket::recv`]. Cancel-safe.
    pub fn recv(&mut self) -> RecvFuture<'_> {
        RecvFuture {
            inner: &self.inner,
            designated: false,
        }
    }

    /// Polls for the next message; see [`WebSocket::recv`].
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Message, Error>>> {
        poll_recv(&self.inner, cx, None)
    }

    /// How the connection ended, once it has; see [`WebSocket::close_reason`].
    pub fn close_reason(&self) -> Option<Arc<CloseReason>> {
        self.inner.lock().app.close_reason()
    }

    /// Messages received and not yet taken; see [`WebSocket::messages_waiting`].
    pub fn messages_waiting(&self) -> usize {
        self.inner.lock().pending_messages()
    }

    /// The subprotocol agreed in the opening handshake, if any.
    pub fn subprotocol(&self) -> Option<&str> {
        subprotocol(&self.inner)
    }

    /// The connection's number, unique in the process.
    pub fn id(&self) -> ConnectionId {
        self.inner.id
    }

    /// A cloneable handle that sends on this connection from any task (see [`Sender`]).
    pub fn sender(&self) -> Sender {
        Sender::new(self.inner.clone())
    }

    /// Puts the halves of one connection back together.
    pub fn reunite(self, write: WriteHalf) -> Result<WebSocket, ReuniteError> {
        if Arc::ptr_eq(&self.inner, &write.inner) {
            Ok(WebSocket { read: self, write })
        } else {
            Err(ReuniteError(self, write))
        }
    }
}

/// The future of [`WebSocket::recv`] and [`ReadHalf::recv`]: the next message, or `None`
/// once the connection is closed.
///
/// While it waits, its task is the connection's designated driver (see the
/// [crate docs](crate)); dropping it hands the job back to the background task. It is
/// cancel-safe: a message is taken only by the poll that returns it.
#[must_use = "futures do nothing unless polled"]
pub struct RecvFuture<'a> {
    inner: &'a Arc<Inner>,
    designated: bool,
}

impl Future for RecvFuture<'_> {
    type Output = Option<Result<Message, Error>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        poll_recv(this.inner, cx, Some(&mut this.designated))
    }
}

impl Drop for RecvFuture<'_> {
    fn drop(&mut self) {
        if self.designated {
            self.inner.resign();
        }
    }
}

impl fmt::Debug for RecvFuture<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecvFuture").finish_non_exhaustive()
    }
}

/// Takes the next message, driving the connection from the calling task when none is
/// waiting. With `designated` (the `recv()` future), the task stays the designated driver
/// while it waits.
fn poll_recv(
    inner: &Arc<Inner>,
    cx: &mut Context<'_>,
    mut designated: Option<&mut bool>,
) -> Poll<Option<Result<Message, Error>>> {
    let mut sh = inner.lock();
    // Not waiting while this task drives: the messages its own drive brings need no
    // wake-up.
    sh.app.reader_drives();
    let mut drove = false;
    let ready = loop {
        if let Some(message) = sh.next_message() {
            break Some(Ok(message));
        }
        if let Some(error) = sh.app.take_error() {
            break Some(Err(error));
        }
        if sh.app.is_ended() {
            break None;
        }
        if drove {
            sh.app.reader_waits(cx.waker());
            inner.unlock_and_kick(sh);
            return Poll::Pending;
        }
        let same_task = sh
            .app
            .reader_task
            .as_ref()
            .is_some_and(|w| w.will_wake(cx.waker()));
        if !same_task {
            sh.app.reader_task = Some(cx.waker().clone());
        }
        // Designated again if the future is now polled with another waker.
        if let Some(d) = designated.as_deref_mut()
            && (!*d || !same_task)
        {
            inner.wake.designate(cx.waker(), same_task);
            *d = true;
        }
        // (Designated first: a wake-up after the check comes to this task.)
        if inner.needs_drive(&sh) {
            inner.drive(&mut sh);
        }
        drove = true;
    };
    sh.app.reply_due = matches!(ready, Some(Ok(_)));
    // Taking a message may have made work for the driver (room for more input, a close
    // frame to write).
    let kick = std::mem::take(&mut sh.app.kick);
    drop(sh);
    if let Some(d) = designated
        && std::mem::take(d)
    {
        inner.resign();
    }
    inner.kick(kick);
    Poll::Ready(ready)
}

fn subprotocol(inner: &Inner) -> Option<&str> {
    inner.info().and_then(|i| i.subprotocol.as_deref())
}

impl fmt::Debug for ReadHalf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_handle(f, "ReadHalf", &self.inner)
    }
}

impl Drop for ReadHalf {
    fn drop(&mut self) {
        {
            let mut sh = self.inner.lock();
            sh.app.reader_gone();
            sh.clear_messages();
        }
        self.inner.wake.forget_app();
        self.inner.kick(true);
    }
}

impl Stream for ReadHalf {
    type Item = Result<Message, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_recv(cx)
    }
}

impl Stream for WebSocket {
    type Item = Result<Message, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().read.poll_recv(cx)
    }
}

impl WriteHalf {
    /// Queues a message; see [`WebSocket::send`]. Cancel-safe.
    pub fn send(&mut self, message: Message) -> SendFuture<'_> {
        SendFuture {
            half: self,
            message: Some(message),
        }
    }

    /// Sends a text message; see [`WebSocket::send`]. Cancel-safe.
    pub fn send_text(&mut self, text: impl Into<Utf8Bytes>) -> SendFuture<'_> {
        self.send(Message::Text(text.into()))
    }

    /// Sends a binary message; see [`WebSocket::send`]. Cancel-safe.
    pub fn send_binary(&mut self, data: impl Into<Bytes>) -> SendFuture<'_> {
        self.send(Message::Binary(data.into()))
    }

    /// Sends a ping; see [`WebSocket::ping`]. Cancel-safe.
    pub fn ping(&mut self, data: impl Into<Bytes>) -> SendFuture<'_> {
        self.send(Message::Ping(data.into()))
    }

    /// Starts the closing handshake and waits until the close frame is written; see
    /// [`WebSocket::close`].
    pub async fn close(&mut self, code: impl Into<CloseCode>, reason: &str) -> Result<(), Error> {
        let kick = {
            let mut sh = self.inner.lock();
            let now = self.inner.runtime().now();
            sh.conn.close(now, code.into(), reason)?;
            // Sends waiting for room fail now.
            sh.app.wake_senders();
            self.inner.drive_at(&mut sh, Some(now));
            std::mem::take(&mut sh.app.kick)
        };
        self.inner.kick(kick);
        self.flush().await
    }

    /// Waits until everything queued is written and flushed; see [`WebSocket::flush`].
    pub async fn flush(&mut self) -> Result<(), Error> {
        poll_fn(|cx| self.poll_flush_inner(cx)).await
    }

    /// Bytes queued and not yet written; see [`WebSocket::buffered_amount`].
    pub fn buffered_amount(&self) -> usize {
        self.inner.lock().buffered()
    }

    /// How the connection ended, once it has; see [`WebSocket::close_reason`].
    pub fn close_reason(&self) -> Option<Arc<CloseReason>> {
        self.inner.lock().app.close_reason()
    }

    /// The subprotocol agreed in the opening handshake, if any.
    pub fn subprotocol(&self) -> Option<&str> {
        subprotocol(&self.inner)
    }

    /// The connection's number, unique in the process.
    pub fn id(&self) -> ConnectionId {
        self.inner.id
    }

    /// A cloneable handle that sends on this connection from any task (see [`Sender`]).
    pub fn sender(&self) -> Sender {
        Sender::new(self.inner.clone())
    }

    /// Queues `message` (taking it) once the write buffer is below the high-water mark.
    fn poll_send(
        &mut self,
        cx: &mut Context<'_>,
        message: &mut Option<Message>,
    ) -> Poll<Result<(), Error>> {
        let inner = &self.inner;
        let mut sh = inner.lock();
        if !room_to_send(inner, &mut sh, cx) {
            inner.unlock_and_kick(sh);
            return Poll::Pending;
        }
        let Some(message) = message.take() else {
            return Poll::Ready(Ok(()));
        };
        let now = inner.runtime().now();
        let result = sh.conn.send(now, message);
        if result.is_ok() {
            write_or_kick(inner, &mut sh, cx, now);
        }
        inner.unlock_and_kick(sh);
        Poll::Ready(result.map_err(Error::Send))
    }

    fn poll_ready_inner(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let mut sh = self.inner.lock();
        let ready = room_to_send(&self.inner, &mut sh, cx);
        self.inner.unlock_and_kick(sh);
        if ready {
            Poll::Ready(Ok(()))
        } else {
            Poll::Pending
        }
    }

    /// `Sink::start_send` (`feed`): queues only, so that a batch goes out in one write at
    /// the flush; the designated driver is woken in case no flush comes.
    fn start_send_inner(&mut self, message: Message) -> Result<(), Error> {
        let result = {
            let mut sh = self.inner.lock();
            let now = self.inner.runtime().now();
            let result = sh.conn.send(now, message);
            sh.app.kick = false;
            result
        };
        self.inner.kick(true);
        result.map_err(Error::Send)
    }

    fn poll_flush_inner(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let mut sh = self.inner.lock();
        let mut ready = sh.is_flushed();
        if !ready {
            self.inner.drive(&mut sh);
            ready = sh.is_flushed();
            if !ready {
                set_waker(&mut sh.app.send_waker, cx.waker());
            }
        }
        self.inner.unlock_and_kick(sh);
        if ready {
            Poll::Ready(Ok(()))
        } else {
            Poll::Pending
        }
    }

    fn poll_close_inner(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        {
            let mut sh = self.inner.lock();
            if sh.app.writer == Writer::Alive {
                if sh.conn.state() == State::Open {
                    let now = self.inner.runtime().now();
                    let frame = CloseFrame::new(CloseCode::NORMAL, "");
                    sh.conn.send(now, Message::Close(Some(frame)))?;
                    sh.app.wake_senders();
                }
                sh.app.writer = Writer::Closing;
            }
        }
        self.poll_flush_inner(cx)
    }
}

/// The future of [`WebSocket::send`], [`WriteHalf::send`] and their text, binary and ping
/// variants: resolves once the message is queued.
///
/// Cancel-safe: the message is queued only by the poll that returns `Ready`; dropped
/// before, nothing was queued.
#[must_use = "futures do nothing unless polled"]
pub struct SendFuture<'a> {
    half: &'a mut WriteHalf,
    message: Option<Message>,
}

impl Future for SendFuture<'_> {
    type Output = Result<(), Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        this.half.poll_send(cx, &mut this.message)
    }
}

impl fmt::Debug for SendFuture<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendFuture")
            .field("queued", &self.message.is_none())
            .finish_non_exhaustive()
    }
}

/// Whether a message may be queued now: the connection is not open (the send then fails
/// at once rather than after a wait), or the bytes queued for the transport are below the
/// high-water mark. Otherwise the caller's waker is registered, after driving the
/// connection once so that the queued bytes are on their way.
fn room_to_send(inner: &Arc<Inner>, sh: &mut Shared, cx: &mut Context<'_>) -> bool {
    let full = |sh: &Shared| sh.conn.state() == State::Open && sh.output_full();
    if !full(sh) {
        return true;
    }
    inner.drive(sh);
    if !full(sh) {
        return true;
    }
    set_waker(&mut sh.app.send_waker, cx.waker());
    false
}

/// After a message was queued: the first send of the receiving task after it took a
/// message, with no received message left to handle, is written at once (a request/reply
/// loop: one write per reply, no task switch). Otherwise the designated driver is woken
/// (by the caller, after unlocking), so that messages queued in a burst, or while replies
/// to a batch are being made, go out together in one write.
fn write_or_kick(inner: &Arc<Inner>, sh: &mut Shared, cx: &mut Context<'_>, now: Instant) {
    let reply = std::mem::take(&mut sh.app.reply_due)
        && sh.pending_messages() == 0
        && sh
            .app
            .reader_task
            .as_ref()
            .is_some_and(|w| w.will_wake(cx.waker()));
    if reply {
        if inner.drive_at(sh, Some(now)) == Drive::Busy {
            sh.app.kick = true;
        }
    } else {
        sh.app.kick = true;
    }
}

impl fmt::Debug for WriteHalf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_handle(f, "WriteHalf", &self.inner)
    }
}

impl Drop for WriteHalf {
    fn drop(&mut self) {
        {
            let mut sh = self.inner.lock();
            sh.app.writer = Writer::Gone;
            sh.app.send_waker = None;
        }
        self.inner.kick(true);
    }
}

/// The sending side as a [`Sink`]: `poll_ready` waits for room below the high-water mark,
/// `start_send` queues, `poll_flush` waits until written, `poll_close` sends a normal
/// close frame (1000) and flushes it.
impl Sink<Message> for WriteHalf {
    type Error = Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().poll_ready_inner(cx)
    }

    fn start_send(self: Pin<&mut Self>, item: Message) -> Result<(), Error> {
        self.get_mut().start_send_inner(item)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().poll_flush_inner(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().poll_close_inner(cx)
    }
}

/// The sending side as a [`Sink`]; see the implementation for [`WriteHalf`].
impl Sink<Message> for WebSocket {
    type Error = Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().write.poll_ready_inner(cx)
    }

    fn start_send(self: Pin<&mut Self>, item: Message) -> Result<(), Error> {
        self.get_mut().write.start_send_inner(item)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().write.poll_flush_inner(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().write.poll_close_inner(cx)
    }
}
