//! The events the server sends, each one JSON object.

use std::fmt::Write;

/// One thing the server tells a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event<'a> {
    /// Your name was accepted; `members` are the others already in the room.
    Welcome {
        /// The room joined.
        room: &'a str,
        /// The accepted (trimmed) name.
        name: &'a str,
        /// Everyone else present.
        members: &'a [&'a str],
    },
    /// Your name was refused; try another.
    NameRefused {
        /// Why, for a person to read.
        reason: &'a str,
    },
    /// A chat message.
    Message {
        /// The sender's name.
        from: &'a str,
        /// What they said.
        text: &'a str,
        /// True for messages replayed to a newcomer.
        backlog: bool,
    },
    /// Your message was not sent to anyone (it could not be stored); you may send it again.
    NotSent {
        /// What you said.
        text: &'a str,
        /// Why, for a person to read.
        reason: &'a str,
    },
    /// Someone joined.
    Join {
        /// Their name.
        name: &'a str,
    },
    /// Someone left.
    Leave {
        /// Their name.
        name: &'a str,
    },
    /// Several joins and leaves at once, for a member that fell behind: who is new and who is
    /// gone since the member's last notice.
    Presence {
        /// Names that joined, in order.
        joined: &'a [&'a str],
        /// Names that left, in order.
        left: &'a [&'a str],
    },
    /// The room's shared store (Redis, with `--redis`) cannot be reached: messages are refused
    /// (`not-sent`) until a `restored` event.
    Degraded {
        /// What is wrong, for a person to read.
        reason: &'a str,
    },
    /// The room's shared store can be reached again; nothing it took was lost.
    Restored,
    /// Everyone present, for a member that fell so far behind that the changes are no longer
    /// kept: it replaces the member list.
    Members {
        /// Everyone present, the member included.
        members: &'a [&'a str],
    },
}

impl Event<'_> {
    /// The event as one JSON object.
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(64);
        match *self {
            Event::Welcome {
                room,
                name,
                members,
            } => {
                out.push_str(r#"{"type":"welcome","room":"#);
                push_json_string(&mut out, room);
                out.push_str(r#","name":"#);
                push_json_string(&mut out, name);
                out.push_str(r#","members":"#);
                push_json_list(&mut out, members);
            }
            Event::NameRefused { reason } => {
                out.push_str(r#"{"type":"name-refused","reason":"#);
                push_json_string(&mut out, reason);
            }
            Event::Message {
                from,
                text,
                backlog,
            } => {
                out.push_str(r#"{"type":"message","from":"#);
                push_json_string(&mut out, from);
                out.push_str(r#","text":"#);
                push_json_string(&mut out, text);
                if backlog {
                    out.push_str(r#","backlog":true"#);
                }
            }
            Event::NotSent { text, reason } => {
                out.push_str(r#"{"type":"not-sent","text":"#);
                push_json_string(&mut out, text);
                out.push_str(r#","reason":"#);
                push_json_string(&mut out, reason);
            }
            Event::Join { name } => {
                out.push_str(r#"{"type":"join","name":"#);
                push_json_string(&mut out, name);
            }
            Event::Leave { name } => {
                out.push_str(r#"{"type":"leave","name":"#);
                push_json_string(&mut out, name);
            }
            Event::Presence { joined, left } => {
                out.push_str(r#"{"type":"presence","joined":"#);
                push_json_list(&mut out, joined);
                out.push_str(r#","left":"#);
                push_json_list(&mut out, left);
            }
            Event::Degraded { reason } => {
                out.push_str(r#"{"type":"degraded","reason":"#);
                push_json_string(&mut out, reason);
            }
            Event::Restored => out.push_str(r#"{"type":"restored""#),
            Event::Members { members } => {
                out.push_str(r#"{"type":"members","members":"#);
                push_json_list(&mut out, members);
            }
        }
        out.push('}');
        out
    }
}

/// Appends `items` as a JSON array of strings.
fn push_json_list(out: &mut String, items: &[&str]) {
    out.push('[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_json_string(out, item);
    }
    out.push(']');
}

/// Appends `s` as a JSON string literal (RFC 8259 section 7): quotes, backslashes and control
/// characters escaped. `<`, `>` and `&` are escaped too, so the output is also safe to embed
/// in HTML by a careless client, and U+2028/U+2029 for old JavaScript parsers.
pub fn push_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() || matches!(c, '<' | '>' | '&' | '\u{2028}' | '\u{2029}') => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_text_stays_inside_strings() {
        let forged = r#"hi","type":"join","name":"mallory"#;
        let json = Event::Message {
            from: "eve",
            text: forged,
            backlog: false,
        }
        .to_json();
        assert_eq!(
            json,
            r#"{"type":"message","from":"eve","text":"hi\",\"type\":\"join\",\"name\":\"mallory"}"#
        );
        let json = Event::Join { name: "a\u{1}<b>" }.to_json();
        assert_eq!(json, r#"{"type":"join","name":"a\u0001\u003cb\u003e"}"#);
    }

    #[test]
    fn welcome_lists_members() {
        let json = Event::Welcome {
            room: "lobby",
            name: "bob",
            members: &["alice", "carol"],
        }
        .to_json();
        assert_eq!(
            json,
            r#"{"type":"welcome","room":"lobby","name":"bob","members":["alice","carol"]}"#
        );
        let json = Event::Presence {
            joined: &["a"],
            left: &[],
        }
        .to_json();
        assert_eq!(json, r#"{"type":"presence","joined":["a"],"left":[]}"#);
        let json = Event::Degraded { reason: "down" }.to_json();
        assert_eq!(json, r#"{"type":"degraded","reason":"down"}"#);
        assert_eq!(Event::Restored.to_json(), r#"{"type":"restored"}"#);
    }
}
