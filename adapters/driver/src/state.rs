//! The per-connection state behind the connection's lock ([`Shared`]): the core, the
//! transport and its I/O state, and what the driver and the application's handles tell
//! each other ([`App`], with the rare parts in [`Cold`]).

use crate::error::Error;
use crate::io::Io;
use crate::runtime::Transport;
use std::collections::VecDeque;
use std::io;
use std::sync::Arc;
use std::task::Waker;
use std::time::Instant;
use tether_core::{CloseReason, Connection, Event, Message, Request, Response, State};

/// [`App::settled`] when the last drive did not settle: odd, so never a count of events
/// (see `WakeState::events`).
pub(crate) const NOT_SETTLED: u32 = 1;

/// Bytes counted for each message waiting for the application on top of its payload, so
/// that a flood of empty pings or pongs is bounded too.
const MESSAGE_OVERHEAD: usize = 64;

/// Everything behind the connection's lock.
pub(crate) struct Shared {
    pub(crate) conn: Connection,
    /// The transport; `None` once the connection's I/O is finished.
    pub(crate) transport: Option<Box<dyn Transport>>,
    /// The transport's state, its buffers and its deadlines.
    pub(crate) io: Io,
    /// What the handles and the driver tell each other.
    pub(crate) app: App,
}

/// What the driver and the handles tell each other: where the connection is in its life
/// ([`Phase`]), its read and write handles ([`Reader`], [`Writer`]), the wakers of the
/// tasks waiting on it, and (in [`Cold`]) the handshake's result and how it ended.
pub(crate) struct App {
    /// The application created work for the driver: the caller wakes it after unlocking.
    pub(crate) kick: bool,
    /// The count of wake-ups seen by the last drive, if it found nothing more to do, or
    /// [`NOT_SETTLED`] (see [`crate::shared::Inner::needs_drive`]).
    pub(crate) settled: u32,
    /// Sends wait while `buffered()` is at least this (4 bytes: the idle state is small).
    pub(crate) hwm: u32,
    /// What only the start and the end of a connection have (see [`Cold`]).
    pub(crate) cold: Option<Box<Cold>>,
    /// A sender or flusher waiting for room or for the write to finish.
    pub(crate) send_waker: Option<Waker>,
    /// The task that last waited in `recv()` (or for the handshake): woken by a message
    /// that another task's drive brings while it waits ([`Reader::Waiting`]); its first
    /// send after taking a message is written at once.
    pub(crate) reader_task: Option<Waker>,
    /// Whether a read handle is alive, and whether its task waits (see [`Reader`]).
    pub(crate) reader: Reader,
    /// Where the connection is in its life, as the handles see it (see [`Phase`]).
    pub(crate) phase: Phase,
    /// The driver stopped reading because messages pile up unread (recomputed by every
    /// round, see `Shared::pause_input`).
    pub(crate) read_paused: bool,
    /// Whether a write handle is alive, and whether it closes (see [`Writer`]).
    pub(crate) writer: Writer,
    /// A message was taken and no send has been written at once since: the reader's next
    /// send is its reply, written at once (see `socket::write_or_kick`).
    pub(crate) reply_due: bool,
}

/// The write side, as the driver sees it:
///
/// ```text
///            Sink::poll_close (the close frame is queued once)
///   Alive ───────────────────────────────────────▶ Closing
///     │                                               │
///     └──────── the write handle is dropped ──▶ Gone ◀─┘
/// ```
///
/// With neither a reader nor a writer the core decides what is left to do
/// ([`Connection::abandon`](tether_core::Connection::abandon)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Writer {
    /// A write handle is alive.
    Alive,
    /// `Sink::poll_close` queued a close frame and waits for it to be flushed.
    Closing,
    /// The write handle is gone (a [`crate::Sender`] does not count: it keeps no
    /// connection open).
    Gone,
}

/// The read side, as the driver sees it:
///
/// ```text
///              reader_waits: recv() (or the handshake) found nothing
///        ┌───────────────────────────────────────────────────┐
///        │                                                   ▼
///      Idle ◀──────────────────────────────────────────── Waiting
///        │    wake_reader: a drive brought a message, the     │
///        │    handshake's event or the end (the task is woken) │
///        │    reader_drives: its task drives the connection    │
///        │                                                    │
///        └──────────────── reader_gone ──────────▶ Gone ◀─────┘
/// ```
///
/// With no reader every message is dropped as it comes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reader {
    /// A read handle is alive; its task is not waiting for a message (it is busy, or
    /// drives the connection itself).
    Idle,
    /// [`App::reader_task`] waits for a message and does not drive the connection: a
    /// message that another task's drive brings must wake it.
    Waiting,
    /// The read handle is gone.
    Gone,
}

/// Where a connection is in its life, as its handles see it. It only moves forward:
///
/// ```text
///             handshake's event        terminal event seen       I/O finished
///             (Request, Connected)     (Shared::end)             (Shared::finish)
///  Handshake ─────────────────▶ Running ─────────────────▶ Ended ─────────────────▶ Finished
///      │                                                     ▲                         ▲
///      └── the handshake failed (Shared::end) ───────────────┘                         │
///  Handshake or Running ── I/O finished first (transport error, runtime gone): the end ─┘
///                          is recorded then (1006, or the transport's error)
/// ```
///
/// `Handshake`: the opening handshake's event (a server's request, a client's response)
/// has not come yet; it comes before any message (a connection made open starts at
/// `Running`). `Ended`: the handles report the end (after the messages before it); the
/// driver may still write the last bytes and wait for the peer's end of stream.
/// `Finished`: nobody moves bytes any more; sends and flushes stop waiting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Phase {
    /// The opening handshake's event has not been seen yet.
    Handshake,
    /// The connection runs.
    Running,
    /// The terminal event was seen.
    Ended,
    /// The connection's I/O is finished (or its driver was dropped by the runtime); it has
    /// ended too.
    Finished,
}

/// What a connection has only at its start (the handshake's event) or once it is over
/// (the error, how it ended, messages set aside): boxed, and let go in between, so that an
/// open connection's state stays small.
#[derive(Default)]
pub(crate) struct Cold {
    /// The terminal error, handed to the reader once after the messages before it.
    pub(crate) error: Option<Error>,
    /// A transport error, reported instead of the core's "abnormal closure".
    pub(crate) io_error: Option<io::Error>,
    /// How the connection ended, once it has.
    pub(crate) close_reason: Option<Arc<CloseReason>>,
    /// The handshake's event, waiting for `accept` or `client`.
    pub(crate) handshake: Option<Handshake>,
    /// Messages the connection delivered before it ended and the application has not
    /// taken yet (they leave the core so that its end can be reported at once).
    pub(crate) leftover: VecDeque<Message>,
    /// Once the core is finished: the moment the driver gives up on the transport.
    pub(crate) linger: Option<Instant>,
    /// Tasks waiting in [`crate::Sender::closed`] for the connection's end.
    pub(crate) closed_waiters: Vec<Waker>,
    /// Tasks waiting in [`crate::Sender::send`] for room below the high-water mark
    /// (a [`crate::WriteHalf`] waits in [`App::send_waker`]).
    pub(crate) send_waiters: Vec<Waker>,
}

impl Cold {
    fn is_empty(&self) -> bool {
        self.error.is_none()
            && self.io_error.is_none()
            && self.close_reason.is_none()
            && self.handshake.is_none()
            && self.leftover.is_empty()
            && self.linger.is_none()
            && self.closed_waiters.is_empty()
            && self.send_waiters.is_empty()
    }
}

/// The opening handshake's result, for `accept` or `client`.
pub(crate) enum Handshake {
    Request(Box<Request>),
    Response(Box<Response>),
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("state", &self.conn.state())
            .field("pending_messages", &self.pending_messages())
            .field("phase", &self.app.phase)
            .finish_non_exhaustive()
    }
}

impl Shared {
    /// Bytes queued for the transport: in the core and in the driver's write buffer.
    pub(crate) fn buffered(&self) -> usize {
        self.conn.buffered_output() + self.io.unwritten()
    }

    /// Whether the bytes queued for the transport reach the high-water mark: sends wait
    /// (or are refused by `try_send`), and the driver stops reading.
    pub(crate) fn output_full(&self) -> bool {
        let buffered = self.buffered();
        buffered > 0 && buffered >= self.app.hwm as usize
    }

    /// Whether everything queued has been written and flushed (or never will be).
    pub(crate) fn is_flushed(&self) -> bool {
        self.app.driver_done()
            || (self.conn.buffered_output() == 0
                && self.io.unwritten() == 0
                && !self.io.needs_flush())
    }

    /// Messages waiting for the application.
    pub(crate) fn pending_messages(&self) -> usize {
        self.conn.pending_events().0 + self.app.cold.as_ref().map_or(0, |c| c.leftover.len())
    }

    /// Whether the messages waiting for the application take more room than it may have
    /// (the driver then stops reading).
    pub(crate) fn too_many_pending(&self) -> bool {
        let (events, bytes) = self.conn.pending_events();
        // Messages wait in the core until the application takes them. The driver stops
        // reading while they leave less room than one more message of the largest size,
        // so that a slow application pushes back on the peer instead of failing the
        // connection with 1009.
        let limits = &self.conn.config().limits;
        let max_pending = limits
            .max_buffered_input
            .saturating_sub(limits.max_message_size.saturating_add(16));
        bytes + events * MESSAGE_OVERHEAD > max_pending
    }

    /// Handles the core's events that are not for the reader, after the driver gave the
    /// core input or time: the handshake's event, and, once the connection is over, its
    /// end (the messages before it are set aside for the reader). Without a reader every
    /// message is dropped. Returns whether messages wait for the reader.
    #[inline]
    pub(crate) fn pump(&mut self) -> bool {
        if !self.conn.has_events() {
            return false;
        }
        self.pump_events()
    }

    /// [`Shared::pump`] with events to handle (out of line: most calls find none).
    #[inline(never)]
    fn pump_events(&mut self) -> bool {
        if self.app.phase == Phase::Handshake {
            // The handshake's event comes before any message.
            while self.app.phase == Phase::Handshake {
                let Some(event) = self.conn.poll_event() else {
                    return false;
                };
                self.on_event(event);
            }
        }
        if !self.app.has_reader() {
            while let Some(event) = self.conn.poll_event() {
                self.on_event(event);
            }
            return false;
        }
        if self.conn.state() != State::Open && !self.conn.has_deferred_end() {
            // Closing or over: the end is reported as soon as it comes, the messages before
            // it stay for the reader.
            while let Some(event) = self.conn.poll_event() {
                if let Some(message) = self.on_event(event) {
                    self.app.cold().leftover.push_back(message);
                }
            }
        }
        let waiting = self.pending_messages() > 0;
        if waiting {
            self.app.wake_reader();
        }
        waiting
    }

    /// Takes the next message for the reader: one set aside, else the core's next event.
    /// Taking events may make the connection fail (a violation found behind them): the
    /// driver is then kicked to write the close frame.
    ///
    /// Coming back with nothing left to take ends the core's hold on input for the
    /// application's reply ([`Connection::input_held`](tether_core::Connection::input_held)):
    /// the driver is kicked to read again.
    pub(crate) fn next_message(&mut self) -> Option<Message> {
        if let Some(message) = self.app.cold.as_mut().and_then(|c| c.leftover.pop_front()) {
            return Some(message);
        }
        let held = self.conn.input_held();
        loop {
            let deferred = self.conn.has_deferred_end();
            let event = self.conn.poll_event();
            if deferred {
                self.app.kick = true;
            }
            let Some(event) = event else {
                if held && !self.conn.input_held() {
                    self.app.kick = true;
                }
                return None;
            };
            if let Some(message) = self.on_event(event) {
                if self.app.read_paused && !self.too_many_pending() {
                    // Room again: let the driver read.
                    self.app.kick = true;
                }
                return Some(message);
            }
        }
    }

    /// Handles one event; returns it as a message for the reader, if it is one.
    fn on_event(&mut self, event: Event) -> Option<Message> {
        match event {
            Event::Message(m) => return self.app.has_reader().then_some(m),
            Event::Ping(p) => return self.app.has_reader().then_some(Message::Ping(p)),
            Event::Pong(p) => return self.app.has_reader().then_some(Message::Pong(p)),
            Event::Request(r) => {
                self.app.phase = Phase::Running;
                self.app.cold().handshake = Some(Handshake::Request(r));
                self.app.wake_reader();
            }
            Event::Connected(r) => {
                self.app.phase = Phase::Running;
                self.app.cold().handshake = Some(Handshake::Response(r));
                self.app.wake_reader();
            }
            Event::Closed(reason) => self.end(reason),
            // Fragments are never produced: the adapters turn `stream_fragments` off.
            _ => {}
        }
        None
    }

    /// Records the terminal event and wakes every waiter.
    pub(crate) fn end(&mut self, reason: CloseReason) {
        let app = &mut self.app;
        app.ended();
        let cold = app.cold();
        let io = cold.io_error.take();
        match reason {
            CloseReason::HandshakeFailed(e) => {
                cold.error = Some(io.map_or_else(|| Error::from(e), Error::Io));
            }
            reason => {
                cold.error = Error::from_close(&reason, io);
                cold.close_reason = Some(Arc::new(reason));
            }
        }
        app.wake_handles();
    }

    /// Drops every message waiting for the reader (it is gone).
    pub(crate) fn clear_messages(&mut self) {
        if let Some(cold) = self.app.cold.as_mut() {
            cold.leftover = VecDeque::new();
        }
        // (Until `None`, which also ends the core's hold on input for the reader's reply.)
        while let Some(event) = self.conn.poll_event() {
            self.on_event(event);
        }
    }
}

impl App {
    /// Whether the terminal event was seen (or the driver is gone).
    #[inline]
    pub(crate) fn is_ended(&self) -> bool {
        self.phase >= Phase::Ended
    }

    /// Whether the connection's I/O is finished (or its driver was dropped by the runtime).
    #[inline]
    pub(crate) fn driver_done(&self) -> bool {
        self.phase == Phase::Finished
    }

    /// The terminal event was seen: [`Phase::Handshake`] or [`Phase::Running`] →
    /// [`Phase::Ended`].
    fn ended(&mut self) {
        if self.phase < Phase::Ended {
            self.phase = Phase::Ended;
        }
    }

    /// The connection's I/O is finished: → [`Phase::Finished`]. Call once its end is
    /// recorded.
    pub(crate) fn finished(&mut self) {
        self.phase = Phase::Finished;
    }

    /// Whether a write handle is alive (closing or not).
    #[inline]
    pub(crate) fn has_writer(&self) -> bool {
        self.writer != Writer::Gone
    }

    /// The rare state, made when first needed.
    pub(crate) fn cold(&mut self) -> &mut Cold {
        self.cold.get_or_insert_with(Default::default)
    }

    /// Lets go of the rare state once nothing is left in it.
    pub(crate) fn trim(&mut self) {
        if self.cold.as_ref().is_some_and(|c| c.is_empty()) {
            self.cold = None;
        }
    }

    /// Takes the terminal error, if it is there.
    pub(crate) fn take_error(&mut self) -> Option<Error> {
        let error = self.cold.as_mut()?.error.take();
        self.trim();
        error
    }

    /// Takes the handshake's event, if it is there.
    pub(crate) fn take_handshake(&mut self) -> Option<Handshake> {
        let handshake = self.cold.as_mut()?.handshake.take();
        self.trim();
        handshake
    }

    /// Once the core is finished: the moment the driver gives up on the transport.
    pub(crate) fn linger(&self) -> Option<Instant> {
        self.cold.as_ref()?.linger
    }

    /// How the connection ended, once it has.
    pub(crate) fn close_reason(&self) -> Option<Arc<CloseReason>> {
        self.cold.as_ref()?.close_reason.clone()
    }

    /// Wakes every task waiting on the connection: the reader, the senders, and those
    /// waiting for its end.
    pub(crate) fn wake_handles(&mut self) {
        self.wake_reader();
        self.wake_senders();
        if let Some(cold) = self.cold.as_mut() {
            cold.closed_waiters.drain(..).for_each(Waker::wake);
        }
        self.trim();
    }

    /// Wakes the tasks waiting for room to send or for the write to finish.
    #[inline(always)]
    pub(crate) fn wake_senders(&mut self) {
        if self.send_waker.is_some() || self.cold.is_some() {
            self.wake_waiting_senders();
        }
    }

    /// [`App::wake_senders`] with someone perhaps waiting (out of line: most writes have
    /// nobody to wake).
    #[inline(never)]
    fn wake_waiting_senders(&mut self) {
        wake(&mut self.send_waker);
        if let Some(cold) = self.cold.as_mut()
            && !cold.send_waiters.is_empty()
        {
            cold.send_waiters.drain(..).for_each(Waker::wake);
            self.trim();
        }
    }

    /// Whether a read handle is alive.
    #[inline]
    pub(crate) fn has_reader(&self) -> bool {
        self.reader != Reader::Gone
    }

    /// Wakes the reader if it waits for a message: [`Reader::Waiting`] → [`Reader::Idle`].
    pub(crate) fn wake_reader(&mut self) {
        if self.reader == Reader::Waiting {
            self.reader = Reader::Idle;
            if let Some(w) = &self.reader_task {
                w.wake_by_ref();
            }
        }
    }

    /// The task of `waker` waits for a message (or the handshake's event):
    /// [`Reader::Idle`] → [`Reader::Waiting`].
    pub(crate) fn reader_waits(&mut self, waker: &Waker) {
        set_waker(&mut self.reader_task, waker);
        if self.reader == Reader::Idle {
            self.reader = Reader::Waiting;
        }
    }

    /// The reader's task drives the connection itself: the messages its own drive brings
    /// need no wake-up. [`Reader::Waiting`] → [`Reader::Idle`].
    #[inline]
    pub(crate) fn reader_drives(&mut self) {
        if self.reader == Reader::Waiting {
            self.reader = Reader::Idle;
        }
    }

    /// The read handle is dropped: → [`Reader::Gone`].
    pub(crate) fn reader_gone(&mut self) {
        self.reader = Reader::Gone;
        self.reader_task = None;
    }
}

/// Stores `waker` in `slot` unless an equivalent one is already there.
pub(crate) fn set_waker(slot: &mut Option<Waker>, waker: &Waker) {
    match slot {
        Some(w) if w.will_wake(waker) => {}
        _ => *slot = Some(waker.clone()),
    }
}

/// Registers `waker` in `list` unless an equivalent one is already there.
pub(crate) fn add_waiter(list: &mut Vec<Waker>, waker: &Waker) {
    if !list.iter().any(|w| w.will_wake(waker)) {
        list.push(waker.clone());
    }
}

/// Wakes and clears `slot`.
pub(crate) fn wake(slot: &mut Option<Waker>) {
    if let Some(w) = slot.take() {
        w.wake();
    }
}
