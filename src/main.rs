//! The `wschat` command: parse flags, bind, print the URL, serve until SIGINT or SIGTERM.

use std::io::Write;
use std::process::ExitCode;
use wschat::cli::{self, Command};
use wschat::Server;

fn main() -> ExitCode {
    let mut args = Vec::new();
    for arg in std::env::args_os().skip(1) {
        match arg.into_string() {
            Ok(arg) => args.push(arg),
            Err(arg) => return usage_error(&format!("argument {arg:?} is not valid UTF-8")),
        }
    }
    let config = match cli::parse(args) {
        Ok(Command::Run(config)) => *config,
        Ok(Command::Help) => {
            print!("{}", cli::help());
            return ExitCode::SUCCESS;
        }
        Ok(Command::Version) => {
            println!("wschat {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Err(message) => return usage_error(&message),
    };
    let server = match Server::bind(config) {
        Ok(server) => server,
        Err(e) => {
            // The error says what could not be done: listen, or keep history.
            eprintln!("wschat: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (local, metrics, shutdown) = match (
        server.local_addr(),
        server.metrics_addr(),
        server.shutdown_handle(),
    ) {
        (Ok(local), Ok(metrics), Ok(shutdown)) => (local, metrics, shutdown),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
            eprintln!("wschat: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Scripts wait for this exact first line to learn the port, so it is flushed at once; the
    // metrics address, when asked for, is the second.
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "listening on http://{local}/");
    if let Some(metrics) = metrics {
        let _ = writeln!(stdout, "metrics on http://{metrics}/metrics");
    }
    let _ = stdout.flush();
    drop(stdout);

    // A history write past the file size limit (RLIMIT_FSIZE) must fail with EFBIG, refusing
    // that one message, rather than kill the process (SIGXFSZ's default action).
    let noted = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    if let Err(e) = signal_hook::flag::register(signal_hook::consts::SIGXFSZ, noted) {
        eprintln!("wschat: cannot handle SIGXFSZ ({e}); a file size limit would stop the server");
    }
    match signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
    ]) {
        Ok(mut signals) => {
            std::thread::spawn(move || {
                if signals.forever().next().is_some() {
                    shutdown.shutdown();
                }
            });
        }
        Err(e) => {
            eprintln!("wschat: cannot handle signals ({e}); Ctrl-C will not close clients cleanly")
        }
    }
    match server.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wschat: {e}");
            ExitCode::FAILURE
        }
    }
}

fn usage_error(message: &str) -> ExitCode {
    eprintln!("wschat: {message}");
    ExitCode::from(2)
}
