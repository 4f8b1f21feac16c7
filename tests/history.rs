//! Durable history (issue 13): every promise made in the README, each tested by causing the
//! fault for real: a restart, `kill -9` during a flood, a torn and a damaged log, compaction,
//! a full disk (a file size limit), a second server on the same directory.

mod support;

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use support::*;
use tungstenite::Message;
use wschat::internals::history::line::{self, Entry};

fn say(ws: &mut tungstenite::WebSocket<std::net::TcpStream>, text: &str) {
    ws.send(Message::text(text)).unwrap();
}

/// The backlog a newcomer to `path` gets: (from, text) in order, up to the first live event.
fn backlog(addr: std::net::SocketAddr, path: &str, name: &str) -> Vec<(String, String)> {
    let url = format!("ws://{addr}{path}");
    let stream = std::net::TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let (mut ws, _) = tungstenite::client(url.as_str(), stream).unwrap();
    say(&mut ws, name);
    let welcome = next_text(&mut ws);
    assert!(welcome.starts_with(r#"{"type":"welcome""#), "{welcome}");
    // The backlog follows the welcome at once: close, and read what came before the close.
    let mut out = Vec::new();
    ws.close(None).unwrap();
    while let Ok(message) = ws.read() {
        if let Message::Text(text) = message {
            let Some((from, text)) = parse_backlog(&text) else {
                continue;
            };
            out.push((from, text));
        }
    }
    out
}

/// `{"type":"message","from":F,"text":T,"backlog":true}` with plain ASCII F and T.
fn parse_backlog(event: &str) -> Option<(String, String)> {
    let rest = event.strip_prefix(r#"{"type":"message","from":""#)?;
    let (from, rest) = rest.split_once(r#"","text":""#)?;
    let text = rest.strip_suffix(r#"","backlog":true}"#)?;
    Some((from.to_string(), text.to_string()))
}

fn room_file(dir: &Path, room: &str) -> std::path::PathBuf {
    dir.join("rooms").join(format!("{room}.jsonl"))
}

fn entry(from: &str, text: &str) -> String {
    line::encode(&Entry {
        at: "2026-12-02T05:22:24.123Z".into(),
        from: from.into(),
        text: text.into(),
    })
}

/// Starts the binary with history in `dir` and `args`; returns it with its address and a
/// channel of its stderr lines.
/// A server process; killed when dropped, so a failing test leaves none running.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(dir: &Path, args: &[&str]) -> (Running, std::net::SocketAddr, mpsc::Receiver<String>) {
    start_with(Command::new(env!("CARGO_BIN_EXE_wschat")), dir, args)
}

fn start_with(
    mut command: Command,
    dir: &Path,
    args: &[&str],
) -> (Running, std::net::SocketAddr, mpsc::Receiver<String>) {
    let mut child = command
        .args(["--addr", "127.0.0.1:0", "--data"])
        .arg(dir)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let Some(addr) = first
        .trim()
        .strip_prefix("listening on http://")
        .and_then(|a| a.strip_suffix('/'))
    else {
        let mut err = String::new();
        let _ = child.stderr.take().unwrap().read_to_string(&mut err);
        panic!("the server did not start: {err}");
    };
    let addr = addr.parse().unwrap();
    let (lines, received) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    (Running(child), addr, received)
}

/// Waits for a stderr line containing `part`.
fn wait_line(lines: &mpsc::Receiver<String>, part: &str) -> String {
    loop {
        let line = lines
            .recv_timeout(PATIENCE)
            .unwrap_or_else(|_| panic!("no line with {part:?}"));
        if line.contains(part) {
            return line;
        }
    }
}

fn stop(mut child: Running) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status();
    child.0.wait().unwrap();
}

#[test]
fn history_survives_a_restart_in_every_room() {
    let dir = TempDir::new("history-restart");
    let server = TestServer::with(|c| {
        c.ephemeral = false;
        c.data = Some(dir.0.clone());
    });
    let mut alice = server.join("alice");
    for i in 0..5 {
        say(&mut alice, &format!("lobby {i}"));
    }
    let mut team = server.ws("/chat/team");
    say(&mut team, "carol");
    next_text(&mut team);
    say(&mut team, "team 0");
    // Once bob has them all, the server has stored them all.
    let mut bob = server.join("bob");
    for _ in 0..5 {
        next_text(&mut bob);
    }
    drop((alice, team, bob));
    server.stop();
    let server = TestServer::with(|c| {
        c.ephemeral = false;
        c.data = Some(dir.0.clone());
    });
    let expected: Vec<(String, String)> = (0..5)
        .map(|i| ("alice".into(), format!("lobby {i}")))
        .collect();
    assert_eq!(backlog(server.addr, "/chat", "dave"), expected);
    assert_eq!(
        backlog(server.addr, "/chat/team", "dave"),
        [("carol".to_string(), "team 0".to_string())]
    );
}

#[test]
fn after_kill_9_during_a_flood_every_received_message_is_in_the_backlog_once_in_order() {
    const SENDERS: usize = 4;
    const EACH: usize = 400;
    let dir = TempDir::new("history-kill");
    let args = ["--rate-limit", "0", "--history", "5000"];
    let (child, addr, _lines) = start(&dir.0, &args);
    // Four senders flood; a reader and the senders record everything they receive.
    let (got, received) = mpsc::channel::<(usize, Vec<String>)>();
    let mut clients = Vec::new();
    for who in 0..=SENDERS {
        let stream = std::net::TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        let (mut ws, _) =
            tungstenite::client(format!("ws://{addr}/chat").as_str(), stream).unwrap();
        say(&mut ws, &format!("c{who}"));
        next_text(&mut ws);
        clients.push(ws);
    }
    let mut threads = Vec::new();
    for (who, mut ws) in clients.into_iter().enumerate() {
        let got = got.clone();
        threads.push(std::thread::spawn(move || {
            let reader = ws.get_ref().try_clone().unwrap();
            let sending = (who < SENDERS).then(|| {
                let mut writer = tungstenite::WebSocket::from_raw_socket(
                    reader,
                    tungstenite::protocol::Role::Client,
                    None,
                );
                std::thread::spawn(move || {
                    for i in 0..EACH {
                        if writer.send(Message::text(format!("c{who}:{i}"))).is_err() {
                            break;
                        }
                    }
                })
            });
            let mut seen = Vec::new();
            while let Ok(message) = ws.read() {
                if let Message::Text(text) = message {
                    if let Some(rest) = text.strip_prefix(r#"{"type":"message","from":""#) {
                        let said = rest.split_once(r#""text":""#).unwrap().1;
                        seen.push(said.trim_end_matches("\"}").to_string());
                    }
                }
            }
            if let Some(sending) = sending {
                let _ = sending.join();
            }
            got.send((who, seen)).unwrap();
        }));
    }
    drop(got);
    // Kill the server in the middle of the flood, once some messages went around.
    let mut killer = child;
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        let len = fs::metadata(room_file(&dir.0, "lobby"))
            .map(|m| m.len())
            .unwrap_or(0);
        if len > 20_000 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the flood never got going"
        );
        std::thread::yield_now();
    }
    killer.0.kill().unwrap(); // SIGKILL
    killer.0.wait().unwrap();
    for thread in threads {
        thread.join().unwrap();
    }
    let seen: Vec<(usize, Vec<String>)> = received.iter().collect();
    let (child, addr, _lines) = start(&dir.0, &args);
    let stored: Vec<String> = backlog(addr, "/chat", "after")
        .into_iter()
        .map(|(from, text)| {
            assert!(text.starts_with(&format!("{from}:")), "{from}: {text}");
            text
        })
        .collect();
    // Exactly once, and nothing that nobody sent.
    let unique: HashSet<&String> = stored.iter().collect();
    assert_eq!(unique.len(), stored.len(), "a message is stored twice");
    for text in &stored {
        let (who, i) = text.split_once(':').unwrap();
        let who: usize = who[1..].parse().unwrap();
        let i: usize = i.parse().unwrap();
        assert!(who < SENDERS && i < EACH, "never sent: {text}");
    }
    // Every message anyone received is stored, in the order it was received.
    let position: HashMap<&String, usize> =
        stored.iter().enumerate().map(|(i, t)| (t, i)).collect();
    let mut total = 0;
    for (who, got) in &seen {
        let mut last = None;
        for text in got {
            let at = *position
                .get(text)
                .unwrap_or_else(|| panic!("client {who} received {text}, which is not stored"));
            assert!(last < Some(at), "client {who}: {text} out of order");
            last = Some(at);
            total += 1;
        }
    }
    assert!(total > 0, "nobody received anything before the kill");
    stop(child);
}

#[test]
fn a_torn_last_line_is_cut_and_a_damaged_middle_line_skipped() {
    let dir = TempDir::new("history-repair");
    fs::create_dir_all(dir.0.join("rooms")).unwrap();
    let good = [
        entry("ann", "one"),
        entry("ann", "two"),
        entry("ann", "three"),
    ];
    let mut damaged = good[1].clone().into_bytes();
    damaged[20] ^= 0x01;
    let mut file = Vec::new();
    file.extend_from_slice(good[0].as_bytes());
    file.extend_from_slice(&damaged);
    file.extend_from_slice(good[2].as_bytes());
    let whole = file.len();
    file.extend_from_slice(&entry("ann", "torn").as_bytes()[..30]);
    fs::write(room_file(&dir.0, "lobby"), &file).unwrap();
    let (child, addr, lines) = start(&dir.0, &[]);
    let at = good[0].len();
    wait_line(&lines, &format!("skipped a damaged line at byte {at}"));
    wait_line(&lines, &format!("cut off a torn last line at byte {whole}"));
    assert_eq!(
        backlog(addr, "/chat", "bob"),
        [
            ("ann".to_string(), "one".to_string()),
            ("ann".into(), "three".into())
        ]
    );
    assert_eq!(
        fs::metadata(room_file(&dir.0, "lobby")).unwrap().len(),
        whole as u64
    );
    stop(child);
}

#[test]
fn compaction_keeps_the_newest_and_a_crashed_compaction_is_cleaned_up() {
    let dir = TempDir::new("history-compact");
    // A compaction that died before its rename leaves its new file behind the old one.
    fs::create_dir_all(dir.0.join("rooms")).unwrap();
    fs::write(room_file(&dir.0, "lobby"), entry("ann", "before")).unwrap();
    let leftover = dir.0.join("rooms/lobby.jsonl.compacting");
    fs::write(&leftover, entry("ann", "half")).unwrap();
    let server = TestServer::with(|c| {
        c.ephemeral = false;
        c.data = Some(dir.0.clone());
        c.history = 100;
        c.history_keep = 100;
        c.rate_limit = 0;
    });
    assert!(!leftover.exists(), "the leftover was not removed");
    let mut alice = server.join("alice");
    let mut bob = server.join("bob");
    next_text(&mut alice);
    for i in 0..300 {
        say(&mut alice, &format!("m{i}"));
    }
    // Once bob has the last one, all are stored.
    while !next_text(&mut bob).contains(r#""text":"m299""#) {}
    let lines = fs::read_to_string(room_file(&dir.0, "lobby")).unwrap();
    let count = lines.lines().count();
    // Compacted down to 100 whenever it reached 100 + 64.
    assert!((100..164).contains(&count), "{count} lines on disk");
    let last = lines.lines().last().unwrap();
    assert!(last.contains("\"m299\""), "{count} lines, the last {last}");
    drop((alice, bob));
    server.stop();
    let server = TestServer::with(|c| {
        c.ephemeral = false;
        c.data = Some(dir.0.clone());
        c.history = 100;
        c.history_keep = 100;
    });
    let expected: Vec<(String, String)> = (200..300)
        .map(|i| ("alice".into(), format!("m{i}")))
        .collect();
    assert_eq!(backlog(server.addr, "/chat", "carol"), expected);
}

#[test]
fn a_full_disk_refuses_the_message_to_its_sender_only_and_recovers() {
    let dir = TempDir::new("history-full");
    // A 16 KiB file size limit (bash counts 1024-byte blocks), soft so that it can be raised
    // again: the log fills up quickly.
    let mut command = Command::new("bash");
    command.args([
        "-c",
        "ulimit -S -f 16 && exec \"$0\" \"$@\"",
        env!("CARGO_BIN_EXE_wschat"),
    ]);
    let (child, addr, lines) = start_with(command, &dir.0, &["--rate-limit", "0"]);
    let connect = |name: &str| {
        let stream = std::net::TcpStream::connect(addr).unwrap();
        let (mut ws, _) =
            tungstenite::client(format!("ws://{addr}/chat").as_str(), stream).unwrap();
        say(&mut ws, name);
        next_text(&mut ws);
        ws
    };
    let mut alice = connect("alice");
    let bob = connect("bob");
    next_text(&mut alice); // bob's join
                           // What each hears, as it happens: bob the messages, alice only refusals.
    let (heard, events) = mpsc::channel::<(&str, String)>();
    let mut writer = tungstenite::WebSocket::from_raw_socket(
        alice.get_ref().try_clone().unwrap(),
        tungstenite::protocol::Role::Client,
        None,
    );
    for (who, mut ws) in [("alice", alice), ("bob", bob)] {
        let heard = heard.clone();
        std::thread::spawn(move || {
            while let Ok(Message::Text(text)) = ws.read() {
                if heard.send((who, text.to_string())).is_err() {
                    break;
                }
            }
        });
    }
    let next_event = || {
        events
            .recv_timeout(PATIENCE)
            .expect("neither heard anything")
    };
    let text = "x".repeat(1000);
    let mut refused = None;
    for i in 0..40 {
        writer.send(Message::text(format!("{i} {text}"))).unwrap();
        match next_event() {
            ("bob", got) => assert!(got.contains(&format!(r#""text":"{i} x"#)), "{got}"),
            (_, got) => {
                assert!(got.starts_with(r#"{"type":"not-sent""#), "{got}");
                assert!(got.contains(&format!(r#""text":"{i} x"#)), "{got}");
                refused = Some((i, got));
                break;
            }
        }
    }
    let (i, refusal) = refused.expect("the file size limit was never reached");
    assert!(refusal.contains("could not store it"), "{refusal}");
    wait_line(&lines, "refusing messages until a write succeeds");
    // Nothing half-written: every line of the file is whole and valid.
    let stored = fs::read_to_string(room_file(&dir.0, "lobby")).unwrap();
    assert!(stored.ends_with('\n'));
    for line in stored.lines() {
        assert!(
            line::decode(line.as_bytes()).is_some(),
            "a damaged line was left"
        );
    }
    assert_eq!(stored.lines().count(), i);
    // Health says so.
    let health = http_get(addr, "/healthz");
    assert!(health.starts_with("HTTP/1.1 503"), "{health}");
    assert!(
        health.contains("cannot store messages in room(s) lobby"),
        "{health}"
    );
    // Room to grow again: the next message goes through.
    let raised = Command::new("prlimit")
        .args(["--pid", &child.0.id().to_string(), "--fsize=unlimited"])
        .status()
        .unwrap();
    assert!(raised.success());
    writer.send(Message::text("after")).unwrap();
    assert_eq!(
        next_event(),
        (
            "bob",
            r#"{"type":"message","from":"alice","text":"after"}"#.to_string()
        )
    );
    wait_line(&lines, "storing messages again");
    assert!(http_get(addr, "/healthz").starts_with("HTTP/1.1 200"));
    stop(child);
}

fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    use std::io::Write;
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).unwrap();
    reply
}

#[test]
fn a_second_server_on_the_same_directory_is_refused() {
    let dir = TempDir::new("history-lock");
    let (first, _, _) = start(&dir.0, &[]);
    let out = Command::new(env!("CARGO_BIN_EXE_wschat"))
        .args(["--addr", "127.0.0.1:0", "--data"])
        .arg(&dir.0)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("another wschat is using the history directory"),
        "{err}"
    );
    stop(first);
}

#[test]
fn a_data_directory_that_cannot_be_made_stops_start_up() {
    let dir = TempDir::new("history-bad");
    let file = dir.write("not-a-dir", b"x");
    let out = Command::new(env!("CARGO_BIN_EXE_wschat"))
        .args(["--addr", "127.0.0.1:0", "--data"])
        .arg(file.join("sub"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("cannot create the history directory"), "{err}");
    assert!(err.contains("not-a-dir/sub"), "{err}");
}

#[test]
fn with_fsync_concurrent_senders_all_get_through_and_stay() {
    let dir = TempDir::new("history-fsync");
    let config = |c: &mut wschat::Config| {
        c.ephemeral = false;
        c.data = Some(dir.0.clone());
        c.fsync = true;
        c.rate_limit = 0;
        c.history = 1000;
    };
    let server = TestServer::with(config);
    let mut reader = server.join("reader");
    let senders: Vec<_> = (0..4)
        .map(|k| {
            let mut ws = server.join(&format!("s{k}"));
            std::thread::spawn(move || {
                for i in 0..50 {
                    say(&mut ws, &format!("s{k}:{i}"));
                }
                ws
            })
        })
        .collect();
    let mut seen = 0;
    while seen < 200 {
        if next_text(&mut reader).contains(r#""type":"message""#) {
            seen += 1;
        }
    }
    let _senders: Vec<_> = senders.into_iter().map(|s| s.join().unwrap()).collect();
    drop(reader);
    server.stop();
    let server = TestServer::with(config);
    assert_eq!(backlog(server.addr, "/chat", "late").len(), 200);
}

#[test]
fn ephemeral_writes_nothing() {
    let dir = TempDir::new("history-ephemeral");
    let server = TestServer::with(|c| {
        c.ephemeral = true;
        c.data = Some(dir.0.clone());
    });
    let mut alice = server.join("alice");
    say(&mut alice, "gone with the process");
    let _bob = server.join("bob");
    assert_eq!(fs::read_dir(&dir.0).unwrap().count(), 0);
}
