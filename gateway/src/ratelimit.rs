//! The per-connection rate limit of incoming messages: a token bucket.
//!
//! The bucket holds up to `burst` tokens and refills at `rate` tokens per second; each
//! message takes one. Time is passed in, so the bucket never sleeps nor reads the clock.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use tether_gateway::ratelimit::TokenBucket;
//!
//! let start = Instant::now();
//! let mut bucket = TokenBucket::new(2, 3, start); // 2 messages/s, bursts of 3
//! assert!((0..3).all(|_| bucket.try_take(start)));
//! assert!(!bucket.try_take(start));
//! assert!(bucket.try_take(start + Duration::from_millis(500)));
//! ```

use std::time::{Duration, Instant};

/// A token bucket: `burst` tokens at most, refilled at `rate` per second.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    /// Tokens per second.
    rate: f64,
    /// Capacity.
    burst: f64,
    /// Tokens now (fractional between refills).
    tokens: f64,
    /// When `tokens` was last brought up to date.
    last: Instant,
}

impl TokenBucket {
    /// A full bucket at `now`. A `rate` or `burst` of 0 is taken as 1 (the configuration
    /// refuses 0).
    pub fn new(rate: u32, burst: u32, now: Instant) -> Self {
        let burst = f64::from(burst.max(1));
        TokenBucket {
            rate: f64::from(rate.max(1)),
            burst,
            tokens: burst,
            last: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        // A `now` earlier than the last one (clocks passed in out of order) adds nothing.
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        if elapsed > 0.0 {
            self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
            self.last = now;
        }
    }

    /// Takes a token at `now`: `true` if the message may go on, `false` if it is over the
    /// limit (then nothing is taken).
    pub fn try_take(&mut self, now: Instant) -> bool {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// The tokens available at `now` (whole ones).
    pub fn available(&mut self, now: Instant) -> u32 {
        self.refill(now);
        self.tokens as u32
    }

    /// How long from `now` until a token is available (zero if one is).
    pub fn wait_time(&mut self, now: Instant) -> Duration {
        self.refill(now);
        if self.tokens >= 1.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64((1.0 - self.tokens) / self.rate)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn burst_then_rate() {
        let t = Instant::now();
        let mut b = TokenBucket::new(10, 5, t);
        assert_eq!(b.available(t), 5);
        for _ in 0..5 {
            assert!(b.try_take(t));
        }
        assert!(!b.try_take(t));
        assert!(!b.try_take(t + ms(99)), "a token takes 100 ms at 10/s");
        assert!(b.try_take(t + ms(100)));
        assert!(!b.try_take(t + ms(100)));
        assert_eq!(b.wait_time(t + ms(150)), ms(50));
        // One second later: 10 tokens refilled, capped at the burst.
        assert_eq!(b.available(t + ms(1_100)), 5);
    }

    #[test]
    fn sustained_rate() {
        let t = Instant::now();
        let mut b = TokenBucket::new(50, 1, t);
        let mut taken = 0;
        // Trying every millisecond for 10 s lets 50/s through (+ the initial token).
        for i in 0..10_000 {
            if b.try_take(t + ms(i)) {
                taken += 1;
            }
        }
        assert!((500..=501).contains(&taken), "{taken}");
    }

    #[test]
    fn refused_messages_take_nothing() {
        let t = Instant::now();
        let mut b = TokenBucket::new(1, 1, t);
        assert!(b.try_take(t));
        for i in 0..10 {
            assert!(!b.try_take(t + ms(i * 10)));
        }
        assert!(b.try_take(t + ms(1_000)));
    }

    #[test]
    fn time_going_backwards() {
        let t = Instant::now() + Duration::from_secs(10);
        let mut b = TokenBucket::new(1, 2, t);
        assert!(b.try_take(t));
        assert!(
            b.try_take(t - Duration::from_secs(5)),
            "second token of the burst"
        );
        assert!(
            !b.try_take(t - Duration::from_secs(5)),
            "no refill from the past"
        );
        assert_eq!(b.wait_time(t), Duration::from_secs(1));
    }

    #[test]
    fn zero_is_one() {
        let t = Instant::now();
        let mut b = TokenBucket::new(0, 0, t);
        assert!(b.try_take(t));
        assert!(!b.try_take(t));
        assert!(b.try_take(t + Duration::from_secs(1)));
    }
}
