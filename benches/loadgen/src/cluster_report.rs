//! `loadgen cluster-report FILE`: the table of `scripts/bench --cluster`, from its JSON lines:
//! wschat on one node, wschat on two nodes sharing the room through Redis, and socket.io on
//! two nodes with its Redis streams adapter; medians over the runs, and issue 16's targets.

use crate::report::fmt_num;
use serde_json::Value;

const KINDS: [(&str, &str); 3] = [
    ("wschat-1", "wschat, 1 node"),
    ("wschat-2", "wschat, 2 nodes + Redis"),
    ("socketio-2", "socket.io, 2 nodes + Redis"),
];

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let m = v.len() / 2;
    Some(if v.len() % 2 == 1 { v[m] } else { (v[m - 1] + v[m]) / 2.0 })
}

pub fn report(path: &str) -> Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    let lines: Vec<Value> = text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let get = |scenario: &str, kind: &str, key: &str| -> Option<f64> {
        median(
            lines
                .iter()
                .filter(|l| {
                    l.get("scenario").and_then(Value::as_str) == Some(scenario)
                        && l.get("server").and_then(Value::as_str) == Some(kind)
                        && l.get("ok") == Some(&Value::Bool(true))
                })
                .filter_map(|l| l.get(key).and_then(Value::as_f64))
                .collect(),
        )
    };
    let runs = |scenario: &str, kind: &str| -> (usize, usize) {
        let all: Vec<&Value> = lines
            .iter()
            .filter(|l| {
                l.get("scenario").and_then(Value::as_str) == Some(scenario)
                    && l.get("server").and_then(Value::as_str) == Some(kind)
            })
            .collect();
        let ok = all.iter().filter(|l| l.get("ok") == Some(&Value::Bool(true))).count();
        (ok, all.len())
    };
    let show = |v: Option<f64>| v.map(fmt_num).unwrap_or_else(|| "—".into());
    let mut out = String::new();
    out.push_str("| scenario: metric |");
    for (_, label) in KINDS {
        out.push_str(&format!(" {label} |"));
    }
    out.push_str(" target | result |\n|---|---:|---:|---:|---|---|\n");
    let rows: [(&str, &str, &str); 7] = [
        ("bcast-latency", "p50 (µs)", "p50_us"),
        ("bcast-latency", "p99 (µs)", "p99_us"),
        ("bcast-latency", "deliveries/s", "deliveries_per_s"),
        ("bcast-throughput", "deliveries/s", "deliveries_per_s"),
        ("bcast-throughput", "p50 (µs)", "p50_us"),
        ("bcast-throughput", "p99 (µs)", "p99_us"),
        ("bcast-throughput", "other processes (% of a core)", "other_cpu_pct"),
    ];
    for (scenario, metric, key) in rows {
        out.push_str(&format!("| {scenario}: {metric} |"));
        for (kind, _) in KINDS {
            out.push_str(&format!(" {} |", show(get(scenario, kind, key))));
        }
        let (target, result) = match (scenario, key) {
            ("bcast-latency", "p99_us") => {
                let ratio = get(scenario, "wschat-2", key).zip(get(scenario, "wschat-1", key)).map(|(c, s)| c / s);
                (
                    "2 nodes ≤ 2× 1 node".to_string(),
                    ratio.map_or("—".into(), |r| format!("{r:.2}× ({})", if r <= 2.0 { "pass" } else { "miss" })),
                )
            }
            ("bcast-throughput", "deliveries_per_s") => {
                let ratio =
                    get(scenario, "wschat-2", key).zip(get(scenario, "socketio-2", key)).map(|(w, s)| w / s);
                (
                    "≥ 2× socket.io".to_string(),
                    ratio.map_or("—".into(), |r| format!("{r:.2}× ({})", if r >= 2.0 { "pass" } else { "miss" })),
                )
            }
            _ => (String::new(), String::new()),
        };
        out.push_str(&format!(" {target} | {result} |\n"));
    }
    out.push_str("\nClean runs (every delivery made, none twice, none to its sender) of all runs:");
    for scenario in ["bcast-latency", "bcast-throughput"] {
        for (kind, label) in KINDS {
            let (ok, all) = runs(scenario, kind);
            out.push_str(&format!(" {scenario} {label} {ok}/{all};"));
        }
    }
    out.push('\n');
    for l in lines.iter().filter(|l| l.get("ok") != Some(&Value::Bool(true))) {
        out.push_str(&format!(
            "\n- not clean: {} {} run {}: {}",
            l.get("scenario").and_then(Value::as_str).unwrap_or("?"),
            l.get("server").and_then(Value::as_str).unwrap_or("?"),
            l.get("run").map(Value::to_string).unwrap_or_default(),
            l.get("error").or_else(|| l.get("errors")).map(Value::to_string).unwrap_or_default()
        ));
    }
    out.push('\n');
    Ok(out)
}
