//! Presence events: who joined or left a room, which users came online or went offline.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, Weak};
use std::task::{Context, Poll, Waker};
use tether_driver::ConnectionId;

/// Something that happened in the hub, for the subscribers that asked
/// ([`Hub::events`](crate::Hub::events), [`Hub::room_events`](crate::Hub::room_events)).
/// The hub imposes no format on clients: turn these into messages as you like.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HubEvent {
    /// A connection joined a room.
    Joined {
        /// The room.
        room: Arc<str>,
        /// The connection.
        id: ConnectionId,
        /// Its user, if any.
        user: Option<Arc<str>>,
    },
    /// A connection left a room (or ended while in it).
    Left {
        /// The room.
        room: Arc<str>,
        /// The connection.
        id: ConnectionId,
        /// Its user, if any.
        user: Option<Arc<str>>,
    },
    /// A user's first session registered.
    Online {
        /// The user.
        user: Arc<str>,
    },
    /// A user's last session ended.
    Offline {
        /// The user.
        user: Arc<str>,
    },
}

impl HubEvent {
    fn room(&self) -> Option<&str> {
        match self {
            Self::Joined { room, .. } | Self::Left { room, .. } => Some(room),
            _ => None,
        }
    }
}

/// How many events wait for a subscriber before the oldest are dropped.
const CAPACITY: usize = 4096;

struct Queue {
    items: VecDeque<HubEvent>,
    lagged: u64,
    waker: Option<Waker>,
}

pub(crate) struct Subscriber {
    room: Option<Arc<str>>,
    queue: Mutex<Queue>,
}

impl Subscriber {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The hub's subscribers.
#[derive(Default)]
pub(crate) struct Bus {
    subscribers: RwLock<Vec<Weak<Subscriber>>>,
    /// Live subscriptions: the send and join paths check it without a lock.
    count: Arc<AtomicUsize>,
}

impl Bus {
    /// Whether anyone listens (checked before building an event).
    pub(crate) fn is_empty(&self) -> bool {
        self.count.load(Relaxed) == 0
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Vec<Weak<Subscriber>>> {
        self.subscribers
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn emit(&self, event: HubEvent) {
        let mut stale = false;
        for weak in self.read().iter() {
            let Some(sub) = weak.upgrade() else {
                stale = true;
                continue;
            };
            if sub.room.is_some() && sub.room.as_deref() != event.room() {
                continue;
            }
            let mut q = sub.lock();
            if q.items.len() >= CAPACITY {
                q.items.pop_front();
                q.lagged += 1;
            }
            q.items.push_back(event.clone());
            let waker = q.waker.take();
            drop(q);
            if let Some(w) = waker {
                w.wake();
            }
        }
        if stale {
            self.subscribers
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .retain(|w| w.strong_count() > 0);
        }
    }

    pub(crate) fn subscribe(&self, room: Option<Arc<str>>) -> Events {
        let sub = Arc::new(Subscriber {
            room,
            queue: Mutex::new(Queue {
                items: VecDeque::new(),
                lagged: 0,
                waker: None,
            }),
        });
        let mut subs = self
            .subscribers
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        subs.retain(|w| w.strong_count() > 0);
        subs.push(Arc::downgrade(&sub));
        self.count.fetch_add(1, Relaxed);
        Events {
            sub,
            count: self.count.clone(),
        }
    }
}

/// A subscription to [`HubEvent`]s, from [`Hub::events`](crate::Hub::events) or
/// [`Hub::room_events`](crate::Hub::room_events). Events wait for it in order, up to
/// 4096; beyond, the oldest are dropped and counted ([`lagged`](Events::lagged)). Dropping
/// it unsubscribes. Also a `futures` `Stream`.
pub struct Events {
    sub: Arc<Subscriber>,
    count: Arc<AtomicUsize>,
}

impl Drop for Events {
    fn drop(&mut self) {
        self.count.fetch_sub(1, Relaxed);
    }
}

impl Events {
    /// The next event, waiting for one. Cancel-safe.
    pub async fn next(&mut self) -> HubEvent {
        poll_fn(|cx| self.poll_next_event(cx)).await
    }

    /// The next event if one is waiting.
    pub fn try_next(&mut self) -> Option<HubEvent> {
        self.sub.lock().items.pop_front()
    }

    /// How many events were dropped because this subscriber did not keep up.
    pub fn lagged(&self) -> u64 {
        self.sub.lock().lagged
    }

    fn poll_next_event(&self, cx: &mut Context<'_>) -> Poll<HubEvent> {
        let mut q = self.sub.lock();
        match q.items.pop_front() {
            Some(e) => Poll::Ready(e),
            None => {
                q.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

impl futures_core::Stream for Events {
    type Item = HubEvent;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<HubEvent>> {
        self.poll_next_event(cx).map(Some)
    }
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events")
            .field("room", &self.sub.room)
            .finish_non_exhaustive()
    }
}
