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
    /// wschat's value is true in every run.
    Always,
    /// wschat's value is 0 in every run.
    NoneInAnyRun,
    /// wschat's value equals the run's `members` in every run.
    EveryMember,
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
    Row {
        scenario: "bcast-fsync",
        key: "deliveries_per_s",
        label: "broadcast, wschat --fsync: deliveries/s",
        goal: Goal::Info,
    },
    Row { scenario: "bcast-fsync", key: "msgs_per_s", label: "broadcast, wschat --fsync: messages/s", goal: Goal::Info },
    Row { scenario: "bcast-fsync", key: "p99_us", label: "broadcast, wschat --fsync: p99 (µs)", goal: Goal::Info },
    Row { scenario: "stalled", key: "all_delivered", label: "stalled member: every live delivery made", goal: Goal::Info },
    Row { scenario: "stalled", key: "deliveries_per_s", label: "stalled member: deliveries/s", goal: Goal::RatioMin(2.0) },
    Row { scenario: "stalled", key: "rss_peak_mib", label: "stalled member: server peak RSS (MiB)", goal: Goal::Info },
    Row { scenario: "stalled", key: "rss_growth_mib", label: "stalled member: peak RSS growth (MiB)", goal: Goal::Info },
    Row { scenario: "stalled", key: "stalled_outcome", label: "stalled member: what it got", goal: Goal::Info },
    Row { scenario: "burst", key: "all_delivered", label: "burst: every delivery made", goal: Goal::Info },
    Row { scenario: "burst", key: "one_order", label: "burst: one global order", goal: Goal::Always },
    Row {
        scenario: "burst",
        key: "members_closed",
        label: "burst: members closed by the server",
        goal: Goal::NoneInAnyRun,
    },
    Row { scenario: "burst", key: "closes", label: "burst: how they were closed", goal: Goal::Info },
    Row { scenario: "burst", key: "drain_ms", label: "burst: first send to last delivery (ms)", goal: Goal::Info },
    Row { scenario: "burst", key: "rss_peak_mib", label: "burst: server peak RSS (MiB)", goal: Goal::Info },
    Row { scenario: "storm", key: "in_room", label: "storm: members in the room at the end", goal: Goal::EveryMember },
    Row { scenario: "storm", key: "closes", label: "storm: closed by the server", goal: Goal::Info },
    Row {
        scenario: "storm",
        key: "all_welcomed_ms",
        label: "storm: until every member had its welcome (ms)",
        goal: Goal::Info,
    },
    Row {
        scenario: "storm",
        key: "rosters_ok",
        label: "storm: members whose view of the room is exact",
        goal: Goal::Info,
    },
    Row { scenario: "storm", key: "notices", label: "storm: notices received (medians)", goal: Goal::Info },
    Row { scenario: "storm", key: "server_cpu_s", label: "storm: server CPU (s)", goal: Goal::Info },
    Row { scenario: "storm", key: "rss_peak_mib", label: "storm: server peak RSS (MiB)", goal: Goal::Info },
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

/// In these scenarios a server that closed members did less work than one that kept them, so
/// its times, CPU and memory are only compared with the other server's when both finished the
/// scenario in every run.
fn finished(groups: &Groups, scenario: &str, server: &str) -> bool {
    let Some(runs) = groups.get(&(scenario.to_string(), server.to_string())) else {
        return false;
    };
    runs.iter().all(|r| match scenario {
        "burst" => r.get("all_delivered") == Some(&Value::Bool(true)),
        "storm" => r.get("in_room").is_some_and(|v| Some(v) == r.get("members")),
        _ => true,
    })
}

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

/// A median of counts (integers in every run) as a whole number with thousands separators.
fn count(runs: &[Value], key: &str) -> Option<String> {
    let all_counts = runs.iter().filter_map(|r| r.get(key)).all(|v| v.is_u64());
    let v = num(runs, key)?;
    (all_counts && v.fract() == 0.0).then(|| fmt_count(v))
}

/// A whole number with thousands separators.
fn fmt_count(v: f64) -> String {
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
}

pub fn fmt_num(v: f64) -> String {
    let a = v.abs();
    if a >= 10_000.0 {
        fmt_count(v)
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
    if key == "notices" {
        let m = |k: &str| count(runs, k).or_else(|| num(runs, k).map(fmt_num)).unwrap_or_default();
        let text = format!(
            "join {}, leave {}, presence {}, members {}",
            m("join_notices"),
            m("leave_notices"),
            m("presence_events"),
            m("members_events")
        );
        return (text, None);
    }
    if runs.iter().any(|r| r.get(key).is_some_and(Value::is_boolean)) {
        let yes = runs.iter().filter(|r| r.get(key) == Some(&Value::Bool(true))).count();
        return (format!("{yes}/{} runs", runs.len()), Some(yes as f64 / runs.len() as f64));
    }
    if let Some(v) = num(runs, key) {
        // A run without a value (null: it never happened) is said so next to the median.
        let never = runs.iter().filter(|r| r.get(key).is_some_and(Value::is_null)).count();
        let of = if key == "in_room" { count(runs, "members").map(|m| format!(" of {m}")) } else { None };
        let mut text = format!("{}{}", count(runs, key).unwrap_or_else(|| fmt_num(v)), of.unwrap_or_default());
        if never > 0 {
            text = format!("{text} (never in {never} of {} runs)", runs.len());
        }
        return (text, Some(v));
    }
    if runs.iter().any(|r| r.get(key).is_some_and(Value::is_null)) {
        return ("never".to_string(), None);
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
        Goal::Always => "every run".into(),
        Goal::NoneInAnyRun => "none".into(),
        Goal::EveryMember => "all".into(),
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
    let mut any_incomparable = false;
    for row in ROWS {
        let (sc, sv) = cell(&groups, row.scenario, SUBJECT, row.key);
        let (pc, pv) = cell(&groups, row.scenario, PEER, row.key);
        let (nc, nv) = cell(&groups, row.scenario, NGINX, row.key);
        if sc.is_empty() && pc.is_empty() && nc.is_empty() {
            continue;
        }
        let wschat_runs = groups.get(&(row.scenario.to_string(), SUBJECT.to_string())).map(Vec::as_slice);
        let is_bool = wschat_runs.is_some_and(|r| r.iter().any(|v| v.get(row.key).is_some_and(Value::is_boolean)));
        let ratio = match (sv, pv) {
            (Some(a), Some(b)) if b != 0.0 && row.key != "all_delivered" && !is_bool => Some(a / b),
            _ => None,
        };
        // Goals on every run of wschat rather than on its median.
        let every_run = |pred: &dyn Fn(&Value) -> bool| -> String {
            match wschat_runs {
                Some(r) if !r.is_empty() => if r.iter().all(pred) { "pass" } else { "**miss**" }.to_string(),
                _ => "n/a".into(),
            }
        };
        let incomparable = matches!(row.scenario, "burst" | "storm")
            && !matches!(row.key, "in_room" | "rosters_ok")
            && ratio.is_some()
            && !(finished(&groups, row.scenario, SUBJECT) && finished(&groups, row.scenario, PEER));
        let ratio = if incomparable { None } else { ratio };
        any_incomparable |= incomparable;
        let ratio_s = match ratio {
            _ if incomparable => "²".to_string(),
            Some(r) => format!("{r:.2}×"),
            None => String::new(),
        };
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
            Goal::Always => every_run(&|r| r.get(row.key) == Some(&Value::Bool(true))),
            Goal::NoneInAnyRun => every_run(&|r| r.get(row.key).and_then(Value::as_f64) == Some(0.0)),
            Goal::EveryMember => every_run(&|r| {
                let v = r.get(row.key).and_then(Value::as_f64);
                v.is_some() && v == r.get("members").and_then(Value::as_f64)
            }),
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
        let rate_goal = matches!(row.goal, Goal::RatioMin(_) | Goal::RatioMax(_) | Goal::RatioMinOrNginx(..));
        let result = if bound && rate_goal {
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
    let cpu_rows = ["echo", "bcast-latency", "bcast-throughput", "stalled", "burst", "storm", "static-10k", "static-1m"];
    for sc in cpu_rows {
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
    if any_incomparable {
        let _ = writeln!(
            out,
            "\n² No ratio: a server closed members or left deliveries undone in some run, so the two did \
             different work."
        );
    }
    if !failures.is_empty() {
        let _ = writeln!(out, "\nRuns that were not clean ({}):\n", failures.len());
        for f in &failures {
            let g = |k: &str| f.get(k).map(|v| v.to_string()).unwrap_or_default();
            let mut detail = Vec::new();
            for k in [
                "error", "errors", "missing", "mismatches", "self_deliveries", "duplicates", "unknown_seq", "bad_from",
                "bad_len", "malformed", "alive", "non_2xx", "socket_errors", "members_closed", "closes", "one_order",
                "out_of_sender_order", "failed_upgrades", "in_room", "rosters_ok", "out_of_place",
            ] {
                if let Some(v) = f.get(k) {
                    let zero = v.as_f64() == Some(0.0)
                        || v.is_null()
                        || v == &Value::Bool(true)
                        || v.as_str() == Some("none")
                        || v.as_array().is_some_and(|a| a.is_empty());
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

#[cfg(test)]
mod tests {
    use super::*;

    fn report_of(lines: &[Value]) -> String {
        let name = format!("loadgen-report-test-{}-{:?}.jsonl", std::process::id(), std::thread::current().id());
        let path = std::env::temp_dir().join(name);
        let text: Vec<String> = lines.iter().map(Value::to_string).collect();
        std::fs::write(&path, text.join("\n")).unwrap();
        let out = report(path.to_str().unwrap());
        let _ = std::fs::remove_file(&path);
        out.unwrap()
    }

    fn row<'a>(out: &'a str, label: &str) -> &'a str {
        out.lines().find(|l| l.starts_with(&format!("| {label} |"))).unwrap_or_else(|| panic!("no row {label}:\n{out}"))
    }

    #[test]
    fn a_burst_that_closed_members_misses_and_is_not_compared() {
        let out = report_of(&[
            serde_json::json!({"scenario": "burst", "server": "wschat", "ok": false, "all_delivered": false,
                "expected_deliveries": 495000, "deliveries": 60000, "one_order": true, "members_closed": 87,
                "closes": "87 closed: 1008×87", "drain_ms": 280.0}),
            serde_json::json!({"scenario": "burst", "server": "ws", "ok": true, "all_delivered": true,
                "expected_deliveries": 495000, "deliveries": 495000, "one_order": true, "members_closed": 0,
                "closes": "none", "drain_ms": 5800.0}),
        ]);
        assert!(row(&out, "burst: every delivery made").ends_with("| **miss** |"));
        assert!(row(&out, "burst: members closed by the server").contains("| 87 | 0 |"));
        assert!(row(&out, "burst: one global order").ends_with("| pass |"));
        assert!(row(&out, "burst: first send to last delivery (ms)").contains("| ² |"));
        assert!(out.contains("\n² No ratio"));
    }

    #[test]
    fn a_storm_everyone_survived_is_compared() {
        let run = |server: &str, ms: f64| {
            serde_json::json!({"scenario": "storm", "server": server, "ok": true, "members": 5000, "in_room": 5000,
                "rosters_ok": 5000, "all_welcomed_ms": ms, "join_notices": 12_497_500u64, "leave_notices": 0,
                "presence_events": 0, "members_events": 0})
        };
        let out = report_of(&[run("wschat", 1000.0), run("ws", 4000.0)]);
        let in_room = row(&out, "storm: members in the room at the end");
        assert!(in_room.contains("| 5,000 of 5,000 | 5,000 of 5,000 | 1.00× | all | pass |"), "{in_room}");
        assert!(row(&out, "storm: until every member had its welcome (ms)").contains("| 0.25× |"));
        assert!(row(&out, "storm: notices received (medians)").contains("join 12,497,500, leave 0"));
        assert!(!out.contains("² No ratio"));
    }
}
