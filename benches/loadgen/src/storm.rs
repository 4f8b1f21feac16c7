//! Reconnect storm (issue 13, presence at scale): N members upgrade and send their names as
//! fast as the server lets them, as browsers do after a restart, and read nothing until the
//! last upgrade is done and the last name sent; then all of them read. Measures how long
//! until every member has its welcome, who ended up in the room and who was closed (codes),
//! whether each member's view of the room matches the room, and the server's CPU and RSS.
//!
//! Join and leave notices are accepted one by one (`join`, `leave`), merged
//! (`{"type":"presence","joined":[..],"left":[..]}`) or as the whole room
//! (`{"type":"members","members":[..]}`); each kind is counted.

use crate::net::Net;
use crate::scenarios::{ioe, member_index, mib, opt, pid_arg};
use crate::util::{self, round, Args, CpuWindow, RssSampler};
use crate::ws::{Conn, Frame};
use memchr::memmem;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

enum StormEv {
    Welcome(Vec<u32>),
    Join(u32),
    Leave(u32),
    Presence {
        joined: Vec<u32>,
        left: Vec<u32>,
    },
    Members(Vec<u32>),
    /// Chat messages and backlog: nobody chats in this scenario, but they are harmless.
    Chat,
    Refused,
    Bad,
    Close(Option<u16>),
}

/// `m<index>`, exactly as we named the member, with an index below `n`.
fn index_below(name: &[u8], n: usize) -> Option<u32> {
    let d = name.strip_prefix(b"m")?;
    let canonical = !d.is_empty() && d.len() <= 9 && d.iter().all(u8::is_ascii_digit) && (d.len() == 1 || d[0] != b'0');
    member_index(name).filter(|&m| canonical && (m as usize) < n)
}

fn names(v: &Value, key: &str, n: usize) -> Option<Vec<u32>> {
    v.get(key)?.as_array()?.iter().map(|x| index_below(x.as_str()?.as_bytes(), n)).collect()
}

/// The value of `"name":"..."` in a frame whose strings need no unescaping (our names).
fn quick_name(t: &[u8]) -> Option<&[u8]> {
    let at = memmem::find(t, br#""name":""#)? + 8;
    let len = memchr::memchr(b'"', &t[at..])?;
    Some(&t[at..at + len])
}

fn parse(f: Frame<'_>, n: usize) -> StormEv {
    let t = match f {
        Frame::Close(c) => return StormEv::Close(c),
        Frame::Binary(_) => return StormEv::Bad,
        Frame::Text(t) => t,
    };
    // Fast path: the N² join notices of a storm.
    for (tag, join) in [(&br#""type":"join""#[..], true), (&br#""type":"leave""#[..], false)] {
        if memmem::find(t, tag).is_some() {
            return match quick_name(t).and_then(|s| index_below(s, n)) {
                Some(m) if join => StormEv::Join(m),
                Some(m) => StormEv::Leave(m),
                None => StormEv::Bad,
            };
        }
    }
    let Ok(v) = serde_json::from_slice::<Value>(t) else {
        return StormEv::Bad;
    };
    let ev = match v.get("type").and_then(Value::as_str) {
        Some("welcome") => names(&v, "members", n).map(StormEv::Welcome),
        Some("presence") => match (names(&v, "joined", n), names(&v, "left", n)) {
            (Some(joined), Some(left)) => Some(StormEv::Presence { joined, left }),
            // One list may be left out when it is empty.
            (Some(joined), None) if v.get("left").is_none() => Some(StormEv::Presence { joined, left: Vec::new() }),
            (None, Some(left)) if v.get("joined").is_none() => Some(StormEv::Presence { joined: Vec::new(), left }),
            _ => None,
        },
        Some("members") => names(&v, "members", n).map(StormEv::Members),
        Some("message") => Some(StormEv::Chat),
        Some("name-refused") => Some(StormEv::Refused),
        _ => None,
    };
    ev.unwrap_or(StormEv::Bad)
}

/// Each member's view of the room: a bit per member index.
struct Views {
    words: usize,
    bits: Vec<u64>,
    known: Vec<u32>,
}

impl Views {
    fn new(n: usize) -> Views {
        let words = n.div_ceil(64);
        Views { words, bits: vec![0; n * words], known: vec![0; n] }
    }
    fn set(&mut self, i: usize, m: u32, on: bool) {
        let (w, b) = (i * self.words + m as usize / 64, 1u64 << (m % 64));
        let was = self.bits[w] & b != 0;
        if on && !was {
            self.bits[w] |= b;
            self.known[i] += 1;
        } else if !on && was {
            self.bits[w] &= !b;
            self.known[i] -= 1;
        }
    }
    fn reset(&mut self, i: usize, list: &[u32]) {
        self.bits[i * self.words..(i + 1) * self.words].fill(0);
        self.known[i] = 0;
        for &m in list {
            if m as usize != i {
                self.set(i, m, true);
            }
        }
    }
    /// Member i knows exactly `room` minus itself.
    fn matches(&self, i: usize, room: &[u64]) -> bool {
        let own = (i / 64, 1u64 << (i % 64));
        (0..self.words).all(|w| {
            let mut r = room[w];
            if w == own.0 {
                r &= !own.1;
            }
            self.bits[i * self.words + w] == r
        })
    }
}

#[derive(Default)]
struct Counts {
    joins: u64,
    leaves: u64,
    presence: u64,
    presence_joined: u64,
    presence_left: u64,
    members: u64,
    /// A notice before the member's welcome, or one naming the member itself.
    out_of_place: u64,
    refused: u64,
    malformed: u64,
}

pub fn storm(a: &Args) -> Result<Value, String> {
    let t = util::parse_url(a.req("url")?)?;
    let n: usize = a.num("members", 5000)?;
    let wave: usize = a.num("wave", 100)?;
    let timeout: u64 = a.num("timeout", 150)?;
    // Waiting only ends this way when some member never learns the whole room.
    let quiet_secs: f64 = a.num("quiet-secs", 10.0)?;
    // A server busy fanning out thousands of joins answers upgrades late; a browser would
    // wait, so a slow 101 is not counted as a failure this soon.
    let upgrade_secs: u64 = a.num("upgrade-timeout", 60)?;
    let pid = pid_arg(a)?;
    if n < 2 || wave < 1 {
        return Err("need --members >= 2 and --wave >= 1".into());
    }
    let deadline = Instant::now() + Duration::from_secs(timeout);
    let rss_base = pid.and_then(|p| util::rss_kib(p).ok());
    let server_cpu0 = pid.and_then(|p| util::cpu_secs(p).ok());
    let client_cpu0 = util::self_cpu_secs();
    let sampler = RssSampler::start(pid);
    let cpu = CpuWindow::start(pid);

    // The storm: `wave` upgrade requests go out back to back, then each 101 is read and that
    // member's name sent at once, as a browser sends it on `open`. Nothing else is read.
    let start = Instant::now();
    let mut conns = Vec::with_capacity(n);
    let mut member_of = Vec::with_capacity(n); // connection index -> member index
    let mut upgrade_errors: BTreeMap<String, u64> = BTreeMap::new();
    let mut fail = |e: String| *upgrade_errors.entry(e).or_default() += 1;
    for first in (0..n).step_by(wave) {
        if Instant::now() > deadline {
            for _ in first..(first + wave).min(n) {
                fail("not tried: the scenario's time was up".into());
            }
            continue;
        }
        let mut pending = Vec::with_capacity(wave);
        for i in first..(first + wave).min(n) {
            match Conn::start(t.addr, &t.path, Duration::from_secs(upgrade_secs), 5000 + i as u64) {
                Ok(p) => pending.push((i, p)),
                Err(e) => fail(format!("connect: {e}")),
            }
        }
        for (i, p) in pending {
            let mut c = match p.finish() {
                Ok(c) => c,
                Err(e) => {
                    fail(format!("upgrade: {e}"));
                    continue;
                }
            };
            c.rbuf_cap = 16 * 1024;
            match c.send_text(format!("m{i}").as_bytes()) {
                Ok(()) => {
                    conns.push(c);
                    member_of.push(i);
                }
                Err(e) => fail(format!("sending the name: {e}")),
            }
        }
    }
    let names_sent = start.elapsed();
    let upgraded = conns.len();

    // Everyone reads.
    let mut net = Net::new(conns).map_err(ioe)?;
    net.lenient_writes = true;
    let mut views = Views::new(n);
    let mut welcome_at: Vec<Option<Instant>> = vec![None; n];
    let mut ended: Vec<Option<String>> = vec![None; n];
    let mut c = Counts::default();
    let mut ready = Vec::new();
    let mut evs: Vec<StormEv> = Vec::new();
    let mut last_event = Instant::now();
    let mut next_check = Instant::now();
    let mut timed_out = false;
    loop {
        let now = Instant::now();
        if now > deadline {
            timed_out = true;
            break;
        }
        if now.duration_since(last_event).as_secs_f64() > quiet_secs {
            break;
        }
        if now >= next_check {
            // Settled: every open member has its welcome and knows every other open member.
            next_check = now + Duration::from_millis(50);
            let open = member_of.iter().filter(|&&m| ended[m].is_none()).count() as u32;
            let settled = member_of
                .iter()
                .all(|&m| ended[m].is_some() || (welcome_at[m].is_some() && views.known[m] + 1 == open));
            if settled {
                break;
            }
        }
        net.wait(Duration::from_millis(20), &mut ready).map_err(ioe)?;
        for &j in &ready {
            let i = member_of[j];
            evs.clear();
            let end = net.read_conn(j, &mut evs, |f, _| parse(f, n));
            if !evs.is_empty() {
                last_event = Instant::now();
            }
            for ev in evs.drain(..) {
                let welcomed = welcome_at[i].is_some();
                match ev {
                    StormEv::Welcome(list) => {
                        if welcomed {
                            c.out_of_place += 1;
                        } else {
                            welcome_at[i] = Some(last_event);
                        }
                        views.reset(i, &list);
                    }
                    StormEv::Join(m) | StormEv::Leave(m) => {
                        let join = matches!(ev, StormEv::Join(_));
                        if join {
                            c.joins += 1;
                        } else {
                            c.leaves += 1;
                        }
                        if !welcomed || m as usize == i {
                            c.out_of_place += 1;
                        } else {
                            views.set(i, m, join);
                        }
                    }
                    StormEv::Presence { joined, left } => {
                        c.presence += 1;
                        c.presence_joined += joined.len() as u64;
                        c.presence_left += left.len() as u64;
                        if !welcomed {
                            c.out_of_place += 1;
                        }
                        // Joined first, then left: someone who came and went within one
                        // merged notice is gone.
                        for (list, on) in [(&joined, true), (&left, false)] {
                            for &m in list {
                                if m as usize == i {
                                    c.out_of_place += 1;
                                } else {
                                    views.set(i, m, on);
                                }
                            }
                        }
                    }
                    StormEv::Members(list) => {
                        c.members += 1;
                        if !welcomed {
                            c.out_of_place += 1;
                        }
                        views.reset(i, &list);
                    }
                    StormEv::Chat => {}
                    StormEv::Refused => c.refused += 1,
                    StormEv::Bad => c.malformed += 1,
                    StormEv::Close(code) => {
                        ended[i].get_or_insert(code.map_or("close without a code".into(), |c| c.to_string()));
                    }
                }
            }
            match end {
                Ok(e) if e.eof => {
                    ended[i].get_or_insert("eof without a close frame".into());
                    let _ = net.deregister(j);
                }
                Ok(_) => {}
                Err(e) => {
                    ended[i].get_or_insert(format!("error: {e}"));
                    let _ = net.deregister(j);
                }
            }
        }
    }
    let active_s = last_event.saturating_duration_since(start).as_secs_f64().max(1e-9);
    let server_cpu_s = match (pid.and_then(|p| util::cpu_secs(p).ok()), server_cpu0) {
        (Some(b), Some(a)) => Some(b - a),
        _ => None,
    };
    let client_cpu_s = util::self_cpu_secs() - client_cpu0;
    let other = cpu.other_pct();
    let peak = sampler.stop();

    // Who is in the room, and does every member in it see exactly that room?
    let words = n.div_ceil(64);
    let mut room = vec![0u64; words];
    let mut in_room = 0usize;
    for &m in &member_of {
        if ended[m].is_none() && welcome_at[m].is_some() {
            room[m / 64] |= 1 << (m % 64);
            in_room += 1;
        }
    }
    let rosters_ok = member_of.iter().filter(|&&m| ended[m].is_none() && views.matches(m, &room)).count();
    let welcomed = welcome_at.iter().filter(|w| w.is_some()).count();
    let last_welcome = welcome_at.iter().flatten().max().map(|w| w.saturating_duration_since(start));
    let all_welcomed_ms = if welcomed == n { last_welcome.map(|d| d.as_secs_f64() * 1000.0) } else { None };
    let mut codes: BTreeMap<String, u64> = BTreeMap::new();
    for how in ended.iter().flatten() {
        *codes.entry(how.clone()).or_default() += 1;
    }
    let closed = ended.iter().filter(|e| e.is_some()).count();
    let closed_before_welcome = (0..n).filter(|&m| ended[m].is_some() && welcome_at[m].is_none()).count();
    let failed_upgrades = n - upgraded;
    let closes_text = if closed == 0 {
        "none".to_string()
    } else {
        let parts: Vec<String> = codes.iter().map(|(c, k)| format!("{c}×{k}")).collect();
        format!("{closed} closed: {}", parts.join(", "))
    };
    let notices_text = format!(
        "join {}, leave {}, presence {} ({} joined, {} left), members {}",
        c.joins, c.leaves, c.presence, c.presence_joined, c.presence_left, c.members
    );
    net.close_all(Duration::from_secs(5));
    let mut errors: Vec<String> = upgrade_errors.iter().map(|(e, k)| format!("{k}× {e}")).collect();
    if timed_out {
        errors.push(format!("timed out after {timeout} s"));
    }
    let ok = in_room == n && rosters_ok == n && c.out_of_place == 0 && c.refused == 0 && c.malformed == 0;
    Ok(json!({
        "scenario": "storm",
        "ok": ok && errors.is_empty(),
        "members": n, "wave": wave,
        "upgraded": upgraded,
        "failed_upgrades": failed_upgrades,
        "names_sent_ms": round(names_sent.as_secs_f64() * 1000.0, 1),
        "welcomed": welcomed,
        "all_welcomed_ms": opt(all_welcomed_ms, 1),
        "last_welcome_ms": opt(last_welcome.map(|d| d.as_secs_f64() * 1000.0), 1),
        "in_room": in_room,
        "members_closed": closed,
        "closed_before_welcome": closed_before_welcome,
        "close_codes": Value::Object(codes.iter().map(|(c, k)| (c.clone(), json!(k))).collect::<Map<_, _>>()),
        "closes": closes_text,
        "rosters_ok": rosters_ok,
        "notices": notices_text,
        "join_notices": c.joins,
        "leave_notices": c.leaves,
        "presence_events": c.presence,
        "members_events": c.members,
        "out_of_place": c.out_of_place,
        "refused": c.refused,
        "malformed": c.malformed,
        "active_s": round(active_s, 3),
        "server_cpu_s": opt(server_cpu_s, 3),
        "server_cpu_pct": opt(server_cpu_s.map(|s| s / active_s * 100.0), 1),
        "client_cpu_pct": round(client_cpu_s / active_s * 100.0, 1),
        "other_cpu_pct": round(other, 1),
        "rss_base_mib": rss_base.map(mib),
        "rss_peak_mib": pid.map(|_| mib(peak)),
        "rss_growth_mib": rss_base.map(|b| mib(peak.saturating_sub(b))),
        "errors": errors,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> StormEv {
        parse(Frame::Text(s.as_bytes()), 10)
    }

    #[test]
    fn notices_one_by_one_merged_or_whole() {
        assert!(matches!(p(r#"{"type":"join","name":"m3"}"#), StormEv::Join(3)));
        assert!(matches!(p(r#"{"type":"leave","name":"m9"}"#), StormEv::Leave(9)));
        match p(r#"{"type":"presence","joined":["m1","m2"],"left":["m0"]}"#) {
            StormEv::Presence { joined, left } => assert_eq!((joined, left), (vec![1, 2], vec![0])),
            _ => panic!("presence"),
        }
        match p(r#"{"type":"presence","left":["m4"]}"#) {
            StormEv::Presence { joined, left } => assert_eq!((joined, left), (vec![], vec![4])),
            _ => panic!("presence without joined"),
        }
        assert!(matches!(p(r#"{"type":"members","members":["m0","m5"]}"#), StormEv::Members(l) if l == [0, 5]));
        assert!(matches!(p(r#"{"type":"welcome","name":"m2","members":[]}"#), StormEv::Welcome(l) if l.is_empty()));
    }

    #[test]
    fn names_we_never_gave_are_malformed() {
        for bad in [
            r#"{"type":"join","name":"m10"}"#,
            r#"{"type":"join","name":"m01"}"#,
            r#"{"type":"join","name":"x1"}"#,
            r#"{"type":"presence","joined":["m1","bob"],"left":[]}"#,
            r#"{"type":"presence"}"#,
            r#"{"type":"surprise"}"#,
            "not json",
        ] {
            assert!(matches!(p(bad), StormEv::Bad), "{bad}");
        }
    }

    #[test]
    fn views_follow_notices_and_compare_with_the_room() {
        let mut v = Views::new(70);
        v.reset(1, &[0, 1, 65]);
        assert_eq!(v.known[1], 2, "a member does not count itself");
        v.set(1, 69, true);
        v.set(1, 0, false);
        v.set(1, 0, false);
        assert_eq!(v.known[1], 2);
        let mut room = vec![0u64; 2];
        for m in [1usize, 65, 69] {
            room[m / 64] |= 1 << (m % 64);
        }
        assert!(v.matches(1, &room));
        room[0] |= 1 << 5;
        assert!(!v.matches(1, &room));
    }
}
