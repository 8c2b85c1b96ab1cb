//! Log output: `tracing` to stderr, JSON lines for log collectors or readable text for people.

use std::io::{IsTerminal, Write};

use tracing_appender::non_blocking::WorkerGuard;

use serde::Deserialize;
use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// JSON unless stderr is a terminal: a container or a service manager gets JSON, a person
    /// running nexkey in a shell gets text.
    #[default]
    Auto,
    /// One JSON object per line, with the request span's fields (request id, operation…).
    Json,
    /// Human-readable lines.
    Pretty,
}

impl std::str::FromStr for LogFormat {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "auto" => Ok(LogFormat::Auto),
            "json" => Ok(LogFormat::Json),
            "pretty" => Ok(LogFormat::Pretty),
            _ => Err("expected auto, json or pretty".into()),
        }
    }
}

impl LogFormat {
    /// The format `auto` stands for on this process.
    pub fn resolve(self) -> LogFormat {
        match self {
            LogFormat::Auto if std::io::stderr().is_terminal() => LogFormat::Pretty,
            LogFormat::Auto => LogFormat::Json,
            other => other,
        }
    }
}

/// Installs the global subscriber: level filter from `NEXKEY_LOG` (default `info`). Lines are
/// handed to a writer thread through a bounded queue, so a slow or stalled log reader never holds
/// up a request (lines beyond the queue are dropped); keep the guard until exit to flush it.
pub fn init(format: LogFormat) -> WorkerGuard {
    let filter = EnvFilter::try_from_env("NEXKEY_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let (writer, guard) = tracing_appender::non_blocking(Stderr);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        // The default reports a failed write with eprintln!, which panics when stderr is gone.
        .log_internal_errors(false)
        // Colours only for a person at a terminal, never escape codes in a file.
        .with_ansi(std::io::stderr().is_terminal());
    match format.resolve() {
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .init(),
        _ => builder.init(),
    }
    guard
}

/// Standard error that never fails its caller: a line that cannot be written (a full disk, a
/// closed pipe) is dropped and counted in `nexkey_log_lines_dropped_total`. Logging must never
/// take a request, or the server, down.
struct Stderr;

impl Write for Stderr {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        if std::io::stderr().write_all(line).is_err() {
            crate::metrics::log_line_dropped();
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush().ok();
        Ok(())
    }
}
