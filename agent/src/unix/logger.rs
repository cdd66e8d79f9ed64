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
            // journald reads the priority from a `<N>` prefix on each line (a line without
            // one is info) and adds its own metadata.
            let message = record.args().to_string();
            let mut stderr = std::io::stderr().lock();
            message
                .lines()
                .try_for_each(|line| writeln!(stderr, "<{priority}>{line}"))
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

/// Whether stderr is connected to the journal: systemd sets `JOURNAL_STREAM` to the
/// stream's `device:inode`, which a child that redirected its stderr no longer matches.
pub fn journald() -> bool {
    static JOURNAL: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *JOURNAL.get_or_init(|| {
        use std::os::unix::fs::MetadataExt;
        let Some(stream) = std::env::var_os("JOURNAL_STREAM") else {
            return false;
        };
        let Ok(stderr) = std::fs::metadata("/proc/self/fd/2") else {
            return false;
        };
        stream.to_string_lossy() == format!("{}:{}", stderr.dev(), stderr.ino())
    })
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
