//! Every chat room of the server, by name: `/chat` is the default room, `/chat/NAME` the room
//! NAME. A room is made by its first join and stays (with its history); `--max-rooms` caps how
//! many there are. A room with no members costs no thread, only its backlog and bookkeeping.

use crate::room::Room;
use crate::sync::lock;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The room `/chat` joins.
pub const DEFAULT_ROOM: &str = "lobby";

/// Longest room name, in characters.
pub const MAX_ROOM_NAME: usize = 32;

/// Why a path under `/chat/` names no room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadRoomName;

impl BadRoomName {
    /// The one-line reason sent with the 404.
    pub fn reason(self) -> String {
        format!("no such room: a room name is 1 to {MAX_ROOM_NAME} characters of a-z, 0-9, - and _")
    }
}

/// The room a WebSocket path names: `/chat` is [`DEFAULT_ROOM`], `/chat/NAME` is NAME in
/// lower case. `None` for paths that are not under `/chat`; an error for those under it that
/// are no room name.
pub fn room_for_path(path: &str) -> Option<Result<String, BadRoomName>> {
    if path == "/chat" {
        return Some(Ok(DEFAULT_ROOM.to_string()));
    }
    let name = path.strip_prefix("/chat/")?;
    let valid = (1..=MAX_ROOM_NAME).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    Some(match valid {
        true => Ok(name.to_ascii_lowercase()),
        false => Err(BadRoomName),
    })
}

/// The cap on rooms was reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooManyRooms(pub usize);

impl TooManyRooms {
    /// The reason given to the member (a close reason: at most 123 bytes).
    pub fn reason(self) -> String {
        format!(
            "this server has its limit of {} rooms: join an existing one",
            self.0
        )
    }
}

/// The rooms of one server.
#[derive(Debug)]
pub struct Rooms {
    rooms: Mutex<HashMap<String, Arc<Room>>>,
    max: usize,
    history: usize,
}

impl Rooms {
    /// No rooms yet; at most `max`, each replaying `history` messages to newcomers.
    pub fn new(max: usize, history: usize) -> Self {
        Rooms {
            rooms: Mutex::new(HashMap::new()),
            max,
            history,
        }
    }

    /// The room called `name` (a name [`room_for_path`] accepted), made if it is new and the
    /// cap allows.
    pub fn get_or_create(&self, name: &str) -> Result<Arc<Room>, TooManyRooms> {
        let mut rooms = lock(&self.rooms);
        if let Some(room) = rooms.get(name) {
            return Ok(Arc::clone(room));
        }
        if rooms.len() >= self.max {
            return Err(TooManyRooms(self.max));
        }
        let room = Room::new(name, self.history);
        rooms.insert(name.to_string(), Arc::clone(&room));
        Ok(room)
    }

    /// How many rooms there are.
    pub fn count(&self) -> usize {
        lock(&self.rooms).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_room_names() {
        assert_eq!(room_for_path("/chat"), Some(Ok("lobby".into())));
        assert_eq!(
            room_for_path("/chat/Rust-fans_2"),
            Some(Ok("rust-fans_2".into()))
        );
        assert_eq!(
            room_for_path(&format!("/chat/{}", "a".repeat(32))).map(|r| r.is_ok()),
            Some(true)
        );
        for bad in [
            "/chat/",
            "/chat/a/b",
            "/chat/a b",
            "/chat/%41",
            "/chat/é",
            "/chat/a.b",
        ] {
            assert_eq!(room_for_path(bad), Some(Err(BadRoomName)), "{bad}");
        }
        assert_eq!(
            room_for_path(&format!("/chat/{}", "a".repeat(33))),
            Some(Err(BadRoomName))
        );
        assert_eq!(room_for_path("/chatroom"), None);
        assert_eq!(room_for_path("/echo"), None);
    }

    #[test]
    fn rooms_are_made_once_and_capped() {
        let rooms = Rooms::new(2, 0);
        let a = rooms.get_or_create("a").unwrap();
        assert!(Arc::ptr_eq(&a, &rooms.get_or_create("a").unwrap()));
        rooms.get_or_create("b").unwrap();
        assert_eq!(rooms.get_or_create("c").unwrap_err(), TooManyRooms(2));
        assert!(
            rooms.get_or_create("b").is_ok(),
            "existing rooms stay reachable"
        );
        assert!(TooManyRooms(1000).reason().len() <= crate::frame::MAX_CLOSE_REASON);
    }
}
