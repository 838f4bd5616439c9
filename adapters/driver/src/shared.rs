//! One connection: [`Inner`], the one allocation its handles, its driver and its timer
//! entry share, with every method of it in this module (building it, locking it, routing
//! its wake-ups, driving it), and [`Background`], the task that drives it while no
//! application task does.

use crate::config::Config;
use crate::dispatch::{BACKGROUND_LINGER, Route, Source, WakeState};
use crate::driver::{Drive, Step};
use crate::id::ConnectionId;
use crate::io::Io;
use crate::runtime::{Runtime, Transport};
use crate::state::{App, NOT_SETTLED, Phase, Reader, Shared, Writer};
use crate::time::{NEVER, after};
use crate::timers::{self, Entry, Rt};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Instant;
use tether_core::{Connection, DeflateParams, Request};

/// Rounds of work (reads, writes, timer firings) before the driver yields to its executor.
const BUDGET: usize = 32;

/// What the handshake settled, readable without the lock.
#[derive(Debug, Default)]
pub(crate) struct Info {
    pub(crate) subprotocol: Option<Box<str>>,
    pub(crate) deflate: Option<DeflateParams>,
    /// The upgrade request, for a connection accepted in two steps
    /// ([`crate::Incoming::accept`]).
    pub(crate) request: Option<Box<Request>>,
    /// The peer's address, for a connection accepted in two steps from a listener
    /// ([`crate::IncomingFuture::peer_addr`]).
    pub(crate) peer_addr: Option<std::net::SocketAddr>,
}

/// One per connection: the lock-protected state and what never changes.
#[derive(Debug)]
pub(crate) struct Inner {
    /// The connection's number, unique in the process.
    pub(crate) id: ConnectionId,
    pub(crate) shared: Mutex<Shared>,
    /// The runtime, and the timer queue this connection's deadlines wait in.
    pub(crate) rt: Arc<Rt>,
    /// Boxed, and only when there is something to say: most connections have no
    /// subprotocol and no compression.
    pub(crate) info: OnceLock<Option<Box<Info>>>,
    /// Decides which task the connection's wake-ups go to (see [`crate::dispatch`]).
    pub(crate) wake: WakeState,
}

impl Inner {
    pub(crate) fn new(
        runtime: Arc<dyn Runtime>,
        conn: Connection,
        transport: Box<dyn Transport>,
        config: &Config,
        handshake_taken: bool,
    ) -> Self {
        Self {
            id: ConnectionId::next(),
            shared: Mutex::new(Shared {
                conn,
                transport: Some(transport),
                io: Io::new(config.read_buffer_size),
                app: App {
                    kick: false,
                    settled: NOT_SETTLED,
                    hwm: u32::try_from(config.write_high_water_mark).unwrap_or(u32::MAX),
                    cold: None,
                    send_waker: None,
                    reader_task: None,
                    phase: if handshake_taken {
                        Phase::Running
                    } else {
                        Phase::Handshake
                    },
                    read_paused: false,
                    reader: Reader::Idle,
                    writer: Writer::Alive,
                    reply_due: false,
                },
            }),
            rt: Rt::for_thread(runtime),
            info: OnceLock::new(),
            wake: WakeState::default(),
        }
    }

    /// The runtime the connection runs on.
    pub(crate) fn runtime(&self) -> &dyn Runtime {
        &*self.rt.runtime
    }

    /// Locks the shared state. Never held across an `.await` or a `Pending`.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records what the handshake settled (once), and the request and the peer's address
    /// if they are to be kept.
    pub(crate) fn set_info(
        &self,
        conn: &Connection,
        request: Option<Box<Request>>,
        peer_addr: Option<std::net::SocketAddr>,
    ) {
        let subprotocol = conn.subprotocol();
        let deflate = conn.deflate_params();
        let any = subprotocol.is_some() || deflate.is_some() || request.is_some();
        let info = (any || peer_addr.is_some()).then(|| {
            Box::new(Info {
                subprotocol: subprotocol.map(Box::from),
                deflate,
                request,
                peer_addr,
            })
        });
        let _ = self.info.set(info);
    }

    /// What the handshake settled, once it is known.
    pub(crate) fn info(&self) -> Option<&Info> {
        self.info.get().and_then(|i| i.as_deref())
    }

    /// Delivers a wake-up to whoever drives (see [`crate::dispatch`]). Never call it with
    /// the connection's lock held.
    pub(crate) fn dispatch(self: &Arc<Self>, source: Source) {
        let route = self.wake.route(source);
        self.follow(route);
    }

    /// The designated task stops waiting in `recv()`; the background task takes over (and
    /// is woken, or spawned, if an event came in that the task did not handle). Never call
    /// it with the connection's lock held.
    pub(crate) fn resign(self: &Arc<Self>) {
        if self.wake.resign() {
            self.wake_background();
        }
    }

    /// Wakes (or spawns) the background task, whoever is designated. Never call it with the
    /// connection's lock held.
    pub(crate) fn wake_background(self: &Arc<Self>) {
        let route = self.wake.route_to_background();
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
            Ok(sh) if sh.app.driver_done() => false,
            Ok(mut sh) => {
                let t = sh.nanos(self.runtime().now());
                if sh.timer_due(t) {
                    true
                } else {
                    let at = sh.deadline(t);
                    if at != NEVER {
                        sh.arm_timer(&self.rt, self, at, t);
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
        if sh.app.driver_done() {
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
            match sh.step(&self.rt, self, now, &mut cx) {
                Step::Again => {}
                Step::Wait => {
                    sh.app.settled = seen;
                    drive = Drive::Waiting;
                    break;
                }
                Step::Done => {
                    self.finished(sh, now);
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

    /// Ends the connection's I/O (a round returned [`Step::Done`]).
    fn finished(self: &Arc<Self>, sh: &mut Shared, now: Instant) {
        sh.finish(&self.rt, timers::key(&**self), now);
        // A background task waiting for work ends now.
        if let Some(w) = self.wake.finished() {
            w.wake();
        }
    }

    /// Drives the connection from the calling task, under its lock, after the application
    /// queued output without waking the driver ([`crate::Cork`]): when nothing else
    /// happened since the last drive found nothing to do (no wake-up, no kick), a round
    /// that only writes ([`Shared::write_round`]: no read is tried, and the wake-ups that
    /// come meanwhile are left to the driver they woke); otherwise, or when that round
    /// finds more to do, [`Inner::drive_at`].
    pub(crate) fn drive_output(self: &Arc<Self>, sh: &mut Shared, now: Instant) {
        if sh.app.driver_done() {
            return;
        }
        if !self.needs_drive(sh) {
            let waker = sh
                .io
                .waker
                .take()
                .unwrap_or_else(|| Waker::from(self.clone()));
            let round = sh.write_round(&self.rt, self, now, &mut Context::from_waker(&waker));
            sh.io.waker = Some(waker);
            match round {
                Some(Step::Done) => {
                    self.finished(sh, now);
                    return;
                }
                Some(_) => return,
                None => {}
            }
        }
        self.drive_at(sh, Some(now));
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

/// The timer queue tells the connection when its entry comes due.
impl Entry for Inner {
    fn due(self: Arc<Self>) {
        self.on_timer();
    }
}

impl Drop for Inner {
    /// A connection dropped before its I/O finished leaves no entry in the timer queue.
    fn drop(&mut self) {
        let key = timers::key(self);
        let sh = self
            .shared
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        sh.disarm_timer(&self.rt, key);
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
        if !sh.app.driver_done() {
            let now = inner.runtime().now();
            sh.finish(&inner.rt, timers::key(&*inner), now);
            drop(sh);
            let _ = inner.wake.finished();
        }
    }
}

#[cfg(test)]
mod wake_tests;

#[cfg(test)]
mod tests {
    use super::Inner;

    /// The state of an idle connection, with the `Arc`'s two counts, stays within 392
    /// bytes: glibc's 400-byte chunk (384 bytes, a size class of jemalloc and mimalloc,
    /// until the 8-byte `ConnectionId` came). (An `Io` at rest holds no buffer, no timer
    /// and no task of its own; see `BENCHMARKS.md`.)
    #[test]
    fn the_shared_state_of_a_connection_fits_in_392_bytes() {
        let size = std::mem::size_of::<Inner>() + 2 * std::mem::size_of::<usize>();
        assert!(size <= 392, "{size} bytes");
    }
}
