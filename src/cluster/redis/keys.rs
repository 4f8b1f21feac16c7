//! The Redis keys wschat uses, all under `wschat:`.
//!
//! | key | type | what |
//! |---|---|---|
//! | `wschat:room:NAME` | stream | the room: its entries ([`crate::cluster::entry`]) |
//! | `wschat:room:NAME:members` | hash | who is in it: name key -> `NODE MEMBER NAME` |
//! | `wschat:room:NAME:epoch` | string | made with the room; gone means Redis lost it |
//! | `wschat:node:ID` | string | a node's liveness, expiring after `--node-timeout` |
//! | `wschat:node:ID:rooms` | set | rooms where the node has (had) members |
//! | `wschat:node:ID:wake` | stream | written to wake the node's reader |
//! | `wschat:nodes` | set | every node that may have members |

/// What every room key starts with.
pub const ROOM_PREFIX: &str = "wschat:room:";

/// The set of nodes.
pub const NODES: &str = "wschat:nodes";

/// A room's stream.
pub fn stream(room: &str) -> String {
    format!("{ROOM_PREFIX}{room}")
}

/// The room a stream key belongs to, if it is one.
pub fn room_of(stream: &str) -> Option<&str> {
    stream
        .strip_prefix(ROOM_PREFIX)
        .filter(|r| !r.contains(':'))
}

/// A room's members.
pub fn members(room: &str) -> String {
    format!("{ROOM_PREFIX}{room}:members")
}

/// A room's epoch.
pub fn epoch(room: &str) -> String {
    format!("{ROOM_PREFIX}{room}:epoch")
}

/// A node's liveness.
pub fn node(id: &str) -> String {
    format!("wschat:node:{id}")
}

/// A node's rooms.
pub fn node_rooms(id: &str) -> String {
    format!("wschat:node:{id}:rooms")
}

/// A node's wake-up stream.
pub fn wake(id: &str) -> String {
    format!("wschat:node:{id}:wake")
}

/// A member's value in its room's members hash.
pub fn member_value(node: &str, member: u64, name: &str) -> String {
    format!("{node} {member} {name}")
}

/// The node, member number and name in a members hash value.
pub fn parse_member_value(value: &str) -> Option<(&str, u64, &str)> {
    let (node, rest) = value.split_once(' ')?;
    let (member, name) = rest.split_once(' ')?;
    Some((node, member.parse().ok()?, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_values() {
        assert_eq!(stream("lobby"), "wschat:room:lobby");
        assert_eq!(room_of("wschat:room:lobby"), Some("lobby"));
        assert_eq!(room_of("wschat:room:lobby:members"), None);
        assert_eq!(room_of("wschat:node:x:wake"), None);
        let value = member_value("n1", 7, "bob smith");
        assert_eq!(parse_member_value(&value), Some(("n1", 7, "bob smith")));
        assert_eq!(parse_member_value("n1 x bob"), None);
    }
}
