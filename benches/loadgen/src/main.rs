//! Load generator for wschat's benchmark (scripts/bench). Every scenario is a subcommand
//! that takes the server URL (loopback only) and prints ONE JSON line on stdout.
//!
//!   loadgen echo             --url ws://127.0.0.1:P/echo [--conns 50 --msgs 2000 --size 64 --warmup 100]
//!   loadgen bcast-latency    --url ws://127.0.0.1:P/chat [--members 100 --msgs 1000 --size 64 --warmup 200]
//!   loadgen bcast-throughput --url ws://127.0.0.1:P/chat [--members 100 --window 64 --msgs 10000]
//!   loadgen stalled          --url ws://127.0.0.1:P/chat --server-pid PID [--members 10 --msgs 5000 --size 4096 --window 64]
//!   loadgen burst            --url ws://127.0.0.1:P/chat --server-pid PID [--members 100 --msgs 50 --size 64]
//!   loadgen storm            --url ws://127.0.0.1:P/chat --server-pid PID [--members 5000 --wave 100]
//!   loadgen idle             --url ws://127.0.0.1:P/echo --server-pid PID [--conns 5000 --idle-secs 10]
//!   loadgen static           --url http://127.0.0.1:P/f10k.bin --size 10240 --label 10k [--duration 5 --conns 50 --wrk wrk]
//!   loadgen free-port        prints a currently free loopback port
//!   loadgen report FILE      markdown table from the JSON lines in FILE
//!   loadgen cluster-report FILE  the table of scripts/bench --cluster
//!
//! bcast-latency and bcast-throughput take several comma-separated URLs (members spread over
//! them: one room on several nodes), `--engineio` for socket.io peers, and several
//! comma-separated --server-pid values (their CPU added up).
//!
//! Common: --server-pid PID (server CPU/RSS from /proc), --timeout SECS, --tag KEY=VALUE
//! (copied into the JSON line). Exit status 0 when the line says "ok": true, 1 otherwise.

mod burst;
mod cluster_report;
mod net;
mod report;
mod scenarios;
mod storm;
mod util;
mod ws;

use serde_json::{json, Value};

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let Some(cmd) = argv.first().cloned() else {
        eprintln!("usage: loadgen SCENARIO --url URL [options]   (see src/main.rs)");
        std::process::exit(2);
    };
    if cmd == "report" {
        match argv.get(1).map(|p| report::report(p)) {
            Some(Ok(text)) => print!("{text}"),
            Some(Err(e)) => {
                eprintln!("loadgen report: {e}");
                std::process::exit(1);
            }
            None => {
                eprintln!("usage: loadgen report RESULTS.jsonl");
                std::process::exit(2);
            }
        }
        return;
    }
    if cmd == "cluster-report" {
        match argv.get(1).map(|p| cluster_report::report(p)) {
            Some(Ok(text)) => print!("{text}"),
            Some(Err(e)) => {
                eprintln!("loadgen cluster-report: {e}");
                std::process::exit(1);
            }
            None => {
                eprintln!("usage: loadgen cluster-report RESULTS.jsonl");
                std::process::exit(2);
            }
        }
        return;
    }
    if cmd == "free-port" {
        match std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()) {
            Ok(a) => println!("{}", a.port()),
            Err(e) => {
                eprintln!("loadgen free-port: {e}");
                std::process::exit(1);
            }
        }
        return;
    }
    let args = match util::Args::parse(&argv[1..]) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("loadgen {cmd}: {e}");
            std::process::exit(2);
        }
    };
    let result = match cmd.as_str() {
        "echo" => scenarios::echo(&args),
        "bcast-latency" => scenarios::broadcast(&args, "bcast-latency", 1, 1000),
        "bcast-throughput" => scenarios::broadcast(&args, "bcast-throughput", 64, 10_000),
        "stalled" => scenarios::stalled(&args),
        "burst" => burst::burst(&args),
        "storm" => storm::storm(&args),
        "idle" => scenarios::idle(&args),
        "static" => scenarios::static_files(&args),
        _ => {
            eprintln!("loadgen: unknown scenario {cmd:?}");
            std::process::exit(2);
        }
    };
    let mut v = match result {
        Ok(v) => v,
        Err(e) => {
            eprintln!("loadgen {cmd}: {e}");
            json!({ "scenario": scenario_name(&cmd, &args), "ok": false, "failed": true, "error": e })
        }
    };
    if let Some(obj) = v.as_object_mut() {
        for (k, val) in &args.tags {
            let val = val.parse::<i64>().map(Value::from).unwrap_or_else(|_| Value::from(val.clone()));
            obj.insert(k.clone(), val);
        }
    }
    println!("{v}");
    let ok = v.get("ok") == Some(&Value::Bool(true));
    std::process::exit(if ok { 0 } else { 1 });
}

fn scenario_name(cmd: &str, args: &util::Args) -> String {
    if cmd == "static" {
        format!("static-{}", args.str("label").unwrap_or("file"))
    } else {
        cmd.to_string()
    }
}
