//! The `dataforge` binary: parse the arguments, run the library, map the outcome to an
//! exit code (0 ok, 1 a check found something, 2 an error). Errors print once, on
//! stderr, as `dataforge: ` and the whole cause chain.

use std::process::ExitCode;

use clap::Parser as _;
use dataforge::cli::{self, Cli};

fn main() -> ExitCode {
    let args = Cli::parse();
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
    match runtime.block_on(cli::run(args)) {
        Ok(code) => code,
        // the reader of stdout went away (`| head`): nothing more to say to anyone
        Err(e)
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) =>
        {
            ExitCode::SUCCESS
        }
        Err(e) => {
            cli::say(&cli::describe(&e));
            ExitCode::from(cli::EXIT_ERROR)
        }
    }
}
