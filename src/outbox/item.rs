//! What waits in a connection's queue, and what each thing counts for against its byte bound.

use crate::frame;
use crate::presence::PresenceMark;
use tungstenite::Bytes;

/// What a waiting presence mark counts for against the byte bound: about a join notice. The
/// frame it becomes can be longer, but it is made only when written.
const PRESENCE_COST: usize = 64;

/// What waits in a queue.
#[derive(Debug)]
pub(super) enum Item {
    /// An encoded frame from others.
    Frame(Bytes),
    /// An encoded frame of the connection's own ([`When::Waiting`](super::When::Waiting)):
    /// its writer waits until it is written, so it is bounded by that, not by the queue's
    /// bounds, and counts for nothing against them. Counted, a large echo would make the
    /// queue look full to the small frames others queue behind it (a heartbeat ping:
    /// Autobahn case 9.3.6).
    Own(Bytes),
    /// Joins and leaves, made into a frame when written so that later ones can merge into it.
    Presence(PresenceMark),
    /// What a full socket did not take of a batch, put back: already counted as sent, and
    /// possibly the tail of a frame.
    Rest(Outgoing),
}

impl Item {
    pub(super) fn cost(&self) -> usize {
        match self {
            Item::Frame(frame) => frame.len(),
            Item::Own(_) => 0,
            Item::Presence(_) => PRESENCE_COST,
            Item::Rest(rest) => rest.cost(),
        }
    }

    /// The bytes to write and the data frames they start; `None` for presence that adds up
    /// to nothing.
    pub(super) fn into_outgoing(self) -> Option<(Outgoing, u64)> {
        let others = |bytes| Outgoing { bytes, own: false };
        match self {
            Item::Frame(frame) => {
                let messages = frame::data_frames(&frame);
                Some((others(frame), messages))
            }
            Item::Own(frame) => {
                let messages = frame::data_frames(&frame);
                Some((
                    Outgoing {
                        bytes: frame,
                        own: true,
                    },
                    messages,
                ))
            }
            Item::Presence(mark) => mark.render().map(|frames| {
                let messages = frame::data_frames(&frames);
                (others(frames), messages)
            }),
            Item::Rest(rest) => Some((rest, 0)),
        }
    }
}

/// Bytes taken from the queue to be written, and whether they are the connection's own.
#[derive(Debug, Clone)]
pub(super) struct Outgoing {
    pub(super) bytes: Bytes,
    pub(super) own: bool,
}

impl Outgoing {
    /// What these bytes count for against the byte bound, put back in the queue.
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
