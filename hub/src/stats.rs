//! Always-on counters and their snapshot.

use crate::payload::SendReport;
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

const STRIPES: usize = 8;

/// A counter split over cache lines, so that threads counting at once do not contend.
#[derive(Default)]
pub(crate) struct Counter([Padded; STRIPES]);

#[derive(Default)]
#[repr(align(128))]
struct Padded(AtomicU64);

thread_local! {
    static STRIPE: Cell<usize> = const { Cell::new(usize::MAX) };
}

fn stripe() -> usize {
    STRIPE.with(|s| {
        let mut i = s.get();
        if i == usize::MAX {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            i = NEXT.fetch_add(1, Relaxed) % STRIPES;
            s.set(i);
        }
        i
    })
}

impl Counter {
    pub(crate) fn add(&self, n: u64) {
        if n != 0 {
            self.0[stripe()].0.fetch_add(n, Relaxed);
        }
    }

    pub(crate) fn get(&self) -> u64 {
        self.0.iter().map(|p| p.0.load(Relaxed)).sum()
    }
}

/// A counter of [`Deliveries`]: striped ([`Counter`], 1 KiB, for the hub's totals, which
/// every thread's fan-outs add to) or one atomic (8 bytes, for a room's: a room's counters
/// are added to once per fan-out to it, not per recipient, and a room costs this much of
/// memory and of time to create for each of its creations).
pub(crate) trait Count: Default {
    fn add(&self, n: u64);
    fn get(&self) -> u64;
}

impl Count for Counter {
    fn add(&self, n: u64) {
        Counter::add(self, n);
    }

    fn get(&self) -> u64 {
        Counter::get(self)
    }
}

impl Count for AtomicU64 {
    fn add(&self, n: u64) {
        if n != 0 {
            self.fetch_add(n, Relaxed);
        }
    }

    fn get(&self) -> u64 {
        self.load(Relaxed)
    }
}

/// What a fan-out did, counted by reason: the part of the stats shared by the hub and its
/// rooms (whose counters are single atomics, see [`Count`]).
#[derive(Default)]
pub(crate) struct Deliveries<C: Count = Counter> {
    pub(crate) published: C,
    pub(crate) delivered: C,
    pub(crate) bytes_out: C,
    pub(crate) conflated: C,
    pub(crate) dropped_new: C,
    pub(crate) dropped_oldest: C,
    pub(crate) disconnected_slow: C,
    pub(crate) closed: C,
}

/// A room's counters: 64 bytes.
pub(crate) type RoomDeliveries = Deliveries<AtomicU64>;

impl<C: Count> Deliveries<C> {
    pub(crate) fn record(&self, report: &SendReport, frame_len: usize) {
        self.published.add(1);
        self.delivered.add(report.queued as u64);
        self.bytes_out.add((report.queued * frame_len) as u64);
        self.conflated.add(report.conflated as u64);
        self.dropped_new.add(report.dropped as u64);
        self.dropped_oldest.add(report.dropped_oldest as u64);
        self.disconnected_slow.add(report.disconnected as u64);
        self.closed.add(report.closed as u64);
    }

    pub(crate) fn snapshot(&self) -> DeliveryStats {
        DeliveryStats {
            published: self.published.get(),
            delivered: self.delivered.get(),
            bytes_out: self.bytes_out.get(),
            conflated: self.conflated.get(),
            dropped_new: self.dropped_new.get(),
            dropped_oldest: self.dropped_oldest.get(),
            disconnected_slow: self.disconnected_slow.get(),
            closed: self.closed.get(),
        }
    }
}

/// The hub's counters.
#[derive(Default)]
pub(crate) struct Stats {
    pub(crate) connections_total: Counter,
    pub(crate) refused: Counter,
    pub(crate) messages_in: Counter,
    pub(crate) bytes_in: Counter,
    pub(crate) closed_idle: Counter,
    pub(crate) ended_clean: Counter,
    pub(crate) ended_protocol_error: Counter,
    pub(crate) ended_timed_out: Counter,
    pub(crate) ended_abnormal: Counter,
    pub(crate) queue_high_water: AtomicUsize,
    pub(crate) deliveries: Deliveries,
}

impl Stats {
    /// Counts how a served connection ended.
    pub(crate) fn ended(&self, reason: &tether_driver::CloseReason) {
        use tether_driver::CloseReason;
        match reason {
            CloseReason::Clean { .. } => self.ended_clean.add(1),
            CloseReason::ProtocolError { .. } => self.ended_protocol_error.add(1),
            CloseReason::TimedOut(_) => self.ended_timed_out.add(1),
            _ => self.ended_abnormal.add(1),
        }
    }

    pub(crate) fn ended_snapshot(&self) -> EndedStats {
        EndedStats {
            clean: self.ended_clean.get(),
            protocol_error: self.ended_protocol_error.get(),
            timed_out: self.ended_timed_out.get(),
            abnormal: self.ended_abnormal.get(),
        }
    }

    pub(crate) fn queue_bytes(&self, bytes: usize) {
        if bytes > self.queue_high_water.load(Relaxed) {
            self.queue_high_water.fetch_max(bytes, Relaxed);
        }
    }
}

/// How served connections ended, by kind (the slow-consumer and idle closes the hub
/// started are counted in [`DeliveryStats::disconnected_slow`] and
/// [`StatsSnapshot::closed_idle`] too).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct EndedStats {
    /// The closing handshake completed.
    pub clean: u64,
    /// The peer broke the protocol.
    pub protocol_error: u64,
    /// A timer ran out (handshake, pong, idle, close).
    pub timed_out: u64,
    /// The transport was lost without a close frame.
    pub abnormal: u64,
}

/// Counts of deliveries, by outcome: for the hub as a whole, or for one room.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct DeliveryStats {
    /// Messages sent (one per send call, whatever the number of recipients).
    pub published: u64,
    /// Deliveries: messages taken by a recipient (written to its connection or queued).
    pub delivered: u64,
    /// Bytes of the encoded frames delivered (one frame per delivery).
    pub bytes_out: u64,
    /// Deliveries that replaced a queued message with the same key (conflation).
    pub conflated: u64,
    /// Messages not delivered because the recipient's queue was full (drop new).
    pub dropped_new: u64,
    /// Queued messages dropped to make room for newer ones (drop oldest, conflation).
    pub dropped_oldest: u64,
    /// Recipients disconnected because their queue was full.
    pub disconnected_slow: u64,
    /// Messages not delivered because the recipient was closing or closed.
    pub closed: u64,
}

/// A room's counters, in a [`StatsSnapshot`] or from
/// [`Hub::room_stats`](crate::Hub::room_stats).
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct RoomStats {
    /// The room's name.
    pub name: String,
    /// Its members now.
    pub members: usize,
    /// What was published to it since it was created.
    pub deliveries: DeliveryStats,
}

/// The hub's counters at one moment, for a JSON endpoint or Prometheus metrics.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct StatsSnapshot {
    /// Connections registered now.
    pub connections: usize,
    /// Connections registered since the hub started.
    pub connections_total: u64,
    /// Connections refused (limits, shutdown, `on_connect`).
    pub connections_refused: u64,
    /// Distinct users with at least one connection now.
    pub users: usize,
    /// Rooms now.
    pub rooms: usize,
    /// Text and binary messages received from clients.
    pub messages_in: u64,
    /// Their bytes.
    pub bytes_in: u64,
    /// Connections closed for inactivity.
    pub closed_idle: u64,
    /// Served connections that ended, by how.
    pub ended: EndedStats,
    /// The most bytes one connection's hub queue has held.
    pub queue_high_water: usize,
    /// Deliveries of every send, by outcome.
    pub deliveries: DeliveryStats,
}

impl StatsSnapshot {
    /// The snapshot in the Prometheus text exposition format, each metric's name
    /// starting with `prefix` (`tether_hub` for example).
    pub fn to_prometheus(&self, prefix: &str) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, samples: &[(&str, u64)]| {
            let _ = writeln!(out, "# HELP {prefix}_{name} {help}");
            let _ = writeln!(out, "# TYPE {prefix}_{name} {kind}");
            for (labels, value) in samples {
                let _ = writeln!(out, "{prefix}_{name}{labels} {value}");
            }
        };
        let d = &self.deliveries;
        let e = &self.ended;
        metric(
            "connections",
            "gauge",
            "Connections registered now.",
            &[("", self.connections as u64)],
        );
        metric(
            "connections_total",
            "counter",
            "Connections registered.",
            &[("", self.connections_total)],
        );
        metric(
            "connections_refused_total",
            "counter",
            "Connections refused.",
            &[("", self.connections_refused)],
        );
        metric(
            "users",
            "gauge",
            "Users with a connection now.",
            &[("", self.users as u64)],
        );
        metric("rooms", "gauge", "Rooms now.", &[("", self.rooms as u64)]);
        metric(
            "messages_in_total",
            "counter",
            "Messages received from clients.",
            &[("", self.messages_in)],
        );
        metric(
            "bytes_in_total",
            "counter",
            "Bytes received from clients.",
            &[("", self.bytes_in)],
        );
        metric(
            "published_total",
            "counter",
            "Messages sent (one per send).",
            &[("", d.published)],
        );
        metric(
            "deliveries_total",
            "counter",
            "Messages taken by recipients.",
            &[("", d.delivered)],
        );
        metric(
            "bytes_out_total",
            "counter",
            "Encoded bytes delivered.",
            &[("", d.bytes_out)],
        );
        metric(
            "undelivered_total",
            "counter",
            "Messages not delivered or replaced, by reason.",
            &[
                ("{reason=\"conflated\"}", d.conflated),
                ("{reason=\"dropped_new\"}", d.dropped_new),
                ("{reason=\"dropped_oldest\"}", d.dropped_oldest),
                ("{reason=\"recipient_closed\"}", d.closed),
            ],
        );
        metric(
            "disconnects_total",
            "counter",
            "Connections ended, by reason.",
            &[
                ("{reason=\"slow_consumer\"}", d.disconnected_slow),
                ("{reason=\"idle\"}", self.closed_idle),
                ("{reason=\"clean\"}", e.clean),
                ("{reason=\"protocol_error\"}", e.protocol_error),
                ("{reason=\"timed_out\"}", e.timed_out),
                ("{reason=\"abnormal\"}", e.abnormal),
            ],
        );
        metric(
            "queue_high_water_bytes",
            "gauge",
            "The most bytes one connection's hub queue has held.",
            &[("", self.queue_high_water as u64)],
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_add_up_across_threads() {
        let c = std::sync::Arc::new(Counter::default());
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let c = c.clone();
                std::thread::spawn(move || (0..1000).for_each(|_| c.add(1)))
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        assert_eq!(c.get(), 4000);
    }

    #[test]
    fn prometheus_text_has_every_metric_once_with_its_type() {
        let mut s = StatsSnapshot {
            connections: 3,
            ..Default::default()
        };
        s.deliveries.dropped_new = 7;
        let text = s.to_prometheus("tether_hub");
        assert!(text.contains("# TYPE tether_hub_connections gauge\ntether_hub_connections 3\n"));
        assert!(text.contains("tether_hub_undelivered_total{reason=\"dropped_new\"} 7\n"));
        assert_eq!(text.matches("# TYPE").count(), 13);
    }
}
