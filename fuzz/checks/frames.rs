//! WebSocket frames: a strict parser of what the server sends, a lenient one of what clients
//! send, and an encoder for tests and seeds.

/// One message the server sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WsMessage {
    /// A text message (possibly reassembled from fragments).
    Text(String),
    /// A binary message.
    Binary(Vec<u8>),
    /// A ping and its payload.
    Ping(Vec<u8>),
    /// A pong and its payload.
    Pong(Vec<u8>),
    /// A close frame: its code and reason, if it had a payload.
    Close(Option<(u16, String)>),
}

/// True for a close code a peer may put on the wire (RFC 6455 section 7.4: the codes defined
/// in 7.4.1, the IANA-registered 1012-1014, and the 3000-4999 ranges of 7.4.2). Never 1004,
/// 1005, 1006 or 1015, nothing below 1000, no unassigned 1016-2999, nothing from 5000.
pub fn valid_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// One frame's header, read from `buf`; `None` when `buf` ends inside it.
struct FrameHead {
    fin: bool,
    rsv: u8,
    opcode: u8,
    mask: Option<[u8; 4]>,
    len: u64,
    /// Whether the length used the fewest bytes possible (RFC 6455 section 5.2).
    minimal: bool,
    header_len: usize,
}

fn read_frame_head(buf: &[u8]) -> Option<FrameHead> {
    let b0 = *buf.first()?;
    let b1 = *buf.get(1)?;
    let mut pos = 2;
    let (len, minimal) = match b1 & 0x7f {
        126 => {
            let l = u16::from_be_bytes(buf.get(2..4)?.try_into().ok()?) as u64;
            pos = 4;
            (l, l >= 126)
        }
        127 => {
            let l = u64::from_be_bytes(buf.get(2..10)?.try_into().ok()?);
            pos = 10;
            (l, l > 0xffff && l >> 63 == 0)
        }
        l => (l as u64, true),
    };
    let mask = if b1 & 0x80 != 0 {
        let m: [u8; 4] = buf.get(pos..pos + 4)?.try_into().ok()?;
        pos += 4;
        Some(m)
    } else {
        None
    };
    Some(FrameHead {
        fin: b0 & 0x80 != 0,
        rsv: (b0 >> 4) & 0x7,
        opcode: b0 & 0x0f,
        mask,
        len,
        minimal,
        header_len: pos,
    })
}

/// Parses everything the server wrote as RFC 6455 server frames, strictly: FIN and opcode
/// valid, no RSV bits (no extension is ever negotiated), unmasked, lengths minimal, control
/// frames unfragmented and at most 125 bytes, close payloads a valid code and UTF-8 reason,
/// text messages UTF-8, fragments in order, nothing after a close frame, no partial frame.
pub fn parse_server_output(out: &[u8]) -> Result<Vec<WsMessage>, String> {
    let mut messages = Vec::new();
    let mut pos = 0;
    let mut fragmented: Option<(u8, Vec<u8>)> = None;
    let mut closed = false;
    while pos < out.len() {
        if closed {
            return Err(format!("{} bytes after the close frame", out.len() - pos));
        }
        let head = read_frame_head(&out[pos..]).ok_or("output ends inside a frame header")?;
        let at = format!("frame at byte {pos}");
        if head.rsv != 0 {
            return Err(format!("{at}: RSV bits {:#x} set", head.rsv));
        }
        if head.mask.is_some() {
            return Err(format!("{at}: a server frame is masked"));
        }
        if !head.minimal {
            return Err(format!("{at}: length {} not minimally encoded", head.len));
        }
        let start = pos + head.header_len;
        let end = usize::try_from(head.len)
            .ok()
            .and_then(|l| start.checked_add(l))
            .filter(|&e| e <= out.len())
            .ok_or_else(|| format!("{at}: output ends inside the payload"))?;
        let payload = out[start..end].to_vec();
        pos = end;
        match head.opcode {
            0x8..=0xa => {
                if !head.fin {
                    return Err(format!("{at}: fragmented control frame"));
                }
                if payload.len() > 125 {
                    return Err(format!("{at}: control frame of {} bytes", payload.len()));
                }
                messages.push(match head.opcode {
                    0x8 => {
                        closed = true;
                        WsMessage::Close(
                            parse_close_payload(&payload).map_err(|e| format!("{at}: {e}"))?,
                        )
                    }
                    0x9 => WsMessage::Ping(payload),
                    _ => WsMessage::Pong(payload),
                });
            }
            0x1 | 0x2 => {
                if fragmented.is_some() {
                    return Err(format!("{at}: new message inside a fragmented one"));
                }
                if head.fin {
                    messages.push(
                        data_message(head.opcode, payload).map_err(|e| format!("{at}: {e}"))?,
                    );
                } else {
                    fragmented = Some((head.opcode, payload));
                }
            }
            0x0 => {
                let Some((opcode, mut data)) = fragmented.take() else {
                    return Err(format!("{at}: continuation with no message to continue"));
                };
                data.extend_from_slice(&payload);
                if head.fin {
                    messages.push(data_message(opcode, data).map_err(|e| format!("{at}: {e}"))?);
                } else {
                    fragmented = Some((opcode, data));
                }
            }
            op => return Err(format!("{at}: reserved opcode {op:#x}")),
        }
    }
    if fragmented.is_some() {
        return Err("output ends inside a fragmented message".into());
    }
    Ok(messages)
}

fn data_message(opcode: u8, data: Vec<u8>) -> Result<WsMessage, String> {
    if opcode == 0x1 {
        String::from_utf8(data)
            .map(WsMessage::Text)
            .map_err(|_| "text message is not UTF-8".to_string())
    } else {
        Ok(WsMessage::Binary(data))
    }
}

fn parse_close_payload(payload: &[u8]) -> Result<Option<(u16, String)>, String> {
    match payload {
        [] => Ok(None),
        [_] => Err("close payload of one byte".into()),
        [hi, lo, reason @ ..] => {
            let code = u16::from_be_bytes([*hi, *lo]);
            if !valid_close_code(code) {
                return Err(format!("close code {code} may not be sent"));
            }
            let reason = String::from_utf8(reason.to_vec())
                .map_err(|_| format!("close {code} reason is not UTF-8"))?;
            Ok(Some((code, reason)))
        }
    }
}

/// Encodes one frame as a client sends it (masked with `mask`). For building seeds and tests.
pub fn client_frame(fin: bool, opcode: u8, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
    let mut out = vec![(u8::from(fin) << 7) | (opcode & 0x0f)];
    match payload.len() {
        n if n < 126 => out.push(0x80 | n as u8),
        n if n <= 0xffff => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

/// The echo sent back, in order, every data message a well-behaved client sent (read from
/// `client` by [`clean_client_messages`]). `complete`: false when the connection was reset,
/// which may have cut off the end of `messages`: the echoes that did arrive must still match.
pub(super) fn check_echoed(
    client: &[u8],
    max_message: usize,
    messages: &[WsMessage],
    complete: bool,
) {
    let sent = clean_client_messages(client, max_message);
    let echoed: Vec<&WsMessage> = messages
        .iter()
        .filter(|m| matches!(m, WsMessage::Text(_) | WsMessage::Binary(_)))
        .collect();
    if complete {
        assert!(
            echoed.len() >= sent.len(),
            "{} clean messages sent, {} echoed",
            sent.len(),
            echoed.len()
        );
    }
    for (i, (echo, original)) in echoed.iter().zip(&sent).enumerate() {
        assert_eq!(*echo, original, "echo of message {i} differs");
    }
}

/// The data messages a well-behaved client sent, read until the first thing that is not
/// plainly valid (a close, an unmasked or oversized frame, RSV bits, a reserved opcode, a
/// non-minimal length, bad UTF-8, a broken fragment sequence, or the end of the input). Every
/// message returned is one the echo endpoint must send back, in this order.
fn clean_client_messages(stream: &[u8], max_message: usize) -> Vec<WsMessage> {
    let mut messages = Vec::new();
    let mut pos = 0;
    let mut fragmented: Option<(u8, Vec<u8>)> = None;
    while let Some(head) = read_frame_head(&stream[pos..]) {
        let Some(mask) = head.mask else { break };
        if head.rsv != 0 || !head.minimal || head.len > max_message as u64 {
            break;
        }
        let start = pos + head.header_len;
        let end = start + head.len as usize;
        if end > stream.len() {
            break;
        }
        let payload: Vec<u8> = stream[start..end]
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ mask[i % 4])
            .collect();
        pos = end;
        let finished = match (head.opcode, fragmented.take()) {
            (0x9 | 0xa, frag) if head.fin && payload.len() <= 125 => {
                fragmented = frag;
                None
            }
            (0x1 | 0x2, None) => Some((head.opcode, payload)),
            (0x0, Some((opcode, mut data))) => {
                data.extend_from_slice(&payload);
                Some((opcode, data))
            }
            _ => break,
        };
        if let Some((opcode, data)) = finished {
            if data.len() > max_message {
                break;
            }
            if head.fin {
                match data_message(opcode, data) {
                    Ok(message) => messages.push(message),
                    Err(_) => break,
                }
            } else {
                fragmented = Some((opcode, data));
            }
        }
    }
    messages
}
