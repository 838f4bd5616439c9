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

/// Deadlines by kind. `None` means not armed. The earliest is kept up to date, so that
/// [`Timers::next`] (asked after every input) costs nothing.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Timers {
    at: [Option<Instant>; 5],
    next: Option<Instant>,
}

impl Timers {
    pub(crate) fn set(&mut self, kind: TimerKind, at: Option<Instant>) {
        let old = std::mem::replace(&mut self.at[kind as usize], at);
        if old == at {
            return;
        }
        match at {
            // Earlier than every other one: the new earliest.
            Some(at) if self.next.is_none_or(|n| at <= n) => self.next = Some(at),
            // The earliest moved later, or went: look again.
            _ if old.is_some() && old == self.next => self.recompute(),
            _ => {}
        }
    }

    pub(crate) fn stop(&mut self, kind: TimerKind) {
        self.set(kind, None);
    }

    pub(crate) fn stop_all(&mut self) {
        self.at = [None; 5];
        self.next = None;
    }

    /// The earliest armed deadline.
    pub(crate) fn next(&self) -> Option<Instant> {
        self.next
    }

    fn recompute(&mut self) {
        let mut next: Option<Instant> = None;
        for i in 0..self.at.len() {
            if let Some(at) = self.at[i]
                && next.is_none_or(|n| at < n)
            {
                next = Some(at);
            }
        }
        self.next = next;
    }

    /// Disarms and returns the first timer due at `now`, if any.
    pub(crate) fn take_expired(&mut self, now: Instant) -> Option<TimerKind> {
        for kind in TimerKind::ALL {
            if let Some(at) = self.at[kind as usize]
                && at <= now
            {
                self.set(kind, None);
                return Some(kind);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// `next` always equals the minimum of the armed deadlines, through any sequence of
    /// sets, stops and expiries.
    #[test]
    fn next_is_always_the_earliest_armed_deadline() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut timers = Timers::default();
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..10_000 {
            // A small xorshift: deterministic, and enough to mix the operations.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let kind = TimerKind::ALL[(x % 5) as usize];
            match (x >> 8) % 4 {
                0 => timers.stop(kind),
                1 => {
                    let _ = timers.take_expired(at((x >> 16) % 100));
                }
                _ => timers.set(kind, Some(at((x >> 24) % 100))),
            }
            let expected = timers.at.iter().flatten().min().copied();
            assert_eq!(timers.next(), expected);
        }
        timers.stop_all();
        assert_eq!(timers.next(), None);
    }
}
