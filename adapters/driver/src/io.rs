//! The I/O side of one connection ([`Io`]): the transport's state, the read and write
//! buffers (taken from the per-thread pool while bytes move) and the connection's entry
//! in the timer queue. Plain data with small helpers; the driver ([`crate::driver`])
//! decides what to do with it.

use crate::dispatch::BACKGROUND_LINGER;
use crate::pool::{self, Buffers};
use crate::time::{NEVER, Nanos, after, instant};
use crate::timers::{Entry, Rt};
use bytes::BytesMut;
use std::sync::Arc;
use std::task::Waker;
use std::time::{Duration, Instant};

/// Buffers are parked in the per-thread pool (see [`pool`]) whenever the driver waits. A
/// read buffer that messages still held by the application point into cannot be; it is
/// kept for reuse and let go this long after the driver last waited with it.
const HOLD_SHARED_BUFFER: Duration = Duration::from_secs(1);

/// With less spare capacity than this (and the buffer not reclaimable), a new read buffer
/// is taken before reading.
const MIN_READ_SPARE: usize = 4096;

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shutdown {
    /// The connection runs.
    No,
    /// The core asked for the transport to be closed once the write buffer is written.
    Requested,
    /// The write side is shut down; the rest of the input is read and discarded until
    /// end of stream, so that closing the socket does not reset the connection.
    Sent,
}

/// The I/O side of one connection: the transport's state, its buffers and its deadlines.
/// It lives in the connection's shared state and is driven, under its lock, by whichever
/// task `Inner::drive` runs on: the task waiting in `recv()`, a sender, or the
/// background task (see [`crate::dispatch`]). [`crate::driver`] reads a buffer and feeds the core, writes what the core
/// queues (all queued frames coalesced into one buffer), fires the core's timers, and
/// hands the handshake's events and the connection's end to the handles.
pub(crate) struct Io {
    /// The connection's own waker, which the transport is polled with (made at the first
    /// drive, dropped when the connection finishes: it holds the connection).
    pub(crate) waker: Option<Waker>,
    /// The deadline of the connection's entry in the timer queue (see [`crate::timers`]);
    /// [`NEVER`]: none. One at or before the present may be gone already.
    pub(crate) timer_at: Nanos,
    /// The read and write buffers, while bytes move (see [`pool`]).
    pub(crate) bufs: Option<Box<Buffers>>,
    /// How many bytes to read at once (4 bytes: the idle state is small).
    pub(crate) read_size: u32,
    pub(crate) needs_flush: bool,
    pub(crate) shutdown: Shutdown,
    pub(crate) eof: bool,
    /// The background task is the one driving (see [`crate::shared::Background`]).
    pub(crate) in_background: bool,
    /// While a background task exists: the moment it ends if it has had no work since.
    pub(crate) background_until: Nanos,
    /// While a read buffer shared with the application's messages is kept: the moment to
    /// let it go.
    pub(crate) release_at: Nanos,
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
    pub(crate) fn worked(&mut self, t: Nanos) {
        if self.in_background {
            self.background_until = after(t, BACKGROUND_LINGER);
        }
    }

    /// Arms the connection's timer for `at`: its entry in the timer queue moves there,
    /// unless one at or before `at` is still to come (a later deadline than the armed one
    /// keeps it: an early wake-up is cheap, see `Inner::on_timer`). The queue's task
    /// wakes the background task, whoever drives: the deadlines (keep-alive, timeouts)
    /// must be kept even while a task that holds a `recv()` future does not poll it. `at`
    /// and `t` (now) count from `base`, the connection's start.
    #[inline]
    pub(crate) fn arm_timer<E: Entry>(
        &mut self,
        rt: &Arc<Rt>,
        entry: &Arc<E>,
        base: Instant,
        at: Nanos,
        t: Nanos,
    ) {
        if at >= self.timer_at && self.timer_at > t {
            return;
        }
        self.move_timer(rt, entry, base, at);
    }

    /// [`Io::arm_timer`] when the entry moves (out of line: most calls keep it).
    #[inline(never)]
    fn move_timer<E: Entry>(&mut self, rt: &Arc<Rt>, entry: &Arc<E>, base: Instant, at: Nanos) {
        let Some(when) = instant(base, at) else {
            // (Too far to be an `Instant`: it never comes.)
            return;
        };
        rt.schedule(entry, instant(base, self.timer_at), when);
        self.timer_at = at;
    }

    /// Makes room to read `read_size` bytes and returns the read buffer: one from the
    /// pool, or the current one's whole capacity back once the application dropped the
    /// messages that pointed into it, or (when neither and little room is left) a new one.
    pub(crate) fn prepare_read_buf(&mut self) -> &mut BytesMut {
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
    pub(crate) fn park_buffers(&mut self, t: Nanos) {
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
