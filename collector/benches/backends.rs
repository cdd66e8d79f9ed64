//! `cargo bench -p assent-collector --bench backends`: batches/s and events/s through the
//! real server (loopback TLS, one connection per simulated device) for SQLite and for
//! PostgreSQL with 1 and 4 writers, for batches of 6 (an inventory), 100 and 1,000 app
//! events. The ceiling, measured in the same run on the same database, is this bench's
//! own binary COPY of the same rows in 1,000-row transactions on 4 connections: what the
//! database takes in bulk, without the collector, its locks or its per-batch commits.
//!
//! Needs `ASSENT_TEST_PG` (`make bench` starts a cluster with fsync on). Figures are
//! printed, never asserted. About 40 s.

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

/// (batches/s, events/s) through the server.
fn through_server(c: &Collector, size: u64, base: u64) -> (f64, f64) {
    let cert = c.pki.client("bench");
    let until = Instant::now() + RUN;
    let started = Instant::now();
    let threads: Vec<_> = (0..clients_for(size))
        .map(|n| {
            let (addr, ca, cert) = (c.addr, c.pki.ca_file.clone(), cert.clone());
            std::thread::spawn(move || {
                let dev = device(base + n);
                let mut client = Client::connect(addr, &ca, Some(&cert), None).unwrap();
                let (mut acked, mut batches) = (0u64, 0u64);
                while Instant::now() < until {
                    let batch = app_batch(&dev, 1, acked + 1, acked + size);
                    let body = encode(&batch, Encoding::Postcard).unwrap();
                    let reply = client
                        .request(
                            "POST",
                            assent_wire::PATH_BATCHES,
                            Encoding::Postcard.content_type(),
                            body,
                        )
                        .unwrap();
                    if reply.status == 200 {
                        acked += size;
                        batches += 1;
                    }
                }
                (batches, acked)
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

fn main() {
    println!("## collector backends: ingest through the server (loopback TLS, postcard)\n");
    println!(
        "| backend | batch | clients | batches/s | events/s | COPY ceiling events/s | of ceiling |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    let mut base = 1_000u64;
    let ceiling_db = pg_support::fresh_database();
    let (_, ceiling) = copy_ceiling(&ceiling_db, 1000, base);
    for size in [6u64, 100, 1000] {
        base += 100;
        let runs: [(&str, Backend, Option<u64>); 3] = [
            ("sqlite", Backend::Sqlite, None),
            ("postgresql, 1 writer", Backend::Postgres, Some(1)),
            ("postgresql, 4 writers", Backend::Postgres, Some(4)),
        ];
        for (label, backend, writers) in runs {
            let c = Collector::start_with(Options {
                log_level: "info".into(),
                database_writers: writers,
                limits: "ingest_queue_length = 1024\nmax_batch_events = 10000\n".into(),
                ..backend.options()
            });
            let (bps, eps) = through_server(&c, size, base);
            base += 100;
            let share = if backend == Backend::Postgres {
                format!("{:.2}", eps / ceiling)
            } else {
                "-".into()
            };
            println!(
                "| {label} | {size} | {} | {bps:.0} | {eps:.0} | {ceiling:.0} | {share} |",
                clients_for(size)
            );
        }
    }
    println!(
        "\nPostgreSQL: the cluster of ASSENT_TEST_PG on this machine (make bench: fsync on); \
         SQLite: WAL, synchronous = FULL. Server and clients share the machine's cores."
    );
}
