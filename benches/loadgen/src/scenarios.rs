//! The benchmark scenarios. Each returns one JSON object (printed as one line by main).

use crate::net::Net;
use crate::util::{self, pct_us, round, Args, CpuWindow, RssSampler, Target};
use crate::ws::{Conn, Frame};
use memchr::memmem;
use serde_json::{json, Value};
use std::io;
use std::time::{Duration, Instant};

pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) fn ioe(e: io::Error) -> String {
    e.to_string()
}

pub(crate) fn pid_arg(a: &Args) -> Result<Option<u32>, String> {
    match a.str("server-pid") {
        None => Ok(None),
        Some(p) => p.parse().map(Some).map_err(|_| "--server-pid: bad pid".to_string()),
    }
}

pub(crate) fn mib(kib: u64) -> f64 {
    round(kib as f64 / 1024.0, 1)
}

pub(crate) fn opt(v: Option<f64>, digits: i32) -> Value {
    match v {
        Some(v) if v.is_finite() => json!(round(v, digits)),
        _ => Value::Null,
    }
}

// ===================================================================== echo

enum EchoEv {
    Data { ok: bool, at: Instant },
    Close(Option<u16>),
    Binary,
}

fn echo_payload(buf: &mut Vec<u8>, conn: usize, seq: usize, size: usize) {
    use std::io::Write;
    buf.clear();
    let _ = write!(buf, "{conn:05}:{seq:09}:");
    while buf.len() < size {
        buf.push(b'a' + (buf.len() % 26) as u8);
    }
    buf.truncate(size.max(1));
}

struct EchoPhase {
    elapsed: Duration,
    rtts: Vec<u64>,
    mismatches: u64,
    completed: u64,
    error: Option<String>,
}

fn echo_phase(net: &mut Net, per_conn: usize, size: usize, deadline: Instant) -> io::Result<EchoPhase> {
    let n = net.conns.len();
    let mut sent = vec![0usize; n];
    let mut expected: Vec<Vec<u8>> = vec![Vec::with_capacity(size); n];
    let mut sent_at = vec![Instant::now(); n];
    let mut done = 0usize;
    let mut out = EchoPhase {
        elapsed: Duration::ZERO,
        rtts: Vec::with_capacity(n * per_conn),
        mismatches: 0,
        completed: 0,
        error: None,
    };
    let start = Instant::now();
    if per_conn == 0 {
        return Ok(out);
    }
    for i in 0..n {
        echo_payload(&mut expected[i], i, 0, size);
        sent_at[i] = Instant::now();
        net.conns[i].send_text(&expected[i])?;
    }
    let mut ready = Vec::new();
    let mut evs = Vec::new();
    while done < n {
        if Instant::now() > deadline {
            out.error = Some(format!("timed out with {done}/{n} connections finished"));
            break;
        }
        net.wait(Duration::from_millis(100), &mut ready)?;
        for &i in &ready {
            evs.clear();
            let exp = &expected[i];
            let end = net.read_conn(i, &mut evs, |f, at| match f {
                Frame::Text(p) => EchoEv::Data { ok: p == &exp[..], at },
                Frame::Binary(_) => EchoEv::Binary,
                Frame::Close(c) => EchoEv::Close(c),
            })?;
            for ev in &evs {
                match *ev {
                    EchoEv::Data { ok, at } => {
                        if sent[i] >= per_conn {
                            out.mismatches += 1;
                            continue;
                        }
                        out.rtts.push(at.saturating_duration_since(sent_at[i]).as_nanos() as u64);
                        out.completed += 1;
                        if !ok {
                            out.mismatches += 1;
                        }
                        sent[i] += 1;
                        if sent[i] < per_conn {
                            echo_payload(&mut expected[i], i, sent[i], size);
                            sent_at[i] = Instant::now();
                            net.conns[i].send_text(&expected[i])?;
                        } else {
                            done += 1;
                        }
                    }
                    EchoEv::Binary => out.mismatches += 1,
                    EchoEv::Close(c) => {
                        out.error.get_or_insert(format!("connection {i} closed by the server with {c:?}"));
                    }
                }
            }
            if end.eof {
                out.error.get_or_insert(format!("connection {i}: server closed the TCP stream"));
            }
        }
        if out.error.is_some() {
            break;
        }
    }
    out.elapsed = start.elapsed();
    Ok(out)
}

fn connect_many(t: &Target, n: usize, seed: u64) -> Result<Vec<Conn>, String> {
    (0..n)
        .map(|i| {
            Conn::connect(t.addr, &t.path, CONNECT_TIMEOUT, seed + i as u64)
                .map_err(|e| format!("connection {i} of {n} to {}{}: {e}", t.authority, t.path))
        })
        .collect()
}

pub fn echo(a: &Args) -> Result<Value, String> {
    let t = util::parse_url(a.req("url")?)?;
    let n: usize = a.num("conns", 50)?;
    let msgs: usize = a.num("msgs", 2000)?;
    let size: usize = a.num("size", 64)?;
    let warmup: usize = a.num("warmup", 100)?;
    let timeout: u64 = a.num("timeout", 60)?;
    let pid = pid_arg(a)?;
    if size < 16 {
        return Err("--size must be at least 16".into());
    }
    let deadline = Instant::now() + Duration::from_secs(timeout);
    let conns = connect_many(&t, n, 1)?;
    let mut net = Net::new(conns).map_err(ioe)?;
    let w = echo_phase(&mut net, warmup, size, deadline).map_err(ioe)?;
    if let Some(e) = w.error {
        return Err(format!("warmup: {e}"));
    }
    let cpu = CpuWindow::start(pid);
    let mut p = echo_phase(&mut net, msgs, size, deadline).map_err(ioe)?;
    let (server_cpu, client_cpu) = cpu.end();
    let other = cpu.other_pct();
    net.close_all(Duration::from_secs(2));
    p.rtts.sort_unstable();
    let secs = p.elapsed.as_secs_f64();
    Ok(json!({
        "scenario": "echo",
        "ok": p.error.is_none() && p.mismatches == 0 && p.completed == (n * msgs) as u64,
        "error": p.error,
        "conns": n, "msgs_per_conn": msgs, "size": size, "warmup_per_conn": warmup,
        "round_trips": p.completed,
        "mismatches": p.mismatches,
        "elapsed_s": round(secs, 3),
        "msgs_per_s": round(p.completed as f64 / secs, 0),
        "rtt_p50_us": round(pct_us(&p.rtts, 50.0), 1),
        "rtt_p99_us": round(pct_us(&p.rtts, 99.0), 1),
        "server_cpu_pct": opt(server_cpu, 1),
        "client_cpu_pct": round(client_cpu, 1),
        "other_cpu_pct": round(other, 1),
    }))
}

// ===================================================================== chat

#[derive(Clone, Copy, Debug)]
pub(crate) enum ChatEv {
    /// A live chat message: sequence number, sender index parsed from `from`, text length.
    Msg { seq: u64, from: Option<u32>, len: usize },
    Backlog,
    /// A join notice; `who` is the member index of the name.
    Join { who: Option<u32> },
    Leave,
    /// Merged notices for a member that fell behind (`{"type":"presence","joined":[..],"left":[..]}`):
    /// how many left and the highest member index among those who joined.
    Presence { left: u32, max_joined: Option<u32> },
    /// The whole room at once (`{"type":"members","members":[..]}`): its highest member index.
    Members { max_index: Option<u32> },
    Welcome { members: usize },
    Refused,
    Other,
    Bad,
    Binary,
    Close(Option<u16>),
}

pub(crate) fn digits(b: &[u8]) -> Option<u64> {
    let end = b.iter().position(|c| !c.is_ascii_digit()).unwrap_or(b.len());
    if end == 0 {
        return None;
    }
    std::str::from_utf8(&b[..end]).ok()?.parse().ok()
}

/// Member names are `m<index>`.
pub(crate) fn member_index(name: &[u8]) -> Option<u32> {
    name.strip_prefix(b"m").and_then(digits).map(|v| v as u32)
}

pub(crate) fn parse_chat(f: Frame<'_>) -> ChatEv {
    match f {
        Frame::Close(c) => ChatEv::Close(c),
        Frame::Binary(_) => ChatEv::Binary,
        Frame::Text(t) => parse_chat_text(t),
    }
}

/// Fast path for the common `{"type":"message",...}` shape (our texts and names never need
/// escaping, so string values end at the next quote); anything else goes through serde_json.
pub(crate) fn parse_chat_text(t: &[u8]) -> ChatEv {
    if memmem::find(t, br#""type":"message""#).is_some() && memmem::find(t, br#""backlog""#).is_none() {
        if let (Some(tp), Some(fp)) = (memmem::find(t, br#""text":""#), memmem::find(t, br#""from":""#)) {
            let text = &t[tp + 8..];
            let from = &t[fp + 8..];
            if let (Some(tl), Some(fl)) = (memchr::memchr(b'"', text), memchr::memchr(b'"', from)) {
                if let Some(seq) = digits(text) {
                    return ChatEv::Msg { seq, from: member_index(&from[..fl]), len: tl };
                }
            }
        }
    }
    let v: Value = match serde_json::from_slice(t) {
        Ok(v) => v,
        Err(_) => return ChatEv::Bad,
    };
    match v.get("type").and_then(Value::as_str) {
        Some("message") => {
            if v.get("backlog").is_some() {
                return ChatEv::Backlog;
            }
            let text = v.get("text").and_then(Value::as_str).unwrap_or("");
            match digits(text.as_bytes()) {
                Some(seq) => ChatEv::Msg {
                    seq,
                    from: v.get("from").and_then(Value::as_str).and_then(|s| member_index(s.as_bytes())),
                    len: text.len(),
                },
                None => ChatEv::Bad,
            }
        }
        Some("join") => ChatEv::Join {
            who: v.get("name").and_then(Value::as_str).and_then(|s| member_index(s.as_bytes())),
        },
        Some("leave") => ChatEv::Leave,
        Some("presence") => {
            let names = |key: &str| -> Vec<u32> {
                let list = v.get(key).and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]);
                list.iter().filter_map(|n| n.as_str().and_then(|s| member_index(s.as_bytes()))).collect()
            };
            let (joined, left) = (names("joined"), names("left"));
            ChatEv::Presence { left: left.len() as u32, max_joined: joined.iter().copied().max() }
        }
        Some("members") => ChatEv::Members {
            max_index: v
                .get("members")
                .and_then(Value::as_array)
                .and_then(|a| a.iter().filter_map(|n| n.as_str().and_then(|s| member_index(s.as_bytes()))).max()),
        },
        Some("welcome") => ChatEv::Welcome {
            members: v.get("members").and_then(Value::as_array).map(|a| a.len()).unwrap_or(usize::MAX),
        },
        Some("name-refused") => ChatEv::Refused,
        Some(_) => ChatEv::Other,
        None => ChatEv::Bad,
    }
}

/// Connects `n` members to /chat and joins them one after another as m0, m1, ...
/// Then waits until every member has seen the join notices of those after it (one by one
/// and in order, or merged into a `presence` or `members` event).
/// Members listed in `stalled` are deregistered right after joining and never read again.
pub(crate) fn chat_setup(t: &Target, n: usize, stalled: &[usize], deadline: Instant) -> Result<Net, String> {
    chat_setup_on(std::slice::from_ref(t), false, n, stalled, deadline)
}

/// [`chat_setup`] with the members spread over `targets` in turn (m0 on the first, m1 on the
/// second, ...: several nodes sharing one room), speaking socket.io when `engineio`.
pub(crate) fn chat_setup_on(
    targets: &[Target],
    engineio: bool,
    n: usize,
    stalled: &[usize],
    deadline: Instant,
) -> Result<Net, String> {
    let mut conns = Vec::with_capacity(n);
    for i in 0..n {
        let t = &targets[i % targets.len()];
        let connected = match engineio {
            true => Conn::connect_engineio(t.addr, CONNECT_TIMEOUT, 1000 + i as u64),
            false => Conn::connect(t.addr, &t.path, CONNECT_TIMEOUT, 1000 + i as u64),
        };
        let mut c = connected.map_err(|e| format!("member {i}: connect: {e}"))?;
        c.send_text(format!("m{i}").as_bytes()).map_err(ioe)?;
        loop {
            let msg = c.recv_text_blocking().map_err(|e| format!("member {i}: join: {e}"))?;
            match parse_chat_text(&msg) {
                ChatEv::Welcome { members } => {
                    if members != i {
                        return Err(format!(
                            "member {i}: welcome lists {members} members, expected {i}: {}",
                            String::from_utf8_lossy(&msg)
                        ));
                    }
                    break;
                }
                ChatEv::Refused => {
                    return Err(format!("member {i}: name refused: {}", String::from_utf8_lossy(&msg)))
                }
                ChatEv::Backlog => {}
                other => {
                    return Err(format!(
                        "member {i}: unexpected {other:?} before welcome: {}",
                        String::from_utf8_lossy(&msg)
                    ))
                }
            }
        }
        conns.push(c);
    }
    let mut net = Net::new(conns).map_err(ioe)?;
    for &s in stalled {
        net.deregister(s).map_err(ioe)?;
    }
    // known[i]: how many of the members after m<i> it has been told about. They join in
    // index order, so a complete and ordered stream of notices names m<i+known[i]+1> next.
    let mut known = vec![0usize; n];
    let mut pending: usize = (0..n).filter(|i| !stalled.contains(i)).map(|i| n - 1 - i).sum();
    let mut ready = Vec::new();
    let mut evs = Vec::new();
    while pending > 0 {
        if Instant::now() > deadline {
            return Err(format!("join notices: {pending} never arrived"));
        }
        net.wait(Duration::from_millis(100), &mut ready).map_err(ioe)?;
        for &i in &ready {
            evs.clear();
            let end = net.read_conn(i, &mut evs, |f, _| parse_chat(f)).map_err(ioe)?;
            for ev in &evs {
                let upto = match *ev {
                    // socket.io across nodes: a join broadcast before this member's welcome
                    // may reach its node after it (the welcome already listed that member).
                    ChatEv::Join { who } if engineio && who.is_some_and(|w| (w as usize) < i) => None,
                    ChatEv::Join { who } => {
                        let next = (i + known[i] + 1) as u32;
                        if who != Some(next) {
                            return Err(format!("member {i}: join notice for {who:?}, expected m{next}"));
                        }
                        Some(next)
                    }
                    ChatEv::Presence { max_joined, .. } => max_joined,
                    ChatEv::Members { max_index } => max_index,
                    // A reused server: history and earlier members' leave notices.
                    ChatEv::Backlog | ChatEv::Leave => None,
                    other => return Err(format!("member {i}: unexpected {other:?} while waiting for joins")),
                };
                if let Some(upto) = upto.map(|m| m as usize) {
                    if upto >= n {
                        return Err(format!("member {i}: told about m{upto}, who never joined"));
                    }
                    if upto > i + known[i] {
                        pending -= upto - i - known[i];
                        known[i] = upto - i;
                    }
                }
            }
            if end.eof {
                return Err(format!("member {i}: server closed the connection during setup"));
            }
        }
    }
    Ok(net)
}

#[derive(Default)]
struct ChatStats {
    deliveries: u64,
    self_deliveries: u64,
    duplicates: u64,
    unknown_seq: u64,
    bad_from: u64,
    bad_len: u64,
    bad: u64,
    leaves: u64,
    other: u64,
    errors: Vec<String>,
}

struct ChatPhase {
    elapsed: Duration,
    completed: usize,
    missing: u64,
}

/// Sends `count` messages (sequence numbers from `seq0`) from the live members in turn,
/// keeping at most `window` messages not yet delivered to every other live member, and
/// records each delivery's latency into `lat` (nanoseconds).
#[allow(clippy::too_many_arguments)]
fn chat_phase(
    net: &mut Net,
    live: &[usize],
    count: usize,
    window: usize,
    size: usize,
    seq0: u64,
    deadline: Instant,
    lat: &mut Vec<u64>,
    st: &mut ChatStats,
) -> io::Result<ChatPhase> {
    use std::io::Write;
    let n = net.conns.len();
    let mut is_live = vec![false; n];
    for &i in live {
        is_live[i] = true;
    }
    let receivers = (live.len() - 1) as u32;
    let mut sent_at: Vec<Instant> = Vec::with_capacity(count);
    let mut sender: Vec<u32> = Vec::with_capacity(count);
    let mut remaining: Vec<u32> = Vec::with_capacity(count);
    let mut completed = 0usize;
    let mut text = Vec::with_capacity(size);
    let start = Instant::now();

    let send = |net: &mut Net,
                k: usize,
                sent_at: &mut Vec<Instant>,
                sender: &mut Vec<u32>,
                remaining: &mut Vec<u32>,
                text: &mut Vec<u8>|
     -> io::Result<()> {
        let s = live[k % live.len()];
        text.clear();
        let _ = write!(text, "{}:", seq0 + k as u64);
        while text.len() < size {
            text.push(b'x');
        }
        sender.push(s as u32);
        remaining.push(receivers);
        sent_at.push(Instant::now());
        net.conns[s].send_text(text)
    };

    let mut next = 0usize;
    while next < count.min(window) {
        send(net, next, &mut sent_at, &mut sender, &mut remaining, &mut text)?;
        next += 1;
    }
    let mut ready = Vec::new();
    let mut evs = Vec::new();
    'outer: while completed < count {
        if Instant::now() > deadline {
            st.errors.push(format!("timed out with {completed}/{count} messages fully delivered"));
            break;
        }
        net.wait(Duration::from_millis(100), &mut ready)?;
        for &i in &ready {
            evs.clear();
            let end = net.read_conn(i, &mut evs, |f, at| (parse_chat(f), at))?;
            for &(ev, at) in &evs {
                match ev {
                    ChatEv::Msg { seq, from, len } => {
                        if seq < seq0 || seq >= seq0 + next as u64 {
                            st.unknown_seq += 1;
                            continue;
                        }
                        let k = (seq - seq0) as usize;
                        if !is_live[i] {
                            continue;
                        }
                        if sender[k] as usize == i {
                            st.self_deliveries += 1;
                            continue;
                        }
                        if from != Some(sender[k]) {
                            st.bad_from += 1;
                        }
                        if len != size {
                            st.bad_len += 1;
                        }
                        if remaining[k] == 0 {
                            st.duplicates += 1;
                            continue;
                        }
                        remaining[k] -= 1;
                        st.deliveries += 1;
                        lat.push(at.saturating_duration_since(sent_at[k]).as_nanos() as u64);
                        if remaining[k] == 0 {
                            completed += 1;
                            if next < count {
                                send(net, next, &mut sent_at, &mut sender, &mut remaining, &mut text)?;
                                next += 1;
                            }
                        }
                    }
                    ChatEv::Leave => st.leaves += 1,
                    ChatEv::Presence { left, .. } => {
                        st.leaves += left as u64;
                        st.other += 1;
                    }
                    ChatEv::Join { .. }
                    | ChatEv::Members { .. }
                    | ChatEv::Backlog
                    | ChatEv::Other
                    | ChatEv::Welcome { .. } => st.other += 1,
                    ChatEv::Bad | ChatEv::Binary | ChatEv::Refused => st.bad += 1,
                    ChatEv::Close(c) => {
                        if is_live[i] {
                            st.errors.push(format!("live member m{i} closed by the server with {c:?}"));
                            break 'outer;
                        }
                    }
                }
            }
            if end.eof && is_live[i] {
                st.errors.push(format!("live member m{i}: server closed the TCP stream"));
                break 'outer;
            }
        }
    }
    let missing = remaining.iter().map(|&r| r as u64).sum::<u64>() + (count - next) as u64 * receivers as u64;
    Ok(ChatPhase { elapsed: start.elapsed(), completed, missing })
}

fn chat_common_json(st: &ChatStats) -> Value {
    json!({
        "self_deliveries": st.self_deliveries,
        "duplicates": st.duplicates,
        "unknown_seq": st.unknown_seq,
        "bad_from": st.bad_from,
        "bad_len": st.bad_len,
        "malformed": st.bad,
        "errors": st.errors,
    })
}

fn chat_clean(st: &ChatStats) -> bool {
    st.errors.is_empty()
        && st.self_deliveries == 0
        && st.duplicates == 0
        && st.unknown_seq == 0
        && st.bad_from == 0
        && st.bad_len == 0
        && st.bad == 0
}

pub(crate) fn merge(mut a: Value, b: Value) -> Value {
    if let (Some(a), Value::Object(b)) = (a.as_object_mut(), b) {
        a.extend(b);
    }
    a
}

/// Broadcast latency: one message at a time from rotating senders (`--window 1`) or
/// broadcast throughput: `--window 64` messages in flight.
pub fn broadcast(a: &Args, name: &str, default_window: usize, default_msgs: usize) -> Result<Value, String> {
    // Several URLs (comma-separated): the members are spread over them, one room on several
    // nodes. `--engineio`: the servers are socket.io peers.
    let targets = a
        .req("url")?
        .split(',')
        .map(util::parse_url)
        .collect::<Result<Vec<_>, _>>()?;
    let engineio = a.str("engineio") == Some("true");
    let pids = match a.str("server-pid") {
        None => Vec::new(),
        Some(list) => list
            .split(',')
            .map(|p| p.parse().map_err(|_| format!("--server-pid: bad pid {p:?}")))
            .collect::<Result<Vec<u32>, _>>()?,
    };
    let n: usize = a.num("members", 100)?;
    let msgs: usize = a.num("msgs", default_msgs)?;
    let window: usize = a.num("window", default_window)?;
    let size: usize = a.num("size", 64)?;
    let warmup: usize = a.num("warmup", 200)?;
    let timeout: u64 = a.num("timeout", 90)?;
    if n < 2 || size < 12 || window < 1 {
        return Err("need --members >= 2, --size >= 12, --window >= 1".into());
    }
    let deadline = Instant::now() + Duration::from_secs(timeout);
    let mut net = chat_setup_on(&targets, engineio, n, &[], deadline)?;
    let live: Vec<usize> = (0..n).collect();
    let mut st = ChatStats::default();
    let mut lat = Vec::new();
    let w = chat_phase(&mut net, &live, warmup, window, size, 0, deadline, &mut lat, &mut st).map_err(ioe)?;
    if !st.errors.is_empty() || w.completed < warmup {
        return Err(format!("warmup: {:?}", st.errors));
    }
    let warm_deliveries = st.deliveries;
    lat.clear();
    lat.reserve(msgs * (n - 1));
    let cpu = CpuWindow::start_many(pids);
    let p = chat_phase(&mut net, &live, msgs, window, size, warmup as u64, deadline, &mut lat, &mut st)
        .map_err(ioe)?;
    let (server_cpu, client_cpu) = cpu.end();
    let other = cpu.other_pct();
    net.close_all(Duration::from_secs(2));
    lat.sort_unstable();
    let secs = p.elapsed.as_secs_f64();
    let deliveries = st.deliveries - warm_deliveries;
    let ok = chat_clean(&st) && p.missing == 0;
    Ok(merge(
        json!({
            "scenario": name,
            "ok": ok,
            "members": n, "msgs": msgs, "window": window, "size": size, "warmup_msgs": warmup,
            "nodes": targets.len(),
            "messages_completed": p.completed,
            "deliveries": deliveries,
            "missing": p.missing,
            "elapsed_s": round(secs, 3),
            "deliveries_per_s": round(deliveries as f64 / secs, 0),
            "msgs_per_s": round(p.completed as f64 / secs, 1),
            "p50_us": round(pct_us(&lat, 50.0), 1),
            "p99_us": round(pct_us(&lat, 99.0), 1),
            "max_us": round(pct_us(&lat, 100.0), 1),
            "server_cpu_pct": opt(server_cpu, 1),
            "client_cpu_pct": round(client_cpu, 1),
            "other_cpu_pct": round(other, 1),
        }),
        chat_common_json(&st),
    ))
}

/// Stalled member: m0 joins and never reads again; the others chat `--msgs` messages of
/// `--size` bytes with `--window` in flight. Every live member must get every message.
pub fn stalled(a: &Args) -> Result<Value, String> {
    let t = util::parse_url(a.req("url")?)?;
    let n: usize = a.num("members", 10)?;
    let msgs: usize = a.num("msgs", 5000)?;
    let window: usize = a.num("window", 64)?;
    let size: usize = a.num("size", 4096)?;
    let timeout: u64 = a.num("timeout", 90)?;
    let drain_secs: f64 = a.num("drain-secs", 3.0)?;
    let pid = pid_arg(a)?;
    if n < 3 {
        return Err("need --members >= 3".into());
    }
    let deadline = Instant::now() + Duration::from_secs(timeout);
    let rss_base = pid.and_then(|p| util::rss_kib(p).ok());
    let sampler = RssSampler::start(pid);
    let mut net = chat_setup(&t, n, &[0], deadline)?;
    let live: Vec<usize> = (1..n).collect();
    let mut st = ChatStats::default();
    let mut lat = Vec::new();
    let cpu = CpuWindow::start(pid);
    let p = chat_phase(&mut net, &live, msgs, window, size, 0, deadline, &mut lat, &mut st).map_err(ioe)?;
    let (server_cpu, client_cpu) = cpu.end();
    let other = cpu.other_pct();
    let rss_after = pid.and_then(|p| util::rss_kib(p).ok());
    let peak = sampler.peak_kib();

    // What became of the stalled member: read whatever the server managed to queue for it.
    let stalled_conn = &mut net.conns[0];
    let _ = stalled_conn.sock.set_nonblocking(false);
    let _ = stalled_conn.sock.set_read_timeout(Some(Duration::from_millis(300)));
    let drain_deadline = Instant::now() + Duration::from_secs_f64(drain_secs);
    let (mut got, mut outcome) = (0u64, String::from("open"));
    'drain: while Instant::now() < drain_deadline && got < msgs as u64 {
        loop {
            match stalled_conn.next_frame() {
                Ok(Some(Frame::Text(t))) => {
                    if let ChatEv::Msg { .. } = parse_chat_text(t) {
                        got += 1
                    }
                }
                Ok(Some(Frame::Close(c))) => {
                    outcome = match c {
                        Some(c) => format!("closed {c}"),
                        None => "closed (no code)".into(),
                    };
                    break 'drain;
                }
                Ok(Some(Frame::Binary(_))) => {}
                Ok(None) => break,
                Err(e) => {
                    outcome = format!("bad frame: {e}");
                    break 'drain;
                }
            }
        }
        match stalled_conn.fill() {
            Ok(0) => {
                outcome = "eof without close frame".into();
                break;
            }
            Ok(_) => {}
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {
                outcome = "reset".into();
                break;
            }
            Err(e) => {
                outcome = format!("error: {e}");
                break;
            }
        }
    }
    let peak = peak.max(sampler.stop());
    let _ = net.conns[0].sock.set_nonblocking(true);
    net.close_all(Duration::from_secs(2));
    lat.sort_unstable();
    let secs = p.elapsed.as_secs_f64();
    let expected = msgs as u64 * (live.len() as u64 - 1);
    Ok(merge(
        json!({
            "scenario": "stalled",
            "ok": chat_clean(&st) && p.missing == 0,
            "members": n, "msgs": msgs, "window": window, "size": size,
            "expected_deliveries": expected,
            "deliveries": st.deliveries,
            "missing": p.missing,
            "all_delivered": p.missing == 0 && st.deliveries == expected,
            "elapsed_s": round(secs, 3),
            "deliveries_per_s": round(st.deliveries as f64 / secs, 0),
            "p50_us": round(pct_us(&lat, 50.0), 1),
            "p99_us": round(pct_us(&lat, 99.0), 1),
            "stalled_outcome": outcome,
            "stalled_received": got,
            "leaves_seen": st.leaves,
            "rss_base_mib": rss_base.map(mib),
            "rss_after_mib": rss_after.map(mib),
            "rss_peak_mib": pid.map(|_| mib(peak)),
            "rss_growth_mib": rss_base.map(|b| mib(peak.saturating_sub(b))),
            "server_cpu_pct": opt(server_cpu, 1),
            "client_cpu_pct": round(client_cpu, 1),
            "other_cpu_pct": round(other, 1),
        }),
        chat_common_json(&st),
    ))
}

// ===================================================================== idle

/// Runs the event loop (answering pings) for `d`; returns messages received.
fn idle_loop(net: &mut Net, d: Duration) -> io::Result<(u64, u64)> {
    let end = Instant::now() + d;
    let (mut msgs, mut closed) = (0u64, 0u64);
    let mut ready = Vec::new();
    let mut evs: Vec<bool> = Vec::new();
    loop {
        let now = Instant::now();
        if now >= end {
            return Ok((msgs, closed));
        }
        net.wait((end - now).min(Duration::from_millis(500)), &mut ready)?;
        for &i in &ready {
            evs.clear();
            let e = net.read_conn(i, &mut evs, |f, _| matches!(f, Frame::Close(_)))?;
            for &is_close in &evs {
                if is_close {
                    closed += 1
                } else {
                    msgs += 1
                }
            }
            if e.eof {
                closed += 1;
                net.deregister(i)?;
            }
        }
    }
}

pub fn idle(a: &Args) -> Result<Value, String> {
    let t = util::parse_url(a.req("url")?)?;
    let n: usize = a.num("conns", 5000)?;
    let idle_secs: f64 = a.num("idle-secs", 10.0)?;
    let settle_secs: f64 = a.num("settle-secs", 2.0)?;
    let pid = pid_arg(a)?.ok_or("--server-pid is required for idle")?;
    std::thread::sleep(Duration::from_millis(500));
    let rss_base = util::rss_kib(pid).map_err(ioe)?;
    let t0 = Instant::now();
    let conns = connect_many(&t, n, 7)?;
    let connect_s = t0.elapsed().as_secs_f64();
    let mut net = Net::new(conns).map_err(ioe)?;
    idle_loop(&mut net, Duration::from_secs_f64(settle_secs)).map_err(ioe)?;
    let rss_connected = util::rss_kib(pid).map_err(ioe)?;
    let cpu0 = util::cpu_secs(pid).map_err(ioe)?;
    let window = CpuWindow::start(Some(pid));
    let c0 = Instant::now();
    let (msgs, closed) = idle_loop(&mut net, Duration::from_secs_f64(idle_secs)).map_err(ioe)?;
    let cpu1 = util::cpu_secs(pid).map_err(ioe)?;
    let wall = c0.elapsed().as_secs_f64();
    let other = window.other_pct();
    let rss_end = util::rss_kib(pid).map_err(ioe)?;

    // Liveness: every connection echoes one message.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut waiting = vec![false; n];
    let mut left = 0usize;
    for (i, c) in net.conns.iter_mut().enumerate() {
        if c.eof || c.close_received.is_some() {
            continue;
        }
        if c.send_text(format!("alive {i:06}").as_bytes()).is_ok() {
            waiting[i] = true;
            left += 1;
        }
    }
    let mut alive = 0usize;
    let mut ready = Vec::new();
    let mut evs: Vec<bool> = Vec::new();
    while left > 0 && Instant::now() < deadline {
        net.wait(Duration::from_millis(200), &mut ready).map_err(ioe)?;
        for &i in &ready {
            evs.clear();
            let expect = format!("alive {i:06}");
            let e = match net.read_conn(i, &mut evs, |f, _| matches!(f, Frame::Text(p) if p == expect.as_bytes())) {
                Ok(e) => e,
                Err(_) => {
                    if waiting[i] {
                        waiting[i] = false;
                        left -= 1;
                    }
                    continue;
                }
            };
            if waiting[i] && evs.iter().any(|&ok| ok) {
                waiting[i] = false;
                left -= 1;
                alive += 1;
            } else if waiting[i] && e.eof {
                waiting[i] = false;
                left -= 1;
            }
        }
    }
    net.close_all(Duration::from_secs(5));
    let per_conn = (rss_end as f64 - rss_base as f64) / n as f64;
    Ok(json!({
        "scenario": "idle",
        "ok": alive == n,
        "conns": n,
        "connect_s": round(connect_s, 2),
        "idle_s": round(wall, 2),
        "alive": alive,
        "closed_while_idle": closed,
        "messages_while_idle": msgs,
        "rss_base_mib": mib(rss_base),
        "rss_connected_mib": mib(rss_connected),
        "rss_end_mib": mib(rss_end),
        "rss_per_conn_kib": round(per_conn, 2),
        "idle_cpu_pct": round((cpu1 - cpu0) / wall * 100.0, 2),
        "idle_cpu_ms": round((cpu1 - cpu0) * 1000.0, 0),
        "other_cpu_pct": round(other, 1),
    }))
}

// =================================================================== static

/// One plain keep-alive GET, to check the server serves the file before wrk hammers it.
/// Returns the response's Connection header, if any.
fn http_get_check(t: &Target, expect_len: usize) -> Result<Option<String>, String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect_timeout(&t.addr, CONNECT_TIMEOUT).map_err(ioe)?;
    s.set_read_timeout(Some(Duration::from_secs(10))).map_err(ioe)?;
    write!(s, "GET {} HTTP/1.1\r\nHost: {}\r\n\r\n", t.path, t.authority).map_err(ioe)?;
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let (head_end, head) = loop {
        if let Some(p) = memmem::find(&buf, b"\r\n\r\n") {
            break (p + 4, String::from_utf8_lossy(&buf[..p + 4]).into_owned());
        }
        let n = s.read(&mut chunk).map_err(ioe)?;
        if n == 0 {
            return Err("connection closed before a response head".into());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    if !head.starts_with("HTTP/1.1 200") {
        return Err(format!("GET {}: {}", t.path, head.lines().next().unwrap_or("")));
    }
    let header = |name: &str| {
        head.lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_string())
    };
    let len: usize = header("content-length")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("GET {}: no Content-Length", t.path))?;
    if len != expect_len {
        return Err(format!("GET {}: Content-Length {len}, expected {expect_len}", t.path));
    }
    while buf.len() - head_end < len {
        let n = s.read(&mut chunk).map_err(ioe)?;
        if n == 0 {
            return Err(format!("GET {}: body cut short", t.path));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(header("connection"))
}

fn wrk_duration_us(v: &str) -> Option<f64> {
    let v = v.trim();
    let (num, mul) = if let Some(x) = v.strip_suffix("us") {
        (x, 1.0)
    } else if let Some(x) = v.strip_suffix("ms") {
        (x, 1e3)
    } else if let Some(x) = v.strip_suffix('s') {
        (x, 1e6)
    } else if let Some(x) = v.strip_suffix('m') {
        (x, 60e6)
    } else {
        (v, 1.0)
    };
    num.parse::<f64>().ok().map(|n| n * mul)
}

fn run_wrk(wrk: &str, url: &str, conns: usize, secs: u64) -> Result<String, String> {
    let out = std::process::Command::new(wrk)
        .args(["-t1", &format!("-c{conns}"), &format!("-d{secs}s"), "--latency", "--timeout", "5s", url])
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("running {wrk}: {e}"))?;
    if !out.status.success() {
        return Err(format!("wrk failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

pub fn static_files(a: &Args) -> Result<Value, String> {
    let url = a.req("url")?;
    let t = util::parse_url(url)?;
    let size: usize = a.num("size", 10240)?;
    let secs: u64 = a.num("duration", 5)?;
    let warm: u64 = a.num("warmup-secs", 1)?;
    let conns: usize = a.num("conns", 50)?;
    let wrk = a.str("wrk").unwrap_or("wrk");
    let pid = pid_arg(a)?;
    let connection_header = http_get_check(&t, size)?;
    if warm > 0 {
        run_wrk(wrk, url, conns, warm)?;
    }
    let cpu = CpuWindow::start(pid);
    let wrk0 = util::children_cpu_secs();
    let t0 = Instant::now();
    let text = run_wrk(wrk, url, conns, secs)?;
    let wrk_cpu = (util::children_cpu_secs() - wrk0) / t0.elapsed().as_secs_f64() * 100.0;
    let (server_cpu, _) = cpu.end();
    let other = cpu.other_pct();
    let mut rps = None;
    let (mut requests, mut non2xx, mut sock_err) = (None, 0u64, 0u64);
    let (mut p50, mut p99) = (None, None);
    for line in text.lines() {
        let l = line.trim();
        if let Some(v) = l.strip_prefix("Requests/sec:") {
            rps = v.trim().parse::<f64>().ok();
        } else if let Some(v) = l.strip_prefix("Non-2xx or 3xx responses:") {
            non2xx = v.trim().parse().unwrap_or(0);
        } else if let Some(v) = l.strip_prefix("Socket errors:") {
            sock_err = v
                .split(',')
                .filter_map(|p| p.split_whitespace().last()?.parse::<u64>().ok())
                .sum();
        } else if let Some(v) = l.strip_prefix("50%") {
            p50 = wrk_duration_us(v);
        } else if let Some(v) = l.strip_prefix("99%") {
            p99 = wrk_duration_us(v);
        } else if l.contains(" requests in ") {
            requests = l.split_whitespace().next().and_then(|v| v.parse::<u64>().ok());
        }
    }
    let rps = rps.ok_or_else(|| format!("no Requests/sec in wrk output:\n{text}"))?;
    Ok(json!({
        "scenario": format!("static-{}", a.str("label").unwrap_or("file")),
        "ok": non2xx == 0 && sock_err == 0,
        "size": size, "conns": conns, "duration_s": secs,
        "requests": requests,
        "req_per_s": round(rps, 0),
        "mib_per_s": round(rps * size as f64 / 1048576.0, 1),
        "lat_p50_us": opt(p50, 0),
        "lat_p99_us": opt(p99, 0),
        "non_2xx": non2xx,
        "socket_errors": sock_err,
        "connection_header": connection_header,
        "server_cpu_pct": opt(server_cpu, 1),
        "client_cpu_pct": round(wrk_cpu, 1),
        "other_cpu_pct": round(other, 1),
    }))
}
