//! Crash test: a child process appends in a loop and prints each accepted seq; the
//! parent SIGKILLs it at random moments and checks nothing accepted was lost.
//!
//! The child is this same test binary, re-run with `ASSENT_STORE_CRASH_CHILD` set to the
//! buffer directory.

// Test code: a failed unwrap is a failed test, and printing explains it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]

mod common;

use assent_store::{Durability, Record, Store, StoreOptions};
use common::{event, integrity_check, Rng};
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CHILD_ENV: &str = "ASSENT_STORE_CRASH_CHILD";
const KILLS: usize = 120;

fn crash_options() -> StoreOptions {
    StoreOptions {
        max_bytes: 64 << 20,
        durability: Durability::Full,
        group_commit_window: Duration::from_millis(1),
        ..StoreOptions::default()
    }
}

/// Child mode: four producers append forever, printing every accepted seq.
fn run_child(dir: &str) -> ! {
    let (store, _) = Store::open(std::path::Path::new(dir), crash_options()).unwrap();
    let store = Arc::new(store);
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let store = Arc::clone(&store);
            std::thread::spawn(move || {
                let mut n = 0u64;
                loop {
                    let seq = store.append(event(&format!("c{t}"), n, 200)).unwrap();
                    // One write per line, so a kill never leaves half a number behind
                    // a newline.
                    let mut out = std::io::stdout().lock();
                    out.write_all(format!("{seq}\n").as_bytes()).unwrap();
                    out.flush().unwrap();
                    n += 1;
                }
            })
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
    std::process::exit(0)
}

#[test]
fn sigkill_never_loses_an_accepted_event() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        run_child(&dir);
    }
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut rng = Rng::from_time();
    let mut accepted: BTreeSet<u64> = BTreeSet::new();
    let mut acked_through = 0u64;
    let started = Instant::now();
    for round in 0..KILLS {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "sigkill_never_loses_an_accepted_event",
                "--nocapture",
            ])
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut seqs = Vec::new();
            for line in BufReader::new(stdout).split(b'\n') {
                let Ok(line) = line else { break };
                // The harness prints its own lines too; only bare numbers are seqs.
                if let Some(seq) = std::str::from_utf8(&line).ok().and_then(|s| s.parse().ok()) {
                    seqs.push(seq);
                }
            }
            seqs
        });
        std::thread::sleep(Duration::from_millis(5 + rng.below(60)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let seqs: Vec<u64> = reader.join().unwrap();
        accepted.extend(seqs);

        let (store, report) = Store::open(dir.path(), crash_options()).unwrap();
        assert_eq!(report.quarantined, None, "round {round}: {report:?}");
        let held: BTreeSet<u64> = store
            .export()
            .unwrap()
            .iter()
            .filter_map(|r| match r {
                Record::Event(e) => Some(e.seq),
                Record::Gap(_) => None,
            })
            .collect();
        let missing: Vec<u64> = accepted
            .iter()
            .filter(|s| **s > acked_through && !held.contains(s))
            .copied()
            .collect();
        assert!(
            missing.is_empty(),
            "round {round}: accepted but lost: {missing:?}"
        );
        assert!(store.stats().unwrap().gaps == 0);
        // Sometimes acknowledge a part, as a sender would.
        if rng.below(3) == 0 {
            if let Some(batch) = store
                .next_batch(1 + rng.below(500) as usize, u64::MAX)
                .unwrap()
            {
                store.ack(batch.last_seq).unwrap();
                acked_through = batch.last_seq;
            }
        }
        drop(store);
        assert_eq!(integrity_check(dir.path()), "ok", "round {round}");
    }
    println!(
        "{KILLS} kills, {} accepted seqs checked, {:?}",
        accepted.len(),
        started.elapsed()
    );
    assert!(accepted.len() > KILLS, "the child accepted almost nothing");
}
