//! The table of flags: adding a flag is adding an entry here (and a row to README.md's table,
//! which a test compares with `--help`).

use super::{Flag, Takes};
use crate::origin;
use std::path::PathBuf;
use std::time::Duration;

/// Every flag, in the order `--help` lists them.
pub const FLAGS: &[Flag] = &[
    Flag {
        name: "--addr",
        takes: Takes::Value("HOST:PORT", |c, v| store(&mut c.addr, host_port(v))),
        help: "address to listen on; port 0 picks a free one",
        default: |d| d.addr.clone(),
    },
    Flag {
        name: "--root",
        takes: Takes::Value("DIR", |c, v| store(&mut c.root, Ok(Some(PathBuf::from(v))))),
        help: "serve DIR instead of the page built into the binary",
        default: |d| match &d.root {
            Some(dir) => dir.display().to_string(),
            None => "built-in page".to_string(),
        },
    },
    Flag {
        name: "--allowed-origin",
        takes: Takes::Value("URL", |c, v| {
            c.allowed_origins.push(origin::check_allowed(v)?);
            Ok(())
        }),
        help: "also accept upgrades from this Origin; '*' for any; repeatable",
        default: |d| {
            if d.allowed_origins.is_empty() {
                "same origin".to_string()
            } else {
                d.allowed_origins.join(" ")
            }
        },
    },
    Flag {
        name: "--trace-handshake",
        takes: Takes::Nothing(|c| c.trace_handshake = true),
        help: "print every upgrade request and reply head to stderr",
        default: |d| on_off(d.trace_handshake),
    },
    Flag {
        name: "--history",
        takes: Takes::Value("N", |c, v| store(&mut c.history, number(v))),
        help: "past chat messages a newcomer receives",
        default: |d| d.history.to_string(),
    },
    Flag {
        name: "--data",
        takes: Takes::Value("DIR", |c, v| store(&mut c.data, Ok(Some(PathBuf::from(v))))),
        help: "keep chat history in DIR",
        default: |d| match &d.data {
            Some(dir) => dir.display().to_string(),
            None => "$STATE_DIRECTORY, $XDG_STATE_HOME/wschat or ~/.local/state/wschat".to_string(),
        },
    },
    Flag {
        name: "--ephemeral",
        takes: Takes::Nothing(|c| c.ephemeral = true),
        help: "keep chat history in memory only",
        default: |d| on_off(d.ephemeral),
    },
    Flag {
        name: "--fsync",
        takes: Takes::Nothing(|c| c.fsync = true),
        help: "each message reaches the disk before anyone receives it",
        default: |d| on_off(d.fsync),
    },
    Flag {
        name: "--history-keep",
        takes: Takes::Value("N", |c, v| store(&mut c.history_keep, positive(v))),
        help: "chat messages kept on disk per room",
        default: |d| d.history_keep.to_string(),
    },
    Flag {
        name: "--max-message",
        takes: Takes::Value("BYTES", |c, v| store(&mut c.max_chat_message, positive(v))),
        help: "largest chat message; larger closes with 1009",
        default: |d| bytes(d.max_chat_message),
    },
    Flag {
        name: "--max-echo-message",
        takes: Takes::Value("BYTES", |c, v| store(&mut c.max_echo_message, positive(v))),
        help: "largest /echo message",
        default: |d| bytes(d.max_echo_message),
    },
    Flag {
        name: "--max-connections",
        takes: Takes::Value("N", |c, v| store(&mut c.max_connections, positive(v))),
        help: "connections served at once; past it, 503",
        default: |d| d.max_connections.to_string(),
    },
    Flag {
        name: "--ping-interval",
        takes: Takes::Value("SECS", |c, v| store(&mut c.ping_interval, seconds(v))),
        help: "heartbeat ping interval; 0 turns it off",
        default: |d| d.ping_interval.as_secs().to_string(),
    },
    Flag {
        name: "--queue-messages",
        takes: Takes::Value("N", |c, v| store(&mut c.queue_messages, number(v))),
        help: "extra bound on messages queued for one client; 0 is none, bytes decide",
        default: |d| d.queue_messages.to_string(),
    },
    Flag {
        name: "--queue-bytes",
        takes: Takes::Value("BYTES", |c, v| store(&mut c.queue_bytes, positive(v))),
        help: "bytes of others' messages queued for one client before 1008",
        default: |d| bytes(d.queue_bytes),
    },
    Flag {
        name: "--rate-limit",
        takes: Takes::Value("N", |c, v| store(&mut c.rate_limit, number(v))),
        help: "chat messages per member per 10 s; 0 is unlimited",
        default: |d| d.rate_limit.to_string(),
    },
    Flag {
        name: "--max-rooms",
        takes: Takes::Value("N", |c, v| store(&mut c.max_rooms, positive(v))),
        help: "chat rooms at most; past it, joining a new room is refused",
        default: |d| d.max_rooms.to_string(),
    },
    Flag {
        name: "--head-timeout",
        takes: Takes::Value("SECS", |c, v| {
            store(&mut c.head_timeout, nonzero_seconds(v))
        }),
        help: "time allowed for a request head to arrive",
        default: |d| d.head_timeout.as_secs().to_string(),
    },
    Flag {
        name: "--write-timeout",
        takes: Takes::Value("SECS", |c, v| {
            store(&mut c.write_timeout, nonzero_seconds(v))
        }),
        help: "a write stuck this long closes the connection",
        default: |d| d.write_timeout.as_secs().to_string(),
    },
    Flag {
        name: "--keep-alive",
        takes: Takes::Value("SECS", |c, v| {
            store(&mut c.keep_alive_timeout, nonzero_seconds(v))
        }),
        help: "idle time before a keep-alive connection closes",
        default: |d| d.keep_alive_timeout.as_secs().to_string(),
    },
    Flag {
        name: "--trusted-proxy",
        takes: Takes::Value("CIDR", |c, v| {
            c.trusted_proxies.push(v.parse()?);
            Ok(())
        }),
        help: "read the client address from this proxy's X-Forwarded-For; repeatable",
        default: |d| {
            if d.trusted_proxies.is_empty() {
                "none".to_string()
            } else {
                let ranges: Vec<String> = d.trusted_proxies.iter().map(|c| c.to_string()).collect();
                ranges.join(" ")
            }
        },
    },
    Flag {
        name: "--max-connections-per-ip",
        takes: Takes::Value("N", |c, v| {
            store(&mut c.max_connections_per_ip, positive(v))
        }),
        help: "connections from one client address; past it, 429",
        default: |d| d.max_connections_per_ip.to_string(),
    },
    Flag {
        name: "--metrics-addr",
        takes: Takes::Value("HOST:PORT", |c, v| {
            store(&mut c.metrics_addr, host_port(v).map(Some))
        }),
        help: "serve Prometheus metrics at /metrics here; keep it private",
        default: |d| d.metrics_addr.clone().unwrap_or_else(|| "off".to_string()),
    },
    Flag {
        name: "--redis",
        takes: Takes::Value("URL", |c, v| store(&mut c.redis, redis_url(v).map(Some))),
        help: "share rooms with other nodes through this Redis, redis://HOST:PORT[/DB]",
        default: |d| d.redis.clone().unwrap_or_else(|| "none".to_string()),
    },
    Flag {
        name: "--node-timeout",
        takes: Takes::Value("SECS", |c, v| {
            store(&mut c.node_timeout, nonzero_seconds(v))
        }),
        help: "with --redis: a node silent this long has its members removed",
        default: |d| d.node_timeout.as_secs().to_string(),
    },
];

/// Stores a parsed value in its field, or passes the parse error on.
fn store<T>(field: &mut T, value: Result<T, String>) -> Result<(), String> {
    *field = value?;
    Ok(())
}

fn host_port(value: &str) -> Result<String, String> {
    // Resolution happens at bind time; here we only insist on the HOST:PORT shape so that a
    // typo is reported as a usage error (exit 2) rather than as a bind failure.
    match value.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {
            Ok(value.to_string())
        }
        _ => Err(format!("expects HOST:PORT, got {value:?}")),
    }
}

/// `redis://HOST:PORT` with an optional `/DB` number: the one form wschat documents (no
/// password, no TLS, no Unix socket), checked here so a typo is a usage error.
fn redis_url(value: &str) -> Result<String, String> {
    let bad = || format!("expects redis://HOST:PORT[/DB], got {value:?}");
    let rest = value.strip_prefix("redis://").ok_or_else(bad)?;
    let (address, db) = match rest.split_once('/') {
        Some((address, db)) => (address, Some(db)),
        None => (rest, None),
    };
    if db.is_some_and(|db| db.is_empty() || !db.bytes().all(|b| b.is_ascii_digit())) {
        return Err(bad());
    }
    let host_ok = |host: &str| {
        !host.is_empty()
            && !host.contains('@')
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-.[]:".contains(&b))
    };
    match address.rsplit_once(':') {
        Some((host, port)) if host_ok(host) && port.parse::<u16>().is_ok_and(|p| p > 0) => {
            Ok(value.to_string())
        }
        _ => Err(bad()),
    }
}

fn number<T: std::str::FromStr>(value: &str) -> Result<T, String> {
    value
        .parse()
        .map_err(|_| format!("expects a whole number, got {value:?}"))
}

fn positive(value: &str) -> Result<usize, String> {
    match number::<usize>(value)? {
        0 => Err("must be at least 1".to_string()),
        n => Ok(n),
    }
}

fn seconds(value: &str) -> Result<Duration, String> {
    number::<u64>(value).map(Duration::from_secs)
}

fn nonzero_seconds(value: &str) -> Result<Duration, String> {
    positive(value).map(|s| Duration::from_secs(s as u64))
}

fn on_off(on: bool) -> String {
    if on { "on" } else { "off" }.to_string()
}

/// A byte count as typed, with its size in KiB or MiB when it is a whole number of them:
/// `16777216 (16 MiB)`.
fn bytes(n: usize) -> String {
    const KIB: usize = 1024;
    const MIB: usize = 1024 * KIB;
    match n {
        n if n >= MIB && n % MIB == 0 => format!("{n} ({} MiB)", n / MIB),
        n if n >= KIB && n % KIB == 0 => format!("{n} ({} KiB)", n / KIB),
        n => n.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_urls() {
        for good in [
            "redis://127.0.0.1:6379",
            "redis://redis.internal:6380/2",
            "redis://[::1]:6379/0",
        ] {
            assert_eq!(redis_url(good), Ok(good.to_string()));
        }
        for bad in [
            "127.0.0.1:6379",
            "redis://127.0.0.1",
            "redis://:6379",
            "redis://host:0",
            "redis://host:6379/",
            "redis://host:6379/x",
            "redis://user:pw@host:6379",
            "rediss://host:6379",
        ] {
            assert!(redis_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn byte_counts_show_their_unit() {
        assert_eq!(bytes(100), "100");
        assert_eq!(bytes(4096), "4096 (4 KiB)");
        assert_eq!(bytes(1 << 20), "1048576 (1 MiB)");
        assert_eq!(bytes((1 << 20) + 1024), "1049600 (1025 KiB)");
    }
}
