//! Who does a connection's I/O: the task waiting in `recv()`, or a background task that
//! exists only while it has work.
//!
//! The transport is polled with the connection's own waker (the [`Inner`] itself). When
//! it fires, it wakes the *designated* driver:
//!
//! - a task waiting in [`WebSocket::recv`](crate::WebSocket::recv) is designated while it
//!   waits. It reads and writes itself, so a request/reply loop costs one task wake-up per
//!   message;
//! - otherwise a background task, which keeps pings, pongs, timeouts and queued writes
//!   going while the application does something else. It is spawned when an event finds
//!   none, and ends once it has had nothing to do for [`BACKGROUND_LINGER`], so an idle
//!   connection has no task of its own besides the application's.
//!
//! The timer has a waker of its own, which always goes to the background task (spawning
//! it if need be): keep-alive pings and timeouts never depend on the application. A
//! `recv()` future that is dropped hands the job back (and the background task is woken
//! if an event came in meanwhile). A `recv()` future that is kept across other awaits
//! without being polled delays the peer's frames until it is polled again, or until a
//! second wake-up comes before it has driven the connection: the background task is then
//! woken as well.
//!
//! Nothing here spawns or wakes while the connection's lock is held by the caller: a
//! runtime that is shutting down drops a spawned task at once, and the task's `Drop`
//! needs the lock.

use crate::driver::Background;
use crate::shared::Inner;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Wake, Waker};
use std::time::Duration;

/// How long a background task stays after its last work, so that a connection driven in
/// the background for a while (only sending, say) does not spawn a task per message.
pub(crate) const BACKGROUND_LINGER: Duration = Duration::from_secs(1);

/// Routing of the connection's wake-ups (part of [`Inner`]).
#[derive(Debug, Default)]
pub(crate) struct WakeState {
    slots: Mutex<Slots>,
    /// [`DESIGNATED`] and [`APP_WOKEN`]: changed without the slots' lock on the paths of
    /// every message (designating, driving, resigning), read with it by a wake-up.
    flags: AtomicU8,
    /// How many wake-ups the transport and the timer have delivered: a driver that saw
    /// this count when it last found nothing to do need not look again until it moves.
    events: AtomicU64,
}

/// The task of `Slots::app` is the designated driver.
const DESIGNATED: u8 = 1;
/// The designated task was woken and has not driven the connection since.
const APP_WOKEN: u8 = 2;

#[derive(Debug, Default)]
struct Slots {
    /// The waker of the task waiting in `recv()` (kept after it resigns, so that the next
    /// designation of the same task clones nothing).
    app: Option<Waker>,
    background: Task,
}

/// The background task's state.
#[derive(Debug, Default)]
enum Task {
    /// There is none: the next event that needs one spawns it.
    #[default]
    None,
    /// Spawned, not polled yet (it will drive when it is).
    Spawned,
    /// Running; woken with this waker.
    Running(Waker),
    /// The connection's I/O is finished: no task is needed any more.
    Finished,
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
        self.flags.fetch_or(DESIGNATED, Ordering::SeqCst);
    }

    /// A task is about to drive the connection: the events so far are seen. Returns
    /// their count.
    pub(crate) fn driving(&self) -> u64 {
        self.flags.fetch_and(!APP_WOKEN, Ordering::SeqCst);
        self.events.load(Ordering::SeqCst)
    }

    /// The count of events delivered so far (see [`WakeState::driving`]).
    pub(crate) fn events(&self) -> u64 {
        self.events.load(Ordering::SeqCst)
    }

    /// The reader is gone: no task can be designated any more.
    pub(crate) fn forget_app(&self) {
        let mut s = self.slots();
        s.app = None;
        self.flags.fetch_and(!DESIGNATED, Ordering::SeqCst);
    }

    /// The background task is being polled with `waker`.
    pub(crate) fn background_polled(&self, waker: &Waker) {
        let mut s = self.slots();
        match &s.background {
            Task::Running(w) if w.will_wake(waker) => {}
            Task::Finished => {}
            _ => s.background = Task::Running(waker.clone()),
        }
    }

    /// The background task found nothing to do: it may end, unless an event came in after
    /// the drive that saw `seen` events. Returns whether it ends.
    pub(crate) fn background_may_end(&self, seen: u64) -> bool {
        let mut s = self.slots();
        if self.events.load(Ordering::SeqCst) != seen {
            return false;
        }
        if !matches!(s.background, Task::Finished) {
            s.background = Task::None;
        }
        true
    }

    /// The connection's I/O is finished: wake-ups spawn no task any more. Returns the
    /// waker of a background task that waits, to be woken so that it ends.
    pub(crate) fn finished(&self) -> Option<Waker> {
        let mut s = self.slots();
        self.flags.fetch_and(!DESIGNATED, Ordering::SeqCst);
        match std::mem::replace(&mut s.background, Task::Finished) {
            Task::Running(w) => Some(w),
            _ => None,
        }
    }

    /// The background task was dropped by its runtime (which shuts down) before the
    /// connection finished.
    pub(crate) fn background_dropped(&self) {
        let mut s = self.slots();
        if !matches!(s.background, Task::Finished) {
            s.background = Task::None;
        }
    }
}

/// What a wake-up does for the background task, decided under the slots' lock and carried
/// out after it.
#[derive(Default)]
struct Route {
    background: Option<Waker>,
    spawn: bool,
}

impl Slots {
    /// The background task's part of a wake-up: its waker, or whether to spawn it.
    fn background(&mut self, route: &mut Route) {
        match &self.background {
            Task::Running(w) => route.background = Some(w.clone()),
            Task::Spawned | Task::Finished => {}
            Task::None => {
                self.background = Task::Spawned;
                route.spawn = true;
            }
        }
    }
}

impl Inner {
    /// Delivers a wake-up to whoever drives (see the module docs). Never call it with the
    /// connection's lock held.
    pub(crate) fn dispatch(self: &Arc<Self>, source: Source) {
        let mut route = Route::default();
        {
            let mut s = self.wake.slots();
            self.wake.events.fetch_add(1, Ordering::SeqCst);
            let to_app = match source {
                Source::Io => self
                    .wake
                    .flags
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |f| {
                        (f & DESIGNATED != 0).then_some(f | APP_WOKEN)
                    })
                    .ok(),
                Source::Timer => None,
            };
            match to_app {
                Some(before) => {
                    // Woken under the lock: a task's waker only schedules it.
                    if let Some(app) = &s.app {
                        app.wake_by_ref();
                    }
                    // A second event before the task drove: it may hold its `recv()`
                    // future without polling it; the background task steps in.
                    if before & APP_WOKEN != 0 {
                        s.background(&mut route);
                    }
                }
                None => s.background(&mut route),
            }
        }
        self.follow(route);
    }

    /// The designated task stops waiting in `recv()`; the background task takes over (and
    /// is woken, or spawned, if an event came in that the task did not handle). Never call
    /// it with the connection's lock held.
    pub(crate) fn resign(self: &Arc<Self>) {
        let before = self
            .wake
            .flags
            .fetch_and(!(DESIGNATED | APP_WOKEN), Ordering::SeqCst);
        if before & APP_WOKEN != 0 {
            self.wake_background();
        }
    }

    /// Wakes (or spawns) the background task, whoever is designated. Never call it with the
    /// connection's lock held.
    pub(crate) fn wake_background(self: &Arc<Self>) {
        let mut route = Route::default();
        self.wake.slots().background(&mut route);
        self.follow(route);
    }

    /// Carries out a wake-up decided under the slots' lock, outside it: a waker may do
    /// anything, even wake this connection again.
    fn follow(self: &Arc<Self>, route: Route) {
        if let Some(w) = route.background {
            w.wake();
        }
        if route.spawn {
            self.runtime.spawn(Box::pin(Background::new(self.clone())));
        }
    }

    /// What the connection's timer wakes: the background task (spawned if need be),
    /// whoever is designated.
    pub(crate) fn timer_wake(self: &Arc<Self>) -> Arc<TimerWake> {
        Arc::new(TimerWake(Arc::downgrade(self)))
    }

    /// A waker for the connection's timer (see [`Inner::timer_wake`]).
    #[cfg(test)]
    pub(crate) fn timer_waker(self: &Arc<Self>) -> Waker {
        Waker::from(self.timer_wake())
    }
}

/// Transport wake-ups (and the application's work for the driver) go to the designated
/// driver.
impl Wake for Inner {
    fn wake(self: Arc<Self>) {
        self.dispatch(Source::Io);
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.dispatch(Source::Io);
    }
}

/// The timer's waker. It holds the connection weakly: a timer never keeps a connection
/// alive.
pub(crate) struct TimerWake(Weak<Inner>);

impl Wake for TimerWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let Some(inner) = self.0.upgrade() else {
            return;
        };
        // The timer is armed for the earliest deadline and left armed when a later one
        // replaces it (say, once a reply has gone out), so it can fire with nothing due.
        // Then it is simply armed again here: no task is woken, or spawned, for it. Only
        // a due deadline needs the background task.
        let due = match inner.shared.try_lock() {
            Ok(sh) if sh.app.driver_done => false,
            Ok(mut sh) => {
                let t = sh.nanos(inner.runtime.now());
                if sh.timer_due(t) {
                    true
                } else {
                    let at = sh.deadline(t);
                    at != crate::driver::NEVER && sh.arm_timer(&inner, at, t)
                }
            }
            // Someone drives right now (perhaps this very thread): let the background
            // task look.
            Err(_) => true,
        };
        if due {
            inner.dispatch(Source::Timer);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::runtime::{Runtime, Timer, Transport};
    use bytes::BytesMut;
    use std::future::Future;
    use std::io;
    use std::pin::Pin;
    use std::sync::atomic::AtomicUsize;
    use std::task::{Context, Poll};
    use std::time::{Duration, Instant};
    use tether_core::Connection;

    /// Counts wake-ups.
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

    /// A runtime that keeps what it is asked to spawn, unpolled.
    #[derive(Default)]
    struct Keep {
        spawned: Mutex<Vec<Pin<Box<dyn Future<Output = ()> + Send>>>>,
        timers: Mutex<Vec<Arc<FakeTimer>>>,
    }

    impl std::fmt::Debug for Keep {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("Keep")
        }
    }

    impl Runtime for Keep {
        fn spawn(&self, future: Pin<Box<dyn Future<Output = ()> + Send>>) {
            self.spawned.lock().unwrap().push(future);
        }

        fn timer(&self, at: Instant) -> Pin<Box<dyn Timer>> {
            let timer = Arc::new(FakeTimer::default());
            *timer.at.lock().unwrap() = Some(at);
            self.timers.lock().unwrap().push(timer.clone());
            Box::pin(timer)
        }
    }

    /// A timer that never fires by itself: the test fires it by waking its waker.
    #[derive(Debug, Default)]
    struct FakeTimer {
        at: Mutex<Option<Instant>>,
        waker: Mutex<Option<Waker>>,
    }

    impl Timer for Arc<FakeTimer> {
        fn reset(self: Pin<&mut Self>, at: Instant) {
            *self.at.lock().unwrap() = Some(at);
        }

        fn poll_expired(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            *self.waker.lock().unwrap() = Some(cx.waker().clone());
            Poll::Pending
        }
    }

    /// A transport that is never ready.
    struct Idle;

    impl Transport for Idle {
        fn poll_read(&mut self, _: &mut Context<'_>, _: &mut BytesMut) -> Poll<io::Result<usize>> {
            Poll::Pending
        }
        fn poll_write(&mut self, _: &mut Context<'_>, _: &[u8]) -> Poll<io::Result<usize>> {
            Poll::Pending
        }
        fn poll_flush(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Pending
        }
        fn poll_shutdown(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Pending
        }
    }

    /// A connection, its runtime, and a task that can be designated and one that plays
    /// the background task once spawned.
    struct Fixture {
        inner: Arc<Inner>,
        runtime: Arc<Keep>,
        app: Arc<Count>,
        app_waker: Waker,
        bg: Arc<Count>,
        bg_waker: Waker,
    }

    impl Fixture {
        fn new() -> Self {
            Self::with_handshake_timeout(Duration::from_secs(10))
        }

        /// A connection whose only deadline is its handshake timeout, `timeout` from now.
        fn with_handshake_timeout(timeout: Duration) -> Self {
            let runtime = Arc::new(Keep::default());
            let mut config = Config::default();
            config.timeouts.handshake = Some(timeout);
            let conn = Connection::server(config.connection_config(), Instant::now());
            let inner = Arc::new(Inner::new(
                runtime.clone(),
                conn,
                Box::new(Idle),
                &config,
                false,
            ));
            let (app, app_waker) = counter();
            let (bg, bg_waker) = counter();
            Self {
                inner,
                runtime,
                app,
                app_waker,
                bg,
                bg_waker,
            }
        }

        fn spawned(&self) -> usize {
            self.runtime.spawned.lock().unwrap().len()
        }

        /// The spawned background task is polled (it registers its waker).
        fn background_runs(&self) {
            self.inner.wake.background_polled(&self.bg_waker);
        }

        /// Wake-ups so far: (spawns, background, designated task).
        fn woken(&self) -> (usize, usize, usize) {
            (self.spawned(), n(&self.bg), n(&self.app))
        }
    }

    #[test]
    fn an_event_with_no_driver_spawns_one_background_task() {
        let f = Fixture::new();
        f.inner.dispatch(Source::Io);
        f.inner.dispatch(Source::Io);
        // Spawned once; it has not run yet, so the second event needs nothing more.
        assert_eq!(f.woken(), (1, 0, 0));
        f.background_runs();
        f.inner.dispatch(Source::Io);
        assert_eq!(f.woken(), (1, 1, 0));
    }

    #[test]
    fn events_go_to_the_designated_task_and_back_to_the_background() {
        let f = Fixture::new();
        f.inner.wake.designate(&f.app_waker, false);
        f.inner.dispatch(Source::Io);
        assert_eq!(f.woken(), (0, 0, 1), "no background task needed");
        // It drove, then stopped waiting: nothing missed, nothing spawned.
        f.inner.wake.driving();
        f.inner.resign();
        assert_eq!(f.woken(), (0, 0, 1));
        f.inner.dispatch(Source::Io);
        assert_eq!(f.woken(), (1, 0, 1));
    }

    #[test]
    fn a_missed_event_goes_to_the_background_on_resign() {
        let f = Fixture::new();
        f.inner.wake.designate(&f.app_waker, false);
        f.inner.dispatch(Source::Io);
        f.inner.resign();
        assert_eq!(f.woken(), (1, 0, 1));
    }

    #[test]
    fn a_second_event_before_driving_also_wakes_the_background() {
        let f = Fixture::new();
        f.background_runs();
        f.inner.wake.designate(&f.app_waker, false);
        f.inner.dispatch(Source::Io);
        assert_eq!(f.woken(), (0, 0, 1));
        f.inner.dispatch(Source::Io);
        assert_eq!(f.woken(), (0, 1, 2));
        f.inner.wake.driving();
        f.inner.dispatch(Source::Io);
        assert_eq!(f.woken(), (0, 1, 3));
    }

    #[test]
    fn a_due_timer_wakes_the_background_whoever_is_designated() {
        let f = Fixture::with_handshake_timeout(Duration::ZERO);
        f.inner.wake.designate(&f.app_waker, false);
        let timer = f.inner.timer_waker();
        timer.wake_by_ref();
        assert_eq!(f.woken(), (1, 0, 0));
        f.background_runs();
        timer.wake_by_ref();
        assert_eq!(f.woken(), (1, 1, 0));
    }

    #[test]
    fn a_timer_that_fires_early_is_armed_again_without_waking_anyone() {
        let f = Fixture::new();
        f.inner.wake.designate(&f.app_waker, false);
        f.inner.timer_waker().wake_by_ref();
        assert_eq!(f.woken(), (0, 0, 0), "nothing spawned or woken");
        // Armed for the handshake deadline, and registered with the timer's own waker.
        let timers = f.runtime.timers.lock().unwrap();
        assert_eq!(timers.len(), 1);
        let deadline = f.inner.lock().conn.poll_timeout();
        assert_eq!(*timers[0].at.lock().unwrap(), deadline);
        assert!(timers[0].waker.lock().unwrap().is_some());
    }

    #[test]
    fn the_background_task_ends_only_if_no_event_came_since_its_drive() {
        let f = Fixture::new();
        f.background_runs();
        let seen = f.inner.wake.driving();
        f.inner.dispatch(Source::Io);
        assert!(!f.inner.wake.background_may_end(seen), "an event came in");
        let seen = f.inner.wake.driving();
        assert!(f.inner.wake.background_may_end(seen));
        // Gone: the next event spawns a new one.
        f.inner.dispatch(Source::Io);
        assert_eq!(f.woken(), (1, 1, 0));
    }

    #[test]
    fn nothing_is_spawned_once_the_connection_is_finished() {
        let f = Fixture::new();
        f.background_runs();
        let waiting = f.inner.wake.finished();
        assert!(
            waiting.is_some(),
            "the waiting background task is handed back"
        );
        f.inner.dispatch(Source::Io);
        f.inner.timer_waker().wake_by_ref();
        assert_eq!(f.woken(), (0, 0, 0));
    }

    #[test]
    fn a_timer_never_keeps_the_connection_alive() {
        let f = Fixture::new();
        let timer = f.inner.timer_waker();
        let weak = Arc::downgrade(&f.inner);
        drop(f);
        assert!(weak.upgrade().is_none());
        timer.wake_by_ref();
    }
}
