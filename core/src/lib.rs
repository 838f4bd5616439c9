//! # tether-core
//!
//! A sans-IO implementation of the WebSocket protocol (RFC 6455) with permessage-deflate
//! (RFC 7692), for clients and servers. Bytes in, bytes out, time passed in: the core never
//! touches a socket, never reads the clock, never spawns and never sleeps, so the same code
//! runs under tokio, async-std, a hand-written epoll loop, a fuzzer, or a test with virtual
//! time.
//!
//! ## Driving a [`Connection`]
//!
//! Methods fall in four groups:
//!
//! 1. getters ([`Connection::state`], [`Connection::buffered_output`], ...);
//! 2. inputs: [`Connection::handle_input`] for bytes read, [`Connection::handle_eof`] for
//!    end of stream, [`Connection::handle_timeout`] when [`Connection::poll_timeout`] is due;
//! 3. commands: [`Connection::send`], [`Connection::close`], [`Connection::accept`], ...;
//! 4. outputs, drained after every input or command until they return `None`:
//!    [`Connection::poll_transmit`] (bytes to write, or "shut the transport down"),
//!    [`Connection::poll_event`] (messages, the handshake request or response, the terminal
//!    [`Event::Closed`]).
//!
//! A misbehaving peer never produces an `Err`: the connection sends the right close code
//! and reports [`CloseReason::ProtocolError`]. `Err` means local misuse.
//!
//! ```
//! use std::time::Instant;
//! use tether_core::{Accept, ClientRequest, Config, Connection, Event, Message, Transmit};
//!
//! let now = Instant::now();
//! let request = ClientRequest::new("ws://example.com/chat").unwrap();
//! let mut client = Connection::client(Config::default(), &request, [7; 32], now).unwrap();
//! let mut server = Connection::server(Config::default(), now);
//!
//! // Move bytes between the two, as sockets would.
//! fn pump(from: &mut Connection, to: &mut Connection, now: Instant) {
//!     let mut buf = Vec::new();
//!     while let Some(t) = from.poll_transmit(&mut buf) {
//!         if t == Transmit::Data {
//!             to.handle_input(now, &buf);
//!             buf.clear();
//!         }
//!     }
//! }
//!
//! pump(&mut client, &mut server, now);
//! let Some(Event::Request(req)) = server.poll_event() else { panic!() };
//! assert_eq!(req.path(), "/chat");
//! server.accept(now, Accept::new()).unwrap();
//! pump(&mut server, &mut client, now);
//! assert!(matches!(client.poll_event(), Some(Event::Connected(_))));
//!
//! client.send(now, Message::text("hello")).unwrap();
//! pump(&mut client, &mut server, now);
//! match server.poll_event() {
//!     Some(Event::Message(Message::Text(t))) => assert_eq!(t, "hello"),
//!     other => panic!("{other:?}"),
//! }
//! // Nothing to do until the keep-alive timer.
//! assert!(server.poll_timeout().unwrap() > now);
//! ```
//!
//! The crate also exposes the stateless layers on their own: the frame codec
//! ([`FrameHeader`], [`FrameDecoder`], [`apply_mask`]) and the reconnect policy
//! ([`ReconnectPolicy`]), which tells a reconnecting client when to dial next.
#![forbid(unsafe_code)]

mod config;
mod connection;
mod deflate;
mod frame;
mod handshake;
mod message;
mod reconnect;
mod timer;
mod utf8;

pub use config::{Config, Limits, Timeouts};
pub use connection::{
    CloseReason, Connection, Event, PreparedFrame, ProtocolError, SendError, State, Timeout,
    Transmit,
};
pub use deflate::{DeflateConfig, DeflateError, DeflateParams};
pub use frame::{
    Frame, FrameDecoder, FrameError, FrameHeader, MAX_CONTROL_PAYLOAD, MAX_HEADER_LEN, OpCode,
    Role, apply_mask, encode_frame,
};
pub use handshake::{
    Accept, ClientRequest, HandshakeError, HandshakeLimits, Header, Reject, Request, Response,
    UpgradeResponse, accept_key, negotiate_upgrade,
};
pub use message::{CloseCode, CloseFrame, DataKind, Fragment, Message, Utf8Bytes};
pub use reconnect::{
    Decision, Disconnect, GiveUpReason, ReconnectConfig, ReconnectConfigError, ReconnectPolicy,
};
