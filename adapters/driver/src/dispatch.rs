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
//! A due deadline (its entry in the timer queue, see [`crate::timers`]) always goes to the
//! background task (spawning it if need be): keep-alive pings and timeouts never depend
//! on the application. A
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
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Wake, Waker};
use std::time::Duration;

/// How long a background task stays after its last work, so that a connection driven in
/// the background for a while (only sending, say) does not spawn a task per message.
pub(crate) const BACKGROUND_LINGER: Duration = Duration::from_secs(1);

/// Routing of the connection's wake-ups (part of [`Inner`]).
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
    ///   of [`EVENT`], so never [`NOT_SETTLED`](crate::shared::NOT_SETTLED); coming round
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
/// out after it.
#[derive(Default)]
struct Route {
    background: Option<Waker>,
    spawn: bool,
}

impl Inner {
    /// Delivers a wake-up to whoever drives (see the module docs). Never call it with the
    /// connection's lock held.
    pub(crate) fn dispatch(self: &Arc<Self>, source: Source) {
        let mut route = Route::default();
        {
            let mut s = self.wake.slots();
            let state = &self.wake.state;
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
                    // Woken under the lock: a task's waker only schedules it.
                    if let Some(app) = &s.app {
                        app.wake_by_ref();
                    }
                    // A second event before the task drove: it may hold its `recv()`
                    // future without polling it; the background task steps in.
                    if before & APP_WOKEN != 0 {
                        self.wake.route_background(&mut s, &mut route);
                    }
                }
                None => self.wake.route_background(&mut s, &mut route),
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
            .state
            .fetch_and(!(DESIGNATED | APP_WOKEN), Ordering::SeqCst);
        if before & APP_WOKEN != 0 {
            self.wake_background();
        }
    }

    /// Wakes (or spawns) the background task, whoever is designated. Never call it with the
    /// connection's lock held.
    pub(crate) fn wake_background(self: &Arc<Self>) {
        let mut route = Route::default();
        self.wake
            .route_background(&mut self.wake.slots(), &mut route);
        self.follow(route);
    }

    /// Carries out a wake-up decided under the slots' lock, outside it: a waker may do
    /// anything, even wake this connection again.
    fn follow(self: &Arc<Self>, route: Route) {
        if let Some(w) = route.background {
            w.wake();
        }
        if route.spawn {
            self.rt
                .runtime
                .spawn(Box::pin(Background::new(self.clone())));
        }
    }

    /// The connection's entry in the timer queue came due (see [`crate::timers`]).
    ///
    /// The entry is set for the earliest deadline and left in place when a later one
    /// replaces it (say, once a reply has gone out), so it can come due with nothing due.
    /// Then it is simply armed again here: no task is woken, or spawned, for it. Only a
    /// due deadline needs the background task, whoever is designated.
    pub(crate) fn on_timer(self: &Arc<Self>) {
        let due = match self.shared.try_lock() {
            Ok(sh) if sh.app.driver_done => false,
            Ok(mut sh) => {
                let t = sh.nanos(self.runtime().now());
                if sh.timer_due(t) {
                    true
                } else {
                    let at = sh.deadline(t);
                    if at != crate::driver::NEVER {
                        sh.arm_timer(self, at, t);
                    }
                    false
                }
            }
            // Someone drives right now (perhaps this very thread): let the background
            // task look.
            Err(_) => true,
        };
        if due {
            self.dispatch(Source::Timer);
        }
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

impl Drop for Inner {
    /// A connection dropped before its I/O finished leaves no entry in the timer queue.
    fn drop(&mut self) {
        let key = crate::timers::key(self);
        let sh = self
            .shared
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        sh.disarm_timer(&self.rt, key);
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

    /// A runtime that keeps what it is asked to spawn, unpolled, and whose clock can be
    /// moved ahead.
    #[derive(Default)]
    struct Keep {
        spawned: Mutex<Vec<Pin<Box<dyn Future<Output = ()> + Send>>>>,
        timers: Mutex<Vec<Arc<FakeTimer>>>,
        ahead: Mutex<Duration>,
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

        fn now(&self) -> Instant {
            Instant::now() + *self.ahead.lock().unwrap()
        }
    }

    /// A timer that never fires by itself (the tests call `Inner::on_timer` instead).
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

        /// A connection on `runtime` (those made on one thread share its timer queue).
        fn on(runtime: Arc<Keep>) -> Self {
            Self::make(runtime, Duration::from_secs(10))
        }

        /// A connection whose only deadline is its handshake timeout, `timeout` from now.
        fn with_handshake_timeout(timeout: Duration) -> Self {
            Self::make(Arc::new(Keep::default()), timeout)
        }

        fn make(runtime: Arc<Keep>, timeout: Duration) -> Self {
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
        f.inner.on_timer();
        assert_eq!(f.woken(), (1, 0, 0));
        assert!(f.inner.wake.has_background());
        f.background_runs();
        f.inner.on_timer();
        assert_eq!(f.woken(), (1, 1, 0));
    }

    #[test]
    fn a_timer_that_fires_early_is_armed_again_without_waking_anyone() {
        let f = Fixture::new();
        f.inner.wake.designate(&f.app_waker, false);
        f.inner.on_timer();
        // Armed for the handshake deadline in the queue, whose task is the one spawn.
        let deadline = f.inner.lock().conn.poll_timeout().unwrap();
        assert!(f.inner.rt.has_entry(&f.inner, deadline));
        assert_eq!(f.woken(), (1, 0, 0), "nothing woken");
        assert!(!f.inner.wake.has_background(), "no background task");
        // Early again: the entry stays, nothing more is spawned.
        f.inner.on_timer();
        assert!(f.inner.rt.has_entry(&f.inner, deadline));
        assert_eq!(f.woken(), (1, 0, 0));
    }

    #[test]
    fn the_connections_of_a_thread_share_the_timer_tasks_of_one_queue() {
        const CONNS: usize = 40;
        let runtime = Arc::new(Keep::default());
        let all: Vec<Fixture> = (0..CONNS).map(|_| Fixture::on(runtime.clone())).collect();
        let rt = all[0].inner.rt.clone();
        for f in &all {
            assert!(Arc::ptr_eq(&f.inner.rt, &rt));
            f.inner.on_timer();
        }
        // At most one task per shard for all the entries, and no runtime timer per
        // connection.
        let tasks = all[0].spawned();
        assert!((1..=rt.shard_count()).contains(&tasks), "{tasks} tasks");
        assert!(tasks < CONNS);
        assert!(runtime.timers.lock().unwrap().is_empty());
        for f in &all {
            let deadline = f.inner.lock().conn.poll_timeout().unwrap();
            assert!(rt.has_entry(&f.inner, deadline));
        }
    }

    #[test]
    fn the_queue_task_hands_due_entries_to_their_connections_and_ends_when_empty() {
        let f = Fixture::new();
        f.inner.on_timer();
        assert_eq!(f.woken(), (1, 0, 0), "the queue's task");
        let mut task = f.runtime.spawned.lock().unwrap().remove(0);
        let (count, waker) = counter();
        let mut cx = Context::from_waker(&waker);
        // Nothing due yet: it sets its timer and waits.
        assert!(task.as_mut().poll(&mut cx).is_pending());
        assert_eq!(f.runtime.timers.lock().unwrap().len(), 1);
        // The handshake deadline passes: the connection's background task is spawned for
        // it, and with no entry left the queue's task ends.
        *f.runtime.ahead.lock().unwrap() = Duration::from_secs(11);
        assert!(task.as_mut().poll(&mut cx).is_ready());
        assert!(f.inner.wake.has_background());
        assert_eq!(f.spawned(), 1);
        assert_eq!(n(&count), 0);
        let deadline = f.inner.lock().conn.poll_timeout().unwrap();
        assert!(!f.inner.rt.has_entry(&f.inner, deadline));
    }

    #[test]
    fn a_finished_connection_leaves_the_timer_queue() {
        let f = Fixture::new();
        f.inner.on_timer();
        let deadline = f.inner.lock().conn.poll_timeout().unwrap();
        assert!(f.inner.rt.has_entry(&f.inner, deadline));
        f.inner.lock().finish(&f.inner, Instant::now());
        assert!(!f.inner.rt.has_entry(&f.inner, deadline));
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
        f.inner.on_timer();
        assert_eq!((n(&f.bg), n(&f.app)), (0, 0));
        assert!(!f.inner.wake.has_background());
    }

    #[test]
    fn a_timer_never_keeps_the_connection_alive() {
        let f = Fixture::new();
        f.inner.on_timer();
        let rt = f.inner.rt.clone();
        let deadline = f.inner.lock().conn.poll_timeout().unwrap();
        let weak = Arc::downgrade(&f.inner);
        assert!(rt.has_entry(&f.inner, deadline));
        let key = crate::timers::key(&f.inner);
        drop(f);
        assert!(weak.upgrade().is_none());
        // Its entry went with it.
        assert!(!rt.has_key(key));
    }
}
