use std::io::Write;

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    // The log format is a setting; when the settings are invalid the command itself reports it.
    let format = nexkey::config::Settings::load()
        .map(|settings| settings.log_format)
        .unwrap_or_default();
    let _log_writer = nexkey::logging::init(format);
    match nexkey::cli::run(nexkey::cli::Cli::parse()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            // Not eprintln!: with stderr gone it would panic instead of exiting with the error.
            let _ = writeln!(std::io::stderr(), "nexkey: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
