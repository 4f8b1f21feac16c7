//! What waits in a connection's queue, and what each thing counts for against its byte bound.

use super::When;
use crate::frame;
use crate::presence::PresenceMark;
use tungstenite::Bytes;

/// What a waiting presence mark counts for against the byte bound: about a join notice. The
/// frame it becomes can be longer, but it is made only when written.
const PRESENCE_COST: usize = 64;

/// What waits in a queue.
#[derive(Debug)]
pub(super) enum Item {
    /// An encoded frame.
    Frame(Outgoing),
    /// Joins and leaves, made into a frame when written so that later ones can merge into it.
    Presence(PresenceMark),
    /// What a full socket did not take of a batch, put back: already counted as sent, and
    /// possibly the tail of a frame.
    Rest(Outgoing),
}

impl Item {
    /// An encoded frame, the connection's own when it is queued [`When::Waiting`].
    pub(super) fn frame(bytes: Bytes, when: When) -> Self {
        let own = when == When::Waiting;
        Item::Frame(Outgoing { bytes, own })
    }

    pub(super) fn cost(&self) -> usize {
        match self {
            Item::Frame(out) | Item::Rest(out) => out.cost(),
            Item::Presence(_) => PRESENCE_COST,
        }
    }

    /// The bytes to write and the data frames they start; `None` for presence that adds up
    /// to nothing.
    pub(super) fn into_outgoing(self) -> Option<(Outgoing, u64)> {
        match self {
            Item::Frame(out) => {
                let messages = frame::data_frames(&out.bytes);
                Some((out, messages))
            }
            Item::Presence(mark) => mark.render().map(|bytes| {
                let messages = frame::data_frames(&bytes);
                (Outgoing { bytes, own: false }, messages)
            }),
            Item::Rest(rest) => Some((rest, 0)),
        }
    }
}

/// Bytes taken from the queue to be written, and whether they are the connection's own.
#[derive(Debug, Clone)]
pub(super) struct Outgoing {
    pub(super) bytes: Bytes,
    /// Queued by the connection itself ([`When::Waiting`]): its writer waits until they are
    /// written, so they are bounded by that, not by the queue's bounds, and count for nothing
    /// against them. Counted, a large echo would make the queue look full to the small frames
    /// others queue behind it (a heartbeat ping: Autobahn case 9.3.6).
    pub(super) own: bool,
}

impl Outgoing {
    /// What these bytes count for against the byte bound.
    pub(super) fn cost(&self) -> usize {
        if self.own {
            0
        } else {
            self.bytes.len()
        }
    }
}

/// Frames taken from the queue to be written, what they counted for in it, and the data
/// frames among them (for the metrics).
pub(super) struct Batch {
    pub(super) frames: Vec<Outgoing>,
    pub(super) cost: usize,
    pub(super) messages: u64,
}
