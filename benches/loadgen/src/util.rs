//! Arguments, URLs (loopback only), /proc sampling, percentiles.

use std::collections::HashMap;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// `--key value` pairs (and bare `--flag`s) after the subcommand.
pub struct Args {
    map: HashMap<String, String>,
    pub tags: Vec<(String, String)>,
}

impl Args {
    pub fn parse(args: &[String]) -> Result<Args, String> {
        let mut map = HashMap::new();
        let mut tags = Vec::new();
        let mut i = 0;
        while i < args.len() {
            let a = &args[i];
            let Some(key) = a.strip_prefix("--") else {
                return Err(format!("unexpected argument {a:?}"));
            };
            let (key, value) = match key.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => {
                    if i + 1 < args.len() && !args[i + 1].starts_with("--") {
                        i += 1;
                        (key.to_string(), args[i].clone())
                    } else {
                        (key.to_string(), "true".to_string())
                    }
                }
            };
            if key == "tag" {
                let (k, v) = value.split_once('=').ok_or("--tag expects KEY=VALUE")?;
                tags.push((k.to_string(), v.to_string()));
            } else {
                map.insert(key, value);
            }
            i += 1;
        }
        Ok(Args { map, tags })
    }

    pub fn str(&self, key: &str) -> Option<&str> {
        self.map.get(key).map(String::as_str)
    }

    pub fn req(&self, key: &str) -> Result<&str, String> {
        self.str(key).ok_or_else(|| format!("--{key} is required"))
    }

    pub fn num<T: std::str::FromStr>(&self, key: &str, default: T) -> Result<T, String> {
        match self.map.get(key) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| format!("--{key}: bad number {v:?}")),
        }
    }
}

/// Target of a scenario: address plus path. Only loopback addresses are accepted: this
/// generator must never send load anywhere else.
pub struct Target {
    pub addr: SocketAddr,
    pub path: String,
    pub authority: String,
}

pub fn parse_url(url: &str) -> Result<Target, String> {
    let rest = url
        .strip_prefix("ws://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| format!("{url}: only ws:// and http:// URLs"))?;
    let (authority, path) = match rest.find('/') {
        Some(p) => (&rest[..p], &rest[p..]),
        None => (rest, "/"),
    };
    let addr = authority
        .to_socket_addrs()
        .map_err(|e| format!("{url}: {e}"))?
        .next()
        .ok_or_else(|| format!("{url}: no address"))?;
    if !addr.ip().is_loopback() {
        return Err(format!("{url}: refusing a non-loopback target {}", addr.ip()));
    }
    Ok(Target { addr, path: path.to_string(), authority: authority.to_string() })
}

// ------------------------------------------------------------------ /proc

pub fn clk_tck() -> f64 {
    // SAFETY-free: sysconf is a plain libc call.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// VmRSS of a process in KiB.
pub fn rss_kib(pid: u32) -> io::Result<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    for line in s.lines() {
        if let Some(v) = line.strip_prefix("VmRSS:") {
            return v
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "VmRSS"));
        }
    }
    Err(io::Error::new(io::ErrorKind::InvalidData, "no VmRSS"))
}

/// utime+stime of a process (all its threads) in seconds.
pub fn cpu_secs(pid: u32) -> io::Result<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after = &s[s.rfind(')').ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "stat"))? + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    // after the comm: field 3 is state (index 0); utime is field 14 (index 11), stime 15.
    let ut: f64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    let st: f64 = f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    Ok((ut + st) / clk_tck())
}

/// CPU seconds used by this process so far.
pub fn self_cpu_secs() -> f64 {
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// CPU seconds used by this process's waited-for children (wrk).
pub fn children_cpu_secs() -> f64 {
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Samples a process's RSS every 20 ms in a thread; `stop` returns the peak in KiB.
pub struct RssSampler {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    handle: Option<JoinHandle<()>>,
}

impl RssSampler {
    pub fn start(pid: Option<u32>) -> RssSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(0));
        let handle = pid.map(|pid| {
            let (stop, peak) = (stop.clone(), peak.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Ok(r) = rss_kib(pid) {
                        peak.fetch_max(r, Ordering::Relaxed);
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
        });
        RssSampler { stop, peak, handle }
    }

    pub fn peak_kib(&self) -> u64 {
        self.peak.load(Ordering::Relaxed)
    }

    pub fn stop(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
        self.peak.load(Ordering::Relaxed)
    }
}

/// CPU seconds all cores spent busy in user, nice, system, irq and steal time, from
/// /proc/stat. Softirq is left out: on loopback it is mostly our own packets' processing.
pub fn machine_busy_secs() -> f64 {
    let s = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let line = s.lines().find(|l| l.starts_with("cpu ")).unwrap_or("");
    let f: Vec<f64> = line.split_whitespace().skip(1).filter_map(|v| v.parse().ok()).collect();
    let g = |i: usize| f.get(i).copied().unwrap_or(0.0);
    // user nice system idle iowait irq softirq steal
    (g(0) + g(1) + g(2) + g(5) + g(7)) / clk_tck()
}

/// Server and client CPU over a measured window, and what everything else used.
pub struct CpuWindow {
    /// The server's processes (several for a cluster: its nodes and Redis), counted together.
    pids: Vec<u32>,
    t0: Instant,
    server0: f64,
    client0: f64,
    children0: f64,
    machine0: f64,
}

/// The CPU seconds of `pids` added up; `None` without any.
fn servers_cpu_secs(pids: &[u32]) -> Option<f64> {
    (!pids.is_empty()).then(|| pids.iter().filter_map(|&p| cpu_secs(p).ok()).sum())
}

impl CpuWindow {
    pub fn start(pid: Option<u32>) -> CpuWindow {
        CpuWindow::start_many(pid.into_iter().collect())
    }

    /// A window over several server processes, whose CPU is added up.
    pub fn start_many(pids: Vec<u32>) -> CpuWindow {
        CpuWindow {
            server0: servers_cpu_secs(&pids).unwrap_or(0.0),
            pids,
            t0: Instant::now(),
            client0: self_cpu_secs(),
            children0: children_cpu_secs(),
            machine0: machine_busy_secs(),
        }
    }

    /// CPU (% of one core) used during the window by processes other than the server, this
    /// generator and its children: a build or a test suite running beside the benchmark.
    pub fn other_pct(&self) -> f64 {
        let wall = self.t0.elapsed().as_secs_f64().max(1e-9);
        let server = servers_cpu_secs(&self.pids).map(|s| s - self.server0).unwrap_or(0.0);
        let ours = (self_cpu_secs() - self.client0) + (children_cpu_secs() - self.children0);
        ((machine_busy_secs() - self.machine0 - server - ours) / wall * 100.0).max(0.0)
    }
    /// (server CPU % of one core, client CPU %), over the wall time since start.
    pub fn end(&self) -> (Option<f64>, f64) {
        self.end_over(self.t0.elapsed())
    }

    /// Like `end`, but the CPU used so far is divided by `active` (the part of the window in
    /// which anything happened, when a scenario ends by waiting for a quiet spell).
    pub fn end_over(&self, active: Duration) -> (Option<f64>, f64) {
        let wall = active.as_secs_f64().max(1e-9);
        let server = servers_cpu_secs(&self.pids).map(|s| (s - self.server0) / wall * 100.0);
        (server, (self_cpu_secs() - self.client0) / wall * 100.0)
    }
}

// ------------------------------------------------------------- statistics

/// Nearest-rank percentile of sorted nanosecond samples, in microseconds.
pub fn pct_us(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1] as f64 / 1000.0
}

pub fn round(v: f64, digits: i32) -> f64 {
    let m = 10f64.powi(digits);
    (v * m).round() / m
}
