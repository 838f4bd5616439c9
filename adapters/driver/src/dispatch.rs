//! Who does a connection's I/O: the task waiting in `recv()`, or the background task.
//!
//! The transport is always polled with one waker per connection, made from an
//! [`IoWaker`]. When it fires, it wakes the *designated* driver:
//!
//! - a task waiting in [`WebSocket::recv`](crate::WebSocket::recv) is designated while it
//!   waits. It reads and writes itself, so a request/reply loop costs one task wake-up per
//!   message instead of three;
//! - otherwise the connection's background task, which keeps pings, pongs, timeouts and
//!   queued writes going while the application does something else.
//!
//! A `recv()` future that is dropped hands the job back (and wakes the background task if
//! an event came in meanwhile). The timer always wakes the background task, so keep-alive
//! pings and timeouts never depend on the application. A `recv()` future that is kept
//! across other awaits without being polled delays the peer's frames until it is polled
//! again, or until a second wake-up comes before it has driven the connection: the
//! background task is then woken as well.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Wake, Waker};

/// The per-connection waker registered with the transport.
#[derive(Debug, Default)]
pub(crate) struct IoWaker {
    slots: Mutex<Slots>,
    /// How many wake-ups the transport and the timer have delivered: a driver that saw
    /// this count when it last found nothing to do need not look again until it moves.
    events: AtomicU64,
}

#[derive(Debug, Default)]
struct Slots {
    /// The background task's waker.
    background: Option<Waker>,
    /// The waker of the task waiting in `recv()` (kept after it resigns, so that the next
    /// designation of the same task clones nothing).
    app: Option<Waker>,
    /// Whether `app` is the designated driver.
    designated: bool,
    /// The designated task was woken and has not driven the connection since.
    app_woken: bool,
}

impl IoWaker {
    fn slots(&self) -> std::sync::MutexGuard<'_, Slots> {
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records the background task's waker.
    pub(crate) fn set_background(&self, waker: &Waker) {
        let mut s = self.slots();
        match &s.background {
            Some(w) if w.will_wake(waker) => {}
            _ => s.background = Some(waker.clone()),
        }
    }

    /// Makes the task of `waker` the designated driver.
    pub(crate) fn designate(&self, waker: &Waker) {
        let mut s = self.slots();
        match &s.app {
            Some(w) if w.will_wake(waker) => {}
            _ => s.app = Some(waker.clone()),
        }
        s.designated = true;
    }

    /// A task is about to drive the connection: the events so far are seen. Returns
    /// their count.
    pub(crate) fn driving(&self) -> u64 {
        let mut s = self.slots();
        s.app_woken = false;
        self.events.load(Ordering::SeqCst)
    }

    /// The count of events delivered so far (see [`IoWaker::driving`]).
    pub(crate) fn events(&self) -> u64 {
        self.events.load(Ordering::SeqCst)
    }

    /// The designated task stops waiting in `recv()`; the background task takes over (and
    /// is woken if an event came in that the task did not handle).
    pub(crate) fn resign(&self) {
        let mut s = self.slots();
        s.designated = false;
        let missed = std::mem::take(&mut s.app_woken);
        let background = if missed { s.background.clone() } else { None };
        drop(s);
        if let Some(w) = background {
            w.wake();
        }
    }

    /// The reader is gone: no task can be designated any more.
    pub(crate) fn forget_app(&self) {
        let mut s = self.slots();
        s.app = None;
        s.designated = false;
    }

    /// Wakes the background task, whoever is designated.
    pub(crate) fn wake_background(&self) {
        let background = self.slots().background.clone();
        if let Some(w) = background {
            w.wake();
        }
    }

    fn dispatch(&self) {
        self.events.fetch_add(1, Ordering::SeqCst);
        let mut s = self.slots();
        let (first, second) = if s.designated {
            // A second event before the task drove: it may hold its `recv()` future
            // without polling it; the background task steps in.
            let escalate = std::mem::replace(&mut s.app_woken, true);
            let background = if escalate { s.background.clone() } else { None };
            (s.app.clone(), background)
        } else {
            (s.background.clone(), None)
        };
        drop(s);
        // Woken outside the lock: a waker may do anything, even wake this one again.
        if let Some(w) = first {
            w.wake();
        }
        if let Some(w) = second {
            w.wake();
        }
    }
}

impl Wake for IoWaker {
    fn wake(self: Arc<Self>) {
        self.dispatch();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.dispatch();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[derive(Default)]
    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn counter() -> (Arc<Count>, Waker) {
        let c = Arc::new(Count::default());
        (c.clone(), Waker::from(c))
    }

    fn n(c: &Count) -> usize {
        c.0.load(Ordering::SeqCst)
    }

    /// A connection's waker with a background task registered, and a task to designate.
    struct Fixture {
        io: Arc<IoWaker>,
        waker: Waker,
        bg: Arc<Count>,
        app: Arc<Count>,
        app_waker: Waker,
    }

    impl Fixture {
        fn new() -> Self {
            let io = Arc::new(IoWaker::default());
            let (bg, bg_waker) = counter();
            let (app, app_waker) = counter();
            io.set_background(&bg_waker);
            Self {
                waker: Waker::from(io.clone()),
                io,
                bg,
                app,
                app_waker,
            }
        }

        /// Wake-ups so far: (background, designated task).
        fn woken(&self) -> (usize, usize) {
            (n(&self.bg), n(&self.app))
        }
    }

    #[test]
    fn events_go_to_the_designated_task_and_back_to_the_background() {
        let f = Fixture::new();
        f.waker.wake_by_ref();
        assert_eq!(f.woken(), (1, 0));

        f.io.designate(&f.app_waker);
        f.waker.wake_by_ref();
        assert_eq!(f.woken(), (1, 1));
        // It drove, then stopped waiting: nothing missed, the background is not woken.
        f.io.driving();
        f.io.resign();
        assert_eq!(f.woken(), (1, 1));
        f.waker.wake_by_ref();
        assert_eq!(f.woken(), (2, 1));
    }

    #[test]
    fn a_missed_event_goes_to_the_background_on_resign() {
        let f = Fixture::new();
        f.io.designate(&f.app_waker);
        f.waker.wake_by_ref();
        f.io.resign();
        assert_eq!(f.woken(), (1, 1));
    }

    #[test]
    fn a_second_event_before_driving_also_wakes_the_background() {
        let f = Fixture::new();
        f.io.designate(&f.app_waker);
        f.waker.wake_by_ref();
        assert_eq!(f.woken(), (0, 1));
        f.waker.wake_by_ref();
        assert_eq!(f.woken(), (1, 2));
        f.io.driving();
        f.waker.wake_by_ref();
        assert_eq!(f.woken(), (1, 3));
    }
}
