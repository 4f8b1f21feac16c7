//! One stored chat message: a line of JSON with a checksum, written whole or not at all.
//!
//! ```text
//! {"at":"2026-12-02T05:22:24.123Z","from":"alice","text":"hi","crc":"168953c9"}
//! ```
//!
//! `crc` is the CRC-32 (IEEE) of everything before `,"crc"`. A line is accepted only when its
//! checksum holds and it is exactly what [`encode`] makes of what it decodes to, so a torn,
//! damaged or hand-edited line is never read as a message, and no message appears that
//! nobody sent.

use crate::chat_protocol::{clean_name, push_json_string};

/// A message as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// When it was said, RFC 3339 UTC with milliseconds.
    pub at: String,
    /// Who said it (a name the rules accept).
    pub from: String,
    /// What they said.
    pub text: String,
}

/// The line for `entry`, ending in `\n`.
pub fn encode(entry: &Entry) -> String {
    let mut line = String::with_capacity(entry.text.len() + entry.from.len() + 64);
    line.push_str(r#"{"at":"#);
    push_json_string(&mut line, &entry.at);
    line.push_str(r#","from":"#);
    push_json_string(&mut line, &entry.from);
    line.push_str(r#","text":"#);
    push_json_string(&mut line, &entry.text);
    let sum = crc32(line.as_bytes());
    line.push_str(&format!(r#","crc":"{sum:08x}"}}"#));
    line.push('\n');
    line
}

/// The entry a line holds (without its `\n`), or `None` when it is not a whole line that
/// [`encode`] made.
pub fn decode(line: &[u8]) -> Option<Entry> {
    const SUM: &[u8] = br#","crc":""#;
    let body_len = line.len().checked_sub(SUM.len() + 8 + 2)?;
    let (body, tail) = line.split_at(body_len);
    let sum = tail.strip_prefix(SUM)?.strip_suffix(br#""}"#)?;
    let sum = u32::from_str_radix(std::str::from_utf8(sum).ok()?, 16).ok()?;
    if sum != crc32(body) {
        return None;
    }
    let mut fields = Fields(std::str::from_utf8(body).ok()?);
    fields.expect(r#"{"at":"#)?;
    let at = fields.string()?;
    fields.expect(r#","from":"#)?;
    let from = fields.string()?;
    fields.expect(r#","text":"#)?;
    let text = fields.string()?;
    if !fields.0.is_empty() || !is_timestamp(&at) || clean_name(&from) != Ok(from.as_str()) {
        return None;
    }
    let entry = Entry { at, from, text };
    // Only the canonical form: one way to write each message.
    (encode(&entry).as_bytes().strip_suffix(b"\n") == Some(line)).then_some(entry)
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ`.
fn is_timestamp(at: &str) -> bool {
    let b = at.as_bytes();
    b.len() == 24
        && b.iter().enumerate().all(|(i, &c)| match i {
            4 | 7 => c == b'-',
            10 => c == b'T',
            13 | 16 => c == b':',
            19 => c == b'.',
            23 => c == b'Z',
            _ => c.is_ascii_digit(),
        })
}

/// The rest of a line being read.
struct Fields<'a>(&'a str);

impl Fields<'_> {
    fn expect(&mut self, literal: &str) -> Option<()> {
        self.0 = self.0.strip_prefix(literal)?;
        Some(())
    }

    /// A JSON string (RFC 8259 section 7), unescaped.
    fn string(&mut self) -> Option<String> {
        let mut chars = self.0.strip_prefix('"')?.char_indices();
        let mut out = String::new();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    self.0 = &self.0[1 + i + 1..];
                    return Some(out);
                }
                '\\' => {
                    let (_, escape) = chars.next()?;
                    out.push(match escape {
                        '"' | '\\' | '/' => escape,
                        'n' => '\n',
                        'r' => '\r',
                        't' => '\t',
                        'b' => '\u{8}',
                        'f' => '\u{c}',
                        'u' => {
                            let high = hex4(&mut chars)?;
                            let code = match high {
                                0xD800..=0xDBFF => {
                                    (chars.next()?.1 == '\\' && chars.next()?.1 == 'u')
                                        .then_some(())?;
                                    let low = hex4(&mut chars)?;
                                    if !(0xDC00..=0xDFFF).contains(&low) {
                                        return None;
                                    }
                                    0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)
                                }
                                _ => high,
                            };
                            char::from_u32(code)?
                        }
                        _ => return None,
                    });
                }
                c if c < ' ' => return None,
                c => out.push(c),
            }
        }
        None
    }
}

fn hex4(chars: &mut std::str::CharIndices<'_>) -> Option<u32> {
    let mut n = 0;
    for _ in 0..4 {
        n = n * 16 + chars.next()?.1.to_digit(16)?;
    }
    Some(n)
}

/// CRC-32 as in zlib and Ethernet (reflected polynomial 0xEDB88320).
fn crc32(bytes: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut table = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 == 1 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
                k += 1;
            }
            table[i] = c;
            i += 1;
        }
        table
    };
    !bytes.iter().fold(!0u32, |c, &b| {
        TABLE[((c ^ u32::from(b)) & 0xFF) as usize] ^ (c >> 8)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(text: &str) -> Entry {
        Entry {
            at: "2026-12-02T05:22:24.123Z".into(),
            from: "alice".into(),
            text: text.into(),
        }
    }

    #[test]
    fn crc32_check_value() {
        // The standard check value of CRC-32/ISO-HDLC.
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn the_documented_line() {
        let line = encode(&Entry {
            at: "2026-12-02T05:22:24.123Z".into(),
            from: "alice".into(),
            text: "hi".into(),
        });
        assert_eq!(
            line,
            "{\"at\":\"2026-12-02T05:22:24.123Z\",\"from\":\"alice\",\"text\":\"hi\",\"crc\":\"168953c9\"}\n"
        );
    }

    #[test]
    fn what_is_written_reads_back() {
        for text in [
            "hi",
            "quote \" backslash \\ newline \n tab \t",
            "<b>&amp;</b> \u{2028} \u{1}",
            "emoji 👩🏽‍⚕️ and 𝄞",
        ] {
            let line = encode(&entry(text));
            assert!(line.ends_with('\n') && !line[..line.len() - 1].contains('\n'));
            let read = decode(line.trim_end_matches('\n').as_bytes());
            assert_eq!(read, Some(entry(text)), "{line}");
        }
    }

    #[test]
    fn damaged_torn_or_foreign_lines_are_not_messages() {
        let line = encode(&entry("hello"));
        let line = line.trim_end_matches('\n').as_bytes();
        // Any single changed byte breaks it.
        for i in 0..line.len() {
            let mut bad = line.to_vec();
            bad[i] ^= 0x04;
            assert_eq!(decode(&bad), None, "byte {i}");
        }
        // Any cut.
        for n in 0..line.len() {
            assert_eq!(decode(&line[..n]), None, "cut at {n}");
        }
        // A well-formed line with a valid checksum but written another way, or with a name
        // the rules refuse, is not ours.
        let other = r#"{"at":"2026-12-02T05:22:24.123Z","from":"alice","text":"\u0068i"}"#;
        let forged = format!(r#"{other},"crc":"{:08x}"}}"#, crc32(other.as_bytes()));
        assert_eq!(decode(forged.as_bytes()), None);
        let mut bad_name = entry("x");
        bad_name.from = " alice".into();
        assert_eq!(decode(encode(&bad_name).trim_end().as_bytes()), None);
    }
}
