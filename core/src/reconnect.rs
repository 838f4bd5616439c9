//! Reconnect policy for clients: a tiny sans-IO state machine that decides *when* to dial again.
//!
//! The adapter dials; the policy decides. It is told when a dial starts, when a connection is
//! established and when a dial or a connection ended (and why), each time with the caller's
//! `now`. After a disconnect it answers with a [`Decision`]: dial again at a given instant, or
//! give up. It never reads the clock, and its randomness comes from a seed the caller gives, so
//! the same inputs always yield the same decisions.
//!
//! Backoff follows RFC 6455 §7.2.3 ("Recovering from Abnormal Closure"): exponential backoff with
//! *full jitter*. Retry `n` waits a uniformly random delay in `[0, cap(n)]` where
//! `cap(n) = min(max_delay, initial_delay * multiplier^(n - 1))` (see
//! [`ReconnectConfig::backoff_cap`]). The retry counter is reset once a connection has stayed up
//! for [`ReconnectConfig::stable_after`], so a server that accepts and then drops at once keeps
//! being backed off. Terminal reasons (the local application closed, a configured handshake
//! status such as 401/403, a configured close code from the server such as 1008) end the policy
//! without a retry.
//!
//! # Example
//!
//! A driving loop with virtual time: every dial fails, and after three retries the policy gives up.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use tether_core::{Decision, Disconnect, GiveUpReason, ReconnectConfig, ReconnectPolicy};
//!
//! let config = ReconnectConfig { max_attempts: 3, ..ReconnectConfig::default() };
//! let mut policy = ReconnectPolicy::new(config, 42)?;
//! let mut now = Instant::now(); // the adapter's clock; the policy never reads one
//!
//! // The first dial (attempt 0) is made right away, and fails.
//! policy.handle_dial_started(now);
//! let mut decision = policy.handle_disconnect(now, Disconnect::DialFailed);
//! let mut retries = 0;
//! loop {
//!     match decision {
//!         Decision::DialAt { at, attempt, delay } => {
//!             retries += 1;
//!             assert_eq!(attempt, retries);
//!             assert!(delay <= policy.config().backoff_cap(attempt));
//!             assert_eq!(policy.next_dial(), Some(at)); // what a poll_timeout-style driver waits for
//!             now = at; // sleep until `at`, then dial
//!             policy.handle_dial_started(now);
//!             decision = policy.handle_disconnect(now, Disconnect::DialFailed);
//!         }
//!         Decision::GiveUp(reason) => {
//!             assert_eq!(reason, GiveUpReason::AttemptsExhausted);
//!             break;
//!         }
//!     }
//! }
//! assert_eq!(retries, 3);
//! assert!(policy.is_given_up());
//!
//! // A connection that stays up for `stable_after` resets the backoff.
//! policy.reset();
//! policy.handle_connected(now);
//! now += Duration::from_secs(60);
//! let decision = policy.handle_disconnect(now, Disconnect::Abnormal);
//! assert!(matches!(decision, Decision::DialAt { attempt: 1, .. }));
//! # Ok::<(), tether_core::ReconnectConfigError>(())
//! ```

use std::fmt;
use std::time::{Duration, Instant};

use crate::connection::CloseReason;
use crate::message::CloseCode;
use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};

/// Settings of a [`ReconnectPolicy`].
///
/// The [`Default`] is: `initial_delay` 500 ms, `max_delay` 30 s, `multiplier` 2.0,
/// `max_attempts` 0 (unlimited), `stable_after` 10 s, `terminal_statuses` `[401, 403]`,
/// `terminal_close_codes` `[1008]`.
#[derive(Clone, Debug, PartialEq)]
pub struct ReconnectConfig {
    /// Backoff cap of the first retry; later caps grow from it by `multiplier`.
    pub initial_delay: Duration,
    /// Largest backoff cap; the caps saturate here.
    pub max_delay: Duration,
    /// Growth factor of the cap per retry; must be finite and `>= 1.0` (1.0 = constant cap).
    pub multiplier: f64,
    /// Most retries in a row before giving up with [`GiveUpReason::AttemptsExhausted`];
    /// 0 means unlimited. The initial dial is not a retry.
    pub max_attempts: u32,
    /// How long a connection must stay up for the retry counter to be reset when it ends.
    pub stable_after: Duration,
    /// HTTP statuses of a rejected opening handshake (RFC 6455 §4.1) that end the policy.
    pub terminal_statuses: Vec<u16>,
    /// Close codes (RFC 6455 §7.4) that end the policy when the *server* initiated the close.
    ///
    /// The default is `[1008]` (Policy Violation), the code servers use to refuse a client
    /// after the upgrade. 1001 (Going Away), 1011-1014 (server error, restart, try again later,
    /// bad gateway) and application codes 4000-4999 are retried unless listed here.
    pub terminal_close_codes: Vec<CloseCode>,
}

impl Default for ReconnectConfig {
    fn default() -> Self {
        Self {
            initial_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            multiplier: 2.0,
            max_attempts: 0,
            stable_after: Duration::from_secs(10),
            terminal_statuses: vec![401, 403],
            terminal_close_codes: vec![CloseCode::POLICY_VIOLATION],
        }
    }
}

impl ReconnectConfig {
    /// Returns the upper bound of the random delay before retry `attempt`:
    /// `min(max_delay, initial_delay * multiplier^(attempt - 1))`.
    ///
    /// Retry 1 gets `initial_delay` (attempt 0 is treated like 1). Never overflows: a cap too
    /// large for the arithmetic saturates at `max_delay`.
    pub fn backoff_cap(&self, attempt: u32) -> Duration {
        let exponent = i32::try_from(attempt.saturating_sub(1)).unwrap_or(i32::MAX);
        let secs = self.initial_delay.as_secs_f64() * self.multiplier.powi(exponent);
        if secs.is_nan() || secs >= self.max_delay.as_secs_f64() {
            return self.max_delay;
        }
        Duration::try_from_secs_f64(secs.max(0.0))
            .unwrap_or(self.max_delay)
            .min(self.max_delay)
    }

    /// Returns whether `why` ends the policy without a retry.
    ///
    /// Terminal are: [`Disconnect::ClosedByApplication`], a [`Disconnect::HandshakeRejected`]
    /// whose status is in `terminal_statuses`, and a server-initiated [`Disconnect::Closed`]
    /// whose code is in `terminal_close_codes`.
    pub fn is_terminal(&self, why: &Disconnect) -> bool {
        match *why {
            Disconnect::ClosedByApplication => true,
            Disconnect::HandshakeRejected { status } => self.terminal_statuses.contains(&status),
            Disconnect::Closed {
                code: Some(code),
                initiated_locally: false,
            } => self.terminal_close_codes.contains(&code),
            Disconnect::DialFailed
            | Disconnect::HandshakeFailed
            | Disconnect::Closed { .. }
            | Disconnect::Abnormal => false,
        }
    }

    /// Checks the settings; called by [`ReconnectPolicy::new`].
    pub fn validate(&self) -> Result<(), ReconnectConfigError> {
        if !(self.multiplier.is_finite() && self.multiplier >= 1.0) {
            return Err(ReconnectConfigError::InvalidMultiplier(self.multiplier));
        }
        Ok(())
    }
}

/// A [`ReconnectConfig`] that [`ReconnectPolicy::new`] refuses.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum ReconnectConfigError {
    /// `multiplier` is NaN, infinite or below 1.0.
    InvalidMultiplier(f64),
}

impl fmt::Display for ReconnectConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidMultiplier(m) => {
                write!(f, "reconnect multiplier must be finite and >= 1.0, got {m}")
            }
        }
    }
}

impl std::error::Error for ReconnectConfigError {}

/// Why a dial or a connection ended, as the adapter reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Disconnect {
    /// The transport could not be set up (DNS, TCP connect, TLS). Retried.
    DialFailed,
    /// The server answered the opening handshake with a status other than 101 (RFC 6455 §4.1).
    /// Terminal if `status` is in [`ReconnectConfig::terminal_statuses`], else retried.
    HandshakeRejected {
        /// The HTTP status code of the response.
        status: u16,
    },
    /// The opening handshake failed for another reason (bad `Sec-WebSocket-Accept`, malformed
    /// response, handshake timeout; RFC 6455 §4.1). Retried.
    HandshakeFailed,
    /// The close handshake completed (RFC 6455 §7.1.5).
    /// Terminal if the server initiated it with a code in
    /// [`ReconnectConfig::terminal_close_codes`], else retried.
    Closed {
        /// The close code, `None` if the Close frame had no status (1005, RFC 6455 §7.1.5).
        code: Option<CloseCode>,
        /// Whether this side sent the first Close frame (for example the core failing the
        /// connection on a protocol error, or a keep-alive timeout). A close the application
        /// asked for is [`Disconnect::ClosedByApplication`] instead.
        initiated_locally: bool,
    },
    /// The connection dropped without a close handshake: EOF (1006, RFC 6455 §7.1.5), I/O
    /// error, timeout. Retried.
    Abnormal,
    /// The local application closed the connection on purpose. Always terminal.
    ClosedByApplication,
}

impl From<&CloseReason> for Disconnect {
    /// How an open connection's end counts for the policy: a completed closing handshake
    /// is [`Disconnect::Closed`] with the code of the side that started it; a protocol
    /// violation found by this side is a close this side started, with the code it sent;
    /// a failed opening handshake is [`Disconnect::HandshakeFailed`]; anything else (end of
    /// stream, a timeout, a transport error) is [`Disconnect::Abnormal`].
    fn from(reason: &CloseReason) -> Self {
        match reason {
            CloseReason::Clean {
                initiated_locally,
                local,
                remote,
            } => {
                let frame = if *initiated_locally { local } else { remote };
                Disconnect::Closed {
                    code: frame.as_ref().map(|f| f.code),
                    initiated_locally: *initiated_locally,
                }
            }
            CloseReason::ProtocolError { code, .. } => Disconnect::Closed {
                code: Some(*code),
                initiated_locally: true,
            },
            CloseReason::HandshakeFailed(_) => Disconnect::HandshakeFailed,
            CloseReason::Rejected { status } => Disconnect::HandshakeRejected { status: *status },
            _ => Disconnect::Abnormal,
        }
    }
}

/// Why a [`ReconnectPolicy`] gave up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GiveUpReason {
    /// [`ReconnectConfig::max_attempts`] retries in a row failed.
    AttemptsExhausted,
    /// The dial or connection ended for a reason that forbids retrying
    /// (see [`ReconnectConfig::is_terminal`]).
    Terminal(Disconnect),
    /// The application called [`ReconnectPolicy::stop`].
    Stopped,
}

/// The policy's answer to a disconnect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Dial again at `at` (`at >= now`, `at == now + delay` when freshly decided).
    DialAt {
        /// When to dial.
        at: Instant,
        /// The retry number of that dial (1 = first retry; see [`ReconnectPolicy::attempt`]).
        attempt: u32,
        /// The random delay that was drawn, in `[0, backoff_cap(attempt)]`.
        delay: Duration,
    },
    /// Do not dial again.
    GiveUp(GiveUpReason),
}

/// The one place where the policy's state lives.
#[derive(Clone, Copy, Debug)]
enum State {
    /// A dial is (or is about to be) in progress. Initial state: the first dial is immediate.
    Connecting,
    /// Connected since `since`.
    Connected { since: Instant },
    /// A retry is scheduled at `at`.
    Waiting { at: Instant, delay: Duration },
    /// Final until [`ReconnectPolicy::reset`].
    GaveUp(GiveUpReason),
}

/// Decides when a client dials again after losing or failing to get a connection.
///
/// # States
///
/// ```text
///   new / reset()
///        │
///        ▼         handle_connected           handle_disconnect
///   Connecting ─────────────────────► Connected ──────────────────┐
///     │  ▲                                                        │ retryable:
///     │  │ handle_dial_started (at or before `at`)                │ DialAt
///     │  └───────────────────────────────────────── Waiting ◄─────┤
///     │          handle_disconnect, retryable: DialAt    ▲  │     │
///     └──────────────────────────────────────────────────┘  │     │ terminal reason or
///                                                           │     │ retries exhausted:
///          any state ── stop() ──► GaveUp ◄─────────────────┴─────┘ GiveUp
/// ```
///
/// There is no separate idle state: a new (or [`reset`](Self::reset)) policy is `Connecting`
/// its initial dial, which is never delayed. `handle_connected` from `Waiting` is accepted too
/// (the adapter dialled early, e.g. on a user's "reconnect now").
///
/// # Attempt numbers
///
/// Dials are numbered within an outage: 0 is the initial dial (or the first after
/// [`reset`](Self::reset)), 1 the first retry, 2 the second, and so on. A failed dial, or a
/// connection that ends before [`ReconnectConfig::stable_after`], schedules the next number; a
/// connection that ends after being up for `stable_after` or longer resets the count, so the
/// retry after it is 1 again. At most [`ReconnectConfig::max_attempts`] retries are scheduled
/// in a row (0 = unlimited).
///
/// # Misuse
///
/// No input panics, whatever the order or the timestamps (a `now` earlier than a previous one
/// counts as no time elapsed):
/// - a retryable disconnect reported while `Waiting`, before the scheduled instant, is a
///   duplicate report: the pending [`Decision`] is returned unchanged; at or after the scheduled
///   instant it is taken as the outcome of the scheduled dial (for adapters that do not call
///   [`handle_dial_started`](Self::handle_dial_started));
/// - a terminal disconnect gives up in every state;
/// - `handle_connected` while connected keeps the first connection time; inputs after giving
///   up are ignored and `handle_disconnect` keeps answering the same [`Decision::GiveUp`].
#[derive(Clone, Debug)]
pub struct ReconnectPolicy {
    config: ReconnectConfig,
    rng: ChaCha8Rng,
    state: State,
    attempt: u32,
}

impl ReconnectPolicy {
    /// Creates a policy, `Connecting` its initial dial (attempt 0). Jitter is drawn from a
    /// ChaCha8 generator seeded with `seed`.
    pub fn new(config: ReconnectConfig, seed: u64) -> Result<Self, ReconnectConfigError> {
        config.validate()?;
        Ok(Self {
            config,
            rng: ChaCha8Rng::seed_from_u64(seed),
            state: State::Connecting,
            attempt: 0,
        })
    }

    // ----- getters -----

    /// Returns the settings.
    pub fn config(&self) -> &ReconnectConfig {
        &self.config
    }

    /// Returns the number of the current, scheduled or last successful dial in this outage
    /// (0 = initial dial, 1 = first retry). While connected it is the number of the dial that
    /// connected; it goes back to 0 only when a stable connection ends.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// Returns when the scheduled retry is due, `None` unless a retry is pending. A
    /// poll_timeout-style driver waits until then, calls
    /// [`handle_dial_started`](Self::handle_dial_started) and dials.
    pub fn next_dial(&self) -> Option<Instant> {
        match self.state {
            State::Waiting { at, .. } => Some(at),
            _ => None,
        }
    }

    /// Returns whether a connection is up (between `handle_connected` and `handle_disconnect`).
    pub fn is_connected(&self) -> bool {
        matches!(self.state, State::Connected { .. })
    }

    /// Returns whether the policy gave up; the adapter must not dial again.
    pub fn is_given_up(&self) -> bool {
        matches!(self.state, State::GaveUp(_))
    }

    /// Returns why the policy gave up, `None` while it has not.
    pub fn give_up_reason(&self) -> Option<GiveUpReason> {
        match self.state {
            State::GaveUp(reason) => Some(reason),
            _ => None,
        }
    }

    // ----- inputs -----

    /// Call when the adapter starts a dial. Clears the pending [`next_dial`](Self::next_dial).
    /// Optional but recommended: it lets the policy tell a duplicate disconnect report from a
    /// failed dial. Ignored while connected or after giving up.
    pub fn handle_dial_started(&mut self, _now: Instant) {
        if let State::Waiting { .. } = self.state {
            self.state = State::Connecting;
        }
    }

    /// Call when a dial has produced an open connection (opening handshake done, RFC 6455 §4.1).
    /// Ignored while already connected or after giving up.
    pub fn handle_connected(&mut self, now: Instant) {
        match self.state {
            State::Connecting | State::Waiting { .. } => {
                self.state = State::Connected { since: now };
            }
            State::Connected { .. } | State::GaveUp(_) => {}
        }
    }

    /// Call when a dial failed or a connection ended; returns when to dial next, or to give up.
    ///
    /// A `DialAt` is never in the past: `at >= now`. If the connection had been up for at
    /// least [`ReconnectConfig::stable_after`], the retry count starts over at 1.
    pub fn handle_disconnect(&mut self, now: Instant, why: Disconnect) -> Decision {
        if let State::GaveUp(reason) = self.state {
            return Decision::GiveUp(reason);
        }
        if self.config.is_terminal(&why) {
            return self.give_up(GiveUpReason::Terminal(why));
        }
        match self.state {
            State::Connected { since } => {
                if now.saturating_duration_since(since) >= self.config.stable_after {
                    self.attempt = 0;
                }
            }
            State::Waiting { at, delay } if now < at => {
                return Decision::DialAt {
                    at,
                    attempt: self.attempt,
                    delay,
                };
            }
            State::Waiting { .. } | State::Connecting | State::GaveUp(_) => {}
        }
        self.schedule_retry(now)
    }

    // ----- commands -----

    /// Gives up with [`GiveUpReason::Stopped`] (the application no longer wants a connection).
    /// Keeps the first reason if the policy already gave up.
    pub fn stop(&mut self) {
        if !self.is_given_up() {
            self.state = State::GaveUp(GiveUpReason::Stopped);
        }
    }

    /// Starts over: `Connecting` an initial dial, attempt 0, whatever the state. The random
    /// generator is not reseeded, so the whole run stays reproducible from the seed.
    pub fn reset(&mut self) {
        self.state = State::Connecting;
        self.attempt = 0;
    }

    // ----- internals -----

    fn give_up(&mut self, reason: GiveUpReason) -> Decision {
        self.state = State::GaveUp(reason);
        Decision::GiveUp(reason)
    }

    fn schedule_retry(&mut self, now: Instant) -> Decision {
        let next = self.attempt.saturating_add(1);
        if self.config.max_attempts != 0 && next > self.config.max_attempts {
            return self.give_up(GiveUpReason::AttemptsExhausted);
        }
        let cap = self.config.backoff_cap(next);
        let mut delay = full_jitter(&mut self.rng, cap);
        // `now + delay` can only overflow for absurd caps; shrink until it fits.
        let at = loop {
            match now.checked_add(delay) {
                Some(at) => break at,
                None => delay /= 2,
            }
        };
        self.attempt = next;
        self.state = State::Waiting { at, delay };
        Decision::DialAt {
            at,
            attempt: next,
            delay,
        }
    }
}

/// Returns a uniformly random duration in `[0, cap]` with nanosecond resolution
/// (caps beyond `u64::MAX` ns, about 584 years, are clamped).
fn full_jitter(rng: &mut ChaCha8Rng, cap: Duration) -> Duration {
    let hi = u64::try_from(cap.as_nanos()).unwrap_or(u64::MAX);
    Duration::from_nanos(uniform_inclusive(rng, hi))
}

/// Unbiased uniform integer in `[0, hi]` (widening multiply with rejection, Lemire 2019).
fn uniform_inclusive(rng: &mut ChaCha8Rng, hi: u64) -> u64 {
    let Some(range) = hi.checked_add(1) else {
        return rng.next_u64();
    };
    // Low products below `2^64 mod range` would over-represent some results.
    let threshold = range.wrapping_neg() % range;
    loop {
        let product = u128::from(rng.next_u64()) * u128::from(range);
        if product as u64 >= threshold {
            return (product >> 64) as u64;
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn close_reasons_map_to_what_the_policy_sees() {
        use crate::connection::{ProtocolError, Timeout};
        use crate::message::CloseFrame;
        let clean =
            |initiated_locally, local: Option<u16>, remote: Option<u16>| CloseReason::Clean {
                initiated_locally,
                local: local.map(|c| CloseFrame::new(CloseCode(c), "")),
                remote: remote.map(|c| CloseFrame::new(CloseCode(c), "")),
            };
        let closed = |code: Option<u16>, initiated_locally| Disconnect::Closed {
            code: code.map(CloseCode),
            initiated_locally,
        };
        assert_eq!(
            Disconnect::from(&clean(false, Some(1000), Some(4001))),
            closed(Some(4001), false)
        );
        assert_eq!(
            Disconnect::from(&clean(true, Some(1001), Some(1000))),
            closed(Some(1001), true)
        );
        assert_eq!(
            Disconnect::from(&clean(false, None, None)),
            closed(None, false)
        );
        let violation = CloseReason::ProtocolError {
            error: ProtocolError::InvalidUtf8,
            code: CloseCode::INVALID_PAYLOAD,
        };
        assert_eq!(Disconnect::from(&violation), closed(Some(1007), true));
        assert_eq!(
            Disconnect::from(&CloseReason::TimedOut(Timeout::Pong)),
            Disconnect::Abnormal
        );
        assert_eq!(
            Disconnect::from(&CloseReason::Abnormal),
            Disconnect::Abnormal
        );
    }

    use super::*;
    use proptest::prelude::*;

    const MS: Duration = Duration::from_millis(1);

    fn policy(config: ReconnectConfig, seed: u64) -> ReconnectPolicy {
        ReconnectPolicy::new(config, seed).expect("valid config")
    }

    fn expect_dial(decision: Decision) -> (Instant, u32, Duration) {
        match decision {
            Decision::DialAt { at, attempt, delay } => (at, attempt, delay),
            Decision::GiveUp(reason) => panic!("expected DialAt, got GiveUp({reason:?})"),
        }
    }

    /// Fails `n` dials in a row, each at its scheduled instant; returns the time of the last.
    fn fail_dials(p: &mut ReconnectPolicy, mut now: Instant, n: u32) -> Instant {
        for _ in 0..n {
            p.handle_dial_started(now);
            let (at, _, _) = expect_dial(p.handle_disconnect(now, Disconnect::DialFailed));
            now = at;
        }
        now
    }

    #[test]
    fn default_config_is_documented_values() {
        let c = ReconnectConfig::default();
        assert_eq!(c.initial_delay, 500 * MS);
        assert_eq!(c.max_delay, Duration::from_secs(30));
        assert_eq!(c.multiplier, 2.0);
        assert_eq!(c.max_attempts, 0);
        assert_eq!(c.stable_after, Duration::from_secs(10));
        assert_eq!(c.terminal_statuses, vec![401, 403]);
        assert_eq!(c.terminal_close_codes, vec![CloseCode::POLICY_VIOLATION]);
        assert!(c.validate().is_ok());
    }

    #[test]
    fn invalid_multiplier_is_a_typed_error() {
        for m in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 0.5, 0.0, -2.0] {
            let config = ReconnectConfig {
                multiplier: m,
                ..ReconnectConfig::default()
            };
            let err = ReconnectPolicy::new(config, 0).expect_err("must be refused");
            assert!(matches!(err, ReconnectConfigError::InvalidMultiplier(_)));
            assert!(err.to_string().contains("multiplier"));
        }
        let config = ReconnectConfig {
            multiplier: 1.0,
            ..ReconnectConfig::default()
        };
        assert!(ReconnectPolicy::new(config, 0).is_ok());
    }

    #[test]
    fn backoff_cap_grows_exponentially_then_saturates() {
        let c = ReconnectConfig::default();
        let expected_ms = [
            500, 1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000, 30_000,
        ];
        for (i, ms) in expected_ms.into_iter().enumerate() {
            assert_eq!(c.backoff_cap(i as u32 + 1), ms * MS, "attempt {}", i + 1);
        }
        assert_eq!(c.backoff_cap(0), 500 * MS);
        for attempt in [64, 1_024, 1_100, i32::MAX as u32, u32::MAX] {
            assert_eq!(c.backoff_cap(attempt), c.max_delay, "attempt {attempt}");
        }
        // Caps never decrease.
        let mut last = Duration::ZERO;
        for attempt in 1..2_000 {
            let cap = c.backoff_cap(attempt);
            assert!(cap >= last && cap <= c.max_delay);
            last = cap;
        }
    }

    #[test]
    fn backoff_cap_with_non_integer_multiplier_and_extreme_durations() {
        let c = ReconnectConfig {
            initial_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(100),
            multiplier: 1.5,
            ..ReconnectConfig::default()
        };
        assert_eq!(c.backoff_cap(1), Duration::from_secs(1));
        assert_eq!(c.backoff_cap(2), 1_500 * MS);
        assert_eq!(c.backoff_cap(3), 2_250 * MS);
        assert_eq!(c.backoff_cap(100), Duration::from_secs(100));

        let huge = ReconnectConfig {
            initial_delay: Duration::MAX,
            max_delay: Duration::MAX,
            ..ReconnectConfig::default()
        };
        assert_eq!(huge.backoff_cap(u32::MAX), Duration::MAX);
        let zero = ReconnectConfig {
            initial_delay: Duration::ZERO,
            max_delay: Duration::ZERO,
            ..ReconnectConfig::default()
        };
        assert_eq!(zero.backoff_cap(7), Duration::ZERO);
        let initial_above_max = ReconnectConfig {
            initial_delay: Duration::from_secs(60),
            ..ReconnectConfig::default()
        };
        assert_eq!(initial_above_max.backoff_cap(1), Duration::from_secs(30));
    }

    #[test]
    fn rfc6455_7_2_3_delays_lie_within_cap_for_each_attempt() {
        let config = ReconnectConfig::default();
        for seed in 0..200 {
            let mut p = policy(config.clone(), seed);
            let mut now = Instant::now();
            for expected_attempt in 1..=15 {
                p.handle_dial_started(now);
                let (at, attempt, delay) =
                    expect_dial(p.handle_disconnect(now, Disconnect::DialFailed));
                assert_eq!(attempt, expected_attempt);
                assert_eq!(p.attempt(), expected_attempt);
                assert!(delay <= config.backoff_cap(attempt));
                assert_eq!(at, now + delay);
                assert_eq!(p.next_dial(), Some(at));
                now = at;
            }
        }
    }

    #[test]
    fn rfc6455_7_2_3_full_jitter_spreads_over_whole_range() {
        let config = ReconnectConfig {
            initial_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(8),
            ..ReconnectConfig::default()
        };
        // Attempt 1 (cap 1 s) and attempt 6 (cap saturated at 8 s), over 1000 seeds each.
        for (failures, cap) in [(1, config.backoff_cap(1)), (6, config.max_delay)] {
            let start = Instant::now();
            let samples: Vec<f64> = (0..1_000)
                .map(|seed| {
                    let mut p = policy(config.clone(), seed);
                    let now = fail_dials(&mut p, start, failures - 1);
                    let (_, attempt, delay) =
                        expect_dial(p.handle_disconnect(now, Disconnect::DialFailed));
                    assert_eq!(attempt, failures);
                    delay.as_secs_f64() / cap.as_secs_f64()
                })
                .collect();
            let mean = samples.iter().sum::<f64>() / samples.len() as f64;
            let min = samples.iter().copied().fold(f64::INFINITY, f64::min);
            let max = samples.iter().copied().fold(0.0, f64::max);
            // Uniform [0,1]: the mean of 1000 has a standard deviation of about 0.009.
            assert!((mean - 0.5).abs() < 0.05, "mean {mean}");
            assert!(min < 0.02, "min {min}");
            assert!(max > 0.98 && max <= 1.0, "max {max}");
        }
    }

    #[test]
    fn rfc6455_7_2_3_virtual_time_outage_redials_within_max_delay_of_recovery() {
        // A server is down from t = 0 to t = 60 s; every dial before fails. In virtual time,
        // check each wait against its cap, that the client is back within `max_delay` of
        // the recovery, and that a stable connection brings the next wait down to the
        // first cap again.
        let config = ReconnectConfig {
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(5),
            ..ReconnectConfig::default()
        };
        let recovery = Duration::from_secs(60);
        for seed in 0..100 {
            let mut p = policy(config.clone(), seed);
            let start = Instant::now();
            let mut now = start;
            p.handle_connected(now);
            let mut why = Disconnect::Abnormal;
            let mut retries = 0;
            loop {
                let (at, attempt, delay) = expect_dial(p.handle_disconnect(now, why));
                retries += 1;
                assert_eq!(attempt, retries);
                assert!(delay <= config.backoff_cap(attempt), "seed {seed}");
                assert_eq!(at, now + delay);
                now = at;
                p.handle_dial_started(now);
                if now - start >= recovery {
                    break;
                }
                why = Disconnect::DialFailed;
            }
            assert!(
                now - start <= recovery + config.max_delay,
                "seed {seed}: back after {:?}",
                now - start
            );
            p.handle_connected(now);
            now += config.stable_after;
            let (_, attempt, delay) = expect_dial(p.handle_disconnect(now, Disconnect::Abnormal));
            assert_eq!(attempt, 1);
            assert!(delay <= config.initial_delay);
        }
    }

    #[test]
    fn same_seed_gives_same_sequence_and_other_seeds_differ() {
        let run = |seed| {
            let mut p = policy(ReconnectConfig::default(), seed);
            let mut now = Instant::now();
            let start = now;
            let mut delays = Vec::new();
            for _ in 0..20 {
                let (at, _, delay) = expect_dial(p.handle_disconnect(now, Disconnect::Abnormal));
                delays.push(delay);
                now = at;
                p.handle_dial_started(now);
            }
            (delays, now - start)
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7).0, run(8).0);
    }

    #[test]
    fn max_attempts_enforced_with_attempts_exhausted() {
        let config = ReconnectConfig {
            max_attempts: 3,
            ..ReconnectConfig::default()
        };
        let mut p = policy(config, 1);
        let now = fail_dials(&mut p, Instant::now(), 3); // initial dial, retries 1 and 2
        assert_eq!(p.attempt(), 3);
        p.handle_dial_started(now);
        let decision = p.handle_disconnect(now, Disconnect::DialFailed); // retry 3 fails
        assert_eq!(decision, Decision::GiveUp(GiveUpReason::AttemptsExhausted));
        assert!(p.is_given_up());
        assert_eq!(p.give_up_reason(), Some(GiveUpReason::AttemptsExhausted));
        assert_eq!(p.next_dial(), None);
        // Further reports keep the answer.
        let later = now + Duration::from_secs(3_600);
        assert_eq!(
            p.handle_disconnect(later, Disconnect::Abnormal),
            Decision::GiveUp(GiveUpReason::AttemptsExhausted)
        );
        p.handle_connected(later);
        assert!(!p.is_connected() && p.is_given_up());
    }

    #[test]
    fn zero_max_attempts_means_unlimited() {
        let mut p = policy(ReconnectConfig::default(), 3);
        fail_dials(&mut p, Instant::now(), 10_000);
        assert_eq!(p.attempt(), 10_000);
        assert!(!p.is_given_up());
    }

    #[test]
    fn attempt_counter_saturates_without_overflow() {
        let mut p = policy(ReconnectConfig::default(), 3);
        p.attempt = u32::MAX - 1;
        let now = Instant::now();
        let (_, attempt, delay) = expect_dial(p.handle_disconnect(now, Disconnect::DialFailed));
        assert_eq!(attempt, u32::MAX);
        assert!(delay <= p.config().max_delay);
        p.handle_dial_started(now);
        let (_, attempt, _) = expect_dial(p.handle_disconnect(now, Disconnect::DialFailed));
        assert_eq!(attempt, u32::MAX);
    }

    #[test]
    fn rfc6455_4_1_handshake_rejected_401_403_is_terminal() {
        for status in [401, 403] {
            let mut p = policy(ReconnectConfig::default(), 0);
            let why = Disconnect::HandshakeRejected { status };
            let decision = p.handle_disconnect(Instant::now(), why);
            assert_eq!(decision, Decision::GiveUp(GiveUpReason::Terminal(why)));
            assert!(p.is_given_up());
        }
        // Other statuses back off.
        for status in [400, 404, 429, 500, 503] {
            let mut p = policy(ReconnectConfig::default(), 0);
            let why = Disconnect::HandshakeRejected { status };
            expect_dial(p.handle_disconnect(Instant::now(), why));
        }
    }

    #[test]
    fn rfc6455_4_1_terminal_status_list_is_configurable() {
        let config = ReconnectConfig {
            terminal_statuses: vec![404],
            ..ReconnectConfig::default()
        };
        let mut p = policy(config, 0);
        let now = Instant::now();
        expect_dial(p.handle_disconnect(now, Disconnect::HandshakeRejected { status: 401 }));
        p.handle_dial_started(now);
        assert!(matches!(
            p.handle_disconnect(now, Disconnect::HandshakeRejected { status: 404 }),
            Decision::GiveUp(GiveUpReason::Terminal(_))
        ));
    }

    #[test]
    fn rfc6455_7_4_1_policy_violation_from_server_is_terminal() {
        let mut p = policy(ReconnectConfig::default(), 0);
        let now = Instant::now();
        p.handle_connected(now);
        let why = Disconnect::Closed {
            code: Some(CloseCode(1008)),
            initiated_locally: false,
        };
        assert_eq!(
            p.handle_disconnect(now + MS, why),
            Decision::GiveUp(GiveUpReason::Terminal(why))
        );
    }

    #[test]
    fn rfc6455_7_4_1_retryable_and_locally_initiated_closes_back_off() {
        let retryable = [
            (Some(1000), false),
            (Some(1001), false),
            (Some(1011), false),
            (Some(1012), false),
            (Some(1013), false),
            (Some(4001), false),
            (None, false),
            (Some(1008), true), // our side closed with 1008: not the server refusing us
            (Some(1002), true),
        ];
        for (code, initiated_locally) in retryable {
            let mut p = policy(ReconnectConfig::default(), 0);
            let now = Instant::now();
            p.handle_connected(now);
            let why = Disconnect::Closed {
                code: code.map(CloseCode),
                initiated_locally,
            };
            let (_, attempt, _) = expect_dial(p.handle_disconnect(now + MS, why));
            assert_eq!(attempt, 1, "{why:?}");
        }
    }

    #[test]
    fn rfc6455_7_4_2_application_close_codes_are_configurable() {
        let config = ReconnectConfig {
            terminal_close_codes: vec![CloseCode(1008), CloseCode(4001), CloseCode(4003)],
            ..ReconnectConfig::default()
        };
        let mut p = policy(config, 0);
        let now = Instant::now();
        p.handle_connected(now);
        let why = Disconnect::Closed {
            code: Some(CloseCode(4003)),
            initiated_locally: false,
        };
        assert_eq!(
            p.handle_disconnect(now, why),
            Decision::GiveUp(GiveUpReason::Terminal(why))
        );
    }

    #[test]
    fn close_by_local_application_is_terminal_in_every_state() {
        let why = Disconnect::ClosedByApplication;
        let expected = Decision::GiveUp(GiveUpReason::Terminal(why));
        let now = Instant::now();

        let mut connected = policy(ReconnectConfig::default(), 0);
        connected.handle_connected(now);
        assert_eq!(connected.handle_disconnect(now, why), expected);

        let mut connecting = policy(ReconnectConfig::default(), 0);
        assert_eq!(connecting.handle_disconnect(now, why), expected);

        // Reported while a retry is pending: gives up and clears the pending dial.
        let mut waiting = policy(ReconnectConfig::default(), 0);
        expect_dial(waiting.handle_disconnect(now, Disconnect::Abnormal));
        assert!(waiting.next_dial().is_some());
        assert_eq!(waiting.handle_disconnect(now, why), expected);
        assert_eq!(waiting.next_dial(), None);
    }

    #[test]
    fn stop_gives_up_and_reset_starts_over() {
        let mut p = policy(ReconnectConfig::default(), 0);
        let now = fail_dials(&mut p, Instant::now(), 4);
        assert!(p.next_dial().is_some());
        p.stop();
        assert_eq!(p.give_up_reason(), Some(GiveUpReason::Stopped));
        assert_eq!(p.next_dial(), None);
        assert_eq!(
            p.handle_disconnect(now, Disconnect::Abnormal),
            Decision::GiveUp(GiveUpReason::Stopped)
        );
        // The first reason is kept.
        p.stop();
        assert_eq!(p.give_up_reason(), Some(GiveUpReason::Stopped));

        p.reset();
        assert!(!p.is_given_up());
        assert_eq!(p.attempt(), 0);
        let (_, attempt, delay) = expect_dial(p.handle_disconnect(now, Disconnect::DialFailed));
        assert_eq!(attempt, 1);
        assert!(delay <= p.config().initial_delay);
    }

    #[test]
    fn stop_after_terminal_keeps_terminal_reason() {
        let mut p = policy(ReconnectConfig::default(), 0);
        let why = Disconnect::HandshakeRejected { status: 403 };
        p.handle_disconnect(Instant::now(), why);
        p.stop();
        assert_eq!(p.give_up_reason(), Some(GiveUpReason::Terminal(why)));
    }

    #[test]
    fn stable_connection_resets_attempts() {
        let config = ReconnectConfig::default();
        let mut p = policy(config.clone(), 5);
        let now = fail_dials(&mut p, Instant::now(), 5);
        assert_eq!(p.attempt(), 5);
        p.handle_dial_started(now);
        p.handle_connected(now);
        assert!(p.is_connected());
        assert_eq!(
            p.attempt(),
            5,
            "keeps the number of the dial that connected"
        );
        let later = now + config.stable_after;
        let (at, attempt, delay) = expect_dial(p.handle_disconnect(later, Disconnect::Abnormal));
        assert_eq!(attempt, 1);
        assert!(delay <= config.initial_delay);
        assert!(at >= later);
    }

    #[test]
    fn unstable_connection_keeps_backing_off() {
        let config = ReconnectConfig::default();
        let mut p = policy(config.clone(), 5);
        let now = fail_dials(&mut p, Instant::now(), 3);
        p.handle_dial_started(now);
        p.handle_connected(now);
        let drop_at = now + config.stable_after - MS;
        let (_, attempt, delay) = expect_dial(p.handle_disconnect(drop_at, Disconnect::Abnormal));
        assert_eq!(attempt, 4);
        assert!(delay <= config.backoff_cap(4));
    }

    #[test]
    fn flapping_server_exhausts_attempts() {
        let config = ReconnectConfig {
            max_attempts: 4,
            ..ReconnectConfig::default()
        };
        let mut p = policy(config, 9);
        let mut now = Instant::now();
        let mut retries = 0;
        loop {
            p.handle_dial_started(now);
            p.handle_connected(now);
            now += Duration::from_secs(1); // drops before `stable_after`
            match p.handle_disconnect(now, Disconnect::Abnormal) {
                Decision::DialAt { at, .. } => {
                    retries += 1;
                    now = at;
                }
                Decision::GiveUp(reason) => {
                    assert_eq!(reason, GiveUpReason::AttemptsExhausted);
                    break;
                }
            }
        }
        assert_eq!(retries, 4);
    }

    #[test]
    fn duplicate_disconnect_while_waiting_returns_pending_decision() {
        let mut p = policy(ReconnectConfig::default(), 11);
        let now = fail_dials(&mut p, Instant::now(), 3);
        p.handle_dial_started(now);
        p.handle_connected(now);
        let first = p.handle_disconnect(now + MS, Disconnect::Abnormal);
        let (at, attempt, _) = expect_dial(first);
        if at > now + MS {
            let again = p.handle_disconnect(
                now + MS,
                Disconnect::Closed {
                    code: None,
                    initiated_locally: false,
                },
            );
            assert_eq!(again, first);
        }
        assert_eq!(p.attempt(), attempt);
        assert_eq!(p.next_dial(), Some(at));
    }

    #[test]
    fn duplicate_report_draws_no_randomness() {
        let config = ReconnectConfig {
            initial_delay: Duration::from_secs(10),
            max_delay: Duration::from_secs(10),
            ..ReconnectConfig::default()
        };
        let start = Instant::now();
        let mut a = policy(config.clone(), 21);
        let mut b = policy(config, 21);
        let (at_a, _, _) = expect_dial(a.handle_disconnect(start, Disconnect::Abnormal));
        let (at_b, _, _) = expect_dial(b.handle_disconnect(start, Disconnect::Abnormal));
        assert_eq!(at_a, at_b);
        // `a` gets a duplicate report strictly before its pending instant (if there is room).
        if at_a > start {
            let dup = a.handle_disconnect(start, Disconnect::Abnormal);
            assert_eq!(expect_dial(dup).0, at_a);
        }
        a.handle_dial_started(at_a);
        b.handle_dial_started(at_b);
        assert_eq!(
            a.handle_disconnect(at_a, Disconnect::DialFailed),
            b.handle_disconnect(at_b, Disconnect::DialFailed)
        );
    }

    #[test]
    fn report_at_scheduled_time_without_dial_started_counts_as_failed_dial() {
        let mut p = policy(ReconnectConfig::default(), 2);
        let now = Instant::now();
        let (at, attempt, _) = expect_dial(p.handle_disconnect(now, Disconnect::DialFailed));
        assert_eq!(attempt, 1);
        let (at2, attempt, _) = expect_dial(p.handle_disconnect(at, Disconnect::DialFailed));
        assert_eq!(attempt, 2);
        assert!(at2 >= at);
    }

    #[test]
    fn dial_started_clears_pending_dial() {
        let mut p = policy(ReconnectConfig::default(), 2);
        let now = Instant::now();
        assert_eq!(p.next_dial(), None, "the initial dial is never delayed");
        let (at, _, _) = expect_dial(p.handle_disconnect(now, Disconnect::DialFailed));
        assert_eq!(p.next_dial(), Some(at));
        p.handle_dial_started(at);
        assert_eq!(p.next_dial(), None);
        p.handle_connected(at);
        assert_eq!(p.next_dial(), None);
        p.handle_dial_started(at); // ignored while connected
        assert!(p.is_connected());
    }

    #[test]
    fn early_connect_while_waiting_is_accepted() {
        let mut p = policy(ReconnectConfig::default(), 2);
        let now = Instant::now();
        expect_dial(p.handle_disconnect(now, Disconnect::DialFailed));
        p.handle_connected(now); // the user pressed "reconnect now"
        assert!(p.is_connected());
        assert_eq!(p.next_dial(), None);
    }

    #[test]
    fn connected_twice_keeps_first_connection_time() {
        let config = ReconnectConfig::default();
        let mut p = policy(config.clone(), 4);
        let now = fail_dials(&mut p, Instant::now(), 2);
        p.handle_connected(now);
        p.handle_connected(now + Duration::from_secs(9));
        // Up for stable_after since the first report: stable.
        let (_, attempt, _) =
            expect_dial(p.handle_disconnect(now + config.stable_after, Disconnect::Abnormal));
        assert_eq!(attempt, 1);
    }

    #[test]
    fn time_going_backwards_does_not_panic_nor_schedule_in_the_past() {
        let mut p = policy(ReconnectConfig::default(), 4);
        let now = Instant::now() + Duration::from_secs(100);
        p.handle_connected(now);
        let earlier = now - Duration::from_secs(50);
        let (at, attempt, _) = expect_dial(p.handle_disconnect(earlier, Disconnect::Abnormal));
        assert_eq!(
            attempt, 1,
            "attempt 0 +1; the connection counts as unstable"
        );
        assert!(at >= earlier);
    }

    #[test]
    fn zero_delays_dial_immediately() {
        let config = ReconnectConfig {
            initial_delay: Duration::ZERO,
            max_delay: Duration::ZERO,
            ..ReconnectConfig::default()
        };
        let mut p = policy(config, 0);
        let now = Instant::now();
        let (at, _, delay) = expect_dial(p.handle_disconnect(now, Disconnect::Abnormal));
        assert_eq!((at, delay), (now, Duration::ZERO));
    }

    #[test]
    fn huge_max_delay_does_not_overflow_instant() {
        let config = ReconnectConfig {
            initial_delay: Duration::MAX,
            max_delay: Duration::MAX,
            ..ReconnectConfig::default()
        };
        for seed in 0..50 {
            let mut p = policy(config.clone(), seed);
            let now = Instant::now();
            let (at, _, delay) = expect_dial(p.handle_disconnect(now, Disconnect::Abnormal));
            assert!(at >= now);
            assert_eq!(at, now + delay);
        }
    }

    #[test]
    fn uniform_inclusive_covers_small_ranges_evenly() {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let mut counts = [0u32; 3];
        for _ in 0..30_000 {
            counts[uniform_inclusive(&mut rng, 2) as usize] += 1;
        }
        for c in counts {
            assert!((9_000..11_000).contains(&c), "{counts:?}");
        }
        assert_eq!(uniform_inclusive(&mut rng, 0), 0);
        let _ = uniform_inclusive(&mut rng, u64::MAX);
    }

    #[derive(Clone, Debug)]
    enum Op {
        Advance(u64),
        DialStarted,
        Connected,
        Disconnect(Disconnect),
        Stop,
        Reset,
    }

    fn disconnect_strategy() -> impl Strategy<Value = Disconnect> {
        prop_oneof![
            Just(Disconnect::DialFailed),
            Just(Disconnect::HandshakeFailed),
            Just(Disconnect::Abnormal),
            Just(Disconnect::ClosedByApplication),
            prop::sample::select(vec![200u16, 401, 403, 404, 500, 503])
                .prop_map(|status| Disconnect::HandshakeRejected { status }),
            (
                prop::option::of(prop::sample::select(vec![1000u16, 1001, 1008, 1011, 4000])),
                any::<bool>()
            )
                .prop_map(|(code, initiated_locally)| Disconnect::Closed {
                    code: code.map(CloseCode),
                    initiated_locally
                }),
        ]
    }

    fn op_strategy() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (0u64..60_000).prop_map(Op::Advance),
            2 => Just(Op::DialStarted),
            2 => Just(Op::Connected),
            4 => disconnect_strategy().prop_map(Op::Disconnect),
            1 => Just(Op::Stop),
            1 => Just(Op::Reset),
        ]
    }

    proptest! {
        /// Model check: any sequence of inputs keeps the invariants and never panics.
        #[test]
        fn any_input_sequence_keeps_invariants(
            seed: u64,
            max_attempts in 0u32..6,
            ops in prop::collection::vec(op_strategy(), 0..200),
        ) {
            let config = ReconnectConfig { max_attempts, ..ReconnectConfig::default() };
            let mut p = policy(config.clone(), seed);
            let mut now = Instant::now();
            for op in ops {
                match op {
                    Op::Advance(ms) => now += Duration::from_millis(ms),
                    Op::DialStarted => p.handle_dial_started(now),
                    Op::Connected => p.handle_connected(now),
                    Op::Stop => p.stop(),
                    Op::Reset => p.reset(),
                    Op::Disconnect(why) => {
                        let was_given_up = p.give_up_reason();
                        match p.handle_disconnect(now, why) {
                            Decision::DialAt { at, attempt, delay } => {
                                prop_assert!(was_given_up.is_none());
                                prop_assert!(!config.is_terminal(&why));
                                prop_assert!(at >= now, "decision in the past");
                                prop_assert!(delay <= config.backoff_cap(attempt));
                                prop_assert!(attempt >= 1);
                                prop_assert!(max_attempts == 0 || attempt <= max_attempts);
                                prop_assert_eq!(p.next_dial(), Some(at));
                                prop_assert_eq!(p.attempt(), attempt);
                            }
                            Decision::GiveUp(reason) => {
                                prop_assert!(p.is_given_up());
                                prop_assert_eq!(p.give_up_reason(), Some(reason));
                                prop_assert_eq!(p.next_dial(), None);
                                if let Some(previous) = was_given_up {
                                    prop_assert_eq!(reason, previous);
                                }
                            }
                        }
                    }
                }
                prop_assert!(!(p.is_given_up() && p.is_connected()));
                prop_assert!(!(p.is_given_up() && p.next_dial().is_some()));
            }
        }
    }
}
