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
//! ## Concurrency
//!
//! The hub is `Send + Sync` and has no global lock: the registry, users and rooms are
//! split into shards by hash; a fan-out to a room walks a snapshot of its member list
//! (rebuilt after a join or leave), and takes only each recipient's own small queue lock.
//! Counters are striped per thread. No lock is held across an await.
#![forbid(unsafe_code)]

mod broker;
mod error;
mod events;
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
pub use hub::{Envelope, Hub, HubConfig, Sleep, Target};
pub use payload::{Payload, SendOptions, SendReport};
pub use policy::Policy;
pub use room::{MAX_ROOM_NAME_LEN, RoomNameError, validate_room_name};
pub use serve::Handler;
pub use session::{Identity, Session};
pub use stats::{DeliveryStats, EndedStats, RoomStats, StatsSnapshot};

pub use tether_driver::{CloseCode, CloseReason, ConnectionId, Message, PreparedFrame};
