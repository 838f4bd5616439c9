//! A connection's outgoing queue in the hub, and the slow-consumer policies.
//!
//! A message for a connection goes straight to its [`Sender`] (the driver's write buffer,
//! which coalesces what is queued meanwhile into one vectored write) while the driver has
//! room and the hub holds nothing older for it. Once the driver is at its high-water mark,
//! messages wait here, bounded in bytes and count, under the recipient's [`Policy`]; the
//! connection's serve task moves them to the driver as it makes room. Only this queue's
//! small lock is taken on the send path.

use crate::hub::Sleep;
use crate::policy::Policy;
use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Poll, Waker};
use std::time::Duration;
use tether_driver::{CloseCode, Cork, PreparedFrame, Sender, TrySendError};

/// One message for one recipient: a shared frame, never copied.
#[derive(Clone)]
pub(crate) struct Item {
    pub(crate) frame: Arc<PreparedFrame>,
    pub(crate) len: usize,
    pub(crate) key: Option<Arc<str>>,
}

/// What became of a message for one recipient.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Taken, after dropping this many older messages.
    Queued { dropped_oldest: usize },
    /// Taken, in the place of a queued message with the same key.
    Conflated,
    /// Not taken: the queue was full.
    DroppedNew,
    /// Not taken: the queue was full, and the connection is being closed for it.
    Disconnected,
    /// Not taken: the connection is closing or closed.
    Closed,
}

/// The queue's bounds.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Bounds {
    pub(crate) max_bytes: usize,
    pub(crate) max_messages: usize,
    /// Whether a message may skip the queue when it is empty (no flush interval).
    pub(crate) direct: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Open,
    /// Shutting down: close with 1001 once the queue is empty.
    Draining,
    /// Nothing more is taken.
    Closed,
}

struct Inner {
    items: VecDeque<Item>,
    bytes: usize,
    /// The serve task, waiting for messages.
    waker: Option<Waker>,
    /// The serve task holds a message taken from `items`, waiting for room in the driver:
    /// newer messages must queue behind it.
    in_flight: bool,
    state: State,
}

/// A connection's queue in the hub.
pub(crate) struct Queue {
    inner: Mutex<Inner>,
}

impl Queue {
    pub(crate) fn new() -> Self {
        Self {
            inner: Mutex::new(Inner {
                items: VecDeque::new(),
                bytes: 0,
                waker: None,
                in_flight: false,
                state: State::Open,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Messages and bytes waiting in the hub (not counting the driver's buffer).
    pub(crate) fn len(&self) -> (usize, usize) {
        let q = self.lock();
        (q.items.len(), q.bytes)
    }

    /// Offers `item` to the connection under `policy`; never waits. Returns what became of
    /// it and the bytes queued in the hub afterwards. With a `cork`, a message for an idle
    /// connection goes into it, to be written by the caller's task when it flushes (see
    /// [`Sender::try_send_prepared_corked`]).
    pub(crate) fn deliver(
        &self,
        sender: &Sender,
        item: &Item,
        policy: Policy,
        bounds: Bounds,
        cork: Option<&mut Cork>,
    ) -> (Outcome, usize) {
        let mut q = self.lock();
        if q.state == State::Closed {
            return (Outcome::Closed, 0);
        }
        if bounds.direct && q.items.is_empty() && !q.in_flight {
            let sent = match cork {
                Some(cork) => sender.try_send_prepared_corked(&item.frame, cork),
                None => sender.try_send_prepared(&item.frame),
            };
            match sent {
                Ok(()) => return (Outcome::Queued { dropped_oldest: 0 }, 0),
                Err(TrySendError::Full(())) => {}
                Err(_) => {
                    q.state = State::Closed;
                    return (Outcome::Closed, 0);
                }
            }
        }
        if policy == Policy::Conflate {
            if let Some(key) = &item.key {
                let same = q
                    .items
                    .iter()
                    .position(|i| i.key.as_deref() == Some(&**key));
                // Replaced in place if the queue's bytes stay in bounds; otherwise the
                // oldest go, below.
                let fits = |at: usize| q.bytes - q.items[at].len + item.len <= bounds.max_bytes;
                if let Some(at) = same.filter(|&at| fits(at)) {
                    let old = std::mem::replace(&mut q.items[at], item.clone()).len;
                    q.bytes = q.bytes - old + item.len;
                    return (Outcome::Conflated, q.bytes);
                }
            }
        }
        let fits = |q: &Inner| {
            q.items.len() < bounds.max_messages && q.bytes + item.len <= bounds.max_bytes
        };
        let mut dropped_oldest = 0;
        if !fits(&q) {
            match policy {
                Policy::DropNew => return (Outcome::DroppedNew, q.bytes),
                Policy::Disconnect(code) => {
                    q.state = State::Closed;
                    q.items = VecDeque::new();
                    q.bytes = 0;
                    let waker = q.waker.take();
                    drop(q);
                    let _ = sender.close(code, "slow consumer");
                    if let Some(w) = waker {
                        w.wake();
                    }
                    return (Outcome::Disconnected, 0);
                }
                Policy::DropOldest | Policy::Conflate => {
                    if item.len > bounds.max_bytes || bounds.max_messages == 0 {
                        return (Outcome::DroppedNew, q.bytes);
                    }
                    while !fits(&q) {
                        let Some(old) = q.items.pop_front() else {
                            break;
                        };
                        q.bytes -= old.len;
                        dropped_oldest += 1;
                    }
                }
            }
        }
        q.items.push_back(item.clone());
        q.bytes += item.len;
        let bytes = q.bytes;
        let waker = q.waker.take();
        drop(q);
        if let Some(w) = waker {
            w.wake();
        }
        (Outcome::Queued { dropped_oldest }, bytes)
    }

    /// Shutting down: the serve task closes the connection with 1001 once the queue is
    /// empty.
    pub(crate) fn drain_and_close(&self) {
        let mut q = self.lock();
        if q.state == State::Open {
            q.state = State::Draining;
        }
        let waker = q.waker.take();
        drop(q);
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Takes nothing more (the connection has ended).
    pub(crate) fn close(&self) {
        let mut q = self.lock();
        q.state = State::Closed;
        q.items = VecDeque::new();
        q.bytes = 0;
    }

    /// The serve task's half: moves queued messages to the driver as it makes room, until
    /// the queue is closed. Closes the connection with 1001 when shutting down.
    ///
    /// With a flush interval, it waits that long after the first message arrives, so that
    /// what arrives meanwhile goes out in the same write.
    pub(crate) async fn run(&self, sender: &Sender, flush: Option<(Duration, &Sleep)>) {
        loop {
            if let Some((interval, sleep)) = flush {
                let ready = poll_fn(|cx| {
                    let mut q = self.lock();
                    if !q.items.is_empty() || q.state != State::Open {
                        return Poll::Ready(());
                    }
                    if !q.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                        q.waker = Some(cx.waker().clone());
                    }
                    Poll::Pending
                });
                ready.await;
                sleep(interval).await;
            }
            let step = poll_fn(|cx| {
                let mut q = self.lock();
                loop {
                    let Some(front) = q.items.front() else {
                        return match q.state {
                            // With a flush interval, wait for the next batch above.
                            State::Open if flush.is_some() => Poll::Ready(Step::Idle),
                            State::Open => {
                                if !q.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                                    q.waker = Some(cx.waker().clone());
                                }
                                Poll::Pending
                            }
                            State::Draining => Poll::Ready(Step::GoAway),
                            State::Closed => Poll::Ready(Step::Stop),
                        };
                    };
                    match sender.try_send_prepared(&front.frame) {
                        Ok(()) => {
                            let item = q.items.pop_front().expect("a front item");
                            q.bytes -= item.len;
                        }
                        Err(TrySendError::Full(())) => {
                            let item = q.items.pop_front().expect("a front item");
                            q.bytes -= item.len;
                            q.in_flight = true;
                            return Poll::Ready(Step::Wait(item.frame));
                        }
                        Err(_) => {
                            q.state = State::Closed;
                            q.items = VecDeque::new();
                            q.bytes = 0;
                            return Poll::Ready(Step::Stop);
                        }
                    }
                }
            })
            .await;
            match step {
                Step::Wait(frame) => {
                    let sent = sender.send_prepared(&frame).await;
                    let mut q = self.lock();
                    q.in_flight = false;
                    if sent.is_err() {
                        q.state = State::Closed;
                        q.items = VecDeque::new();
                        q.bytes = 0;
                        return;
                    }
                }
                Step::GoAway => {
                    let _ = sender.close(CloseCode::GOING_AWAY, "server shutting down");
                    return;
                }
                Step::Stop => return,
                Step::Idle => {}
            }
        }
    }
}

enum Step {
    /// Nothing queued (with a flush interval).
    Idle,
    Wait(Arc<PreparedFrame>),
    GoAway,
    Stop,
}
