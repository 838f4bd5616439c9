//! The connection's timers: one table, indexed by kind, earliest deadline first.

use std::time::Instant;

/// The timers a connection runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TimerKind {
    /// The opening handshake must finish by then.
    Handshake = 0,
    /// Send a keep-alive ping then (nothing received for `ping_interval`).
    KeepAlive = 1,
    /// The peer must have sent something by then, or it is dead.
    Pong = 2,
    /// No data message in either direction until then: close.
    Idle = 3,
    /// The closing handshake (or, for a client, the server's TCP close) must finish by then.
    Close = 4,
}

impl TimerKind {
    pub(crate) const ALL: [TimerKind; 5] = [
        TimerKind::Handshake,
        TimerKind::KeepAlive,
        TimerKind::Pong,
        TimerKind::Idle,
        TimerKind::Close,
    ];
}

/// Deadlines by kind. `None` means not armed.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Timers {
    at: [Option<Instant>; 5],
}

impl Timers {
    pub(crate) fn set(&mut self, kind: TimerKind, at: Option<Instant>) {
        self.at[kind as usize] = at;
    }

    pub(crate) fn stop(&mut self, kind: TimerKind) {
        self.at[kind as usize] = None;
    }

    pub(crate) fn stop_all(&mut self) {
        self.at = [None; 5];
    }

    /// The earliest armed deadline.
    pub(crate) fn next(&self) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        for at in self.at.into_iter().flatten() {
            if next.is_none_or(|n| at < n) {
                next = Some(at);
            }
        }
        next
    }

    /// Disarms and returns the first timer due at `now`, if any.
    pub(crate) fn take_expired(&mut self, now: Instant) -> Option<TimerKind> {
        for kind in TimerKind::ALL {
            if let Some(at) = self.at[kind as usize]
                && at <= now
            {
                self.at[kind as usize] = None;
                return Some(kind);
            }
        }
        None
    }
}
