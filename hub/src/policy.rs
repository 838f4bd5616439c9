//! What happens when a recipient's queue is full.

use tether_driver::CloseCode;

/// What the hub does with a message for a connection whose outgoing queue is full (a slow
/// consumer). Set per room ([`Hub::set_room_policy`](crate::Hub::set_room_policy)), with a
/// hub default ([`HubConfig::policy`](crate::HubConfig::policy)). Every message dropped and
/// every disconnect is counted in the stats, with its reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Policy {
    /// The new message is dropped; what is queued stays.
    DropNew,
    /// The oldest queued messages are dropped until the new one fits.
    DropOldest,
    /// The connection is closed with this code (1008 policy violation or 1013 try again
    /// later, usually) and its queue emptied, as gorilla's chat hub and Centrifugo do.
    Disconnect(CloseCode),
    /// A message sent with a key ([`SendOptions::key`](crate::SendOptions::key)) replaces
    /// the queued message with the same key, if there is one: a slow recipient gets only
    /// the latest value per key. Otherwise (no key, no queued message with the key) the
    /// oldest queued messages are dropped as with [`DropOldest`](Self::DropOldest).
    Conflate,
}

impl Default for Policy {
    /// [`Policy::Disconnect`] with 1008.
    fn default() -> Self {
        Self::Disconnect(CloseCode::POLICY_VIOLATION)
    }
}
