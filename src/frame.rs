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
    fn a_text_frame_is_final_and_unmasked() {
        assert_eq!(&text("hi")[..], [0x81, 2, b'h', b'i']);
    }
}
