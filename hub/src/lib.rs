//! # tether-hub
//!
//! The connection manager of a WebSocket server: every connection of the process, who
//! it belongs to (users with several sessions), the rooms it is in, and sends to any of
//! them — one connection, a user's sessions, a room, everyone, or a filter — encoded once
//! and shared by every recipient. It does not depend on a runtime: the application
//! spawns each connection's [`Hub::serve`] future on its own (tokio, async-std, smol).
//!
//! ```no_run
//! use tether_hub::{Handler, Hub, HubConfig, Identity, Payload, Policy, Session};
//!
//! /// Every message goes to the sender's rooms; everyone starts in "lobby".
//! struct Chat;
//!
//! impl Handler for Chat {
//!     async fn on_connect(&self, hub: &Hub, session: &Session) -> Result<(), tether_hub::HubError> {
//!         hub.join(session.id(), "lobby")?;
//!         Ok(())
//!     }
//!
//!     async fn on_message(&self, hub: &Hub, session: &Session, payload: Payload) {
//!         for room in session.rooms() {
//!             hub.publish(&room, payload.clone());
//!         }
//!     }
//! }
//!
//! # async fn run() -> std::io::Result<()> {
//! let mut config = HubConfig::default();
//! config.policy = Policy::DropOldest; // what a full queue does, unless a room says otherwise
//! let hub = Hub::new(config);
//! let chat = std::sync::Arc::new(Chat);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:9001").await?;
//! loop {
//!     let (stream, addr) = listener.accept().await?;
//!     let (hub, chat) = (hub.clone(), chat.clone());
//!     tokio::spawn(async move {
//!         let Ok(ws) = tether_tokio::accept(stream).await else { return };
//!         let identity = Identity::new().with_peer_addr(addr);
//!         let _ = hub.serve(ws, identity, chat).await; // returns when the connection ends
//!     });
//! }
//! # }
//! ```
//!
//! ## Sending
//!
//! [`Hub::send`] (and [`send_to`](Hub::send_to), [`send_to_user`](Hub::send_to_user),
//! [`publish`](Hub::publish), [`broadcast`](Hub::broadcast),
//! [`send_where`](Hub::send_where)) encodes the message once as a `PreparedFrame`
//! (compressed once too with [`HubConfig::compression`], for the peers that negotiated
//! permessage-deflate without context takeover) and hands each recipient a reference to
//! the same bytes. It never waits: the message goes to the recipient's driver buffer
//! while that has room (the driver writes what is queued together in one vectored
//! write), and otherwise waits in the recipient's hub queue, bounded by
//! [`HubConfig::max_queue_bytes`] and [`HubConfig::max_queue_messages`]. A full queue is
//! handled by the [`Policy`] of the room (or the hub's): drop the new message, drop the
//! oldest, disconnect, or conflate by key. The [`SendReport`] tells what happened to each
//! recipient; [`Hub::stats`] counts the same, and [`Hub::room_stats`] per room.
//!
//! Who writes: a recipient that had nothing queued is written to by the sending task
//! itself, a few dozen at a time, as soon as they have their message (a `Cork` of
//! tether-driver: one write each, no task woken per recipient); one with bytes queued
//! already gets the new message behind those, from its own task. When the sender's
//! connection has more messages waiting (a burst), every recipient's own task writes
//! instead, so that what piles up for a connection goes out in one write. On a runtime
//! with several threads, [`Hub::set_fan_out_helpers`] lets a fan-out to hundreds of
//! recipients or more write from the other threads too (with tokio,
//! `tokio::task::spawn_blocking` as the spawn).
//!
//! ## Registry, users, rooms
//!
//! [`Hub::serve`] registers a connection with an [`Identity`] (an optional user id, the
//! peer's address, labels) and removes it when it ends, whatever the reason, also when
//! the serve future is dropped. [`Hub::session`], [`Hub::user_sessions`],
//! [`Hub::online_users`] and the counts look it up. Rooms ([`Hub::join`],
//! [`Hub::join_user`], [`Hub::leave`], [`Hub::members`], [`Session::rooms`]) exist while
//! they have members; their names are checked ([`validate_room_name`]). The limits of
//! [`HubConfig`] refuse a connection with 1013 (or, checked before the upgrade with
//! [`Hub::check_admission`], with an HTTP status), a join with a [`HubError`].
//!
//! ## Hooks, presence, lifecycle
//!
//! A [`Handler`] gets `on_connect`, `on_message` (bytes, as a [`Payload`]), `on_join`
//! (for [`Hub::request_join`]) and `on_disconnect`. [`Hub::events`] and
//! [`Hub::room_events`] report joins, leaves and users coming online or going offline to
//! whoever subscribes; [`Hub::presence`] lists a room's members. [`Hub::close_idle`]
//! closes connections silent for [`HubConfig::idle_timeout`]; [`Hub::shutdown`] refuses
//! new connections, drains every queue, closes with 1001 and returns when all are gone
//! or a deadline passes. [`HubConfig::flush_interval`] holds a connection's messages for
//! a while to write them together.
//!
//! ## History, recovery and clustering
//!
//! [`Hub::publish_durable`] goes through the hub's [`Broker`] ([`MemoryBroker`] unless
//! [`Hub::with_broker`] says otherwise): the broker numbers the message (a
//! [`StreamPosition`]: offset and epoch), keeps it in the room's history
//! ([`Hub::set_room_history`]: last N messages and/or T seconds) and delivers it to every
//! node's members. [`Hub::set_envelope`] puts the position into what clients get, in the
//! application's format. After a reconnect, [`Hub::recover`] joins the room and sends
//! what the client missed since its position, then the new messages, each once and in
//! order, also while messages keep being published; or it says that recovery is
//! impossible (the epoch changed, or the messages are no longer kept). A networked
//! broker implements the same trait: it hears when a room gets its first local member
//! and loses its last, and of each join and leave, for presence across nodes.
//!
//! ```
//! use futures_util::FutureExt; // the memory broker answers at once
//! use tether_hub::{HistoryOptions, Hub, SendOptions};
//!
//! let hub = Hub::default();
//! hub.set_room_history("prices", HistoryOptions { size: 100, ttl: None })?;
//! let publish = hub.publish_durable("prices", "EURUSD 1.0842", SendOptions::new());
//! let position = publish.now_or_never().expect("ready")?;
//! assert_eq!(position.offset, 1);
//! let history = hub.broker().history("prices", 0, 10).now_or_never().expect("ready")?;
//! assert_eq!(history.publications.len(), 1);
//! # Ok::<(), tether_hub::HubError>(())
//! ```
//!
//! ## Concurrency
//!
//! The hub is `Send + Sync` and has no global lock: the registry, users and rooms are
//! split into shards by hash; a fan-out to a room walks a snapshot of its member list
//! (rebuilt by the first fan-out after a join or leave: a join or leave costs the same in a
//! room of any size), and takes only each recipient's own small queue lock. The hub's
//! counters are striped per thread (a room's, added to once per fan-out, are plain
//! atomics). No lock is held across an await.
#![forbid(unsafe_code)]

mod broker;
mod error;
mod events;
mod hooks;
mod hub;
mod payload;
mod policy;
mod queue;
mod room;
mod serve;
mod session;
mod stats;

pub use broker::{
    Broker, BrokerError, BrokerFuture, BrokerSink, BrokerTarget, History, HistoryOptions,
    MemoryBroker, PresenceInfo, Publication, StreamPosition,
};
pub use error::HubError;
pub use events::{Events, HubEvent};
pub use hooks::Hooks;
pub use hub::{Envelope, Hub, HubConfig, Job, Sleep, Target};
pub use payload::{Payload, SendOptions, SendReport};
pub use policy::Policy;
pub use room::{MAX_ROOM_NAME_LEN, RoomNameError, validate_room_name};
pub use serve::Handler;
pub use session::{Identity, Session};
pub use stats::{DeliveryStats, EndedStats, RoomStats, StatsSnapshot};

pub use tether_driver::{CloseCode, CloseReason, ConnectionId, Message, PreparedFrame};
