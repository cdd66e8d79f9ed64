//! Helpers shared by the store's integration tests.

// Test code: a failed unwrap is a failed test, and printing explains it.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]

use assent_store::{NewEvent, Record, StoreOptions};
use std::path::Path;
use std::time::Duration;

/// A 2024 wall time, well past the "clock not set" floor.
pub const T0_MS: i64 = 1_717_000_000_000;

pub fn event(category: &str, n: u64, payload_len: usize) -> NewEvent {
    let mut payload = vec![0u8; payload_len];
    for (i, b) in payload.iter_mut().enumerate() {
        *b = (n as usize).wrapping_mul(31).wrapping_add(i) as u8;
    }
    NewEvent {
        category: category.to_owned(),
        kind: format!("kind-{}", n % 3),
        wall_time_ms: T0_MS + n as i64,
        boot_id: [n as u8; 16],
        monotonic_ns: n.wrapping_mul(1_000_003) | (1 << 63),
        payload,
    }
}

pub fn options(max_bytes: u64) -> StoreOptions {
    StoreOptions {
        max_bytes,
        group_commit_window: Duration::from_millis(1),
        ..StoreOptions::default()
    }
}

/// Runs `PRAGMA integrity_check` on a closed buffer with a separate connection.
pub fn integrity_check(dir: &Path) -> String {
    let conn = rusqlite::Connection::open(dir.join("buffer.db")).expect("open for check");
    let lines: Vec<String> = conn
        .prepare("PRAGMA integrity_check")
        .expect("prepare")
        .query_map([], |r| r.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    lines.join("; ")
}

/// Sum of the sizes of every file the buffer uses.
pub fn footprint(dir: &Path) -> u64 {
    [
        "buffer.db",
        "buffer.db-wal",
        "buffer.db-shm",
        "buffer.db.reserve",
    ]
    .iter()
    .map(|f| std::fs::metadata(dir.join(f)).map_or(0, |m| m.len()))
    .sum()
}

pub fn gaps(records: &[Record]) -> Vec<&assent_store::GapRecord> {
    records
        .iter()
        .filter_map(|r| match r {
            Record::Gap(g) => Some(g),
            Record::Event(_) => None,
        })
        .collect()
}

pub fn event_seqs(records: &[Record]) -> Vec<u64> {
    records
        .iter()
        .filter_map(|r| match r {
            Record::Event(e) => Some(e.seq),
            Record::Gap(_) => None,
        })
        .collect()
}

/// Writes one line in one write, so a kill never leaves half a number before a newline.
pub fn print_line(line: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(line.as_bytes()).unwrap();
    out.flush().unwrap();
}

/// A producer thread that appends forever (events `c<producer>-n`), printing each accepted
/// seq on a line of its own: the child side of the crash and power-cut tests.
pub fn spawn_appender(
    store: std::sync::Arc<assent_store::Store>,
    producer: usize,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut n = 0u64;
        loop {
            let seq = store
                .append(event(&format!("c{producer}"), n, 200))
                .unwrap();
            print_line(&format!("{seq}\n"));
            n += 1;
        }
    })
}

/// A small xorshift generator so tests need no extra dependency; the seed is printed.
pub struct Rng(u64);

impl Rng {
    pub fn from_time() -> Self {
        let seed = std::env::var("ASSENT_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(1, |d| d.as_nanos() as u64)
                    | 1
            });
        println!("rng seed {seed} (set ASSENT_TEST_SEED to repeat)");
        Self(seed)
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}
