//! The store's contract, one behaviour per test, on real files.

// Test code: a failed unwrap is a failed test, and printing explains it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]

mod common;

use assent_store::{Durability, GapReason, Record, Store, StoreError, StoreOptions, MIN_MAX_BYTES};
use common::{event, event_seqs, gaps, options, T0_MS};
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;

#[test]
fn append_batch_ack_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let (store, report) = Store::open(dir.path(), options(4 << 20)).unwrap();
    assert_eq!(report.quarantined, None);
    let sent: Vec<_> = (0..10).map(|n| event("system", n, 200)).collect();
    let mut seqs = Vec::new();
    for e in &sent {
        seqs.push(store.append(e.clone()).unwrap());
    }
    assert_eq!(seqs, (1..=10).collect::<Vec<u64>>());

    let batch = store.next_batch(4, u64::MAX).unwrap().unwrap();
    assert_eq!((batch.first_seq, batch.last_seq), (1, 4));
    for (r, e) in batch.records.iter().zip(&sent) {
        let Record::Event(stored) = r else {
            panic!("gap in a clean buffer")
        };
        assert_eq!(
            (
                &stored.category,
                &stored.kind,
                stored.wall_time_ms,
                stored.boot_id,
                stored.monotonic_ns,
                &stored.payload
            ),
            (
                &e.category,
                &e.kind,
                e.wall_time_ms,
                e.boot_id,
                e.monotonic_ns,
                &e.payload
            )
        );
    }
    // Without an ack the same range comes back.
    assert_eq!(store.next_batch(4, u64::MAX).unwrap().unwrap(), batch);
    store.ack(4).unwrap();
    let next = store.next_batch(100, u64::MAX).unwrap().unwrap();
    assert_eq!(
        (next.first_seq, next.last_seq, next.records.len()),
        (5, 10, 6)
    );
    store.ack(10).unwrap();
    assert_eq!(store.next_batch(100, u64::MAX).unwrap(), None);
    let stats = store.stats().unwrap();
    assert_eq!(
        (stats.count, stats.acked_through, stats.last_seq),
        (0, 10, 10)
    );
}

#[test]
fn batch_respects_max_bytes_but_always_returns_one() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(dir.path(), options(4 << 20)).unwrap();
    for n in 0..5 {
        store.append(event("system", n, 1000)).unwrap();
    }
    let one = store.next_batch(100, 10).unwrap().unwrap();
    assert_eq!(one.records.len(), 1);
    let two = store.next_batch(100, 2200).unwrap().unwrap();
    assert_eq!((two.first_seq, two.last_seq), (1, 2));
}

#[test]
fn seqs_are_never_reused_after_drain_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (store, _) = Store::open(dir.path(), options(4 << 20)).unwrap();
        for n in 0..3 {
            store.append(event("a", n, 10)).unwrap();
        }
        store.ack(3).unwrap();
    }
    let (store, _) = Store::open(dir.path(), options(4 << 20)).unwrap();
    assert_eq!(store.append(event("a", 9, 10)).unwrap(), 4);
    assert_eq!(
        store.next_batch(10, u64::MAX).unwrap().unwrap().first_seq,
        4
    );
}

#[test]
fn ack_beyond_the_end_is_refused_and_old_acks_are_no_ops() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(dir.path(), options(4 << 20)).unwrap();
    store.append(event("a", 1, 10)).unwrap();
    assert_eq!(
        store.ack(2),
        Err(StoreError::AckBeyondEnd {
            through_seq: 2,
            last_seq: 1
        })
    );
    store.ack(1).unwrap();
    store.ack(0).unwrap();
    assert_eq!(store.stats().unwrap().acked_through, 1);
}

#[test]
fn files_are_private() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(dir.path(), options(4 << 20)).unwrap();
    store.append(event("a", 1, 10)).unwrap();
    for f in ["buffer.db", "buffer.db-wal"] {
        let mode = std::fs::metadata(dir.path().join(f))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{f}");
    }
}

#[test]
fn purge_deletes_one_category_and_leaves_a_gap() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(dir.path(), options(4 << 20)).unwrap();
    for n in 0..9 {
        let cat = if n % 3 == 0 { "location" } else { "system" };
        store.append(event(cat, n, 50)).unwrap();
    }
    assert_eq!(store.purge_category("location").unwrap(), 3);
    assert_eq!(store.purge_category("location").unwrap(), 0);
    let all = store.export().unwrap();
    assert_eq!(event_seqs(&all), vec![2, 3, 5, 6, 8, 9]);
    let g = gaps(&all);
    assert_eq!(g.len(), 1);
    assert_eq!(
        (
            g[0].seq,
            g[0].first_seq,
            g[0].last_seq,
            g[0].count,
            g[0].reason,
            g[0].category.as_deref()
        ),
        (10, 1, 7, 3, GapReason::Purged, Some("location"))
    );
    let stats = store.stats().unwrap();
    assert_eq!(stats.per_category.get("location"), None);
    assert_eq!(stats.per_category["system"].count, 6);
    assert_eq!(stats.gaps, 1);
}

#[test]
fn expire_uses_retention_and_distrusts_bad_clocks() {
    let dir = tempfile::tempdir().unwrap();
    let opts = StoreOptions {
        retention_days: 1,
        ..options(4 << 20)
    };
    let (store, _) = Store::open(dir.path(), opts).unwrap();
    let day = 86_400_000;
    let at = |cat: &str, wall: i64| {
        let mut e = event(cat, 0, 10);
        e.wall_time_ms = wall;
        store.append(e).unwrap()
    };
    let old = at("a", T0_MS - 3 * day);
    let unset_clock = at("a", 5_000); // stamped at boot, before the clock was set
    let fresh = at("b", T0_MS);
    let future = at("b", T0_MS + 400 * day);

    // A clock at 1970 expires nothing, even though "old" is far older than it.
    assert_eq!(store.expire(10_000).unwrap(), 0);
    // A clock that jumped back to before the events expires nothing either.
    assert_eq!(store.expire(T0_MS - 4 * day).unwrap(), 0);
    assert_eq!(store.expire(T0_MS).unwrap(), 1);
    let all = store.export().unwrap();
    assert_eq!(event_seqs(&all), vec![unset_clock, fresh, future]);
    let g = gaps(&all);
    assert_eq!(
        (g[0].first_seq, g[0].last_seq, g[0].count, g[0].reason),
        (old, old, 1, GapReason::Expired)
    );
    // Far later, the future-stamped event has not expired but the fresh one has.
    assert_eq!(store.expire(T0_MS + 2 * day).unwrap(), 1);
    assert_eq!(
        event_seqs(&store.export().unwrap()),
        vec![unset_clock, future]
    );
}

#[test]
fn meta_round_trips_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (store, _) = Store::open(dir.path(), options(4 << 20)).unwrap();
        assert_eq!(store.get_meta("snap").unwrap(), None);
        store.set_meta("snap", b"one").unwrap();
        store.set_meta("snap", b"two\0\xff").unwrap();
    }
    let (store, _) = Store::open(dir.path(), options(4 << 20)).unwrap();
    assert_eq!(
        store.get_meta("snap").unwrap().as_deref(),
        Some(&b"two\0\xff"[..])
    );
}

#[test]
fn options_below_the_minimum_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let err = Store::open(dir.path(), options(MIN_MAX_BYTES - 1)).unwrap_err();
    assert!(matches!(err, StoreError::InvalidOptions(_)), "{err}");
    let opts = StoreOptions {
        group_commit_max_events: 0,
        ..options(4 << 20)
    };
    assert!(matches!(
        Store::open(dir.path(), opts),
        Err(StoreError::InvalidOptions(_))
    ));
}

#[test]
fn an_event_too_large_for_one_commit_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(dir.path(), options(MIN_MAX_BYTES)).unwrap();
    let err = store.append(event("a", 1, 200_000)).unwrap_err();
    assert!(matches!(err, StoreError::EventTooLarge { .. }), "{err}");
    assert!(err.to_string().starts_with("event of "));
}

#[test]
fn concurrent_producers_get_distinct_committed_seqs() {
    let dir = tempfile::tempdir().unwrap();
    for durability in [Durability::Full, Durability::Normal] {
        let sub = dir.path().join(format!("{durability:?}"));
        let opts = StoreOptions {
            durability,
            ..options(16 << 20)
        };
        let (store, _) = Store::open(&sub, opts).unwrap();
        let store = Arc::new(store);
        let handles: Vec<_> = (0..8)
            .map(|t| {
                let store = Arc::clone(&store);
                std::thread::spawn(move || {
                    (0..200)
                        .map(|n| store.append(event(&format!("c{t}"), n, 200)).unwrap())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut all: Vec<u64> = handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        all.sort_unstable();
        assert_eq!(all, (1..=1600).collect::<Vec<u64>>());
        assert_eq!(store.stats().unwrap().count, 1600);
        let many = store
            .append_many((0..3000).map(|n| event("bulk", n, 200)).collect())
            .unwrap();
        assert_eq!(many, (1601..=4600).collect::<Vec<u64>>());
    }
}

#[test]
fn a_drained_buffer_gives_space_back() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(dir.path(), options(16 << 20)).unwrap();
    let seqs = store
        .append_many((0..20_000).map(|n| event("a", n, 200)).collect())
        .unwrap();
    let full = store.stats().unwrap().file_bytes;
    store.ack(*seqs.last().unwrap()).unwrap();
    let drained = store.stats().unwrap().file_bytes;
    assert!(full > 4 << 20, "filled to {full}");
    assert!(
        drained < 256 << 10,
        "drained file still {drained} bytes (full was {full})"
    );
}
