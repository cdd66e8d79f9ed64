//! `cargo bench -p assent-collector --bench console`: how long the console's pages take
//! to read and render on a SQLite database holding 100,000 devices.
//!
//! The fleet: every device has 7 inventory events, 10 app events spread over the last 30
//! days, 8 consent records (one per category, a tenth of them later withdrawn), every
//! tenth device a gap; 1,000 erasures. Rows are written in one transaction straight into
//! the collector's schema (made by `SqliteStorage::open`) with the roll-ups built from
//! them in the same transaction, since ingesting 100,000
//! devices through the server would take minutes and measure ingest, not the console.
//! Prints a markdown table: the overview, each overview query, and the device page
//! (mean over 200 random devices), beside the aims in docs/operations.md. Not asserted.

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use assent_collector::console::queries::ConsoleQueries;
use assent_collector::console::sqlite::SqliteConsoleQueries;
use assent_collector::console::{read_device, render_overview};
use assent_collector::sqlite::SqliteStorage;
use assent_wire::Pseudonym;
use rusqlite::params;
use std::time::{Duration, Instant};

const DEVICES: u64 = 100_000;
const DAY_MS: i64 = 86_400_000;
const CATEGORIES: [&str; 8] = [
    "device_id",
    "hardware",
    "os",
    "network",
    "network_detail",
    "location",
    "software",
    "app_events",
];

fn pseudonym(n: u64) -> String {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut v = n;
    (0..Pseudonym::LEN)
        .map(|_| {
            let c = ALPHABET[(v % 32) as usize] as char;
            v /= 32;
            c
        })
        .collect()
}

fn fill(path: &std::path::Path, now: i64) {
    drop(SqliteStorage::open(path).unwrap());
    let mut conn = rusqlite::Connection::open(path).unwrap();
    conn.pragma_update(None, "synchronous", "OFF").unwrap();
    let tx = conn.transaction().unwrap();
    {
        let mut device = tx
            .prepare("INSERT INTO devices VALUES (?1, ?2, ?3)")
            .unwrap();
        let mut buffer = tx
            .prepare("INSERT INTO buffers VALUES (?1, 1, 100)")
            .unwrap();
        let mut event = tx
            .prepare(
                "INSERT INTO events (device, buffer_id, seq, category, kind, wall_time_ms, \
                 boot_id, monotonic_ns, payload_json, received_at_ms) \
                 VALUES (?1, 1, ?2, ?3, 'snapshot', ?4, '00', 0, ?5, ?4)",
            )
            .unwrap();
        let mut consent = tx
            .prepare(
                "INSERT INTO consent_records (device, buffer_id, seq, observed_at, category, \
                 active, state, by_whom, at, policy_version, received_at_ms) \
                 VALUES (?1, 1, ?2, '2026-01-01T00:00:00Z', ?3, ?4, ?5, NULL, NULL, 1, ?6)",
            )
            .unwrap();
        let mut gap = tx
            .prepare("INSERT INTO gaps VALUES (?1, 1, 99, 90, 99, 10, 'evicted', 'app_events', ?2)")
            .unwrap();
        for n in 0..DEVICES {
            let d = pseudonym(n);
            let first = now - 29 * DAY_MS + (n as i64 % 1000) * 1000;
            device.execute(params![d, first, now]).unwrap();
            buffer.execute(params![d]).unwrap();
            let mut seq = 1;
            for c in &CATEGORIES[1..7] {
                event
                    .execute(params![d, seq, c, first, "{\"present\":\"inventory\"}"])
                    .unwrap();
                seq += 1;
            }
            event
                .execute(params![d, seq, "device_id", first, "{\"pseudonym\":\"x\"}"])
                .unwrap();
            seq += 1;
            for i in 0..10 {
                let at = first + i * 3 * DAY_MS;
                event
                    .execute(params![
                        d,
                        seq,
                        "app_events",
                        at,
                        "{\"name\":\"door_opened\"}"
                    ])
                    .unwrap();
                seq += 1;
            }
            for c in CATEGORIES {
                consent
                    .execute(params![d, seq, c, true, "active", first])
                    .unwrap();
                seq += 1;
            }
            if n % 10 == 0 {
                consent
                    .execute(params![
                        d,
                        seq,
                        "location",
                        false,
                        "not_granted",
                        first + 5 * DAY_MS
                    ])
                    .unwrap();
                gap.execute(params![d, first + DAY_MS]).unwrap();
            }
        }
        let mut erasure = tx
            .prepare(
                "INSERT INTO erasure_log (device, categories, erased_events, at_ms, operator) \
                 VALUES (?1, 'location', 1, ?2, NULL)",
            )
            .unwrap();
        for n in 0..1000u64 {
            erasure
                .execute(params![pseudonym(n * 97), now - (n as i64 % 30) * DAY_MS])
                .unwrap();
        }
    }
    // The roll-ups the ingest transaction keeps, built here in one go.
    tx.execute_batch(
        "INSERT INTO daily_events SELECT received_at_ms / 86400000, category, COUNT(*) \
         FROM events GROUP BY 1, 2;
         INSERT INTO device_days SELECT DISTINCT received_at_ms / 86400000, device FROM events;
         INSERT INTO daily_devices SELECT day, COUNT(*) FROM device_days GROUP BY day;",
    )
    .unwrap();
    tx.commit().unwrap();
    conn.execute_batch("ANALYZE").unwrap();
}

/// One overview query, returning how many rows it read.
type Query = dyn Fn(&mut SqliteConsoleQueries) -> usize;

fn time<T>(runs: u32, mut f: impl FnMut() -> T) -> Duration {
    let mut best = Duration::MAX;
    for _ in 0..runs {
        let started = Instant::now();
        std::hint::black_box(f());
        best = best.min(started.elapsed());
    }
    best
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("collector.db");
    let now = assent_collector::server::now_ms();
    let started = Instant::now();
    fill(&path, now);
    let size = std::fs::metadata(&path).map_or(0, |m| m.len());
    println!(
        "\nconsole bench: {DEVICES} devices, {} events, {} MB, filled in {:.1} s\n",
        DEVICES * 17,
        size / 1_000_000,
        started.elapsed().as_secs_f64()
    );
    let mut q = SqliteConsoleQueries::open(&path).unwrap();
    let since = (now / DAY_MS - 29) * DAY_MS;
    println!("| page or query | best of 3 (ms) | aim (ms) |");
    println!("|---|---:|---:|");
    let overview = time(3, || render_overview(&mut q, now, "bench").unwrap().len());
    println!(
        "| overview page (all below + render) | {} | 1000 |",
        ms(overview)
    );
    let rows: [(&str, Box<Query>); 6] = [
        ("totals", Box::new(|q| q.totals().map(|_| 1).unwrap())),
        (
            "devices per day (30 days)",
            Box::new(move |q| q.devices_per_day(since).unwrap().len()),
        ),
        (
            "events per day and category",
            Box::new(move |q| q.events_per_day(since).unwrap().len()),
        ),
        (
            "consent timeline (all records)",
            Box::new(|q| {
                let mut n = 0;
                q.consent_timeline(&mut |_| n += 1).unwrap();
                n
            }),
        ),
        (
            "gaps by reason",
            Box::new(|q| q.gaps_by_reason().unwrap().len()),
        ),
        (
            "erasures per day + latest",
            Box::new(move |q| {
                q.erasures_per_day(since).unwrap().len() + q.erasures(None, 20).unwrap().len()
            }),
        ),
    ];
    for (name, f) in &rows {
        println!("| &nbsp; {name} | {} | |", ms(time(3, || f(&mut q))));
    }
    let sample: Vec<Pseudonym> = (0..200u64)
        .map(|i| Pseudonym::parse(&pseudonym((i * 7919) % DEVICES)).unwrap())
        .collect();
    let started = Instant::now();
    for d in &sample {
        let page = read_device(&mut q, d).unwrap().unwrap();
        let html = assent_collector::console::pages::device(&page, "bench", "00", None);
        std::hint::black_box(html.len());
    }
    let per_page = started.elapsed() / sample.len() as u32;
    println!(
        "| device page (mean of {} devices) | {} | 10 |",
        sample.len(),
        ms(per_page)
    );
}
