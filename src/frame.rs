//! The frames the server sends, encoded once into shared bytes.
//!
//! A server's frames are unmasked (RFC 6455 section 5.1). Encoding a frame once and sharing
//! the bytes is what makes a broadcast to a hundred members cheap: each member's queue holds a
//! reference, not a copy.

use tungstenite::protocol::frame::coding::{Data, OpCode};
use tungstenite::protocol::frame::{CloseFrame, Frame};
use tungstenite::Bytes;

pub use tungstenite::protocol::frame::coding::CloseCode;

/// Most bytes of a close reason: a control frame carries at most 125 bytes of payload
/// (RFC 6455 section 5.5), two of which are the code.
pub const MAX_CLOSE_REASON: usize = 123;

/// A final text frame.
pub fn text(text: &str) -> Bytes {
    encode(Frame::message(
        text.to_owned(),
        OpCode::Data(Data::Text),
        true,
    ))
}

/// A close frame with `code` and `reason`, the reason cut to [`MAX_CLOSE_REASON`] bytes on a
/// character boundary.
pub fn close(code: CloseCode, reason: &str) -> Bytes {
    let mut end = reason.len().min(MAX_CLOSE_REASON);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    encode(Frame::close(Some(CloseFrame {
        code,
        reason: reason[..end].to_owned().into(),
    })))
}

/// An empty ping frame.
pub fn ping() -> Bytes {
    encode(Frame::ping(Bytes::new()))
}

/// How many data frames (text or binary) start in `bytes`, whole frames as the server sends
/// them, one after another. Only the headers are read: a few instructions per frame.
pub fn data_frames(bytes: &[u8]) -> u64 {
    let mut count = 0;
    let mut at = 0usize;
    while let (Some(&first), Some(&second)) = (bytes.get(at), bytes.get(at + 1)) {
        if matches!(first & 0x0F, 0x1 | 0x2) {
            count += 1;
        }
        let (header, payload) = match second & 0x7F {
            126 => match bytes.get(at + 2..at + 4) {
                Some(len) => (4, u64::from(u16::from_be_bytes([len[0], len[1]]))),
                None => break,
            },
            127 => match bytes.get(at + 2..at + 10).and_then(|l| l.try_into().ok()) {
                Some(len) => (10, u64::from_be_bytes(len)),
                None => break,
            },
            len => (2, u64::from(len)),
        };
        let mask = if second & 0x80 != 0 { 4 } else { 0 };
        let Some(next) = usize::try_from(payload)
            .ok()
            .and_then(|p| (at + header + mask).checked_add(p))
        else {
            break;
        };
        at = next;
    }
    count
}

fn encode(frame: Frame) -> Bytes {
    let mut out = Vec::with_capacity(frame.len());
    frame
        .format(&mut out)
        .expect("writing a frame to memory cannot fail");
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_close_reason_is_cut_on_a_character_boundary() {
        // 62 two-byte characters: 124 bytes, one over the limit.
        let frame = close(CloseCode::Policy, &"é".repeat(62));
        // FIN + close opcode, unmasked length, code 1008, then 61 whole characters.
        assert_eq!(frame[..4], [0x88, 2 + 122, 0x03, 0xF0]);
        assert_eq!(std::str::from_utf8(&frame[4..]).unwrap(), "é".repeat(61));
    }

    #[test]
    fn data_frames_are_counted_by_their_headers() {
        let long = "x".repeat(300);
        let huge = "y".repeat(70_000);
        let mut run = Vec::new();
        for frame in [
            text("a"),
            ping(),
            text(&long),
            close(CloseCode::Normal, "bye"),
            text(&huge),
        ] {
            run.extend_from_slice(&frame);
        }
        assert_eq!(data_frames(&run), 3);
        assert_eq!(data_frames(&ping()), 0);
        assert_eq!(data_frames(&[0x82, 0]), 1);
        assert_eq!(data_frames(&[]), 0);
        // A frame cut short counts once; what follows its claimed length is not read.
        assert_eq!(data_frames(&text(&long)[..10]), 1);
        assert_eq!(
            data_frames(&[0x81, 127, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]),
            1
        );
    }

    #[test]
    fn a_text_frame_is_final_and_unmasked() {
        assert_eq!(&text("hi")[..], [0x81, 2, b'h', b'i']);
    }
}
