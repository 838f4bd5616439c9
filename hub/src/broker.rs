//! The seam for clustering: the [`Broker`] trait, and [`MemoryBroker`], the single-node
//! implementation every hub starts with.
//!
//! A message published through the broker ([`Hub::publish_durable`](crate::Hub::publish_durable))
//! goes publish → broker → every node's local delivery: the broker numbers it (an offset
//! that grows by one per message of a room, in an epoch that changes when the history is
//! lost), keeps it in the room's history if the room has one, and hands it back to each
//! node subscribed to the room through the [`BrokerSink`] the hub attached. A cluster
//! thus numbers each message once. A Redis broker would publish and append in one script,
//! and subscribe to a room's channel when its first local member joins.

use crate::payload::Payload;
use crate::session::Session;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::future::Future;
use std::hash::{BuildHasher, RandomState};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

/// The future a [`Broker`] method returns.
pub type BrokerFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, BrokerError>> + Send + 'a>>;

/// Where a message is in a room's stream: its offset (1 for the first message, growing by
/// one per message) and the stream's epoch, which changes when the history is lost (a
/// broker restart). A client keeps the position of the last message it got, and asks to
/// recover from it after a reconnect ([`Hub::recover`](crate::Hub::recover)).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct StreamPosition {
    /// The offset of the message (0: before the first).
    pub offset: u64,
    /// The stream's epoch.
    pub epoch: Arc<str>,
}

/// How much history a room keeps ([`Hub::set_room_history`](crate::Hub::set_room_history)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HistoryOptions {
    /// The most messages kept.
    pub size: usize,
    /// How long a message is kept (`None`: until pushed out by newer ones).
    pub ttl: Option<Duration>,
}

/// Who a broker publication is for.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BrokerTarget {
    /// The members of a room, on every node.
    Room(Arc<str>),
    /// The sessions of a user, on every node.
    User(Arc<str>),
    /// Every connection of every node.
    All,
}

/// A message going through the broker.
#[derive(Clone, Debug)]
pub struct Publication {
    /// The message (text or binary).
    pub payload: Payload,
    /// Its conflation key ([`SendOptions::key`](crate::SendOptions::key)).
    pub key: Option<Arc<str>>,
    /// Its place in the room's stream, once the broker has numbered it (room
    /// publications only).
    pub position: Option<StreamPosition>,
}

/// What [`Broker::history`] returns: the messages after the position asked for, oldest
/// first, and the stream's latest position.
#[derive(Clone, Debug)]
pub struct History {
    /// The messages, in order, each with its position.
    pub publications: Vec<Publication>,
    /// The latest position of the stream (offset 0 if it is empty).
    pub latest: StreamPosition,
    /// The offset of the oldest message still kept (latest offset + 1 if none is).
    pub oldest_offset: u64,
}

/// A broker's error.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BrokerError {
    /// A prepared frame cannot go through a broker: publish text or binary bytes.
    PreparedPayload,
    /// The broker is unreachable or failed; the text says why.
    Unavailable(String),
}

impl fmt::Display for BrokerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::PreparedPayload => f.write_str("a prepared frame cannot go through the broker"),
            Self::Unavailable(why) => write!(f, "the broker is unavailable: {why}"),
        }
    }
}

impl std::error::Error for BrokerError {}

/// Where a broker delivers the publications for this node: the hub attaches itself with
/// [`Broker::attach`].
pub trait BrokerSink: Send + Sync {
    /// Delivers a publication to the local recipients of `target`. Called in the order
    /// of the room's offsets.
    fn deliver(&self, target: &BrokerTarget, publication: &Publication);
}

/// The hub's backplane: publishes across nodes, numbers room messages, keeps history.
/// Object-safe; the hub holds it as `Arc<dyn Broker>`.
///
/// [`subscribe`](Broker::subscribe) and [`unsubscribe`](Broker::unsubscribe) are called by
/// the hub, without waiting, when a room's first local member joins and when its last
/// leaves; a networked broker queues them on its own connection.
pub trait Broker: Send + Sync + 'static {
    /// Attaches the node's hub: publications for this node are delivered to `sink`.
    fn attach(&self, sink: Arc<dyn BrokerSink>);

    /// Publishes to `target` on every node. A room publication is numbered and, with
    /// `history`, kept in the room's history; returns its position (`None` for users and
    /// everyone).
    fn publish<'a>(
        &'a self,
        target: BrokerTarget,
        publication: Publication,
        history: Option<HistoryOptions>,
    ) -> BrokerFuture<'a, Option<StreamPosition>>;

    /// This node has members in `room` now: deliver its publications here.
    fn subscribe(&self, room: &str);

    /// This node has no member in `room` any more.
    fn unsubscribe(&self, room: &str);

    /// The room's messages after `since` (all kept ones with offset 0), at most `limit`.
    fn history<'a>(&'a self, room: &'a str, since: u64, limit: usize) -> BrokerFuture<'a, History>;

    /// A local connection joined `room` (for presence across nodes). Called without
    /// waiting, under the hub's locks: queue the work. The default does nothing.
    fn joined(&self, room: &str, session: &Session) {
        let _ = (room, session);
    }

    /// A local connection left `room`. The default does nothing.
    fn left(&self, room: &str, session: &Session) {
        let _ = (room, session);
    }

    /// Who is in `room` on every node, or `None` if the broker keeps no presence (the
    /// hub then answers with its own members: [`Hub::presence`](crate::Hub::presence)).
    /// The default keeps none.
    fn presence<'a>(&'a self, room: &'a str) -> BrokerFuture<'a, Option<Vec<PresenceInfo>>> {
        let _ = room;
        Box::pin(async { Ok(None) })
    }
}

/// One member of a room, as presence reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PresenceInfo {
    /// The node the connection is on (`None`: this one).
    pub node: Option<Arc<str>>,
    /// The connection's number on its node.
    pub id: u64,
    /// Its user, if any.
    pub user: Option<Arc<str>>,
    /// Its labels.
    pub labels: Vec<(Arc<str>, Arc<str>)>,
}

impl PresenceInfo {
    /// A member of a room on another node.
    pub fn new(node: impl Into<Arc<str>>, id: u64, user: Option<Arc<str>>) -> Self {
        Self {
            node: Some(node.into()),
            id,
            user,
            labels: Vec::new(),
        }
    }

    /// A local session's presence.
    pub fn local(session: &Session) -> Self {
        let identity = session.identity();
        Self {
            node: None,
            id: session.id().get(),
            user: identity.user_arc().cloned(),
            labels: identity
                .labels()
                .map(|(n, v)| (n.into(), v.into()))
                .collect(),
        }
    }
}

/// A room's stream in the memory broker.
struct Stream {
    next_offset: u64,
    ring: VecDeque<(Instant, Publication)>,
    /// How long messages are kept, as of the last publication.
    ttl: Option<Duration>,
}

impl Stream {
    /// Drops the messages older than the time to live.
    fn expire(&mut self, now: Instant) {
        if let Some(ttl) = self.ttl {
            while self
                .ring
                .front()
                .is_some_and(|(t, _)| now.duration_since(*t) > ttl)
            {
                self.ring.pop_front();
            }
        }
    }
}

/// The broker of a single node: numbers each room's messages, keeps their history in a
/// ring per room, and delivers to the attached hub at once. Its epoch is chosen at
/// random when it is made, so a restarted process tells reconnecting clients their
/// history is gone. A room's offset counter stays (a few dozen bytes) once it has been
/// published to, so that its numbers never repeat within the epoch.
pub struct MemoryBroker {
    epoch: Arc<str>,
    streams: Mutex<HashMap<Arc<str>, Arc<Mutex<Stream>>>>,
    sink: OnceLock<Arc<dyn BrokerSink>>,
}

impl Default for MemoryBroker {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for MemoryBroker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryBroker")
            .field("epoch", &self.epoch)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl MemoryBroker {
    /// A broker with a fresh random epoch.
    pub fn new() -> Self {
        let seed = RandomState::new().hash_one(Instant::now());
        Self {
            epoch: format!("{seed:016x}").into(),
            streams: Mutex::new(HashMap::new()),
            sink: OnceLock::new(),
        }
    }

    /// The epoch of every stream of this broker.
    pub fn epoch(&self) -> &str {
        &self.epoch
    }

    fn stream(&self, room: &str) -> Option<Arc<Mutex<Stream>>> {
        lock(&self.streams).get(room).cloned()
    }

    fn position(&self, offset: u64) -> StreamPosition {
        StreamPosition {
            offset,
            epoch: self.epoch.clone(),
        }
    }
}

impl Broker for MemoryBroker {
    fn attach(&self, sink: Arc<dyn BrokerSink>) {
        let _ = self.sink.set(sink);
    }

    fn publish<'a>(
        &'a self,
        target: BrokerTarget,
        mut publication: Publication,
        history: Option<HistoryOptions>,
    ) -> BrokerFuture<'a, Option<StreamPosition>> {
        Box::pin(async move {
            if matches!(publication.payload, Payload::Prepared(_)) {
                return Err(BrokerError::PreparedPayload);
            }
            let BrokerTarget::Room(room) = &target else {
                if let Some(sink) = self.sink.get() {
                    sink.deliver(&target, &publication);
                }
                return Ok(None);
            };
            let stream = lock(&self.streams)
                .entry(room.clone())
                .or_insert_with(|| {
                    Arc::new(Mutex::new(Stream {
                        next_offset: 1,
                        ring: VecDeque::new(),
                        ttl: None,
                    }))
                })
                .clone();
            // Numbering, keeping and delivering under the stream's lock: offsets reach
            // the hub in order.
            let mut s = lock(&stream);
            let offset = s.next_offset;
            s.next_offset += 1;
            let position = self.position(offset);
            publication.position = Some(position.clone());
            let now = Instant::now();
            let h = history.unwrap_or(HistoryOptions { size: 0, ttl: None });
            if h.size > 0 {
                s.ring.push_back((now, publication.clone()));
            }
            while s.ring.len() > h.size {
                s.ring.pop_front();
            }
            s.ttl = h.ttl;
            s.expire(now);
            if let Some(sink) = self.sink.get() {
                sink.deliver(&target, &publication);
            }
            Ok(Some(position))
        })
    }

    fn subscribe(&self, _room: &str) {
        // One node: every publication is delivered to the attached hub, which finds its
        // local members.
    }

    fn unsubscribe(&self, _room: &str) {}

    fn history<'a>(&'a self, room: &'a str, since: u64, limit: usize) -> BrokerFuture<'a, History> {
        Box::pin(async move {
            let Some(stream) = self.stream(room) else {
                return Ok(History {
                    publications: Vec::new(),
                    latest: self.position(0),
                    oldest_offset: 1,
                });
            };
            let mut s = lock(&stream);
            s.expire(Instant::now());
            let latest = s.next_offset - 1;
            let oldest_offset = s
                .ring
                .front()
                .and_then(|(_, p)| p.position.as_ref())
                .map_or(latest + 1, |p| p.offset);
            let publications = s
                .ring
                .iter()
                .map(|(_, p)| p)
                .filter(|p| p.position.as_ref().is_some_and(|pos| pos.offset > since))
                .take(limit)
                .cloned()
                .collect();
            Ok(History {
                publications,
                latest: self.position(latest),
                oldest_offset,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::FutureExt;
    use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

    /// Records the offsets delivered.
    #[derive(Default)]
    struct Recorder(Mutex<Vec<u64>>, AtomicU64);

    impl BrokerSink for Recorder {
        fn deliver(&self, _target: &BrokerTarget, publication: &Publication) {
            match &publication.position {
                Some(p) => lock(&self.0).push(p.offset),
                None => {
                    self.1.fetch_add(1, Relaxed);
                }
            }
        }
    }

    fn publication(text: &str) -> Publication {
        Publication {
            payload: Payload::text(text),
            key: None,
            position: None,
        }
    }

    fn room(name: &str) -> BrokerTarget {
        BrokerTarget::Room(name.into())
    }

    #[test]
    fn offsets_grow_by_one_per_room_and_history_keeps_the_last_n() {
        let broker = MemoryBroker::new();
        let sink = Arc::new(Recorder::default());
        broker.attach(sink.clone());
        let keep = Some(HistoryOptions { size: 3, ttl: None });
        for i in 1..=5 {
            let p = broker.publish(room("a"), publication("x"), keep);
            let p = p.now_or_never().unwrap().unwrap().unwrap();
            assert_eq!(p.offset, i);
            assert_eq!(&*p.epoch, broker.epoch());
        }
        let other = broker.publish(room("b"), publication("y"), None);
        assert_eq!(other.now_or_never().unwrap().unwrap().unwrap().offset, 1);
        assert_eq!(*lock(&sink.0), vec![1, 2, 3, 4, 5, 1]);
        let h = broker.history("a", 0, 10).now_or_never().unwrap().unwrap();
        let offsets: Vec<u64> = h
            .publications
            .iter()
            .map(|p| p.position.as_ref().unwrap().offset)
            .collect();
        assert_eq!(offsets, vec![3, 4, 5]);
        assert_eq!((h.latest.offset, h.oldest_offset), (5, 3));
        let h = broker.history("a", 4, 10).now_or_never().unwrap().unwrap();
        assert_eq!(h.publications.len(), 1);
        let h = broker.history("b", 0, 10).now_or_never().unwrap().unwrap();
        assert_eq!(
            (h.publications.len(), h.latest.offset, h.oldest_offset),
            (0, 1, 2)
        );
        let h = broker
            .history("none", 0, 10)
            .now_or_never()
            .unwrap()
            .unwrap();
        assert_eq!((h.latest.offset, h.oldest_offset), (0, 1));
        // Users and everyone: delivered, not numbered.
        let p = broker.publish(BrokerTarget::All, publication("z"), None);
        assert_eq!(p.now_or_never().unwrap(), Ok(None));
        assert_eq!(sink.1.load(Relaxed), 1);
        let prepared = Payload::Prepared(Payload::text("p").prepare(None));
        let p = Publication {
            payload: prepared,
            ..publication("")
        };
        let p = broker.publish(room("a"), p, keep);
        assert_eq!(p.now_or_never().unwrap(), Err(BrokerError::PreparedPayload));
    }

    #[test]
    fn history_forgets_messages_older_than_the_ttl() {
        let broker = MemoryBroker::new();
        let keep = Some(HistoryOptions {
            size: 10,
            ttl: Some(Duration::from_millis(30)),
        });
        let p = broker.publish(room("a"), publication("old"), keep);
        p.now_or_never().unwrap().unwrap();
        std::thread::sleep(Duration::from_millis(60));
        let h = broker.history("a", 0, 10).now_or_never().unwrap().unwrap();
        assert!(h.publications.is_empty());
        assert_eq!((h.latest.offset, h.oldest_offset), (1, 2));
        let p = broker.publish(room("a"), publication("new"), keep);
        p.now_or_never().unwrap().unwrap();
        let h = broker.history("a", 0, 10).now_or_never().unwrap().unwrap();
        assert_eq!(h.publications.len(), 1);
        assert_eq!(h.oldest_offset, 2);
    }

    #[test]
    fn two_brokers_have_different_epochs() {
        assert_ne!(MemoryBroker::new().epoch(), MemoryBroker::new().epoch());
    }
}
