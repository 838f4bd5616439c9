//! Prometheus metrics through the `metrics` crate: what the gateway records, and the
//! recorder that `GET /metrics` renders.
//!
//! | metric | type | labels |
//! | --- | --- | --- |
//! | `tether_connections` | gauge | open WebSocket connections |
//! | `tether_upgrades_total` | counter | `result` = `accepted` or `refused`, `code` (why refused) |
//! | `tether_messages_received_total` | counter | messages received on WebSocket connections |
//! | `tether_messages_sent_total` | counter | messages sent on WebSocket connections |
//! | `tether_rate_limited_total` | counter | messages refused by the per-connection rate limit |
//!
//! [`recorder`] installs a Prometheus recorder as the process's global `metrics` recorder
//! the first time it is called. An application that embeds the gateway and installed its
//! own recorder first gets the gateway's metrics in its own exporter, and `/metrics` renders
//! nothing.

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

/// Open WebSocket connections (gauge).
pub const CONNECTIONS: &str = "tether_connections";
/// Upgrade requests by result and refusal code (counter).
pub const UPGRADES: &str = "tether_upgrades_total";
/// Messages received (counter).
pub const MESSAGES_RECEIVED: &str = "tether_messages_received_total";
/// Messages sent (counter).
pub const MESSAGES_SENT: &str = "tether_messages_sent_total";
/// Messages over the rate limit (counter).
pub const RATE_LIMITED: &str = "tether_rate_limited_total";

/// The Prometheus handle of the process, installing the recorder on first use.
pub fn recorder() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!(
                    "a metrics recorder was already installed: /metrics renders nothing, the \
                     gateway's metrics go to that recorder"
                );
            }
            describe();
            handle
        })
        .clone()
}

fn describe() {
    metrics::describe_gauge!(CONNECTIONS, "Open WebSocket connections.");
    metrics::describe_counter!(
        UPGRADES,
        "WebSocket upgrade requests, by result (accepted, refused) and refusal code."
    );
    metrics::describe_counter!(MESSAGES_RECEIVED, "Messages received from clients.");
    metrics::describe_counter!(MESSAGES_SENT, "Messages sent to clients.");
    metrics::describe_counter!(
        RATE_LIMITED,
        "Messages refused by the per-connection rate limit."
    );
}

/// Counts an upgrade refused with `code`.
pub fn upgrade_refused(code: &'static str) {
    metrics::counter!(UPGRADES, "result" => "refused", "code" => code).increment(1);
}

/// Counts an accepted upgrade.
pub fn upgrade_accepted() {
    metrics::counter!(UPGRADES, "result" => "accepted", "code" => "").increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_what_is_recorded() {
        let handle = recorder();
        upgrade_refused("telemetry_unit_test");
        metrics::counter!(MESSAGES_SENT).increment(3);
        let text = handle.render();
        assert!(
            text.contains(
                r#"tether_upgrades_total{result="refused",code="telemetry_unit_test"} 1"#
            ),
            "{text}"
        );
        assert!(text.contains("# HELP tether_upgrades_total"), "{text}");
        assert!(text.contains("tether_messages_sent_total"), "{text}");
    }
}
