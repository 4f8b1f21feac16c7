//! The command line: flags to a [`Config`].
//!
//! Hand-written rather than pulled from a crate: seventeen flags of five shapes do not justify a
//! dependency, and the `--help` text doubles as the reference for every default.

use crate::config::Config;
use crate::origin;
use std::path::PathBuf;
use std::time::Duration;

/// What the command line asked for.
#[derive(Debug)]
pub enum Command {
    /// Run the server with this configuration.
    Run(Box<Config>),
    /// Print [`help`] and exit 0.
    Help,
    /// Print the version and exit 0.
    Version,
}

/// The `--help` text, with every flag and its default.
pub fn help() -> String {
    let d = Config::default();
    format!(
        "wschat {version}: a small WebSocket chat and echo server

USAGE:
    wschat [OPTIONS]

ENDPOINTS:
    /          the chat page (static files)
    /chat      the chat room (WebSocket)
    /echo      echoes every message back (WebSocket)

OPTIONS:
    --addr HOST:PORT            address to listen on; port 0 picks a free one [default: {addr}]
    --root DIR                  serve DIR instead of the page built into the binary
    --allowed-origin URL        also accept upgrades from this Origin; '*' for any; repeatable [default: same origin]
    --trace-handshake           print every upgrade request and reply head to stderr
    --history N                 past chat messages a newcomer receives [default: {history}]
    --max-message BYTES         largest chat message; larger closes with 1009 [default: {chat}]
    --max-echo-message BYTES    largest /echo message [default: {echo}]
    --max-connections N         connections served at once; past it, 503 [default: {conns}]
    --ping-interval SECS        heartbeat ping interval; 0 turns it off [default: {ping}]
    --queue-messages N          messages queued for one slow client before 1008 [default: {qm}]
    --queue-bytes BYTES         bytes queued for one slow client before 1008 [default: {qb}]
    --rate-limit N              chat messages per member per 10 s; 0 is unlimited [default: {rate}]
    --head-timeout SECS         time allowed for a request head to arrive [default: {head}]
    --write-timeout SECS        a write stuck this long closes the connection [default: {write}]
    --keep-alive SECS           idle time before a keep-alive connection closes [default: {ka}]
    --trusted-proxy CIDR        read the client address from this proxy's X-Forwarded-For; repeatable [default: none]
    --max-connections-per-ip N  connections from one client address; past it, 429 [default: {per_ip}]
    -h, --help                  print this help
    -V, --version               print the version
",
        version = env!("CARGO_PKG_VERSION"),
        addr = d.addr,
        history = d.history,
        chat = d.max_chat_message,
        echo = d.max_echo_message,
        conns = d.max_connections,
        ping = d.ping_interval.as_secs(),
        qm = d.queue_messages,
        qb = d.queue_bytes,
        rate = d.rate_limit,
        head = d.head_timeout.as_secs(),
        write = d.write_timeout.as_secs(),
        ka = d.keep_alive_timeout.as_secs(),
        per_ip = d.max_connections_per_ip,
    )
}

/// Parses the arguments after the program name. The error is one line for stderr.
pub fn parse<I, S>(args: I) -> Result<Command, String>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let mut config = Config::default();
    let mut args = args.into_iter().map(Into::into);
    while let Some(arg) = args.next() {
        // Both `--flag value` and `--flag=value` are accepted.
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => {
                (flag.to_string(), Some(value.to_string()))
            }
            _ => (arg.clone(), None),
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "-V" | "--version" => return Ok(Command::Version),
            "--trace-handshake" => {
                if inline.is_some() {
                    return Err("--trace-handshake takes no value".to_string());
                }
                config.trace_handshake = true;
                continue;
            }
            _ => {}
        }
        let mut value = || -> Result<String, String> {
            match inline.clone().or_else(|| args.next()) {
                Some(v) => Ok(v),
                None => Err(format!("{flag} needs a value")),
            }
        };
        match flag.as_str() {
            "--addr" => config.addr = parse_addr(&value()?)?,
            "--root" => config.root = Some(PathBuf::from(value()?)),
            "--allowed-origin" => config
                .allowed_origins
                .push(origin::check_allowed(&value()?)?),
            "--history" => config.history = number(&flag, &value()?)?,
            "--max-message" => config.max_chat_message = positive(&flag, &value()?)?,
            "--max-echo-message" => config.max_echo_message = positive(&flag, &value()?)?,
            "--max-connections" => config.max_connections = positive(&flag, &value()?)?,
            "--ping-interval" => config.ping_interval = seconds(&flag, &value()?)?,
            "--queue-messages" => config.queue_messages = positive(&flag, &value()?)?,
            "--queue-bytes" => config.queue_bytes = positive(&flag, &value()?)?,
            "--rate-limit" => config.rate_limit = number(&flag, &value()?)?,
            "--head-timeout" => config.head_timeout = nonzero_seconds(&flag, &value()?)?,
            "--write-timeout" => config.write_timeout = nonzero_seconds(&flag, &value()?)?,
            "--keep-alive" => config.keep_alive_timeout = nonzero_seconds(&flag, &value()?)?,
            "--trusted-proxy" => config.trusted_proxies.push(
                value()?
                    .parse()
                    .map_err(|e| format!("--trusted-proxy: {e}"))?,
            ),
            "--max-connections-per-ip" => {
                config.max_connections_per_ip = positive(&flag, &value()?)?
            }
            // Quoted with {:?} so that whatever the argument holds (a newline, say) stays on one line.
            _ => return Err(format!("unknown argument {arg:?} (try --help)")),
        }
    }
    Ok(Command::Run(Box::new(config)))
}

fn parse_addr(value: &str) -> Result<String, String> {
    // Resolution happens at bind time; here we only insist on the HOST:PORT shape so that a
    // typo is reported as a usage error (exit 2) rather than as a bind failure.
    match value.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {
            Ok(value.to_string())
        }
        _ => Err(format!("--addr expects HOST:PORT, got {value:?}")),
    }
}

fn number<T: std::str::FromStr>(flag: &str, value: &str) -> Result<T, String> {
    value
        .parse()
        .map_err(|_| format!("{flag} expects a whole number, got {value:?}"))
}

fn positive(flag: &str, value: &str) -> Result<usize, String> {
    match number::<usize>(flag, value)? {
        0 => Err(format!("{flag} must be at least 1")),
        n => Ok(n),
    }
}

fn seconds(flag: &str, value: &str) -> Result<Duration, String> {
    number::<u64>(flag, value).map(Duration::from_secs)
}

fn nonzero_seconds(flag: &str, value: &str) -> Result<Duration, String> {
    positive(flag, value).map(|s| Duration::from_secs(s as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<Config, String> {
        match parse(args.iter().copied())? {
            Command::Run(config) => Ok(*config),
            other => panic!("expected Run, got {other:?}"),
        }
    }

    #[test]
    fn no_flags_gives_the_defaults() {
        let config = run(&[]).unwrap();
        assert_eq!(config.addr, "127.0.0.1:8080");
        assert_eq!(config.history, 50);
        assert!(config.root.is_none());
    }

    #[test]
    fn both_value_forms_and_repeats() {
        let config = run(&[
            "--addr=127.0.0.1:0",
            "--allowed-origin",
            "http://a",
            "--allowed-origin=http://b",
            "--history",
            "7",
            "--trace-handshake",
            "--trusted-proxy",
            "10.0.0.0/8",
            "--trusted-proxy=::1",
            "--max-connections-per-ip",
            "3",
            "--allowed-origin",
            "*",
        ])
        .unwrap();
        assert_eq!(config.addr, "127.0.0.1:0");
        assert_eq!(config.allowed_origins, ["http://a", "http://b", "*"]);
        let proxies: Vec<String> = config
            .trusted_proxies
            .iter()
            .map(|c| c.to_string())
            .collect();
        assert_eq!(proxies, ["10.0.0.0/8", "::1/128"]);
        assert_eq!(config.max_connections_per_ip, 3);
        assert_eq!(config.history, 7);
        assert!(config.trace_handshake);
    }

    #[test]
    fn bad_flags_are_one_line_errors() {
        for args in [
            &["--bogus"][..],
            &["--addr"],
            &["--addr", "nonsense"],
            &["--history", "-1"],
            &["--max-message", "0"],
            &["--trace-handshake=yes"],
            &["--bogus\nsecond line"],
            &["--history", "1\n2"],
            &["--trusted-proxy", "10.0.0.0/33\n"],
            &["--trusted-proxy", "example.com"],
            &["--max-connections-per-ip", "0"],
            &["--allowed-origin", "https://chat.example/\n"],
        ] {
            let err = run(args).unwrap_err();
            assert!(!err.contains('\n'), "{err}");
        }
    }

    #[test]
    fn help_names_every_flag_with_its_default() {
        let text = help();
        for flag in [
            "--addr",
            "--root",
            "--history",
            "--max-connections",
            "--ping-interval",
            "--trusted-proxy",
            "--max-connections-per-ip",
        ] {
            assert!(text.contains(flag), "{flag} missing from help");
        }
        assert!(text.contains("[default: 127.0.0.1:8080]"));
    }
}
