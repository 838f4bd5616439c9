//! The hub: registry, users, rooms and fan-out.

use crate::broker::{
    Broker, BrokerSink, BrokerTarget, HistoryOptions, MemoryBroker, PresenceInfo, Publication,
    StreamPosition,
};
use crate::error::HubError;
use crate::events::{Bus, Events, HubEvent};
use crate::payload::{Payload, SendOptions, SendReport};
use crate::policy::Policy;
use crate::queue::{Bounds, Item, Queue};
use crate::room::validate_room_name;
use crate::session::{Conn, Identity, Recovering, Rooms, Session};
use crate::stats::{RoomDeliveries, RoomStats, Stats, StatsSnapshot};
use std::borrow::Borrow;
use std::collections::{HashMap, HashSet};
use std::future::{Future, poll_fn};
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher, RandomState};
use std::net::IpAddr;
use std::pin::{Pin, pin};
use std::sync::atomic::{
    AtomicBool, AtomicU64, AtomicUsize,
    Ordering::{AcqRel, Acquire, Relaxed, Release},
};
use std::sync::{
    Arc, Mutex, MutexGuard, OnceLock, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard, Weak,
};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};
use tether_driver::{CloseCode, ConnectionId, Cork, Sender};

/// The hub's settings. `HubConfig::default()` sets no limit but the queue bounds; change
/// the fields you need.
///
/// ```
/// use tether_hub::{HubConfig, Policy};
/// let mut config = HubConfig::default();
/// config.policy = Policy::DropOldest;
/// config.max_queue_messages = 256;
/// config.max_connections_per_user = 5;
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct HubConfig {
    /// What happens to a message for a connection whose queue is full, in rooms without a
    /// policy of their own ([`Hub::set_room_policy`]) and for sends outside rooms. Default:
    /// disconnect with 1008.
    pub policy: Policy,
    /// The most bytes (of encoded frames) waiting in the hub for one connection, beyond
    /// what its driver buffers (`Config::write_high_water_mark`). Default 1 MiB.
    pub max_queue_bytes: usize,
    /// The most messages waiting in the hub for one connection. Default 1024.
    pub max_queue_messages: usize,
    /// The most connections at once. Default: no limit.
    pub max_connections: usize,
    /// The most connections of one user at once. Default: no limit.
    pub max_connections_per_user: usize,
    /// The most connections from one IP address at once. Default: no limit.
    pub max_connections_per_addr: usize,
    /// The most rooms one connection is in. Default: no limit.
    pub max_rooms_per_connection: usize,
    /// The most members of one room. Default: no limit.
    pub max_room_members: usize,
    /// A connection that sends no message for this long is closed by
    /// [`Hub::close_idle`] (1000, "idle"). Default: none.
    pub idle_timeout: Option<Duration>,
    /// Whether pings and pongs from the peer (the protocol's keep-alive) count as
    /// activity for [`idle_timeout`](Self::idle_timeout). Default: no, only messages do.
    pub pings_count_as_activity: bool,
    /// Messages for a connection wait this long in its hub queue before they are written
    /// together, trading this much latency for fewer writes under heavy fan-out. Needs a
    /// sleep function ([`Hub::set_sleep`]); without one, or by default (`None`), messages
    /// go to the connection as soon as it has room.
    pub flush_interval: Option<Duration>,
    /// Each fan-out is also compressed once with (window bits, level) for the
    /// connections that negotiated permessage-deflate without context takeover
    /// (`PreparedFrame::compressed`). Default: none.
    pub compression: Option<(u8, u32)>,
}

impl Default for HubConfig {
    fn default() -> Self {
        Self {
            policy: Policy::default(),
            max_queue_bytes: 1 << 20,
            max_queue_messages: 1024,
            max_connections: usize::MAX,
            max_connections_per_user: usize::MAX,
            max_connections_per_addr: usize::MAX,
            max_rooms_per_connection: usize::MAX,
            max_room_members: usize::MAX,
            idle_timeout: None,
            pings_count_as_activity: false,
            flush_interval: None,
            compression: None,
        }
    }
}

/// Who a send goes to (see [`Hub::send`]).
#[derive(Clone, Copy)]
#[non_exhaustive]
pub enum Target<'a> {
    /// One connection.
    Connection(ConnectionId),
    /// Every session of a user.
    User(&'a str),
    /// Every member of a room.
    Room(&'a str),
    /// Every connection.
    All,
    /// Every connection for which the predicate holds.
    Filter(&'a (dyn Fn(&Session) -> bool + Sync)),
}

/// How many shards each index has: enough that threads rarely meet on one lock.
const SHARDS: usize = 32;

/// The hasher of maps keyed by [`ConnectionId`]: the ids are numbered by the process, not
/// chosen by peers, so they need no keyed hash (SipHash, `RandomState`) against collision
/// attacks; a multiply-and-mix of the number costs a few instructions instead of about a
/// hundred, on every registry operation and room join and leave.
#[derive(Clone, Copy, Default)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        // Not used by `ConnectionId` (a `u64`); correct for anything else.
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }

    fn finish(&self) -> u64 {
        // Every bit of the id reaches the low bits (the table's index) and the high ones
        // (its control bytes, and the shard: see `Shards::index`).
        let z = (self.0 ^ (self.0 >> 32)).wrapping_mul(0xd6e8_feb8_6659_fd93);
        z ^ (z >> 32)
    }
}

pub(crate) type IdHash = BuildHasherDefault<IdHasher>;

/// A map split into locked shards by key hash.
struct Shards<K, V, S = RandomState> {
    hasher: S,
    shards: Box<[RwLock<HashMap<K, V, S>>]>,
}

impl<K: Hash + Eq, V, S: BuildHasher + Default> Shards<K, V, S> {
    fn new() -> Self {
        Self {
            hasher: S::default(),
            shards: (0..SHARDS).map(|_| RwLock::default()).collect(),
        }
    }

    /// The shard of `key`: from the hash's bits 40 and up, which the maps' own use of
    /// the same hash (a deterministic one, `IdHash`) leaves aside: its low bits index a
    /// table, its top 7 bits are the control bytes.
    fn index<Q: Hash + ?Sized>(&self, key: &Q) -> usize {
        ((self.hasher.hash_one(key) >> 40) as usize) % SHARDS
    }

    fn read<Q: Hash + ?Sized>(&self, key: &Q) -> RwLockReadGuard<'_, HashMap<K, V, S>> {
        read(&self.shards[self.index(key)])
    }

    fn write<Q: Hash + ?Sized>(&self, key: &Q) -> RwLockWriteGuard<'_, HashMap<K, V, S>> {
        self.shards[self.index(key)]
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn all(&self) -> impl Iterator<Item = RwLockReadGuard<'_, HashMap<K, V, S>>> {
        self.shards.iter().map(read)
    }
}

/// Runs `f` (a removal) on `map`, then gives memory back once the map is down to a
/// quarter of its capacity: after a peak, the registry returns to its size at rest.
fn shrunk<K: Hash + Eq, V, S: BuildHasher, T>(
    map: &mut HashMap<K, V, S>,
    f: impl FnOnce(&mut HashMap<K, V, S>) -> T,
) -> T {
    let out = f(map);
    if map.capacity() > 64 && map.len() < map.capacity() / 4 {
        map.shrink_to(map.len() * 2);
    }
    out
}

fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

fn lock<T>(lock: &Mutex<T>) -> MutexGuard<'_, T> {
    lock.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A room: its members and its counters.
pub(crate) struct Room {
    name: Arc<str>,
    members: Mutex<Members>,
    stats: RoomDeliveries,
}

struct Members {
    map: HashSet<Member, IdHash>,
    /// The members as a list, rebuilt by the first fan-out after a change: fan-outs walk
    /// it without holding the room's lock.
    snapshot: Option<Arc<[Session]>>,
    policy: Policy,
}

/// A room member: its session, hashed and compared by its connection's id, which it holds
/// (an entry of 8 bytes, not 16 with the id beside it). The id never changes: the
/// session's interior mutability (its queue, its rooms) is no part of the key.
struct Member(Session);

impl Hash for Member {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.conn.id.hash(state);
    }
}

impl PartialEq for Member {
    fn eq(&self, other: &Self) -> bool {
        self.0.conn.id == other.0.conn.id
    }
}

impl Eq for Member {}

impl Borrow<ConnectionId> for Member {
    fn borrow(&self) -> &ConnectionId {
        &self.0.conn.id
    }
}

impl Room {
    fn snapshot(&self) -> (Arc<[Session]>, Policy) {
        let mut m = lock(&self.members);
        let list = match &m.snapshot {
            Some(list) => list.clone(),
            None => {
                let list: Arc<[Session]> = m.map.iter().map(|m| m.0.clone()).collect();
                m.snapshot = Some(list.clone());
                list
            }
        };
        (list, m.policy)
    }
}

/// A runtime's sleep, for [`HubConfig::flush_interval`] (see [`Hub::set_sleep`]).
pub type Sleep = Arc<dyn Fn(Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// A job for another thread of the runtime (see [`Hub::set_fan_out_helpers`]).
pub type Job = Box<dyn FnOnce() + Send>;

/// A runtime's spawn, for [`Hub::set_fan_out_helpers`].
type Spawn = Arc<dyn Fn(Job) + Send + Sync>;

/// Turns a numbered room publication into what its recipients get (see
/// [`Hub::set_envelope`]).
pub type Envelope = Arc<dyn Fn(&str, &Publication) -> Payload + Send + Sync>;

struct Inner {
    config: HubConfig,
    conns: Shards<ConnectionId, Session, IdHash>,
    users: Shards<Arc<str>, Vec<Session>>,
    addrs: Shards<IpAddr, usize>,
    rooms: Shards<Arc<str>, Arc<Room>>,
    policies: RwLock<HashMap<Arc<str>, Policy>>,
    connections: AtomicUsize,
    user_count: AtomicUsize,
    room_count: AtomicUsize,
    stats: Stats,
    shutting_down: AtomicBool,
    bus: Bus,
    broker: Arc<dyn Broker>,
    histories: RwLock<HashMap<Arc<str>, HistoryOptions>>,
    envelope: OnceLock<Envelope>,
    sleep: OnceLock<Sleep>,
    /// How many helpers a large fan-out may spawn, and how.
    helpers: OnceLock<(usize, Spawn)>,
    /// Tasks waiting for the last connection to leave (shutdown).
    empty_waiters: Mutex<Vec<Waker>>,
    start: Instant,
}

/// The connection manager: every connection of the process, its users and rooms, and
/// sends to any of them. Cheap to clone (clones share one hub); `Send + Sync`.
///
/// Connections enter with [`Hub::serve`], which runs them until they end and then removes
/// them. Nothing here waits except [`serve`](Hub::serve) and [`shutdown`](Hub::shutdown):
/// sends queue and return at once with a [`SendReport`].
#[derive(Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

impl Default for Hub {
    fn default() -> Self {
        Self::new(HubConfig::default())
    }
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("connections", &self.connection_count())
            .field("rooms", &self.room_count())
            .finish_non_exhaustive()
    }
}

impl Hub {
    /// A hub with `config`, and a [`MemoryBroker`] (a single node).
    pub fn new(config: HubConfig) -> Self {
        Self::with_broker(config, Arc::new(MemoryBroker::new()))
    }

    /// A hub with `config` whose durable publications go through `broker` (see
    /// [`publish_durable`](Hub::publish_durable)); the hub attaches itself to it.
    pub fn with_broker(config: HubConfig, broker: Arc<dyn Broker>) -> Self {
        let hub = Self {
            inner: Arc::new(Inner {
                config,
                conns: Shards::new(),
                users: Shards::new(),
                addrs: Shards::new(),
                rooms: Shards::new(),
                policies: RwLock::default(),
                connections: AtomicUsize::new(0),
                user_count: AtomicUsize::new(0),
                room_count: AtomicUsize::new(0),
                stats: Stats::default(),
                shutting_down: AtomicBool::new(false),
                bus: Bus::default(),
                broker: broker.clone(),
                histories: RwLock::default(),
                envelope: OnceLock::new(),
                sleep: OnceLock::new(),
                helpers: OnceLock::new(),
                empty_waiters: Mutex::new(Vec::new()),
                start: Instant::now(),
            }),
        };
        broker.attach(Arc::new(Sink(Arc::downgrade(&hub.inner))));
        hub
    }

    /// The hub's settings.
    pub fn config(&self) -> &HubConfig {
        &self.inner.config
    }

    // ---- registry ----

    /// Whether a connection with `identity` would be admitted now (the limits, shutdown),
    /// to refuse it before the upgrade: answer with [`HubError::http_status`]. The check
    /// is repeated when the connection registers.
    pub fn check_admission(&self, identity: &Identity) -> Result<(), HubError> {
        let inner = &*self.inner;
        let cfg = &inner.config;
        if inner.shutting_down.load(Relaxed) {
            return Err(HubError::ShuttingDown);
        }
        if inner.connections.load(Relaxed) >= cfg.max_connections {
            return Err(HubError::TooManyConnections);
        }
        if let Some(user) = identity.user() {
            let n = inner.users.read(user).get(user).map_or(0, Vec::len);
            if n >= cfg.max_connections_per_user {
                return Err(HubError::TooManyConnectionsForUser);
            }
        }
        if let Some(ip) = self.counted_ip(identity) {
            let n = inner.addrs.read(&ip).get(&ip).copied().unwrap_or(0);
            if n >= cfg.max_connections_per_addr {
                return Err(HubError::TooManyConnectionsForAddr);
            }
        }
        Ok(())
    }

    /// Registers a connection; [`serve`](Hub::serve) does it.
    pub(crate) fn register(&self, sender: Sender, identity: Identity) -> Result<Session, HubError> {
        let inner = &*self.inner;
        let cfg = &inner.config;
        let refused = |e| {
            inner.stats.refused.add(1);
            Err(e)
        };
        if inner.shutting_down.load(Relaxed) {
            return refused(HubError::ShuttingDown);
        }
        if inner.connections.fetch_add(1, Relaxed) >= cfg.max_connections {
            self.connection_left();
            return refused(HubError::TooManyConnections);
        }
        let ip = self.counted_ip(&identity);
        if let Some(ip) = ip {
            let mut addrs = inner.addrs.write(&ip);
            let n = addrs.entry(ip).or_insert(0);
            if *n >= cfg.max_connections_per_addr {
                if *n == 0 {
                    addrs.remove(&ip);
                }
                drop(addrs);
                self.connection_left();
                return refused(HubError::TooManyConnectionsForAddr);
            }
            *n += 1;
        }
        let session = Session {
            conn: Arc::new(Conn {
                id: sender.id(),
                identity,
                sender,
                queue: Queue::new(),
                rooms: Mutex::new(Rooms {
                    names: Vec::new(),
                    removed: false,
                }),
                // Read only with an idle timeout: without one, no clock read per connect.
                last_active: AtomicU64::new(match cfg.idle_timeout {
                    Some(_) => self.now_nanos(),
                    None => 0,
                }),
                recovering: Mutex::new(Vec::new()),
                recovering_n: AtomicUsize::new(0),
            }),
        };
        let id = session.id();
        if let Some(user) = session.conn.identity.user_arc() {
            let mut users = inner.users.write(&**user);
            let sessions = users.entry(user.clone()).or_default();
            if sessions.len() >= cfg.max_connections_per_user {
                if sessions.is_empty() {
                    users.remove(&**user);
                }
                drop(users);
                self.release_addr(ip);
                self.connection_left();
                return refused(HubError::TooManyConnectionsForUser);
            }
            let first = sessions.is_empty();
            sessions.push(session.clone());
            // Events are emitted under the shard's lock: a user's come and go in order.
            if first {
                inner.user_count.fetch_add(1, Relaxed);
                if !inner.bus.is_empty() {
                    inner.bus.emit(HubEvent::Online { user: user.clone() });
                }
            }
        }
        {
            let mut conns = inner.conns.write(&id);
            if conns.contains_key(&id) {
                drop(conns);
                self.release_user(&session);
                self.release_addr(ip);
                self.connection_left();
                return refused(HubError::AlreadyRegistered);
            }
            conns.insert(id, session.clone());
        }
        // A shutdown that started meanwhile may have missed it: it drains too (the
        // shard's lock orders the flag and the insertion).
        if inner.shutting_down.load(Relaxed) {
            session.conn.queue.drain_and_close();
        }
        inner.stats.connections_total.add(1);
        Ok(session)
    }

    /// Removes a connection: from the registry, its user, its rooms. Called when its serve
    /// future ends (or is dropped).
    pub(crate) fn unregister(&self, id: ConnectionId) {
        let inner = &*self.inner;
        let Some(session) = shrunk(&mut inner.conns.write(&id), |m| m.remove(&id)) else {
            return;
        };
        session.conn.queue.close();
        let names = {
            let mut rooms = session.conn.rooms();
            rooms.removed = true;
            std::mem::take(&mut rooms.names)
        };
        for name in names {
            self.remove_member(&name, &session);
        }
        self.release_user(&session);
        self.release_addr(self.counted_ip(&session.conn.identity));
        self.connection_left();
    }

    fn release_user(&self, session: &Session) {
        let Some(user) = session.conn.identity.user_arc() else {
            return;
        };
        let mut users = self.inner.users.write(&**user);
        if let Some(sessions) = users.get_mut(&**user) {
            sessions.retain(|s| s.id() != session.id());
            if sessions.is_empty() {
                shrunk(&mut users, |m| m.remove(&**user));
                self.inner.user_count.fetch_sub(1, Relaxed);
                if !self.inner.bus.is_empty() {
                    self.inner
                        .bus
                        .emit(HubEvent::Offline { user: user.clone() });
                }
            }
        }
    }

    /// The address a connection counts against, if
    /// [`max_connections_per_addr`](HubConfig::max_connections_per_addr) sets a limit:
    /// without one, nobody reads the counts, and the registry keeps none (an entry and two
    /// hashes less per connection).
    fn counted_ip(&self, identity: &Identity) -> Option<IpAddr> {
        if self.inner.config.max_connections_per_addr == usize::MAX {
            return None;
        }
        identity.peer_addr().map(|a| a.ip())
    }

    fn release_addr(&self, ip: Option<IpAddr>) {
        let Some(ip) = ip else { return };
        let mut addrs = self.inner.addrs.write(&ip);
        if let Some(n) = addrs.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                shrunk(&mut addrs, |m| m.remove(&ip));
            }
        }
    }

    fn connection_left(&self) {
        if self.inner.connections.fetch_sub(1, Relaxed) == 1 {
            let waiters = std::mem::take(&mut *lock(&self.inner.empty_waiters));
            for w in waiters {
                w.wake();
            }
        }
    }

    /// The connection with this id, if registered.
    pub fn session(&self, id: ConnectionId) -> Option<Session> {
        self.inner.conns.read(&id).get(&id).cloned()
    }

    /// Every session of a user (none if the user is offline).
    pub fn user_sessions(&self, user: &str) -> Vec<Session> {
        self.inner
            .users
            .read(user)
            .get(user)
            .cloned()
            .unwrap_or_default()
    }

    /// Whether the user has at least one connection.
    pub fn is_online(&self, user: &str) -> bool {
        self.inner.users.read(user).contains_key(user)
    }

    /// The users with at least one connection, in no particular order.
    pub fn online_users(&self) -> Vec<String> {
        let mut out = Vec::new();
        for shard in self.inner.users.all() {
            out.extend(shard.keys().map(|u| u.to_string()));
        }
        out
    }

    /// Every registered connection, in no particular order.
    pub fn sessions(&self) -> Vec<Session> {
        let mut out = Vec::new();
        for shard in self.inner.conns.all() {
            out.extend(shard.values().cloned());
        }
        out
    }

    /// How many connections are registered.
    pub fn connection_count(&self) -> usize {
        self.inner.connections.load(Relaxed)
    }

    /// How many distinct users have a connection.
    pub fn user_count(&self) -> usize {
        self.inner.user_count.load(Relaxed)
    }

    /// How many rooms exist (a room exists while it has members).
    pub fn room_count(&self) -> usize {
        self.inner.room_count.load(Relaxed)
    }

    // ---- rooms ----

    /// Adds a connection to a room, creating the room. Returns `false` if it was a member
    /// already.
    pub fn join(&self, id: ConnectionId, room: &str) -> Result<bool, HubError> {
        validate_room_name(room)?;
        let session = self.session(id).ok_or(HubError::UnknownConnection)?;
        self.join_session(&session, room)
    }

    /// Adds every session of `user` to a room; returns how many joined (were not members).
    /// Stops at the first error.
    pub fn join_user(&self, user: &str, room: &str) -> Result<usize, HubError> {
        validate_room_name(room)?;
        let mut joined = 0;
        for session in self.user_sessions(user) {
            match self.join_session(&session, room) {
                Ok(true) => joined += 1,
                Ok(false) | Err(HubError::UnknownConnection) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(joined)
    }

    pub(crate) fn join_session(&self, session: &Session, room: &str) -> Result<bool, HubError> {
        let inner = &*self.inner;
        let cfg = &inner.config;
        let mut rooms = session.conn.rooms();
        if rooms.removed {
            return Err(HubError::UnknownConnection);
        }
        if rooms.names.iter().any(|n| &**n == room) {
            return Ok(false);
        }
        if rooms.names.len() >= cfg.max_rooms_per_connection {
            return Err(HubError::TooManyRooms);
        }
        let mut map = inner.rooms.write(room);
        let (entry, created) = match map.get(room) {
            Some(r) => (r.clone(), false),
            None => {
                let name: Arc<str> = room.into();
                let policy = read(&inner.policies)
                    .get(room)
                    .copied()
                    .unwrap_or(cfg.policy);
                let r = Arc::new(Room {
                    name: name.clone(),
                    members: Mutex::new(Members {
                        map: HashSet::default(),
                        snapshot: None,
                        policy,
                    }),
                    stats: RoomDeliveries::default(),
                });
                map.insert(name, r.clone());
                inner.room_count.fetch_add(1, Relaxed);
                inner.broker.subscribe(room);
                (r, true)
            }
        };
        let mut members = lock(&entry.members);
        if members.map.len() >= cfg.max_room_members {
            if created {
                map.remove(room);
                inner.room_count.fetch_sub(1, Relaxed);
                inner.broker.unsubscribe(room);
            }
            return Err(HubError::RoomFull);
        }
        members.map.insert(Member(session.clone()));
        members.snapshot = None;
        drop(members);
        drop(map);
        // Most connections are in one room or a few: the first allocation holds one name
        // (16 bytes, instead of the 64 of `Vec`'s first growth).
        if rooms.names.capacity() == 0 {
            rooms.names.reserve_exact(1);
        }
        rooms.names.push(entry.name.clone());
        // Under the connection's lock: its joins and leaves are told in order.
        inner.broker.joined(room, session);
        if !inner.bus.is_empty() {
            inner.bus.emit(HubEvent::Joined {
                room: entry.name.clone(),
                id: session.id(),
                user: session.conn.identity.user_arc().cloned(),
            });
        }
        Ok(true)
    }

    /// Removes a connection from a room (the room goes when its last member leaves).
    /// Returns whether it was a member.
    pub fn leave(&self, id: ConnectionId, room: &str) -> bool {
        let Some(session) = self.session(id) else {
            return false;
        };
        self.leave_session(&session, room)
    }

    /// Removes every session of `user` from a room; returns how many left.
    pub fn leave_user(&self, user: &str, room: &str) -> usize {
        self.user_sessions(user)
            .iter()
            .filter(|s| self.leave_session(s, room))
            .count()
    }

    pub(crate) fn leave_session(&self, session: &Session, room: &str) -> bool {
        let mut rooms = session.conn.rooms();
        let Some(at) = rooms.names.iter().position(|n| &**n == room) else {
            return false;
        };
        rooms.names.remove(at);
        self.remove_member(room, session);
        drop(rooms);
        true
    }

    fn remove_member(&self, room: &str, session: &Session) {
        let inner = &*self.inner;
        let id = session.id();
        let mut map = inner.rooms.write(room);
        let Some(entry) = map.get(room) else { return };
        let name = entry.name.clone();
        let mut members = lock(&entry.members);
        let removed = members.map.remove(&id);
        // As `shrunk` does for maps.
        let (len, capacity) = (members.map.len(), members.map.capacity());
        if capacity > 64 && len < capacity / 4 {
            members.map.shrink_to(len * 2);
        }
        if removed {
            members.snapshot = None;
            inner.broker.left(room, session);
        }
        let empty = members.map.is_empty();
        drop(members);
        if empty {
            shrunk(&mut map, |m| m.remove(room));
            inner.room_count.fetch_sub(1, Relaxed);
            inner.broker.unsubscribe(room);
        }
        drop(map);
        if removed && !inner.bus.is_empty() {
            inner.bus.emit(HubEvent::Left {
                room: name,
                id,
                user: session.conn.identity.user_arc().cloned(),
            });
        }
    }

    fn room(&self, room: &str) -> Option<Arc<Room>> {
        self.inner.rooms.read(room).get(room).cloned()
    }

    /// The members of a room (empty if there is no such room).
    pub fn members(&self, room: &str) -> Vec<Session> {
        match self.room(room) {
            Some(r) => r.snapshot().0.to_vec(),
            None => Vec::new(),
        }
    }

    /// How many members a room has.
    pub fn member_count(&self, room: &str) -> usize {
        self.room(room).map_or(0, |r| lock(&r.members).map.len())
    }

    /// The distinct users among a room's members (its user-level presence), in no
    /// particular order.
    pub fn room_users(&self, room: &str) -> Vec<String> {
        let mut users: Vec<String> = self
            .members(room)
            .iter()
            .filter_map(|s| s.user().map(str::to_owned))
            .collect();
        users.sort_unstable();
        users.dedup();
        users
    }

    /// Who is in a room: on every node if the broker keeps presence, otherwise this
    /// node's members ([`members`](Hub::members)).
    pub async fn presence(&self, room: &str) -> Result<Vec<PresenceInfo>, HubError> {
        if let Some(all) = self.inner.broker.presence(room).await? {
            return Ok(all);
        }
        Ok(self.members(room).iter().map(PresenceInfo::local).collect())
    }

    /// Subscribes to every [`HubEvent`]: joins and leaves of every room, users online
    /// and offline. Events that happen from now on are queued for the subscription.
    pub fn events(&self) -> Events {
        self.inner.bus.subscribe(None)
    }

    /// Subscribes to the joins and leaves of one room.
    pub fn room_events(&self, room: &str) -> Events {
        self.inner.bus.subscribe(Some(room.into()))
    }

    /// The names of every room, in no particular order.
    pub fn rooms(&self) -> Vec<String> {
        let mut out = Vec::new();
        for shard in self.inner.rooms.all() {
            out.extend(shard.keys().map(|n| n.to_string()));
        }
        out
    }

    /// Sets the slow-consumer policy of a room, now and whenever it is created again.
    pub fn set_room_policy(&self, room: &str, policy: Policy) -> Result<(), HubError> {
        validate_room_name(room)?;
        self.inner
            .policies
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(room.into(), policy);
        if let Some(r) = self.room(room) {
            lock(&r.members).policy = policy;
        }
        Ok(())
    }

    /// The policy a room's messages are sent under.
    pub fn room_policy(&self, room: &str) -> Policy {
        read(&self.inner.policies)
            .get(room)
            .copied()
            .unwrap_or(self.inner.config.policy)
    }

    // ---- sending ----

    /// Sends `payload` to one connection; see [`send`](Hub::send).
    pub fn send_to(&self, id: ConnectionId, payload: impl Into<Payload>) -> SendReport {
        self.send(Target::Connection(id), payload, SendOptions::new())
    }

    /// Sends `payload` to every session of `user`; see [`send`](Hub::send).
    pub fn send_to_user(&self, user: &str, payload: impl Into<Payload>) -> SendReport {
        self.send(Target::User(user), payload, SendOptions::new())
    }

    /// Sends `payload` to every member of `room`; see [`send`](Hub::send).
    pub fn publish(&self, room: &str, payload: impl Into<Payload>) -> SendReport {
        self.send(Target::Room(room), payload, SendOptions::new())
    }

    /// Sends `payload` to every connection; see [`send`](Hub::send).
    pub fn broadcast(&self, payload: impl Into<Payload>) -> SendReport {
        self.send(Target::All, payload, SendOptions::new())
    }

    /// Sends `payload` to every connection for which `filter` holds; see
    /// [`send`](Hub::send).
    pub fn send_where(
        &self,
        filter: impl Fn(&Session) -> bool + Sync,
        payload: impl Into<Payload>,
    ) -> SendReport {
        self.send(Target::Filter(&filter), payload, SendOptions::new())
    }

    /// Sends `payload` to `target`: encodes it once (compressed once too, with
    /// [`HubConfig::compression`]) and hands every recipient a shared reference to the
    /// same bytes. Never waits: a recipient whose queue is full is handled by the room's
    /// [`Policy`] (the hub's for targets other than a room). Returns what became of the
    /// message, one count per recipient; the stats count the same.
    pub fn send(
        &self,
        target: Target<'_>,
        payload: impl Into<Payload>,
        options: SendOptions,
    ) -> SendReport {
        let item = self.item(payload.into(), options.key);
        self.fan_out(target, &item, options.exclude, None)
    }

    fn item(&self, payload: Payload, key: Option<Arc<str>>) -> Item {
        let frame = payload.prepare(self.inner.config.compression);
        Item {
            len: frame.as_bytes().len(),
            frame,
            key,
        }
    }

    /// Offers `item` to every recipient of `target`. A numbered room message (`offset`)
    /// is held for the members recovering that room.
    fn fan_out(
        &self,
        target: Target<'_>,
        item: &Item,
        exclude: Option<ConnectionId>,
        offset: Option<u64>,
    ) -> SendReport {
        let inner = &*self.inner;
        let mut report = SendReport::default();
        let mut high = 0;
        let policy = inner.config.policy;
        let bounds = self.bounds();
        // Messages for idle connections are written from this task once every recipient
        // has its message (one write each, no task wake-up), unless the sender is in a
        // burst (more of its messages wait): then each connection's own task writes what
        // accumulates for it, several messages at a time. The connection whose message is
        // being handled is left to its own task too: its reply goes out once the handler
        // is done with the message (driven now, the read buffer the message points into
        // could not be reused, and would be held a while).
        let (burst, handling) = serving();
        // A room's members, taken before anything is offered.
        let members = match target {
            Target::Room(name) => match self.room(name) {
                Some(room) => Some((room.snapshot(), room)),
                None => return report,
            },
            _ => None,
        };
        let recipients = match (&target, &members) {
            (_, Some(((list, _), _))) => list.len(),
            (Target::All | Target::Filter(_), _) => inner.connections.load(Relaxed),
            _ => 1,
        };
        let mut writes = (!burst).then(|| Writes::new(inner, recipients));
        let mut offer = |s: &Session, policy: Policy, room: Option<&str>| {
            if Some(s.id()) == exclude {
                return;
            }
            if let (Some(offset), Some(room)) = (offset, room) {
                if s.conn.recovering_n.load(Acquire) > 0 {
                    let mut recovering = s.conn.recovering();
                    if let Some((_, held)) = recovering.iter_mut().find(|(r, _)| &**r == room) {
                        held.push((offset, item.clone()));
                        report.queued += 1;
                        return;
                    }
                }
            }
            let corked = writes
                .as_mut()
                .filter(|_| Some(s.id()) != handling)
                .map(|w| &mut w.cork);
            let (outcome, bytes) =
                s.conn
                    .queue
                    .deliver(&s.conn.sender, item, policy, bounds, corked);
            if let Some(writes) = writes.as_mut() {
                writes.chunk_done();
            }
            high = high.max(bytes);
            report.add(outcome);
        };
        match target {
            Target::Connection(id) => {
                if let Some(s) = self.session(id) {
                    offer(&s, policy, None);
                }
            }
            Target::User(user) => {
                for s in self.user_sessions(user) {
                    offer(&s, policy, None);
                }
            }
            Target::Room(name) => {
                if let Some(((list, policy), room)) = &members {
                    for s in list.iter() {
                        offer(s, *policy, Some(name));
                    }
                    room.stats.record(&report, item.len);
                }
            }
            Target::All => {
                for shard in inner.conns.all() {
                    for s in shard.values() {
                        offer(s, policy, None);
                    }
                }
            }
            Target::Filter(filter) => {
                // Outside the registry's locks: the predicate may call the hub.
                for s in self.sessions() {
                    if filter(&s) {
                        offer(&s, policy, None);
                    }
                }
            }
        }
        // (Outside the registry's and the queues' locks.)
        drop(writes);
        if high > 0 {
            inner.stats.queue_bytes(high);
        }
        inner.stats.deliveries.record(&report, item.len);
        report
    }

    /// Gives the hub the runtime's sleep, which [`HubConfig::flush_interval`] needs
    /// (`|d| Box::pin(tokio::time::sleep(d))`, for example). Set it once, before serving
    /// connections; returns `false` if one was set already.
    pub fn set_sleep(
        &self,
        sleep: impl Fn(Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync + 'static,
    ) -> bool {
        self.inner.sleep.set(Arc::new(sleep)).is_ok()
    }

    /// Lets a large fan-out (512 recipients or more) write from several threads: `spawn`
    /// runs a job on another thread of the runtime, `helpers` is how many a fan-out may
    /// start (the runtime's worker threads less one, say). Each helper, and the sending
    /// task, writes chunks of recipients until none is left; when the other threads are
    /// busy, the sending task ends up writing them all, as without helpers. Set it once,
    /// before serving connections; returns `false` if it was set already. Without it (or
    /// with `helpers` 0, what a single-threaded runtime should use), every fan-out is
    /// written by its sending task.
    ///
    /// The job must be able to start while the sending task is still busy: with tokio,
    /// spawn it with `spawn_blocking`. (A `tokio::spawn` from a worker thread waits in that
    /// worker's LIFO slot, which no other worker takes from, until the fan-out is over.)
    ///
    /// ```
    /// # let hub = tether_hub::Hub::new(tether_hub::HubConfig::default());
    /// let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    /// hub.set_fan_out_helpers(workers - 1, |job| {
    ///     tokio::task::spawn_blocking(job);
    /// });
    /// ```
    pub fn set_fan_out_helpers(
        &self,
        helpers: usize,
        spawn: impl Fn(Job) + Send + Sync + 'static,
    ) -> bool {
        self.inner.helpers.set((helpers, Arc::new(spawn))).is_ok()
    }

    /// The flush interval, if one applies (configured, with a sleep to wait it with).
    pub(crate) fn flush(&self) -> Option<(Duration, &Sleep)> {
        let interval = self.inner.config.flush_interval?;
        Some((interval, self.inner.sleep.get()?))
    }

    fn bounds(&self) -> Bounds {
        Bounds {
            max_bytes: self.inner.config.max_queue_bytes,
            max_messages: self.inner.config.max_queue_messages,
            direct: self.flush().is_none(),
        }
    }

    // ---- the broker: durable publications, history, recovery ----

    /// The hub's broker.
    pub fn broker(&self) -> &Arc<dyn Broker> {
        &self.inner.broker
    }

    /// Keeps the last messages of `room` published with
    /// [`publish_durable`](Hub::publish_durable), for [`recover`](Hub::recover).
    pub fn set_room_history(&self, room: &str, history: HistoryOptions) -> Result<(), HubError> {
        validate_room_name(room)?;
        self.inner
            .histories
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(room.into(), history);
        Ok(())
    }

    /// The history a room keeps, if any.
    pub fn room_history(&self, room: &str) -> Option<HistoryOptions> {
        read(&self.inner.histories).get(room).copied()
    }

    /// Sets how numbered room messages reach clients: `envelope` makes the payload each
    /// recipient gets from the room and the publication (with its position), once per
    /// message, in the application's format (so that a client learns the offset to
    /// recover from). Without one, recipients get the payload as published. Set it once,
    /// before publishing; returns `false` if one was set already.
    pub fn set_envelope(
        &self,
        envelope: impl Fn(&str, &Publication) -> Payload + Send + Sync + 'static,
    ) -> bool {
        self.inner.envelope.set(Arc::new(envelope)).is_ok()
    }

    /// Publishes to a room through the broker: numbered (offset and epoch), kept in the
    /// room's history if it has one ([`set_room_history`](Hub::set_room_history)), and
    /// delivered to the room's members on every node. Returns its position.
    pub async fn publish_durable(
        &self,
        room: &str,
        payload: impl Into<Payload>,
        options: SendOptions,
    ) -> Result<StreamPosition, HubError> {
        validate_room_name(room)?;
        let publication = Publication {
            payload: payload.into(),
            key: options.key,
            position: None,
        };
        let history = self.room_history(room);
        let target = BrokerTarget::Room(room.into());
        let position = self
            .inner
            .broker
            .publish(target, publication, history)
            .await?;
        position.ok_or_else(|| {
            HubError::Broker(crate::broker::BrokerError::Unavailable(
                "the broker returned no position for a room publication".into(),
            ))
        })
    }

    /// Sends to a user's sessions or to everyone on every node, through the broker.
    pub async fn send_cluster(
        &self,
        target: BrokerTarget,
        payload: impl Into<Payload>,
    ) -> Result<(), HubError> {
        let publication = Publication {
            payload: payload.into(),
            key: None,
            position: None,
        };
        self.inner.broker.publish(target, publication, None).await?;
        Ok(())
    }

    /// Delivers what the broker hands this node.
    fn deliver_local(&self, target: &BrokerTarget, publication: &Publication) {
        match target {
            BrokerTarget::Room(room) => {
                let payload = self.enveloped(room, publication);
                let item = self.item(payload, publication.key.clone());
                let offset = publication.position.as_ref().map(|p| p.offset);
                self.fan_out(Target::Room(room), &item, None, offset);
            }
            BrokerTarget::User(user) => {
                let item = self.item(publication.payload.clone(), publication.key.clone());
                self.fan_out(Target::User(user), &item, None, None);
            }
            BrokerTarget::All => {
                let item = self.item(publication.payload.clone(), publication.key.clone());
                self.fan_out(Target::All, &item, None, None);
            }
        }
    }

    fn enveloped(&self, room: &str, publication: &Publication) -> Payload {
        match self.inner.envelope.get() {
            Some(envelope) => envelope(room, publication),
            None => publication.payload.clone(),
        }
    }

    /// Joins a room and sends the connection what it missed since `since` (the position
    /// of the last message it got), then the room's new messages: each exactly once, in
    /// order, with no gap, also for messages published while recovery runs. Returns the
    /// number of messages recovered and the stream's position.
    ///
    /// Fails with [`HubError::EpochChanged`] or [`HubError::TooFarBehind`] when the
    /// messages cannot all be recovered (history lost, not kept that far back, or more
    /// than [`HubConfig::max_queue_messages`]): the connection is in the room then, gets
    /// its messages from now on, and should reload its state.
    pub async fn recover(
        &self,
        id: ConnectionId,
        room: &str,
        since: &StreamPosition,
    ) -> Result<(usize, StreamPosition), HubError> {
        validate_room_name(room)?;
        let session = self.session(id).ok_or(HubError::UnknownConnection)?;
        let conn = &session.conn;
        let name: Arc<str> = room.into();
        {
            let mut recovering = conn.recovering();
            if recovering.iter().any(|(r, _)| *r == name) {
                return Err(HubError::AlreadyRecovering);
            }
            recovering.push((name.clone(), Vec::new()));
            conn.recovering_n.fetch_add(1, Relaxed);
        }
        // From here, the room's numbered messages for this connection are held, until
        // `mark` is taken (or dropped, if this future is: it then queues what it holds).
        let mark = Held {
            conn,
            room: Some(name.clone()),
        };
        if let Err(e) = self.join_session(&session, room) {
            drop(mark);
            return Err(e);
        }
        let limit = self.inner.config.max_queue_messages;
        let history = self.inner.broker.history(room, since.offset, limit).await;
        let mut recovering = conn.recovering();
        let held = mark.take(&mut recovering);
        let mut last = since.offset;
        let mut recovered = 0;
        let result = match history {
            Err(e) => Err(HubError::Broker(e)),
            Ok(history) => {
                let latest = history.latest.clone();
                if history.latest.epoch != since.epoch || since.offset > latest.offset {
                    Err(HubError::EpochChanged { latest })
                } else if since.offset + 1 < history.oldest_offset
                    || history.publications.len() == limit
                        && history
                            .publications
                            .last()
                            .and_then(|p| p.position.as_ref())
                            .is_some_and(|p| p.offset < latest.offset)
                {
                    Err(HubError::TooFarBehind { latest })
                } else {
                    for p in &history.publications {
                        let Some(offset) = p.position.as_ref().map(|p| p.offset) else {
                            continue;
                        };
                        if offset > last {
                            let item = self.item(self.enveloped(room, p), p.key.clone());
                            if give(conn, &mut last, offset, &item) {
                                recovered += 1;
                            }
                        }
                    }
                    Ok(latest)
                }
            }
        };
        // What arrived while recovering, after what was recovered (or, when recovery
        // failed, from the first one held).
        if result.is_err() {
            last = held.first().map_or(last, |(o, _)| o.saturating_sub(1));
        }
        for (offset, item) in &held {
            give(conn, &mut last, *offset, item);
        }
        conn.recovering_n.fetch_sub(1, Release);
        drop(recovering);
        let mut latest = result?;
        latest.offset = latest.offset.max(last);
        Ok((recovered, latest))
    }

    // ---- stats ----

    /// The hub's counters now.
    pub fn stats(&self) -> StatsSnapshot {
        let inner = &*self.inner;
        let s = &inner.stats;
        StatsSnapshot {
            connections: self.connection_count(),
            connections_total: s.connections_total.get(),
            connections_refused: s.refused.get(),
            users: self.user_count(),
            rooms: self.room_count(),
            messages_in: s.messages_in.get(),
            bytes_in: s.bytes_in.get(),
            closed_idle: s.closed_idle.get(),
            ended: s.ended_snapshot(),
            queue_high_water: s.queue_high_water.load(Relaxed),
            deliveries: s.deliveries.snapshot(),
        }
    }

    /// A room's counters (since the room was last created), if it exists.
    pub fn room_stats(&self, room: &str) -> Option<RoomStats> {
        let r = self.room(room)?;
        let members = lock(&r.members).map.len();
        Some(RoomStats {
            name: r.name.to_string(),
            members,
            deliveries: r.stats.snapshot(),
        })
    }

    pub(crate) fn ended(&self, reason: &tether_driver::CloseReason) {
        self.inner.stats.ended(reason);
    }

    /// Counts a protocol-level heartbeat (a ping or pong from the peer) as activity,
    /// where [`HubConfig::pings_count_as_activity`] says so.
    pub(crate) fn heartbeat(&self, session: &Session) {
        if self.inner.config.idle_timeout.is_some() && self.inner.config.pings_count_as_activity {
            session.touch(self.now_nanos());
        }
    }

    pub(crate) fn received(&self, session: &Session, len: usize) {
        let s = &self.inner.stats;
        s.messages_in.add(1);
        s.bytes_in.add(len as u64);
        if self.inner.config.idle_timeout.is_some() {
            session.touch(self.now_nanos());
        }
    }

    fn now_nanos(&self) -> u64 {
        self.inner.start.elapsed().as_nanos() as u64
    }

    // ---- inactivity, shutdown ----

    /// Closes (1000, "idle") every connection that has sent no message for
    /// [`HubConfig::idle_timeout`]; returns how many. Call it periodically (every few
    /// seconds) from a task of your runtime; does nothing without an idle timeout.
    pub fn close_idle(&self) -> usize {
        let Some(timeout) = self.inner.config.idle_timeout else {
            return 0;
        };
        let now = self.now_nanos();
        let limit = timeout.as_nanos() as u64;
        let mut closed = 0;
        for shard in self.inner.conns.all() {
            for s in shard.values() {
                let last = s.conn.last_active.load(Relaxed);
                if now.saturating_sub(last) >= limit && !s.is_closed() {
                    s.close(CloseCode::NORMAL, "idle");
                    closed += 1;
                }
            }
        }
        self.inner.stats.closed_idle.add(closed as u64);
        closed as usize
    }

    /// Whether [`shutdown`](Hub::shutdown) has started.
    pub fn is_shutting_down(&self) -> bool {
        self.inner.shutting_down.load(Relaxed)
    }

    /// Shuts down: refuses new connections, lets each connection's queue drain and then
    /// closes it with 1001 (going away), and resolves once every connection has ended,
    /// or once `deadline` resolves (a runtime's sleep), whichever comes first. At the
    /// deadline, connections still open are closed with 1001 at once. Returns whether
    /// every connection ended before the deadline.
    ///
    /// ```no_run
    /// # async fn run(hub: tether_hub::Hub) {
    /// let clean = hub.shutdown(tokio::time::sleep(std::time::Duration::from_secs(5))).await;
    /// # }
    /// ```
    pub async fn shutdown(&self, deadline: impl Future<Output = ()>) -> bool {
        let inner = &*self.inner;
        inner.shutting_down.store(true, Relaxed);
        for s in self.sessions() {
            s.conn.queue.drain_and_close();
        }
        let mut deadline = pin!(deadline);
        let done = poll_fn(|cx| {
            let mut waiters = lock(&inner.empty_waiters);
            if !waiters.iter().any(|w| w.will_wake(cx.waker())) {
                waiters.push(cx.waker().clone());
            }
            drop(waiters);
            if inner.connections.load(Relaxed) == 0 {
                return Poll::Ready(true);
            }
            match deadline.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(false),
                Poll::Pending => Poll::Pending,
            }
        })
        .await;
        if !done {
            for s in self.sessions() {
                s.close(CloseCode::GOING_AWAY, "server shutting down");
            }
        }
        done
    }
}

/// Queues a recovered or held message numbered `offset` if it comes after `last`
/// (whatever the queue's bounds: recovery loses nothing); returns whether it did.
fn give(conn: &Conn, last: &mut u64, offset: u64, item: &Item) -> bool {
    if offset <= *last {
        return false;
    }
    let bounds = Bounds {
        max_bytes: usize::MAX,
        max_messages: usize::MAX,
        direct: true,
    };
    let _ = conn
        .queue
        .deliver(&conn.sender, item, Policy::DropNew, bounds, None);
    *last = offset;
    true
}

/// A room being recovered by a connection: holds the room's numbered messages for it.
struct Held<'a> {
    conn: &'a Conn,
    /// `None` once taken.
    room: Option<Arc<str>>,
}

impl Held<'_> {
    /// Stops holding; returns what was held.
    fn take(mut self, recovering: &mut Recovering) -> Vec<(u64, Item)> {
        match self.room.take() {
            Some(room) => Self::remove(&room, recovering),
            None => Vec::new(),
        }
    }

    fn remove(room: &str, recovering: &mut Recovering) -> Vec<(u64, Item)> {
        // `recovering_n` goes down only once what was held is queued (the caller does
        // it, under the lock): a fan-out that sees 0 may skip the lock, and must not
        // overtake the recovered messages.
        match recovering.iter().position(|(r, _)| &**r == room) {
            Some(at) => recovering.remove(at).1,
            None => Vec::new(),
        }
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        let Some(room) = self.room.take() else { return };
        let mut recovering = self.conn.recovering();
        let held = Self::remove(&room, &mut recovering);
        let mut last = 0;
        for (offset, item) in &held {
            give(self.conn, &mut last, *offset, item);
        }
        self.conn.recovering_n.fetch_sub(1, Release);
    }
}

/// The hub as its broker's sink, without keeping it alive.
struct Sink(Weak<Inner>);

impl BrokerSink for Sink {
    fn deliver(&self, target: &BrokerTarget, publication: &Publication) {
        if let Some(inner) = self.0.upgrade() {
            Hub { inner }.deliver_local(target, publication);
        }
    }
}

/// How many recipients a fan-out gives their message before it writes to them (see
/// [`Hub::fan_out`]): a few dozen at a time, so that the core's per-thread pool of buffers
/// (64) serves every recipient, and the first ones need not wait for the last.
const CORK_CHUNK: usize = 32;

/// The fewest recipients for which a fan-out spawns helpers (see
/// [`Hub::set_fan_out_helpers`]): below, one thread writes them in about a millisecond.
const PARALLEL_MIN: usize = 512;

/// How long a helper waits for the next chunk while the sending task still hands out
/// messages, before it leaves the rest to that task.
const HELPER_PATIENCE: Duration = Duration::from_micros(200);

/// The recipients of one fan-out that wait for a write from outside their own tasks (see
/// [`Hub::fan_out`]): written by the sending task a chunk at a time, or, in a large fan-out
/// with helpers, by whichever of the sending task and its helpers is free. Dropped, it
/// writes what is left.
struct Writes {
    /// The chunk being filled.
    cork: Cork,
    /// Full chunks for the helpers, how many helpers, and how to start them, in a large
    /// fan-out with helpers.
    parallel: Option<(Arc<Chunks>, usize, Spawn)>,
    /// Whether the helpers were started (with the first full chunk).
    started: bool,
}

impl Writes {
    fn new(inner: &Inner, recipients: usize) -> Self {
        let parallel = inner
            .helpers
            .get()
            .filter(|(helpers, _)| *helpers > 0 && recipients >= PARALLEL_MIN)
            .map(|(helpers, spawn)| {
                // One helper per chunk at most (the sending task writes too).
                let helpers = (*helpers).min(recipients / CORK_CHUNK - 1);
                (Arc::new(Chunks::default()), helpers, spawn.clone())
            });
        Self {
            cork: Cork::new(),
            parallel,
            started: false,
        }
    }

    /// After each recipient: a full chunk is written now, or handed to the helpers (spawned
    /// with the first).
    fn chunk_done(&mut self) {
        if self.cork.len() < CORK_CHUNK {
            return;
        }
        let Some((chunks, helpers, spawn)) = &mut self.parallel else {
            self.cork.flush();
            return;
        };
        let waiting = chunks.push(std::mem::take(&mut self.cork));
        if !self.started {
            // The first chunk: start the helpers.
            self.started = true;
            for _ in 0..*helpers {
                let chunks = chunks.clone();
                spawn(Box::new(move || chunks.help()));
            }
        } else if waiting > 2 * *helpers && chunks.started.load(Acquire) == 0 {
            // No helper has started yet (the runtime's other threads may be busy): this
            // task writes too, rather than leave every recipient waiting for them.
            if let Some(mut cork) = chunks.pop() {
                cork.flush();
            }
        }
    }
}

impl Drop for Writes {
    fn drop(&mut self) {
        let Some((chunks, ..)) = self.parallel.take() else {
            self.cork.flush();
            return;
        };
        chunks.push(std::mem::take(&mut self.cork));
        chunks.done.store(true, Release);
        while let Some(mut cork) = chunks.pop() {
            cork.flush();
        }
    }
}

/// The full chunks of a large fan-out, shared by its sending task and its helpers.
#[derive(Default)]
struct Chunks {
    queue: Mutex<std::collections::VecDeque<Cork>>,
    /// The sending task handed out every message: no chunk is coming any more.
    done: AtomicBool,
    /// How many helpers have started.
    started: AtomicUsize,
}

impl Chunks {
    /// Queues a chunk; returns how many wait now.
    fn push(&self, cork: Cork) -> usize {
        let mut queue = lock(&self.queue);
        queue.push_back(cork);
        queue.len()
    }

    fn pop(&self) -> Option<Cork> {
        lock(&self.queue).pop_front()
    }

    /// A helper: writes chunks, first in first out, until none is left.
    fn help(&self) {
        let mut waiting_since = None;
        self.started.fetch_add(1, AcqRel);
        loop {
            if let Some(mut cork) = self.pop() {
                cork.flush();
                waiting_since = None;
            } else if self.done.load(Acquire) {
                return;
            } else if waiting_since.get_or_insert_with(Instant::now).elapsed() > HELPER_PATIENCE {
                // The sending task is slow to hand out the next chunk (it may have lost
                // its thread): it writes what it hands out from now on itself.
                return;
            } else {
                std::hint::spin_loop();
            }
        }
    }
}

thread_local! {
    /// The connection whose message this thread hands to `on_message` (set by
    /// [`Hub::serve`] around the call), and whether it has more messages waiting: hints
    /// for [`Hub::fan_out`], which leaves the writes to the recipients' tasks in a burst,
    /// and to that connection's own task always. Only hints: both ways deliver the same.
    static SERVING: std::cell::Cell<(bool, Option<ConnectionId>)> =
        const { std::cell::Cell::new((false, None)) };
}

/// Sets the hints of this thread (see [`SERVING`]): `Some((connection, burst))` before
/// `on_message`, `None` after.
pub(crate) fn set_serving(serving: Option<(ConnectionId, bool)>) {
    let value = match serving {
        Some((id, burst)) => (burst, Some(id)),
        None => (false, None),
    };
    SERVING.with(|s| s.set(value));
}

fn serving() -> (bool, Option<ConnectionId>) {
    SERVING.with(|s| s.get())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ids numbered one after another spread evenly over the shards (from the hash's bits
    /// 40 and up) and over each shard's table (its low bits).
    #[test]
    fn sequential_ids_spread_over_shards_and_tables() {
        let shards: Shards<u64, (), IdHash> = Shards::new();
        let mut per_shard = [0usize; SHARDS];
        let mut low = [0usize; 64];
        for id in 1..=SHARDS as u64 * 1000 {
            let shard = shards.index(&id);
            per_shard[shard] += 1;
            if shard == 0 {
                low[(shards.hasher.hash_one(id) % 64) as usize] += 1;
            }
        }
        assert!(
            per_shard.iter().all(|&n| (800..1200).contains(&n)),
            "{per_shard:?}"
        );
        // One shard's 1,000 ids over 64 buckets: about 16 each.
        assert!(low.iter().all(|&n| (3..40).contains(&n)), "{low:?}");
    }
}
