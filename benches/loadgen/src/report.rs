//! `loadgen report RESULTS.jsonl`: medians per scenario and server, ratios wschat/ws,
//! the project's targets with pass/miss, as markdown.

use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write;

const SUBJECT: &str = "wschat";
const PEER: &str = "ws";
const NGINX: &str = "nginx";
/// Load generator CPU (% of its core) from which a result is marked as limited by it.
const CLIENT_BOUND: f64 = 90.0;

#[derive(Clone, Copy)]
enum Goal {
    Info,
    /// wschat/ws must be at least this.
    RatioMin(f64),
    /// wschat/ws must be at most this.
    RatioMax(f64),
    /// wschat's own value must be at most this.
    AbsMax(f64),
    /// wschat/ws at least the first, or wschat/nginx at least the second.
    RatioMinOrNginx(f64, f64),
}

struct Row {
    scenario: &'static str,
    key: &'static str,
    label: &'static str,
    goal: Goal,
}

const ROWS: &[Row] = &[
    Row { scenario: "echo", key: "msgs_per_s", label: "echo: messages/s", goal: Goal::RatioMin(1.3) },
    Row { scenario: "echo", key: "rtt_p50_us", label: "echo: round trip p50 (µs)", goal: Goal::Info },
    Row { scenario: "echo", key: "rtt_p99_us", label: "echo: round trip p99 (µs)", goal: Goal::Info },
    Row { scenario: "bcast-latency", key: "p50_us", label: "broadcast latency: p50 (µs)", goal: Goal::Info },
    Row { scenario: "bcast-latency", key: "p99_us", label: "broadcast latency: p99 (µs)", goal: Goal::RatioMax(0.5) },
    Row {
        scenario: "bcast-throughput",
        key: "deliveries_per_s",
        label: "broadcast throughput: deliveries/s",
        goal: Goal::RatioMin(2.0),
    },
    Row { scenario: "bcast-throughput", key: "p99_us", label: "broadcast throughput: p99 (µs)", goal: Goal::Info },
    Row { scenario: "stalled", key: "all_delivered", label: "stalled member: every live delivery made", goal: Goal::Info },
    Row { scenario: "stalled", key: "deliveries_per_s", label: "stalled member: deliveries/s", goal: Goal::RatioMin(2.0) },
    Row { scenario: "stalled", key: "rss_peak_mib", label: "stalled member: server peak RSS (MiB)", goal: Goal::Info },
    Row { scenario: "stalled", key: "rss_growth_mib", label: "stalled member: peak RSS growth (MiB)", goal: Goal::Info },
    Row { scenario: "stalled", key: "stalled_outcome", label: "stalled member: what it got", goal: Goal::Info },
    Row { scenario: "idle", key: "rss_per_conn_kib", label: "idle: RSS per connection (KiB)", goal: Goal::RatioMax(1.5) },
    Row { scenario: "idle", key: "idle_cpu_pct", label: "idle: server CPU over the idle window (%)", goal: Goal::AbsMax(1.0) },
    Row { scenario: "idle", key: "alive", label: "idle: connections alive at the end", goal: Goal::Info },
    Row {
        scenario: "static-10k",
        key: "req_per_s",
        label: "static 10 KiB: requests/s",
        goal: Goal::RatioMinOrNginx(3.0, 0.5),
    },
    Row { scenario: "static-10k", key: "mib_per_s", label: "static 10 KiB: MiB/s", goal: Goal::Info },
    Row { scenario: "static-1m", key: "req_per_s", label: "static 1 MiB: requests/s", goal: Goal::Info },
    Row { scenario: "static-1m", key: "mib_per_s", label: "static 1 MiB: MiB/s", goal: Goal::Info },
];

type Groups = BTreeMap<(String, String), Vec<Value>>;

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let m = v.len() / 2;
    Some(if v.len() % 2 == 1 { v[m] } else { (v[m - 1] + v[m]) / 2.0 })
}

fn num(runs: &[Value], key: &str) -> Option<f64> {
    median(runs.iter().filter_map(|r| r.get(key).and_then(Value::as_f64)).collect())
}

pub fn fmt_num(v: f64) -> String {
    let a = v.abs();
    if a >= 10_000.0 {
        let s = format!("{:.0}", v);
        let (sign, digits) = s.strip_prefix('-').map(|d| ("-", d)).unwrap_or(("", &s));
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        format!("{sign}{out}")
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// The cell for one server: a median, or for text/bool fields a summary over runs.
fn cell(groups: &Groups, scenario: &str, server: &str, key: &str) -> (String, Option<f64>) {
    let Some(runs) = groups.get(&(scenario.to_string(), server.to_string())) else {
        return (String::new(), None);
    };
    if key == "all_delivered" {
        let yes = runs.iter().filter(|r| r.get(key) == Some(&Value::Bool(true))).count();
        let exp = num(runs, "expected_deliveries").unwrap_or(0.0);
        let got = num(runs, "deliveries").unwrap_or(0.0);
        return (format!("{yes}/{} runs ({} of {})", runs.len(), fmt_num(got), fmt_num(exp)), Some(yes as f64 / runs.len() as f64));
    }
    if let Some(v) = num(runs, key) {
        return (fmt_num(v), Some(v));
    }
    let mut seen: Vec<String> = Vec::new();
    for r in runs {
        if let Some(s) = r.get(key).and_then(Value::as_str) {
            let mut s = s.to_string();
            if key == "stalled_outcome" {
                if let Some(n) = r.get("stalled_received").and_then(Value::as_u64) {
                    s = format!("{s} after {n} msgs");
                }
            }
            if !seen.contains(&s) {
                seen.push(s);
            }
        }
    }
    (seen.join("; "), None)
}

fn goal_text(g: Goal) -> String {
    match g {
        Goal::Info => String::new(),
        Goal::RatioMin(x) => format!("≥ {x}× ws"),
        Goal::RatioMax(x) => format!("≤ {x}× ws"),
        Goal::AbsMax(x) => format!("≤ {x} %"),
        Goal::RatioMinOrNginx(a, b) => format!("≥ {a}× node-static or ≥ {b}× nginx"),
    }
}

pub fn report(path: &str) -> Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    let mut groups: Groups = BTreeMap::new();
    let mut failures = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value = match serde_json::from_str(line) {
            Ok(v) => v,
            Err(_) => continue,
        };
        let scenario = v.get("scenario").and_then(Value::as_str).unwrap_or("?").to_string();
        let server = v.get("server").and_then(Value::as_str).unwrap_or("?").to_string();
        if v.get("ok") != Some(&Value::Bool(true)) {
            failures.push(v.clone());
        }
        if v.get("failed") == Some(&Value::Bool(true)) {
            continue; // the scenario did not produce measurements
        }
        groups.entry((scenario, server)).or_default().push(v);
    }
    let have_nginx = groups.keys().any(|(_, s)| s == NGINX);
    let mut out = String::new();
    let runs_note = {
        let mut counts: Vec<usize> = groups.values().map(Vec::len).collect();
        counts.sort_unstable();
        counts.dedup();
        counts.iter().map(|c| c.to_string()).collect::<Vec<_>>().join("/")
    };
    let _ = writeln!(out, "Medians of {runs_note} run(s) per scenario and server; ratio = wschat / ws.\n");
    let other: Vec<f64> =
        groups.values().flatten().filter_map(|r| r.get("other_cpu_pct").and_then(Value::as_f64)).collect();
    if let Some(max) = other.iter().cloned().reduce(f64::max) {
        let disturbed = other.iter().filter(|&&o| o > 20.0).count();
        let _ = writeln!(
            out,
            "Other processes during the measured windows: at most {max:.0} % of one core; {disturbed} of {} \
             measurements kept although above 20 % (idle is never retried: a neighbour hardly moves a server's own RSS and CPU).\n",
            other.len()
        );
    }
    let bg: Vec<f64> = groups.values().flatten().filter_map(|r| r.get("bg_busy_pct").and_then(Value::as_f64)).collect();
    if let Some(max) = bg.iter().cloned().reduce(f64::max) {
        let busy = bg.iter().filter(|&&b| b >= 15.0).count();
        let _ = writeln!(
            out,
            "Other load on the machine just before each measurement: at most {max:.0} % of all cores \
             ({busy} of {} measurements started on a busy machine).\n",
            bg.len()
        );
    }
    if have_nginx {
        let _ = writeln!(out, "| scenario: metric | wschat | ws (Node) | nginx | wschat/ws | target | result |");
        let _ = writeln!(out, "|---|---:|---:|---:|---:|---|---|");
    } else {
        let _ = writeln!(out, "| scenario: metric | wschat | ws (Node) | wschat/ws | target | result |");
        let _ = writeln!(out, "|---|---:|---:|---:|---|---|");
    }
    for row in ROWS {
        let (sc, sv) = cell(&groups, row.scenario, SUBJECT, row.key);
        let (pc, pv) = cell(&groups, row.scenario, PEER, row.key);
        let (nc, nv) = cell(&groups, row.scenario, NGINX, row.key);
        if sc.is_empty() && pc.is_empty() && nc.is_empty() {
            continue;
        }
        let ratio = match (sv, pv) {
            (Some(a), Some(b)) if b != 0.0 && row.key != "all_delivered" => Some(a / b),
            _ => None,
        };
        let ratio_s = ratio.map(|r| format!("{r:.2}×")).unwrap_or_default();
        let result = match row.goal {
            Goal::Info => {
                if row.key == "all_delivered" {
                    match sv {
                        Some(v) if v >= 1.0 => "pass".to_string(),
                        Some(_) => "**miss**".to_string(),
                        None => String::new(),
                    }
                } else {
                    String::new()
                }
            }
            Goal::RatioMin(x) => ratio.map(|r| if r >= x { "pass" } else { "**miss**" }.to_string()).unwrap_or("n/a".into()),
            Goal::RatioMax(x) => ratio.map(|r| if r <= x { "pass" } else { "**miss**" }.to_string()).unwrap_or("n/a".into()),
            Goal::AbsMax(x) => sv.map(|v| if v <= x { "pass" } else { "**miss**" }.to_string()).unwrap_or("n/a".into()),
            Goal::RatioMinOrNginx(a, b) => {
                let vs_node = ratio.map(|r| r >= a);
                let vs_nginx = match (sv, nv) {
                    (Some(s), Some(n)) if n > 0.0 => Some(s / n >= b),
                    _ => None,
                };
                let nginx_ratio = match (sv, nv) {
                    (Some(s), Some(n)) if n > 0.0 => format!(" ({:.2}× nginx)", s / n),
                    _ => String::new(),
                };
                match (vs_node, vs_nginx) {
                    (None, None) => "n/a".into(),
                    (a, b) if a == Some(true) || b == Some(true) => format!("pass{nginx_ratio}"),
                    _ => format!("**miss**{nginx_ratio}"),
                }
            }
        };
        // The generator's core saturated against wschat: its figure is a lower bound.
        let bound = groups
            .get(&(row.scenario.to_string(), SUBJECT.to_string()))
            .and_then(|r| num(r, "client_cpu_pct"))
            .is_some_and(|c| c >= CLIENT_BOUND);
        let result = if bound && !matches!(row.goal, Goal::Info) {
            format!("{result} (loadgen-bound¹)")
        } else {
            result
        };
        let goal = if row.key == "all_delivered" { "all made".to_string() } else { goal_text(row.goal) };
        if have_nginx {
            let _ = writeln!(out, "| {} | {sc} | {pc} | {nc} | {ratio_s} | {goal} | {result} |", row.label);
        } else {
            let _ = writeln!(out, "| {} | {sc} | {pc} | {ratio_s} | {goal} | {result} |", row.label);
        }
    }

    // Who was busy: if the load generator sits near 100 % the server was not the limit.
    let _ = writeln!(out, "\nCPU during the measured window (% of one core; server on core 0, load generator or wrk on core 1):\n");
    let _ = writeln!(out, "| scenario | wschat server | loadgen vs wschat | ws server | loadgen vs ws |");
    let _ = writeln!(out, "|---|---:|---:|---:|---:|");
    for sc in ["echo", "bcast-latency", "bcast-throughput", "stalled", "static-10k", "static-1m"] {
        let g = |srv: &str, k: &str| num(groups.get(&(sc.to_string(), srv.to_string())).map(Vec::as_slice).unwrap_or(&[]), k);
        let f = |v: Option<f64>| v.map(|v| format!("{v:.0}")).unwrap_or_default();
        let fc = |v: Option<f64>| match v {
            Some(c) if c >= CLIENT_BOUND => format!("**{c:.0}**¹"),
            other => f(other),
        };
        if g(SUBJECT, "server_cpu_pct").is_none() && g(PEER, "server_cpu_pct").is_none() {
            continue;
        }
        let _ = writeln!(
            out,
            "| {sc} | {} | {} | {} | {} |",
            f(g(SUBJECT, "server_cpu_pct")),
            fc(g(SUBJECT, "client_cpu_pct")),
            f(g(PEER, "server_cpu_pct")),
            fc(g(PEER, "client_cpu_pct")),
        );
    }

    let _ = writeln!(
        out,
        "\n¹ The load generator's core was {CLIENT_BOUND:.0} % busy or more: the rate measured is a lower bound \
         for that server. On loopback the sender's core also pays for the receiver's TCP processing and for \
         waking the receiving thread, so a server with one blocked thread per connection makes its clients' \
         sends dearer."
    );
    if !failures.is_empty() {
        let _ = writeln!(out, "\nRuns that were not clean ({}):\n", failures.len());
        for f in &failures {
            let g = |k: &str| f.get(k).map(|v| v.to_string()).unwrap_or_default();
            let mut detail = Vec::new();
            for k in [
                "error", "errors", "missing", "mismatches", "self_deliveries", "duplicates", "unknown_seq", "bad_from",
                "bad_len", "malformed", "alive", "non_2xx", "socket_errors",
            ] {
                if let Some(v) = f.get(k) {
                    let zero = v.as_f64() == Some(0.0) || v.is_null() || v.as_array().is_some_and(|a| a.is_empty());
                    if !zero {
                        detail.push(format!("{k}={v}"));
                    }
                }
            }
            let _ = writeln!(out, "- {} {} run {}: {}", g("server"), g("scenario"), g("run"), detail.join(", "));
        }
    }
    Ok(out)
}
