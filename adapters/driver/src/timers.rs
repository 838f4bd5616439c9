//! One timer for the connections of a thread: a queue of their deadlines, served by one
//! runtime timer and one task.
//!
//! A runtime timer for each connection would cost an allocation of the runtime's (112
//! bytes for a tokio `Sleep`) and one for its waker. Instead each connection keeps at most
//! one entry in the queue of the [`Rt`] it was made with. The connections made on one
//! thread with one runtime share that `Rt`; its task exists while the queue has entries,
//! sleeps until the earliest one, and then tells each due connection ([`Entry::due`]:
//! `Inner::on_timer`, which wakes (or spawns) the connection's background task if a
//! deadline is due, or arms the connection's entry again if its deadline moved).
//!
//! The queue holds connections weakly: an entry never keeps a connection alive. A
//! connection removes its entry when its I/O finishes, and when it is dropped.
//!
//! The queue is split in shards by connection (one per CPU, at most 16), each with its
//! own lock, timer and task, so that the connections of a multi-threaded server, whose
//! accept loop usually runs on one thread, do not all contend for one lock.

use crate::runtime::{Runtime, Timer};
use crate::time::{Nanos, since};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// Rounds of due entries the queue's task handles before it yields to its executor.
const BUDGET: usize = 16;

/// What the queue holds (weakly): a connection, told when its deadline comes.
pub(crate) trait Entry: Send + Sync + 'static {
    /// The entry's deadline came. (It may find nothing due: a connection leaves its entry
    /// in place when its deadline moves later.)
    fn due(self: Arc<Self>);
}

/// A connection's runtime, and the timer queue it shares with the other connections made
/// on the same thread with the same runtime.
pub(crate) struct Rt {
    pub(crate) runtime: Arc<dyn Runtime>,
    /// The queue's deadlines count from here (nanoseconds: 8 bytes instead of 16).
    epoch: Instant,
    shards: Box<[Mutex<Queue>]>,
}

/// Shards of a queue at most.
const MAX_SHARDS: usize = 16;

/// The entries and the task that serves them.
struct Queue {
    /// (deadline in nanoseconds after the epoch, the connection's address) → the
    /// connection.
    entries: BTreeMap<(Nanos, usize), Weak<dyn Entry>>,
    task: Task,
    /// The task's runtime timer, and the deadline it is set for.
    sleep: Option<Pin<Box<dyn Timer>>>,
    sleep_at: Option<Instant>,
}

/// The queue's task.
enum Task {
    /// There is none: the next entry spawns it.
    None,
    /// Spawned, not polled yet (it sets its timer when it is).
    Spawned,
    /// Running; woken with this waker.
    Running(Waker),
}

impl fmt::Debug for Rt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rt")
            .field("runtime", &self.runtime)
            .finish_non_exhaustive()
    }
}

/// The key of `entry` in a queue: its address, unique while it (or a `Weak` to it) lives.
pub(crate) fn key<E: Entry + ?Sized>(entry: &E) -> usize {
    std::ptr::from_ref(entry).cast::<()>() as usize
}

impl Rt {
    /// The `Rt` of `runtime` on this thread: the one the last connection made here used,
    /// if it was for the same runtime, or a new one.
    pub(crate) fn for_thread(runtime: Arc<dyn Runtime>) -> Arc<Rt> {
        thread_local! {
            static LAST: RefCell<Option<Arc<Rt>>> = const { RefCell::new(None) };
        }
        let fresh = |runtime: Arc<dyn Runtime>| {
            let shards = std::thread::available_parallelism().map_or(1, |n| n.get());
            let queue = || {
                Mutex::new(Queue {
                    entries: BTreeMap::new(),
                    task: Task::None,
                    sleep: None,
                    sleep_at: None,
                })
            };
            Arc::new(Rt {
                epoch: runtime.now(),
                runtime,
                shards: (0..shards.min(MAX_SHARDS)).map(|_| queue()).collect(),
            })
        };
        LAST.try_with(|last| {
            let mut last = last.borrow_mut();
            match &*last {
                Some(rt) if Arc::ptr_eq(&rt.runtime, &runtime) => rt.clone(),
                _ => {
                    let rt = fresh(runtime.clone());
                    *last = Some(rt.clone());
                    rt
                }
            }
        })
        // (Thread exit: a queue of its own.)
        .unwrap_or_else(|_| fresh(runtime))
    }

    /// `at` as a deadline of the queue (nanoseconds after its epoch; 0 before it).
    fn tick(&self, at: Instant) -> Nanos {
        since(self.epoch, at)
    }

    /// The shard of the connection at `key`.
    fn shard(&self, key: usize) -> usize {
        // (Fibonacci hashing: neighbouring addresses land in different shards.)
        let hash = (key as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32;
        (hash % self.shards.len() as u64) as usize
    }

    fn lock(&self, shard: usize) -> MutexGuard<'_, Queue> {
        self.shards[shard]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Moves the entry of `entry` from `old` (if it has one) to `at`. May spawn the
    /// queue's task: never call it while holding a lock the runtime needs to drop a task
    /// (the connection's own lock is fine: the task's drop does not take it).
    pub(crate) fn schedule<E: Entry>(
        self: &Arc<Self>,
        entry: &Arc<E>,
        old: Option<Instant>,
        at: Instant,
    ) {
        let key = key(&**entry);
        let shard = self.shard(key);
        let mut spawn = false;
        let mut wake = None;
        {
            let mut q = self.lock(shard);
            if let Some(old) = old {
                q.entries.remove(&(self.tick(old), key));
            }
            let weak: Weak<E> = Arc::downgrade(entry);
            q.entries
                .insert((self.tick(at), key), weak as Weak<dyn Entry>);
            match &q.task {
                Task::None => {
                    q.task = Task::Spawned;
                    spawn = true;
                }
                // Its first poll sets its timer for the earliest entry.
                Task::Spawned => {}
                // Its timer is made only by the task itself, on the runtime.
                Task::Running(waker) if q.sleep.is_none() => wake = Some(waker.clone()),
                Task::Running(waker) => {
                    if q.sleep_at.is_none_or(|s| at < s) {
                        let waker = waker.clone();
                        if q.set_sleep(&self.runtime, at, &waker).is_ready() {
                            wake = Some(waker);
                        }
                    }
                }
            }
        }
        if let Some(waker) = wake {
            waker.wake();
        }
        if spawn {
            self.runtime.spawn(Box::pin(QueueTask {
                rt: self.clone(),
                shard,
                due: Vec::new(),
                done: false,
            }));
        }
    }

    /// Removes the entry of the connection at `key`, set for `at`. The queue's task is
    /// woken if no entry is left, so that it ends now rather than at its timer.
    pub(crate) fn cancel(&self, key: usize, at: Instant) {
        let mut q = self.lock(self.shard(key));
        if q.entries.remove(&(self.tick(at), key)).is_none() || !q.entries.is_empty() {
            return;
        }
        let waker = match &q.task {
            Task::Running(w) => w.clone(),
            Task::None | Task::Spawned => return,
        };
        drop(q);
        waker.wake();
    }

    /// Whether the queue has an entry for `entry` at `at` (for tests).
    #[cfg(test)]
    pub(crate) fn has_entry<E: Entry>(&self, entry: &E, at: Instant) -> bool {
        let key = key(entry);
        self.lock(self.shard(key))
            .entries
            .contains_key(&(self.tick(at), key))
    }

    /// How many shards the queue has (for tests).
    #[cfg(test)]
    pub(crate) fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// Whether the queue has any entry for the connection at `key` (for tests).
    #[cfg(test)]
    pub(crate) fn has_key(&self, key: usize) -> bool {
        self.lock(self.shard(key))
            .entries
            .keys()
            .any(|&(_, k)| k == key)
    }
}

impl Queue {
    /// Sets the task's timer for `at` and polls it with the task's waker; returns whether
    /// it has expired already.
    fn set_sleep(&mut self, runtime: &Arc<dyn Runtime>, at: Instant, waker: &Waker) -> Poll<()> {
        let sleep = match &mut self.sleep {
            Some(sleep) => {
                if self.sleep_at != Some(at) {
                    sleep.as_mut().reset(at);
                }
                sleep
            }
            None => self.sleep.insert(runtime.timer(at)),
        };
        self.sleep_at = Some(at);
        sleep.as_mut().poll_expired(&mut Context::from_waker(waker))
    }
}

/// The task that serves a shard of a queue: it ends once the shard is empty.
struct QueueTask {
    rt: Arc<Rt>,
    shard: usize,
    /// The connections due in this round (kept to be reused).
    due: Vec<Weak<dyn Entry>>,
    /// It has ended by itself (and is no longer the queue's task).
    done: bool,
}

impl Future for QueueTask {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        for _ in 0..BUDGET {
            {
                let mut q = this.rt.lock(this.shard);
                match &q.task {
                    Task::Running(w) if w.will_wake(cx.waker()) => {}
                    _ => q.task = Task::Running(cx.waker().clone()),
                }
                let now = this.rt.tick(this.rt.runtime.now());
                while let Some(entry) = q.entries.first_entry() {
                    if entry.key().0 > now {
                        break;
                    }
                    this.due.push(entry.remove());
                }
                if this.due.is_empty() {
                    let Some(&(at, _)) = q.entries.keys().next() else {
                        // Nothing left to wait for: the next entry spawns a new task.
                        q.task = Task::None;
                        q.sleep = None;
                        q.sleep_at = None;
                        this.done = true;
                        return Poll::Ready(());
                    };
                    let Some(at) = this.rt.epoch.checked_add(Duration::from_nanos(at)) else {
                        // (Too far to be an `Instant`: it never comes. A new entry wakes
                        // the task, which has no timer then.)
                        q.sleep = None;
                        q.sleep_at = None;
                        return Poll::Pending;
                    };
                    if q.set_sleep(&this.rt.runtime, at, cx.waker()).is_pending() {
                        return Poll::Pending;
                    }
                    // Expired meanwhile: go round to take it.
                    continue;
                }
            }
            // Unlocked: a connection arms its entry again from here.
            for entry in this.due.drain(..) {
                if let Some(entry) = entry.upgrade() {
                    entry.due();
                }
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

impl Drop for QueueTask {
    /// When the runtime drops the task before it ended (the runtime shuts down), the next
    /// entry spawns a new one. (A task is spawned only while there is none, so a task that
    /// has not ended is the queue's.)
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let mut q = self.rt.lock(self.shard);
        q.task = Task::None;
        q.sleep = None;
        q.sleep_at = None;
    }
}
