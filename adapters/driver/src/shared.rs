//! State shared by the driver task and the application's handles.

use crate::dispatch::IoWaker;
use crate::driver::Driver;
use crate::error::Error;
use crate::runtime::{Runtime, Transport};
use std::io;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::task::Waker;
use tether_core::{
    CloseReason, Connection, DeflateParams, Event, Message, Queue, Request, Response,
};

/// Bytes counted for each queued message on top of its payload, so that a flood of empty
/// pings or pongs is bounded too.
const MESSAGE_OVERHEAD: usize = 64;

/// What the handshake settled, readable without the lock.
#[derive(Debug, Default)]
pub(crate) struct Info {
    pub(crate) subprotocol: Option<String>,
    pub(crate) deflate: Option<DeflateParams>,
}

/// One per connection: the lock-protected state and what never changes.
#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) shared: Mutex<Shared>,
    pub(crate) runtime: Arc<dyn Runtime>,
    pub(crate) info: OnceLock<Info>,
    /// Decides which task the transport's wake-ups go to.
    pub(crate) io_waker: Arc<IoWaker>,
    /// `io_waker` as a [`Waker`]: the transport is always polled with it (the timer with
    /// the background task's waker, once that task has run).
    pub(crate) waker: Waker,
}

impl Inner {
    pub(crate) fn new(
        runtime: Arc<dyn Runtime>,
        conn: Connection,
        io: Box<Driver<dyn Transport>>,
        hwm: usize,
    ) -> Self {
        let max_queue = conn.config().limits.max_buffered_input;
        let io_waker = Arc::new(IoWaker::default());
        Self {
            shared: Mutex::new(Shared {
                io: Some(io),
                kick: false,
                settled: None,
                conn,
                queue: Queue::default(),
                queue_bytes: 0,
                max_queue,
                hwm,
                error: None,
                io_error: None,
                close_reason: None,
                ended: false,
                request: None,
                response: None,
                handshake_taken: false,
                write_pending: 0,
                flush_pending: false,
                read_paused: false,
                awaiting_app: false,
                reader: true,
                writer: true,
                driver_done: false,
                recv_waker: None,
                send_waker: None,
                reader_task: None,
                reply_due: false,
                background: None,
            }),
            runtime,
            info: OnceLock::new(),
            waker: Waker::from(io_waker.clone()),
            io_waker,
        }
    }

    /// Locks the shared state. Never held across an `.await` or a `Pending`.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records what the handshake settled (once).
    pub(crate) fn set_info(&self, conn: &Connection) {
        let _ = self.info.set(Info {
            subprotocol: conn.subprotocol().map(str::to_owned),
            deflate: conn.deflate_params(),
        });
    }
}

/// The connection and the queues between the driver and the handles.
pub(crate) struct Shared {
    /// The transport and its buffers; `None` once the connection's I/O is finished.
    pub(crate) io: Option<Box<Driver<dyn Transport>>>,
    /// The application created work for the driver (see [`Inner::kick`]).
    pub(crate) kick: bool,
    /// The count of I/O wake-ups seen by the last drive, if it found nothing more to do
    /// (see [`Inner::needs_drive`]).
    pub(crate) settled: Option<u64>,
    pub(crate) conn: Connection,
    /// Received messages not yet taken by `recv` (the first inline: one message at a time
    /// costs no allocation).
    pub(crate) queue: Queue<Message>,
    /// Payload bytes (plus a per-message overhead) in `queue`.
    pub(crate) queue_bytes: usize,
    /// The driver stops reading while `queue_bytes` exceeds this.
    pub(crate) max_queue: usize,
    /// Sends wait while `buffered()` is at least this.
    pub(crate) hwm: usize,
    /// The terminal error, handed to the reader once after the queued messages.
    pub(crate) error: Option<Error>,
    /// A transport error, reported instead of the core's "abnormal closure".
    pub(crate) io_error: Option<io::Error>,
    /// How the connection ended, once it has.
    pub(crate) close_reason: Option<Arc<CloseReason>>,
    /// The terminal event was seen (or the driver is gone).
    pub(crate) ended: bool,
    /// Server: the upgrade request, waiting for the accept callback.
    pub(crate) request: Option<Box<Request>>,
    /// Client: the server's 101 response.
    pub(crate) response: Option<Box<Response>>,
    /// The handshake's event (`Request` or `Connected`) was taken, or there is none.
    pub(crate) handshake_taken: bool,
    /// Bytes in the driver's write buffer not yet written.
    pub(crate) write_pending: usize,
    /// The transport has written bytes that are not flushed yet.
    pub(crate) flush_pending: bool,
    /// The driver stopped reading because `queue` is full.
    pub(crate) read_paused: bool,
    /// Messages were queued for the reader: the driver holds further input
    /// until the application comes back (see [`Shared::app_returned`]) or a short grace
    /// period passes, so that its replies go out before a close caused by later input.
    pub(crate) awaiting_app: bool,
    /// A read handle is alive.
    pub(crate) reader: bool,
    /// A write handle is alive.
    pub(crate) writer: bool,
    /// The driver task has finished (or was dropped by its runtime).
    pub(crate) driver_done: bool,
    pub(crate) recv_waker: Option<Waker>,
    pub(crate) send_waker: Option<Waker>,
    /// The task that last waited in `recv()`: its first send after taking a message is
    /// written at once.
    pub(crate) reader_task: Option<Waker>,
    /// A message was taken and no send has been written at once since.
    pub(crate) reply_due: bool,
    /// The background task's waker, which the timer wakes (see [`crate::dispatch`]).
    pub(crate) background: Option<Waker>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("state", &self.conn.state())
            .field("queued_messages", &self.queue.len())
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

impl Shared {
    /// Bytes queued for the transport: in the core and in the driver's write buffer.
    pub(crate) fn buffered(&self) -> usize {
        self.conn.buffered_output() + self.write_pending
    }

    /// Whether everything queued has been written and flushed (or never will be).
    pub(crate) fn is_flushed(&self) -> bool {
        self.driver_done
            || (self.conn.buffered_output() == 0 && self.write_pending == 0 && !self.flush_pending)
    }

    /// Moves the core's events to where the handles find them.
    ///
    /// When the peer's violation was found behind messages still in the core, the rest is
    /// left there for the reader to take ([`Shared::take_deferred`]): the core then fails
    /// the connection only after the application has seen them, so its replies go out
    /// before the close frame. Without a reader everything is taken (and dropped) at once.
    pub(crate) fn pump_events(&mut self) {
        if !self.conn.has_events() {
            return;
        }
        // The handshake's own event always comes before any message, so it is taken even
        // then.
        while !(self.reader && self.handshake_taken && self.conn.has_deferred_failure()) {
            let Some(event) = self.conn.poll_event() else {
                break;
            };
            if let Some(message) = self.on_event(event) {
                self.push(message);
            }
        }
        if self.reader && self.conn.has_deferred_failure() {
            // The reader has events to take from the core.
            wake(&mut self.recv_waker);
        }
    }

    /// Takes the next message straight from the core while a failure is deferred there;
    /// taking past the last one fails the connection.
    pub(crate) fn take_deferred(&mut self) -> Option<Message> {
        while self.conn.has_deferred_failure() {
            let event = self.conn.poll_event()?;
            // Taking events may have queued a close frame: let the driver write it.
            self.kick = true;
            if let Some(message) = self.on_event(event) {
                return Some(message);
            }
        }
        None
    }

    /// Handles one event; returns it as a message for the reader, if it is one.
    fn on_event(&mut self, event: Event) -> Option<Message> {
        match event {
            Event::Message(m) => return Some(m),
            Event::Ping(p) => return Some(Message::Ping(p)),
            Event::Pong(p) => return Some(Message::Pong(p)),
            Event::Request(r) => {
                self.handshake_taken = true;
                self.request = Some(r);
                wake(&mut self.recv_waker);
            }
            Event::Connected(r) => {
                self.handshake_taken = true;
                self.response = Some(r);
                wake(&mut self.recv_waker);
            }
            Event::Closed(reason) => self.end(reason),
            // Fragments are never produced: the adapters turn `stream_fragments` off.
            _ => {}
        }
        None
    }

    fn push(&mut self, message: Message) {
        if !self.reader {
            return;
        }
        self.queue_bytes += message.len() + MESSAGE_OVERHEAD;
        self.queue.push_back(message);
        // Whether or not the reader is waiting yet: its reply to this message must get a
        // chance to go out before anything later input causes.
        self.awaiting_app = true;
        wake(&mut self.recv_waker);
    }

    /// The application is back after taking messages: it queued a send, or waits in
    /// `recv` again, with nothing left to read. The driver may take in more input.
    pub(crate) fn app_returned(&mut self) {
        if self.awaiting_app && self.queue.is_empty() {
            self.awaiting_app = false;
            self.kick = true;
        }
    }

    /// Records the terminal event and wakes every waiter.
    pub(crate) fn end(&mut self, reason: CloseReason) {
        self.ended = true;
        let io = self.io_error.take();
        match reason {
            CloseReason::HandshakeFailed(e) => {
                self.error = Some(io.map_or(Error::Handshake(e), Error::Io));
            }
            reason => {
                self.error = Error::from_close(&reason, io);
                self.close_reason = Some(Arc::new(reason));
            }
        }
        self.wake_handles();
    }

    pub(crate) fn wake_handles(&mut self) {
        wake(&mut self.recv_waker);
        wake(&mut self.send_waker);
    }

    /// Takes a received message, accounting for it; wakes a paused driver once the queue
    /// has room again.
    pub(crate) fn pop(&mut self) -> Option<Message> {
        let message = self.queue.pop_front()?;
        self.queue_bytes -= message.len() + MESSAGE_OVERHEAD;
        if self.read_paused && self.queue_bytes <= self.max_queue {
            self.read_paused = false;
            self.kick = true;
        }
        Some(message)
    }

    /// Drops every queued message (the reader is gone).
    pub(crate) fn clear_queue(&mut self) {
        self.queue = Queue::default();
        self.queue_bytes = 0;
        self.awaiting_app = false;
    }
}

/// Stores `waker` in `slot` unless an equivalent one is already there.
pub(crate) fn set_waker(slot: &mut Option<Waker>, waker: &Waker) {
    match slot {
        Some(w) if w.will_wake(waker) => {}
        _ => *slot = Some(waker.clone()),
    }
}

/// Wakes and clears `slot`.
pub(crate) fn wake(slot: &mut Option<Waker>) {
    if let Some(w) = slot.take() {
        w.wake();
    }
}
