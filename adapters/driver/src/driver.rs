//! Moving bytes between a transport and a `tether_core::Connection`, from whichever task
//! drives the connection (see [`crate::dispatch`]), and the background task.

use crate::pool;
use crate::runtime::{Runtime, Timer, Transport};
use crate::shared::{Inner, Shared, wake};
use bytes::BytesMut;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tether_core::{CloseCode, State, Transmit};

/// Rounds of work (reads, writes, timer firings) before the driver yields to its executor.
const BUDGET: usize = 32;

/// How long the driver holds further input after handing messages to a waiting reader,
/// if the application neither replies nor comes back to `recv` (see `Shared::awaiting_app`).
const REPLY_GRACE: Duration = Duration::from_millis(100);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Shutdown {
    /// The connection runs.
    No,
    /// The core asked for the transport to be closed once the write buffer is written.
    Requested,
    /// The write side is shut down; the rest of the input is read and discarded until
    /// end of stream, so that closing the socket does not reset the connection.
    Sent,
}

/// Buffers are parked in the per-thread pool (see [`pool`]) whenever the driver waits. A
/// read buffer that messages still held by the application point into cannot be; it is
/// kept for reuse and let go this long after the driver last waited with it.
const HOLD_SHARED_BUFFER: Duration = Duration::from_secs(1);

/// With less spare capacity than this (and the buffer not reclaimable), a new read buffer
/// is taken before reading.
const MIN_READ_SPARE: usize = 4096;

/// How long the driver keeps a finished connection's transport to write out the last bytes
/// and see the peer's end of stream, when the close timeout is off.
const DEFAULT_LINGER: Duration = Duration::from_secs(10);

pub(crate) enum Step {
    /// Something happened; go round again.
    Again,
    /// Nothing to do until a waker fires.
    Wait,
    /// The connection is finished; drop the transport.
    Done,
}

/// The I/O side of one connection: the transport, its buffers and the timer. It lives in
/// the connection's shared state ([`Shared::io`]) and is driven, under that lock, by
/// whichever task [`Inner::drive`] runs on: the task waiting in `recv()`, a sender, or the
/// background task (see [`crate::dispatch`]). Reads a buffer and feeds the core, writes
/// what the core queues (all queued frames coalesced into one buffer), fires the core's
/// timers, and moves events to the application's queue.
pub(crate) struct Driver<T: ?Sized> {
    timer: Option<Pin<Box<dyn Timer>>>,
    timer_at: Option<Instant>,
    /// The timer was polled (and returned `Pending`) with the background task's waker
    /// since it was last set: it will wake that task when it fires.
    timer_registered: bool,
    /// The timer fired in this step: the caller reads the clock again.
    timer_fired: bool,
    read_buf: BytesMut,
    read_size: usize,
    write_buf: Vec<u8>,
    write_pos: usize,
    needs_flush: bool,
    shutdown: Shutdown,
    /// Once the core is finished: the moment to give up on the transport.
    linger: Option<Instant>,
    /// While input is held for the application: the moment to stop holding it.
    reply_grace: Option<Instant>,
    /// While a read buffer shared with the application's messages is kept: the moment to
    /// let it go.
    release_at: Option<Instant>,
    eof: bool,
    io: T,
}

impl<T: Transport> Driver<T> {
    pub(crate) fn new(io: T, read_size: usize) -> Self {
        Self {
            timer: None,
            timer_at: None,
            timer_registered: false,
            timer_fired: false,
            read_buf: BytesMut::new(),
            read_size: read_size.max(1),
            write_buf: Vec::new(),
            write_pos: 0,
            needs_flush: false,
            shutdown: Shutdown::No,
            linger: None,
            reply_grace: None,
            release_at: None,
            eof: false,
            io,
        }
    }
}

impl Driver<dyn Transport> {
    /// One round of work, under the connection's lock. `cx` carries the connection's
    /// [`IoWaker`](crate::dispatch::IoWaker).
    pub(crate) fn step(
        &mut self,
        sh: &mut Shared,
        runtime: &dyn Runtime,
        now: Instant,
        cx: &mut Context<'_>,
    ) -> Step {
        if self.release_at.is_some_and(|at| at <= now) {
            // Quiet for a while: let go of a read buffer still shared with messages.
            self.release_at = None;
            if self.read_buf.is_empty() {
                self.read_buf = BytesMut::new();
            }
        }
        if sh.conn.poll_timeout().is_some_and(|at| at <= now) {
            sh.conn.handle_timeout(now);
        }
        if !sh.reader && !sh.writer {
            // Every handle is gone: finish politely, or drop a half-open handshake.
            match sh.conn.state() {
                State::Open => {
                    let _ = sh.conn.close(now, CloseCode::NORMAL, "");
                }
                State::Handshake | State::Accepting => return Step::Done,
                State::Closing | State::Closed => {}
            }
        }
        sh.pump_events();
        // Whether the write buffer still held bytes of an earlier round, so that what the
        // core queued since could not be taken yet.
        let behind = self.write_pos < self.write_buf.len();
        if !behind && self.shutdown == Shutdown::No {
            self.write_buf.clear();
            self.write_pos = 0;
            if self.write_buf.capacity() == 0 && sh.conn.buffered_output() > 0 {
                self.write_buf = pool::take_write();
            }
            while let Some(t) = sh.conn.poll_transmit(&mut self.write_buf) {
                if t == Transmit::Shutdown {
                    self.shutdown = Shutdown::Requested;
                    let linger = sh.conn.config().timeouts.close.unwrap_or(DEFAULT_LINGER);
                    self.linger = Some(now + linger);
                    break;
                }
            }
        }
        sh.read_paused = sh.reader && sh.queue_bytes > sh.max_queue;
        // A slow application is not a dead peer: no keep-alive verdict while paused.
        sh.conn.set_input_paused(now, sh.read_paused);
        if !sh.awaiting_app || self.reply_grace.is_some_and(|at| at <= now) {
            sh.awaiting_app = false;
            self.reply_grace = None;
        } else if self.reply_grace.is_none() {
            self.reply_grace = Some(now + REPLY_GRACE);
        }
        let hold = sh.read_paused || sh.awaiting_app;
        let read_allowed = !self.eof && (!hold || self.shutdown != Shutdown::No);
        if self.linger.is_some_and(|at| at <= now) {
            return Step::Done;
        }

        let mut again = false;

        // Write everything the core handed out, in as few writes as the transport allows.
        // Writing needs no further round: more output can only come from the application,
        // which drives the connection or wakes its driver.
        while self.write_pos < self.write_buf.len() {
            match self.io.poll_write(cx, &self.write_buf[self.write_pos..]) {
                Poll::Ready(Ok(0)) => return self.fail(sh, now, io::ErrorKind::WriteZero.into()),
                Poll::Ready(Ok(n)) => {
                    self.write_pos += n;
                    self.needs_flush = true;
                }
                Poll::Ready(Err(e)) => return self.fail(sh, now, e),
                Poll::Pending => break,
            }
        }
        let written = self.write_pos == self.write_buf.len();
        if written && self.needs_flush {
            match self.io.poll_flush(cx) {
                Poll::Ready(Ok(())) => self.needs_flush = false,
                Poll::Ready(Err(e)) => return self.fail(sh, now, e),
                Poll::Pending => {}
            }
        }
        // Tell waiting senders and flushers at once.
        self.publish_write_state(sh);
        if behind && written && self.shutdown == Shutdown::No {
            // The earlier bytes are out: go round to take what the core queued meanwhile
            // (nothing else would wake the driver for it).
            again = true;
        }
        if written && !self.needs_flush && self.shutdown == Shutdown::Requested {
            // An error here changes nothing: the connection is over either way.
            if self.io.poll_shutdown(cx).is_ready() {
                self.shutdown = Shutdown::Sent;
                again = true;
            }
        }
        if self.shutdown == Shutdown::Sent && self.eof {
            return Step::Done;
        }

        if read_allowed {
            self.prepare_read_buf();
            match self.io.poll_read(cx, &mut self.read_buf) {
                Poll::Ready(Ok(0)) => {
                    self.eof = true;
                    sh.conn.handle_eof(now);
                    again = true;
                }
                Poll::Ready(Ok(_)) => {
                    sh.conn.handle_input_buf(now, &mut self.read_buf);
                    sh.pump_events();
                    // Usually the read brought messages for the reader and nothing to
                    // send: hand them over and wait, rather than go round again only to
                    // find input held for the reader.
                    let handed_over = sh.awaiting_app
                        && sh.conn.state() == State::Open
                        && sh.conn.buffered_output() == 0
                        && !sh.conn.has_deferred_failure()
                        && sh.queue_bytes <= sh.max_queue;
                    if handed_over {
                        self.reply_grace.get_or_insert(now + REPLY_GRACE);
                    } else {
                        again = true;
                    }
                }
                Poll::Ready(Err(e)) => return self.fail(sh, now, e),
                Poll::Pending => {}
            }
        }

        if again {
            // The next round polls the timer, if it is still needed then.
            return Step::Again;
        }
        // Nothing more to do for now: the buffers go back to the pool, the timer is armed.
        self.park_buffers(now);
        let deadline = earliest(
            earliest(sh.conn.poll_timeout(), self.linger),
            earliest(self.reply_grace, self.release_at),
        );
        match deadline {
            Some(at) if at <= now => again = true,
            Some(at) => {
                let timer = match &mut self.timer {
                    Some(t) => {
                        // A later deadline (the keep-alive moves with every read) keeps
                        // the armed timer: it wakes early once and is re-armed then.
                        if self.timer_at.is_none_or(|t| at < t || t <= now) {
                            t.as_mut().reset(at);
                            self.timer_at = Some(at);
                            self.timer_registered = false;
                        }
                        t
                    }
                    None => {
                        self.timer_at = Some(at);
                        self.timer_registered = false;
                        self.timer.insert(runtime.timer(at))
                    }
                };
                // A timer already registered for this deadline need not be polled again.
                // It wakes the background task, whoever drives: its deadlines
                // (keep-alive, timeouts) must be kept even while a task that holds a
                // `recv()` future does not poll it. Until the background task has been
                // polled once, the connection's waker stands in (and the timer is polled
                // again at the next step).
                if !self.timer_registered {
                    let background = sh.background.as_ref().map(Context::from_waker);
                    let registered = background.is_some();
                    let expired = match background {
                        Some(mut bg) => timer.as_mut().poll_expired(&mut bg),
                        None => timer.as_mut().poll_expired(cx),
                    };
                    if expired.is_ready() {
                        self.timer_fired = true;
                        again = true;
                    } else {
                        self.timer_registered = registered;
                    }
                }
            }
            None => {}
        }

        if again { Step::Again } else { Step::Wait }
    }

    /// The transport failed: report the error, end the connection, drop the transport.
    fn fail(&mut self, sh: &mut Shared, now: Instant, error: io::Error) -> Step {
        if !sh.ended {
            sh.io_error = Some(error);
            sh.conn.handle_eof(now);
            sh.pump_events();
        }
        Step::Done
    }

    /// Publishes how many bytes wait in the write buffer and whether a flush is pending,
    /// waking the application's senders when that changed.
    fn publish_write_state(&self, sh: &mut crate::shared::Shared) {
        let pending = self.write_buf.len() - self.write_pos;
        if pending != sh.write_pending || self.needs_flush != sh.flush_pending {
            sh.write_pending = pending;
            sh.flush_pending = self.needs_flush;
            wake(&mut sh.send_waker);
        }
    }

    /// Makes room to read `read_size` bytes: a buffer from the pool, or the current one's
    /// whole capacity back once the application dropped the messages that pointed into it,
    /// or (when neither and little room is left) a new buffer.
    fn prepare_read_buf(&mut self) {
        if self.read_buf.capacity() == 0 {
            self.read_buf = pool::take_read(self.read_size);
            self.release_at = None;
            return;
        }
        let spare = self.read_buf.capacity() - self.read_buf.len();
        if spare < self.read_size
            && !self.read_buf.try_reclaim(self.read_size)
            && spare < MIN_READ_SPARE.min(self.read_size)
        {
            self.read_buf.reserve(self.read_size);
        }
        self.release_at = None;
    }

    /// Parks the buffers in the per-thread pool when they are empty, so that a waiting
    /// connection holds none. A read buffer the application's messages still point into is
    /// kept (until [`HOLD_SHARED_BUFFER`] passes) to be reclaimed at the next read.
    fn park_buffers(&mut self, now: Instant) {
        if self.read_buf.capacity() > 0 {
            let buf = std::mem::take(&mut self.read_buf);
            if let Some(kept) = pool::park_read(buf, self.read_size) {
                self.read_buf = kept;
                if self.read_buf.is_empty() && self.release_at.is_none() {
                    self.release_at = Some(now + HOLD_SHARED_BUFFER);
                }
            }
        }
        if self.write_pos == self.write_buf.len() && self.write_buf.capacity() > 0 {
            pool::park_write(std::mem::take(&mut self.write_buf));
            self.write_pos = 0;
        }
    }
}

/// The earlier of two optional deadlines.
fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, None) => a,
        (None, b) => b,
    }
}

/// Ends the connection's I/O: its buffers go back to the pool, the transport is dropped,
/// and the handles learn that nobody will move bytes any more. Runs when a step returns
/// [`Step::Done`], or when the runtime drops the background task.
pub(crate) fn finish(sh: &mut Shared, now: Instant) {
    if let Some(mut driver) = sh.io.take() {
        // (A buffer messages still point into is simply let go.)
        let _ = pool::park_read(std::mem::take(&mut driver.read_buf), driver.read_size);
        pool::park_write(std::mem::take(&mut driver.write_buf));
    }
    sh.driver_done = true;
    if !sh.ended {
        sh.conn.handle_eof(now);
        sh.pump_events();
    }
    if !sh.ended {
        sh.ended = true;
        sh.error.get_or_insert(crate::Error::Abnormal);
    }
    sh.wake_handles();
}

impl Inner {
    /// Drives the connection from the calling task, under its lock: rounds of reading,
    /// writing and timers until nothing is left to do (the transport and the timer then
    /// wake the connection's [`IoWaker`](crate::dispatch::IoWaker)), or the budget is
    /// spent (the designated driver is then woken to carry on). Returns `true` once the
    /// connection's I/O is finished.
    pub(crate) fn drive(&self, sh: &mut Shared) -> bool {
        self.drive_at(sh, None)
    }

    /// [`Inner::drive`], with the time if the caller has just read the clock.
    pub(crate) fn drive_at(&self, sh: &mut Shared, now: Option<Instant>) -> bool {
        sh.kick = false;
        let Some(mut driver) = sh.io.take() else {
            return true;
        };
        // The events so far are handled now, whoever was woken for them.
        let seen = self.io_waker.driving();
        sh.settled = None;
        let mut cx = Context::from_waker(&self.waker);
        let runtime = &*self.runtime;
        let mut now = now.unwrap_or_else(|| runtime.now());
        for _ in 0..BUDGET {
            match driver.step(sh, runtime, now, &mut cx) {
                Step::Again => {
                    if std::mem::take(&mut driver.timer_fired) {
                        now = runtime.now();
                    }
                }
                Step::Wait => {
                    sh.io = Some(driver);
                    sh.settled = Some(seen);
                    return false;
                }
                Step::Done => {
                    sh.io = Some(driver);
                    finish(sh, now);
                    // Its work is over: let the background task end.
                    self.io_waker.wake_background();
                    return true;
                }
            }
        }
        sh.io = Some(driver);
        // Let other tasks run; the designated driver comes back to it.
        self.waker.wake_by_ref();
        false
    }

    /// Whether driving now could do anything: not when the last drive found nothing to do,
    /// no wake-up came since, and the application created no work.
    pub(crate) fn needs_drive(&self, sh: &Shared) -> bool {
        sh.kick || sh.settled != Some(self.io_waker.events())
    }

    /// Hands work the application created (a queued message, a close, room in the
    /// receive queue) to the designated driver, without driving from this task.
    pub(crate) fn kick(&self, sh: &mut Shared) {
        if std::mem::take(&mut sh.kick) {
            self.waker.wake_by_ref();
        }
    }
}

/// The connection's background task: it drives the connection whenever no task waits in
/// `recv()`, so that pings, pongs, timeouts and queued writes keep going while the
/// application does something else. It ends once the connection's I/O is finished.
pub(crate) struct Background {
    pub(crate) inner: Arc<Inner>,
}

impl Future for Background {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let inner = &self.inner;
        inner.io_waker.set_background(cx.waker());
        let mut sh = inner.lock();
        if sh
            .background
            .as_ref()
            .is_none_or(|w| !w.will_wake(cx.waker()))
        {
            sh.background = Some(cx.waker().clone());
            if let Some(driver) = sh.io.as_mut() {
                // Registered with another waker: poll it again with this one.
                driver.timer_registered = false;
            }
        }
        if inner.drive(&mut sh) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

impl Drop for Background {
    /// When the runtime drops the task (it shuts down) the connection cannot go on: the
    /// handles must not wait for it.
    fn drop(&mut self) {
        let mut sh = self.inner.lock();
        if sh.io.is_some() {
            let now = self.inner.runtime.now();
            finish(&mut sh, now);
        }
    }
}
