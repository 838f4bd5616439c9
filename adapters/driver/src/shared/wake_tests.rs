//! How wake-ups are routed ([`super::Inner::dispatch`]) and how the timer queue serves
//! connections.

use super::*;
use crate::config::Config;
use crate::runtime::{Runtime, Timer, Transport};
use bytes::BytesMut;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
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
    assert!(f.inner.rt.has_entry(&*f.inner, deadline));
    assert_eq!(f.woken(), (1, 0, 0), "nothing woken");
    assert!(!f.inner.wake.has_background(), "no background task");
    // Early again: the entry stays, nothing more is spawned.
    f.inner.on_timer();
    assert!(f.inner.rt.has_entry(&*f.inner, deadline));
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
        assert!(rt.has_entry(&*f.inner, deadline));
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
    assert!(!f.inner.rt.has_entry(&*f.inner, deadline));
}

#[test]
fn a_finished_connection_leaves_the_timer_queue() {
    let f = Fixture::new();
    f.inner.on_timer();
    let deadline = f.inner.lock().conn.poll_timeout().unwrap();
    assert!(f.inner.rt.has_entry(&*f.inner, deadline));
    f.inner
        .lock()
        .finish(&f.inner.rt, crate::timers::key(&*f.inner), Instant::now());
    assert!(!f.inner.rt.has_entry(&*f.inner, deadline));
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
    assert!(rt.has_entry(&*f.inner, deadline));
    let key = crate::timers::key(&*f.inner);
    drop(f);
    assert!(weak.upgrade().is_none());
    // Its entry went with it.
    assert!(!rt.has_key(key));
}
