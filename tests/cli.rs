//! The `wschat` binary: its command-line contract, first stdout line, logs and signals.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use support::*;
use tungstenite::Message;

fn wschat() -> Command {
    Command::new(env!("CARGO_BIN_EXE_wschat"))
}

/// Starts the binary on a free port and returns it with the address from its first line.
fn spawn(args: &[&str]) -> (Child, SocketAddr, String) {
    let mut child = wschat()
        .args(["--addr", "127.0.0.1:0", "--ephemeral"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (addr, line) = listening_addr(&mut child);
    (child, addr, line)
}

/// Reads the child's first stdout line, exactly `listening on http://ADDR/`; returns ADDR and
/// the line.
fn listening_addr(child: &mut Child) -> (SocketAddr, String) {
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .strip_prefix("listening on http://")
        .and_then(|rest| rest.strip_suffix("/\n"))
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .parse()
        .unwrap();
    (addr, line)
}

fn terminate(child: &mut Child) -> std::process::ExitStatus {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    child.wait().unwrap()
}

/// Everything the child writes to stderr from here to its exit.
fn remaining_stderr(child: &mut Child) -> String {
    let mut log = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    log
}

/// A WebSocket client on `path` of the server at `addr`.
fn ws_client(addr: SocketAddr, path: &str) -> tungstenite::WebSocket<TcpStream> {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    tungstenite::client(format!("ws://{addr}{path}").as_str(), stream)
        .unwrap()
        .0
}

/// The flag table of `--help`: (flag with its value name, default), in order.
fn help_flags() -> Vec<(String, String)> {
    let out = wschat().arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let options = text.split("\nOPTIONS:\n").nth(1).expect("an OPTIONS list");
    options
        .lines()
        .filter(|line| line.trim_start().starts_with("--"))
        .map(|line| {
            let (usage, rest) = line.trim_start().split_once("  ").expect("two columns");
            let default = rest
                .rsplit_once("[default: ")
                .and_then(|(_, d)| d.strip_suffix(']'))
                .unwrap_or_else(|| panic!("no default in {line:?}"));
            (usage.to_string(), default.to_string())
        })
        .collect()
}

/// The `| flag | default | meaning |` table under README.md's "## Command line":
/// (flag with its value name, default), in order, without the backticks.
fn readme_flags() -> Vec<(String, String)> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let section = readme
        .split("\n## Command line\n")
        .nth(1)
        .expect("a Command line section");
    let section = section.split("\n## ").next().unwrap();
    let mut lines = section
        .lines()
        .skip_while(|line| line.trim() != "| flag | default | meaning |");
    assert!(
        lines.next().is_some(),
        "no flag table under ## Command line"
    );
    assert!(lines.next().is_some_and(|line| line.starts_with("|---")));
    let cell = |text: &str| text.replace('`', "").trim().to_string();
    lines
        .take_while(|line| line.starts_with('|'))
        .map(|line| {
            let cells: Vec<&str> = line.split('|').collect();
            assert!(cells.len() >= 4, "{line:?}");
            (cell(cells[1]), cell(cells[2]))
        })
        .collect()
}

#[test]
fn the_readme_flag_table_matches_help() {
    let help = help_flags();
    assert!(help.len() >= 15, "{help:?}");
    assert!(help.contains(&("--addr HOST:PORT".into(), "127.0.0.1:8080".into())));
    assert_eq!(
        readme_flags(),
        help,
        "README.md's flag table differs from --help"
    );
}

#[test]
fn a_bad_flag_exits_2_with_one_line() {
    for args in [
        &["--nope"][..],
        &["--addr"],
        &["--history", "many"],
        &["--addr", "localhost"],
    ] {
        let out = wschat().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with("wschat: "), "{err}");
    }
}

#[test]
fn a_port_in_use_is_a_clear_error() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = wschat().args(["--addr", &addr]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains(&format!("cannot listen on {addr}")), "{err}");
}

#[test]
fn a_missing_root_is_a_clear_error() {
    let out = wschat()
        .args(["--addr", "127.0.0.1:0", "--root", "/no/such/dir"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8(out.stderr)
        .unwrap()
        .contains("/no/such/dir"));
}

/// Without the `redis` feature, `--redis` is a clear start-up error (the flag stays in the one
/// table, so `--help` and README.md are the same for every build).
#[cfg(not(feature = "redis"))]
#[test]
fn redis_needs_a_build_with_the_feature() {
    let out = wschat()
        .args(["--addr", "127.0.0.1:0", "--redis", "redis://127.0.0.1:6379"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("built without Redis support (cargo build --features redis)"),
        "{stderr}"
    );
}

#[test]
fn a_malformed_redis_url_is_a_usage_error() {
    let out = wschat()
        .args(["--redis", "localhost:6379"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(
        stderr,
        "wschat: --redis expects redis://HOST:PORT[/DB], got \"localhost:6379\"\n"
    );
}

#[test]
fn first_line_names_the_real_port_and_sigterm_closes_clients_with_1001() {
    let (mut child, addr, line) = spawn(&[]);
    assert_ne!(addr.port(), 0);
    assert_eq!(line, format!("listening on http://{addr}/\n"));
    let mut alice = ws_client(addr, "/chat");
    let mut bob = ws_client(addr, "/chat");
    alice.send(Message::text("alice")).unwrap();
    bob.send(Message::text("bob")).unwrap();
    next_text(&mut alice);
    next_text(&mut bob);
    let status = terminate(&mut child);
    assert!(status.success(), "{status:?}");
    assert_eq!(close_code(&mut alice), 1001);
    assert_eq!(close_code(&mut bob), 1001);
}

/// The server's threads, once every one of them is asleep in a system call (state `S`): a
/// signal sent then interrupts whatever each one waits in.
fn threads_once_all_asleep(pid: u32) -> Vec<String> {
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).unwrap();
        let states: Vec<(String, String)> = tasks
            .map(|task| {
                let task = task.unwrap().path();
                let tid = task.file_name().unwrap().to_string_lossy().into_owned();
                let stat = std::fs::read_to_string(task.join("stat")).unwrap_or_default();
                // The state follows the parenthesised name, which may itself hold spaces.
                let state = stat
                    .rsplit(") ")
                    .next()
                    .unwrap_or("")
                    .chars()
                    .take(1)
                    .collect();
                (tid, state)
            })
            .collect();
        if states.iter().all(|(_, state)| state == "S") {
            return states.into_iter().map(|(tid, _)| tid).collect();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "threads never all asleep: {states:?}"
        );
        std::thread::yield_now();
    }
}

#[test]
fn a_handled_signal_landing_on_any_thread_drops_no_connection() {
    let (mut child, addr, _) = spawn(&[]);
    let mut alice = ws_client(addr, "/chat");
    alice.send(Message::text("alice")).unwrap();
    next_text(&mut alice);
    let mut bob = ws_client(addr, "/chat");
    bob.send(Message::text("bob")).unwrap();
    next_text(&mut bob);
    assert!(next_text(&mut alice).contains(r#""join","name":"bob""#));
    let mut echo = ws_client(addr, "/echo");
    let mut half_request = TcpStream::connect(addr).unwrap();
    half_request.set_read_timeout(Some(PATIENCE)).unwrap();
    half_request.write_all(b"GET / HTTP/1.1\r\n").unwrap();

    // SIGXFSZ is handled (a flag) and, sent to a thread's id, lands on that thread. Every
    // thread gets it, each while it waits: in accept, in a read with a timeout, in a condvar.
    for tid in threads_once_all_asleep(child.id()) {
        let sent = Command::new("kill")
            .args(["-s", "XFSZ", &tid])
            .status()
            .unwrap();
        assert!(sent.success());
    }

    echo.send(Message::text("still echoing")).unwrap();
    assert_eq!(next_text(&mut echo), "still echoing");
    bob.send(Message::text("still chatting")).unwrap();
    assert!(next_text(&mut alice).contains("still chatting"));
    half_request.write_all(b"Host: x\r\n\r\n").unwrap();
    assert_eq!(read_response(&mut half_request, false).status, 200);
    assert!(terminate(&mut child).success());
    assert_eq!(close_code(&mut alice), 1001);
    let log = remaining_stderr(&mut child);
    assert!(!log.contains("Interrupted"), "{log}");
}

#[test]
fn logs_name_peer_path_and_outcome_and_trace_shows_both_heads() {
    let (mut child, addr, _) = spawn(&["--trace-handshake"]);
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let local = stream.local_addr().unwrap();
    let (mut ws, _) = tungstenite::client(format!("ws://{addr}/echo").as_str(), stream).unwrap();
    ws.send(Message::text("x")).unwrap();
    next_text(&mut ws);
    ws.close(None).unwrap();
    while ws.read().is_ok() {}
    let mut plain = TcpStream::connect(addr).unwrap();
    std::io::Write::write_all(
        &mut plain,
        b"GET /nothing HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    plain.set_read_timeout(Some(PATIENCE)).unwrap();
    let plain_local = plain.local_addr().unwrap();
    let mut sink = Vec::new();
    let _ = plain.read_to_end(&mut sink);
    terminate(&mut child);
    let log = remaining_stderr(&mut child);
    assert!(log.contains("Sec-WebSocket-Key:"), "{log}");
    assert!(log.contains("HTTP/1.1 101 Switching Protocols"), "{log}");
    assert!(
        log.contains(&format!("{local} GET /echo 101 closed 1000")),
        "{log}"
    );
    assert!(
        log.contains(&format!("{plain_local} GET /nothing 404")),
        "{log}"
    );
    // Every line that is not a traced head's continuation starts with RFC 3339 UTC time.
    let events: Vec<&str> = log
        .lines()
        .filter(|line| line.contains(&local.to_string()) || line.contains("shutting down"))
        .collect();
    assert!(events.len() >= 4, "{log}");
    for line in events {
        let (time, _) = line.split_once(' ').unwrap();
        assert!(is_rfc3339_utc_millis(time), "{line:?}");
    }
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ`, in this century.
fn is_rfc3339_utc_millis(time: &str) -> bool {
    let shape = "dddd-dd-ddTdd:dd:dd.dddZ";
    time.len() == shape.len()
        && time.starts_with("20")
        && time
            .chars()
            .zip(shape.chars())
            .all(|(c, s)| if s == 'd' { c.is_ascii_digit() } else { c == s })
}

#[test]
fn running_out_of_file_descriptors_refuses_connections_and_recovers() {
    // A descriptor limit of 32 leaves room for about 20 connections. The server must answer
    // the rest with 503 (it keeps one spare descriptor for exactly this) instead of spinning
    // on a failing accept, and serve again once descriptors are free.
    let mut child = Command::new("bash")
        .args([
            "-c",
            "ulimit -n 32 && exec \"$0\" --addr 127.0.0.1:0 --ephemeral",
            env!("CARGO_BIN_EXE_wschat"),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (addr, _) = listening_addr(&mut child);
    let request = |stream: &mut TcpStream| {
        std::io::Write::write_all(stream, b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
        read_response(stream, false).status
    };
    let mut held = Vec::new();
    let mut statuses = Vec::new();
    for _ in 0..40 {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        statuses.push(request(&mut stream));
        held.push(stream); // kept alive: each served one holds a descriptor
    }
    let served = statuses.iter().filter(|&&s| s == 200).count();
    let refused = statuses.iter().filter(|&&s| s == 503).count();
    assert_eq!(served + refused, 40, "{statuses:?}");
    assert!(served >= 10 && refused >= 10, "{statuses:?}");
    drop(held);
    let recovered = (0..200).any(|_| {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        request(&mut stream) == 200
    });
    assert!(recovered, "still refusing after descriptors were freed");
    assert!(terminate(&mut child).success());
}
