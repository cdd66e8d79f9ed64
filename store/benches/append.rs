//! Append, drain and footprint figures for the store, with a raw SQLite insert loop as
//! this machine's ceiling. Prints figures; asserts nothing about time.
//!
//! Run with `cargo bench -p assent-store`.

// The figures are this program's output.
#![allow(clippy::print_stdout)]

use assent_store::{Durability, NewEvent, Store, StoreOptions};
use std::error::Error;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

const PAYLOAD_BYTES: usize = 200;
const RUN_FOR: Duration = Duration::from_millis(1500);

fn event(n: u64) -> NewEvent {
    NewEvent {
        category: "system".to_owned(),
        kind: "sample".to_owned(),
        wall_time_ms: 1_717_000_000_000 + i64::try_from(n).unwrap_or(0),
        boot_id: [7; 16],
        monotonic_ns: n * 1000,
        payload: vec![(n % 251) as u8; PAYLOAD_BYTES],
    }
}

fn options(durability: Durability) -> StoreOptions {
    StoreOptions {
        max_bytes: 512 << 20,
        durability,
        ..StoreOptions::default()
    }
}

/// Events per second accepted by `producers` threads each calling `append` in a loop.
fn append_rate(durability: Durability, producers: usize) -> Result<f64, Box<dyn Error>> {
    let dir = tempfile::tempdir()?;
    let (store, _) = Store::open(dir.path(), options(durability))?;
    let store = Arc::new(store);
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let threads: Vec<_> = (0..producers)
        .map(|_| {
            let (store, stop, count) = (Arc::clone(&store), Arc::clone(&stop), Arc::clone(&count));
            std::thread::spawn(move || -> Result<(), assent_store::StoreError> {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    store.append(event(n))?;
                    count.fetch_add(1, Ordering::Relaxed);
                    n += 1;
                }
                Ok(())
            })
        })
        .collect();
    std::thread::sleep(RUN_FOR);
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().map_err(|_| "producer panicked")??;
    }
    let secs = started.elapsed().as_secs_f64();
    Ok(count.load(Ordering::Relaxed) as f64 / secs)
}

/// Events per second accepted by `producers` threads each keeping up to `in_flight`
/// events submitted and not yet reported, as a daemon answering pipelined socket
/// producers does. Counted in the callbacks, i.e. after the commit.
fn pipelined_rate(
    durability: Durability,
    producers: usize,
    in_flight: usize,
) -> Result<f64, Box<dyn Error>> {
    let dir = tempfile::tempdir()?;
    let (store, _) = Store::open(dir.path(), options(durability))?;
    let store = Arc::new(store);
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let threads: Vec<_> = (0..producers)
        .map(|_| {
            let (store, stop, count) = (Arc::clone(&store), Arc::clone(&stop), Arc::clone(&count));
            std::thread::spawn(move || -> Result<(), assent_store::StoreError> {
                let slots = Arc::new((Mutex::new(0usize), Condvar::new()));
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    {
                        let (used, freed) = &*slots;
                        let mut used = used.lock().unwrap_or_else(|p| p.into_inner());
                        while *used >= in_flight {
                            used = freed.wait(used).unwrap_or_else(|p| p.into_inner());
                        }
                        *used += 1;
                    }
                    let (slots, count) = (Arc::clone(&slots), Arc::clone(&count));
                    store.submit(event(n), move |result| {
                        if result.is_ok() {
                            count.fetch_add(1, Ordering::Relaxed);
                        }
                        let (used, freed) = &*slots;
                        *used.lock().unwrap_or_else(|p| p.into_inner()) -= 1;
                        freed.notify_one();
                    })?;
                    n += 1;
                }
                Ok(())
            })
        })
        .collect();
    std::thread::sleep(RUN_FOR);
    // Read before stopping: what is still in flight afterwards is not counted.
    let accepted = count.load(Ordering::Relaxed);
    let secs = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().map_err(|_| "producer panicked")??;
    }
    Ok(accepted as f64 / secs)
}

/// Bytes on disk per event, and events per second drained by next_batch + ack.
fn footprint_and_drain(n: u64) -> Result<(f64, f64), Box<dyn Error>> {
    let dir = tempfile::tempdir()?;
    let (store, _) = Store::open(dir.path(), options(Durability::Full))?;
    for chunk in 0..n / 1000 {
        store.append_many((chunk * 1000..(chunk + 1) * 1000).map(event).collect())?;
    }
    let stats = store.stats()?;
    let per_event = stats.file_bytes as f64 / stats.count as f64;
    let started = Instant::now();
    let mut drained = 0u64;
    while let Some(batch) = store.next_batch(1000, 1 << 20)? {
        drained += batch.records.len() as u64;
        store.ack(batch.last_seq)?;
    }
    Ok((per_event, drained as f64 / started.elapsed().as_secs_f64()))
}

/// Rows per second inserted by a bare loop in one transaction (WAL, FULL): the ceiling.
fn raw_sqlite(rows: u64) -> Result<f64, Box<dyn Error>> {
    let dir = tempfile::tempdir()?;
    let conn = rusqlite::Connection::open(dir.path().join("raw.db"))?;
    conn.pragma_update_and_check(None, "journal_mode", "WAL", |_| Ok(()))?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.execute_batch(
        "CREATE TABLE t (seq INTEGER PRIMARY KEY AUTOINCREMENT, category TEXT, kind TEXT, \
         wall_time_ms INTEGER, boot_id BLOB, monotonic_ns INTEGER, payload BLOB, size INTEGER)",
    )?;
    let started = Instant::now();
    let tx = conn.unchecked_transaction()?;
    {
        let mut stmt = tx.prepare(
            "INSERT INTO t (category, kind, wall_time_ms, boot_id, monotonic_ns, payload, size) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        for n in 0..rows {
            let e = event(n);
            stmt.execute(rusqlite::params![
                e.category,
                e.kind,
                e.wall_time_ms,
                &e.boot_id[..],
                i64::try_from(e.monotonic_ns)?,
                e.payload,
                270
            ])?;
        }
    }
    tx.commit()?;
    Ok(rows as f64 / started.elapsed().as_secs_f64())
}

/// Single-row commits per second (WAL+FULL): one fsync each, the bound on how often a
/// blocked producer can be answered.
fn raw_single_commits(rows: u64) -> Result<f64, Box<dyn Error>> {
    let dir = tempfile::tempdir()?;
    let conn = rusqlite::Connection::open(dir.path().join("raw.db"))?;
    conn.pragma_update_and_check(None, "journal_mode", "WAL", |_| Ok(()))?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.execute_batch("CREATE TABLE t (seq INTEGER PRIMARY KEY, payload BLOB)")?;
    let payload = vec![1u8; PAYLOAD_BYTES];
    let started = Instant::now();
    for _ in 0..rows {
        conn.execute("INSERT INTO t (payload) VALUES (?1)", [&payload])?;
    }
    Ok(rows as f64 / started.elapsed().as_secs_f64())
}

/// One producer's blocking appends under `Full` against raw single-row commits
/// (WAL, `synchronous=FULL`) on the same disk, taken in turns (one raw commit, one
/// append) so both see the same load from whatever else uses the disk; returns both
/// rates, each over the time spent in its own calls.
fn commit_rate_pair(
    run_for: Duration,
    durability: Durability,
) -> Result<(f64, f64), Box<dyn Error>> {
    let dir = tempfile::tempdir()?;
    let conn = rusqlite::Connection::open(dir.path().join("raw.db"))?;
    conn.pragma_update_and_check(None, "journal_mode", "WAL", |_| Ok(()))?;
    let sync = if durability == Durability::Full {
        "FULL"
    } else {
        "NORMAL"
    };
    conn.pragma_update(None, "synchronous", sync)?;
    conn.execute_batch("CREATE TABLE t (seq INTEGER PRIMARY KEY, payload BLOB)")?;
    let payload = vec![1u8; PAYLOAD_BYTES];
    let store_dir = dir.path().join("store");
    let (store, _) = Store::open(&store_dir, options(durability))?;
    let (mut raw_time, mut store_time) = (Duration::ZERO, Duration::ZERO);
    let started = Instant::now();
    let mut n = 0;
    while started.elapsed() < run_for {
        let t = Instant::now();
        conn.execute("INSERT INTO t (payload) VALUES (?1)", [&payload])?;
        raw_time += t.elapsed();
        let t = Instant::now();
        store.append(event(n))?;
        store_time += t.elapsed();
        n += 1;
    }
    let n = n as f64;
    Ok((n / raw_time.as_secs_f64(), n / store_time.as_secs_f64()))
}

fn main() -> Result<(), Box<dyn Error>> {
    // `cargo bench -p assent-store --bench append -- commit` runs only the commit-rate
    // pairs (quick, and what `strace -c -f` should watch).
    let only_commit = std::env::args().any(|a| a == "commit");
    for durability in [Durability::Full, Durability::Normal] {
        let (raw, store) = commit_rate_pair(Duration::from_secs(4), durability)?;
        println!(
            "commit rate {durability:?}, one producer, taken in turns: raw single-row commit \
             {raw:>8.0}/s, store append {store:>8.0}/s, ratio {:.2}",
            store / raw
        );
    }
    if only_commit {
        return Ok(());
    }
    let raw = raw_sqlite(200_000)?;
    println!("raw sqlite, one transaction, WAL+FULL: {raw:>10.0} rows/s (ceiling)");
    let single = raw_single_commits(3000)?;
    println!(
        "raw sqlite, single-row commits, WAL+FULL: {single:>10.0} commits/s \
         (8 blocked producers can get at most {:.0} events/s)",
        8.0 * single
    );
    let mut full_8 = 0.0;
    for durability in [Durability::Full, Durability::Normal] {
        for producers in [1, 8, 64] {
            let rate = append_rate(durability, producers)?;
            if durability == Durability::Full && producers == 8 {
                full_8 = rate;
            }
            println!(
                "append {durability:?}, {producers:>2} producers: {rate:>10.0} events/s ({:.1} % of raw)",
                100.0 * rate / raw
            );
        }
    }
    let mut full_8_pipelined: f64 = 0.0;
    for durability in [Durability::Full, Durability::Normal] {
        for in_flight in [16, 64] {
            let rate = pipelined_rate(durability, 8, in_flight)?;
            if durability == Durability::Full {
                full_8_pipelined = full_8_pipelined.max(rate);
            }
            println!(
                "submit {durability:?}, 8 producers, pipelined ({in_flight:>2} in flight each): \
                 {rate:>10.0} events/s ({:.1} % of raw)",
                100.0 * rate / raw
            );
        }
    }
    let (per_event, drain) = footprint_and_drain(100_000)?;
    println!("bytes on disk per event ({PAYLOAD_BYTES}-byte payload): {per_event:.0}");
    println!("drain (next_batch 1000 + ack): {drain:>10.0} events/s");
    let verdict = |rate: f64| if rate >= 50_000.0 { "met" } else { "NOT met" };
    println!(
        "target: >= 50000 events/s durable with 8 producers: blocking append {} ({full_8:.0}), \
         pipelined submit {} ({full_8_pipelined:.0})",
        verdict(full_8),
        verdict(full_8_pipelined)
    );
    Ok(())
}
