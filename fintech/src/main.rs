//! The `fintech` command. See `fintech --help`.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = fintech::cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("fintech: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(fintech::run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // One line a person can act on: the whole cause chain.
            eprintln!("fintech: {e:#}");
            tracing::error!(error = %format!("{e:#}"), "fintech failed");
            std::process::ExitCode::FAILURE
        }
    }
}
