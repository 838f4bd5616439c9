//! Messages as the application sees them (RFC 6455 §5.6, §5.5, §7.4).

pub use crate::frame::CloseCode;
use bytes::Bytes;
use std::fmt;

/// Text that is known to be valid UTF-8, held as shareable [`Bytes`].
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Utf8Bytes(Bytes);

impl Utf8Bytes {
    /// Validates `bytes` as UTF-8.
    pub fn try_from_bytes(bytes: Bytes) -> Result<Self, std::str::Utf8Error> {
        std::str::from_utf8(&bytes)?;
        Ok(Self(bytes))
    }

    /// Wraps bytes the caller has already validated. Crate-internal: the connection validates
    /// incrementally as frames arrive.
    pub(crate) fn from_validated(bytes: Bytes) -> Self {
        debug_assert!(std::str::from_utf8(&bytes).is_ok());
        Self(bytes)
    }

    /// A static string, without copying.
    pub const fn from_static(s: &'static str) -> Self {
        Self(Bytes::from_static(s.as_bytes()))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        // Validated on construction; `from_utf8` on valid input is a fast scan, and keeps
        // the crate free of unsafe code.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The underlying bytes.
    pub fn as_bytes(&self) -> &Bytes {
        &self.0
    }

    /// Returns the underlying bytes.
    pub fn into_bytes(self) -> Bytes {
        self.0
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the text is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::ops::Deref for Utf8Bytes {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Debug for Utf8Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Utf8Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<String> for Utf8Bytes {
    fn from(s: String) -> Self {
        Self(Bytes::from(s))
    }
}

impl From<&str> for Utf8Bytes {
    fn from(s: &str) -> Self {
        Self(Bytes::copy_from_slice(s.as_bytes()))
    }
}

impl From<Utf8Bytes> for Bytes {
    fn from(s: Utf8Bytes) -> Self {
        s.0
    }
}

impl PartialEq<str> for Utf8Bytes {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Utf8Bytes {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// The body of a close frame: a code and a UTF-8 reason of at most 123 bytes (§5.5.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloseFrame {
    /// The status code.
    pub code: CloseCode,
    /// The reason, possibly empty.
    pub reason: Utf8Bytes,
}

impl CloseFrame {
    /// A close frame with a code and reason.
    pub fn new(code: impl Into<CloseCode>, reason: impl Into<Utf8Bytes>) -> Self {
        Self {
            code: code.into(),
            reason: reason.into(),
        }
    }
}

/// A message, sent or received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// A text message (always valid UTF-8).
    Text(Utf8Bytes),
    /// A binary message.
    Binary(Bytes),
    /// A ping with up to 125 bytes of application data. Received pings are answered
    /// automatically; they are reported as events for observability.
    Ping(Bytes),
    /// A pong with up to 125 bytes of application data.
    Pong(Bytes),
    /// A close frame; `None` sends one without a body.
    Close(Option<CloseFrame>),
}

impl Message {
    /// A text message.
    pub fn text(s: impl Into<Utf8Bytes>) -> Self {
        Self::Text(s.into())
    }

    /// A binary message.
    pub fn binary(b: impl Into<Bytes>) -> Self {
        Self::Binary(b.into())
    }

    /// The payload length in bytes (for close, the encoded body).
    pub fn len(&self) -> usize {
        match self {
            Self::Text(t) => t.len(),
            Self::Binary(b) | Self::Ping(b) | Self::Pong(b) => b.len(),
            Self::Close(None) => 0,
            Self::Close(Some(c)) => 2 + c.reason.len(),
        }
    }

    /// Whether the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The text of a text message; `None` for any other message.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Self::Text(t) => Some(t.as_str()),
            _ => None,
        }
    }

    /// Whether this is a text message.
    pub fn is_text(&self) -> bool {
        matches!(self, Self::Text(_))
    }

    /// Whether this is a binary message.
    pub fn is_binary(&self) -> bool {
        matches!(self, Self::Binary(_))
    }
}

/// The kind of a data message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DataKind {
    /// Text (UTF-8).
    Text,
    /// Binary.
    Binary,
}

/// A piece of a data message, delivered as it arrives when the connection is configured to
/// stream messages instead of reassembling them (see [`crate::Config::stream_fragments`]).
///
/// For text, each fragment is validated as it arrives, but a fragment may end in the middle
/// of a code point; the whole message is valid UTF-8 once `last` is seen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fragment {
    /// Text or binary (from the first frame of the message).
    pub kind: DataKind,
    /// Whether this is the first fragment of the message.
    pub first: bool,
    /// Whether this is the last fragment of the message.
    pub last: bool,
    /// The (decompressed) data of this fragment.
    pub data: Bytes,
}
