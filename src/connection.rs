//! One accepted connection: HTTP requests on a kept-alive connection until it closes or
//! upgrades, then the WebSocket session.

use crate::client_addr::{Client, Forwarding};
use crate::handshake;
use crate::health;
use crate::http::{self, HttpError, Request, Response};
use crate::inspect;
use crate::log;
use crate::metrics::{HandshakeFailure, Refusal};
use crate::outbox::Outbox;
use crate::per_ip::IpSlot;
use crate::rooms;
use crate::server::Shared;
use crate::session::{self, Endpoint, SessionConfig};
use crate::static_files;
use crate::sync::lock;
use crate::transport::Transport;
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

/// One connection being served, and the server it belongs to.
pub struct Connection<'a> {
    /// The server's shared state.
    pub shared: &'a Arc<Shared>,
    /// Its key in the server's table of live connections.
    pub id: u64,
    /// The socket.
    pub stream: &'a Arc<TcpStream>,
    /// The peer's address.
    pub peer: SocketAddr,
}

/// Which WebSocket endpoint a path names, if any; a refusal for a path under `/chat/` that
/// names no room.
fn websocket_endpoint(request: &Request) -> Option<Result<Endpoint, Response>> {
    let path = request.path();
    if path == "/echo" {
        return Some(Ok(Endpoint::Echo));
    }
    if path == inspect::SOCKET {
        return Some(Ok(Endpoint::Inspect));
    }
    let room = rooms::room_for_path(path)?;
    Some(
        room.map(Endpoint::Chat)
            .map_err(|bad| Response::error(404, &bad.reason())),
    )
}

/// A connection that has switched to WebSocket: what its session needs.
struct Upgraded {
    outbox: Arc<Outbox>,
    /// Bytes that followed the request head: the start of the first frame.
    leftover: Vec<u8>,
    endpoint: Endpoint,
    client: Client,
    path: String,
    /// A proxied client's place in its address's count, held until the session ends.
    ip_slot: Option<IpSlot>,
}

impl Connection<'_> {
    /// Serves HTTP requests (keep-alive) until the connection closes or upgrades, then the
    /// WebSocket session.
    pub fn serve(&self) {
        if let Some(upgraded) = self.serve_http() {
            self.run_session(upgraded);
        }
    }

    /// Serves HTTP requests until the connection closes (`None`) or upgrades.
    ///
    /// Never inlined, so that its frame (a request, its reply, the health report) is popped
    /// before the session starts: a session idling for hours then touches two stack pages
    /// instead of three, 11 KiB per idle connection instead of 15.
    #[inline(never)]
    fn serve_http(&self) -> Option<Upgraded> {
        let config = &self.shared.config;
        let stream = self.stream;
        let _ = stream.set_nodelay(true);
        let _ = stream.set_write_timeout(Some(config.write_timeout));
        let mut buf = Vec::new();
        let mut read_timeout = None;
        let mut served = 0;
        let mut forwarding = Forwarding::new(self.peer, &config.trusted_proxies);
        while !self.shared.stopping.load(Ordering::SeqCst) {
            // The first request gets the full head timeout; later ones on a kept-alive
            // connection get the (shorter) idle timeout.
            let wait = match served {
                0 => config.head_timeout,
                _ => config.keep_alive_timeout,
            };
            let deadline = Instant::now() + wait;
            let (request, head_len) =
                match http::read_request(stream, &mut buf, deadline, &mut read_timeout) {
                    Ok(parsed) => parsed,
                    Err(HttpError::Closed) => return None,
                    Err(HttpError::Timeout) if served > 0 && buf.is_empty() => return None,
                    Err(error) => {
                        if let Some(failure) = HandshakeFailure::of_http(&error) {
                            self.shared.metrics.handshake_failed(failure);
                        }
                        if let Some(reply) = error.response() {
                            log!("{} - - {} ({error:?})", self.peer, reply.status);
                            let _ = reply.write_to(stream, false);
                        }
                        return None;
                    }
                };
            served += 1;
            let client = forwarding.client(&request);
            // A proxied client is counted while this request (or its WebSocket) is served; a
            // direct one for its whole connection (`server::accept`).
            let ip_slot = match forwarding.peer_is_trusted() {
                false => None,
                true => match self.shared.per_ip.acquire(client.ip()) {
                    Some(slot) => Some(slot),
                    None => {
                        self.shared.metrics.refused(Refusal::MaxConnectionsPerIp);
                        let reply = self.shared.per_ip.refusal();
                        log!(
                            "{client} {} {} {} (--max-connections-per-ip)",
                            request.method,
                            request.target,
                            reply.status
                        );
                        let _ = reply.write_to(stream, false);
                        return None;
                    }
                },
            };
            let is_health = request.path() == health::PATH;
            let mut reply = match websocket_endpoint(&request) {
                Some(Ok(endpoint)) => {
                    let mut upgraded = self.upgrade(client, request, buf, head_len, endpoint)?;
                    upgraded.ip_slot = ip_slot;
                    return Some(upgraded);
                }
                Some(Err(refusal)) => {
                    self.shared
                        .metrics
                        .handshake_failed(HandshakeFailure::NoSuchRoom);
                    refusal
                }
                None if is_health => health::respond(&request, &self.health_checks()),
                None => self.static_reply(&request),
            };
            buf.drain(..head_len);
            let last = request.wants_close() || served >= config.max_requests_per_connection;
            if last && !reply.closes_connection() {
                reply = reply.header("Connection", "close");
            }
            let closing = reply.closes_connection();
            // Health is polled every few seconds: only its failures are worth a line.
            if !(is_health && reply.status == 200) {
                log!(
                    "{client} {} {} {}",
                    request.method,
                    request.target,
                    reply.status
                );
            }
            if reply.write_to(stream, request.method == "HEAD").is_err() || closing {
                return None;
            }
        }
        None
    }

    /// What `/healthz` checks: that new connections are still taken and history is stored.
    fn health_checks(&self) -> Vec<health::Check> {
        let shared = self.shared;
        let stopping = shared.stopping.load(Ordering::SeqCst);
        let open = lock(&shared.live).len();
        let max = shared.config.max_connections;
        vec![
            health::Check::new("accepting", stopping.then(|| "shutting down".to_string())),
            health::Check::new(
                "capacity",
                (open >= max)
                    .then(|| format!("{open} of {max} connections open (--max-connections)")),
            ),
            health::Check::new("history", {
                let failing = shared.rooms.failing();
                (!failing.is_empty())
                    .then(|| format!("cannot store messages in room(s) {}", failing.join(", ")))
            }),
            health::Check::new("redis", shared.rooms.cluster_problem()),
        ]
    }

    fn static_reply(&self, request: &Request) -> Response {
        if request.announces_body() {
            return Response::error(400, "request bodies are not accepted");
        }
        match request.method.as_str() {
            "GET" | "HEAD" => inspect::page(request)
                .unwrap_or_else(|| static_files::respond(&self.shared.site, request)),
            _ => Response::error(405, "only GET and HEAD are served").header("Allow", "GET, HEAD"),
        }
    }

    /// Checks an upgrade request and answers it; `None` if it was refused or the reply could
    /// not be sent. `buf` holds the request head (`head_len` bytes) and whatever followed it:
    /// the start of the first frame.
    fn upgrade(
        &self,
        client: Client,
        request: Request,
        mut buf: Vec<u8>,
        head_len: usize,
        endpoint: Endpoint,
    ) -> Option<Upgraded> {
        let config = &self.shared.config;
        let leftover = buf.split_off(head_len);
        if config.trace_handshake {
            let head = String::from_utf8_lossy(&buf);
            log!("{client} upgrade request:\n{}", head.trim_end());
        }
        // The head is not needed past this point (but by the inspector, which shows it); a long
        // session should not keep it.
        let head = (endpoint == Endpoint::Inspect).then_some(buf);
        let reply = match handshake::check_upgrade(&request, &config.allowed_origins) {
            Ok(accept) => handshake::switching_protocols(&accept),
            Err(rejection) => {
                let failure = HandshakeFailure::Rejected(rejection);
                self.shared.metrics.handshake_failed(failure);
                let reply = rejection.response();
                if config.trace_handshake {
                    log!("{client} upgrade reply:\n{}", reply.head().trim_end());
                }
                log!(
                    "{client} {} {} {} ({})",
                    request.method,
                    request.target,
                    reply.status,
                    rejection.reason()
                );
                let _ = reply.write_to(self.stream, false);
                return None;
            }
        };
        if config.trace_handshake {
            log!("{client} upgrade reply:\n{}", reply.head().trim_end());
        }
        // Nor is the request: its header strings would stay allocated for the whole session.
        let path = request.path().to_string();
        drop(request);
        let tap = head.map(|head| {
            let reply = reply.head();
            let inner: Arc<dyn Transport> = self.stream.clone();
            inspect::Tap::new(inner, &head, &reply, &config.allowed_origins, &leftover)
        });
        if reply.write_to(self.stream, false).is_err() {
            return None;
        }
        let transport: Arc<dyn Transport> = match &tap {
            Some(tap) => tap.clone(),
            None => self.stream.clone(),
        };
        let outbox = Arc::new(Outbox::new(
            transport,
            client,
            Arc::clone(&self.shared.writers),
        ));
        // Before the outbox is visible to anyone else, so the handshake report goes first.
        if let Some(tap) = &tap {
            tap.attach(&outbox);
        }
        // A peer that sends nothing for three heartbeats is gone even if the heartbeat thread
        // is busy; with heartbeats off, the read simply waits.
        let idle_limit = (!config.ping_interval.is_zero()).then(|| config.ping_interval * 3);
        let _ = self.stream.set_read_timeout(idle_limit);
        if let Some(live) = lock(&self.shared.live).get_mut(&self.id) {
            live.outbox = Some(Arc::clone(&outbox));
        }
        if self.shared.stopping.load(Ordering::SeqCst) {
            outbox
                .close(SHUTTING_DOWN.0, SHUTTING_DOWN.1, crate::outbox::When::Now)
                .write();
        }
        Some(Upgraded {
            outbox,
            leftover,
            endpoint,
            client,
            path,
            ip_slot: None,
        })
    }

    /// Runs the WebSocket session until it closes.
    fn run_session(&self, upgraded: Upgraded) {
        let config = &self.shared.config;
        let Upgraded {
            outbox,
            leftover,
            endpoint,
            client,
            path,
            ip_slot: _ip_slot,
        } = upgraded;
        let session_config = SessionConfig {
            max_message: match endpoint {
                Endpoint::Chat(_) => config.max_chat_message,
                Endpoint::Echo | Endpoint::Inspect => config.max_echo_message,
            },
            rate_limit: config.rate_limit,
        };
        let started = Instant::now();
        let outcome = session::run(
            &outbox,
            leftover,
            endpoint,
            &session_config,
            &self.shared.rooms,
        );
        self.shared.metrics.session_ended(outcome.code);
        log!(
            "{client} GET {path} 101 closed {} ({}) after {:.1}s",
            outcome.code,
            outcome.reason,
            started.elapsed().as_secs_f64()
        );
    }
}

/// The close every WebSocket gets when the server stops.
pub const SHUTTING_DOWN: (crate::frame::CloseCode, &str) =
    (crate::frame::CloseCode::Away, "server shutting down");
