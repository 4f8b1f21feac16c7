//! Outboxes over an in-memory transport, for the targets that drive the room and sessions
//! without sockets (`session`, `chat_input`).

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use wschat::memory::MemoryTransport;
use wschat::outbox::{Outbox, QueueLimits, Transport, WriterPool};

/// One writer pool per process, as in the server.
fn writer_pool() -> Arc<WriterPool> {
    static POOL: OnceLock<Arc<WriterPool>> = OnceLock::new();
    Arc::clone(POOL.get_or_init(|| WriterPool::new(Duration::from_secs(30))))
}

fn peer() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9))
}

/// An outbox over an in-memory transport that receives `input`.
pub(super) fn memory_outbox(
    input: Vec<u8>,
    limits: QueueLimits,
) -> (Arc<Outbox>, Arc<MemoryTransport>) {
    let transport = Arc::new(MemoryTransport::new(input));
    let dyn_transport: Arc<dyn Transport> = transport.clone();
    let outbox = Arc::new(Outbox::new(dyn_transport, peer(), limits, writer_pool()));
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
