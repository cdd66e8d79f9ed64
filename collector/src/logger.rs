//! A minimal `log` backend writing to stderr, one line per message with a UTC timestamp.

use log::{Level, LevelFilter, Log, Metadata, Record};
use std::io::Write;

struct StderrLogger;

static LOGGER: StderrLogger = StderrLogger;

impl Log for StderrLogger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        // Libraries log at warning and above only: the database driver's debug lines
        // carry every statement's parameters, device data included.
        let ours = metadata.target().starts_with("assent");
        metadata.level() <= log::max_level() && (ours || metadata.level() <= Level::Warn)
    }

    fn log(&self, record: &Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let level = match record.level() {
            Level::Error => "error",
            Level::Warn => "warning",
            Level::Info => "info",
            Level::Debug => "debug",
            Level::Trace => "trace",
        };
        // A failed write to stderr has nowhere better to be reported.
        let _ = writeln!(
            std::io::stderr().lock(),
            "assent-collector: {level}: {}",
            record.args()
        );
    }

    fn flush(&self) {}
}

/// Installs the logger (once) and sets the level to `level`, unless `ASSENT_LOG` names
/// another level. Called again once the config is read, to apply its `log_level`.
pub fn init(level: LevelFilter) {
    let level = std::env::var("ASSENT_LOG")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(level);
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(level);
}
