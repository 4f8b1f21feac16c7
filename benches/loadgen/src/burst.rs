//! Burst (issue 11): every member of a full room sends all its messages at once, with no
//! window, while every member keeps reading. Checks that each member gets every other
//! member's messages exactly once, in each sender's order, and that all members saw them
//! in one global order; counts the members the server closed, and with which codes.

use crate::net::Net;
use crate::scenarios::{chat_setup, ioe, merge, mib, opt, parse_chat, pid_arg, ChatEv};
use crate::util::{self, round, Args, CpuWindow, RssSampler};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// What every member received, and how each connection ended.
struct Tally {
    n: usize,
    msgs: usize,
    size: usize,
    /// Per member, the messages it received in arrival order (message id = sender * msgs + k).
    got: Vec<Vec<u32>>,
    /// Bit (member * n * msgs + id): member already has message id.
    seen: Vec<u64>,
    /// Per (member, sender): the highest k received so far, or -1.
    last_k: Vec<i32>,
    /// Per member: how the server ended it ("1008", "eof", "error: ..."), if it did.
    ended: Vec<Option<String>>,
    deliveries: u64,
    last_delivery: Option<Instant>,
    self_deliveries: u64,
    duplicates: u64,
    out_of_sender_order: u64,
    unknown_id: u64,
    bad_from: u64,
    bad_len: u64,
    malformed: u64,
    leaves: u64,
    presence: u64,
    other: u64,
}

impl Tally {
    fn new(n: usize, msgs: usize, size: usize) -> Tally {
        let total = n * msgs;
        Tally {
            n,
            msgs,
            size,
            got: (0..n).map(|_| Vec::with_capacity(total)).collect(),
            seen: vec![0; (n * total).div_ceil(64)],
            last_k: vec![-1; n * n],
            ended: vec![None; n],
            deliveries: 0,
            last_delivery: None,
            self_deliveries: 0,
            duplicates: 0,
            out_of_sender_order: 0,
            unknown_id: 0,
            bad_from: 0,
            bad_len: 0,
            malformed: 0,
            leaves: 0,
            presence: 0,
            other: 0,
        }
    }

    fn open(&self, i: usize) -> bool {
        self.ended[i].is_none()
    }

    /// Every member still open has all messages of all the others.
    fn complete(&self) -> bool {
        let want = (self.n - 1) * self.msgs;
        (0..self.n).all(|i| !self.open(i) || self.got[i].len() == want)
    }

    fn end(&mut self, i: usize, how: String) {
        if self.ended[i].is_none() {
            self.ended[i] = Some(how);
        }
    }

    fn record(&mut self, i: usize, ev: ChatEv, at: Instant) {
        match ev {
            ChatEv::Msg { seq, from, len } => {
                let total = (self.n * self.msgs) as u64;
                if seq >= total {
                    self.unknown_id += 1;
                    return;
                }
                let id = seq as usize;
                let sender = id / self.msgs;
                if sender == i {
                    self.self_deliveries += 1;
                    return;
                }
                if from != Some(sender as u32) {
                    self.bad_from += 1;
                }
                if len != self.size {
                    self.bad_len += 1;
                }
                let bit = i * self.n * self.msgs + id;
                if self.seen[bit / 64] & (1 << (bit % 64)) != 0 {
                    self.duplicates += 1;
                    return;
                }
                self.seen[bit / 64] |= 1 << (bit % 64);
                let k = (id % self.msgs) as i32;
                let last = &mut self.last_k[i * self.n + sender];
                if k <= *last {
                    self.out_of_sender_order += 1;
                }
                *last = (*last).max(k);
                self.got[i].push(id as u32);
                self.deliveries += 1;
                self.last_delivery = Some(at);
            }
            ChatEv::Close(code) => self.end(i, code.map_or("close without a code".into(), |c| c.to_string())),
            ChatEv::Leave => self.leaves += 1,
            ChatEv::Presence { left, .. } => {
                self.presence += 1;
                self.leaves += left as u64;
            }
            ChatEv::Members { .. } => self.presence += 1,
            ChatEv::Bad | ChatEv::Binary | ChatEv::Refused => self.malformed += 1,
            ChatEv::Join { .. } | ChatEv::Backlog | ChatEv::Welcome { .. } | ChatEv::Other => self.other += 1,
        }
    }
}

/// Reads every connection in `ready`, recording what it got. Returns whether anything arrived.
fn read_ready(net: &mut Net, ready: &[usize], tally: &mut Tally, evs: &mut Vec<(ChatEv, Instant)>) -> bool {
    let mut any = false;
    for &i in ready {
        evs.clear();
        let end = net.read_conn(i, evs, |f, at| (parse_chat(f), at));
        for &(ev, at) in evs.iter() {
            tally.record(i, ev, at);
        }
        any |= !evs.is_empty();
        match end {
            Ok(e) if e.eof => {
                tally.end(i, "eof without a close frame".into());
                let _ = net.deregister(i);
            }
            Ok(_) => {}
            Err(e) => {
                tally.end(i, format!("error: {e}"));
                let _ = net.deregister(i);
            }
        }
    }
    any
}

/// Whether the members' lists fit one global order: the union of every member's arrival
/// order (each consecutive pair an edge) has no cycle. Kahn's algorithm over the ids.
fn one_order(got: &[Vec<u32>], total: usize) -> bool {
    let mut next: Vec<Vec<u32>> = vec![Vec::new(); total];
    let mut indegree = vec![0u32; total];
    for list in got {
        for w in list.windows(2) {
            next[w[0] as usize].push(w[1]);
            indegree[w[1] as usize] += 1;
        }
    }
    let mut stack: Vec<u32> = (0..total as u32).filter(|&v| indegree[v as usize] == 0).collect();
    let mut placed = 0usize;
    while let Some(v) = stack.pop() {
        placed += 1;
        for &w in &next[v as usize] {
            indegree[w as usize] -= 1;
            if indegree[w as usize] == 0 {
                stack.push(w);
            }
        }
    }
    placed == total
}

/// Pairs of members that order two messages they both received differently.
fn disagreeing_pairs(got: &[Vec<u32>], total: usize) -> u64 {
    const NONE: u32 = u32::MAX;
    let pos: Vec<Vec<u32>> = got
        .iter()
        .map(|list| {
            let mut p = vec![NONE; total];
            for (at, &id) in list.iter().enumerate() {
                p[id as usize] = at as u32;
            }
            p
        })
        .collect();
    let mut pairs = 0u64;
    for a in 0..got.len() {
        for pb in &pos[a + 1..] {
            let mut last = None;
            for &id in &got[a] {
                let at = pb[id as usize];
                if at == NONE {
                    continue;
                }
                if last.is_some_and(|l| at < l) {
                    pairs += 1;
                    break;
                }
                last = Some(at);
            }
        }
    }
    pairs
}

pub fn burst(a: &Args) -> Result<Value, String> {
    let t = util::parse_url(a.req("url")?)?;
    let n: usize = a.num("members", 100)?;
    let msgs: usize = a.num("msgs", 50)?;
    let size: usize = a.num("size", 64)?;
    let timeout: u64 = a.num("timeout", 90)?;
    let quiet_secs: f64 = a.num("quiet-secs", 3.0)?;
    let pid = pid_arg(a)?;
    if n < 2 || msgs < 1 || size < 12 {
        return Err("need --members >= 2, --msgs >= 1, --size >= 12".into());
    }
    let total = n * msgs;
    let deadline = Instant::now() + Duration::from_secs(timeout);
    let rss_base = pid.and_then(|p| util::rss_kib(p).ok());
    let sampler = RssSampler::start(pid);
    let mut net = chat_setup(&t, n, &[], deadline)?;
    net.lenient_writes = true;
    let mut tally = Tally::new(n, msgs, size);
    let mut ready = Vec::new();
    let mut evs = Vec::new();
    let mut text = Vec::with_capacity(size);
    // A failed write (the server already closed the member) stops that member's sends; its
    // reads go on, so the close frame already on its way still says how it ended.
    let mut send_failed = vec![false; n];

    // Round k: every member still open sends its k-th message (one write each, as a browser's
    // ws.send would), then whatever has arrived is read. Nothing waits for deliveries.
    let cpu = CpuWindow::start(pid);
    let start = Instant::now();
    for k in 0..msgs {
        for (i, failed) in send_failed.iter_mut().enumerate() {
            if !tally.open(i) || *failed {
                continue;
            }
            use std::io::Write;
            text.clear();
            let _ = write!(text, "{}:", i * msgs + k);
            text.resize(size, b'x');
            *failed = net.conns[i].send_text(&text).is_err();
        }
        net.wait(Duration::ZERO, &mut ready).map_err(ioe)?;
        read_ready(&mut net, &ready, &mut tally, &mut evs);
    }
    let sent_s = start.elapsed().as_secs_f64();

    // Drain: until every open member has everything, or nothing arrives for quiet_secs (the
    // messages of closed members may never come), or the deadline.
    let mut last_news = Instant::now();
    let mut timed_out = false;
    while !tally.complete() {
        let now = Instant::now();
        if now > deadline {
            timed_out = true;
            break;
        }
        if now.duration_since(last_news).as_secs_f64() > quiet_secs {
            break;
        }
        net.wait(Duration::from_millis(50), &mut ready).map_err(ioe)?;
        if read_ready(&mut net, &ready, &mut tally, &mut evs) {
            last_news = Instant::now();
        }
    }
    let (server_cpu, client_cpu) = cpu.end_over(last_news.saturating_duration_since(start));
    let other = cpu.other_pct();
    let peak = sampler.stop();
    net.close_all(Duration::from_secs(2));

    let expected = (n * (n - 1) * msgs) as u64;
    let drain_s = tally.last_delivery.map(|l| l.saturating_duration_since(start).as_secs_f64());
    let mut codes: BTreeMap<String, u64> = BTreeMap::new();
    for how in tally.ended.iter().flatten() {
        *codes.entry(how.clone()).or_default() += 1;
    }
    let closed = tally.ended.iter().filter(|e| e.is_some()).count();
    let complete_members = (0..n).filter(|&i| tally.got[i].len() == (n - 1) * msgs).count();
    let ordered = one_order(&tally.got, total);
    let pairs = if ordered { 0 } else { disagreeing_pairs(&tally.got, total) };
    let closes_text = if closed == 0 {
        "none".to_string()
    } else {
        let parts: Vec<String> = codes.iter().map(|(c, k)| format!("{c}×{k}")).collect();
        format!("{closed} closed: {}", parts.join(", "))
    };
    let clean = tally.self_deliveries == 0
        && tally.duplicates == 0
        && tally.out_of_sender_order == 0
        && tally.unknown_id == 0
        && tally.bad_from == 0
        && tally.bad_len == 0
        && tally.malformed == 0;
    let all_delivered = tally.deliveries == expected;
    let mut errors = Vec::new();
    if timed_out {
        errors.push(format!("timed out after {timeout} s"));
    }
    Ok(merge(
        json!({
            "scenario": "burst",
            "ok": all_delivered && ordered && closed == 0 && clean && !timed_out,
            "members": n, "msgs_per_member": msgs, "size": size,
            "expected_deliveries": expected,
            "deliveries": tally.deliveries,
            "missing": expected - tally.deliveries.min(expected),
            "all_delivered": all_delivered,
            "members_complete": complete_members,
            "one_order": ordered,
            "disagreeing_pairs": pairs,
            "members_closed": closed,
            "close_codes": Value::Object(codes.iter().map(|(c, k)| (c.clone(), json!(k))).collect::<Map<_, _>>()),
            "closes": closes_text,
            "send_failed": send_failed.iter().filter(|&&f| f).count(),
            "sent_s": round(sent_s, 3),
            "drain_ms": opt(drain_s.map(|s| s * 1000.0), 1),
            "deliveries_per_s": opt(drain_s.map(|s| tally.deliveries as f64 / s), 0),
            "leaves_seen": tally.leaves,
            "presence_events": tally.presence,
            "rss_base_mib": rss_base.map(mib),
            "rss_peak_mib": pid.map(|_| mib(peak)),
            "rss_growth_mib": rss_base.map(|b| mib(peak.saturating_sub(b))),
            "server_cpu_pct": opt(server_cpu, 1),
            "client_cpu_pct": round(client_cpu, 1),
            "other_cpu_pct": round(other, 1),
        }),
        json!({
            "self_deliveries": tally.self_deliveries,
            "duplicates": tally.duplicates,
            "out_of_sender_order": tally.out_of_sender_order,
            "unknown_seq": tally.unknown_id,
            "bad_from": tally.bad_from,
            "bad_len": tally.bad_len,
            "malformed": tally.malformed,
            "other_events": tally.other,
            "errors": errors,
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_that_fit_one_order_pass() {
        // Three members, messages 0..6; each misses its own (0-1, 2-3, 4-5).
        let got = vec![vec![2, 4, 3, 5], vec![0, 4, 1, 5], vec![0, 2, 1, 3]];
        assert!(one_order(&got, 6));
        assert_eq!(disagreeing_pairs(&got, 6), 0);
    }

    #[test]
    fn two_members_swapping_two_messages_fail() {
        let got = vec![vec![2, 4], vec![4, 2], vec![]];
        assert!(!one_order(&got, 6));
        assert_eq!(disagreeing_pairs(&got, 6), 1);
    }

    #[test]
    fn a_cycle_no_pair_sees_is_still_caught() {
        // Pairwise each two members share one message, so no pair disagrees, but no single
        // order has 0 < 1, 1 < 2 and 2 < 0.
        let got = vec![vec![0, 1], vec![1, 2], vec![2, 0]];
        assert_eq!(disagreeing_pairs(&got, 3), 0);
        assert!(!one_order(&got, 3));
    }

    #[test]
    fn tally_checks_sender_duplicates_and_sender_order() {
        let mut t = Tally::new(2, 3, 16);
        let at = Instant::now();
        let msg = |seq, from| ChatEv::Msg { seq, from: Some(from), len: 16 };
        t.record(0, msg(4, 1), at); // m1's k=1
        t.record(0, msg(3, 1), at); // m1's k=0 after k=1
        t.record(0, msg(4, 1), at); // again
        t.record(0, msg(1, 0), at); // m0's own
        t.record(1, msg(0, 1), at); // m0's message claiming to be from m1
        assert_eq!((t.deliveries, t.out_of_sender_order, t.duplicates, t.self_deliveries, t.bad_from), (3, 1, 1, 1, 1));
        assert!(!t.complete());
        t.record(1, ChatEv::Close(Some(1008)), at);
        t.record(0, msg(5, 1), at);
        assert!(t.complete(), "m1 is closed and m0 has all three of m1's messages");
        assert_eq!(t.ended[1].as_deref(), Some("1008"));
    }
}
