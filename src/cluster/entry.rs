//! One entry of a room's stream, as its fields are written and read.
//!
//! Three kinds, each a flat list of field names and values (what `XADD` takes):
//! - `kind message`, `from`, `text`, `node`, `member`: a chat message of member `member` on
//!   node `node` (so that node does not send it back to its sender);
//! - `kind join`, `name`, `node`, `member`: someone joined (on `node`, which welcomes them
//!   when it reads this);
//! - `kind leave`, `name`, `node`, `member`: someone left, or their node stopped answering.
//!
//! Decoding is strict: a missing or malformed field is an error naming it, and the reader
//! skips that entry (and logs it). Entries are read from Redis, which anyone with access to it
//! can write: they are input, not trusted.

use std::fmt;

/// A stream entry's id, `MS-SEQ`: Redis makes each one larger than the one before.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Hash)]
pub struct EntryId {
    /// Milliseconds since the Unix epoch on Redis's clock when it was added.
    pub ms: u64,
    /// Its number within that millisecond.
    pub seq: u64,
}

impl EntryId {
    /// `0-0`: before any entry.
    pub const ZERO: EntryId = EntryId { ms: 0, seq: 0 };

    /// Parses `MS-SEQ`; `None` for anything else.
    pub fn parse(text: &str) -> Option<EntryId> {
        let (ms, seq) = text.split_once('-')?;
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(ms) || !digits(seq) {
            return None;
        }
        Some(EntryId {
            ms: ms.parse().ok()?,
            seq: seq.parse().ok()?,
        })
    }
}

impl fmt::Display for EntryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// What happened in a room, as one stream entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// A chat message.
    Message {
        /// The sender's name.
        from: String,
        /// What they said.
        text: String,
        /// The sender's node.
        node: String,
        /// The sender's member number on that node.
        member: u64,
    },
    /// Someone joined.
    Join {
        /// Their name.
        name: String,
        /// Their node.
        node: String,
        /// Their member number on that node.
        member: u64,
    },
    /// Someone left.
    Leave {
        /// Their name.
        name: String,
        /// Their node.
        node: String,
        /// Their member number on that node.
        member: u64,
    },
}

impl Entry {
    /// The fields to append, in order.
    pub fn fields(&self) -> Vec<(&'static str, String)> {
        match self {
            Entry::Message {
                from,
                text,
                node,
                member,
            } => vec![
                ("kind", "message".into()),
                ("from", from.clone()),
                ("text", text.clone()),
                ("node", node.clone()),
                ("member", member.to_string()),
            ],
            Entry::Join { name, node, member } | Entry::Leave { name, node, member } => {
                let kind = match self {
                    Entry::Join { .. } => "join",
                    _ => "leave",
                };
                vec![
                    ("kind", kind.into()),
                    ("name", name.clone()),
                    ("node", node.clone()),
                    ("member", member.to_string()),
                ]
            }
        }
    }

    /// Reads an entry from its fields (name, value pairs in any order).
    pub fn decode(fields: &[(&[u8], &[u8])]) -> Result<Entry, String> {
        let get = |name: &str| -> Result<String, String> {
            let (_, value) = fields
                .iter()
                .find(|(n, _)| *n == name.as_bytes())
                .ok_or_else(|| format!("no {name:?} field"))?;
            String::from_utf8(value.to_vec()).map_err(|_| format!("{name:?} is not UTF-8"))
        };
        let member = || -> Result<u64, String> {
            get("member")?
                .parse()
                .map_err(|_| "\"member\" is not a number".to_string())
        };
        match get("kind")?.as_str() {
            "message" => Ok(Entry::Message {
                from: get("from")?,
                text: get("text")?,
                node: get("node")?,
                member: member()?,
            }),
            "join" => Ok(Entry::Join {
                name: get("name")?,
                node: get("node")?,
                member: member()?,
            }),
            "leave" => Ok(Entry::Leave {
                name: get("name")?,
                node: get("node")?,
                member: member()?,
            }),
            other => Err(format!("unknown kind {other:?}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(entry: &Entry) -> Result<Entry, String> {
        let fields = entry.fields();
        let pairs: Vec<(&[u8], &[u8])> = fields
            .iter()
            .map(|(n, v)| (n.as_bytes(), v.as_bytes()))
            .collect();
        Entry::decode(&pairs)
    }

    #[test]
    fn entries_survive_their_fields() {
        for entry in [
            Entry::Message {
                from: "alice".into(),
                text: "hi \"there\"\n".into(),
                node: "n1".into(),
                member: 7,
            },
            Entry::Join {
                name: "bob smith".into(),
                node: "n2".into(),
                member: 0,
            },
            Entry::Leave {
                name: "👩🏽‍⚕️".into(),
                node: "n3".into(),
                member: u64::MAX,
            },
        ] {
            assert_eq!(round_trip(&entry), Ok(entry));
        }
    }

    #[test]
    fn malformed_entries_are_refused_with_a_reason() {
        type Fields<'a> = &'a [(&'a [u8], &'a [u8])];
        let cases: [(Fields, &str); 5] = [
            (&[], "no \"kind\" field"),
            (&[(b"kind", b"shout")], "unknown kind \"shout\""),
            (&[(b"kind", b"join"), (b"name", b"a")], "no \"node\" field"),
            (
                &[
                    (b"kind", b"leave"),
                    (b"name", b"a"),
                    (b"node", b"n"),
                    (b"member", b"-1"),
                ],
                "\"member\" is not a number",
            ),
            (
                &[(b"kind", b"message"), (b"from", b"\xff")],
                "\"from\" is not UTF-8",
            ),
        ];
        for (fields, why) in cases {
            assert_eq!(Entry::decode(fields), Err(why.to_string()));
        }
    }

    #[test]
    fn ids_parse_print_and_order() {
        let id = EntryId::parse("1700000000000-3").unwrap();
        assert_eq!(id.to_string(), "1700000000000-3");
        assert!(id < EntryId::parse("1700000000000-4").unwrap());
        assert!(id < EntryId::parse("1700000000001-0").unwrap());
        assert!(EntryId::ZERO < id);
        for bad in [
            "",
            "1",
            "1-",
            "-1",
            "a-1",
            "1-2-3",
            "+1-2",
            "99999999999999999999-0",
        ] {
            assert_eq!(EntryId::parse(bad), None, "{bad}");
        }
    }
}
