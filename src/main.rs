use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    // The log format is a setting; when the settings are invalid the command itself reports it.
    let format = nexkey::config::Settings::load()
        .map(|settings| settings.log_format)
        .unwrap_or_default();
    nexkey::logging::init(format);
    match nexkey::cli::run(nexkey::cli::Cli::parse()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("nexkey: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
