//! A minimal `log` backend writing to stderr, one line per message with a UTC timestamp.

use log::{Level, LevelFilter, Log, Metadata, Record};
use std::io::Write;

struct StderrLogger;

static LOGGER: StderrLogger = StderrLogger;

impl Log for StderrLogger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.level() <= log::max_level()
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

/// Installs the logger at `level`, unless `ASSENT_LOG` names another level. Messages of
/// other crates (rustls, hyper) are shown only at debug and below.
pub fn init(level: LevelFilter) {
    let level = std::env::var("ASSENT_LOG")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(level);
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(level);
    }
}
