//! The driver's moments: nanoseconds after a base instant, in 8 bytes instead of the 16 of
//! an `Option<Instant>`, compared as integers and computed with saturating arithmetic.

use std::time::{Duration, Instant};

/// A moment: nanoseconds after a base (a connection's start,
/// [`tether_core::Connection::created_at`], or a timer queue's epoch), or [`NEVER`].
pub(crate) type Nanos = u64;

/// No deadline.
pub(crate) const NEVER: Nanos = u64::MAX;

/// `d` in nanoseconds, saturating below [`NEVER`].
pub(crate) const fn nanos(d: Duration) -> Nanos {
    // (In `u64` arithmetic: cheaper than `as_nanos`' `u128`.)
    match d.as_secs().checked_mul(1_000_000_000) {
        Some(n) => {
            let n = n.saturating_add(d.subsec_nanos() as u64);
            if n == NEVER { NEVER - 1 } else { n }
        }
        None => NEVER - 1,
    }
}

/// `at` in nanoseconds after `base` (0 before it), saturating below [`NEVER`].
pub(crate) fn since(base: Instant, at: Instant) -> Nanos {
    nanos(at.saturating_duration_since(base))
}

/// The instant `t` after `base`; `None` for [`NEVER`] (or one too far to be an `Instant`).
pub(crate) fn instant(base: Instant, t: Nanos) -> Option<Instant> {
    if t == NEVER {
        return None;
    }
    base.checked_add(Duration::from_nanos(t))
}

/// `d` after `t`, saturating below [`NEVER`].
pub(crate) fn after(t: Nanos, d: Duration) -> Nanos {
    t.saturating_add(nanos(d)).min(NEVER - 1)
}
