//! What the hub sends and receives: [`Payload`], and how a send went ([`SendReport`]).

use bytes::Bytes;
use std::sync::Arc;
use tether_driver::{Message, PreparedFrame, Utf8Bytes};

/// A data message the hub routes: text or binary bytes, or a frame already prepared.
/// The hub imposes no format on them.
///
/// Cheap to clone (the bytes are shared). Made with `From` (`&str` and `String` give text,
/// `Bytes` and `Vec<u8>` binary) or [`Payload::from_message`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Payload {
    /// A text message.
    Text(Utf8Bytes),
    /// A binary message.
    Binary(Bytes),
    /// A message encoded already (its compression is the caller's choice).
    Prepared(Arc<PreparedFrame>),
}

impl Payload {
    /// A text payload.
    pub fn text(text: impl Into<Utf8Bytes>) -> Self {
        Self::Text(text.into())
    }

    /// A binary payload.
    pub fn binary(data: impl Into<Bytes>) -> Self {
        Self::Binary(data.into())
    }

    /// The payload of a text or binary message; `None` for a control message.
    pub fn from_message(message: Message) -> Option<Self> {
        match message {
            Message::Text(t) => Some(Self::Text(t)),
            Message::Binary(b) => Some(Self::Binary(b)),
            _ => None,
        }
    }

    /// The text, if this is a text payload.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Self::Text(t) => Some(t.as_str()),
            _ => None,
        }
    }

    /// The bytes of a text or binary payload (`None` for a prepared frame).
    pub fn as_bytes(&self) -> Option<&Bytes> {
        match self {
            Self::Text(t) => Some(t.as_bytes()),
            Self::Binary(b) => Some(b),
            Self::Prepared(_) => None,
        }
    }

    /// The payload's length in bytes (a prepared frame's encoded length).
    pub fn len(&self) -> usize {
        match self {
            Self::Text(t) => t.len(),
            Self::Binary(b) => b.len(),
            Self::Prepared(p) => p.as_bytes().len(),
        }
    }

    /// Whether the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Encodes the payload once, compressed too when `compress` holds (window bits, level).
    pub(crate) fn prepare(self, compress: Option<(u8, u32)>) -> Arc<PreparedFrame> {
        let message = match self {
            Self::Prepared(p) => return p,
            Self::Text(t) => Message::Text(t),
            Self::Binary(b) => Message::Binary(b),
        };
        let frame = PreparedFrame::new(&message).expect("a data message");
        Arc::new(match compress {
            Some((bits, level)) => frame.compressed(bits, level),
            None => frame,
        })
    }
}

impl From<&str> for Payload {
    fn from(s: &str) -> Self {
        Self::Text(s.into())
    }
}

impl From<String> for Payload {
    fn from(s: String) -> Self {
        Self::Text(s.into())
    }
}

impl From<Utf8Bytes> for Payload {
    fn from(s: Utf8Bytes) -> Self {
        Self::Text(s)
    }
}

impl From<Bytes> for Payload {
    fn from(b: Bytes) -> Self {
        Self::Binary(b)
    }
}

impl From<Vec<u8>> for Payload {
    fn from(b: Vec<u8>) -> Self {
        Self::Binary(b.into())
    }
}

impl From<PreparedFrame> for Payload {
    fn from(p: PreparedFrame) -> Self {
        Self::Prepared(Arc::new(p))
    }
}

impl From<Arc<PreparedFrame>> for Payload {
    fn from(p: Arc<PreparedFrame>) -> Self {
        Self::Prepared(p)
    }
}

/// Options of a send: a connection to leave out, a conflation key.
#[derive(Clone, Debug, Default)]
pub struct SendOptions {
    pub(crate) exclude: Option<tether_driver::ConnectionId>,
    pub(crate) key: Option<Arc<str>>,
}

impl SendOptions {
    /// No options: every recipient, no key.
    pub fn new() -> Self {
        Self::default()
    }

    /// Leaves out this connection (the sender of a chat message, usually).
    pub fn exclude(mut self, id: tether_driver::ConnectionId) -> Self {
        self.exclude = Some(id);
        self
    }

    /// The conflation key: under [`Policy::Conflate`](crate::Policy::Conflate), a message
    /// still queued for a slow recipient with the same key is replaced by this one (a
    /// price tick per instrument, a cursor per user).
    pub fn key(mut self, key: impl Into<Arc<str>>) -> Self {
        self.key = Some(key.into());
        self
    }
}

/// How a send went: one count per recipient.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct SendReport {
    /// Recipients that took the message (written to their connection's buffer or queued in
    /// the hub for them), conflated ones included.
    pub queued: usize,
    /// Recipients whose queue was full and for which this message was replaced a queued
    /// message with the same key ([`Policy::Conflate`](crate::Policy::Conflate)); counted
    /// in `queued` too.
    pub conflated: usize,
    /// Recipients whose queue was full and which did not get this message
    /// ([`Policy::DropNew`](crate::Policy::DropNew)).
    pub dropped: usize,
    /// Older messages dropped from full queues to make room for this one
    /// ([`Policy::DropOldest`](crate::Policy::DropOldest), or conflation without an older
    /// message of the same key).
    pub dropped_oldest: usize,
    /// Recipients disconnected by this send because their queue was full
    /// ([`Policy::Disconnect`](crate::Policy::Disconnect)).
    pub disconnected: usize,
    /// Recipients already closing or closed, which got nothing.
    pub closed: usize,
}

impl SendReport {
    /// How many recipients the send reached or tried to reach.
    pub fn recipients(&self) -> usize {
        self.queued + self.dropped + self.disconnected + self.closed
    }

    pub(crate) fn add(&mut self, outcome: crate::queue::Outcome) {
        use crate::queue::Outcome;
        match outcome {
            Outcome::Queued { dropped_oldest } => {
                self.queued += 1;
                self.dropped_oldest += dropped_oldest;
            }
            Outcome::Conflated => {
                self.queued += 1;
                self.conflated += 1;
            }
            Outcome::DroppedNew => self.dropped += 1,
            Outcome::Disconnected => self.disconnected += 1,
            Outcome::Closed => self.closed += 1,
        }
    }
}
