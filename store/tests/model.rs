//! Model-based property test: random appends, batches, acks, purges and reopens on a
//! tiny buffer (so evictions happen), checked after every step against a plain in-memory
//! model of what the store must hold.

// Test code: a failed unwrap is a failed test, and printing explains it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]

mod common;

use assent_store::{
    Batch, Durability, GapReason, GapRecord, NewEvent, Record, Store, StoreOptions, StoredEvent,
    MIN_MAX_BYTES,
};
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

const CATEGORIES: [&str; 3] = ["debug", "system", "network"];
const OPTIONAL: &str = "debug";
/// Eviction gaps seen over all cases, to prove evictions were exercised.
static EVICTION_GAPS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

#[derive(Debug, Clone)]
enum Op {
    Append { cat: usize, len: usize },
    AppendMany { cat: usize, n: usize, len: usize },
    NextBatch { max_events: usize, max_bytes: u64 },
    Ack { pick: u8 },
    Purge { cat: usize },
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..3usize, 0..2000usize).prop_map(|(cat, len)| Op::Append { cat, len }),
        3 => (0..3usize, 1..25usize, 0..2000usize)
            .prop_map(|(cat, n, len)| Op::AppendMany { cat, n, len }),
        3 => (1..60usize, prop_oneof![Just(u64::MAX), 1..20_000u64])
            .prop_map(|(max_events, max_bytes)| Op::NextBatch { max_events, max_bytes }),
        2 => any::<u8>().prop_map(|pick| Op::Ack { pick }),
        1 => (0..3usize).prop_map(|cat| Op::Purge { cat }),
        1 => Just(Op::Reopen),
    ]
}

fn options() -> StoreOptions {
    StoreOptions {
        max_bytes: MIN_MAX_BYTES,
        durability: Durability::Normal,
        group_commit_window: Duration::from_millis(1),
        optional_categories: vec![OPTIONAL.to_owned()],
        ..StoreOptions::default()
    }
}

/// The record size the store documents: 48 bytes of fixed fields plus the strings and
/// the payload.
fn size(r: &Record) -> u64 {
    match r {
        Record::Event(e) => 48 + (e.payload.len() + e.category.len() + e.kind.len()) as u64,
        Record::Gap(g) => 48 + g.category.as_ref().map_or(0, |c| c.len()) as u64,
    }
}

#[derive(Debug, Default)]
struct Model {
    records: BTreeMap<u64, Record>,
    acked: u64,
    last_seq: u64,
    last_batch: Option<Batch>,
    counter: u64,
}

impl Model {
    fn new_event(&mut self, cat: usize, len: usize) -> NewEvent {
        self.counter += 1;
        common::event(CATEGORIES[cat], self.counter, len)
    }

    fn add_event(&mut self, seq: u64, e: NewEvent) {
        assert!(seq > self.last_seq, "seq {seq} not after {}", self.last_seq);
        self.last_seq = seq;
        self.records.insert(
            seq,
            Record::Event(StoredEvent {
                seq,
                category: e.category,
                kind: e.kind,
                wall_time_ms: e.wall_time_ms,
                boot_id: e.boot_id,
                monotonic_ns: e.monotonic_ns,
                payload: e.payload,
            }),
        );
    }

    fn events(&self) -> impl Iterator<Item = &StoredEvent> {
        self.records.values().filter_map(|r| match r {
            Record::Event(e) => Some(e),
            Record::Gap(_) => None,
        })
    }

    /// Accepts the evictions the store made during an append, after checking them: every
    /// evicted event is covered by a new eviction gap of its category, counts add up,
    /// each category lost its oldest events, and optional events went first.
    fn reconcile_evictions(&mut self, held: &[Record], before: &BTreeSet<u64>) {
        let held_seqs: BTreeSet<u64> = held.iter().map(Record::seq).collect();
        let new_gaps: Vec<&GapRecord> = held
            .iter()
            .filter_map(|r| match r {
                Record::Gap(g) if !self.records.contains_key(&g.seq) => Some(g),
                _ => None,
            })
            .collect();
        for r in held {
            if let Record::Event(e) = r {
                assert!(self.records.contains_key(&e.seq), "unknown event {}", e.seq);
            }
        }
        let evicted: Vec<StoredEvent> = self
            .events()
            .filter(|e| !held_seqs.contains(&e.seq))
            .cloned()
            .collect();
        let mut per_cat: BTreeMap<&str, u64> = BTreeMap::new();
        for e in &evicted {
            *per_cat.entry(e.category.as_str()).or_default() += 1;
            assert!(
                new_gaps
                    .iter()
                    .any(|g| g.category.as_deref() == Some(&e.category)
                        && g.first_seq <= e.seq
                        && e.seq <= g.last_seq),
                "evicted {} not covered by a gap: {new_gaps:?}",
                e.seq
            );
        }
        let mut gap_cat: BTreeMap<&str, u64> = BTreeMap::new();
        for g in &new_gaps {
            assert!(matches!(g.reason, GapReason::Evicted), "{g:?}");
            assert!(g.seq > g.last_seq, "{g:?}");
            EVICTION_GAPS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            *gap_cat
                .entry(g.category.as_deref().unwrap_or(""))
                .or_default() += g.count;
        }
        assert_eq!(per_cat, gap_cat, "gap counts");
        // Oldest first within each category.
        for cat in CATEGORIES {
            let max_evicted = evicted
                .iter()
                .filter(|e| e.category == cat)
                .map(|e| e.seq)
                .max();
            let min_held = self
                .events()
                .filter(|e| e.category == cat && held_seqs.contains(&e.seq))
                .map(|e| e.seq)
                .min();
            if let (Some(a), Some(b)) = (max_evicted, min_held) {
                assert!(a < b, "{cat}: evicted {a} but kept older {b}");
            }
        }
        // Optional first: a required event went only once no older optional one was left.
        if evicted.iter().any(|e| e.category != OPTIONAL) {
            let optional_left = self.events().any(|e| {
                e.category == OPTIONAL && before.contains(&e.seq) && held_seqs.contains(&e.seq)
            });
            assert!(
                !optional_left,
                "required events evicted while optional ones remain"
            );
        }
        for e in &evicted {
            self.records.remove(&e.seq);
        }
        for g in new_gaps {
            self.last_seq = self.last_seq.max(g.seq);
            self.records.insert(g.seq, Record::Gap(g.clone()));
        }
    }

    fn expected_batch(&self, max_events: usize, max_bytes: u64) -> Option<Batch> {
        let mut records = Vec::new();
        let mut bytes = 0u64;
        for r in self
            .records
            .values()
            .filter(|r| r.seq() > self.acked)
            .take(max_events)
        {
            if !records.is_empty() && bytes + size(r) > max_bytes {
                break;
            }
            bytes += size(r);
            records.push(r.clone());
        }
        let last_seq = records.last()?.seq();
        Some(Batch {
            first_seq: self.acked + 1,
            last_seq,
            records,
        })
    }
}

fn check_same(store: &Store, model: &Model) {
    let held = store.export().unwrap();
    let expected: Vec<Record> = model.records.values().cloned().collect();
    assert_eq!(held, expected);
    let stats = store.stats().unwrap();
    assert_eq!(stats.count, model.events().count() as u64);
    assert_eq!(stats.acked_through, model.acked);
    assert_eq!(stats.last_seq, model.last_seq);
    let mut per_cat: BTreeMap<String, u64> = BTreeMap::new();
    for e in model.events() {
        *per_cat.entry(e.category.clone()).or_default() += 1;
    }
    let got: BTreeMap<String, u64> = stats
        .per_category
        .iter()
        .map(|(k, v)| (k.clone(), v.count))
        .collect();
    assert_eq!(got, per_cat);
}

fn run(dir: &Path, ops: &[Op]) {
    let (mut store, _) = Store::open(dir, options()).unwrap();
    let mut model = Model::default();
    for op in ops {
        let before: BTreeSet<u64> = model.records.keys().copied().collect();
        match *op {
            Op::Append { cat, len } => {
                let e = model.new_event(cat, len);
                let seq = store.append(e.clone()).unwrap();
                let held = store.export().unwrap();
                // Gaps made by an eviction before this append carry lower seqs.
                let gaps_first: Vec<Record> =
                    held.iter().filter(|r| r.seq() < seq).cloned().collect();
                model.reconcile_evictions(&gaps_first, &before);
                model.add_event(seq, e);
                model.reconcile_evictions(&held, &before);
            }
            Op::AppendMany { cat, n, len } => {
                let events: Vec<NewEvent> = (0..n).map(|_| model.new_event(cat, len)).collect();
                let seqs = store.append_many(events.clone()).unwrap();
                assert_eq!(seqs.len(), n);
                let held = store.export().unwrap();
                // Replay in seq order: gaps interleave with the chunks of a split append.
                let mut pending: Vec<(u64, Option<NewEvent>)> = seqs
                    .iter()
                    .copied()
                    .zip(events.into_iter().map(Some))
                    .collect();
                for r in &held {
                    if let Record::Gap(g) = r {
                        if !model.records.contains_key(&g.seq) {
                            pending.push((g.seq, None));
                        }
                    }
                }
                pending.sort_by_key(|(s, _)| *s);
                for (seq, e) in pending {
                    match e {
                        Some(e) => model.add_event(seq, e),
                        None => model.last_seq = model.last_seq.max(seq),
                    }
                }
                model.reconcile_evictions(&held, &before);
            }
            Op::NextBatch {
                max_events,
                max_bytes,
            } => {
                let got = store.next_batch(max_events, max_bytes).unwrap();
                assert_eq!(got, model.expected_batch(max_events, max_bytes));
                model.last_batch = got;
            }
            Op::Ack { pick } => {
                let Some(batch) = model.last_batch.take() else {
                    continue;
                };
                if batch.first_seq <= model.acked {
                    continue;
                }
                let span = batch.last_seq - batch.first_seq + 1;
                let through = batch.first_seq + u64::from(pick) % span;
                store.ack(through).unwrap();
                model.acked = through;
                model.records.retain(|s, _| *s > through);
            }
            Op::Purge { cat } => {
                let name = CATEGORIES[cat];
                let victims: Vec<u64> = model
                    .events()
                    .filter(|e| e.category == name)
                    .map(|e| e.seq)
                    .collect();
                assert_eq!(store.purge_category(name).unwrap(), victims.len() as u64);
                if let (Some(first), Some(last)) = (victims.first(), victims.last()) {
                    let seq = model.last_seq + 1;
                    let gap = GapRecord {
                        seq,
                        first_seq: *first,
                        last_seq: *last,
                        count: victims.len() as u64,
                        reason: GapReason::Purged,
                        category: Some(name.to_owned()),
                    };
                    for s in &victims {
                        model.records.remove(s);
                    }
                    model.records.insert(seq, Record::Gap(gap));
                    model.last_seq = seq;
                }
            }
            Op::Reopen => {
                let before_batch = store.next_batch(usize::MAX, u64::MAX).unwrap();
                drop(store);
                let (reopened, report) = Store::open(dir, options()).unwrap();
                assert_eq!(report.quarantined, None);
                store = reopened;
                // The same range yields the same records after a restart.
                assert_eq!(
                    store.next_batch(usize::MAX, u64::MAX).unwrap(),
                    before_batch
                );
            }
        }
        check_same(&store, &model);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn store_agrees_with_model(ops in prop::collection::vec(op(), 1..120)) {
        let dir = tempfile::tempdir().unwrap();
        run(dir.path(), &ops);
    }
}

#[test]
fn evictions_happen_in_the_model_run() {
    // The same generator, fixed to appends only, must fill the tiny buffer and evict.
    let dir = tempfile::tempdir().unwrap();
    let ops: Vec<Op> = (0..60)
        .map(|i| Op::AppendMany {
            cat: i % 3,
            n: 20,
            len: 600,
        })
        .collect();
    run(dir.path(), &ops);
    assert!(EVICTION_GAPS.load(std::sync::atomic::Ordering::Relaxed) > 0);
}
