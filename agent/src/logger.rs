//! A minimal `log` backend writing to stderr.

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
            "assent: {level}: {}",
            record.args()
        );
    }

    fn flush(&self) {}
}

/// Installs the logger; the level comes from `ASSENT_LOG` when set.
pub fn init(default: LevelFilter) {
    if log::set_logger(&LOGGER).is_ok() {
        set_level(default);
    }
}

/// Sets the level (from the config, say) unless `ASSENT_LOG` overrides it.
pub fn set_level(level: LevelFilter) {
    let level = env_level().unwrap_or(level);
    log::set_max_level(level);
}

fn env_level() -> Option<LevelFilter> {
    std::env::var("ASSENT_LOG")
        .ok()
        .and_then(|v| v.parse().ok())
}
