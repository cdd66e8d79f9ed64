//! Sync throughput: the real `assent sync --once` (release build) against the real
//! collector over loopback TLS with client certificates, for batches of 100, 1,000 and
//! 10,000 events; and bytes on the wire per event (after gzip).
#![allow(clippy::print_stdout, clippy::unwrap_used)]

use assent_store::{NewEvent, Store, StoreOptions};
use assent_testkit::collector as collector_support;
use assent_testkit::{run_ok, workspace};
use assent_wire::{AppEvent, AttrValue, Payload};
use collector_support::Collector;
use std::collections::BTreeMap;
use std::process::Command;
use std::time::Instant;

const EVENTS: usize = 20_000;

fn main() {
    let assent = workspace().join("target/release/assent");
    assert!(
        assent.exists(),
        "build it first: cargo build --release -p assent"
    );
    println!("sync over loopback TLS (mutual TLS, gzip), {EVENTS} app events of 5 attributes");
    println!(
        "{:>10} {:>12} {:>14} {:>16}",
        "batch", "seconds", "events/s", "wire bytes/event"
    );
    for batch in [100usize, 1_000, 10_000] {
        let collector = Collector::start_with(collector_support::Options {
            log_level: "info".into(),
            ..Default::default()
        });
        let dir = tempfile::tempdir().unwrap();
        let cert = collector.pki.client("bench-device");
        let config = dir.path().join("assent.toml");
        std::fs::write(
            &config,
            format!(
                "state_dir = \"state\"\n[buffer]\nmax_bytes = 268435456\n[collector]\n\
                 url = \"https://localhost:{}\"\nca_file = \"{}\"\nclient_cert_file = \"{}\"\n\
                 client_key_file = \"{}\"\n[sync]\nmetered = \"allow\"\n",
                collector.addr.port(),
                collector.pki.ca_file.display(),
                cert.cert_file.display(),
                cert.key_file.display()
            ),
        )
        .unwrap();
        run_ok(
            Command::new(&assent)
                .args(["consent", "grant", "--all-required", "--config"])
                .arg(&config),
        );
        fill(&dir.path().join("state"));
        let start = Instant::now();
        let out = run_ok(
            Command::new(&assent)
                .args([
                    "sync",
                    "--once",
                    "--batch-events",
                    &batch.to_string(),
                    "--config",
                ])
                .arg(&config),
        );
        let seconds = start.elapsed().as_secs_f64();
        let text = String::from_utf8_lossy(&out.stdout);
        let bytes: f64 = text
            .split(" batches (")
            .nth(1)
            .and_then(|r| r.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no byte count in {text}"));
        assert!(text.contains(&format!("sent {EVENTS} events")), "{text}");
        println!(
            "{:>10} {:>12.2} {:>14.0} {:>16.1}",
            batch,
            seconds,
            EVENTS as f64 / seconds,
            bytes / EVENTS as f64
        );
    }
}

/// Appends the events straight into the device's buffer, as the daemon would.
fn fill(state_dir: &std::path::Path) {
    let (store, _) = Store::open(
        state_dir,
        StoreOptions {
            max_bytes: 256 << 20,
            ..StoreOptions::default()
        },
    )
    .unwrap();
    let events: Vec<NewEvent> = (0..EVENTS)
        .map(|i| {
            let payload = Payload::AppEvent(AppEvent {
                name: "door_opened".into(),
                attrs: BTreeMap::from([
                    ("door".into(), AttrValue::Text(format!("door-{}", i % 7))),
                    ("count".into(), AttrValue::Int(i as i64)),
                    ("ok".into(), AttrValue::Bool(i % 3 == 0)),
                    (
                        "temp_c".into(),
                        AttrValue::Float(20.0 + (i % 50) as f64 / 10.0),
                    ),
                    ("firmware".into(), AttrValue::Text("4.2.1".into())),
                ]),
            });
            NewEvent {
                category: "app_events".into(),
                kind: "door_opened".into(),
                wall_time_ms: 1_795_000_000_000 + i as i64,
                boot_id: [7; 16],
                monotonic_ns: i as u64 * 1_000_000,
                payload: payload.to_postcard().unwrap(),
            }
        })
        .collect();
    for chunk in events.chunks(5_000) {
        store.append_many(chunk.to_vec()).unwrap();
    }
}
