//! The server: listening, accepting, one thread per connection, routing, heartbeats and
//! shutdown.

use crate::config::Config;
use crate::handshake;
use crate::http::{self, HttpError, Request, Response};
use crate::inspect;
use crate::log;
use crate::outbox::{Outbox, QueueLimits, Transport, WriterPool};
use crate::room::Room;
use crate::session::{self, Endpoint, SessionConfig};
use crate::static_files::{self, Site};
use crate::sync::lock;
use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

/// How long open WebSockets get to finish their closing handshake at shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// A connection being served: its socket, and its outbox once upgraded.
struct Live {
    stream: Arc<TcpStream>,
    outbox: Option<Arc<Outbox>>,
}

/// State shared by every connection thread.
struct Shared {
    config: Config,
    site: Site,
    room: Arc<Room>,
    pool: Arc<WriterPool>,
    live: Mutex<HashMap<u64, Live>>,
    /// Signalled when `live` shrinks and when shutdown starts.
    changed: Condvar,
    next_id: AtomicU64,
    stopping: AtomicBool,
}

/// A bound server, ready to [`run`](Server::run).
pub struct Server {
    listener: TcpListener,
    shared: Arc<Shared>,
}

/// Stops a running server from another thread (a signal handler, a test).
#[derive(Clone)]
pub struct ShutdownHandle {
    shared: Arc<Shared>,
    addr: SocketAddr,
}

impl Server {
    /// Binds the listening socket and prepares the site. Fails when the address cannot be
    /// bound or `--root` is not a directory.
    pub fn bind(config: Config) -> io::Result<Server> {
        let site = match &config.root {
            Some(root) => Site::directory(root).map_err(|e| {
                io::Error::new(e.kind(), format!("cannot serve {}: {e}", root.display()))
            })?,
            None => Site::embedded(),
        };
        let addrs: Vec<SocketAddr> = config.addr.to_socket_addrs()?.collect();
        let listener = TcpListener::bind(&addrs[..])?;
        let shared = Arc::new(Shared {
            room: Room::new(config.history),
            pool: WriterPool::new(Duration::from_secs(10)),
            site,
            config,
            live: Mutex::new(HashMap::new()),
            changed: Condvar::new(),
            next_id: AtomicU64::new(0),
            stopping: AtomicBool::new(false),
        });
        Ok(Server { listener, shared })
    }

    /// The bound address (with the real port when 0 was asked for).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// A handle that stops this server.
    pub fn shutdown_handle(&self) -> io::Result<ShutdownHandle> {
        Ok(ShutdownHandle {
            shared: Arc::clone(&self.shared),
            addr: self.local_addr()?,
        })
    }

    /// Accepts connections until shut down, then closes every WebSocket with 1001, waits a
    /// few seconds for their closing handshakes, and returns.
    pub fn run(self) -> io::Result<()> {
        let heartbeat = start_heartbeat(&self.shared);
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
        if let Some(heartbeat) = heartbeat {
            let _ = heartbeat.join();
        }
        Ok(())
    }
}

impl ShutdownHandle {
    /// Starts a graceful shutdown; [`Server::run`] returns once it is done.
    pub fn shutdown(&self) {
        if self.shared.stopping.swap(true, Ordering::SeqCst) {
            return;
        }
        log!("shutting down");
        self.shared.changed.notify_all();
        // The accept loop is blocked in accept(): a connection of our own wakes it.
        let mut wake = self.addr;
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

fn is_out_of_descriptors(e: &io::Error) -> bool {
    // EMFILE (process) and ENFILE (system) on Linux.
    matches!(e.raw_os_error(), Some(23 | 24))
}

/// Answers 503 and closes, without a thread: used past the connection cap and when a thread
/// cannot be had.
fn refuse(stream: TcpStream, why: &str) {
    let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
    // Read what has already arrived, so that closing does not reset the connection (and
    // discard our reply) because of unread request bytes.
    if stream.set_nonblocking(true).is_ok() {
        let mut scratch = [0u8; 4096];
        let _ = Transport::read(&stream, &mut scratch);
        let _ = stream.set_nonblocking(false);
    }
    let reply = Response::error(503, why).header("Retry-After", "5");
    let _ = reply.write_to(&stream, false);
    let _ = stream.shutdown(Shutdown::Write);
}

fn accept(shared: &Arc<Shared>, stream: TcpStream) {
    let peer = match stream.peer_addr() {
        Ok(peer) => peer,
        Err(_) => return, // already gone
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
            let shared = thread_shared;
            let result =
                panic::catch_unwind(AssertUnwindSafe(|| serve(&shared, id, &stream, peer)));
            if result.is_err() {
                log!("{peer} connection thread panicked; the connection is dropped");
                let _ = stream.shutdown(Shutdown::Both);
            }
            forget(&shared, id);
        });
    if let Err(e) = spawned {
        log!("{peer} refused: cannot start a thread ({e})");
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

/// Which handler a path goes to.
fn websocket_endpoint(request: &Request) -> Option<Endpoint> {
    match request.path() {
        "/chat" => Some(Endpoint::Chat),
        "/echo" => Some(Endpoint::Echo),
        inspect::SOCKET => Some(Endpoint::Inspect),
        _ => None,
    }
}

/// Serves one connection: HTTP requests (keep-alive) until it closes or upgrades.
fn serve(shared: &Arc<Shared>, id: u64, stream: &Arc<TcpStream>, peer: SocketAddr) {
    let config = &shared.config;
    let _ = stream.set_nodelay(true);
    let _ = stream.set_write_timeout(Some(config.write_timeout));
    let mut buf = Vec::new();
    let mut read_timeout = None;
    let mut served = 0;
    while !shared.stopping.load(Ordering::SeqCst) {
        // The first request gets the full head timeout; later ones on a kept-alive connection
        // get the (shorter) idle timeout.
        let wait = if served == 0 {
            config.head_timeout
        } else {
            config.keep_alive_timeout
        };
        let deadline = Instant::now() + wait;
        let (request, head_len) =
            match http::read_request(stream, &mut buf, deadline, &mut read_timeout) {
                Ok(parsed) => parsed,
                Err(HttpError::Closed) => return,
                Err(HttpError::Timeout) if served > 0 && buf.is_empty() => return,
                Err(error) => {
                    if let Some(reply) = error.response() {
                        log!("{peer} - - {} ({error:?})", reply.status);
                        let _ = reply.write_to(stream, false);
                    }
                    return;
                }
            };
        served += 1;
        if let Some(endpoint) = websocket_endpoint(&request) {
            upgrade(
                shared,
                id,
                stream,
                peer,
                request,
                buf.split_off(head_len),
                buf,
                endpoint,
            );
            return;
        }
        buf.drain(..head_len);
        let mut reply = static_reply(shared, &request);
        let last = request.wants_close() || served >= config.max_requests_per_connection;
        if last && !reply.closes_connection() {
            reply = reply.header("Connection", "close");
        }
        let closing = reply.closes_connection();
        log!(
            "{peer} {} {} {}",
            request.method,
            request.target,
            reply.status
        );
        if reply.write_to(stream, request.method == "HEAD").is_err() || closing {
            return;
        }
    }
}

fn static_reply(shared: &Shared, request: &Request) -> Response {
    if request.announces_body() {
        return Response::error(400, "request bodies are not accepted");
    }
    match request.method.as_str() {
        "GET" | "HEAD" => {
            inspect::page(request).unwrap_or_else(|| static_files::respond(&shared.site, request))
        }
        _ => Response::error(405, "only GET and HEAD are served").header("Allow", "GET, HEAD"),
    }
}

/// Checks an upgrade request, answers it, and runs the WebSocket session.
#[allow(clippy::too_many_arguments)] // each argument is a distinct piece of the connection
fn upgrade(
    shared: &Arc<Shared>,
    id: u64,
    stream: &Arc<TcpStream>,
    peer: SocketAddr,
    request: Request,
    leftover: Vec<u8>,
    head: Vec<u8>,
    endpoint: Endpoint,
) {
    let config = &shared.config;
    if config.trace_handshake {
        log!(
            "{peer} upgrade request:\n{}",
            String::from_utf8_lossy(&head).trim_end()
        );
    }
    // The head is not needed past this point (but by the inspector, which shows it); a long
    // session should not keep it.
    let head = (endpoint == Endpoint::Inspect).then_some(head);
    let reply = match handshake::check_upgrade(&request, &config.allowed_origins) {
        Ok(accept) => handshake::switching_protocols(&accept),
        Err(rejection) => {
            let reply = rejection.response();
            if config.trace_handshake {
                log!("{peer} upgrade reply:\n{}", reply.head().trim_end());
            }
            log!(
                "{peer} {} {} {} ({})",
                request.method,
                request.target,
                reply.status,
                rejection.reason()
            );
            let _ = reply.write_to(stream, false);
            return;
        }
    };
    if config.trace_handshake {
        log!("{peer} upgrade reply:\n{}", reply.head().trim_end());
    }
    // Nor is the request: its header strings would stay allocated for the whole session.
    drop(request);
    let tap = head.map(|head| {
        let reply = reply.head();
        let inner: Arc<dyn Transport> = stream.clone();
        inspect::Tap::new(inner, &head, &reply, &config.allowed_origins, &leftover)
    });
    if reply.write_to(stream, false).is_err() {
        return;
    }
    let limits = QueueLimits {
        messages: config.queue_messages,
        bytes: config.queue_bytes,
    };
    let transport: Arc<dyn Transport> = match &tap {
        Some(tap) => tap.clone(),
        None => stream.clone(),
    };
    let outbox = Arc::new(Outbox::new(
        transport,
        peer,
        limits,
        Arc::clone(&shared.pool),
    ));
    if let Some(tap) = &tap {
        tap.attach(&outbox);
    }
    // A peer that sends nothing for three heartbeats is gone even if the heartbeat thread is
    // busy; with heartbeats off, the read simply waits.
    let idle_limit = (!config.ping_interval.is_zero()).then(|| config.ping_interval * 3);
    let _ = stream.set_read_timeout(idle_limit);
    if let Some(live) = lock(&shared.live).get_mut(&id) {
        live.outbox = Some(Arc::clone(&outbox));
    }
    if shared.stopping.load(Ordering::SeqCst) {
        outbox.close(1001, "server shutting down");
    }
    let session_config = SessionConfig {
        max_message: match endpoint {
            Endpoint::Chat => config.max_chat_message,
            Endpoint::Echo | Endpoint::Inspect => config.max_echo_message,
        },
        rate_limit: config.rate_limit,
    };
    let started = Instant::now();
    let outcome = session::run(&outbox, leftover, endpoint, &session_config, &shared.room);
    log!(
        "{peer} GET {} 101 closed {} ({}) after {:.1}s",
        endpoint.path(),
        outcome.code,
        outcome.reason,
        started.elapsed().as_secs_f64()
    );
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
                    outbox.close(1008, "no answer to ping");
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
    let live = lock(&shared.live);
    for conn in live.values() {
        match &conn.outbox {
            Some(outbox) => outbox.close(1001, "server shutting down"),
            None => {
                let _ = conn.stream.shutdown(Shutdown::Both);
            }
        }
    }
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
