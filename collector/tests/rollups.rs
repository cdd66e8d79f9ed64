//! The console's daily roll-ups through the library's `Storage` and `ConsoleQueries` on
//! both backends: arrivals per day and category, a device counted once per day (also when
//! two writers of one collector, or two replicas, store its batches), nothing counted for
//! a resend; a full erasure and retention remove `device_days` rows, the counts stay.
//! The consent roll-up gives the overview the same chart as replaying every consent
//! record, through withdrawal, erasure, records out of received order and the upgrade of
//! an older database.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use assent_testkit::collector as support;
use assent_testkit::on_both_backends;
use assent_testkit::pg as pg_support;

use assent_collector::console::consent_rollup::per_day;
use assent_collector::console::pages::{ConsentStates, OVERVIEW_DAYS};
use assent_collector::console::queries::{ConsoleQueries, DayCount};
use assent_collector::storage::Storage;
use assent_platform::Category;
use assent_wire::{
    AppEvent, Batch, BootId, ConsentChange, Erasure, ErasureRequest, Event, Payload, Pseudonym,
    Record, PROTOCOL_VERSION,
};
use pg_support::Backend;
use std::collections::BTreeMap;

const DAY_MS: i64 = 86_400_000;

on_both_backends!(
    roll_ups_follow_ingest_erasure_and_retention,
    consent_roll_up_equals_the_replay
);

/// Two writers on one database (SQLite has one writer: the same connection twice), the
/// console's reader, and a way to count `device_days` rows.
struct Db {
    writers: [Box<dyn Storage>; 2],
    queries: Box<dyn ConsoleQueries>,
    device_days: Box<dyn Fn() -> i64>,
    /// Makes the database as an older collector left it (no consent roll-up) and opens
    /// it as this one does (SQLite) or migrates it (PostgreSQL).
    downgrade_and_upgrade: Box<dyn Fn()>,
    _dir: tempfile::TempDir,
}

fn open(backend: Backend) -> Db {
    let dir = tempfile::tempdir().unwrap();
    match backend {
        Backend::Sqlite => {
            let path = dir.path().join("c.db");
            let writer = || -> Box<dyn Storage> {
                Box::new(assent_collector::sqlite::SqliteStorage::open(&path).unwrap())
            };
            let writers = [writer(), writer()];
            let queries = Box::new(
                assent_collector::console::sqlite::SqliteConsoleQueries::open(&path).unwrap(),
            );
            let counted = path.clone();
            let old = path.clone();
            Db {
                downgrade_and_upgrade: Box::new(move || {
                    rusqlite::Connection::open(&old)
                        .unwrap()
                        .execute_batch("DROP TABLE daily_consent; PRAGMA user_version = 0;")
                        .unwrap();
                    drop(assent_collector::sqlite::SqliteStorage::open(&old).unwrap());
                }),
                writers,
                queries,
                device_days: Box::new(move || {
                    rusqlite::Connection::open(&counted)
                        .unwrap()
                        .query_row("SELECT COUNT(*) FROM device_days", [], |r| r.get(0))
                        .unwrap()
                }),
                _dir: dir,
            }
        }
        Backend::Postgres => {
            let url = pg_support::fresh_database();
            let target = pg_support::target(&url);
            let writer = || -> Box<dyn Storage> {
                Box::new(assent_collector::pg::PgStorage::open(&target).unwrap())
            };
            let writers = [writer(), writer()];
            let queries =
                Box::new(assent_collector::console::pg::PgConsoleQueries::open(&target).unwrap());
            let name = pg_support::database_name(&url);
            let old = name.clone();
            let migrated = target.clone();
            Db {
                downgrade_and_upgrade: Box::new(move || {
                    pg_support::client(&old)
                        .batch_execute(
                            "DROP TABLE daily_consent; DELETE FROM assent_schema WHERE version = 4",
                        )
                        .unwrap();
                    assert_eq!(
                        assent_collector::pg::migrate(&migrated).unwrap(),
                        (3, assent_collector::pg::SCHEMA_VERSION)
                    );
                }),
                writers,
                queries,
                device_days: Box::new(move || {
                    pg_support::client(&name)
                        .query_one("SELECT COUNT(*) FROM device_days", &[])
                        .unwrap()
                        .get(0)
                }),
                _dir: dir,
            }
        }
    }
}

fn batch(device: &Pseudonym, buffer_id: u64, first: u64, last: u64) -> Batch {
    Batch {
        version: PROTOCOL_VERSION,
        device: device.clone(),
        buffer_id,
        first_seq: first,
        last_seq: last,
        records: (first..=last)
            .map(|seq| {
                Record::Event(Event {
                    seq,
                    category: Category::AppEvents,
                    kind: "k".into(),
                    wall_time_ms: 0,
                    boot_id: BootId::default(),
                    monotonic_ns: 0,
                    payload: Payload::AppEvent(AppEvent {
                        name: "n".into(),
                        attrs: Default::default(),
                    }),
                })
            })
            .collect(),
    }
}

/// A batch of consent records (seq, category, active, state) of one buffer.
fn consent_batch(
    device: &Pseudonym,
    buffer_id: u64,
    records: &[(u64, Category, bool, &str)],
) -> Batch {
    Batch {
        version: PROTOCOL_VERSION,
        device: device.clone(),
        buffer_id,
        first_seq: records.first().unwrap().0,
        last_seq: records.last().unwrap().0,
        records: records
            .iter()
            .map(|(seq, category, active, state)| {
                Record::Consent(ConsentChange {
                    seq: *seq,
                    observed_at: "2026-01-01T00:00:00Z".into(),
                    category: *category,
                    active: *active,
                    state: state.to_string(),
                    by: None,
                    at: None,
                    policy_version: 1,
                })
            })
            .collect(),
    }
}

type ConsentChart = BTreeMap<String, BTreeMap<i64, [u64; 4]>>;

/// The overview's consent chart from the roll-up, and from replaying every record.
fn charts(q: &mut dyn ConsoleQueries, today: i64) -> (ConsentChart, ConsentChart) {
    let first_day = today - OVERVIEW_DAYS + 1;
    let rolled = per_day(&q.consent_days(first_day, today).unwrap(), first_day, today);
    let mut replay = ConsentStates::new(today, OVERVIEW_DAYS);
    q.consent_timeline(&mut |point| replay.add(point)).unwrap();
    (rolled, replay.finish())
}

fn consent_roll_up_equals_the_replay(backend: Backend) {
    use Category::{AppEvents, Location, Os};
    let mut db = open(backend);
    let today = 20_040i64;
    let at = |day: i64| day * DAY_MS + 7;
    let d = |n: u64| support::device(100 + n);
    let [a, b] = &mut db.writers;
    // Before the window: granted, then withdrawn (the baseline the window starts from).
    a.ingest(
        &consent_batch(&d(5), 1, &[(1, Os, true, "active")]),
        at(20_000),
    )
    .unwrap();
    a.ingest(
        &consent_batch(&d(5), 1, &[(2, Os, false, "not_granted")]),
        at(20_005),
    )
    .unwrap();
    let day_one = [
        consent_batch(
            &d(1),
            1,
            &[(1, Os, true, "active"), (2, Location, true, "active")],
        ),
        consent_batch(&d(2), 1, &[(1, Os, false, "refused")]),
        consent_batch(&d(3), 1, &[(1, Os, false, "not_granted")]),
    ];
    let results = b.ingest_group(&day_one.iter().collect::<Vec<_>>(), at(20_020));
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    // Withdrawn, then granted again; a refusal turned into a grant.
    a.ingest(
        &consent_batch(&d(1), 1, &[(3, Location, false, "not_granted")]),
        at(20_021),
    )
    .unwrap();
    b.ingest(
        &consent_batch(&d(2), 1, &[(2, Os, true, "active")]),
        at(20_021),
    )
    .unwrap();
    a.ingest(
        &consent_batch(&d(1), 1, &[(4, Location, true, "active")]),
        at(20_022),
    )
    .unwrap();
    b.ingest(
        &consent_batch(&d(4), 1, &[(1, AppEvents, true, "active")]),
        at(20_022),
    )
    .unwrap();
    // A resend stores and counts nothing.
    a.ingest(
        &consent_batch(&d(4), 1, &[(1, AppEvents, true, "active")]),
        at(20_023),
    )
    .unwrap();
    // Out of received order: the clock stepped back, so the later batch sorts first
    // (not granted, then granted: granted, not withdrawn) ...
    a.ingest(
        &consent_batch(&d(6), 1, &[(1, Os, true, "active")]),
        at(20_025),
    )
    .unwrap();
    b.ingest(
        &consent_batch(&d(6), 2, &[(1, Os, false, "not_granted")]),
        at(20_024),
    )
    .unwrap();
    // ... and two buffers in one millisecond sort by buffer: refused, then granted.
    a.ingest(
        &consent_batch(&d(7), 9, &[(1, Os, true, "active")]),
        at(20_026),
    )
    .unwrap();
    b.ingest(
        &consent_batch(&d(7), 3, &[(1, Os, false, "refused")]),
        at(20_026),
    )
    .unwrap();
    // After today: not in the chart.
    a.ingest(
        &consent_batch(&d(8), 1, &[(1, Os, true, "active")]),
        at(today + 5),
    )
    .unwrap();

    let (rolled, replay) = charts(db.queries.as_mut(), today);
    assert_eq!(rolled, replay);
    assert_eq!(replay["os"][&20_020], [1, 1, 1, 1]);
    assert_eq!(replay["location"][&20_021], [0, 0, 1, 0]);
    assert_eq!(replay["os"][&today], [4, 0, 1, 1]);
    assert_eq!(replay["os"].len(), 30);
    assert_eq!(replay["app_events"].keys().next(), Some(&20_022));

    // A full erasure takes the device out of every day; a category erasure and
    // retention keep consent records, so the chart stays.
    let [a, b] = &mut db.writers;
    let erase = |categories| {
        Erasure::from(ErasureRequest {
            version: PROTOCOL_VERSION,
            device: d(2),
            categories,
        })
    };
    a.erase(&erase(None), at(20_030)).unwrap();
    let mut location_only = erase(Some(vec![Location]));
    location_only.device = d(1);
    b.erase(&location_only, at(20_031)).unwrap();
    b.sweep_retention(at(20_023)).unwrap();
    let (rolled, replay) = charts(db.queries.as_mut(), today);
    assert_eq!(rolled, replay);
    assert_eq!(replay["os"][&20_020], [1, 0, 1, 1]);
    assert_eq!(replay["os"][&today], [3, 0, 1, 1]);
    assert_eq!(replay["location"][&today], [1, 0, 0, 0]);

    // A database from before the roll-up gets it filled from the records it holds.
    (db.downgrade_and_upgrade)();
    let (rolled_again, _) = charts(db.queries.as_mut(), today);
    assert_eq!(rolled_again, replay);
}

fn pairs(rows: Vec<DayCount>) -> Vec<(i64, u64)> {
    rows.into_iter().map(|r| (r.day, r.count)).collect()
}

fn roll_ups_follow_ingest_erasure_and_retention(backend: Backend) {
    let mut db = open(backend);
    let device = support::device(1);
    let other = support::device(2);
    let day = 20_000i64;
    let [a, b] = &mut db.writers;
    a.ingest(&batch(&device, 1, 1, 3), day * DAY_MS).unwrap();
    // A resend (through the other writer) stores nothing and counts nothing; a second
    // batch the same day, of another buffer, counts its events but not the device again.
    b.ingest(&batch(&device, 1, 1, 3), day * DAY_MS + 1)
        .unwrap();
    b.ingest(&batch(&device, 2, 1, 2), day * DAY_MS + 2)
        .unwrap();
    // Two devices in one group (one transaction on PostgreSQL).
    let group = [batch(&device, 1, 4, 4), batch(&other, 1, 1, 1)];
    let results = a.ingest_group(&group.iter().collect::<Vec<_>>(), day * DAY_MS + 3);
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    b.ingest(&batch(&device, 1, 5, 5), (day + 1) * DAY_MS)
        .unwrap();

    let q = &mut db.queries;
    assert_eq!(
        pairs(q.events_per_day(0).unwrap()),
        [(day, 7), (day + 1, 1)]
    );
    assert_eq!(
        pairs(q.devices_per_day(0).unwrap()),
        [(day, 2), (day + 1, 1)]
    );
    assert_eq!(
        pairs(q.devices_per_day((day + 1) * DAY_MS).unwrap()),
        [(day + 1, 1)]
    );
    assert_eq!((db.device_days)(), 3);

    a.sweep_retention((day + 1) * DAY_MS).unwrap();
    assert_eq!((db.device_days)(), 1, "retention keeps only the last day");
    let erased = b
        .erase(
            &Erasure::from(ErasureRequest {
                version: PROTOCOL_VERSION,
                device: device.clone(),
                categories: None,
            }),
            (day + 2) * DAY_MS,
        )
        .unwrap();
    assert_eq!(erased, 1, "the one event retention left");
    assert_eq!((db.device_days)(), 0);
    // Arrivals stay counted.
    let q = &mut db.queries;
    assert_eq!(
        pairs(q.events_per_day(0).unwrap()),
        [(day, 7), (day + 1, 1)]
    );
    assert_eq!(
        pairs(q.devices_per_day(0).unwrap()),
        [(day, 2), (day + 1, 1)]
    );
    // The erasure is in the console's log, by the device itself.
    let log = q.erasures(Some(&device), 10).unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!((log[0].erased_events, log[0].operator.clone()), (1, None));
}

/// Every console query but the two meant to scan (`totals`, `gaps_by_reason`) has a plan
/// without a sequential scan on PostgreSQL even when scans are made as costly as the
/// planner allows (`enable_seqscan = off` leaves a scan in a plan only when no index can
/// serve it), and the selective ones look their key up in an index, on a schema holding
/// day partitions and the default one.
#[test]
fn postgres_console_queries_read_through_indexes() {
    let url = pg_support::fresh_database();
    // The writer's open creates today's partitions and those ahead.
    drop(assent_collector::pg::PgStorage::open(&pg_support::target(&url)).unwrap());
    let mut client = pg_support::client(&pg_support::database_name(&url));
    client.batch_execute("SET enable_seqscan = off").unwrap();
    let mut checked = 0;
    for (name, sql, params) in assent_collector::console::pg::queries_for_plan_checks() {
        let params: Vec<&(dyn ::postgres::types::ToSql + Sync)> =
            params.iter().map(|p| p.as_ref()).collect();
        let plan: Vec<String> = client
            .query(&format!("EXPLAIN {sql}"), &params)
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .iter()
            .map(|r| r.get(0))
            .collect();
        let plan = plan.join("\n");
        if matches!(name, "totals" | "gaps_by_reason") {
            continue;
        }
        assert!(!plan.contains("Seq Scan"), "{name} scans a table:\n{plan}");
        // A full scan of an index with a filter would pass the check above: the
        // selective ones must look their key up.
        let lookup = match name {
            "devices_per_day" | "events_per_day" => Some("Index Cond: (day >="),
            "consent_days" => Some("Index Cond: (day <="),
            "erasures_per_day" => Some("Index Cond: (at_ms >="),
            "device" => Some("Index Cond: (pseudonym ="),
            "device_erasures"
            | "categories_held"
            | "latest_per_category"
            | "consent_history"
            | "device_gaps" => Some("Index Cond: (device ="),
            _ => None,
        };
        if let Some(lookup) = lookup {
            assert!(
                plan.contains(lookup),
                "{name} does not use `{lookup}`:\n{plan}"
            );
        }
        checked += 1;
    }
    assert_eq!(checked, 12);
}

/// `import --from collector.db` adds the imported events to the roll-ups on the days
/// they were received, and its consent records to the consent roll-up; a second run
/// (importing nothing new) adds nothing.
#[test]
fn import_fills_the_roll_ups_once() {
    let mut sqlite = open(Backend::Sqlite);
    let path = sqlite._dir.path().join("c.db");
    let day = 20_000i64;
    let [a, _] = &mut sqlite.writers;
    a.ingest(&batch(&support::device(1), 1, 1, 3), day * DAY_MS)
        .unwrap();
    a.ingest(&batch(&support::device(2), 1, 1, 1), day * DAY_MS + 5)
        .unwrap();
    a.ingest(&batch(&support::device(1), 1, 4, 5), (day + 1) * DAY_MS)
        .unwrap();
    a.ingest(
        &consent_batch(&support::device(1), 1, &[(6, Category::Os, true, "active")]),
        day * DAY_MS + 9,
    )
    .unwrap();
    a.ingest(
        &consent_batch(
            &support::device(1),
            1,
            &[(7, Category::Os, false, "not_granted")],
        ),
        (day + 1) * DAY_MS + 9,
    )
    .unwrap();
    let (want_consent, _) = charts(sqlite.queries.as_mut(), day + 1);
    assert_eq!(want_consent["os"][&(day + 1)], [0, 0, 1, 0]);
    let want_events = pairs(sqlite.queries.events_per_day(0).unwrap());
    let want_devices = pairs(sqlite.queries.devices_per_day(0).unwrap());
    assert_eq!(want_events, [(day, 4), (day + 1, 2)]);
    assert_eq!(want_devices, [(day, 2), (day + 1, 1)]);

    let url = pg_support::fresh_database();
    let target = pg_support::target(&url);
    let mut q = assent_collector::console::pg::PgConsoleQueries::open(&target).unwrap();
    for _ in 0..2 {
        assent_collector::pg::import_sqlite(&target, &path).unwrap();
        assert_eq!(pairs(q.events_per_day(0).unwrap()), want_events);
        assert_eq!(pairs(q.devices_per_day(0).unwrap()), want_devices);
        let (consent, replay) = charts(&mut q, day + 1);
        assert_eq!((&consent, &replay), (&want_consent, &want_consent));
    }
}
