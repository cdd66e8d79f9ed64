//! Power cuts: the buffer lives on `scripts/lazyfs.py`, a FUSE filesystem that keeps every
//! write in memory until it is fsynced and forgets the unsynced ones on a "cut". A child
//! process appends in a loop and prints each accepted seq; the parent SIGKILLs it, cuts
//! the power, and reopens the buffer from what was synced.
//!
//! - `Full`: every accepted event survives every cut, and the file is never corrupt.
//! - `Normal`: a cut may lose the newest accepted events (only a suffix), the file is
//!   never corrupt, and the cuts do lose some: which shows the filesystem really drops
//!   unsynced data, so that the `Full` test could fail.
//!
//! Needs Debian's `fuse` and `python3-fusepy` (installed by `.ci/run`) and root.

// Test code: a failed unwrap is a failed test, and printing explains it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]

mod common;

use assent_store::{Durability, GapReason, Store, StoreOptions};
use common::{event_seqs, gaps, integrity_check, spawn_appender, Rng};
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CHILD_ENV: &str = "ASSENT_STORE_POWER_CHILD";
const DURABILITY_ENV: &str = "ASSENT_STORE_POWER_DURABILITY";

fn options(durability: Durability) -> StoreOptions {
    StoreOptions {
        // Under `Normal` only checkpoints sync; a large buffer checkpoints rarely (its WAL
        // budget is max_bytes / 16), so nearly every cut finds unsynced commits. Under
        // `Full` every commit syncs anyway, and lazyfs rewrites a whole file per fsync:
        // a small buffer keeps that cheap.
        max_bytes: match durability {
            Durability::Full => 1 << 20,
            Durability::Normal => 64 << 20,
        },
        durability,
        group_commit_window: Duration::from_millis(1),
        ..StoreOptions::default()
    }
}

fn durability_from_env() -> Durability {
    match std::env::var(DURABILITY_ENV).as_deref() {
        Ok("normal") => Durability::Normal,
        _ => Durability::Full,
    }
}

/// A mounted `lazyfs.py`; unmounted on drop.
struct LazyFs {
    process: Child,
    mountpoint: PathBuf,
}

impl LazyFs {
    fn mount(backing: &Path, mountpoint: &Path) -> LazyFs {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/lazyfs.py");
        let probe = Command::new("/usr/bin/python3")
            .args(["-c", "import fusepy"])
            .status();
        assert!(
            matches!(probe, Ok(s) if s.success()),
            "the power-cut test needs Debian's python3-fusepy and fuse: \
             apt-get install python3-fusepy fuse"
        );
        let process = Command::new("/usr/bin/python3")
            .arg(&script)
            .arg(backing)
            .arg(mountpoint)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let fs = LazyFs {
            process,
            mountpoint: mountpoint.to_path_buf(),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !fs.mounted() {
            assert!(Instant::now() < deadline, "lazyfs did not mount");
            std::thread::sleep(Duration::from_millis(20));
        }
        fs
    }

    fn mounted(&self) -> bool {
        let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
        let target = self.mountpoint.to_str().unwrap();
        mounts
            .lines()
            .any(|l| l.split(' ').nth(1) == Some(target) && l.contains("fuse"))
    }

    /// Forgets every write not fsynced yet; done when this returns.
    fn cut(&self) {
        let err = std::fs::metadata(self.mountpoint.join(".lazyfs-cut")).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
    }
}

impl Drop for LazyFs {
    fn drop(&mut self) {
        let _ = Command::new("fusermount")
            .arg("-u")
            .arg(&self.mountpoint)
            .status();
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// Child mode: two producers append forever; every accepted seq is printed.
fn run_child(dir: &str) -> ! {
    let (store, _) = Store::open(Path::new(dir), options(durability_from_env())).unwrap();
    let store = std::sync::Arc::new(store);
    let producers: Vec<_> = (0..2)
        .map(|t| spawn_appender(std::sync::Arc::clone(&store), t))
        .collect();
    for p in producers {
        let _ = p.join();
    }
    std::process::exit(0)
}

/// What one run of cuts saw.
struct Outcome {
    accepted: usize,
    /// Accepted events a cut took, per round.
    lost: Vec<usize>,
}

/// Runs `rounds` cuts under `durability` and checks what each left: no corruption, and
/// only the newest accepted events missing (none under `Full`).
fn power_cuts(test_name: &str, durability: Durability, rounds: usize) -> Outcome {
    let tmp = tempfile::tempdir().unwrap();
    let backing = tmp.path().join("disk");
    let mountpoint = tmp.path().join("mnt");
    std::fs::create_dir_all(&backing).unwrap();
    std::fs::create_dir_all(&mountpoint).unwrap();
    let fs = LazyFs::mount(&backing, &mountpoint);
    let exe = std::env::current_exe().unwrap();
    let mut rng = Rng::from_time();
    // Accepted events the buffer must still hold (not acknowledged, not lost to a cut).
    let mut expected: BTreeSet<u64> = BTreeSet::new();
    let mut outcome = Outcome {
        accepted: 0,
        lost: Vec::new(),
    };
    for round in 0..rounds {
        let mut child = Command::new(&exe)
            .args(["--exact", test_name, "--nocapture"])
            .env(CHILD_ENV, &mountpoint)
            .env(
                DURABILITY_ENV,
                if durability == Durability::Full {
                    "full"
                } else {
                    "normal"
                },
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .filter_map(|l| l.parse::<u64>().ok())
                .collect::<Vec<u64>>()
        });
        std::thread::sleep(Duration::from_millis(300 + rng.below(500)));
        child.kill().unwrap(); // SIGKILL: nothing more is written
        child.wait().unwrap();
        fs.cut(); // and what was not synced is gone
        let accepted_now: Vec<u64> = reader.join().unwrap();
        outcome.accepted += accepted_now.len();

        let (store, report) = Store::open(&mountpoint, options(durability)).unwrap();
        assert_eq!(report.quarantined, None, "round {round}: {report:?}");
        let records = store.export().unwrap();
        let held: BTreeSet<u64> = event_seqs(&records).into_iter().collect();
        // A fast machine fills the buffer within a few rounds, and the store then evicts
        // the oldest events at its cap, by design: those are accounted for by an
        // `Evicted` gap, not lost. Only the oldest go, and never more than the gaps count.
        let evicted_ranges: Vec<(u64, u64)> = gaps(&records)
            .iter()
            .filter(|g| g.reason == GapReason::Evicted)
            .map(|g| (g.first_seq, g.last_seq))
            .collect();
        let evicted_count: u64 = gaps(&records)
            .iter()
            .filter(|g| g.reason == GapReason::Evicted)
            .map(|g| g.count)
            .sum();
        let oldest_held = held.iter().next().copied().unwrap_or(u64::MAX);
        let evicted: BTreeSet<u64> = expected
            .iter()
            .chain(accepted_now.iter())
            .filter(|s| {
                !held.contains(s)
                    && **s < oldest_held
                    && evicted_ranges.iter().any(|(a, b)| (*a..=*b).contains(*s))
            })
            .copied()
            .collect();
        assert!(
            evicted.len() as u64 <= evicted_count,
            "round {round}: {} events missing below the oldest held but gaps count {evicted_count}",
            evicted.len()
        );
        expected.retain(|s| !evicted.contains(s));
        let held_or_evicted: BTreeSet<u64> = held.union(&evicted).copied().collect();
        let lost_earlier: Vec<u64> = expected.difference(&held).copied().collect();
        assert!(
            lost_earlier.is_empty(),
            "round {round}: events accepted in earlier rounds are gone: {lost_earlier:?}"
        );
        let lost: Vec<u64> = accepted_now
            .iter()
            .filter(|s| !held_or_evicted.contains(s))
            .copied()
            .collect();
        if durability == Durability::Full {
            assert!(
                lost.is_empty(),
                "round {round}: accepted under Full but lost to the cut: {lost:?}"
            );
        }
        // Only a suffix: nothing kept is newer than something lost.
        if let Some(first_lost) = lost.iter().min() {
            let newer_kept: Vec<u64> = accepted_now
                .iter()
                .filter(|s| *s > first_lost && held.contains(s))
                .copied()
                .collect();
            assert!(
                newer_kept.is_empty(),
                "round {round}: lost {lost:?} but kept newer {newer_kept:?}"
            );
        }
        outcome.lost.push(lost.len());
        expected.extend(accepted_now.iter().filter(|s| held.contains(s)));
        // Sometimes acknowledge a part, as a sender would.
        if rng.below(3) == 0 {
            if let Some(batch) = store
                .next_batch(1 + rng.below(500) as usize, u64::MAX)
                .unwrap()
            {
                store.ack(batch.last_seq).unwrap();
                expected.retain(|s| *s > batch.last_seq);
            }
        }
        drop(store);
        assert_eq!(integrity_check(&mountpoint), "ok", "round {round}");
    }
    drop(fs);
    // The disk after the last cut is a valid buffer on its own, without the filesystem.
    assert_eq!(integrity_check(&backing), "ok");
    outcome
}

#[test]
fn power_cuts_never_lose_an_event_accepted_under_full() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        run_child(&dir);
    }
    let rounds = 12;
    let outcome = power_cuts(
        "power_cuts_never_lose_an_event_accepted_under_full",
        Durability::Full,
        rounds,
    );
    println!(
        "Full: {rounds} power cuts, {} accepted events, lost per cut {:?}",
        outcome.accepted, outcome.lost
    );
    assert!(outcome.accepted > rounds, "almost nothing was accepted");
}

#[test]
fn power_cuts_under_normal_lose_only_the_newest_events_and_never_corrupt() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        run_child(&dir);
    }
    let rounds = 8;
    let outcome = power_cuts(
        "power_cuts_under_normal_lose_only_the_newest_events_and_never_corrupt",
        Durability::Normal,
        rounds,
    );
    println!(
        "Normal: {rounds} power cuts, {} accepted events, lost per cut {:?}",
        outcome.accepted, outcome.lost
    );
    // Normal does not sync each commit: if no cut ever took anything, the filesystem did
    // not drop unsynced data and the Full test above would prove nothing.
    assert!(
        outcome.lost.iter().any(|n| *n > 0),
        "no cut lost anything under Normal: {:?}",
        outcome.lost
    );
}
