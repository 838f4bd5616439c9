//! A connection's number ([`ConnectionId`]).

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

/// A connection's number: unique among the connections of the process (never reused),
/// cheap to copy, hash and compare. [`Display`](fmt::Display) shows the number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnectionId(u64);

impl ConnectionId {
    /// The next number (the first is 1).
    pub(crate) fn next() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Self(NEXT.fetch_add(1, Ordering::Relaxed))
    }

    /// The number.
    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl From<ConnectionId> for u64 {
    fn from(id: ConnectionId) -> u64 {
        id.0
    }
}
