//! Crash test: a child process appends in a loop and prints each accepted seq; the
//! parent SIGKILLs it at random moments and checks nothing accepted was lost.
//!
//! Two producers block in `append`; two pipeline with `submit`, keeping up to 32 events
//! in flight each and printing each seq (prefixed `s`) from the callback that reports it
//! accepted.
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

use assent_store::{Durability, Store, StoreOptions};
use common::{event, event_seqs, integrity_check, print_line, spawn_appender, Rng};
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
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

/// Pipelining producers keep at most this many events in flight each.
const IN_FLIGHT: usize = 32;

/// Child mode: two producers append forever, two submit forever with up to
/// `IN_FLIGHT` events in flight; every accepted seq is printed.
fn run_child(dir: &str) -> ! {
    let (store, _) = Store::open(std::path::Path::new(dir), crash_options()).unwrap();
    let store = Arc::new(store);
    let pipelined = (2..4).map(|t| {
        let store = Arc::clone(&store);
        std::thread::spawn(move || {
            let slots = Arc::new((Mutex::new(0usize), Condvar::new()));
            let mut n = 0u64;
            loop {
                {
                    let (count, freed) = &*slots;
                    let mut count = count.lock().unwrap();
                    while *count >= IN_FLIGHT {
                        count = freed.wait(count).unwrap();
                    }
                    *count += 1;
                }
                let slots = Arc::clone(&slots);
                store
                    .submit(event(&format!("c{t}"), n, 200), move |result| {
                        let seq = result.unwrap();
                        print_line(&format!("s{seq}\n"));
                        let (count, freed) = &*slots;
                        *count.lock().unwrap() -= 1;
                        freed.notify_one();
                    })
                    .unwrap();
                n += 1;
            }
        })
    });
    let blocking = (0..2).map(|t| spawn_appender(Arc::clone(&store), t));
    let threads: Vec<_> = pipelined.chain(blocking).collect();
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
    let (mut accepted_by_append, mut accepted_by_submit) = (0usize, 0usize);
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
            let (mut appended, mut submitted) = (Vec::new(), Vec::new());
            for line in BufReader::new(stdout).split(b'\n') {
                let Ok(line) = line else { break };
                // The harness prints its own lines too; only (`s`-prefixed) numbers are
                // seqs.
                let Ok(text) = std::str::from_utf8(&line) else {
                    continue;
                };
                if let Some(seq) = text.strip_prefix('s').and_then(|s| s.parse().ok()) {
                    submitted.push(seq);
                } else if let Ok(seq) = text.parse() {
                    appended.push(seq);
                }
            }
            (appended, submitted)
        });
        std::thread::sleep(Duration::from_millis(5 + rng.below(60)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let (appended, submitted): (Vec<u64>, Vec<u64>) = reader.join().unwrap();
        accepted_by_append += appended.len();
        accepted_by_submit += submitted.len();
        accepted.extend(appended);
        accepted.extend(submitted);

        let (store, report) = Store::open(dir.path(), crash_options()).unwrap();
        assert_eq!(report.quarantined, None, "round {round}: {report:?}");
        let held: BTreeSet<u64> = event_seqs(&store.export().unwrap()).into_iter().collect();
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
        "{KILLS} kills, {} accepted seqs checked ({accepted_by_append} by append, \
         {accepted_by_submit} by submit callbacks), {:?}",
        accepted.len(),
        started.elapsed()
    );
    assert_eq!(
        accepted.len(),
        accepted_by_append + accepted_by_submit,
        "a seq was reported accepted twice"
    );
    assert!(accepted_by_append > KILLS, "append accepted almost nothing");
    assert!(accepted_by_submit > KILLS, "submit accepted almost nothing");
}
