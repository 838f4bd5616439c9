//! Configuration shared by the core and the adapters: limits, timers, compression.

use crate::deflate::DeflateConfig;
use crate::handshake::HandshakeLimits;
use std::time::Duration;

/// Size limits. Every limit is checked before the memory it guards is allocated.
///
/// The defaults suit a public server: a single frame or message may be up to 16 MiB (the
/// largest the Autobahn TestSuite sends), the handshake head up to 16 KiB with 64 headers.
/// Raise them for bulk transfers, or stream large messages with
/// [`Config::stream_fragments`] so that only one frame is held at a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Largest frame payload accepted; larger frames close the connection with 1009.
    pub max_frame_size: usize,
    /// Largest message accepted (after decompression); larger close with 1009.
    pub max_message_size: usize,
    /// Largest amount of received data held inside the connection at once (partial frames,
    /// reassembly, and decoded messages not yet taken with `poll_event`); more closes with 1009.
    /// It must be at least `max_message_size` plus one frame header for the largest message to
    /// fit, which the default does.
    pub max_buffered_input: usize,
    /// Limits of the opening handshake (head size, header count, body of a rejection).
    pub handshake: HandshakeLimits,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_frame_size: 16 << 20,
            max_message_size: 16 << 20,
            max_buffered_input: (32 << 20) + 64,
            handshake: HandshakeLimits::default(),
        }
    }
}

/// Timers. `None` disables a timer. Any length is accepted (`Duration::MAX` included):
/// deadlines are computed saturating, so a timer too far away simply never fires.
///
/// The defaults keep a connection alive through proxies and load balancers that drop a
/// connection after 30 seconds without traffic: after 20 seconds without receiving anything
/// the connection pings, and a peer that has not answered 20 seconds later is declared dead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Timeouts {
    /// Deadline for the opening handshake, from the connection's creation until it is open
    /// (for a server this includes the time the application takes to accept). Default 10 s.
    pub handshake: Option<Duration>,
    /// Send a keep-alive ping after this long without receiving anything. Default 20 s.
    pub ping_interval: Option<Duration>,
    /// After a keep-alive ping, declare the peer dead if nothing arrives for this long.
    /// Default 20 s.
    pub pong_timeout: Option<Duration>,
    /// Close with 1001 after this long without a data message in either direction
    /// (pings do not count). Default: off.
    pub idle: Option<Duration>,
    /// After sending a close frame, give up on the peer's after this long; a client also
    /// waits this long for the server to close TCP. Default 5 s.
    pub close: Option<Duration>,
    /// How long input is held after a read brought messages, while the application has
    /// neither sent anything nor come back for more with nothing left to take (see
    /// [`Connection::input_held`](crate::Connection::input_held)): its replies then go out
    /// before anything later input causes, a close frame for a protocol violation included
    /// (RFC 6455 §7.1.7), as with a blocking request/reply loop. Default 100 ms.
    pub reply_grace: Option<Duration>,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            handshake: Some(Duration::from_secs(10)),
            ping_interval: Some(Duration::from_secs(20)),
            pong_timeout: Some(Duration::from_secs(20)),
            idle: None,
            close: Some(Duration::from_secs(5)),
            reply_grace: Some(Duration::from_millis(100)),
        }
    }
}

/// Everything configurable about a connection. One value can be shared by many connections.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct Config {
    /// Size limits.
    pub limits: Limits,
    /// Timers.
    pub timeouts: Timeouts,
    /// permessage-deflate (RFC 7692): whether to offer (client) or accept (server) it, and how.
    pub deflate: DeflateConfig,
    /// Outgoing messages larger than this are split into frames of at most this many payload
    /// bytes. Default: no fragmentation.
    pub max_outgoing_frame_size: Option<usize>,
    /// Deliver data messages as [`crate::Fragment`] events, one per frame, instead of
    /// reassembling them. Memory then stays bounded by one frame per connection.
    pub stream_fragments: bool,
    /// Server: report a well-formed HTTP request that is not a WebSocket upgrade (no
    /// `Upgrade: websocket`) as [`crate::Event::Request`] too, with
    /// [`Request::is_upgrade`](crate::Request::is_upgrade) false, instead of failing the
    /// handshake with 400. The application answers it with
    /// [`Connection::reject`](crate::Connection::reject) (any status, headers and body, for
    /// example `200` for a `/health` check on the WebSocket port), which closes the
    /// connection; [`Connection::accept`](crate::Connection::accept) refuses it. A request
    /// with `Upgrade: websocket` is checked as an upgrade whatever this says. Default: off.
    pub plain_http: bool,
}
