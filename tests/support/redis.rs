//! A real `redis-server` (Debian's package) for the tests of `--redis`: each test its own, on a
//! free loopback port, its files in a temp dir, stopped and restarted as a test needs.

use super::TempDir;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The `redis-server` binary, or `None` when it is not installed. Under CI (`CI` set) a
/// missing server is a failure: `scripts/test` installs it.
pub fn redis_server() -> Option<&'static str> {
    let found = Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if found {
        return Some("redis-server");
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "redis-server is not installed (apt-get install redis-server; scripts/test does it)"
    );
    // Written past the test harness's capture, so a skip shows in a passing run's output.
    let _ = std::io::Write::write_all(
        &mut std::io::stderr(),
        b"SKIPPED: redis-server is not installed (apt-get install redis-server)\n",
    );
    None
}

/// A running `redis-server`.
pub struct Redis {
    pub port: u16,
    dir: TempDir,
    child: Option<Child>,
    /// Keeps its data in an append-only file synced at every write, so a SIGKILL loses nothing
    /// it acknowledged.
    durable: bool,
}

/// How a test stops Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    Term,
    Kill,
}

impl Redis {
    /// Starts one, or `None` when redis-server is missing outside CI (the test is skipped).
    /// `durable`: an append-only file synced at every write.
    pub fn start(durable: bool) -> Option<Redis> {
        redis_server()?;
        let mut redis = Redis {
            port: 0,
            dir: TempDir::new("redis"),
            child: None,
            durable,
        };
        for _ in 0..20 {
            redis.port = free_port();
            if redis.launch() {
                return Some(redis);
            }
        }
        panic!("redis-server could not listen on any of 20 free ports");
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts redis-server on `self.port` with its files in `self.dir`; false when the port was
    /// taken meanwhile. Ready once it says so on its log.
    fn launch(&mut self) -> bool {
        let mut args: Vec<String> = vec![
            "--port".into(),
            self.port.to_string(),
            "--bind".into(),
            "127.0.0.1".into(),
            "--dir".into(),
            self.dir.0.display().to_string(),
            "--save".into(),
            String::new(),
            "--daemonize".into(),
            "no".into(),
            "--logfile".into(),
            String::new(),
        ];
        if self.durable {
            args.extend(["--appendonly", "yes", "--appendfsync", "always"].map(String::from));
        }
        let mut child = Command::new("redis-server")
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let mut ready = false;
        for line in lines.by_ref() {
            let Ok(line) = line else { break };
            if line.contains("Ready to accept connections") {
                ready = true;
                break;
            }
        }
        // Keep reading its log so it never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        if !ready {
            let _ = child.kill();
            let _ = child.wait();
            return false;
        }
        self.child = Some(child);
        true
    }

    /// Stops it with SIGTERM (it exits cleanly, writing nothing: saving is off) or SIGKILL.
    pub fn stop(&mut self, how: Stop) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        match how {
            Stop::Kill => {
                let _ = child.kill();
            }
            Stop::Term => {
                let _ = Command::new("kill")
                    .args(["-TERM", &child.id().to_string()])
                    .status();
            }
        }
        let _ = child.wait();
    }

    /// Starts it again on the same port, with its files (`keep_data`) or from an empty dir.
    pub fn restart(&mut self, keep_data: bool) {
        if !keep_data {
            self.dir = TempDir::new("redis");
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.launch() {
            assert!(Instant::now() < deadline, "redis-server did not restart");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop(Stop::Kill);
    }
}

/// A port free right now on 127.0.0.1.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}
