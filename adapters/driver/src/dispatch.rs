//! Who does a connection's I/O: the task waiting in `recv()`, or a background task that
//! exists only while it has work.
//!
//! The transport is polled with the connection's own waker (the connection's
//! [`Inner`](crate::shared::Inner) itself). When it fires, it wakes the *designated* driver:
//!
//! - a task waiting in [`WebSocket::recv`](crate::WebSocket::recv) is designated while it
//!   waits. It reads and writes itself, so a request/reply loop costs one task wake-up per
//!   message;
//! - otherwise a background task, which keeps pings, pongs, timeouts and queued writes
//!   going while the application does something else. It is spawned when an event finds
//!   none, and ends once it has had nothing to do for [`BACKGROUND_LINGER`], so an idle
//!   connection has no task of its own besides the application's.
//!
//! A due deadline (its entry in the timer queue, see [`crate::timers`]) always goes to the
//! background task (spawning it if need be): keep-alive pings and timeouts never depend
//! on the application. A
//! `recv()` future that is dropped hands the job back (and the background task is woken
//! if an event came in meanwhile). A `recv()` future that is kept across other awaits
//! without being polled delays the peer's frames until it is polled again, or until a
//! second wake-up comes before it has driven the connection: the background task is then
//! woken as well.
//!
//! This module only decides: [`WakeState::route`] returns a [`Route`] (which task to wake,
//! whether to spawn one), and the connection carries it out
//! ([`Inner::dispatch`](crate::shared::Inner::dispatch)), never while the caller holds the
//! connection's lock: a runtime that is shutting down drops a spawned task at once, and
//! the task's `Drop` needs the lock.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::Waker;
use std::time::Duration;

/// How long a background task stays after its last work, so that a connection driven in
/// the background for a while (only sending, say) does not spawn a task per message.
pub(crate) const BACKGROUND_LINGER: Duration = Duration::from_secs(1);

/// Routing of the connection's wake-ups (part of [`crate::shared::Inner`]).
#[derive(Debug, Default)]
pub(crate) struct WakeState {
    slots: Mutex<Slots>,
    /// The flags in the low bits ([`FLAGS`]), and the count of events above them, in one
    /// word, so that a wake-up counts itself and marks the designated task woken with one
    /// atomic operation.
    ///
    /// - [`DESIGNATED`] and [`APP_WOKEN`]: changed without the slots' lock on the paths
    ///   of every message (designating, driving, resigning), read with it by a wake-up;
    /// - the background task's state ([`SPAWNED`], [`FINISHED`]), changed and read only
    ///   with the slots' lock;
    /// - the count: how many wake-ups the transport and the timer have delivered, in
    ///   steps of [`EVENT`], wrapping. A driver that saw it when it last found nothing to
    ///   do need not look again until it moves. Seen without the flags it is a multiple
    ///   of [`EVENT`], so never [`NOT_SETTLED`](crate::state::NOT_SETTLED); coming round
    ///   to a value seen would take 2^28 wake-ups between two drives, and each wake-up
    ///   schedules a drive.
    state: AtomicU32,
}

/// The task of `Slots::app` is the designated driver.
const DESIGNATED: u32 = 1;
/// The designated task was woken and has not driven the connection since.
const APP_WOKEN: u32 = 2;
/// The background task is spawned and has not been polled yet (it will drive when it is).
const SPAWNED: u32 = 4;
/// The connection's I/O is finished: no background task is needed any more.
const FINISHED: u32 = 8;
/// The bits of [`WakeState::state`] that are flags.
const FLAGS: u32 = 15;
/// One event in [`WakeState::state`]'s count.
const EVENT: u32 = 16;

/// The background task's state is one of: none (the next event that needs one spawns
/// it), [`SPAWNED`], running (`Slots::background` holds its waker), or [`FINISHED`].
#[derive(Debug, Default)]
struct Slots {
    /// The waker of the task waiting in `recv()` (kept after it resigns, so that the next
    /// designation of the same task clones nothing).
    app: Option<Waker>,
    /// The background task's waker, while it runs.
    background: Option<Waker>,
}

/// Where a wake-up comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    /// The transport (or the application, with work for the driver).
    Io,
    /// The timer: always the background task's.
    Timer,
}

impl WakeState {
    fn slots(&self) -> MutexGuard<'_, Slots> {
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes the task of `waker` the designated driver. `same`: the caller knows that
    /// the last task designated was this one (its waker need not be compared).
    pub(crate) fn designate(&self, waker: &Waker, same: bool) {
        if !same {
            let mut s = self.slots();
            match &s.app {
                Some(w) if w.will_wake(waker) => {}
                _ => s.app = Some(waker.clone()),
            }
        }
        self.state.fetch_or(DESIGNATED, Ordering::SeqCst);
    }

    /// A task is about to drive the connection: the events so far are seen. Returns
    /// their count.
    pub(crate) fn driving(&self) -> u32 {
        let mut state = self.state.load(Ordering::SeqCst);
        // (Usually not woken: a load then does. A wake-up after it is counted, so the
        // drive's count is behind and the next look drives again.)
        if state & APP_WOKEN != 0 {
            state = self.state.fetch_and(!APP_WOKEN, Ordering::SeqCst);
        }
        state & !FLAGS
    }

    /// The count of events delivered so far (see [`WakeState::driving`]).
    pub(crate) fn events(&self) -> u32 {
        self.state.load(Ordering::SeqCst) & !FLAGS
    }

    /// The reader is gone: no task can be designated any more.
    pub(crate) fn forget_app(&self) {
        let mut s = self.slots();
        s.app = None;
        self.state.fetch_and(!DESIGNATED, Ordering::SeqCst);
    }

    /// Whether the connection's I/O is finished (call with the slots' lock).
    fn is_finished(&self) -> bool {
        self.state.load(Ordering::SeqCst) & FINISHED != 0
    }

    /// The background task is being polled with `waker`.
    pub(crate) fn background_polled(&self, waker: &Waker) {
        let mut s = self.slots();
        if self.is_finished() {
            return;
        }
        self.state.fetch_and(!SPAWNED, Ordering::SeqCst);
        match &s.background {
            Some(w) if w.will_wake(waker) => {}
            _ => s.background = Some(waker.clone()),
        }
    }

    /// The background task found nothing to do: it may end, unless an event came in after
    /// the drive that saw `seen` events. Returns whether it ends.
    pub(crate) fn background_may_end(&self, seen: u32) -> bool {
        let mut s = self.slots();
        if self.events() != seen {
            return false;
        }
        s.background = None;
        self.state.fetch_and(!SPAWNED, Ordering::SeqCst);
        true
    }

    /// The connection's I/O is finished: wake-ups spawn no task any more. Returns the
    /// waker of a background task that waits, to be woken so that it ends.
    pub(crate) fn finished(&self) -> Option<Waker> {
        let mut s = self.slots();
        let state = &self.state;
        state.fetch_and(!(DESIGNATED | SPAWNED), Ordering::SeqCst);
        state.fetch_or(FINISHED, Ordering::SeqCst);
        s.background.take()
    }

    /// Whether a background task is spawned or running (for tests).
    #[cfg(test)]
    pub(crate) fn has_background(&self) -> bool {
        let s = self.slots();
        s.background.is_some() || self.state.load(Ordering::SeqCst) & SPAWNED != 0
    }

    /// The background task was dropped by its runtime (which shuts down) before the
    /// connection finished.
    pub(crate) fn background_dropped(&self) {
        let mut s = self.slots();
        s.background = None;
        self.state.fetch_and(!SPAWNED, Ordering::SeqCst);
    }

    /// Decides where a wake-up from `source` goes (see the module docs): the designated
    /// task is woken here (a task's waker only schedules it), the background task's part
    /// is returned for the caller to carry out once it holds no lock.
    #[inline]
    pub(crate) fn route(&self, source: Source) -> Route {
        let mut route = Route::default();
        let mut s = self.slots();
        let state = &self.state;
        let to_app = match source {
            Source::Io => {
                // Counted, and the designated task marked woken, at once.
                let before = state.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |f| {
                    let f = f.wrapping_add(EVENT);
                    Some(if f & DESIGNATED != 0 {
                        f | APP_WOKEN
                    } else {
                        f
                    })
                });
                let before = before.unwrap_or_else(|f| f);
                (before & DESIGNATED != 0).then_some(before)
            }
            Source::Timer => {
                state.fetch_add(EVENT, Ordering::SeqCst);
                None
            }
        };
        match to_app {
            Some(before) => {
                // Woken under the slots' lock: a task's waker only schedules it.
                if let Some(app) = &s.app {
                    app.wake_by_ref();
                }
                // A second event before the task drove: it may hold its `recv()`
                // future without polling it; the background task steps in.
                if before & APP_WOKEN != 0 {
                    self.route_background(&mut s, &mut route);
                }
            }
            None => self.route_background(&mut s, &mut route),
        }
        route
    }

    /// The designated task stops waiting in `recv()`. Returns whether an event came in
    /// that it did not handle: the background task must then be woken (or spawned).
    pub(crate) fn resign(&self) -> bool {
        let before = self
            .state
            .fetch_and(!(DESIGNATED | APP_WOKEN), Ordering::SeqCst);
        before & APP_WOKEN != 0
    }

    /// The background task's part of a wake-up, whoever is designated.
    pub(crate) fn route_to_background(&self) -> Route {
        let mut route = Route::default();
        self.route_background(&mut self.slots(), &mut route);
        route
    }

    /// The background task's part of a wake-up, under the slots' lock: its waker, or
    /// whether to spawn it.
    fn route_background(&self, s: &mut Slots, route: &mut Route) {
        if let Some(w) = &s.background {
            route.background = Some(w.clone());
            return;
        }
        let before = self.state.fetch_or(SPAWNED, Ordering::SeqCst);
        if before & FINISHED != 0 {
            // (No task once finished.)
            self.state.fetch_and(!SPAWNED, Ordering::SeqCst);
        } else if before & SPAWNED == 0 {
            route.spawn = true;
        }
    }
}

/// What a wake-up does for the background task, decided under the slots' lock and carried
/// out after it (see [`WakeState::route`]).
#[derive(Default)]
pub(crate) struct Route {
    /// The background task's waker, to wake.
    pub(crate) background: Option<Waker>,
    /// No background task exists: spawn one.
    pub(crate) spawn: bool,
}
