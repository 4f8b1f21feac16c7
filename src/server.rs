//! The server: listening, accepting, one thread per connection (served by
//! [`crate::connection`]), heartbeats and shutdown.

use crate::client_addr;
use crate::config::Config;
use crate::connection::{Connection, SHUTTING_DOWN};
use crate::frame::CloseCode;
use crate::history::{self, DataDir, Store};
use crate::http::Response;
use crate::log;
use crate::metrics::{self, Metrics, Refusal};
use crate::outbox::{Outbox, QueueLimits, When, Writers};
use crate::per_ip::PerIpLimit;
use crate::rooms::Rooms;
use crate::static_files::Site;
use crate::sync::lock;
use crate::transport::Transport;
use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread;
use std::time::Duration;

/// How long open WebSockets get to finish their closing handshake at shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// How long a connection waits for the peer to close after our close frame is written.
const CLOSE_LINGER: Duration = Duration::from_secs(2);

/// A connection being served: its socket, and its outbox once upgraded.
pub struct Live {
    stream: Arc<TcpStream>,
    /// Set by the connection once it has upgraded.
    pub outbox: Option<Arc<Outbox>>,
}

/// State shared by every connection thread.
pub struct Shared {
    /// The settings.
    pub config: Config,
    /// What static files are served from.
    pub site: Site,
    /// The chat rooms.
    pub rooms: Arc<Rooms>,
    /// What every connection's outbox shares.
    pub writers: Arc<Writers>,
    /// Every connection being served, by id.
    pub live: Mutex<HashMap<u64, Live>>,
    /// Connections per client address (`--max-connections-per-ip`).
    pub per_ip: Arc<PerIpLimit>,
    /// What the server has done, for `--metrics-addr`.
    pub metrics: Arc<Metrics>,
    /// Signalled when `live` shrinks and when shutdown starts.
    changed: Condvar,
    next_id: AtomicU64,
    /// Set once shutdown has started.
    pub stopping: AtomicBool,
}

/// A bound server, ready to [`run`](Server::run).
pub struct Server {
    listener: TcpListener,
    /// The `--metrics-addr` listener, when asked for.
    metrics_listener: Option<TcpListener>,
    shared: Arc<Shared>,
}

/// Stops a running server from another thread (a signal handler, a test).
#[derive(Clone)]
pub struct ShutdownHandle {
    shared: Arc<Shared>,
    addr: SocketAddr,
    metrics_addr: Option<SocketAddr>,
}

impl Server {
    /// Binds the listening socket (and the metrics one, if asked for) and prepares the site.
    /// Fails when an address cannot be bound or `--root` is not a directory.
    pub fn bind(config: Config) -> io::Result<Server> {
        let site = match &config.root {
            Some(root) => Site::directory(root).map_err(|e| {
                io::Error::new(e.kind(), format!("cannot serve {}: {e}", root.display()))
            })?,
            None => Site::embedded(),
        };
        let cannot_listen = |e: io::Error| {
            io::Error::new(e.kind(), format!("cannot listen on {}: {e}", config.addr))
        };
        let addrs: Vec<SocketAddr> = config
            .addr
            .to_socket_addrs()
            .map_err(cannot_listen)?
            .collect();
        let listener = TcpListener::bind(&addrs[..]).map_err(cannot_listen)?;
        let metrics_listener = match &config.metrics_addr {
            Some(addr) => Some(bind_metrics(addr)?),
            None => None,
        };
        let rooms = open_rooms(&config)?;
        let metrics = Arc::new(Metrics::new());
        let limits = QueueLimits {
            bytes: config.queue_bytes,
            messages: (config.queue_messages > 0).then_some(config.queue_messages),
        };
        let shared = Arc::new(Shared {
            rooms: Arc::new(rooms),
            writers: Writers::with_metrics(limits, CLOSE_LINGER, Arc::clone(&metrics)),
            metrics,
            site,
            per_ip: PerIpLimit::new(config.max_connections_per_ip),
            config,
            live: Mutex::new(HashMap::new()),
            changed: Condvar::new(),
            next_id: AtomicU64::new(0),
            stopping: AtomicBool::new(false),
        });
        Ok(Server {
            listener,
            metrics_listener,
            shared,
        })
    }

    /// The bound address (with the real port when 0 was asked for).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The address metrics are served at; `None` without `--metrics-addr`.
    pub fn metrics_addr(&self) -> io::Result<Option<SocketAddr>> {
        self.metrics_listener
            .as_ref()
            .map(TcpListener::local_addr)
            .transpose()
    }

    /// A handle that stops this server.
    pub fn shutdown_handle(&self) -> io::Result<ShutdownHandle> {
        Ok(ShutdownHandle {
            shared: Arc::clone(&self.shared),
            addr: self.local_addr()?,
            metrics_addr: self.metrics_addr()?,
        })
    }

    /// Accepts connections until shut down, then closes every WebSocket with 1001, waits a
    /// few seconds for their closing handshakes, and returns.
    pub fn run(self) -> io::Result<()> {
        let heartbeat = start_heartbeat(&self.shared);
        let metrics = self.metrics_listener.and_then(|listener| {
            metrics::endpoint::start(Arc::clone(&self.shared), listener)
                .map_err(|e| log!("cannot start the metrics thread: {e}"))
                .ok()
        });
        // One spare descriptor: when the process runs out (EMFILE), it is freed to accept and
        // refuse the waiting connection instead of spinning on an accept that keeps failing.
        let mut spare = File::open("/dev/null").ok();
        for incoming in self.listener.incoming() {
            if self.shared.stopping.load(Ordering::SeqCst) {
                break;
            }
            match incoming {
                Ok(stream) => accept(&self.shared, stream),
                Err(e) if is_out_of_descriptors(&e) => {
                    log!("accept failed ({e}): refusing a connection");
                    spare.take();
                    if let Ok((stream, _)) = self.listener.accept() {
                        self.shared.metrics.connection_accepted();
                        self.shared.metrics.refused(Refusal::OutOfDescriptors);
                        refuse(stream, "out of file descriptors");
                    }
                    spare = File::open("/dev/null").ok();
                    if spare.is_none() {
                        // Still nothing free: wait for connections to end rather than spin.
                        thread::sleep(Duration::from_millis(50));
                    }
                }
                Err(e) => log!("accept failed: {e}"),
            }
        }
        drop(self.listener);
        close_everything(&self.shared);
        self.shared.rooms.close();
        for thread in [heartbeat, metrics].into_iter().flatten() {
            let _ = thread.join();
        }
        Ok(())
    }
}

/// The rooms, with their history: in Redis with `--redis`, in memory with `--ephemeral`, else
/// opened from the data directory, which is created and locked first. Says on stderr where
/// history lives.
fn open_rooms(config: &Config) -> io::Result<Rooms> {
    if config.redis.is_some() {
        let cluster = crate::cluster::start(config)?;
        return Ok(Rooms::shared(config.max_rooms, config.history, cluster));
    }
    if config.ephemeral {
        log!("history kept in memory only (--ephemeral)");
        return Ok(Rooms::new(config.max_rooms, config.history));
    }
    let dir = history::dir::choose(config.data.as_deref())
        .map_err(|why| io::Error::new(io::ErrorKind::NotFound, why))?;
    let store = Store {
        dir: DataDir::open(&dir)?,
        keep: config.history_keep,
        fsync: config.fsync,
    };
    let (rooms, notes) = Rooms::open(config.max_rooms, config.history, store)?;
    for note in notes {
        log!("{note}");
    }
    log!(
        "history kept in {} ({} rooms; each message {})",
        dir.display(),
        rooms.count(),
        match config.fsync {
            true => "synced to the disk before delivery (--fsync)",
            false => "written before delivery",
        }
    );
    Ok(rooms)
}

impl ShutdownHandle {
    /// Starts a graceful shutdown; [`Server::run`] returns once it is done.
    pub fn shutdown(&self) {
        if self.shared.stopping.swap(true, Ordering::SeqCst) {
            return;
        }
        log!("shutting down");
        self.shared.changed.notify_all();
        // The accept loops are blocked in accept(): a connection of our own wakes each.
        for mut wake in [Some(self.addr), self.metrics_addr].into_iter().flatten() {
            if wake.ip().is_unspecified() {
                wake.set_ip(if wake.is_ipv4() {
                    [127, 0, 0, 1].into()
                } else {
                    std::net::Ipv6Addr::LOCALHOST.into()
                });
            }
            let _ = TcpStream::connect_timeout(&wake, Duration::from_secs(1));
        }
    }
}

/// Binds the `--metrics-addr` listener; the error names the flag.
fn bind_metrics(addr: &str) -> io::Result<TcpListener> {
    let named = |e: io::Error| {
        io::Error::new(
            e.kind(),
            format!("cannot listen on {addr} (--metrics-addr): {e}"),
        )
    };
    let addrs: Vec<SocketAddr> = addr.to_socket_addrs().map_err(named)?.collect();
    TcpListener::bind(&addrs[..]).map_err(named)
}

/// The process (`EMFILE`) or the whole system (`ENFILE`) has no file descriptor left.
fn is_out_of_descriptors(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
}

/// Answers 503 and closes, without a thread: used past the connection cap and when a thread
/// cannot be had.
fn refuse(stream: TcpStream, why: &str) {
    refuse_with(stream, Response::error(503, why).header("Retry-After", "5"));
}

/// Answers `reply` and closes, without a thread.
fn refuse_with(stream: TcpStream, reply: Response) {
    let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
    // Read what has already arrived, so that closing does not reset the connection (and
    // discard our reply) because of unread request bytes.
    if stream.set_nonblocking(true).is_ok() {
        let mut scratch = [0u8; 4096];
        let _ = Transport::read(&stream, &mut scratch);
        let _ = stream.set_nonblocking(false);
    }
    let _ = reply.write_to(&stream, false);
    let _ = stream.shutdown(Shutdown::Write);
}

fn accept(shared: &Arc<Shared>, stream: TcpStream) {
    shared.metrics.connection_accepted();
    let peer = match stream.peer_addr() {
        Ok(peer) => peer,
        Err(_) => return, // already gone
    };
    // A direct client is counted for the life of its connection; a trusted proxy's connection
    // carries many clients, each counted per request once its head names it (in `connection`).
    let ip_slot = if client_addr::is_trusted(peer.ip(), &shared.config.trusted_proxies) {
        None
    } else {
        match shared.per_ip.acquire(peer.ip()) {
            Some(slot) => Some(slot),
            None => {
                log!(
                    "{peer} refused: {} connections open from this address (--max-connections-per-ip)",
                    shared.per_ip.max()
                );
                shared.metrics.refused(Refusal::MaxConnectionsPerIp);
                refuse_with(stream, shared.per_ip.refusal());
                return;
            }
        }
    };
    let stream = Arc::new(stream);
    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
    {
        let mut live = lock(&shared.live);
        if live.len() >= shared.config.max_connections {
            drop(live);
            log!(
                "{peer} refused: {} connections open (--max-connections)",
                shared.config.max_connections
            );
            shared.metrics.refused(Refusal::MaxConnections);
            if let Ok(stream) = Arc::try_unwrap(stream) {
                refuse(stream, "server busy: too many connections");
            }
            return;
        }
        live.insert(
            id,
            Live {
                stream: Arc::clone(&stream),
                outbox: None,
            },
        );
    }
    let thread_shared = Arc::clone(shared);
    let spawned = thread::Builder::new()
        .stack_size(shared.config.connection_stack)
        .spawn(move || {
            let _ip_slot = ip_slot;
            let shared = thread_shared;
            let connection = Connection {
                shared: &shared,
                id,
                stream: &stream,
                peer,
            };
            let result = panic::catch_unwind(AssertUnwindSafe(|| connection.serve()));
            if result.is_err() {
                log!("{peer} connection thread panicked; the connection is dropped");
                let _ = stream.shutdown(Shutdown::Both);
            }
            forget(&shared, id);
        });
    if let Err(e) = spawned {
        log!("{peer} refused: cannot start a thread ({e})");
        shared.metrics.refused(Refusal::NoThread);
        if let Some(live) = lock(&shared.live).remove(&id) {
            if let Ok(stream) = Arc::try_unwrap(live.stream) {
                refuse(stream, "server busy: cannot start a thread");
            }
        }
    }
}

fn forget(shared: &Shared, id: u64) {
    lock(&shared.live).remove(&id);
    shared.changed.notify_all();
}

/// Pings every WebSocket each interval and drops the ones that stayed silent since the last
/// ping. One thread for all connections, waking once per interval: idle connections cost no
/// CPU.
fn start_heartbeat(shared: &Arc<Shared>) -> Option<thread::JoinHandle<()>> {
    let interval = shared.config.ping_interval;
    if interval.is_zero() {
        return None;
    }
    let shared = Arc::clone(shared);
    thread::Builder::new()
        .name("heartbeat".into())
        .spawn(move || loop {
            let live = lock(&shared.live);
            let (live, _) = shared
                .changed
                .wait_timeout_while(live, interval, |_| !shared.stopping.load(Ordering::SeqCst))
                .unwrap_or_else(PoisonError::into_inner);
            if shared.stopping.load(Ordering::SeqCst) {
                return;
            }
            let outboxes: Vec<Arc<Outbox>> =
                live.values().filter_map(|l| l.outbox.clone()).collect();
            drop(live);
            for outbox in outboxes {
                if !outbox.heartbeat() {
                    log!(
                        "{} sent nothing since the last ping: dropping it",
                        outbox.peer()
                    );
                    outbox
                        .close(CloseCode::Policy, "no answer to ping", When::Now)
                        .write();
                    outbox.kill();
                }
            }
        })
        .map_err(|e| log!("cannot start the heartbeat thread: {e}"))
        .ok()
}

/// Shutdown: 1001 to every WebSocket, plain close for HTTP connections, then a short grace
/// period for closing handshakes before the rest are cut.
fn close_everything(shared: &Shared) {
    // Collected first: writing and shutting sockets happens with the table unlocked, since
    // every ending connection needs it to leave.
    let (upgraded, plain): (Vec<_>, Vec<_>) = lock(&shared.live)
        .values()
        .map(|conn| (conn.outbox.clone(), Arc::clone(&conn.stream)))
        .partition(|(outbox, _)| outbox.is_some());
    for outbox in upgraded.into_iter().filter_map(|(outbox, _)| outbox) {
        outbox
            .close(SHUTTING_DOWN.0, SHUTTING_DOWN.1, When::Now)
            .write();
    }
    for (_, stream) in plain {
        let _ = stream.shutdown(Shutdown::Both);
    }
    let live = lock(&shared.live);
    let (live, _) = shared
        .changed
        .wait_timeout_while(live, SHUTDOWN_GRACE, |live| !live.is_empty())
        .unwrap_or_else(PoisonError::into_inner);
    for conn in live.values() {
        let _ = conn.stream.shutdown(Shutdown::Both);
    }
    let _ = shared
        .changed
        .wait_timeout_while(live, Duration::from_secs(1), |live| !live.is_empty());
}
