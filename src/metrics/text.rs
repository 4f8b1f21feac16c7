//! The Prometheus text exposition format, version 0.0.4: for each metric a `# HELP` line, a
//! `# TYPE` line, then its samples, `name{label="value"} number`, one per line.
//!
//! Names follow Prometheus' conventions: a `wschat_` prefix, base units (bytes, seconds),
//! `_total` on counters and only on counters. Every value of a label is shown from the start,
//! at zero, so a query over a rate sees the first event too.

use super::{get, Gauges, HandshakeFailure, Metrics, Refusal, CLOSE_CODES};
use std::fmt::Write;
use std::time::UNIX_EPOCH;

/// The `Content-Type` of the exposition.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Appends metric families to a string.
struct Exposition(String);

impl Exposition {
    /// Starts a family: its help and its type (`counter` or `gauge`).
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {}", escape(help, false));
        let _ = writeln!(self.0, "# TYPE {name} {kind}");
    }

    /// One sample, with at most one label.
    fn sample(&mut self, name: &str, label: Option<(&str, &str)>, value: impl std::fmt::Display) {
        let _ = match label {
            Some((label, v)) => {
                writeln!(self.0, "{name}{{{label}=\"{}\"}} {value}", escape(v, true))
            }
            None => writeln!(self.0, "{name} {value}"),
        };
    }

    /// A family with one unlabelled sample.
    fn single(&mut self, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
        self.family(name, kind, help);
        self.sample(name, None, value);
    }
}

/// Escapes a help text (backslash, newline) or a label value (also the double quote).
fn escape(text: &str, quote: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if quote => out.push_str("\\\""),
            c => out.push(c),
        }
    }
    out
}

impl Metrics {
    /// Everything, in the text format, with `gauges` read from the server just now.
    pub fn render(&self, gauges: &Gauges) -> String {
        let mut out = Exposition(String::with_capacity(4096));
        let e = &mut out;
        e.family(
            "wschat_build_info",
            "gauge",
            "Always 1; the version label is wschat's.",
        );
        e.sample(
            "wschat_build_info",
            Some(("version", env!("CARGO_PKG_VERSION"))),
            1,
        );
        let started = self
            .started
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        e.single(
            "wschat_start_time_seconds",
            "gauge",
            "When this server started, in seconds since the Unix epoch.",
            format_args!("{started:.3}"),
        );
        e.single(
            "wschat_connections",
            "gauge",
            "Open TCP connections (HTTP and WebSocket).",
            gauges.connections,
        );
        e.single(
            "wschat_websockets",
            "gauge",
            "Open WebSocket sessions (chat and echo).",
            gauges.websockets,
        );
        e.single(
            "wschat_connections_total",
            "counter",
            "TCP connections accepted, refused ones included.",
            get(&self.connections),
        );
        e.family(
            "wschat_refused_connections_total",
            "counter",
            "Connections (or proxied clients' requests) refused at a limit, by reason.",
        );
        for refusal in Refusal::ALL {
            let value = get(&self.refused[refusal as usize]);
            e.sample(
                "wschat_refused_connections_total",
                Some(("reason", refusal.label())),
                value,
            );
        }
        e.family(
            "wschat_handshake_failures_total",
            "counter",
            "Upgrades refused, and requests whose head could not be read, by reason.",
        );
        for failure in HandshakeFailure::ALL {
            let value = get(&self.handshake_failures[failure.index()]);
            e.sample(
                "wschat_handshake_failures_total",
                Some(("reason", failure.label())),
                value,
            );
        }
        e.family(
            "wschat_disconnects_total",
            "counter",
            "WebSocket sessions ended, by the close code logged for them (1006: dropped without a close).",
        );
        for (i, code) in CLOSE_CODES.iter().enumerate() {
            let value = get(&self.disconnects[i]);
            e.sample(
                "wschat_disconnects_total",
                Some(("code", &code.to_string())),
                value,
            );
        }
        let other = get(&self.disconnects[CLOSE_CODES.len()]);
        if other > 0 {
            e.sample("wschat_disconnects_total", Some(("code", "other")), other);
        }
        let (received, sent) = (&self.received.0, &self.sent.0);
        e.single(
            "wschat_messages_received_total",
            "counter",
            "WebSocket data messages read (chat, names included, and echo).",
            get(&received.messages),
        );
        e.single(
            "wschat_messages_sent_total",
            "counter",
            "WebSocket data frames written (chat messages, notices, echoes).",
            get(&sent.messages),
        );
        e.single(
            "wschat_received_bytes_total",
            "counter",
            "Bytes read from WebSockets after the upgrade, frame headers included.",
            get(&received.bytes),
        );
        e.single(
            "wschat_sent_bytes_total",
            "counter",
            "Bytes written to WebSockets after the upgrade, frame headers included.",
            get(&sent.bytes),
        );
        e.single(
            "wschat_queue_overflows_total",
            "counter",
            "Connections closed with 1008 because their outgoing queue was full.",
            get(&self.queue_overflows),
        );
        e.single(
            "wschat_rate_limited_total",
            "counter",
            "Chat members closed with 1008 for sending faster than --rate-limit.",
            get(&self.rate_limited),
        );
        e.single("wschat_rooms", "gauge", "Chat rooms.", gauges.rooms);
        e.single(
            "wschat_members",
            "gauge",
            "Members in all chat rooms.",
            gauges.members,
        );
        e.single(
            "wschat_history_failing_rooms",
            "gauge",
            "Chat rooms whose history cannot be written now; their messages are refused.",
            gauges.failing_rooms,
        );
        if let Some(cluster) = gauges.cluster {
            e.single(
                "wschat_redis_up",
                "gauge",
                "1 while Redis can be reached (--redis), else 0: rooms are degraded.",
                u8::from(cluster.up),
            );
            e.single(
                "wschat_redis_reconnects_total",
                "counter",
                "Times this node connected to Redis again after losing it.",
                cluster.reconnects,
            );
            e.single(
                "wschat_redis_reader_lag_seconds",
                "gauge",
                "How long after Redis took it the newest entry read was applied here.",
                format_args!(
                    "{}.{:03}",
                    cluster.reader_lag_ms / 1000,
                    cluster.reader_lag_ms % 1000
                ),
            );
        }
        e.single(
            "wschat_writer_threads",
            "gauge",
            "Threads of the pool that writes to slow or busy sockets.",
            gauges.writer_threads,
        );
        out.0
    }
}
