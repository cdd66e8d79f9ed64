//! `cargo bench -p assent-collector --bench backends`: batches/s, events/s and request
//! latency (median and 99th percentile, from the clients) through the real server
//! (loopback TLS, one connection per simulated device) for SQLite and for PostgreSQL
//! with 1 and 4 writers, each writing events by binary COPY and by multi-row INSERT
//! (`database_write_method`), for batches of 6 (an inventory), 100 and 1,000 app events.
//! The ceiling, measured in the same run on the same database, is this bench's own
//! binary COPY of the same rows in 1,000-row transactions on 4 connections: what the
//! database takes in bulk, without the collector, its locks or its per-batch commits.
//!
//! Needs `ASSENT_TEST_PG` (`make bench` starts a cluster with fsync on). Figures are
//! printed, never asserted. About 70 s.

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use assent_testkit::collector as support;
use assent_testkit::pg as pg_support;

use assent_wire::{encode, Encoding, Record};
use pg_support::Backend;
use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::{Json, ToSql, Type};
use std::time::{Duration, Instant};
use support::*;

const RUN: Duration = Duration::from_secs(4);

/// Clients for a batch size: enough concurrent batches for group commit to matter.
fn clients_for(size: u64) -> u64 {
    match size {
        0..=10 => 32,
        11..=200 => 8,
        _ => 4,
    }
}

/// What clients measured through the server.
struct Measured {
    batches_per_second: f64,
    events_per_second: f64,
    /// Median and 99th percentile of the acknowledged requests' round trips.
    p50: Duration,
    p99: Duration,
}

fn through_server(c: &Collector, size: u64, base: u64) -> Measured {
    let cert = c.pki.client("bench");
    let until = Instant::now() + RUN;
    let started = Instant::now();
    let threads: Vec<_> = (0..clients_for(size))
        .map(|n| {
            let (addr, ca, cert) = (c.addr, c.pki.ca_file.clone(), cert.clone());
            std::thread::spawn(move || {
                let dev = device(base + n);
                let mut client = Client::connect(addr, &ca, Some(&cert), None).unwrap();
                let (mut acked, mut latencies) = (0u64, Vec::new());
                while Instant::now() < until {
                    let batch = app_batch(&dev, 1, acked + 1, acked + size);
                    let body = encode(&batch, Encoding::Postcard).unwrap();
                    let sent = Instant::now();
                    let reply = client
                        .request(
                            "POST",
                            assent_wire::PATH_BATCHES,
                            Encoding::Postcard.content_type(),
                            body,
                        )
                        .unwrap();
                    if reply.status == 200 {
                        latencies.push(sent.elapsed());
                        acked += size;
                    }
                }
                (acked, latencies)
            })
        })
        .collect();
    let (mut events, mut latencies) = (0u64, Vec::new());
    for t in threads {
        let (e, l) = t.join().unwrap();
        events += e;
        latencies.extend(l);
    }
    let secs = started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let at = |q: f64| {
        let i = ((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1));
        latencies.get(i).copied().unwrap_or_default()
    };
    Measured {
        batches_per_second: latencies.len() as f64 / secs,
        events_per_second: events as f64 / secs,
        p50: at(0.5),
        p99: at(0.99),
    }
}

/// (transactions/s, events/s) of binary COPY of `size`-row transactions of the same rows
/// on 4 connections: what the database takes without the collector.
fn copy_ceiling(url: &str, size: u64, base: u64) -> (f64, f64) {
    let name = pg_support::database_name(url);
    let until = Instant::now() + RUN;
    let started = Instant::now();
    let types = [
        Type::TEXT,
        Type::INT8,
        Type::INT8,
        Type::TEXT,
        Type::TEXT,
        Type::INT8,
        Type::TEXT,
        Type::INT8,
        Type::JSONB,
        Type::INT8,
    ];
    let threads: Vec<_> = (0..4u64)
        .map(|n| {
            let name = name.clone();
            let types = types.clone();
            std::thread::spawn(move || {
                let mut db = pg_support::client(&name);
                let dev = device(base + n);
                let (mut seq, mut batches) = (0u64, 0u64);
                let now = assent_collector::server::now_ms();
                while Instant::now() < until {
                    let batch = app_batch(&dev, 1, seq + 1, seq + size);
                    let mut tx = db.transaction().unwrap();
                    let sink = tx
                        .copy_in(
                            "COPY events (device, buffer_id, seq, category, kind, wall_time_ms, \
                             boot_id, monotonic_ns, payload, received_at_ms) FROM STDIN BINARY",
                        )
                        .unwrap();
                    let mut w = BinaryCopyInWriter::new(sink, &types);
                    for r in &batch.records {
                        let Record::Event(e) = r else { continue };
                        let payload = e.payload.to_json();
                        let row: [&(dyn ToSql + Sync); 10] = [
                            &dev.as_str(),
                            &1i64,
                            &(e.seq as i64),
                            &e.category.name(),
                            &e.kind,
                            &e.wall_time_ms,
                            &e.boot_id.to_hex(),
                            &(e.monotonic_ns as i64),
                            &Json(&payload),
                            &now,
                        ];
                        w.write(&row).unwrap();
                    }
                    w.finish().unwrap();
                    tx.commit().unwrap();
                    seq += size;
                    batches += 1;
                }
                (batches, seq)
            })
        })
        .collect();
    let (mut batches, mut events) = (0u64, 0u64);
    for t in threads {
        let (b, e) = t.join().unwrap();
        batches += b;
        events += e;
    }
    let secs = started.elapsed().as_secs_f64();
    (batches as f64 / secs, events as f64 / secs)
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

fn main() {
    println!("## collector backends: ingest through the server (loopback TLS, postcard)\n");
    println!(
        "| backend | events by | batch | clients | batches/s | events/s | p50 ms | p99 ms | \
         of COPY ceiling |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|");
    let mut base = 1_000u64;
    let ceiling_db = pg_support::fresh_database();
    let (ceiling_tps, ceiling) = copy_ceiling(&ceiling_db, 1000, base);
    for size in [6u64, 100, 1000] {
        base += 100;
        let runs: [(&str, Backend, Option<u64>, &str); 5] = [
            ("sqlite", Backend::Sqlite, None, "-"),
            ("postgresql, 1 writer", Backend::Postgres, Some(1), "copy"),
            ("postgresql, 1 writer", Backend::Postgres, Some(1), "insert"),
            ("postgresql, 4 writers", Backend::Postgres, Some(4), "copy"),
            (
                "postgresql, 4 writers",
                Backend::Postgres,
                Some(4),
                "insert",
            ),
        ];
        for (label, backend, writers, method) in runs {
            let c = Collector::start_with(Options {
                log_level: "info".into(),
                database_writers: writers,
                database_write_method: (backend == Backend::Postgres).then(|| method.into()),
                limits: "ingest_queue_length = 1024\nmax_batch_events = 10000\n".into(),
                ..backend.options()
            });
            let m = through_server(&c, size, base);
            base += 100;
            let share = if backend == Backend::Postgres {
                format!("{:.2}", m.events_per_second / ceiling)
            } else {
                "-".into()
            };
            println!(
                "| {label} | {method} | {size} | {} | {:.0} | {:.0} | {} | {} | {share} |",
                clients_for(size),
                m.batches_per_second,
                m.events_per_second,
                ms(m.p50),
                ms(m.p99),
            );
        }
    }
    println!(
        "| COPY ceiling (bench's own, 4 connections) | copy | 1000 | 4 | {ceiling_tps:.0} | \
         {ceiling:.0} | | | 1 |"
    );
    println!(
        "\nPostgreSQL: the cluster of ASSENT_TEST_PG on this machine (make bench: fsync on); \
         SQLite: WAL, synchronous = FULL. Server and clients share the machine's cores."
    );
}
