//! A minimal `log` backend writing to stderr: `assent: <level>: <message>`, or under
//! journald `<N><message>` with the syslog priority N. No timestamp: the journal (or
//! whatever collects stderr) records when each line arrived.

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
        let (level, priority) = match record.level() {
            Level::Error => ("error", 3),
            Level::Warn => ("warning", 4),
            Level::Info => ("info", 6),
            Level::Debug => ("debug", 7),
            Level::Trace => ("trace", 7),
        };
        // A failed write to stderr has nowhere better to be reported.
        let _ = if journald() {
            // journald reads the priority from a `<N>` prefix and adds its own metadata.
            writeln!(std::io::stderr().lock(), "<{priority}>{}", record.args())
        } else {
            writeln!(
                std::io::stderr().lock(),
                "assent: {level}: {}",
                record.args()
            )
        };
    }

    fn flush(&self) {}
}

/// Whether stderr is connected to the journal (systemd sets `JOURNAL_STREAM`).
fn journald() -> bool {
    static JOURNAL: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *JOURNAL.get_or_init(|| std::env::var_os("JOURNAL_STREAM").is_some())
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
