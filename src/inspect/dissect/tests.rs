use super::*;
use std::io::Cursor;
use tungstenite::protocol::frame::FrameHeader;

fn dissect(direction: Direction, bytes: &[u8]) -> Vec<FrameRecord> {
    let mut done = Vec::new();
    Dissector::new(direction).feed(bytes, &mut done);
    done
}

fn one(direction: Direction, bytes: &[u8]) -> FrameRecord {
    let mut frames = dissect(direction, bytes);
    assert_eq!(frames.len(), 1, "{frames:?}");
    frames.remove(0)
}

/// The examples of RFC 6455 section 5.7.
const HELLO_UNMASKED: &[u8] = &[0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
const HELLO_MASKED: &[u8] = &[
    0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
];
const HEL_LO: &[u8] = &[0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f];
const PING_UNMASKED: &[u8] = &[0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
const PONG_MASKED: &[u8] = &[
    0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
];

#[test]
fn rfc_single_frame_unmasked_text() {
    let f = one(Direction::FromServer, HELLO_UNMASKED);
    assert!(f.header.fin && f.header.rsv == [false; 3]);
    assert_eq!((f.header.opcode, opcode_name(f.header.opcode)), (1, "text"));
    assert_eq!(f.header.mask, None);
    assert_eq!(f.header.length, 5);
    assert_eq!(f.header.encoding, LengthEncoding::Bits7);
    assert_eq!(f.header_bytes, [0x81, 0x05]);
    assert_eq!(f.wire, b"Hello");
    assert_eq!(f.text(), Some("Hello"));
    assert_eq!(f.total_len(), 7);
    assert!(f.notes.is_empty() && !f.cut());
    // The same bytes from a client break the masking rule.
    assert_eq!(
        one(Direction::FromClient, HELLO_UNMASKED).notes,
        [Note::ClientUnmasked]
    );
}

#[test]
fn rfc_single_frame_masked_text() {
    let f = one(Direction::FromClient, HELLO_MASKED);
    assert_eq!(f.header.mask, Some([0x37, 0xfa, 0x21, 0x3d]));
    assert_eq!(f.header.len, 6);
    assert_eq!(f.wire, [0x7f, 0x9f, 0x4d, 0x51, 0x58]);
    assert_eq!(f.payload, b"Hello");
    assert_eq!(f.text(), Some("Hello"));
    assert!(f.notes.is_empty());
    assert_eq!(
        one(Direction::FromServer, HELLO_MASKED).notes,
        [Note::ServerMasked]
    );
}

#[test]
fn rfc_fragmented_text() {
    let frames = dissect(Direction::FromServer, HEL_LO);
    assert_eq!(frames.len(), 2);
    let (hel, lo) = (&frames[0], &frames[1]);
    assert!(!hel.header.fin && lo.header.fin);
    assert_eq!((hel.header.opcode, lo.header.opcode), (1, 0));
    assert_eq!(
        lo.message_opcode,
        Some(1),
        "a continuation of a text message"
    );
    assert_eq!((hel.text(), lo.text()), (Some("Hel"), Some("lo")));
    assert!(hel.notes.is_empty() && lo.notes.is_empty());
}

#[test]
fn rfc_ping_and_pong() {
    let ping = one(Direction::FromServer, PING_UNMASKED);
    assert_eq!(opcode_name(ping.header.opcode), "ping");
    assert_eq!(ping.payload, b"Hello");
    assert_eq!(
        ping.text(),
        None,
        "only text messages and close reasons are text"
    );
    let pong = one(Direction::FromClient, PONG_MASKED);
    assert_eq!(opcode_name(pong.header.opcode), "pong");
    assert_eq!(pong.payload, b"Hello");
    assert!(ping.notes.is_empty() && pong.notes.is_empty());
}

#[test]
fn rfc_256_bytes_in_16_bits_and_64_kib_in_64_bits() {
    let mut short = vec![0x82, 0x7e, 0x01, 0x00];
    short.extend((0..=255u8).collect::<Vec<_>>());
    let f = one(Direction::FromServer, &short);
    assert_eq!(
        (f.header.length, f.header.encoding, f.header.len),
        (256, LengthEncoding::Bits16, 4)
    );
    assert_eq!(f.wire, (0..SHOWN as u8).collect::<Vec<_>>());
    assert!(f.cut() && f.text().is_none() && f.notes.is_empty());

    let mut long = vec![0x82, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0];
    long.resize(10 + 65536, 0xab);
    let f = one(Direction::FromServer, &long);
    assert_eq!(
        (f.header.length, f.header.encoding, f.header.len),
        (65536, LengthEncoding::Bits64, 10)
    );
    assert_eq!((f.wire.len(), f.total_len()), (SHOWN, 65546));
    assert!(f.notes.is_empty());
}

#[test]
fn the_three_encodings_at_their_edges() {
    for (length, encoding) in [
        (125, LengthEncoding::Bits7),
        (126, LengthEncoding::Bits16),
        (65535, LengthEncoding::Bits16),
        (65536, LengthEncoding::Bits64),
    ] {
        let frame = tungstenite::protocol::frame::Frame::message(
            vec![b'x'; length],
            tungstenite::protocol::frame::coding::OpCode::Data(
                tungstenite::protocol::frame::coding::Data::Text,
            ),
            true,
        );
        let mut bytes = Vec::new();
        frame.format(&mut bytes).unwrap();
        let f = one(Direction::FromServer, &bytes);
        assert_eq!(
            (f.header.length, f.header.encoding),
            (length as u64, encoding)
        );
        assert_eq!(f.text().map(str::len), Some(length.min(SHOWN)));
    }
}

#[test]
fn pieces_of_any_size_give_the_same_records() {
    let mut stream = [HELLO_MASKED, PONG_MASKED].concat();
    let mut big = vec![0x82, 0xfe, 0x01, 0x2c, 1, 2, 3, 4];
    big.extend((0..300u32).map(|i| i as u8 ^ [1, 2, 3, 4][i as usize % 4]));
    stream.extend(big);
    stream.extend([0x88, 0x82, 9, 9, 9, 9, 0x03 ^ 9, 0xe8 ^ 9]);
    let whole = dissect(Direction::FromClient, &stream);
    assert_eq!(whole.len(), 4);
    for size in 1..20 {
        let mut dissector = Dissector::new(Direction::FromClient);
        let mut done = Vec::new();
        for piece in stream.chunks(size) {
            dissector.feed(piece, &mut done);
        }
        assert_eq!(done, whole, "pieces of {size}");
    }
    assert_eq!(
        whole[2].payload,
        (0..SHOWN as u32).map(|i| i as u8).collect::<Vec<_>>()
    );
    assert_eq!(whole[3].close_code(), Some(1000));
    // Nothing is reported for a frame until its last byte.
    let mut done = Vec::new();
    Dissector::new(Direction::FromClient).feed(&stream[..stream.len() - 1], &mut done);
    assert_eq!(done, whole[..3]);
}

#[test]
fn rule_breaking_frames_are_named() {
    let cases: &[(&[u8], &[Note])] = &[
        (&[0xc1, 0x80, 0, 0, 0, 0], &[Note::ReservedBits]),
        (&[0x83, 0x80, 0, 0, 0, 0], &[Note::ReservedOpcode]),
        (
            &[0x81, 0xfe, 0, 5, 0, 0, 0, 0, 1, 2, 3, 4, 5],
            &[Note::LongerLengthThanNeeded],
        ),
        (
            &[0x82, 0xff, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 7],
            &[Note::LongerLengthThanNeeded],
        ),
        (&[0x09, 0x80, 0, 0, 0, 0], &[Note::ControlFragmented]),
        (&[0x80, 0x80, 0, 0, 0, 0], &[Note::NothingToContinue]),
        (&[0x88, 0x81, 0, 0, 0, 0, 3], &[Note::CloseBodyOfOneByte]),
        (
            &[0x88, 0x82, 0, 0, 0, 0, 0x03, 0xed],
            &[Note::CloseCodeNotAllowed],
        ),
        (
            &[0x01, 0x80, 0, 0, 0, 0, 0x81, 0x80, 0, 0, 0, 0],
            &[Note::MessageInterrupted],
        ),
    ];
    for (bytes, notes) in cases {
        let frames = dissect(Direction::FromClient, bytes);
        let last = frames.last().expect("a whole frame");
        assert_eq!(last.notes, *notes, "{bytes:02x?}");
    }
    let mut long_ping = vec![0x89, 0xfe, 0, 126, 0, 0, 0, 0];
    long_ping.resize(8 + 126, 0);
    assert_eq!(
        one(Direction::FromClient, &long_ping).notes,
        [Note::ControlTooLong]
    );
}

#[test]
fn text_cut_inside_a_character_keeps_the_whole_characters() {
    // 127 ASCII bytes, then "é" (2 bytes) across the 128-byte boundary.
    let mut text = "a".repeat(127);
    text.push('é');
    let mut bytes = vec![0x81, 0x7e, 0, text.len() as u8];
    bytes.extend(text.as_bytes());
    let f = one(Direction::FromServer, &bytes);
    assert!(f.cut());
    assert_eq!(f.text(), Some("a".repeat(127).as_str()));
    // Not UTF-8 at all: no text, only hex.
    assert_eq!(
        one(Direction::FromServer, &[0x81, 2, 0xff, 0xfe]).text(),
        None
    );
}

#[test]
fn headers_agree_with_tungstenite() {
    // tungstenite's parser is an independent implementation of section 5.2.
    let headers: &[&[u8]] = &[
        HELLO_UNMASKED,
        HELLO_MASKED,
        PONG_MASKED,
        &[0x02, 0x7e, 0x01, 0x00],
        &[0xf2, 0xff, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 9],
        &[0x80, 0xfe, 0, 1],
        &[0x81],
        &[],
    ];
    for bytes in headers {
        let theirs = FrameHeader::parse(&mut Cursor::new(bytes)).unwrap();
        let ours = parse_header(bytes);
        match (theirs, ours) {
            (None, None) => {}
            (Some((t, length)), Some(o)) => {
                assert_eq!(t.is_final, o.fin);
                assert_eq!([t.rsv1, t.rsv2, t.rsv3], o.rsv);
                assert_eq!(u8::from(t.opcode), o.opcode);
                assert_eq!(t.mask, o.mask);
                assert_eq!(length, o.length);
                assert_eq!(t.len(length), o.len, "{bytes:02x?}");
            }
            (t, o) => panic!("{bytes:02x?}: tungstenite {t:?}, ours {o:?}"),
        }
    }
}
