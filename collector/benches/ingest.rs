//! `cargo bench -p assent-collector`: ingest rate of the real server over loopback TLS
//! for postcard and JSON, and bytes per event for each encoding with and without gzip on
//! realistic payloads (inventory read from the fixture roots, and app events).
//!
//! Plain `main` (harness = false); prints markdown tables. About 30 s in all.

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use assent_testkit::collector::*;
use assent_wire::{encode, Batch, Encoding, Record, PROTOCOL_VERSION};
use flate2::write::GzEncoder;
use flate2::Compression;
use std::io::Write;
use std::time::{Duration, Instant};

const CLIENTS: u64 = 4;
const EVENTS_PER_BATCH: u64 = 100;
const RUN: Duration = Duration::from_secs(8);

fn gzip(bytes: &[u8]) -> usize {
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap().len()
}

fn ingest_rate(c: &Collector, encoding: Encoding, base: u64) -> (f64, f64) {
    let cert = c.pki.client("bench");
    let until = Instant::now() + RUN;
    let started = Instant::now();
    let threads: Vec<_> = (0..CLIENTS)
        .map(|n| {
            let (addr, ca, cert) = (c.addr, c.pki.ca_file.clone(), cert.clone());
            std::thread::spawn(move || {
                let dev = device(base + n);
                let mut client = Client::connect(addr, &ca, Some(&cert), None).unwrap();
                let mut acked = 0;
                let mut bytes = 0usize;
                while Instant::now() < until {
                    let batch = app_batch(&dev, 1, acked + 1, acked + EVENTS_PER_BATCH);
                    let body = encode(&batch, encoding).unwrap();
                    bytes += body.len();
                    let reply = client
                        .request(
                            "POST",
                            assent_wire::PATH_BATCHES,
                            encoding.content_type(),
                            body,
                        )
                        .unwrap();
                    if reply.status == 200 {
                        acked += EVENTS_PER_BATCH;
                    }
                }
                (acked, bytes)
            })
        })
        .collect();
    let (mut events, mut bytes) = (0u64, 0usize);
    for t in threads {
        let (e, b) = t.join().unwrap();
        events += e;
        bytes += b;
    }
    let secs = started.elapsed().as_secs_f64();
    (events as f64 / secs, bytes as f64 / secs / 1e6)
}

fn batch_of(records: Vec<Record>) -> Batch {
    let first = records.first().map_or(1, Record::seq);
    let last = records.last().map_or(1, Record::seq);
    Batch {
        version: PROTOCOL_VERSION,
        device: device(1),
        buffer_id: 0x1234_5678_9abc_def0,
        first_seq: first,
        last_seq: last,
        records,
    }
}

fn size_row(name: &str, batch: &Batch) {
    let n = batch.records.len() as f64;
    let pc = encode(batch, Encoding::Postcard).unwrap();
    let js = encode(batch, Encoding::Json).unwrap();
    println!(
        "| {name} | {} | {:.0} | {:.0} | {:.0} | {:.0} | {:.2} | {:.2} |",
        batch.records.len(),
        pc.len() as f64 / n,
        gzip(&pc) as f64 / n,
        js.len() as f64 / n,
        gzip(&js) as f64 / n,
        gzip(&pc) as f64 / pc.len() as f64,
        gzip(&js) as f64 / js.len() as f64,
    );
}

fn main() {
    println!("## bytes per event (gzip = flate2 level 6 over the whole body)\n");
    println!(
        "| payload | events | postcard | postcard+gzip | json | json+gzip | gzip ratio pc | gzip ratio json |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for root in ["rpi4-raspios64", "x86-gateway", "yocto-opkg", "container"] {
        let payloads = inventory_payloads(root);
        for p in &payloads {
            let name = format!("{root} {}", p.category());
            size_row(&name, &batch_of(vec![event(1, p.clone())]));
        }
        let all: Vec<Record> = payloads
            .iter()
            .enumerate()
            .map(|(i, p)| event(i as u64 + 1, p.clone()))
            .collect();
        size_row(&format!("{root} full inventory"), &batch_of(all));
    }
    size_row("app event", &batch_of(vec![app_event(1)]));
    let apps: Vec<Record> = (1..=100).map(app_event).collect();
    size_row("app events", &batch_of(apps));

    println!("\n## ingest over loopback TLS (mutual TLS, {CLIENTS} clients, batches of {EVENTS_PER_BATCH} app events, {} s each)\n", RUN.as_secs());
    let c = Collector::start_with(Options {
        limits: "max_body_bytes = 16777216".into(),
        log_level: "info".into(),
        ..Options::default()
    });
    println!("| encoding | events/s | request MB/s |");
    println!("|---|---|---|");
    for (i, encoding) in [Encoding::Postcard, Encoding::Json].into_iter().enumerate() {
        let (rate, mbs) = ingest_rate(&c, encoding, 100 * (i as u64 + 1));
        println!("| {encoding:?} | {rate:.0} | {mbs:.1} |");
    }
}
