//! # tether-driver
//!
//! The driving loop of the tether WebSocket adapters, written once and generic over a tiny
//! [`Runtime`] trait (spawn a task, make a timer) and a tiny [`Transport`] trait (read,
//! write, flush, shut down). `tether-tokio` and `tether-async-std` are the bindings that
//! implement them; applications use those crates, which re-export everything here.
//!
//! ## How a connection runs
//!
//! Each connection is one allocation: the sans-IO [`tether_core::Connection`], the
//! transport, its buffers and its deadlines live together behind one mutex, never held
//! across a suspension point. Driving the connection means, under that lock:
//!
//! - reading into a buffer and feeding [`Connection::handle_input_buf`](tether_core::Connection::handle_input_buf);
//!   received messages wait in the core until [`WebSocket::recv`] takes them;
//! - draining [`poll_transmit`](tether_core::Connection::poll_transmit) into one write buffer
//!   and writing it, so all queued frames go out in as few writes as possible;
//! - firing the core's timers ([`poll_timeout`](tether_core::Connection::poll_timeout),
//!   [`handle_timeout`](tether_core::Connection::handle_timeout)): keep-alive pings, pong
//!   deadlines, the handshake, idle and close timeouts.
//!
//! Who drives: the transport is polled with the connection's own waker, which wakes the
//! *designated* driver.
//!
//! - A task waiting in [`WebSocket::recv`] is designated while it waits, and does the
//!   connection's I/O itself. A request/reply loop thus costs one task wake-up per message,
//!   with no hand-off between tasks.
//! - The receiving task's first send after it took a message, with no received message
//!   left to handle, is written at once: a reply goes out in the same wake-up as its
//!   request.
//! - Otherwise a background task drives. Bursts of sends, sends from other tasks and
//!   `Sink::feed` therefore go out together in one write. Pings, pongs and timeouts keep
//!   going while the application is busy, or only sends. The background task is spawned
//!   when a wake-up finds no driver, and ends after a second without work: an idle
//!   connection has no task of its own besides the application's.
//! - A due deadline always wakes (or spawns) the background task, so keep-alive and
//!   timeouts never depend on the application. The connections made on one thread share
//!   one queue of deadlines, served by one runtime timer per shard (one shard per CPU):
//!   a connection costs no timer of its own.
//!
//! A `recv()` future that is dropped (in `select!`, on a timeout) hands the job back to the
//! background task. One that is kept across other awaits without being polled delays the
//! peer's frames until it is polled again, or until a second wake-up arrives.
//!
//! Buffers exist only while bytes move: whenever the driver waits, its read and write
//! buffers go back to a small per-thread pool, and come back from it at the next read or
//! write. A busy connection reuses them without allocating; an idle one holds none.
//!
//! Backpressure works both ways. Sends wait while the bytes queued for the transport reach
//! [`Config::write_high_water_mark`], so a peer that reads slowly cannot make memory grow.
//! The driver stops reading while the messages waiting for the application would leave
//! less than one message of [`Limits::max_message_size`] below
//! [`Limits::max_buffered_input`], which pushes back on the peer through TCP flow control
//! instead of failing the connection with 1009. It also stops reading while its output is
//! at the high-water mark and messages still wait for the application (whose sends then
//! wait too): a peer that sends and never reads costs about the mark plus one read. A
//! reader waiting in `recv()` keeps reading at the mark, so that two peers which both
//! send more than they read do not wait for each other. A peer that floods pings and
//! reads nothing gets only the latest pong once 16 KiB of output wait (RFC 6455 §5.5.3).
//! Once the WebSocket is closed, the transport is kept for the close timeout at most, even
//! while a peer that reads nothing leaves output unwritten.
//!
//! Replies come before failures and before a clean close. After a read that brought
//! messages, the core holds further input
//! ([`Connection::input_held`](tether_core::Connection::input_held)) until the application
//! sends something or comes back to `recv()` with nothing left to read, or
//! [`Timeouts::reply_grace`](tether_core::Timeouts) (100 ms) passes, and the driver reads
//! nothing meanwhile. A
//! request/reply loop thus sees the same order as a blocking one: if the peer breaks the
//! protocol right after a message, the reply to that message is sent before the close
//! frame (RFC 6455 §7.1.7). A peer's close frame behind messages not yet taken waits for
//! them in the core, so the replies to them go out before our close frame (§5.5.1).
//! Timers keep running meanwhile.
//!
//! ## Holding connections
//!
//! Every connection has a [`ConnectionId`], and any number of [`Sender`]s
//! ([`WebSocket::sender`]) that other tasks send through: [`Sender::try_send`] never waits,
//! [`Sender::try_send_prepared`] queues a [`PreparedFrame`] encoded once for many
//! connections (its bytes shared, written with one vectored write, from 256 bytes on), and
//! [`Sender::closed`] resolves once with how the connection ended. A server connection can
//! be accepted in two steps ([`incoming`]): the application sees the request, awaits its
//! own checks, then accepts or rejects it.
//!
//! [`WebSocket::recv`] and [`WebSocket::send`] are cancel-safe: a message is taken or
//! queued only by the poll that returns `Ready`.
//!
//! ## A client that stays connected
//!
//! [`ReconnectingClient`] redials lost connections as the core's
//! [`ReconnectPolicy`] decides, with an outbox for messages sent while offline, an optional
//! application-level [`Heartbeat`], and its lifecycle as a stream of [`ClientEvent`]s and
//! callbacks. The loop is written once here, over [`Runtime`] and a [`Dialer`].
#![forbid(unsafe_code)]

// The modules, from the bottom up: each uses only those above it (tests aside).
//
// - `time`: moments as nanoseconds after a base (`Nanos`), with saturating arithmetic.
// - `config`, `error`, `id`, `runtime`, `pool`: the settings, the error type, a
//   connection's number, the `Runtime` and `Transport` traits, the per-thread buffer pool.
// - `timers`: the per-thread queue of deadlines (`Rt`); holds its entries as `timers::Entry`.
// - `dispatch`: which task a wake-up goes to (`WakeState`); decides, never spawns.
// - `io`: a connection's transport state, buffers and timer entry (`Io`).
// - `state`: everything behind a connection's lock (`Shared`), and what the driver and the
//   handles tell each other (`App`).
// - `driver`: one round of I/O (`Shared::step`), and how a connection finishes. What to
//   do is the core's policy (holding input for a reply, closing when every handle is
//   gone, how long to linger once closed); the driver moves the bytes and keeps the time.
// - `shared`: the connection (`Inner`, one allocation) with all its methods (routing its
//   wake-ups, driving it), and its background task.
// - `sender`, `socket`, `start`, `reconnect`: what the application holds and calls (each
//   uses only those before it).
// - `net`: connecting and accepting over the network for the adapters (uses `start`).
mod time;

mod config;
mod error;
mod id;
mod pool;
mod runtime;

mod timers;

mod dispatch;

mod io;

mod state;

mod driver;

mod shared;

mod reconnect;
mod sender;
mod socket;
mod start;

pub mod net;

mod functions;

#[cfg(test)]
mod testing;

pub use config::Config;
pub use error::Error;
pub use id::ConnectionId;
pub use reconnect::{
    ClientEvent, ClientHandle, ClientSendFuture, DialFuture, Dialer, DisconnectReason, Heartbeat,
    OutboxError, OutboxLimits, ReconnectBuilder, ReconnectingClient,
};
pub use runtime::{Runtime, Timer, Transport, with_deadline};
pub use sender::{Closed, Cork, Sender, TrySendError};
pub use socket::{ReadHalf, RecvFuture, ReuniteError, SendFuture, WebSocket, WriteHalf};
pub use start::{Accepting, Incoming, IncomingFuture, accept, client, incoming, open};

/// What each runtime adapter re-exports for its users, in one place so that the adapters
/// offer the same names: the connection and its halves, the reconnecting client with
/// everything its documentation names (its builder, events, outbox, heartbeat, the core's
/// reconnect policy with its settings, decisions and reasons, the dialer), the
/// configuration, the errors, and the core's message, close and handshake types. An
/// adapter does `pub use tether_driver::api::*;` and adds its own `connect`, `accept`, ...
pub mod api {
    pub use crate::{
        Accept, Accepting, ClientEvent, ClientHandle, ClientRequest, ClientSendFuture, CloseCode,
        CloseFrame, CloseReason, Closed, Config, ConnectionId, Cork, Decision, DeflateConfig,
        DeflateParams, DialFuture, Dialer, Disconnect, DisconnectReason, Error, GiveUpReason,
        HandshakeError, Header, Heartbeat, Incoming, IncomingFuture, Limits, Message, OutboxError,
        OutboxLimits, PreparedFrame, ProtocolError, ReadHalf, ReconnectBuilder, ReconnectConfig,
        ReconnectConfigError, ReconnectPolicy, ReconnectingClient, RecvFuture, Reject, Request,
        Response, ReuniteError, Role, SendError, SendFuture, Sender, Timeout, Timeouts,
        TrySendError, Utf8Bytes, WebSocket, WriteHalf,
    };
}

pub use tether_core::{
    Accept, ClientRequest, CloseCode, CloseFrame, CloseReason, Decision, DeflateConfig,
    DeflateParams, Disconnect, GiveUpReason, HandshakeError, Header, Limits, Message,
    PreparedFrame, ProtocolError, ReconnectConfig, ReconnectConfigError, ReconnectPolicy, Reject,
    Request, Response, Role, SendError, Timeout, Timeouts, Utf8Bytes,
};
