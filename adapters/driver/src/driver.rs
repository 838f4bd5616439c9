//! One round of a connection's I/O ([`Shared::step`]) and what it leaves
//! ([`Drive`]): reading into the core, writing what it queues, firing its timers, finishing.
//! Runs under the connection's lock from whichever task drives (see [`crate::dispatch`]);
//! [`crate::shared::Inner::drive`] calls it in a loop.

use crate::io::Shutdown;
use crate::pool;
use crate::state::Shared;
use crate::time::{NEVER, Nanos, instant, nanos, since};
use crate::timers::{Entry, Rt};
use bytes::BytesMut;
use std::io;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;
use tether_core::{State, Transmit};

pub(crate) enum Step {
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

impl Shared {
    /// One round of work, under the connection's lock. `cx` carries the connection's own
    /// waker (the transport's wake-ups go to whoever drives). A round goes through these
    /// phases, in this order:
    ///
    /// 1. [timers](Shared::fire_timers): let go of a read buffer kept too long, fire the
    ///    core's due timers;
    /// 2. [handles gone](Shared::handles_gone): with no handle left, tell the core
    ///    ([`Connection::abandon`](tether_core::Connection::abandon): it closes politely,
    ///    or a half-open handshake is dropped: [`Step::Done`]); then hand the core's events
    ///    to the handles ([`Shared::pump`]) and, once the WebSocket is closed, start the
    ///    core's [linger](tether_core::Connection::linger);
    /// 3. [output](Shared::take_output): move what the core queued into the write buffer
    ///    (unless bytes of an earlier round are still there), and
    ///    [pause input](Shared::pause_input) while messages pile up unread;
    /// 4. [write](Shared::write): write and flush the buffer, wake waiting senders, shut the
    ///    transport down once the core asks and everything is out;
    /// 5. [read](Shared::read): unless input is held (paused, held by the core for the
    ///    application's reply, or output full with messages unread), read once and feed
    ///    the core;
    /// 6. [park](Shared::park): with nothing more to do, give the buffers back to the pool
    ///    and arm the timer ([`Step::Wait`]); otherwise go round again ([`Step::Again`]).
    ///
    /// A request/reply round (the common case) reads one message, hands it to the reader
    /// waiting in `recv()` and parks; the reply's round writes it and parks.
    pub(crate) fn step<E: Entry>(
        &mut self,
        rt: &Arc<Rt>,
        entry: &Arc<E>,
        now: Instant,
        cx: &mut Context<'_>,
    ) -> Step {
        let t = self.nanos(now);
        self.fire_timers(now, t);
        if self.handles_gone(now) {
            return Step::Done;
        }
        self.pump();
        if self.conn.state() == State::Closed && self.app.linger().is_none() {
            // The WebSocket is closed: the transport is kept for the close timeout at most,
            // to write what is left and see the peer's end of stream, even if the peer
            // never reads what is queued (its close frame included).
            self.app.cold().linger = now.checked_add(self.conn.linger());
        }
        let behind = self.take_output();
        self.pause_input(now);
        if self.app.linger().is_some_and(|at| at <= now) {
            return Step::Done;
        }
        let mut again = match self.write(now, t, behind, cx) {
            Ok(again) => again,
            Err(step) => return step,
        };
        match self.read(now, t, cx) {
            Ok(more) => again |= more,
            Err(step) => return step,
        }
        if again {
            // The next round arms the timer, if it is still needed then.
            return Step::Again;
        }
        self.park(rt, entry, t)
    }

    /// A round that only writes, for [`Inner::drive_output`](crate::shared::Inner::drive_output):
    /// when the connection is open and nothing is due, writes what the core queued (phases
    /// 3 and 4 of [`Shared::step`]) and parks (phase 6), without reading. Returns
    /// [`Step::Wait`] when that was all there was to do, [`Step::Done`] when the write
    /// failed (the connection is finished), and `None` when a full round is needed.
    pub(crate) fn write_round<E: Entry>(
        &mut self,
        rt: &Arc<Rt>,
        entry: &Arc<E>,
        now: Instant,
        cx: &mut Context<'_>,
    ) -> Option<Step> {
        let t = self.nanos(now);
        if self.conn.state() != State::Open
            || self.app.linger().is_some()
            || !(self.app.has_reader() || self.app.has_writer())
            || self.timer_due(t)
        {
            return None;
        }
        if self.take_output() {
            return None; // bytes of an earlier round are still there
        }
        match self.write(now, t, false, cx) {
            Ok(false) if self.io.unwritten() == 0 && !self.io.needs_flush => {}
            Ok(_) => return None,
            Err(step) => return Some(step),
        }
        match self.park(rt, entry, t) {
            Step::Wait => Some(Step::Wait),
            _ => None,
        }
    }

    /// Phase 1 of [`Shared::step`]: lets go of a read buffer kept too long, and fires the
    /// core's timers if one is due at `t`.
    #[inline(always)]
    fn fire_timers(&mut self, now: Instant, t: Nanos) {
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
    }

    /// Phase 2 of [`Shared::step`]: with every handle gone, the core decides what that
    /// means (it closes an open WebSocket with 1000); returns whether the connection is to
    /// be dropped at once (a half-open handshake).
    #[inline(always)]
    fn handles_gone(&mut self, now: Instant) -> bool {
        !self.app.has_reader() && !self.app.has_writer() && self.conn.abandon(now)
    }

    /// Phase 3 of [`Shared::step`]: moves what the core queued into the write buffer, all
    /// frames together, unless bytes of an earlier round are still unwritten. Returns
    /// whether they were (`behind`: what the core queued since could not be taken yet).
    #[inline(always)]
    fn take_output(&mut self) -> bool {
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
        behind
    }

    /// Phase 3 of [`Shared::step`], continued: whether input is paused because too many
    /// messages wait for the application.
    #[inline(always)]
    fn pause_input(&mut self, now: Instant) {
        self.app.read_paused = self.app.has_reader() && self.too_many_pending();
        // A slow application is not a dead peer: no keep-alive verdict while paused.
        self.conn.set_input_paused(now, self.app.read_paused);
    }

    /// Phase 4 of [`Shared::step`]: writes everything the core handed out, in as few
    /// writes as the transport allows, flushes, and shuts the transport down once asked
    /// to and everything is out. Returns whether to go round again, or how the round ends.
    #[inline(always)]
    fn write(
        &mut self,
        now: Instant,
        t: Nanos,
        behind: bool,
        cx: &mut Context<'_>,
    ) -> Result<bool, Step> {
        let io = &mut self.io;
        let Some(transport) = self.transport.as_deref_mut() else {
            return Err(Step::Done);
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
                        return Err(self.fail(now, io::ErrorKind::WriteZero.into()));
                    }
                    Poll::Ready(Ok(n)) => {
                        bufs.advance(n);
                        io.needs_flush = true;
                        progress = true;
                    }
                    Poll::Ready(Err(e)) => return Err(self.fail(now, e)),
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
                Poll::Ready(Err(e)) => return Err(self.fail(now, e)),
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
            return Err(Step::Done);
        }
        Ok(again)
    }

    /// Phase 5 of [`Shared::step`]: unless input is held for the application, reads once
    /// and feeds the core. Returns whether to go round again, or how the round ends.
    #[inline(always)]
    fn read(&mut self, now: Instant, t: Nanos, cx: &mut Context<'_>) -> Result<bool, Step> {
        let io = &mut self.io;
        let Some(transport) = self.transport.as_deref_mut() else {
            return Err(Step::Done);
        };
        let mut again = false;
        // Input waits while too many messages wait for the application, while the core
        // holds it for the application's reply (its reply to what the last read brought
        // goes out before anything later input causes, RFC 6455 §7.1.7), and while the output
        // is at its high-water mark with messages still waiting for the application: an
        // application whose sends wait for room (an echo to a peer that sends but does not
        // read) then costs the mark plus what one read brings, not whatever the peer
        // sends. (A reader that waits in `recv()` keeps reading at the mark: two peers that
        // both stopped reading while their output is full would wait for each other.)
        // Once shutting down, everything is read (and discarded) until end of stream.
        let backlog = self.conn.buffered_output() + io.unwritten();
        let output_full = backlog > 0 && backlog >= self.app.hwm as usize;
        let hold = self.app.read_paused
            || self.conn.input_held()
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
                    self.conn.handle_input_buf(now, read);
                    io.worked(t);
                    let waiting = self.pump();
                    // Usually the read brought messages for the reader and nothing to
                    // send: hand them over and wait (the core holds input for the reply),
                    // rather than go round again only to find input held.
                    let handed_over = waiting
                        && self.conn.input_held()
                        && self.conn.state() == State::Open
                        && self.conn.buffered_output() == 0
                        && !self.conn.has_deferred_end()
                        && !self.too_many_pending();
                    again |= !handed_over;
                }
                Poll::Ready(Err(e)) => return Err(self.fail(now, e)),
                Poll::Pending => {}
            }
        }

        Ok(again)
    }

    /// Phase 6 of [`Shared::step`]: nothing more to do for now: the buffers go back to the
    /// pool and the timer is armed ([`Step::Wait`]), unless a deadline is due already.
    #[inline(always)]
    fn park<E: Entry>(&mut self, rt: &Arc<Rt>, entry: &Arc<E>, t: Nanos) -> Step {
        self.io.park_buffers(t);
        let at = self.deadline(t);
        if at <= t {
            return Step::Again;
        } else if at != NEVER {
            self.arm_timer(rt, entry, at, t);
        }
        Step::Wait
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
            .min(io.release_at)
            .min(background)
    }

    /// Whether a deadline is due at `t`: the core's timers (the reply grace among them),
    /// the linger, a shared read buffer to let go, or a background task that may end.
    pub(crate) fn timer_due(&self, t: Nanos) -> bool {
        self.deadline(t) <= t || self.io.background_until <= t
    }

    /// Arms the timer for `at` (see [`crate::io::Io::arm_timer`]).
    #[inline]
    pub(crate) fn arm_timer<E: Entry>(
        &mut self,
        rt: &Arc<Rt>,
        entry: &Arc<E>,
        at: Nanos,
        t: Nanos,
    ) {
        let base = self.conn.created_at();
        self.io.arm_timer(rt, entry, base, at, t);
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
        if !self.app.is_ended() {
            self.app.cold().io_error = Some(error);
            self.conn.handle_eof(now);
            self.pump();
        }
        Step::Done
    }

    /// Ends the connection's I/O: its buffers go back to the pool, the transport and the
    /// timer are dropped, and the handles learn that nobody will move bytes any more.
    /// `key` is the connection's in the timer queue of `rt` ([`crate::timers::key`]).
    pub(crate) fn finish(&mut self, rt: &Rt, key: usize, now: Instant) {
        self.transport = None;
        self.disarm_timer(rt, key);
        let io = &mut self.io;
        io.waker = None;
        io.background_until = NEVER;
        // (A buffer messages still point into, or bytes left unwritten, are simply let go.)
        if let Some(bufs) = io.bufs.take() {
            let _ = pool::park(bufs, io.read_size as usize);
        }
        if !self.app.is_ended() {
            self.conn.handle_eof(now);
            self.pump();
        }
        if !self.app.is_ended() {
            self.app.cold().error.get_or_insert(crate::Error::Abnormal);
        }
        self.app.finished();
        self.app.wake_handles();
    }
}
