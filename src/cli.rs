//! The command line: flags to a [`Config`].
//!
//! Every flag is one entry of [`FLAGS`]: its name, the name of its value, its help text, how
//! its default is shown (read from [`Config::default`]) and how it sets the [`Config`]. Both
//! [`help`] and [`parse`] are built from that table, and a test checks README.md's flag table
//! against `--help`, so the three cannot drift. Adding a flag is adding one entry to the table
//! in `cli/flags.rs`.
//!
//! Hand-written rather than pulled from a crate: a table of flags of four shapes does not
//! justify a dependency, and the `--help` text doubles as the reference for every default.

use crate::config::Config;
use std::fmt::Write;

mod flags;
pub use flags::FLAGS;

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

/// One command-line flag: everything about it in one place.
pub struct Flag {
    /// The flag as typed, e.g. `--addr`.
    pub name: &'static str,
    /// Whether it takes a value, and what it does to the [`Config`].
    pub takes: Takes,
    /// What it means, for `--help`.
    pub help: &'static str,
    /// Its default as `--help` and README.md show it, read from [`Config::default`].
    pub default: fn(&Config) -> String,
}

/// How a [`Flag`] sets the [`Config`].
pub enum Takes {
    /// A switch, given without a value.
    Nothing(fn(&mut Config)),
    /// A value, named in the help (e.g. `HOST:PORT`). The function stores it, or says what is
    /// wrong with it in words that follow the flag's name ("expects a whole number, ...").
    Value(&'static str, fn(&mut Config, &str) -> Result<(), String>),
}

impl Flag {
    /// The flag with the name of its value, as `--help` and README.md write it:
    /// `--addr HOST:PORT`, `--trace-handshake`.
    pub fn usage(&self) -> String {
        match self.takes {
            Takes::Nothing(_) => self.name.to_string(),
            Takes::Value(value, _) => format!("{} {value}", self.name),
        }
    }
}

/// Width of the flag column in `--help`.
const USAGE_WIDTH: usize = 28;

/// The `--help` text, with every flag and its default.
pub fn help() -> String {
    let defaults = Config::default();
    let mut text = format!(
        "wschat {}: a small WebSocket chat and echo server

USAGE:
    wschat [OPTIONS]

ENDPOINTS:
    /            the chat page (static files); /#NAME opens room NAME
    /chat        the chat room lobby (WebSocket)
    /chat/NAME   the chat room NAME (WebSocket)
    /echo        echoes every message back (WebSocket)
    /healthz     200 while the server takes connections

OPTIONS:
",
        env!("CARGO_PKG_VERSION")
    );
    for flag in FLAGS {
        let _ = writeln!(
            text,
            "    {:<USAGE_WIDTH$}{} [default: {}]",
            flag.usage(),
            flag.help,
            (flag.default)(&defaults)
        );
    }
    for (usage, help) in [
        ("-h, --help", "print this help"),
        ("-V, --version", "print the version"),
    ] {
        let _ = writeln!(text, "    {usage:<USAGE_WIDTH$}{help}");
    }
    text
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
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) if name.starts_with("--") => (name, Some(value)),
            _ => (arg.as_str(), None),
        };
        match name {
            "-h" | "--help" => return Ok(Command::Help),
            "-V" | "--version" => return Ok(Command::Version),
            _ => {}
        }
        let Some(flag) = FLAGS.iter().find(|flag| flag.name == name) else {
            // Quoted with {:?} so that whatever the argument holds (a newline, say) stays on
            // one line.
            return Err(format!("unknown argument {arg:?} (try --help)"));
        };
        match flag.takes {
            Takes::Nothing(set) => {
                if inline.is_some() {
                    return Err(format!("{name} takes no value"));
                }
                set(&mut config);
            }
            Takes::Value(_, set) => {
                let value = match inline {
                    Some(value) => value.to_string(),
                    None => args.next().ok_or_else(|| format!("{name} needs a value"))?,
                };
                set(&mut config, &value).map_err(|why| format!("{name} {why}"))?;
            }
        }
    }
    Ok(Command::Run(Box::new(config)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use std::time::Duration;

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
        ])
        .unwrap();
        assert_eq!(config.addr, "127.0.0.1:0");
        assert_eq!(config.allowed_origins, ["http://a", "http://b"]);
        assert_eq!(config.history, 7);
        assert!(config.trace_handshake);
    }

    #[test]
    fn every_flag_sets_its_field() {
        let config = run(&[
            "--root=/srv",
            "--max-message=10",
            "--max-echo-message=11",
            "--max-connections=12",
            "--ping-interval=0",
            "--queue-messages=14",
            "--queue-bytes=15",
            "--rate-limit=16",
            "--head-timeout=17",
            "--write-timeout=18",
            "--keep-alive=19",
        ])
        .unwrap();
        assert_eq!(config.root, Some(PathBuf::from("/srv")));
        assert_eq!(config.max_chat_message, 10);
        assert_eq!(config.max_echo_message, 11);
        assert_eq!(config.max_connections, 12);
        assert_eq!(config.ping_interval, Duration::ZERO);
        assert_eq!(config.queue_messages, 14);
        assert_eq!(config.queue_bytes, 15);
        assert_eq!(config.rate_limit, 16);
        assert_eq!(config.head_timeout, Duration::from_secs(17));
        assert_eq!(config.write_timeout, Duration::from_secs(18));
        assert_eq!(config.keep_alive_timeout, Duration::from_secs(19));
    }

    #[test]
    fn queue_messages_defaults_to_no_count_bound_and_takes_old_values() {
        assert_eq!(run(&[]).unwrap().queue_messages, 0);
        assert_eq!(run(&["--queue-messages", "0"]).unwrap().queue_messages, 0);
        assert_eq!(
            run(&["--queue-messages", "256"]).unwrap().queue_messages,
            256
        );
        assert!(run(&["--queue-messages", "-1"]).is_err());
    }

    #[test]
    fn bad_flags_are_one_line_errors() {
        for (args, expected) in [
            (
                &["--bogus"][..],
                r#"unknown argument "--bogus" (try --help)"#,
            ),
            (&["--addr"], "--addr needs a value"),
            (
                &["--addr", "nonsense"],
                r#"--addr expects HOST:PORT, got "nonsense""#,
            ),
            (
                &["--history", "-1"],
                r#"--history expects a whole number, got "-1""#,
            ),
            (&["--max-message", "0"], "--max-message must be at least 1"),
            (
                &["--trace-handshake=yes"],
                "--trace-handshake takes no value",
            ),
            (
                &["--bogus\nsecond line"],
                r#"unknown argument "--bogus\nsecond line" (try --help)"#,
            ),
            (
                &["--history", "1\n2"],
                r#"--history expects a whole number, got "1\n2""#,
            ),
        ] {
            assert_eq!(run(args).unwrap_err(), expected, "{args:?}");
        }
    }

    #[test]
    fn help_and_version_win_wherever_they_are() {
        assert!(matches!(parse(["--history", "1", "-h"]), Ok(Command::Help)));
        assert!(matches!(parse(["--help=x"]), Ok(Command::Help)));
        assert!(matches!(parse(["-V", "--bogus"]), Ok(Command::Version)));
    }

    #[test]
    fn help_lists_every_flag_once_with_its_default() {
        let text = help();
        let defaults = Config::default();
        for flag in FLAGS {
            assert!(flag.name.starts_with("--"), "{}", flag.name);
            assert!(
                flag.usage().len() < USAGE_WIDTH,
                "{} is too wide",
                flag.usage()
            );
            let line = format!(
                "    {:<USAGE_WIDTH$}{} [default: {}]\n",
                flag.usage(),
                flag.help,
                (flag.default)(&defaults)
            );
            assert_eq!(text.matches(&line).count(), 1, "{line}");
            let same_name = FLAGS.iter().filter(|f| f.name == flag.name).count();
            assert_eq!(same_name, 1, "{} defined twice", flag.name);
        }
        assert!(text.contains("[default: 127.0.0.1:8080]"));
        assert!(text.contains(
            "--max-echo-message BYTES    largest /echo message [default: 16777216 (16 MiB)]"
        ));
    }
}
