//! The adapters' error type.

use std::fmt;
use std::io;
use tether_core::{CloseReason, HandshakeError, ProtocolError, Response, SendError, Timeout};

/// Everything that can go wrong on a connection, from connecting to closing.
///
/// A clean closing handshake is not an error: the message stream simply ends (`None`), and
/// [`crate::WebSocket::close_reason`] tells how it ended.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// Connecting (DNS, TCP, TLS), reading or writing failed.
    Io(io::Error),
    /// The opening handshake failed (RFC 6455 §4): a malformed request or response, a
    /// failed negotiation. (A refusal is [`Error::Rejected`].)
    Handshake(HandshakeError),
    /// The upgrade was refused with an HTTP status: on a client, the server answered
    /// `status` instead of 101 (`response` has its headers and body); on a server, the
    /// application rejected the request and `status` was sent (`response` is `None`).
    Rejected {
        /// The HTTP status of the refusal.
        status: u16,
        /// Client: the server's whole response.
        response: Option<Box<Response>>,
    },
    /// The peer violated the protocol; the connection was failed with
    /// [`ProtocolError::close_code`] (RFC 6455 §7.1.7).
    Protocol(ProtocolError),
    /// A timer ran out: the opening handshake, a keep-alive pong, the idle timeout, or the
    /// closing handshake.
    Timeout(Timeout),
    /// The transport ended without a closing handshake (close code 1006, RFC 6455 §7.1.5).
    Abnormal,
    /// The message could not be sent: the connection is closing or closed, or the message
    /// is invalid (a control payload over 125 bytes, an unsendable close code).
    Send(SendError),
}

impl Error {
    /// The server's response when it refused the upgrade (status, headers, body).
    pub fn response(&self) -> Option<&Response> {
        match self {
            Self::Rejected { response, .. } => response.as_deref(),
            _ => None,
        }
    }

    /// The HTTP status of a refused upgrade, on either side.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Rejected { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The error that reports an unclean close, or `None` for a clean one. Handshake
    /// failures are taken by value (they are not `Clone`) by the caller beforehand.
    pub(crate) fn from_close(reason: &CloseReason, io: Option<io::Error>) -> Option<Self> {
        if let Some(e) = io {
            return Some(Self::Io(e));
        }
        match reason {
            CloseReason::Clean { .. } => None,
            CloseReason::ProtocolError { error, .. } => Some(Self::Protocol(error.clone())),
            CloseReason::TimedOut(t) => Some(Self::Timeout(*t)),
            CloseReason::Rejected { status } => Some(Self::Rejected {
                status: *status,
                response: None,
            }),
            _ => Some(Self::Abnormal),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(e) => write!(f, "transport error: {e}"),
            Self::Handshake(e) => write!(f, "handshake failed: {e}"),
            Self::Rejected {
                status,
                response: Some(_),
            } => write!(f, "the server refused the upgrade with status {status}"),
            Self::Rejected { status, .. } => write!(f, "request rejected with status {status}"),
            Self::Protocol(e) => write!(f, "protocol violation by the peer: {e}"),
            Self::Timeout(t) => write!(f, "timed out: {t:?}"),
            Self::Abnormal => f.write_str("connection closed without a closing handshake"),
            Self::Send(e) => write!(f, "cannot send: {e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io(e) => Some(e),
            Self::Handshake(e) => Some(e),
            Self::Protocol(e) => Some(e),
            Self::Send(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

impl From<SendError> for Error {
    fn from(e: SendError) -> Self {
        Self::Send(e)
    }
}

impl From<HandshakeError> for Error {
    /// A server's refusal ([`HandshakeError::Rejected`]) becomes [`Error::Rejected`].
    fn from(e: HandshakeError) -> Self {
        match e {
            HandshakeError::Rejected { status, response } => Self::Rejected {
                status,
                response: Some(response),
            },
            e => Self::Handshake(e),
        }
    }
}
