//! A harness to test the driver without sockets and without waiting, the way quinn tests
//! quinn-proto with an in-memory `Pair`:
//!
//! - [`Sim`]: a [`Runtime`] with a virtual clock and a tiny single-threaded executor. Spawned
//!   tasks (the connection's background task, the timer queue's task) run when the test
//!   calls [`Sim::run`] (until nothing is ready), [`Sim::block_on`] or [`Sim::advance`];
//!   time moves only when the test says so.
//! - an in-memory pipe with a capacity per direction, whose driver end is the connection's
//!   [`Transport`]: a peer that does not read fills it, and the driver's writes wait.
//! - [`Peer`]: a `tether_core::Connection` on the other end of the pipe, driven by the test
//!   directly, so that a test sends and sees exact frames.
//!
//! The futures the test polls ([`Sim::poll`], [`Sim::block_on`]) play one application
//! task: they share one waker, and [`Sim::woken`] tells whether it was woken.
//!
//! Worth knowing:
//! - [`Sim::block_on`] returns as soon as its future is ready; work handed to the background
//!   task meanwhile happens at the next [`Sim::run`] (or `block_on`, or `advance`). Call
//!   `sim.run()` before looking at what the peer received.
//! - When nothing is ready, `block_on` moves the clock to the next timer; to check *when*
//!   something happens, [`Sim::poll`] and [`Sim::advance`] instead.
//! - The peer writes only in [`Peer::send`], [`Peer::close`] and [`Peer::flush`]: the pongs
//!   and the close echo its core queues by itself wait for a flush.
//! - A send future dropped while it waits drops its message (it is cancel-safe): keep it
//!   pinned to see it complete.
//!
//! ```text
//! let sim = Sim::new();
//! let (mut ws, mut peer) = sim.open(Role::Server, &Config::default());
//! peer.send(Message::text("hi"));
//! assert_eq!(sim.block_on(ws.recv()).unwrap().unwrap(), Message::text("hi"));
//! sim.advance(Duration::from_secs(20)); // keep-alive time
//! assert!(matches!(peer.read()[..], [Event::Ping(_)]));
//! ```

use crate::{Config, Runtime, Timer, Transport, WebSocket};
use bytes::BytesMut;
use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::io::{self, IoSlice};
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};
use tether_core::{Accept, ClientRequest, CloseCode, Connection, Event, Message, Role, Transmit};

/// Polls of spawned tasks in one [`Sim::run`] before it gives up: tasks that keep waking
/// each other without end are a bug worth a failure.
const MAX_POLLS: usize = 100_000;

/// How much virtual time [`Sim::block_on`] lets pass, waiting for timers, before it
/// decides that the future will never complete.
const MAX_WAIT: Duration = Duration::from_secs(3600);

/// Capacity of each direction of the pipe made by [`Sim::open`].
pub(crate) const PIPE_CAPACITY: usize = 1 << 20;

// ---- the clock ----

/// The virtual clock: a fixed base and how much time has passed.
#[derive(Debug)]
struct Clock {
    base: Instant,
    elapsed: Mutex<Duration>,
}

impl Clock {
    fn now(&self) -> Instant {
        self.base + *lock(&self.elapsed)
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A timer of the virtual clock: it fires when the test moves the clock past its deadline.
#[derive(Debug)]
struct TimerState {
    deadline: Mutex<Instant>,
    waker: Mutex<Option<Waker>>,
}

#[derive(Debug)]
struct SimTimer {
    state: Arc<TimerState>,
    clock: Arc<Clock>,
}

impl Timer for SimTimer {
    fn reset(self: Pin<&mut Self>, deadline: Instant) {
        *lock(&self.state.deadline) = deadline;
    }

    fn poll_expired(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.clock.now() >= *lock(&self.state.deadline) {
            return Poll::Ready(());
        }
        *lock(&self.state.waker) = Some(cx.waker().clone());
        Poll::Pending
    }
}

// ---- the executor ----

type Task = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The id of the future the test itself polls ([`Sim::poll`], [`Sim::block_on`]).
const MAIN: usize = usize::MAX;

/// Which tasks are ready to be polled.
#[derive(Debug, Default)]
struct Ready {
    queue: Mutex<VecDeque<usize>>,
    /// The test's own future was woken.
    main: AtomicBool,
}

/// Wakes one task: marks it ready.
struct TaskWaker {
    id: usize,
    ready: Arc<Ready>,
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if self.id == MAIN {
            self.ready.main.store(true, Ordering::SeqCst);
            return;
        }
        let mut queue = lock(&self.ready.queue);
        if !queue.contains(&self.id) {
            queue.push_back(self.id);
        }
    }
}

/// A spawned task.
struct Slot {
    /// `None` once complete (or while being polled).
    future: Option<Task>,
    waker: Waker,
}

/// The runtime the connections under test run on.
struct SimRuntime {
    clock: Arc<Clock>,
    /// Spawned tasks by id.
    tasks: Mutex<Vec<Slot>>,
    /// The waker of the test's own future.
    main: Waker,
    ready: Arc<Ready>,
    timers: Mutex<Vec<Weak<TimerState>>>,
}

impl fmt::Debug for SimRuntime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimRuntime")
            .field("elapsed", &*lock(&self.clock.elapsed))
            .finish_non_exhaustive()
    }
}

impl Runtime for SimRuntime {
    fn spawn(&self, future: Pin<Box<dyn Future<Output = ()> + Send>>) {
        let id = {
            let mut tasks = lock(&self.tasks);
            let id = tasks.len();
            // One waker per task, as real executors have: `Waker::will_wake` holds.
            let waker = Waker::from(Arc::new(TaskWaker {
                id,
                ready: self.ready.clone(),
            }));
            tasks.push(Slot {
                future: Some(future),
                waker,
            });
            id
        };
        lock(&self.ready.queue).push_back(id);
    }

    fn timer(&self, deadline: Instant) -> Pin<Box<dyn Timer>> {
        let state = Arc::new(TimerState {
            deadline: Mutex::new(deadline),
            waker: Mutex::new(None),
        });
        let mut timers = lock(&self.timers);
        timers.retain(|t| t.strong_count() > 0);
        timers.push(Arc::downgrade(&state));
        Box::pin(SimTimer {
            state,
            clock: self.clock.clone(),
        })
    }

    fn now(&self) -> Instant {
        self.clock.now()
    }
}

/// A runtime with a virtual clock and a single-threaded executor; see the module docs.
pub(crate) struct Sim {
    rt: Arc<SimRuntime>,
}

impl Sim {
    pub(crate) fn new() -> Self {
        let ready = Arc::<Ready>::default();
        let main = Waker::from(Arc::new(TaskWaker {
            id: MAIN,
            ready: ready.clone(),
        }));
        Self {
            rt: Arc::new(SimRuntime {
                clock: Arc::new(Clock {
                    base: Instant::now(),
                    elapsed: Mutex::new(Duration::ZERO),
                }),
                tasks: Mutex::new(Vec::new()),
                main,
                ready,
                timers: Mutex::new(Vec::new()),
            }),
        }
    }

    /// The runtime, to hand to `open`, `accept`, `client`.
    pub(crate) fn runtime(&self) -> Arc<dyn Runtime> {
        self.rt.clone()
    }

    /// Virtual time passed since the start.
    pub(crate) fn elapsed(&self) -> Duration {
        *lock(&self.rt.clock.elapsed)
    }

    /// Spawned tasks that have not completed.
    pub(crate) fn tasks(&self) -> usize {
        lock(&self.rt.tasks)
            .iter()
            .filter(|t| t.future.is_some())
            .count()
    }

    /// Runs the spawned tasks until none is ready. Time does not move.
    pub(crate) fn run(&self) {
        for _ in 0..MAX_POLLS {
            let Some(id) = lock(&self.rt.ready.queue).pop_front() else {
                return;
            };
            // Taken out while polled: the task may spawn, or wake itself.
            let (mut task, waker) = {
                let mut tasks = lock(&self.rt.tasks);
                let slot = &mut tasks[id];
                let Some(task) = slot.future.take() else {
                    continue;
                };
                (task, slot.waker.clone())
            };
            if task
                .as_mut()
                .poll(&mut Context::from_waker(&waker))
                .is_pending()
            {
                lock(&self.rt.tasks)[id].future = Some(task);
            }
        }
        panic!("tasks still ready after {MAX_POLLS} polls: a busy loop");
    }

    /// Polls the test's `future` once, as the application's task would (its waker sets
    /// [`Sim::woken`]). Spawned tasks do not run: call [`Sim::run`].
    pub(crate) fn poll<F: Future + ?Sized>(&self, future: Pin<&mut F>) -> Poll<F::Output> {
        self.rt.ready.main.store(false, Ordering::SeqCst);
        future.poll(&mut Context::from_waker(&self.rt.main))
    }

    /// Whether the future last given to [`Sim::poll`] has been woken since.
    pub(crate) fn woken(&self) -> bool {
        self.rt.ready.main.load(Ordering::SeqCst)
    }

    /// Runs `future` to completion with the spawned tasks, polling it whenever it is woken.
    /// When nothing is ready the clock jumps to the next timer (as tokio's paused time
    /// does). Panics if nothing could ever wake it (no timer left, or an hour of virtual
    /// time passed): the future hangs.
    pub(crate) fn block_on<F: Future>(&self, future: F) -> F::Output {
        let mut future = pin!(future);
        let give_up = self.elapsed() + MAX_WAIT;
        let mut poll = true;
        loop {
            if poll && let Poll::Ready(out) = self.poll(future.as_mut()) {
                return out;
            }
            self.run();
            poll = self.woken();
            if poll {
                continue;
            }
            match self.next_timer() {
                Some(at) if at <= give_up => self.set_clock(at),
                Some(_) => panic!("still waiting after {MAX_WAIT:?} of virtual time"),
                None => panic!("stalled: nothing is ready and no timer is set"),
            }
            self.fire_timers();
        }
    }

    /// Moves the clock `by` ahead, firing each timer at its deadline, in order, and
    /// running the tasks until nothing is ready after each.
    pub(crate) fn advance(&self, by: Duration) {
        let target = self.elapsed() + by;
        loop {
            self.fire_timers();
            self.run();
            match self.next_timer() {
                Some(at) if at <= target => self.set_clock(at),
                _ => break,
            }
        }
        self.set_clock(target);
        self.fire_timers();
        self.run();
    }

    /// The earliest deadline of a timer somebody waits for.
    fn next_timer(&self) -> Option<Duration> {
        let timers = lock(&self.rt.timers);
        timers
            .iter()
            .filter_map(Weak::upgrade)
            .filter(|t| lock(&t.waker).is_some())
            .map(|t| lock(&t.deadline).saturating_duration_since(self.rt.clock.base))
            .min()
    }

    fn set_clock(&self, elapsed: Duration) {
        let mut e = lock(&self.rt.clock.elapsed);
        *e = (*e).max(elapsed);
    }

    /// Wakes the tasks whose timers are due.
    fn fire_timers(&self) {
        let now = self.rt.clock.now();
        let due: Vec<Waker> = lock(&self.rt.timers)
            .iter()
            .filter_map(Weak::upgrade)
            .filter(|t| *lock(&t.deadline) <= now)
            .filter_map(|t| lock(&t.waker).take())
            .collect();
        due.into_iter().for_each(Waker::wake);
    }

    // ---- connections ----

    /// An open connection in `role` over a pipe of [`PIPE_CAPACITY`] each way, with its
    /// peer (no opening handshake: see [`crate::open`]).
    pub(crate) fn open(&self, role: Role, config: &Config) -> (WebSocket, Peer) {
        self.open_with_capacity(role, config, PIPE_CAPACITY, PIPE_CAPACITY)
    }

    /// [`Sim::open`] with the capacity of each direction of the pipe: `to_peer` bytes
    /// written by the driver and not read by the peer fill it.
    pub(crate) fn open_with_capacity(
        &self,
        role: Role,
        config: &Config,
        to_peer: usize,
        to_driver: usize,
    ) -> (WebSocket, Peer) {
        let (end, pipe) = pipe(to_peer, to_driver);
        let peer_role = match role {
            Role::Server => Role::Client,
            Role::Client => Role::Server,
        };
        let now = self.rt.clock.now();
        let conn = Connection::open(peer_config(), peer_role, None, [7; 32], now);
        let ws = crate::open(self.runtime(), end, role, None, None, config).expect("open");
        (ws, self.peer(conn, pipe))
    }

    /// A server connection after a real opening handshake (see [`crate::accept`]): the peer
    /// is the client that sent the request and read the answer.
    pub(crate) fn accept(&self, config: &Config) -> (WebSocket, Peer) {
        let (end, pipe) = pipe(PIPE_CAPACITY, PIPE_CAPACITY);
        let now = self.rt.clock.now();
        let request = ClientRequest::new("ws://sim/").expect("request");
        let conn = Connection::client(peer_config(), &request, [7; 32], now).expect("client");
        let mut peer = self.peer(conn, pipe);
        peer.flush();
        let accepting = crate::accept(self.runtime(), end, config, |_| Ok(Accept::new()));
        let ws = self.block_on(accepting).expect("accepted");
        let events = peer.read();
        assert!(
            matches!(events[..], [Event::Connected(_)]),
            "the peer sees the answer: {events:?}"
        );
        (ws, peer)
    }

    fn peer(&self, conn: Connection, pipe: Arc<Mutex<Pipe>>) -> Peer {
        Peer {
            conn,
            pipe,
            clock: self.rt.clock.clone(),
            unsent: VecDeque::new(),
            shutdown: false,
        }
    }
}

impl Drop for Sim {
    /// Drops the tasks left (they hold the connections, which hold the runtime).
    fn drop(&mut self) {
        loop {
            let tasks = std::mem::take(&mut *lock(&self.rt.tasks));
            if tasks.is_empty() {
                break;
            }
            drop(tasks);
        }
    }
}

/// The peer's settings: no timers of its own (the test decides what it does and when).
fn peer_config() -> tether_core::Config {
    let mut config = tether_core::Config::default();
    config.timeouts.handshake = None;
    config.timeouts.ping_interval = None;
    config.timeouts.pong_timeout = None;
    config.timeouts.close = None;
    config
}

// ---- the pipe ----

/// One direction of the pipe.
#[derive(Debug, Default)]
struct Dir {
    bytes: VecDeque<u8>,
    capacity: usize,
    /// The writer shut it down: the reader sees end of stream once it is empty.
    eof: bool,
    /// The driver waits to read, or to write.
    read_waker: Option<Waker>,
    write_waker: Option<Waker>,
    /// The next read (or write) of the driver fails with this.
    error: Option<io::ErrorKind>,
}

impl Dir {
    fn new(capacity: usize) -> Self {
        Self {
            capacity,
            ..Self::default()
        }
    }

    /// Takes bytes from the front and tells a waiting writer there is room.
    fn take(&mut self, max: usize) -> Vec<u8> {
        let n = max.min(self.bytes.len());
        if n > 0
            && let Some(w) = self.write_waker.take()
        {
            w.wake();
        }
        self.bytes.drain(..n).collect()
    }

    /// Appends what fits and tells a waiting reader; returns how much did.
    fn put(&mut self, data: &[u8]) -> usize {
        let n = data.len().min(self.capacity - self.bytes.len());
        self.bytes.extend(&data[..n]);
        if n > 0
            && let Some(w) = self.read_waker.take()
        {
            w.wake();
        }
        n
    }
}

/// Both directions, shared by the two ends.
#[derive(Debug)]
struct Pipe {
    to_peer: Dir,
    to_driver: Dir,
}

fn pipe(to_peer: usize, to_driver: usize) -> (DriverEnd, Arc<Mutex<Pipe>>) {
    let pipe = Arc::new(Mutex::new(Pipe {
        to_peer: Dir::new(to_peer),
        to_driver: Dir::new(to_driver),
    }));
    (DriverEnd(pipe.clone()), pipe)
}

/// The driver's end of the pipe.
struct DriverEnd(Arc<Mutex<Pipe>>);

impl Transport for DriverEnd {
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut BytesMut) -> Poll<io::Result<usize>> {
        let mut pipe = lock(&self.0);
        let dir = &mut pipe.to_driver;
        if let Some(kind) = dir.error.take() {
            return Poll::Ready(Err(kind.into()));
        }
        if dir.bytes.is_empty() {
            if dir.eof {
                return Poll::Ready(Ok(0));
            }
            dir.read_waker = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let data = dir.take((buf.capacity() - buf.len()).max(1));
        buf.extend_from_slice(&data);
        Poll::Ready(Ok(data.len()))
    }

    fn poll_write(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[IoSlice::new(buf)])
    }

    /// Writes as many of the slices as fit, as `writev` does.
    fn poll_write_vectored(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let mut pipe = lock(&self.0);
        let dir = &mut pipe.to_peer;
        if let Some(kind) = dir.error.take() {
            return Poll::Ready(Err(kind.into()));
        }
        if dir.eof {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        if dir.bytes.len() == dir.capacity && bufs.iter().any(|b| !b.is_empty()) {
            dir.write_waker = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let mut n = 0;
        for b in bufs {
            let put = dir.put(b);
            n += put;
            if put < b.len() {
                break;
            }
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        lock(&self.0).to_peer.eof = true;
        Poll::Ready(Ok(()))
    }
}

// ---- the peer ----

/// The other end of the connection: a `tether_core::Connection` the test drives by hand.
/// It reads only when told ([`Peer::read`]) and writes only when told ([`Peer::send`],
/// [`Peer::flush`]): its automatic pongs and close echo wait for a flush.
pub(crate) struct Peer {
    pub(crate) conn: Connection,
    pipe: Arc<Mutex<Pipe>>,
    clock: Arc<Clock>,
    /// Output that did not fit in the pipe yet.
    unsent: VecDeque<u8>,
    /// The core asked for the transport to be closed once `unsent` is written.
    shutdown: bool,
}

impl Peer {
    /// Queues `message` and writes what fits.
    pub(crate) fn send(&mut self, message: Message) {
        let now = self.clock.now();
        self.conn.send(now, message).expect("the peer can send");
        self.flush();
    }

    /// Queues `message` without writing it (a later flush writes everything at once).
    pub(crate) fn queue(&mut self, message: Message) {
        let now = self.clock.now();
        self.conn.send(now, message).expect("the peer can send");
    }

    /// Writes `bytes` as they are (a frame the peer's core would not make, such as a
    /// protocol violation), after what it queued before, as far as the pipe takes them.
    pub(crate) fn write_raw(&mut self, bytes: &[u8]) {
        self.flush();
        self.unsent.extend(bytes);
        self.flush();
    }

    /// Queues a close frame and writes what fits.
    pub(crate) fn close(&mut self, code: CloseCode, reason: &str) {
        let now = self.clock.now();
        self.conn
            .close(now, code, reason)
            .expect("the peer can close");
        self.flush();
    }

    /// Writes what the core queued (pongs, close echo, messages) as far as the pipe
    /// takes it, and ends the peer's output once its core says so; returns whether
    /// everything went.
    pub(crate) fn flush(&mut self) -> bool {
        let mut out = Vec::new();
        while let Some(t) = self.conn.poll_transmit(&mut out) {
            if t == Transmit::Shutdown {
                self.shutdown = true;
                break;
            }
        }
        self.unsent.extend(out);
        let (front, back) = self.unsent.as_slices();
        let mut pipe = lock(&self.pipe);
        let mut n = pipe.to_driver.put(front);
        if n == front.len() {
            n += pipe.to_driver.put(back);
        }
        self.unsent.drain(..n);
        drop(pipe);
        if self.shutdown && self.unsent.is_empty() {
            self.shutdown();
        }
        self.unsent.is_empty()
    }

    /// Reads everything the driver wrote, feeds it to the core (end of stream too, once the
    /// driver shut the pipe down) and returns the core's events. Writes nothing.
    pub(crate) fn read(&mut self) -> Vec<Event> {
        let (data, eof) = {
            let mut pipe = lock(&self.pipe);
            let dir = &mut pipe.to_peer;
            (dir.take(usize::MAX), dir.eof && dir.bytes.is_empty())
        };
        let now = self.clock.now();
        self.conn.handle_input(now, &data);
        if eof {
            self.conn.handle_eof(now);
        }
        std::iter::from_fn(|| self.conn.poll_event()).collect()
    }

    /// Bytes the driver wrote that the peer has not read.
    pub(crate) fn unread(&self) -> usize {
        lock(&self.pipe).to_peer.bytes.len()
    }

    /// Bytes the peer wrote that the driver has not read.
    pub(crate) fn unread_by_driver(&self) -> usize {
        lock(&self.pipe).to_driver.bytes.len()
    }

    /// Ends the peer's output: the driver reads end of stream after what is in the pipe.
    pub(crate) fn shutdown(&mut self) {
        let mut pipe = lock(&self.pipe);
        pipe.to_driver.eof = true;
        if let Some(w) = pipe.to_driver.read_waker.take() {
            w.wake();
        }
    }

    /// The driver's next read fails with `kind`.
    pub(crate) fn fail_driver_read(&mut self, kind: io::ErrorKind) {
        let mut pipe = lock(&self.pipe);
        pipe.to_driver.error = Some(kind);
        if let Some(w) = pipe.to_driver.read_waker.take() {
            w.wake();
        }
    }

    /// The driver's next write fails with `kind`.
    pub(crate) fn fail_driver_write(&mut self, kind: io::ErrorKind) {
        let mut pipe = lock(&self.pipe);
        pipe.to_peer.error = Some(kind);
        if let Some(w) = pipe.to_peer.write_waker.take() {
            w.wake();
        }
    }
}

/// The text messages among `events`.
pub(crate) fn texts(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Message(Message::Text(t)) => Some(t.as_str().to_owned()),
            _ => None,
        })
        .collect()
}

mod tests;
