//! The `dataforge` binary: parse the arguments, run the library, map the outcome to an
//! exit code (0 ok, 1 a check found something, 2 an error, 130 interrupted by Ctrl-C,
//! 143 by SIGTERM). Errors print once, on stderr, as `dataforge: ` and the whole cause
//! chain. On a signal or a panic, what the run had made and not finished (a staging
//! database, a partial file) is removed before the exit, and the message says so.

use std::process::ExitCode;

use clap::Parser as _;
use dataforge::cli::{self, Cli};

enum End {
    Done(anyhow::Result<ExitCode>),
    Panicked,
    Signal(&'static str, u8, dataforge::cleanup::Pending),
}

/// With `--json`, a failure still prints JSON on stdout (`{"error": …}`) unless the command
/// printed its own report.
fn json_error(json: bool, message: &str) {
    if json && !cli::emitted() {
        use std::io::Write as _;
        let _ = std::io::stdout().write_all(cli::json_error(message).as_bytes());
    }
}

fn main() -> ExitCode {
    let json = std::env::args_os().any(|a| a == "--json");
    let args = Cli::parse();
    // a panic is a bug: one line saying where, then the clean-up below
    std::panic::set_hook(Box::new(|info| {
        let what = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        cli::say(&format!(
            "internal error{at}: {}; this is a bug, please report it",
            what.replace('\n', " ")
        ));
    }));
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            cli::say(&format!("cannot start the async runtime: {e}"));
            return ExitCode::from(cli::EXIT_ERROR);
        }
    };
    let end = runtime.block_on(async {
        let mut task = tokio::spawn(cli::run(args));
        let done = |r: Result<anyhow::Result<ExitCode>, tokio::task::JoinError>| match r {
            Ok(r) => End::Done(r),
            Err(_) => End::Panicked,
        };
        tokio::select! {
            r = &mut task => done(r),
            s = dataforge::cleanup::interrupted() => {
                if dataforge::cleanup::handles_signals() {
                    // the command cancels its own work and says how to go on
                    done(task.await)
                } else {
                    let pending = dataforge::cleanup::take();
                    task.abort();
                    End::Signal(s.0, s.1, pending)
                }
            }
        }
    });
    // a blocking task the command let go of (a health check's HTTP attempt after
    // Ctrl-C) must not hold up the exit: the runtime is let go without waiting for it
    let code = match end {
        End::Done(Ok(code)) => {
            runtime.shutdown_background();
            return code;
        }
        // the reader of stdout went away (`| head`): nothing more to say to anyone
        End::Done(Err(e))
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) =>
        {
            runtime.shutdown_background();
            return ExitCode::SUCCESS;
        }
        End::Done(Err(e)) => {
            let message = cli::describe(&e);
            json_error(json, &message);
            cli::say(&message);
            runtime.shutdown_background();
            // a command that handled Ctrl-C or SIGTERM itself exits as an interrupted one
            let interrupted = e
                .chain()
                .find_map(|c| c.downcast_ref::<dataforge::cleanup::Interrupted>())
                .map(|i| i.code);
            return ExitCode::from(interrupted.unwrap_or(cli::EXIT_ERROR));
        }
        End::Panicked => {
            let cleaned = runtime.block_on(dataforge::cleanup::abort(dataforge::cleanup::take()));
            if !cleaned.is_empty() {
                cli::say(&format!(
                    "stopped by the error above: {}",
                    cleaned.join("; ")
                ));
            }
            json_error(json, "internal error (a bug): see stderr");
            cli::EXIT_ERROR
        }
        End::Signal(name, code, pending) => {
            // a second signal, or a server that does not answer: exit without waiting (the
            // next run on the target finds and drops what was left)
            let cleaned = runtime.block_on(async {
                tokio::select! {
                    c = tokio::time::timeout(
                        std::time::Duration::from_secs(15),
                        dataforge::cleanup::abort(pending),
                    ) => c.unwrap_or_else(|_| vec![
                        "the clean-up took too long; the next run on the target drops what was left".into(),
                    ]),
                    _ = dataforge::cleanup::interrupted() => vec![
                        "interrupted again before the clean-up finished; the next run on the target drops what was left".into(),
                    ],
                }
            });
            let message = if cleaned.is_empty() {
                format!("interrupted ({name}); nothing was left half-done")
            } else {
                format!("interrupted ({name}): {}", cleaned.join("; "))
            };
            json_error(json, &message);
            cli::say(&message);
            code
        }
    };
    // worker threads may still be busy: exit without waiting for them (children die
    // with us, see dataforge::child)
    runtime.shutdown_background();
    std::process::exit(i32::from(code));
}
