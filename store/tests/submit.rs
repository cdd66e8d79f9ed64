//! The non-blocking submission path: `submit` with a callback called after the commit.

// Test code: a failed unwrap is a failed test, and printing explains it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]

mod common;

use assent_store::{Durability, Record, Store, StoreError, StoreOptions, TrySubmit, TrySubmitMany};
use common::{event, options};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::channel;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The in-flight count drops after the whole group's callbacks returned, a moment after
/// the last one was observed.
fn wait_until_idle(store: &Store) {
    let started = std::time::Instant::now();
    while store.in_flight_events() != 0 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{} events still in flight",
            store.in_flight_events()
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Every callback sees its event committed: another connection (which sees only
/// committed data) reads the row with the reported seq and the submitted payload. Each
/// producer's callbacks come in submission order with increasing seqs.
#[test]
fn callbacks_come_after_the_commit_in_submission_order() {
    let dir = tempfile::tempdir().unwrap();
    for durability in [Durability::Full, Durability::Normal] {
        let sub = dir.path().join(format!("{durability:?}"));
        let opts = StoreOptions {
            durability,
            ..options(16 << 20)
        };
        let (store, _) = Store::open(&sub, opts).unwrap();
        let store = Arc::new(store);
        let reader = Arc::new(Mutex::new(
            rusqlite::Connection::open_with_flags(
                sub.join("buffer.db"),
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
            )
            .unwrap(),
        ));
        let (tx, rx) = channel::<(usize, u64, u64, bool)>();
        let producers: Vec<_> = (0..4)
            .map(|p| {
                let (store, reader, tx) = (Arc::clone(&store), Arc::clone(&reader), tx.clone());
                std::thread::spawn(move || {
                    for n in 0..500u64 {
                        let e = event(&format!("p{p}"), n, 200);
                        let payload = e.payload.clone();
                        let (reader, tx) = (Arc::clone(&reader), tx.clone());
                        store
                            .submit(e, move |result| {
                                let seq = result.unwrap();
                                let stored: Vec<u8> = reader
                                    .lock()
                                    .unwrap()
                                    .query_row(
                                        "SELECT payload FROM records WHERE seq = ?1",
                                        [i64::try_from(seq).unwrap()],
                                        |r| r.get(0),
                                    )
                                    .unwrap();
                                tx.send((p, n, seq, stored == payload)).unwrap();
                            })
                            .unwrap();
                    }
                })
            })
            .collect();
        drop(tx);
        for t in producers {
            t.join().unwrap();
        }
        let mut last: Vec<Option<(u64, u64)>> = vec![None; 4];
        let mut count = 0;
        // Ends when every callback ran (and dropped its sender).
        for (p, n, seq, same) in rx {
            assert!(same, "{durability:?}: seq {seq} read back different bytes");
            if let Some((prev_n, prev_seq)) = last[p] {
                assert_eq!(n, prev_n + 1, "{durability:?}: producer {p} out of order");
                assert!(seq > prev_seq, "{durability:?}: seqs not increasing");
            } else {
                assert_eq!(n, 0);
            }
            last[p] = Some((n, seq));
            count += 1;
        }
        assert_eq!(count, 2000);
        wait_until_idle(&store);
        assert_eq!(store.stats().unwrap().count, 2000);
    }
}

/// `append` and `submit` mix, and the seqs they report are exactly what `export` holds.
#[test]
fn submitted_and_appended_events_are_all_held() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(dir.path(), options(16 << 20)).unwrap();
    let reported = Arc::new(Mutex::new(Vec::new()));
    for n in 0..300 {
        let sink = Arc::clone(&reported);
        store
            .submit(event("s", n, 100), move |r| {
                sink.lock().unwrap().push(r.unwrap());
            })
            .unwrap();
        if n % 50 == 0 {
            let seq = store.append(event("a", n, 100)).unwrap();
            // `append` waits behind everything queued before it.
            assert!(reported.lock().unwrap().iter().all(|s| *s < seq));
            reported.lock().unwrap().push(seq);
        }
    }
    drop(store); // commits and reports what is still queued
    let mut seqs = reported.lock().unwrap().clone();
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=306).collect::<Vec<u64>>());
    let (store, _) = Store::open(dir.path(), options(16 << 20)).unwrap();
    let held: Vec<u64> = store.export().unwrap().iter().map(Record::seq).collect();
    assert_eq!(held, seqs);
}

/// A callback that panics is contained: the committer keeps committing and reporting.
#[test]
fn a_panicking_callback_does_not_stop_the_committer() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(dir.path(), options(16 << 20)).unwrap();
    store
        .submit(event("a", 0, 10), |_| panic!("callback panics on purpose"))
        .unwrap();
    let (tx, rx) = channel();
    store
        .submit(event("a", 1, 10), move |r| tx.send(r).unwrap())
        .unwrap();
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(10)).unwrap().unwrap(),
        2
    );
    assert_eq!(store.append(event("a", 2, 10)).unwrap(), 3);
    wait_until_idle(&store);
}

/// Appending from a callback would deadlock the committer: it is refused, while reading
/// the store from a callback works.
#[test]
fn appending_from_a_callback_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(dir.path(), options(16 << 20)).unwrap();
    let store = Arc::new(store);
    let (tx, rx) = channel();
    let inner = Arc::clone(&store);
    store
        .submit(event("a", 0, 10), move |r| {
            let appended = inner.append(event("a", 1, 10));
            let submitted = inner.submit(event("a", 2, 10), |_| {});
            let count = inner.stats().map(|s| s.count);
            tx.send((r, appended, submitted, count)).unwrap();
        })
        .unwrap();
    let (r, appended, submitted, count) = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(r.unwrap(), 1);
    assert_eq!(appended.unwrap_err(), StoreError::CalledFromCallback);
    assert_eq!(submitted.unwrap_err(), StoreError::CalledFromCallback);
    assert_eq!(count.unwrap(), 1);
    assert_eq!(
        StoreError::CalledFromCallback.to_string(),
        "cannot append from inside a submit callback"
    );
}

/// The last handle dropped inside a callback must not make the committer join itself.
#[test]
fn dropping_the_last_handle_in_a_callback_shuts_down_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(dir.path(), options(16 << 20)).unwrap();
    let store = Arc::new(store);
    let (tx, rx) = channel();
    let held = Arc::clone(&store);
    let gate = Arc::new(AtomicBool::new(false));
    let open = Arc::clone(&gate);
    store
        .submit(event("a", 0, 10), move |r| {
            // Wait until the test dropped its handle, so this one is the last.
            while !open.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(1));
            }
            drop(held);
            tx.send(r).unwrap();
        })
        .unwrap();
    drop(store);
    gate.store(true, Ordering::SeqCst);
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(10)).unwrap().unwrap(),
        1
    );
    // The event was committed before its callback ran.
    let (store, _) = Store::open(dir.path(), options(16 << 20)).unwrap();
    assert_eq!(store.stats().unwrap().count, 1);
}

/// With `max_in_flight_events` reached, `submit` blocks until a commit is reported.
#[test]
fn submit_blocks_at_the_in_flight_bound() {
    let dir = tempfile::tempdir().unwrap();
    let opts = StoreOptions {
        max_in_flight_events: 4,
        ..options(16 << 20)
    };
    let (store, _) = Store::open(dir.path(), opts).unwrap();
    let store = Arc::new(store);
    // The first callback holds the committer until released, so nothing is reported.
    let (release, released) = channel::<()>();
    let reported = Arc::new(AtomicUsize::new(0));
    {
        let reported = Arc::clone(&reported);
        store
            .submit(event("a", 0, 10), move |r| {
                r.unwrap();
                released.recv().unwrap();
                reported.fetch_add(1, Ordering::SeqCst);
            })
            .unwrap();
    }
    for n in 1..4 {
        let reported = Arc::clone(&reported);
        store
            .submit(event("a", n, 10), move |r| {
                r.unwrap();
                reported.fetch_add(1, Ordering::SeqCst);
            })
            .unwrap();
    }
    assert_eq!(store.in_flight_events(), 4);
    let returned = Arc::new(AtomicBool::new(false));
    let fifth = {
        let (store, returned) = (Arc::clone(&store), Arc::clone(&returned));
        std::thread::spawn(move || {
            store
                .submit(event("a", 4, 10), |r| {
                    r.unwrap();
                })
                .unwrap();
            returned.store(true, Ordering::SeqCst);
        })
    };
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        !returned.load(Ordering::SeqCst),
        "submit returned while 4 of 4 events were in flight"
    );
    release.send(()).unwrap();
    fifth.join().unwrap();
    assert!(returned.load(Ordering::SeqCst));
    // An append_many larger than the bound is let in (it may go over the bound) instead
    // of waiting forever.
    let many = store
        .append_many((0..10).map(|n| event("b", n, 10)).collect())
        .unwrap();
    assert_eq!(many.len(), 10);
    assert_eq!(reported.load(Ordering::SeqCst), 4);
    let opts = StoreOptions {
        max_in_flight_events: 0,
        ..options(16 << 20)
    };
    let err = Store::open(&dir.path().join("zero"), opts).unwrap_err();
    assert!(matches!(err, StoreError::InvalidOptions(_)), "{err}");
}

/// `try_submit` queues below the in-flight bound and, at it, hands the event and the
/// callback back at once instead of blocking; the returned event is the one given.
#[test]
fn try_submit_hands_back_at_the_in_flight_bound() {
    let dir = tempfile::tempdir().unwrap();
    let opts = StoreOptions {
        max_in_flight_events: 2,
        ..options(16 << 20)
    };
    let (store, _) = Store::open(dir.path(), opts).unwrap();
    // The first callback holds the committer until released, so nothing is reported.
    let (release, released) = channel::<()>();
    let (seqs_tx, seqs) = channel::<u64>();
    let hold = {
        let seqs_tx = seqs_tx.clone();
        move |r: Result<u64, StoreError>| {
            seqs_tx.send(r.unwrap()).unwrap();
            released.recv().unwrap();
        }
    };
    assert!(matches!(
        store.try_submit(event("a", 0, 10), hold).unwrap(),
        TrySubmit::Queued
    ));
    let second = seqs_tx.clone();
    let queued = store
        .try_submit(event("a", 1, 10), move |r| second.send(r.unwrap()).unwrap())
        .unwrap();
    assert!(matches!(queued, TrySubmit::Queued));
    assert_eq!(seqs.recv_timeout(Duration::from_secs(10)).unwrap(), 1);
    assert_eq!(store.in_flight_events(), 2);
    let third = seqs_tx.clone();
    // On a thread, so that a try_submit that blocked (the committer is held until
    // `release`) fails the test instead of hanging it.
    let store = Arc::new(store);
    let (back_tx, back_rx) = channel();
    {
        let store = Arc::clone(&store);
        std::thread::spawn(move || {
            let back = store
                .try_submit(event("a", 2, 10), move |r| third.send(r.unwrap()).unwrap())
                .unwrap();
            back_tx.send(back).unwrap();
        });
    }
    let back = back_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("try_submit blocked at the in-flight bound");
    let TrySubmit::WouldBlock { event: given, done } = back else {
        panic!("queued beyond the in-flight bound");
    };
    assert_eq!(given.payload, event("a", 2, 10).payload);
    release.send(()).unwrap();
    assert_eq!(seqs.recv_timeout(Duration::from_secs(10)).unwrap(), 2);
    store.submit(given, done).unwrap();
    assert_eq!(seqs.recv_timeout(Duration::from_secs(10)).unwrap(), 3);
    wait_until_idle(&store);
    assert_eq!(common::event_seqs(&store.export().unwrap()), vec![1, 2, 3]);
}

/// An event too large is refused at once and its callback is never called.
#[test]
fn an_oversize_submission_is_refused_without_calling_back() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(dir.path(), options(1 << 20)).unwrap();
    let called = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&called);
    let err = store
        .submit(event("a", 0, 1 << 20), move |_| {
            flag.store(true, Ordering::SeqCst);
        })
        .unwrap_err();
    assert!(matches!(err, StoreError::EventTooLarge { .. }), "{err}");
    drop(store);
    assert!(!called.load(Ordering::SeqCst));
    assert_eq!(common::integrity_check(dir.path()), "ok");
}

/// `submit_many` and `try_submit_many`: one callback per list with one seq per event,
/// in order, after the commit; lists from several producers interleave whole; the
/// in-flight bound hands a list back without queuing any of it.
#[test]
fn lists_are_committed_whole_with_one_callback_each() {
    let dir = tempfile::tempdir().unwrap();
    let opts = StoreOptions {
        max_in_flight_events: 100,
        ..options(16 << 20)
    };
    let (store, _) = Store::open(dir.path(), opts).unwrap();
    let store = Arc::new(store);
    let (tx, rx) = channel::<(usize, Vec<u64>)>();
    let producers: Vec<_> = (0..4)
        .map(|p| {
            let (store, tx) = (Arc::clone(&store), tx.clone());
            std::thread::spawn(move || {
                for list in 0..50u64 {
                    let events: Vec<_> = (0..7).map(|i| event("a", list * 7 + i, 20)).collect();
                    let tx = tx.clone();
                    let done = move |r: Result<Vec<u64>, StoreError>| {
                        tx.send((p, r.unwrap())).unwrap();
                    };
                    match store.try_submit_many(events, done).unwrap() {
                        TrySubmitMany::Queued => {}
                        TrySubmitMany::WouldBlock { events, done } => {
                            assert_eq!(events.len(), 7, "handed back whole");
                            store.submit_many(events, done).unwrap();
                        }
                    }
                }
            })
        })
        .collect();
    drop(tx);
    for p in producers {
        p.join().unwrap();
    }
    let mut last = [0u64; 4];
    let mut all = Vec::new();
    for (p, seqs) in rx {
        assert_eq!(seqs.len(), 7);
        assert!(
            seqs.windows(2).all(|w| w[1] == w[0] + 1),
            "one list, one run: {seqs:?}"
        );
        assert!(seqs[0] > last[p], "a producer's lists in order");
        last[p] = seqs[6];
        all.extend(seqs);
    }
    all.sort_unstable();
    assert_eq!(all, (1..=4 * 50 * 7).collect::<Vec<u64>>());
    wait_until_idle(&store);
    assert_eq!(common::event_seqs(&store.export().unwrap()), all);
    // An empty list is answered at once, on the caller's thread.
    let (empty_tx, empty_rx) = channel();
    store
        .submit_many(Vec::new(), move |r| empty_tx.send(r.unwrap()).unwrap())
        .unwrap();
    assert_eq!(empty_rx.try_recv().unwrap(), Vec::<u64>::new());
}

/// At the in-flight bound `try_submit_many` hands the whole list back at once.
#[test]
fn try_submit_many_hands_back_at_the_in_flight_bound() {
    let dir = tempfile::tempdir().unwrap();
    let opts = StoreOptions {
        max_in_flight_events: 2,
        ..options(16 << 20)
    };
    let (store, _) = Store::open(dir.path(), opts).unwrap();
    let (release, released) = channel::<()>();
    let (seqs_tx, seqs) = channel::<Vec<u64>>();
    let hold = {
        let seqs_tx = seqs_tx.clone();
        move |r: Result<Vec<u64>, StoreError>| {
            seqs_tx.send(r.unwrap()).unwrap();
            released.recv().unwrap();
        }
    };
    let first = vec![event("a", 0, 10), event("a", 1, 10)];
    assert!(matches!(
        store.try_submit_many(first, hold).unwrap(),
        TrySubmitMany::Queued
    ));
    assert_eq!(
        seqs.recv_timeout(Duration::from_secs(10)).unwrap(),
        vec![1, 2]
    );
    let second = seqs_tx.clone();
    let back = store
        .try_submit_many(vec![event("a", 2, 10), event("a", 3, 10)], move |r| {
            second.send(r.unwrap()).unwrap()
        })
        .unwrap();
    let TrySubmitMany::WouldBlock { events, done } = back else {
        panic!("queued beyond the in-flight bound");
    };
    assert_eq!(events.len(), 2);
    release.send(()).unwrap();
    store.submit_many(events, done).unwrap();
    assert_eq!(
        seqs.recv_timeout(Duration::from_secs(10)).unwrap(),
        vec![3, 4]
    );
    // An event too large for one commit is refused by `check_event`, as by `submit`.
    let huge = event("a", 4, 32 << 20);
    assert!(matches!(
        store.check_event(&huge),
        Err(StoreError::EventTooLarge { .. })
    ));
    assert!(store.check_event(&event("a", 5, 10)).is_ok());
}
