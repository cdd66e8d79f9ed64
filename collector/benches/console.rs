//! `cargo bench -p assent-collector --bench console`: how long the console's pages take
//! to read and render on a database holding 100,000 devices, on SQLite and on
//! PostgreSQL (`ASSENT_TEST_PG`, as for the tests; `make bench` starts a cluster with
//! fsync on).
//!
//! The fleet: every device has 7 inventory events, 10 app events spread over the last 30
//! days, 8 consent records (one per category, a tenth of them later withdrawn), every
//! tenth device a gap; 1,000 erasures. Rows are written in one transaction straight into
//! the collector's schema (made by `SqliteStorage::open` / `pg::migrate`) with the
//! roll-ups built from them in the same transaction, since ingesting 100,000 devices
//! through the server would take minutes and measure ingest, not the console.
//! Prints a markdown table: the overview, each overview query, the replay of every
//! consent record the consent chart read before its roll-up (the peer figure), and the
//! device page (mean over 200 random devices), beside the aims in docs/operations.md;
//! and whether the roll-up's chart equals the replay's. Not asserted.

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use assent_collector::console::consent_rollup::per_day;
use assent_collector::console::pages::{ConsentStates, OVERVIEW_DAYS};
use assent_collector::console::pg::PgConsoleQueries;
use assent_collector::console::queries::ConsoleQueries;
use assent_collector::console::sqlite::SqliteConsoleQueries;
use assent_collector::console::{read_device, render_overview};
use assent_collector::sqlite::SqliteStorage;
use assent_collector::storage::Storage;
use assent_testkit::pg as pg_support;
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

fn fill_sqlite(path: &std::path::Path, now: i64) {
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
    assent_collector::console::sqlite::rebuild_consent_rollup(&tx).unwrap();
    tx.commit().unwrap();
    conn.execute_batch("ANALYZE").unwrap();
}

/// The same fleet on PostgreSQL: the devices are copied in, every other row is made by
/// the server from them (`generate_series`), with day partitions for the 30 days.
fn fill_postgres(url: &str, now: i64) {
    let mut client = pg_support::client(&pg_support::database_name(url));
    let today = now.div_euclid(DAY_MS);
    for day in today - 31..=today {
        let date = assent_collector::console::html::date(day).replace('-', "");
        for table in ["events", "gaps"] {
            client
                .batch_execute(&format!(
                    "CREATE TABLE IF NOT EXISTS {table}_{date} PARTITION OF {table} \
                     FOR VALUES FROM ({}) TO ({})",
                    day * DAY_MS,
                    (day + 1) * DAY_MS
                ))
                .unwrap();
        }
    }
    let mut tx = client.transaction().unwrap();
    tx.batch_execute("CREATE TEMP TABLE fleet (n BIGINT, pseudonym TEXT, first_ms BIGINT)")
        .unwrap();
    {
        use std::io::Write;
        let mut sink = tx.copy_in("COPY fleet FROM STDIN").unwrap();
        let mut text = String::new();
        for n in 0..DEVICES {
            let first = now - 29 * DAY_MS + (n as i64 % 1000) * 1000;
            text.push_str(&format!("{n}\t{}\t{first}\n", pseudonym(n)));
        }
        sink.write_all(text.as_bytes()).unwrap();
        sink.finish().unwrap();
    }
    let inventory: Vec<String> = CATEGORIES[1..7]
        .iter()
        .enumerate()
        .map(|(i, c)| format!("({}, '{c}', '{{\"present\":\"inventory\"}}')", i + 1))
        .collect();
    let consent: Vec<String> = CATEGORIES
        .iter()
        .enumerate()
        .map(|(i, c)| format!("({}, '{c}')", 18 + i))
        .collect();
    tx.batch_execute(&format!(
        "INSERT INTO devices SELECT pseudonym, first_ms, {now} FROM fleet;
         INSERT INTO buffers SELECT pseudonym, 1, 100 FROM fleet;
         INSERT INTO events (device, buffer_id, seq, category, kind, wall_time_ms, boot_id,
             monotonic_ns, payload, received_at_ms)
         SELECT f.pseudonym, 1, c.seq, c.category, 'snapshot', f.first_ms, '00', 0,
             c.payload::jsonb, f.first_ms
         FROM fleet f CROSS JOIN (VALUES {}, (7, 'device_id', '{{\"pseudonym\":\"x\"}}'))
             AS c(seq, category, payload);
         INSERT INTO events (device, buffer_id, seq, category, kind, wall_time_ms, boot_id,
             monotonic_ns, payload, received_at_ms)
         SELECT f.pseudonym, 1, 8 + i, 'app_events', 'snapshot', f.first_ms + i * 3 * {DAY_MS},
             '00', 0, '{{\"name\":\"door_opened\"}}'::jsonb, f.first_ms + i * 3 * {DAY_MS}
         FROM fleet f CROSS JOIN generate_series(0::bigint, 9) AS i;
         INSERT INTO consent_records (device, buffer_id, seq, observed_at, category, active,
             state, by_whom, at, policy_version, received_at_ms)
         SELECT f.pseudonym, 1, c.seq, '2026-01-01T00:00:00Z', c.category, true, 'active',
             NULL, NULL, 1, f.first_ms
         FROM fleet f CROSS JOIN (VALUES {}) AS c(seq, category);
         INSERT INTO consent_records (device, buffer_id, seq, observed_at, category, active,
             state, by_whom, at, policy_version, received_at_ms)
         SELECT pseudonym, 1, 26, '2026-01-01T00:00:00Z', 'location', false, 'not_granted',
             NULL, NULL, 1, first_ms + 5 * {DAY_MS} FROM fleet WHERE n % 10 = 0;
         INSERT INTO gaps SELECT pseudonym, 1, 99, 90, 99, 10, 'evicted', 'app_events',
             first_ms + {DAY_MS} FROM fleet WHERE n % 10 = 0;
         INSERT INTO erasure_log (device, categories, erased_events, at_ms, operator)
         SELECT pseudonym, 'location', 1, {now} - ((n / 97) % 30) * {DAY_MS}, NULL
         FROM fleet WHERE n % 97 = 0 AND n / 97 < 1000;
         INSERT INTO daily_events SELECT received_at_ms / {DAY_MS}, category, 0, COUNT(*)
         FROM events GROUP BY 1, 2;
         INSERT INTO device_days SELECT DISTINCT device, received_at_ms / {DAY_MS} FROM events;
         INSERT INTO daily_devices SELECT day, 0, COUNT(*) FROM device_days GROUP BY day;",
        inventory.join(", "),
        consent.join(", "),
    ))
    .unwrap();
    assent_collector::console::pg::rebuild_consent_rollup(&mut tx).unwrap();
    tx.commit().unwrap();
    client.batch_execute("VACUUM ANALYZE").unwrap();
}

/// One overview query, returning how many rows it read.
type Query = dyn Fn(&mut dyn ConsoleQueries) -> usize;

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

/// The figures of one backend, in the order of [`ROWS`], and whether the roll-up's
/// consent chart equals the replay's. `storage` is for the `devices` command's listing.
fn measure(
    q: &mut dyn ConsoleQueries,
    storage: &mut dyn Storage,
    now: i64,
) -> (Vec<Duration>, bool) {
    let today = now.div_euclid(DAY_MS);
    let first_day = today - OVERVIEW_DAYS + 1;
    let since = first_day * DAY_MS;
    let mut out = vec![time(3, || render_overview(q, now, "bench").unwrap().len())];
    let queries: [Box<Query>; 7] = [
        Box::new(|q| q.totals().map(|_| 1).unwrap()),
        Box::new(move |q| q.devices_per_day(since).unwrap().len()),
        Box::new(move |q| q.events_per_day(since).unwrap().len()),
        Box::new(move |q| {
            per_day(&q.consent_days(first_day, today).unwrap(), first_day, today).len()
        }),
        Box::new(|q| q.gaps_by_reason().unwrap().len()),
        Box::new(move |q| {
            q.erasures_per_day(since).unwrap().len() + q.erasures(None, 20).unwrap().len()
        }),
        Box::new(move |q| {
            let mut replay = ConsentStates::new(today, OVERVIEW_DAYS);
            q.consent_timeline(&mut |p| replay.add(p)).unwrap();
            replay.finish().len()
        }),
    ];
    for f in &queries {
        out.push(time(3, || f(q)));
    }
    let sample: Vec<Pseudonym> = (0..200u64)
        .map(|i| Pseudonym::parse(&pseudonym((i * 7919) % DEVICES)).unwrap())
        .collect();
    let started = Instant::now();
    for d in &sample {
        let page = read_device(q, d).unwrap().unwrap();
        let html = assent_collector::console::pages::device(&page, "bench", "00", None);
        std::hint::black_box(html.len());
    }
    out.push(started.elapsed() / sample.len() as u32);
    out.push(time(1, || {
        let mut n = 0u64;
        storage
            .devices(None, &mut |d| {
                n += d.events;
                Ok(())
            })
            .unwrap();
        n
    }));
    let rolled = per_day(&q.consent_days(first_day, today).unwrap(), first_day, today);
    let mut replay = ConsentStates::new(today, OVERVIEW_DAYS);
    q.consent_timeline(&mut |p| replay.add(p)).unwrap();
    (out, rolled == replay.finish())
}

/// (row name, aim in ms) of the table, in the order [`measure`] returns them.
const ROWS: [(&str, &str); 10] = [
    ("overview page (all below but the replay, + render)", "1000"),
    ("&nbsp; totals", ""),
    ("&nbsp; devices per day (30 days)", ""),
    ("&nbsp; events per day and category", ""),
    ("&nbsp; consent per day (roll-up)", ""),
    ("&nbsp; gaps by reason", ""),
    ("&nbsp; erasures per day + latest", ""),
    (
        "consent chart by replaying every record (before the roll-up)",
        "",
    ),
    ("device page (mean of 200 devices)", "10"),
    (
        "`devices` command: all devices with their counts (one run)",
        "",
    ),
];

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("collector.db");
    let now = assent_collector::server::now_ms();
    let started = Instant::now();
    fill_sqlite(&path, now);
    let size = std::fs::metadata(&path).map_or(0, |m| m.len());
    println!(
        "\nconsole bench: {DEVICES} devices, {} events; SQLite {} MB filled in {:.1} s",
        DEVICES * 17,
        size / 1_000_000,
        started.elapsed().as_secs_f64()
    );
    let (sqlite, sqlite_same) = measure(
        &mut SqliteConsoleQueries::open(&path).unwrap(),
        &mut SqliteStorage::open_read_only(&path).unwrap(),
        now,
    );
    drop(dir);

    let url = pg_support::fresh_database();
    let started = Instant::now();
    fill_postgres(&url, now);
    let name = pg_support::database_name(&url);
    let size: i64 = pg_support::client(&name)
        .query_one("SELECT pg_database_size(current_database())", &[])
        .unwrap()
        .get(0);
    println!(
        "PostgreSQL {} MB filled in {:.1} s\n",
        size / 1_000_000,
        started.elapsed().as_secs_f64()
    );
    let mut q = PgConsoleQueries::open(&pg_support::target(&url)).unwrap();
    let mut storage = assent_collector::pg::PgStorage::open(&pg_support::target(&url)).unwrap();
    let (postgres, postgres_same) = measure(&mut q, &mut storage, now);
    drop(storage);
    drop(q);
    // The fleet takes about a gigabyte: not left on the shared cluster.
    pg_support::client("postgres")
        .batch_execute(&format!("DROP DATABASE {name}"))
        .unwrap();

    println!("| page or query | SQLite, best of 3 (ms) | PostgreSQL, best of 3 (ms) | aim (ms) |");
    println!("|---|---:|---:|---:|");
    for (((name, aim), s), p) in ROWS.iter().zip(&sqlite).zip(&postgres) {
        println!("| {name} | {} | {} | {aim} |", ms(*s), ms(*p));
    }
    let yes = |same: bool| if same { "yes" } else { "NO" };
    println!(
        "\nconsent chart from the roll-up equals the replay: SQLite {}, PostgreSQL {}",
        yes(sqlite_same),
        yes(postgres_same)
    );
}
