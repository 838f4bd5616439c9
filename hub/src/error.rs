//! The hub's error type.

use crate::broker::{BrokerError, StreamPosition};
use crate::room::RoomNameError;
use std::fmt;
use tether_driver::CloseCode;

/// Why the hub refused an operation: a connection, a join, a lookup.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HubError {
    /// The room name is invalid.
    InvalidRoomName(RoomNameError),
    /// No connection with this id is registered.
    UnknownConnection,
    /// The connection is already registered.
    AlreadyRegistered,
    /// The hub holds [`HubConfig::max_connections`](crate::HubConfig::max_connections)
    /// connections already.
    TooManyConnections,
    /// The user holds
    /// [`HubConfig::max_connections_per_user`](crate::HubConfig::max_connections_per_user)
    /// connections already.
    TooManyConnectionsForUser,
    /// The peer address holds
    /// [`HubConfig::max_connections_per_addr`](crate::HubConfig::max_connections_per_addr)
    /// connections already.
    TooManyConnectionsForAddr,
    /// The connection is in
    /// [`HubConfig::max_rooms_per_connection`](crate::HubConfig::max_rooms_per_connection)
    /// rooms already.
    TooManyRooms,
    /// The room has [`HubConfig::max_room_members`](crate::HubConfig::max_room_members)
    /// members already.
    RoomFull,
    /// The hub is shutting down and takes no new connection.
    ShuttingDown,
    /// The broker failed.
    Broker(BrokerError),
    /// Recovery is impossible: the room's stream has another epoch now (its history was
    /// lost, or the position is from elsewhere). The client must reload its state; it is
    /// in the room, and receives its messages from now on.
    EpochChanged {
        /// The stream's latest position.
        latest: StreamPosition,
    },
    /// Recovery is impossible: messages after the position are no longer kept (or more
    /// are missing than a queue holds). As for [`HubError::EpochChanged`], the client
    /// must reload and receives the room's messages from now on.
    TooFarBehind {
        /// The stream's latest position.
        latest: StreamPosition,
    },
    /// The connection is recovering this room already ([`Hub::recover`](crate::Hub::recover)).
    AlreadyRecovering,
    /// The application's [`Handler::on_connect`](crate::Handler::on_connect) refused the
    /// connection.
    Refused,
}

impl HubError {
    /// The close code a connection refused with this error is closed with: 1013 (try
    /// again later) for the limits, 1001 (going away) while shutting down, 1008 (policy
    /// violation) otherwise.
    pub fn close_code(&self) -> CloseCode {
        match self {
            Self::TooManyConnections
            | Self::TooManyConnectionsForUser
            | Self::TooManyConnectionsForAddr
            | Self::TooManyRooms
            | Self::RoomFull => CloseCode::TRY_AGAIN_LATER,
            Self::ShuttingDown => CloseCode::GOING_AWAY,
            _ => CloseCode::POLICY_VIOLATION,
        }
    }

    /// The HTTP status to reject an upgrade request with for this error (see
    /// [`Hub::check_admission`](crate::Hub::check_admission)): 503 for the limits and
    /// shutdown, 403 otherwise.
    pub fn http_status(&self) -> u16 {
        match self {
            Self::TooManyConnections
            | Self::TooManyConnectionsForUser
            | Self::TooManyConnectionsForAddr
            | Self::ShuttingDown => 503,
            _ => 403,
        }
    }
}

impl fmt::Display for HubError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidRoomName(e) => e.fmt(f),
            Self::UnknownConnection => f.write_str("no such connection"),
            Self::AlreadyRegistered => f.write_str("the connection is already registered"),
            Self::TooManyConnections => f.write_str("too many connections"),
            Self::TooManyConnectionsForUser => f.write_str("too many connections for this user"),
            Self::TooManyConnectionsForAddr => {
                f.write_str("too many connections from this address")
            }
            Self::TooManyRooms => f.write_str("too many rooms for this connection"),
            Self::RoomFull => f.write_str("the room is full"),
            Self::ShuttingDown => f.write_str("the server is shutting down"),
            Self::Refused => f.write_str("connection refused"),
            Self::AlreadyRecovering => f.write_str("the room is being recovered already"),
            Self::Broker(e) => e.fmt(f),
            Self::EpochChanged { .. } => {
                f.write_str("cannot recover: the stream's history was lost (new epoch)")
            }
            Self::TooFarBehind { .. } => {
                f.write_str("cannot recover: the missed messages are no longer kept")
            }
        }
    }
}

impl std::error::Error for HubError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::InvalidRoomName(e) => Some(e),
            Self::Broker(e) => Some(e),
            _ => None,
        }
    }
}

impl From<RoomNameError> for HubError {
    fn from(e: RoomNameError) -> Self {
        Self::InvalidRoomName(e)
    }
}

impl From<BrokerError> for HubError {
    fn from(e: BrokerError) -> Self {
        Self::Broker(e)
    }
}
