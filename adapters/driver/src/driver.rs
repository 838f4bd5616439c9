//! Moving bytes between a transport and a `tether_core::Connection`, from whichever task
//! drives the connection (see [`crate::dispatch`]), and the background task.

use crate::dispatch::BACKGROUND_LINGER;
use crate::pool::{self, Buffers};
use crate::shared::{Inner, NOT_SETTLED, Shared};
use crate::timers::{self, Rt};
use bytes::BytesMut;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};
use tether_core::{CloseCode, State, Transmit};

/// Rounds of work (reads, writes, timer firings) before the driver yields to its executor.
const BUDGET: usize = 32;

/// How long the driver holds further input after handing messages to a waiting reader,
/// if the application neither replies nor comes back to `recv` (see `App::awaiting_app`).
const REPLY_GRACE: Duration = Duration::from_millis(100);

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

/// A moment of the driver's in 8 bytes instead of the 16 of an `Option<Instant>`:
/// nanoseconds after the connection's start ([`tether_core::Connection::created_at`]), or
/// [`NEVER`]. Compared as integers, computed with saturating arithmetic.
pub(crate) type Nanos = u64;

/// No deadline.
pub(crate) const NEVER: Nanos = u64::MAX;

/// `d` in nanoseconds, saturating below [`NEVER`].
const fn nanos(d: Duration) -> Nanos {
    // (In `u64` arithmetic: cheaper than `as_nanos`' `u128`.)
    match d.as_secs().checked_mul(1_000_000_000) {
        Some(n) => {
            let n = n.saturating_add(d.subsec_nanos() as u64);
            if n == NEVER { NEVER - 1 } else { n }
        }
        None => NEVER - 1,
    }
}

/// `at` in nanoseconds after `base` (0 before it), saturating below [`NEVER`].
pub(crate) fn since(base: Instant, at: Instant) -> Nanos {
    nanos(at.saturating_duration_since(base))
}

/// The instant `t` after `base`; `None` for [`NEVER`] (or one too far to be an `Instant`).
fn instant(base: Instant, t: Nanos) -> Option<Instant> {
    if t == NEVER {
        return None;
    }
    base.checked_add(Duration::from_nanos(t))
}

/// `d` after `t`, saturating below [`NEVER`].
fn after(t: Nanos, d: Duration) -> Nanos {
    t.saturating_add(nanos(d)).min(NEVER - 1)
}

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

enum Step {
    /// Something happened; go round again.
    Again,
    /// Nothing to do until a waker fires.
    Wait,
    /// The connection is finished; drop the transport.
    Done,
}

/// What a drive left behind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Drive {
    /// Nothing more to do until the transport or the timer wakes the connection.
    Waiting,
    /// The budget is spent with work left: the caller wakes the driver (after unlocking).
    Busy,
    /// The connection's I/O is finished.
    Finished,
}

/// The I/O side of one connection: the transport's state, its buffers and its deadlines.
/// It lives in the connection's shared state and is driven, under its lock, by whichever
/// task [`Inner::drive`] runs on: the task waiting in `recv()`, a sender, or the
/// background task (see [`crate::dispatch`]). Reads a buffer and feeds the core, writes what the core
/// queues (all queued frames coalesced into one buffer), fires the core's timers, and
/// hands the handshake's events and the connection's end to the handles.
pub(crate) struct Io {
    /// The connection's own waker, which the transport is polled with (made at the first
    /// drive, dropped when the connection finishes: it holds the connection).
    waker: Option<Waker>,
    /// The deadline of the connection's entry in the timer queue (see [`crate::timers`]);
    /// [`NEVER`]: none. One at or before the present may be gone already.
    pub(crate) timer_at: Nanos,
    /// The read and write buffers, while bytes move (see [`pool`]).
    bufs: Option<Box<Buffers>>,
    /// How many bytes to read at once (4 bytes: the idle state is small).
    read_size: u32,
    needs_flush: bool,
    shutdown: Shutdown,
    eof: bool,
    /// The background task is the one driving (see [`Background`]).
    in_background: bool,
    /// While a background task exists: the moment it ends if it has had no work since.
    background_until: Nanos,
    /// While input is held for the application: the moment to stop holding it.
    reply_grace: Nanos,
    /// While a read buffer shared with the application's messages is kept: the moment to
    /// let it go.
    release_at: Nanos,
}

impl Io {
    pub(crate) fn new(read_size: usize) -> Self {
        Self {
            waker: None,
            timer_at: NEVER,
            bufs: None,
            read_size: u32::try_from(read_size.max(1)).unwrap_or(u32::MAX),
            needs_flush: false,
            shutdown: Shutdown::No,
            eof: false,
            in_background: false,
            background_until: NEVER,
            reply_grace: NEVER,
            release_at: NEVER,
        }
    }

    /// Bytes in the write buffer not yet written.
    pub(crate) fn unwritten(&self) -> usize {
        self.bufs.as_ref().map_or(0, |b| b.unwritten())
    }

    /// Whether the transport has written bytes that are not flushed yet.
    pub(crate) fn needs_flush(&self) -> bool {
        self.needs_flush
    }

    /// Something moved (bytes, a timer): a background task driving stays a while longer.
    fn worked(&mut self, t: Nanos) {
        if self.in_background {
            self.background_until = after(t, BACKGROUND_LINGER);
        }
    }

    /// Arms the connection's timer for `at`: its entry in the timer queue moves there,
    /// unless one at or before `at` is still to come (a later deadline than the armed one
    /// keeps it: an early wake-up is cheap, see [`Inner::on_timer`]). The queue's task
    /// wakes the background task, whoever drives: the deadlines (keep-alive, timeouts)
    /// must be kept even while a task that holds a `recv()` future does not poll it. `at`
    /// and `t` (now) count from `base`, the connection's start.
    #[inline]
    fn arm_timer(&mut self, inner: &Arc<Inner>, base: Instant, at: Nanos, t: Nanos) {
        if at >= self.timer_at && self.timer_at > t {
            return;
        }
        self.move_timer(inner, base, at);
    }

    /// [`Io::arm_timer`] when the entry moves (out of line: most calls keep it).
    #[inline(never)]
    fn move_timer(&mut self, inner: &Arc<Inner>, base: Instant, at: Nanos) {
        let Some(when) = instant(base, at) else {
            // (Too far to be an `Instant`: it never comes.)
            return;
        };
        inner.rt.schedule(inner, instant(base, self.timer_at), when);
        self.timer_at = at;
    }

    /// Makes room to read `read_size` bytes and returns the read buffer: one from the
    /// pool, or the current one's whole capacity back once the application dropped the
    /// messages that pointed into it, or (when neither and little room is left) a new one.
    fn prepare_read_buf(&mut self) -> &mut BytesMut {
        self.release_at = NEVER;
        let size = self.read_size as usize;
        let read = &mut self.bufs.get_or_insert_with(pool::take).read;
        if read.capacity() == 0 {
            *read = BytesMut::with_capacity(size);
            return read;
        }
        let spare = read.capacity() - read.len();
        if spare < size && !read.try_reclaim(size) && spare < MIN_READ_SPARE.min(size) {
            read.reserve(size);
        }
        read
    }

    /// Parks the buffers in the per-thread pool when they are empty, so that a waiting
    /// connection holds none. A read buffer the application's messages still point into is
    /// kept (until [`HOLD_SHARED_BUFFER`] passes) to be reclaimed at the next read.
    fn park_buffers(&mut self, t: Nanos) {
        let Some(bufs) = self.bufs.take() else {
            return;
        };
        match pool::park(bufs, self.read_size as usize) {
            Some(kept) => {
                let shared = kept.read.is_empty() && kept.unwritten() == 0;
                self.bufs = Some(kept);
                if shared && self.release_at == NEVER {
                    self.release_at = after(t, HOLD_SHARED_BUFFER);
                }
            }
            None => self.release_at = NEVER,
        }
    }
}

impl Shared {
    /// One round of work, under the connection's lock. `cx` carries the connection's own
    /// waker (the transport's wake-ups go to whoever drives).
    fn step(&mut self, inner: &Arc<Inner>, now: Instant, cx: &mut Context<'_>) -> Step {
        let t = self.nanos(now);
        let io = &mut self.io;
        if io.release_at <= t {
            // Quiet for a while: let go of a read buffer still shared with messages.
            io.release_at = NEVER;
            if let Some(bufs) = io.bufs.as_mut()
                && bufs.read.is_empty()
            {
                bufs.read = BytesMut::new();
            }
        }
        // (Counted from the connection's start, as `t`: cheaper than `poll_timeout`.)
        if self.conn.poll_timeout_since_start().map_or(NEVER, nanos) <= t {
            self.conn.handle_timeout(now);
            self.io.worked(t);
        }
        if !self.app.reader && !self.app.writer {
            // Every handle is gone: finish politely, or drop a half-open handshake.
            match self.conn.state() {
                State::Open => {
                    let _ = self.conn.close(now, CloseCode::NORMAL, "");
                }
                State::Handshake | State::Accepting => return Step::Done,
                State::Closing | State::Closed => {}
            }
        }
        self.pump();
        if self.conn.state() == State::Closed && self.app.linger().is_none() {
            // The WebSocket is closed: the transport is kept for the close timeout at most,
            // to write what is left and see the peer's end of stream, even if the peer
            // never reads what is queued (its close frame included).
            self.app.cold().linger = now.checked_add(self.linger());
        }
        let io = &mut self.io;
        // Whether the write buffer still held bytes of an earlier round, so that what the
        // core queued since could not be taken yet.
        let behind = io.unwritten() > 0;
        if !behind && io.shutdown == Shutdown::No {
            if io.bufs.is_none() && self.conn.buffered_output() > 0 {
                io.bufs = Some(pool::take());
            }
            // (With nothing queued only a shutdown can come out: no buffer is needed.)
            let mut none = Vec::new();
            let mut no_chunks = Vec::new();
            let (out, chunks) = match io.bufs.as_deref_mut() {
                Some(bufs) => {
                    bufs.clear_output();
                    (&mut bufs.write, &mut bufs.chunks)
                }
                None => (&mut none, &mut no_chunks),
            };
            while let Some(t) = self.conn.poll_transmit_vectored(out, chunks) {
                if t == Transmit::Shutdown {
                    io.shutdown = Shutdown::Requested;
                    break;
                }
            }
            if !none.is_empty() || !no_chunks.is_empty() {
                // (Not expected, but not lost either.)
                let bufs = io.bufs.get_or_insert_with(pool::take);
                bufs.write = none;
                bufs.chunks = no_chunks;
            }
            if let Some(bufs) = io.bufs.as_deref_mut()
                && !bufs.chunks.is_empty()
            {
                bufs.count_chunks();
            }
        }
        self.app.read_paused = self.app.reader && self.too_many_pending();
        // A slow application is not a dead peer: no keep-alive verdict while paused.
        self.conn.set_input_paused(now, self.app.read_paused);
        let io = &mut self.io;
        if !self.app.awaiting_app || io.reply_grace <= t {
            self.app.awaiting_app = false;
            io.reply_grace = NEVER;
        } else if io.reply_grace == NEVER {
            io.reply_grace = after(t, REPLY_GRACE);
        }
        if self.app.linger().is_some_and(|at| at <= now) {
            return Step::Done;
        }
        let Some(transport) = self.transport.as_deref_mut() else {
            return Step::Done;
        };

        let mut again = false;

        // Write everything the core handed out, in as few writes as the transport allows.
        // Writing needs no further round: more output can only come from the application,
        // which drives the connection or wakes its driver.
        // Whether bytes were written or flushed: waiting senders and flushers are told.
        let mut progress = false;
        if let Some(bufs) = io.bufs.as_deref_mut() {
            while bufs.unwritten() > 0 {
                match bufs.poll_write(transport, cx) {
                    Poll::Ready(Ok(0)) => {
                        return self.fail(now, io::ErrorKind::WriteZero.into());
                    }
                    Poll::Ready(Ok(n)) => {
                        bufs.advance(n);
                        io.needs_flush = true;
                        progress = true;
                    }
                    Poll::Ready(Err(e)) => return self.fail(now, e),
                    Poll::Pending => break,
                }
            }
        }
        let written = io.unwritten() == 0;
        if written && io.needs_flush {
            match transport.poll_flush(cx) {
                Poll::Ready(Ok(())) => {
                    io.needs_flush = false;
                    progress = true;
                }
                Poll::Ready(Err(e)) => return self.fail(now, e),
                Poll::Pending => {}
            }
        }
        if progress {
            // (Output that makes no progress is not work: a background task waiting for a
            // peer that reads nothing ends, and the transport's wake-up spawns a new one.)
            io.worked(t);
        }
        if progress {
            // Tell waiting senders and flushers at once.
            self.app.wake_senders();
        }
        if behind && written && io.shutdown == Shutdown::No {
            // The earlier bytes are out: go round to take what the core queued meanwhile
            // (nothing else would wake the driver for it).
            again = true;
        }
        if written && !io.needs_flush && io.shutdown == Shutdown::Requested {
            // An error here changes nothing: the connection is over either way.
            if transport.poll_shutdown(cx).is_ready() {
                io.shutdown = Shutdown::Sent;
                again = true;
            }
        }
        if io.shutdown == Shutdown::Sent && io.eof {
            return Step::Done;
        }

        // Input waits while messages are held for the application, and while the output
        // is at its high-water mark with messages still waiting for the application: an
        // application whose sends wait for room (an echo to a peer that sends but does not
        // read) then costs the mark plus what one read brings, not whatever the peer
        // sends. (A reader that waits in `recv()` keeps reading at the mark: two peers that
        // both stopped reading while their output is full would wait for each other.)
        // Once shutting down, everything is read (and discarded) until end of stream.
        let backlog = self.conn.buffered_output() + io.unwritten();
        let output_full = backlog > 0 && backlog >= self.app.hwm as usize;
        let hold = self.app.read_paused
            || self.app.awaiting_app
            || (output_full
                && (self.conn.pending_events().0 > 0
                    || self
                        .app
                        .cold
                        .as_ref()
                        .is_some_and(|c| !c.leftover.is_empty())));
        if !io.eof && (!hold || io.shutdown != Shutdown::No) {
            let read = io.prepare_read_buf();
            match transport.poll_read(cx, read) {
                Poll::Ready(Ok(0)) => {
                    io.eof = true;
                    self.conn.handle_eof(now);
                    again = true;
                }
                Poll::Ready(Ok(_)) => {
                    let before = self.conn.pending_events().0;
                    self.conn.handle_input_buf(now, read);
                    io.worked(t);
                    let waiting = self.pump();
                    if waiting && self.conn.pending_events().0 > before {
                        // Whether or not the reader is waiting yet: its reply to these
                        // messages must get a chance to go out before anything later input
                        // causes.
                        self.app.awaiting_app = true;
                    }
                    // Usually the read brought messages for the reader and nothing to
                    // send: hand them over and wait, rather than go round again only to
                    // find input held for the reader.
                    let handed_over = waiting
                        && self.conn.state() == State::Open
                        && self.conn.buffered_output() == 0
                        && !self.conn.has_deferred_end()
                        && !self.too_many_pending();
                    if handed_over {
                        if self.io.reply_grace == NEVER {
                            self.io.reply_grace = after(t, REPLY_GRACE);
                        }
                    } else {
                        again = true;
                    }
                }
                Poll::Ready(Err(e)) => return self.fail(now, e),
                Poll::Pending => {}
            }
        }

        if again {
            // The next round arms the timer, if it is still needed then.
            return Step::Again;
        }
        // Nothing more to do for now: the buffers go back to the pool, the timer is armed.
        self.io.park_buffers(t);
        let at = self.deadline(t);
        if at <= t {
            again = true;
        } else if at != NEVER {
            self.arm_timer(inner, at, t);
        }

        if again { Step::Again } else { Step::Wait }
    }

    /// How long the transport is kept once the WebSocket is closed: the close timeout, or
    /// [`DEFAULT_LINGER`] without one.
    fn linger(&self) -> Duration {
        self.conn.config().timeouts.close.unwrap_or(DEFAULT_LINGER)
    }

    /// `now` in nanoseconds after the connection's start (see [`Nanos`]).
    pub(crate) fn nanos(&self, now: Instant) -> Nanos {
        since(self.conn.created_at(), now)
    }

    /// When (at `t`, see [`Shared::nanos`]) the driver next has something to do without a
    /// wake-up from the transport, or [`NEVER`].
    pub(crate) fn deadline(&self, t: Nanos) -> Nanos {
        let io = &self.io;
        // An expired `background_until` means the background task is about to end.
        let background = if io.background_until > t {
            io.background_until
        } else {
            NEVER
        };
        let linger = match self.app.linger() {
            Some(at) => self.nanos(at),
            None => NEVER,
        };
        self.conn
            .poll_timeout_since_start()
            .map_or(NEVER, nanos)
            .min(linger)
            .min(io.reply_grace)
            .min(io.release_at)
            .min(background)
    }

    /// Whether a deadline is due at `t`: the core's timers, the linger, the reply grace,
    /// a shared read buffer to let go, or a background task that may end.
    pub(crate) fn timer_due(&self, t: Nanos) -> bool {
        self.deadline(t) <= t || self.io.background_until <= t
    }

    /// Arms the timer for `at` (see [`Io::arm_timer`]).
    #[inline]
    pub(crate) fn arm_timer(&mut self, inner: &Arc<Inner>, at: Nanos, t: Nanos) {
        let base = self.conn.created_at();
        self.io.arm_timer(inner, base, at, t);
    }

    /// Removes the connection's entry (`key`) from the timer queue of `rt`, if it has one.
    pub(crate) fn disarm_timer(&mut self, rt: &Rt, key: usize) {
        let at = std::mem::replace(&mut self.io.timer_at, NEVER);
        if let Some(at) = instant(self.conn.created_at(), at) {
            rt.cancel(key, at);
        }
    }

    /// The transport failed: report the error, end the connection, drop the transport.
    fn fail(&mut self, now: Instant, error: io::Error) -> Step {
        if !self.app.ended {
            self.app.cold().io_error = Some(error);
            self.conn.handle_eof(now);
            self.pump();
        }
        Step::Done
    }

    /// Ends the connection's I/O: its buffers go back to the pool, the transport and the
    /// timer are dropped, and the handles learn that nobody will move bytes any more.
    pub(crate) fn finish(&mut self, inner: &Inner, now: Instant) {
        self.transport = None;
        self.disarm_timer(&inner.rt, timers::key(inner));
        let io = &mut self.io;
        io.waker = None;
        io.background_until = NEVER;
        // (A buffer messages still point into, or bytes left unwritten, are simply let go.)
        if let Some(bufs) = io.bufs.take() {
            let _ = pool::park(bufs, io.read_size as usize);
        }
        self.app.driver_done = true;
        if !self.app.ended {
            self.conn.handle_eof(now);
            self.pump();
        }
        if !self.app.ended {
            self.app.ended = true;
            self.app.cold().error.get_or_insert(crate::Error::Abnormal);
        }
        self.app.wake_handles();
    }
}

impl Inner {
    /// Drives the connection from the calling task, under its lock: rounds of reading,
    /// writing and timers until nothing is left to do (the transport and the timer then
    /// wake the connection), or the budget is spent (the caller then wakes the driver once
    /// it has unlocked: [`Drive::Busy`] sets the kick).
    pub(crate) fn drive(self: &Arc<Self>, sh: &mut Shared) -> Drive {
        self.drive_at(sh, None)
    }

    /// [`Inner::drive`], with the time if the caller has just read the clock.
    pub(crate) fn drive_at(self: &Arc<Self>, sh: &mut Shared, now: Option<Instant>) -> Drive {
        sh.app.kick = false;
        if sh.app.driver_done {
            return Drive::Finished;
        }
        // The events so far are handled now, whoever was woken for them.
        let seen = self.wake.driving();
        sh.app.settled = NOT_SETTLED;
        // Taken out while driving (and put back unless the connection finished, which
        // lets go of it).
        let waker = sh
            .io
            .waker
            .take()
            .unwrap_or_else(|| Waker::from(self.clone()));
        let mut cx = Context::from_waker(&waker);
        let now = now.unwrap_or_else(|| self.runtime().now());
        let mut drive = Drive::Busy;
        for _ in 0..BUDGET {
            match sh.step(self, now, &mut cx) {
                Step::Again => {}
                Step::Wait => {
                    sh.app.settled = seen;
                    drive = Drive::Waiting;
                    break;
                }
                Step::Done => {
                    sh.finish(self, now);
                    // A background task waiting for work ends now.
                    if let Some(w) = self.wake.finished() {
                        w.wake();
                    }
                    return Drive::Finished;
                }
            }
        }
        sh.io.waker = Some(waker);
        if drive == Drive::Busy {
            // Let other tasks run; the designated driver comes back to it.
            sh.app.kick = true;
        }
        drive
    }

    /// Whether driving now could do anything: not when the last drive found nothing to do,
    /// no wake-up came since, and the application created no work.
    pub(crate) fn needs_drive(&self, sh: &Shared) -> bool {
        sh.app.kick || sh.app.settled != self.wake.events()
    }

    /// Hands work the application created (a queued message, a close, room for more
    /// input) to the designated driver, once the caller has unlocked the connection: call
    /// it with the `kick` taken from [`App::kick`](crate::shared::App::kick).
    pub(crate) fn kick(self: &Arc<Self>, kick: bool) {
        if kick {
            self.dispatch(crate::dispatch::Source::Io);
        }
    }

    /// Unlocks the connection, then hands the driver the work the application created
    /// while holding the lock ([`App::kick`](crate::shared::App::kick), taken here), so
    /// that no wake-up happens under the lock.
    pub(crate) fn unlock_and_kick(self: &Arc<Self>, mut sh: MutexGuard<'_, Shared>) {
        let kick = std::mem::take(&mut sh.app.kick);
        drop(sh);
        self.kick(kick);
    }
}

/// The connection's background task: it drives the connection while no task waits in
/// `recv()`, so that pings, pongs, timeouts and queued writes keep going while the
/// application does something else. It is spawned when a wake-up finds no driver (see
/// [`crate::dispatch`]), and ends once it has had no work for [`BACKGROUND_LINGER`], or
/// once the connection's I/O is finished.
pub(crate) struct Background {
    /// `None` once the task has ended normally.
    inner: Option<Arc<Inner>>,
}

impl Background {
    pub(crate) fn new(inner: Arc<Inner>) -> Self {
        Self { inner: Some(inner) }
    }
}

impl Future for Background {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let Some(inner) = this.inner.as_ref() else {
            return Poll::Ready(());
        };
        inner.wake.background_polled(cx.waker());
        let mut sh = inner.lock();
        let now = inner.runtime().now();
        let t = sh.nanos(now);
        if sh.io.background_until == NEVER {
            // Just spawned: there was work.
            sh.io.background_until = after(t, BACKGROUND_LINGER);
        }
        sh.io.in_background = true;
        let drive = inner.drive_at(&mut sh, Some(now));
        sh.io.in_background = false;
        match drive {
            Drive::Finished => {}
            Drive::Busy => {
                sh.app.kick = false;
                drop(sh);
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            Drive::Waiting => {
                let quiet = sh.io.background_until <= t;
                let seen = sh.app.settled;
                if !(quiet && seen != NOT_SETTLED && inner.wake.background_may_end(seen)) {
                    return Poll::Pending;
                }
                sh.io.background_until = NEVER;
            }
        }
        drop(sh);
        this.inner = None;
        Poll::Ready(())
    }
}

impl Drop for Background {
    /// When the runtime drops the task (it shuts down, or refused to start it) the
    /// connection cannot go on: the handles must not wait for it.
    fn drop(&mut self) {
        let Some(inner) = self.inner.take() else {
            return;
        };
        inner.wake.background_dropped();
        // Never wait for the lock here: the runtime may drop the task while this very
        // thread holds it.
        let Ok(mut sh) = inner.shared.try_lock() else {
            return;
        };
        if !sh.app.driver_done {
            let now = inner.runtime().now();
            sh.finish(&inner, now);
            drop(sh);
            let _ = inner.wake.finished();
        }
    }
}
