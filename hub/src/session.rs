//! Who a connection is ([`Identity`]) and what the hub holds of it ([`Session`]).

use crate::queue::{Item, Queue};
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use tether_driver::{CloseCode, ConnectionId, Sender};

/// Who a connection is, given when it is registered: an optional user id (a user may hold
/// several sessions at once), the peer's address, and labels (from authentication: a
/// tenant, a role, a device).
///
/// ```
/// use tether_hub::Identity;
/// let id = Identity::new().with_user("alice").with_label("device", "phone");
/// assert_eq!(id.user(), Some("alice"));
/// assert_eq!(id.label("device"), Some("phone"));
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Identity {
    /// `None` for an anonymous identity; shared by clones. One pointer: an identity is in
    /// every connection's registry entry and its serve future, where 72 bytes of fields
    /// would cost every idle connection twice that.
    parts: Option<Arc<Parts>>,
}

#[derive(Clone, Default, PartialEq, Eq)]
struct Parts {
    user: Option<Arc<str>>,
    peer_addr: Option<SocketAddr>,
    labels: Vec<(Arc<str>, Arc<str>)>,
}

impl Identity {
    /// An anonymous identity: no user, no address, no labels.
    pub fn new() -> Self {
        Self::default()
    }

    fn parts_mut(&mut self) -> &mut Parts {
        Arc::make_mut(self.parts.get_or_insert_with(Arc::default))
    }

    /// Sets the user id.
    pub fn with_user(mut self, user: impl Into<Arc<str>>) -> Self {
        self.parts_mut().user = Some(user.into());
        self
    }

    /// Sets the peer's address (counted by
    /// [`HubConfig::max_connections_per_addr`](crate::HubConfig::max_connections_per_addr)).
    pub fn with_peer_addr(mut self, addr: SocketAddr) -> Self {
        self.parts_mut().peer_addr = Some(addr);
        self
    }

    /// Adds a label, replacing one with the same name.
    pub fn with_label(mut self, name: impl Into<Arc<str>>, value: impl Into<Arc<str>>) -> Self {
        let name = name.into();
        let labels = &mut self.parts_mut().labels;
        labels.retain(|(n, _)| *n != name);
        labels.push((name, value.into()));
        self
    }

    /// The user id.
    pub fn user(&self) -> Option<&str> {
        self.user_arc().map(|u| &**u)
    }

    /// The user id, shared.
    pub fn user_arc(&self) -> Option<&Arc<str>> {
        self.parts.as_ref()?.user.as_ref()
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.parts.as_ref()?.peer_addr
    }

    fn label_list(&self) -> &[(Arc<str>, Arc<str>)] {
        self.parts.as_ref().map_or(&[], |p| &p.labels)
    }

    /// The value of a label.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.label_list()
            .iter()
            .find(|(n, _)| &**n == name)
            .map(|(_, v)| &**v)
    }

    /// Every label, in the order they were added.
    pub fn labels(&self) -> impl Iterator<Item = (&str, &str)> {
        self.label_list().iter().map(|(n, v)| (&**n, &**v))
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("user", &self.user())
            .field("peer_addr", &self.peer_addr())
            .field("labels", &self.label_list())
            .finish()
    }
}

/// The rooms a connection is recovering, each with the numbered messages held for it
/// meanwhile (offset, message).
pub(crate) type Recovering = Vec<(Arc<str>, Vec<(u64, Item)>)>;

/// A connection's rooms, and whether it has left the hub.
pub(crate) struct Rooms {
    pub(crate) names: Vec<Arc<str>>,
    pub(crate) removed: bool,
}

/// The registry's entry for one connection.
pub(crate) struct Conn {
    pub(crate) id: ConnectionId,
    pub(crate) identity: Identity,
    pub(crate) sender: Sender,
    pub(crate) queue: Queue,
    pub(crate) rooms: Mutex<Rooms>,
    /// When the connection last sent a message, in nanoseconds after the hub's start.
    pub(crate) last_active: AtomicU64,
    /// The rooms it is recovering, with the live messages held meanwhile (offset, item).
    pub(crate) recovering: Mutex<Recovering>,
    /// How many rooms it is recovering: the fan-out looks at `recovering` only if any.
    pub(crate) recovering_n: AtomicUsize,
}

impl Conn {
    pub(crate) fn rooms(&self) -> MutexGuard<'_, Rooms> {
        self.rooms.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn recovering(&self) -> MutexGuard<'_, Recovering> {
        self.recovering
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// A registered connection, as the hub holds it: its id, identity, rooms and queue, and
/// its [`Sender`]. Cheap to clone; stays usable after the connection has ended (sends
/// then fail).
#[derive(Clone)]
pub struct Session {
    pub(crate) conn: Arc<Conn>,
}

impl Session {
    /// The connection's id.
    pub fn id(&self) -> ConnectionId {
        self.conn.id
    }

    /// The identity it was registered with.
    pub fn identity(&self) -> &Identity {
        &self.conn.identity
    }

    /// The user id, if any.
    pub fn user(&self) -> Option<&str> {
        self.conn.identity.user()
    }

    /// The peer's address, if known.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.conn.identity.peer_addr()
    }

    /// The rooms the connection is in, in the order it joined them.
    pub fn rooms(&self) -> Vec<String> {
        self.conn
            .rooms()
            .names
            .iter()
            .map(|n| n.to_string())
            .collect()
    }

    /// Whether the connection is in `room`.
    pub fn in_room(&self, room: &str) -> bool {
        self.conn.rooms().names.iter().any(|n| &**n == room)
    }

    /// Messages and bytes waiting in the hub for this connection (beyond what its driver
    /// buffers, [`Sender::buffered_amount`]).
    pub fn queued(&self) -> (usize, usize) {
        self.conn.queue.len()
    }

    /// The connection's sender, to send to it directly (bypassing the hub's queue).
    pub fn sender(&self) -> &Sender {
        &self.conn.sender
    }

    /// Starts closing the connection with `code` and `reason` (at most 123 bytes); it
    /// leaves the hub once it has ended.
    pub fn close(&self, code: impl Into<CloseCode>, reason: &str) {
        let _ = self.conn.sender.close(code, reason);
    }

    /// Whether the connection is closing or closed.
    pub fn is_closed(&self) -> bool {
        self.conn.sender.is_closed()
    }

    pub(crate) fn touch(&self, nanos: u64) {
        self.conn.last_active.store(nanos, Relaxed);
    }
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.conn.id)
            .field("identity", &self.conn.identity)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the hub holds per connection stays small (the target is 2 KiB per idle
    /// connection in one room, the driver's share included).
    #[test]
    fn a_registry_entry_is_small() {
        let size = std::mem::size_of::<Conn>();
        println!("Conn: {size} bytes");
        // 248 bytes with the identity's fields inline, 184 with one pointer to them.
        assert!(size <= 192, "Conn is {size} bytes");
    }
}
