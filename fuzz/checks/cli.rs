//! The `cli` target: the command line.

/// Arguments are the input split at NUL bytes. `cli::parse` never panics; an error is one
/// non-empty line; an accepted configuration keeps every documented bound.
pub fn check_cli(data: &[u8]) {
    use wschat::cli::{parse, Command};
    let args: Vec<String> = data
        .split(|&b| b == 0)
        .take(64)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    match parse(args.clone()) {
        Err(message) => {
            assert!(
                !message.is_empty() && !message.contains('\n'),
                "{message:?}"
            );
        }
        Ok(Command::Run(config)) => {
            let (host, port) = config.addr.rsplit_once(':').expect("HOST:PORT");
            assert!(
                !host.is_empty() && port.parse::<u16>().is_ok(),
                "{}",
                config.addr
            );
            for (what, value) in [
                ("max chat message", config.max_chat_message),
                ("max echo message", config.max_echo_message),
                ("max connections", config.max_connections),
                ("queue bytes", config.queue_bytes),
                ("max connections per ip", config.max_connections_per_ip),
                ("max rooms", config.max_rooms),
            ] {
                assert!(value >= 1, "{what} is 0 from {args:?}");
            }
            for origin in &config.allowed_origins {
                assert!(
                    origin == "*" || super::origin::model_origin(origin.as_bytes()).is_some(),
                    "accepted an --allowed-origin that can never match: {origin:?}"
                );
            }
            for timeout in [
                config.head_timeout,
                config.write_timeout,
                config.keep_alive_timeout,
            ] {
                assert!(!timeout.is_zero(), "a zero timeout from {args:?}");
            }
        }
        Ok(Command::Help | Command::Version) => {}
    }
}
