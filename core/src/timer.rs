//! The connection's timers: one table, indexed by kind, earliest deadline first.

use std::time::{Duration, Instant};

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
    /// Input is held for the application's reply until then (see `Connection::input_held`).
    Reply = 5,
}

impl TimerKind {
    pub(crate) const ALL: [TimerKind; 6] = [
        TimerKind::Handshake,
        TimerKind::KeepAlive,
        TimerKind::Pong,
        TimerKind::Idle,
        TimerKind::Close,
        TimerKind::Reply,
    ];
}

/// An offset that means "not armed".
const UNARMED: u64 = u64::MAX;

/// Deadlines by kind, kept as nanoseconds after `base` (the connection's start): 8 bytes
/// each instead of the 16 of an `Option<Instant>`, compared as integers, and computed with
/// saturating arithmetic, so that a timeout of any length (`Duration::MAX` for "never")
/// cannot overflow. The earliest is kept up to date, so that [`Timers::next`] (asked after
/// every input) costs nothing.
///
/// Deadlines beyond about 584 years after `base` are kept as that far; an instant before
/// `base` counts as `base`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Timers {
    base: Instant,
    at: [u64; 6],
    next: u64,
}

/// `d` in nanoseconds, saturating below [`UNARMED`] (64-bit arithmetic: `as_nanos` is 128).
fn nanos(d: Duration) -> u64 {
    d.as_secs()
        .checked_mul(1_000_000_000)
        .and_then(|n| n.checked_add(u64::from(d.subsec_nanos())))
        .map_or(UNARMED - 1, |n| n.min(UNARMED - 1))
}

impl Timers {
    pub(crate) fn new(base: Instant) -> Self {
        Self {
            base,
            at: [UNARMED; 6],
            next: UNARMED,
        }
    }

    /// The instant the deadlines count from.
    pub(crate) fn base(&self) -> Instant {
        self.base
    }

    /// The offset of `at` after `base`, saturating (never [`UNARMED`]): 8 bytes to keep an
    /// instant in.
    pub(crate) fn offset(&self, at: Instant) -> u64 {
        nanos(at.saturating_duration_since(self.base))
    }

    /// Arms `kind` for `after` past `now`, or disarms it (`None`).
    pub(crate) fn set_in(&mut self, kind: TimerKind, now: Instant, after: Option<Duration>) {
        let at = match after {
            Some(d) => self.offset(now).saturating_add(nanos(d)).min(UNARMED - 1),
            None => UNARMED,
        };
        self.set_offset(kind, at);
    }

    /// Arms `kind` for `after` past `from` (an [`offset`](Self::offset)) if that is later
    /// than `now`, and returns whether it did (so a caller firing timers never re-arms one
    /// that is due at once).
    pub(crate) fn rearm_if_later(
        &mut self,
        kind: TimerKind,
        from: u64,
        after: Duration,
        now: Instant,
    ) -> bool {
        let at = from.saturating_add(nanos(after)).min(UNARMED - 1);
        if at <= self.offset(now) {
            return false;
        }
        self.set_offset(kind, at);
        true
    }

    fn set_offset(&mut self, kind: TimerKind, at: u64) {
        let old = std::mem::replace(&mut self.at[kind as usize], at);
        if old == at {
            return;
        }
        if at <= self.next {
            // Earlier than every other one (or unarmed, when nothing is): the new earliest.
            self.next = at;
        } else if old == self.next {
            // The earliest moved later, or went: look again.
            self.next = self.at.iter().copied().min().unwrap_or(UNARMED);
        }
    }

    pub(crate) fn is_armed(&self, kind: TimerKind) -> bool {
        self.at[kind as usize] != UNARMED
    }

    pub(crate) fn stop(&mut self, kind: TimerKind) {
        self.set_offset(kind, UNARMED);
    }

    pub(crate) fn stop_all(&mut self) {
        self.at = [UNARMED; 6];
        self.next = UNARMED;
    }

    /// The earliest armed deadline.
    /// The earliest deadline as the time after `base`.
    pub(crate) fn next_after_base(&self) -> Option<Duration> {
        (self.next != UNARMED).then(|| Duration::from_nanos(self.next))
    }

    pub(crate) fn next(&self) -> Option<Instant> {
        if self.next == UNARMED {
            return None;
        }
        // (`None` only for a deadline too far to be an `Instant`: one that never comes.)
        self.base.checked_add(Duration::from_nanos(self.next))
    }

    /// Disarms and returns the first timer due at `now`, if any.
    pub(crate) fn take_expired(&mut self, now: Instant) -> Option<TimerKind> {
        if self.next == UNARMED {
            return None;
        }
        let now = self.offset(now);
        for kind in TimerKind::ALL {
            if self.at[kind as usize] <= now {
                self.stop(kind);
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
        let ms = Duration::from_millis;
        let mut timers = Timers::new(t0);
        // The reference: the same deadlines as instants.
        let mut reference: [Option<Instant>; 6] = [None; 6];
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..10_000 {
            // A small xorshift: deterministic, and enough to mix the operations.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let kind = TimerKind::ALL[(x % 6) as usize];
            match (x >> 8) % 4 {
                0 => {
                    timers.stop(kind);
                    reference[kind as usize] = None;
                }
                1 => {
                    let now = t0 + ms((x >> 16) % 100);
                    let fired = timers.take_expired(now);
                    let due = TimerKind::ALL
                        .into_iter()
                        .find(|k| reference[*k as usize].is_some_and(|at| at <= now));
                    assert_eq!(fired, due);
                    if let Some(k) = due {
                        reference[k as usize] = None;
                    }
                }
                _ => {
                    let now = t0 + ms((x >> 24) % 50);
                    let after = ms((x >> 32) % 50);
                    timers.set_in(kind, now, Some(after));
                    reference[kind as usize] = Some(now + after);
                }
            }
            let expected = reference.iter().flatten().min().copied();
            assert_eq!(timers.next(), expected);
        }
        timers.stop_all();
        assert_eq!(timers.next(), None);
    }

    #[test]
    fn any_duration_saturates_instead_of_overflowing() {
        let t0 = Instant::now();
        let mut timers = Timers::new(t0);
        let later = t0 + Duration::from_secs(3600);
        timers.set_in(TimerKind::KeepAlive, later, Some(Duration::MAX));
        let far = timers.next().expect("armed");
        assert!(far > t0 + Duration::from_secs(500 * 365 * 24 * 3600));
        assert_eq!(timers.take_expired(later + Duration::from_secs(3600)), None);
        // Exactly representable deadlines come back exactly.
        timers.set_in(TimerKind::Close, later, Some(Duration::from_nanos(1)));
        assert_eq!(timers.next(), Some(later + Duration::from_nanos(1)));
        assert_eq!(timers.take_expired(later), None);
        assert_eq!(
            timers.take_expired(later + Duration::from_nanos(1)),
            Some(TimerKind::Close)
        );
    }
}
