//! WebSocket frames taken apart field by field, as RFC 6455 section 5.2 draws them:
//!
//! ```text
//!  0               1               2               3
//!  0 1 2 3 4 5 6 7 0 1 2 3 4 5 6 7 0 1 2 3 4 5 6 7 0 1 2 3 4 5 6 7
//! +-+-+-+-+-------+-+-------------+-------------------------------+
//! |F|R|R|R| opcode|M| Payload len |    Extended payload length    |
//! |I|S|S|S|  (4)  |A|     (7)     |             (16/64)           |
//! |N|V|V|V|       |S|             |   (if payload len==126/127)   |
//! | |1|2|3|       |K|             |                               |
//! +-+-+-+-+-------+-+-------------+ - - - - - - - - - - - - - - - +
//! |     Extended payload length continued, if payload len == 127  |
//! + - - - - - - - - - - - - - - - +-------------------------------+
//! |                               |Masking-key, if MASK set to 1  |
//! +-------------------------------+-------------------------------+
//! | Masking-key (continued)       |          Payload Data         |
//! +-------------------------------- - - - - - - - - - - - - - - - +
//! ```
//!
//! [`parse_header`] reads one header from bytes; a [`Dissector`] follows a whole byte stream,
//! arriving in pieces of any size, and yields a [`FrameRecord`] for each frame once its last
//! byte has passed. It keeps at most the header and the first [`SHOWN`] payload bytes of the
//! frame in progress, so a frame of 16 MiB costs the same as one of 16 bytes. Nothing here
//! refuses a frame: the inspector shows what was sent, and notes (a [`Note`] per rule) what
//! the RFC forbids; refusing is tungstenite's job.

/// Payload bytes kept of each frame: enough to show the 125- and 126-byte messages whole.
pub const SHOWN: usize = 128;

/// The longest header: 2 bytes, 8 of extended length, 4 of masking key.
pub const MAX_HEADER: usize = 14;

/// Which side sent the bytes. The masking rule differs (section 5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Browser to server: every frame must be masked.
    FromClient,
    /// Server to browser: no frame may be masked.
    FromServer,
}

/// How the payload length was written (section 5.2, "Payload length").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LengthEncoding {
    /// 0 to 125, in the 7 bits of the second byte.
    Bits7,
    /// 126 in the 7 bits, then the length in the next 2 bytes.
    Bits16,
    /// 127 in the 7 bits, then the length in the next 8 bytes.
    Bits64,
}

impl LengthEncoding {
    /// Bits that carry the length: 7, 16 or 64.
    pub fn bits(self) -> u8 {
        match self {
            LengthEncoding::Bits7 => 7,
            LengthEncoding::Bits16 => 16,
            LengthEncoding::Bits64 => 64,
        }
    }
}

/// One frame header, every field as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// FIN: the last frame of its message.
    pub fin: bool,
    /// RSV1, RSV2, RSV3: zero unless an extension gives them a meaning.
    pub rsv: [bool; 3],
    /// The opcode, 0 to 15.
    pub opcode: u8,
    /// The masking key, when the MASK bit is set.
    pub mask: Option<[u8; 4]>,
    /// The payload length.
    pub length: u64,
    /// Which length encoding carried it.
    pub encoding: LengthEncoding,
    /// Bytes of header: 2 to [`MAX_HEADER`].
    pub len: usize,
}

/// Reads the header at the start of `bytes`; `None` when `bytes` end inside it (then a longer
/// prefix of the same stream is needed, never a different reading of these bytes).
pub fn parse_header(bytes: &[u8]) -> Option<Header> {
    let (&first, &second) = (bytes.first()?, bytes.get(1)?);
    let (length, encoding, mut len) = match second & 0x7f {
        126 => {
            let extended: [u8; 2] = bytes.get(2..4)?.try_into().ok()?;
            (
                u64::from(u16::from_be_bytes(extended)),
                LengthEncoding::Bits16,
                4,
            )
        }
        127 => {
            let extended: [u8; 8] = bytes.get(2..10)?.try_into().ok()?;
            (u64::from_be_bytes(extended), LengthEncoding::Bits64, 10)
        }
        short => (u64::from(short), LengthEncoding::Bits7, 2),
    };
    let mask = if second & 0x80 != 0 {
        let key: [u8; 4] = bytes.get(len..len + 4)?.try_into().ok()?;
        len += 4;
        Some(key)
    } else {
        None
    };
    Some(Header {
        fin: first & 0x80 != 0,
        rsv: [first & 0x40 != 0, first & 0x20 != 0, first & 0x10 != 0],
        opcode: first & 0x0f,
        mask,
        length,
        encoding,
        len,
    })
}

/// The opcode's name in section 5.2 (and 11.8): continuation, text, binary, close, ping,
/// pong, or reserved.
pub fn opcode_name(opcode: u8) -> &'static str {
    match opcode {
        0x0 => "continuation",
        0x1 => "text",
        0x2 => "binary",
        0x8 => "close",
        0x9 => "ping",
        0xa => "pong",
        _ => "reserved",
    }
}

/// A rule of RFC 6455 a frame breaks. The server closes the connection for most of these
/// (tungstenite finds them too); the inspector only names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Note {
    /// 5.1: "a client MUST mask all frames that it sends to the server".
    ClientUnmasked,
    /// 5.1: "A server MUST NOT mask any frames that it sends to the client".
    ServerMasked,
    /// 5.2: RSV bits "MUST be 0 unless an extension is negotiated"; wschat negotiates none.
    ReservedBits,
    /// 5.2: opcodes 3-7 and 11-15 are reserved.
    ReservedOpcode,
    /// 5.2: "the minimal number of bytes MUST be used to encode the length".
    LongerLengthThanNeeded,
    /// 5.5: "All control frames MUST have a payload length of 125 bytes or less".
    ControlTooLong,
    /// 5.5: control frames "MUST NOT be fragmented".
    ControlFragmented,
    /// 5.4: a continuation frame with no fragmented message to continue.
    NothingToContinue,
    /// 5.4: a new text or binary frame while a fragmented message is unfinished.
    MessageInterrupted,
    /// 5.5.1: a close body, if present, starts with a 2-byte code: one byte is not a code.
    CloseBodyOfOneByte,
    /// 7.4: a close code no endpoint may send (1004-1006, 1015, below 1000, unassigned).
    CloseCodeNotAllowed,
}

impl Note {
    /// The rule, with its section, for the page.
    pub fn text(self) -> &'static str {
        match self {
            Note::ClientUnmasked => "not masked: a client MUST mask every frame (5.1)",
            Note::ServerMasked => "masked: a server MUST NOT mask its frames (5.1)",
            Note::ReservedBits => "RSV bit set, but no extension was negotiated (5.2)",
            Note::ReservedOpcode => "reserved opcode (5.2)",
            Note::LongerLengthThanNeeded => {
                "length written with more bytes than needed: the minimal encoding MUST be used (5.2)"
            }
            Note::ControlTooLong => "a control frame's payload MUST be 125 bytes or less (5.5)",
            Note::ControlFragmented => "a control frame MUST NOT be fragmented (5.5)",
            Note::NothingToContinue => "continuation frame with no message to continue (5.4)",
            Note::MessageInterrupted => {
                "new message before the fragmented one was finished (5.4)"
            }
            Note::CloseBodyOfOneByte => "a close body is a 2-byte code and a reason (5.5.1)",
            Note::CloseCodeNotAllowed => "this close code may not be sent in a frame (7.4)",
        }
    }
}

/// True for a close code that may appear in a close frame (section 7.4.1, the IANA registry's
/// 1012-1014, and the 3000-4999 ranges of 7.4.2).
pub fn close_code_allowed(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// One frame as it went over the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameRecord {
    /// The header bytes exactly as sent.
    pub header_bytes: Vec<u8>,
    /// The header's fields.
    pub header: Header,
    /// The first [`SHOWN`] payload bytes as sent (masked, when the frame is masked).
    pub wire: Vec<u8>,
    /// The same bytes unmasked: byte `i` XOR masking key byte `i % 4`.
    pub payload: Vec<u8>,
    /// For data frames (continuations included): 1 when the message is text, 2 when binary;
    /// `None` for control frames and for a continuation of nothing.
    pub message_opcode: Option<u8>,
    /// The rules this frame breaks.
    pub notes: Vec<Note>,
}

impl FrameRecord {
    /// True when the payload is longer than what is kept.
    pub fn cut(&self) -> bool {
        self.header.length > self.wire.len() as u64
    }

    /// Header and payload bytes together (saturating: a 64-bit length can be absurd).
    pub fn total_len(&self) -> u64 {
        self.header.length.saturating_add(self.header.len as u64)
    }

    /// The shown payload as text, for text messages and close reasons when it is UTF-8. A
    /// character cut by the end of what is shown (or of the frame, in a fragmented message) is
    /// left out; anything else that is not UTF-8 gives `None`, and the page shows hex.
    pub fn text(&self) -> Option<&str> {
        let bytes = match self.header.opcode {
            0x8 => self.payload.get(2..)?,
            _ if self.message_opcode == Some(0x1) => &self.payload,
            _ => return None,
        };
        match std::str::from_utf8(bytes) {
            Ok(text) => Some(text),
            Err(e) if e.error_len().is_none() && (self.cut() || !self.header.fin) => {
                std::str::from_utf8(&bytes[..e.valid_up_to()]).ok()
            }
            Err(_) => None,
        }
    }

    /// The status code of a close frame with a body.
    pub fn close_code(&self) -> Option<u16> {
        match (self.header.opcode, self.payload.as_slice()) {
            (0x8, [hi, lo, ..]) => Some(u16::from_be_bytes([*hi, *lo])),
            _ => None,
        }
    }
}

/// The frame being read: its record so far and how much payload is still to come.
#[derive(Debug)]
struct InProgress {
    record: FrameRecord,
    remaining: u64,
}

impl InProgress {
    /// Takes this frame's payload bytes from the front of `bytes`, keeping the first
    /// [`SHOWN`]; returns the bytes after them.
    fn take_payload<'a>(&mut self, bytes: &'a [u8]) -> &'a [u8] {
        let take = usize::try_from(self.remaining)
            .unwrap_or(usize::MAX)
            .min(bytes.len());
        let record = &mut self.record;
        let room = SHOWN - record.wire.len();
        for &byte in &bytes[..take.min(room)] {
            let key = record.header.mask.map_or(0, |k| k[record.wire.len() % 4]);
            record.wire.push(byte);
            record.payload.push(byte ^ key);
        }
        self.remaining -= take as u64;
        &bytes[take..]
    }

    /// The record of the whole frame, with the notes only its payload can tell.
    fn finish(mut self) -> FrameRecord {
        if (self.record.close_code()).is_some_and(|code| !close_code_allowed(code)) {
            self.record.notes.push(Note::CloseCodeNotAllowed);
        }
        self.record
    }
}

/// Follows one direction of a connection and takes each frame apart. Bytes may arrive in
/// pieces of any size; the records are the same as if they had arrived at once.
#[derive(Debug)]
pub struct Dissector {
    direction: Direction,
    /// Header bytes of the next frame, until they make a whole header.
    head: Vec<u8>,
    frame: Option<InProgress>,
    /// The opcode (1 or 2) of a fragmented message waiting for its continuation frames.
    fragmented: Option<u8>,
}

impl Dissector {
    /// A dissector at the start of a stream.
    pub fn new(direction: Direction) -> Self {
        Dissector {
            direction,
            head: Vec::with_capacity(MAX_HEADER),
            frame: None,
            fragmented: None,
        }
    }

    /// Takes in the next bytes of the stream and appends a record to `done` for every frame
    /// they complete.
    pub fn feed(&mut self, mut bytes: &[u8], done: &mut Vec<FrameRecord>) {
        loop {
            if let Some(frame) = self.frame.take_if(|frame| frame.remaining == 0) {
                done.push(frame.finish());
            }
            if bytes.is_empty() {
                return;
            }
            match &mut self.frame {
                Some(frame) => bytes = frame.take_payload(bytes),
                None => {
                    let before = self.head.len();
                    let add = (MAX_HEADER - before).min(bytes.len());
                    self.head.extend_from_slice(&bytes[..add]);
                    match parse_header(&self.head) {
                        Some(header) => {
                            // Bytes past the header were only borrowed to find its end.
                            bytes = &bytes[header.len - before..];
                            self.head.truncate(header.len);
                            self.start(header);
                        }
                        None => bytes = &bytes[add..],
                    }
                }
            }
        }
    }

    fn start(&mut self, header: Header) {
        let mut notes = Vec::new();
        match (self.direction, header.mask.is_some()) {
            (Direction::FromClient, false) => notes.push(Note::ClientUnmasked),
            (Direction::FromServer, true) => notes.push(Note::ServerMasked),
            _ => {}
        }
        if header.rsv.contains(&true) {
            notes.push(Note::ReservedBits);
        }
        let minimal = match header.encoding {
            LengthEncoding::Bits7 => true,
            LengthEncoding::Bits16 => header.length >= 126,
            LengthEncoding::Bits64 => header.length > 0xffff,
        };
        if !minimal {
            notes.push(Note::LongerLengthThanNeeded);
        }
        let mut message_opcode = None;
        match header.opcode {
            0x0 => {
                message_opcode = self.fragmented;
                if self.fragmented.is_none() {
                    notes.push(Note::NothingToContinue);
                }
                if header.fin {
                    self.fragmented = None;
                }
            }
            0x1 | 0x2 => {
                message_opcode = Some(header.opcode);
                if self.fragmented.is_some() {
                    notes.push(Note::MessageInterrupted);
                }
                self.fragmented = (!header.fin).then_some(header.opcode);
            }
            0x8..=0xa => {
                if header.length > 125 {
                    notes.push(Note::ControlTooLong);
                }
                if !header.fin {
                    notes.push(Note::ControlFragmented);
                }
                if header.opcode == 0x8 && header.length == 1 {
                    notes.push(Note::CloseBodyOfOneByte);
                }
            }
            _ => notes.push(Note::ReservedOpcode),
        }
        let shown = usize::try_from(header.length).map_or(SHOWN, |l| l.min(SHOWN));
        let remaining = header.length;
        let record = FrameRecord {
            header_bytes: std::mem::replace(&mut self.head, Vec::with_capacity(MAX_HEADER)),
            wire: Vec::with_capacity(shown),
            payload: Vec::with_capacity(shown),
            message_opcode,
            notes,
            header,
        };
        self.frame = Some(InProgress { record, remaining });
    }
}

#[cfg(test)]
mod tests;
