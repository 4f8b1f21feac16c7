//! Every chat room of the server, by name: `/chat` is the default room, `/chat/NAME` the room
//! NAME. A room is made by its first join and stays (with its history, which is also what
//! brings it back after a restart); `--max-rooms` caps how many there are. A room with no
//! members costs no thread, only its backlog, an open file and bookkeeping.
//!
//! With `--redis` every room is shared with the other nodes ([`Rooms::shared`]): its history
//! and order are its stream's, and this node's reader follows it from its first join here.

use crate::cluster::Cluster;
use crate::history::{RoomLog, Store};
use crate::room::Room;
use crate::sync::lock;
use std::collections::HashMap;
use std::io;
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

/// Why a join to a new room was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomRefused {
    /// The cap on rooms was reached.
    TooMany(usize),
    /// The room's history file could not be made.
    Storage(String),
}

impl RoomRefused {
    /// The reason given to the member (a close reason: at most 123 bytes).
    pub fn reason(&self) -> String {
        match self {
            RoomRefused::TooMany(max) => {
                format!("this server has its limit of {max} rooms: join an existing one")
            }
            RoomRefused::Storage(why) => format!("this room cannot be made now: {why}"),
        }
    }
}

/// The rooms of one server.
#[derive(Debug)]
pub struct Rooms {
    rooms: Mutex<HashMap<String, Arc<Room>>>,
    max: usize,
    history: usize,
    /// `None` in memory only, and once closed.
    store: Mutex<Option<Store>>,
    /// With `--redis`: the cluster every room is shared through.
    cluster: Option<Arc<dyn Cluster>>,
}

impl Rooms {
    /// No rooms yet, kept in memory only; at most `max`, each replaying `history` messages to
    /// newcomers.
    pub fn new(max: usize, history: usize) -> Self {
        Rooms {
            rooms: Mutex::new(HashMap::new()),
            max,
            history,
            store: Mutex::new(None),
            cluster: None,
        }
    }

    /// No rooms yet; each one made is shared through `cluster` (see the module docs).
    pub fn shared(max: usize, history: usize, cluster: Arc<dyn Cluster>) -> Self {
        Rooms {
            cluster: Some(cluster),
            ..Rooms::new(max, history)
        }
    }

    /// The rooms kept in `store`, each opened (and repaired) from its log. Returns the lines
    /// to log about what was found. An error names the file and says why.
    pub fn open(max: usize, history: usize, store: Store) -> io::Result<(Self, Vec<String>)> {
        let mut rooms = HashMap::new();
        let mut notes = Vec::new();
        let dir = store.dir.rooms();
        for name in store.dir.room_names()? {
            if room_for_path(&format!("/chat/{name}")) != Some(Ok(name.clone())) {
                let path = dir.join(format!("{name}.jsonl"));
                notes.push(format!("{}: not a room name, left alone", path.display()));
                continue;
            }
            let path = RoomLog::path_in(&dir, &name);
            let opened = RoomLog::open(&path, store.keep, history).map_err(|e| {
                io::Error::new(e.kind(), format!("cannot read {}: {e}", path.display()))
            })?;
            notes.extend(opened.repairs);
            let room = Room::stored(&name, history, opened.log, opened.newest, store.fsync)?;
            rooms.insert(name, room);
        }
        let rooms = Rooms {
            rooms: Mutex::new(rooms),
            max,
            history,
            store: Mutex::new(Some(store)),
            cluster: None,
        };
        Ok((rooms, notes))
    }

    /// The room called `name` (a name [`room_for_path`] accepted), made if it is new and the
    /// cap allows.
    pub fn get_or_create(&self, name: &str) -> Result<Arc<Room>, RoomRefused> {
        let mut rooms = lock(&self.rooms);
        if let Some(room) = rooms.get(name) {
            return Ok(Arc::clone(room));
        }
        if rooms.len() >= self.max {
            return Err(RoomRefused::TooMany(self.max));
        }
        let room = match (&*lock(&self.store), &self.cluster) {
            (None, Some(cluster)) => Room::shared(name, self.history, Arc::clone(cluster)),
            (None, None) => Room::new(name, self.history),
            (Some(store), _) => {
                let path = RoomLog::path_in(&store.dir.rooms(), name);
                let opened = RoomLog::open(&path, store.keep, self.history)
                    .map_err(|e| RoomRefused::Storage(e.to_string()))?;
                Room::stored(name, self.history, opened.log, opened.newest, store.fsync)
                    .map_err(|e| RoomRefused::Storage(e.to_string()))?
            }
        };
        rooms.insert(name.to_string(), Arc::clone(&room));
        Ok(room)
    }

    /// Closes every room's history and lets go of the data directory's lock, once the server
    /// has stopped: another server may then take it over.
    pub fn close(&self) {
        if let Some(cluster) = &self.cluster {
            cluster.stop();
        }
        let rooms: Vec<Arc<Room>> = lock(&self.rooms).values().cloned().collect();
        for room in rooms {
            room.close_history();
        }
        lock(&self.store).take();
    }

    /// The rooms that cannot store messages right now.
    pub fn failing(&self) -> Vec<String> {
        let rooms: Vec<Arc<Room>> = lock(&self.rooms).values().cloned().collect();
        rooms
            .iter()
            .filter(|room| room.is_failing())
            .map(|room| room.name().to_string())
            .collect()
    }

    /// The cluster's numbers, with `--redis` (`/metrics`).
    pub fn cluster_stats(&self) -> Option<crate::cluster::Stats> {
        self.cluster.as_ref().map(|c| c.stats())
    }

    /// What is wrong with the cluster the rooms are shared through, if anything (`/healthz`).
    pub fn cluster_problem(&self) -> Option<String> {
        self.cluster.as_ref().and_then(|c| c.problem())
    }

    /// How many rooms there are.
    pub fn count(&self) -> usize {
        lock(&self.rooms).len()
    }

    /// How many members all rooms have together (for the metrics).
    pub fn member_count(&self) -> usize {
        let rooms: Vec<Arc<Room>> = lock(&self.rooms).values().cloned().collect();
        rooms.iter().map(|room| room.members().len()).sum()
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
        assert_eq!(
            rooms.get_or_create("c").unwrap_err(),
            RoomRefused::TooMany(2)
        );
        assert!(
            rooms.get_or_create("b").is_ok(),
            "existing rooms stay reachable"
        );
        assert!(RoomRefused::TooMany(1000).reason().len() <= crate::frame::MAX_CLOSE_REASON);
    }
}
