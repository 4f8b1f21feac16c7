//! Outboxes over an in-memory transport, for the targets that drive the room and sessions
//! without sockets (`session`, `chat_input`).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use wschat::internals::outbox::{Outbox, QueueLimits, Writers};
use wschat::internals::transport::{MemoryTransport, Transport};

/// One set of writers per limits and calling thread, as in a server (each owns its threads).
/// Per thread, so that checks running at once (the seed replay's tests) do not see each
/// other's broadcasts: a check's writes then happen as they would in one server.
pub(super) fn writers(limits: QueueLimits) -> Arc<Writers> {
    type Key = (usize, Option<usize>, std::thread::ThreadId);
    type Known = Mutex<Vec<(Key, Arc<Writers>)>>;
    static KNOWN: OnceLock<Known> = OnceLock::new();
    let key = (limits.bytes, limits.messages, std::thread::current().id());
    let mut known = KNOWN
        .get_or_init(Known::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some((_, writers)) = known.iter().find(|(k, _)| *k == key) {
        return Arc::clone(writers);
    }
    let writers = Writers::new(limits, Duration::from_secs(2));
    known.push((key, Arc::clone(&writers)));
    writers
}

pub(super) fn peer() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9))
}

/// An outbox over an in-memory transport that receives `input`.
pub(super) fn memory_outbox(
    input: Vec<u8>,
    limits: QueueLimits,
) -> (Arc<Outbox>, Arc<MemoryTransport>) {
    let transport = Arc::new(MemoryTransport::new(input));
    let dyn_transport: Arc<dyn Transport> = transport.clone();
    let outbox = Arc::new(Outbox::new(dyn_transport, peer(), writers(limits)));
    (outbox, transport)
}

/// Waits (yielding, bounded) until the writer pool has written everything queued on `outbox`.
/// Ten seconds without getting there is a hang, reported as a failure.
pub(super) fn wait_idle(outbox: &Outbox) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut spins = 0u32;
    while !outbox.is_idle() {
        assert!(Instant::now() < deadline, "outbox still busy after 10 s");
        spins += 1;
        if spins < 1000 {
            std::thread::yield_now();
        } else {
            std::thread::sleep(Duration::from_micros(200));
        }
    }
}
