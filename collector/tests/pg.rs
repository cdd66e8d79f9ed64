//! What only the PostgreSQL backend has, against a real server: schema versions and
//! `migrate`, `check-config` connecting, replicas on one database storing each seq once,
//! a server stopped and restarted under a running collector, and retention by
//! partition. The exactly-once tests run once per `database_write_method`. The behaviour both backends share is in `api.rs`, run on each.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use assent_testkit::collector as support;
use assent_testkit::pg as pg_support;

use assent_collector::storage::Storage;
use assent_platform::Category;
use assent_wire::{encode, BufferFence, Encoding, ErasureRequest, ErasureRequestV2};
use pg_support::{Backend, PrivateCluster};
use std::collections::BTreeMap;
use std::process::Command;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};
use support::*;

/// Runs each named test body (`fn NAME(method: &'static str)`) with each
/// `database_write_method`, as `copy::NAME` and `insert::NAME`: the exactly-once tests
/// hold for both ways of writing events.
macro_rules! on_both_write_methods {
    ($($name:ident),* $(,)?) => {
        mod copy {
            $(#[test]
            fn $name() {
                super::$name("copy")
            })*
        }
        mod insert {
            $(#[test]
            fn $name() {
                super::$name("insert")
            })*
        }
    };
}

on_both_write_methods!(
    replicas_store_each_seq_once_under_concurrent_overlapping_batches,
    a_database_crash_is_answered_500_and_the_collector_reconnects,
    a_late_batch_cannot_bring_erased_events_back_past_a_fence,
    an_erasure_waits_for_an_ingest_in_flight_and_deletes_what_it_committed,
);

/// A new migrated database, its collectors writing events by `method`.
fn pg_options(method: &str) -> Options {
    Options {
        database_write_method: Some(method.into()),
        ..Backend::Postgres.options()
    }
}

/// Starts a collector and checks it writes events the way it was told.
fn start(options: Options) -> Collector {
    let c = Collector::start_with(options);
    let method = c.options.database_write_method.clone().unwrap();
    assert!(
        c.log().contains(&format!("events by {method}")),
        "{}",
        c.log()
    );
    c
}

fn serve_once(config: &std::path::Path) -> std::process::Output {
    Command::new(collector_bin())
        .args(["serve", "--config"])
        .arg(config)
        .output()
        .unwrap()
}

#[test]
fn serve_refuses_a_schema_behind_or_ahead_and_migrate_fixes_it() {
    let url = pg_support::url(&pg_support::empty_database());
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::with_server(&dir.path().join("pki"), &["localhost"], false);
    let options = Options {
        database_url: Some(url.clone()),
        ..Options::default()
    };
    let config = write_config(dir.path(), &pki, &options);

    let out = serve_once(&config);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("schema is at version 0") && err.contains("assent-collector migrate"),
        "{err}"
    );
    let check = Command::new(collector_bin())
        .args(["check-config", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(check.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&check.stderr).contains("assent-collector migrate"));

    let migrate = |want: &str| {
        let out = Command::new(collector_bin())
            .args(["migrate", "--config"])
            .arg(&config)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains(want), "{text}");
    };
    let latest = assent_collector::pg::SCHEMA_VERSION;
    migrate(&format!("migrated from version 0 to {latest}"));
    migrate(&format!("already at version {latest}"));
    let check = Command::new(collector_bin())
        .args(["check-config", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(
        text.contains(&format!("schema at version {latest}")),
        "{text}"
    );

    // A database migrated by a newer collector.
    let mut db = pg_support::client(&pg_support::database_name(&url));
    db.batch_execute("INSERT INTO assent_schema VALUES (99, 0)")
        .unwrap();
    let out = serve_once(&config);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("version 99, newer than this collector"),
        "{err}"
    );
}

#[test]
fn check_config_says_what_is_wrong_with_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::with_server(&dir.path().join("pki"), &["localhost"], false);
    let options = Options {
        database_url: Some(pg_support::url("no_such_database")),
        ..Options::default()
    };
    let config = write_config(dir.path(), &pki, &options);
    let out = Command::new(collector_bin())
        .args(["check-config", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{err}");
    assert!(err.contains("cannot connect to postgresql://"), "{err}");
    assert!(err.contains("no_such_database"), "{err}");
}

/// Two replicas on one database, the same device's overlapping and resent batches sent
/// to both at the same moment, many rounds: every seq is stored once.
fn replicas_store_each_seq_once_under_concurrent_overlapping_batches(method: &str) {
    let options = pg_options(method);
    let a = start(options.clone());
    let b = start(options);
    let dev = device(31);
    let rounds = 40u64;
    let barrier = Arc::new(Barrier::new(2));
    let send = |c: &Collector, pattern: &'static [(u64, u64)]| {
        let mut client = c.mtls_client();
        let barrier = barrier.clone();
        let dev = dev.clone();
        move || {
            for round in 0..rounds {
                let base = round * 20;
                barrier.wait();
                for (from, to) in pattern {
                    let batch = app_batch(&dev, 5, base + from, base + to);
                    let reply = client.post_batch(&batch, Encoding::Postcard).unwrap();
                    assert_eq!(
                        reply.status,
                        200,
                        "{}",
                        String::from_utf8_lossy(&reply.body)
                    );
                }
            }
        }
    };
    // Both start at the round's first seq; each overlaps and resends the other's.
    let ta = std::thread::spawn(send(&a, &[(1, 10), (1, 20), (5, 15)]));
    let tb = std::thread::spawn(send(&b, &[(1, 15), (1, 10), (11, 20)]));
    ta.join().unwrap();
    tb.join().unwrap();
    let seqs = a.event_seqs(&dev);
    let mut counts: BTreeMap<u64, u32> = BTreeMap::new();
    for s in &seqs {
        *counts.entry(*s).or_default() += 1;
    }
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "stored more than once: {twice:?}");
    assert_eq!(seqs, (1..=rounds * 20).collect::<Vec<_>>());
    let mut client = b.mtls_client();
    assert_eq!(
        client.ack(&app_batch(&dev, 5, 1, 3), Encoding::Json),
        rounds * 20
    );
}

/// PostgreSQL dies (`pg_ctl stop -m immediate`) under a running collector: batches are
/// answered 500, never acknowledged; once it is back the collector reconnects and the
/// agent's resends store each event once.
fn a_database_crash_is_answered_500_and_the_collector_reconnects(method: &str) {
    // A port of its own per write method: both run at once.
    let offset = if method == "copy" { 0 } else { 1000 };
    let cluster = PrivateCluster::start(56000 + offset + (std::process::id() % 1000) as u16);
    let url = cluster.fresh_database();
    let c = start(Options {
        database_url: Some(url.clone()),
        database_write_method: Some(method.into()),
        ..Options::default()
    });
    let mut client = c.mtls_client();
    let dev = device(41);
    assert_eq!(
        client.ack(&app_batch(&dev, 1, 1, 10), Encoding::Postcard),
        10
    );

    cluster.stop_immediate();
    for _ in 0..3 {
        let reply = client
            .post_batch(&app_batch(&dev, 1, 11, 20), Encoding::Postcard)
            .unwrap();
        assert_eq!(
            reply.status,
            500,
            "{}",
            String::from_utf8_lossy(&reply.body)
        );
    }
    cluster.restart();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let reply = client
            .post_batch(&app_batch(&dev, 1, 11, 20), Encoding::Json)
            .unwrap();
        if reply.status == 200 {
            assert_eq!(reply.json()["acked_through"], 20);
            break;
        }
        assert_eq!(reply.status, 500);
        assert!(Instant::now() < deadline, "no reconnect:\n{}", c.log());
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        client.ack(&app_batch(&dev, 1, 5, 25), Encoding::Postcard),
        25
    );
    assert_eq!(c.event_seqs(&dev), (1..=25).collect::<Vec<_>>());
    assert!(
        c.log().contains("database connection re-established"),
        "{}",
        c.log()
    );
}

/// Retention drops a whole day partition past the cutoff and deletes rows only in the
/// boundary one; partitions ahead are created.
#[test]
fn retention_drops_old_partitions_and_creates_ones_ahead() {
    let url = pg_support::fresh_database();
    let name = pg_support::database_name(&url);
    let mut db = pg_support::client(&name);
    let day = 86_400_000i64;
    let now = assent_collector::server::now_ms();
    let today = now.div_euclid(day);
    // A partition ten days old with two rows, as a collector running then made it.
    let old_day = today - 10;
    let mut storage = assent_collector::pg::PgStorage::open(&pg_support::target(&url)).unwrap();
    let old = "events_old_test";
    db.batch_execute(&format!(
        "CREATE TABLE {old} PARTITION OF events FOR VALUES FROM ({}) TO ({})",
        old_day * day,
        (old_day + 1) * day
    ))
    .unwrap();
    for (seq, at) in [
        (1, old_day * day + 5),
        (2, (today - 1) * day + 10),
        (3, now),
    ] {
        db.execute(
            "INSERT INTO events VALUES ('abcdefghijklmnopqrstuvwxyz', 1, $1, 'app_events', \
             'k', 0, '00', 0, '{}', $2)",
            &[&(seq as i64), &at],
        )
        .unwrap();
    }
    // Name the old partition the way the collector names its own, so the sweep sees it.
    let (y, m, d) = civil_of(old_day);
    let dated = format!("events_{y:04}{m:02}{d:02}");
    db.batch_execute(&format!("ALTER TABLE {old} RENAME TO {dated}"))
        .unwrap();
    // The cutoff falls inside yesterday: its partition stays, one row in it goes.
    let deleted = storage.sweep_retention((today - 1) * day + 20).unwrap();
    assert_eq!(deleted, 1);
    let gone: bool = db
        .query_one("SELECT to_regclass($1) IS NULL", &[&dated])
        .unwrap()
        .get(0);
    assert!(gone, "{dated} not dropped");
    let left: Vec<i64> = db
        .query("SELECT seq FROM events ORDER BY seq", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(left, [3]);
    let ahead: i64 = db
        .query_one(
            "SELECT count(*) FROM pg_inherits WHERE inhparent = 'events'::regclass",
            &[],
        )
        .unwrap()
        .get(0);
    // Yesterday through seven days ahead, and the default partition.
    assert_eq!(ahead, 10);
}

/// (year, month, day) of a day count since 1970-01-01.
fn civil_of(days: i64) -> (i64, i64, i64) {
    let out = Command::new("date")
        .args(["-u", "-d", &format!("@{}", days * 86_400), "+%Y %m %d"])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let v: Vec<i64> = text
        .split_whitespace()
        .map(|s| s.trim_start_matches('0').parse().unwrap_or(0))
        .collect();
    (v[0], v[1], v[2])
}

/// The late-batch race made to happen: a batch is held inside replica A (its body not
/// complete), the agent erases its app events through replica B, then the batch arrives
/// and commits on A. Returns the seqs of the device's events afterwards.
fn late_batch_race(fenced: bool, method: &str) -> Vec<u64> {
    let options = pg_options(method);
    let a = start(options.clone());
    let b = start(options);
    let dev = device(if fenced { 51 } else { 52 });
    let mut client_a = a.mtls_client();
    assert_eq!(
        client_a.ack(&app_batch(&dev, 1, 1, 5), Encoding::Postcard),
        5
    );

    let body = encode(&app_batch(&dev, 1, 6, 10), Encoding::Postcard).unwrap();
    let cert = a.pki.client("held");
    let mut held = a.raw_tls(Some(&cert));
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: localhost\r\nContent-Type: {}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        assent_wire::PATH_BATCHES,
        assent_wire::CONTENT_TYPE_POSTCARD,
        body.len()
    );
    held.write(head.as_bytes()).unwrap();
    held.write(&body[..body.len() - 1]).unwrap();

    // The agent gave up on A; it purged through seq 10 and erases through B.
    let categories = Some(vec![Category::AppEvents]);
    let request = if fenced {
        encode(
            &ErasureRequestV2 {
                version: assent_wire::PROTOCOL_VERSION_FENCED_ERASURE,
                device: dev.clone(),
                categories,
                fences: vec![BufferFence {
                    buffer_id: 1,
                    last_seq: 10,
                }],
            },
            Encoding::Json,
        )
    } else {
        encode(
            &ErasureRequest {
                version: assent_wire::PROTOCOL_VERSION,
                device: dev.clone(),
                categories,
            },
            Encoding::Json,
        )
    }
    .unwrap();
    let mut client_b = b.mtls_client();
    let reply = client_b
        .request(
            "POST",
            assent_wire::PATH_ERASURE,
            "application/json",
            request,
        )
        .unwrap();
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    assert_eq!(reply.json()["erased_events"], 5);
    assert!(b.event_seqs(&dev).is_empty());

    // The abandoned batch completes and commits on A, after the erasure.
    held.write(&body[body.len() - 1..]).unwrap();
    assert_eq!(held.read_status(), Some(200));
    // Events above the fence are stored as usual.
    assert_eq!(
        client_a.ack(&app_batch(&dev, 1, 11, 12), Encoding::Postcard),
        12
    );
    a.event_seqs(&dev)
}

fn a_late_batch_cannot_bring_erased_events_back_past_a_fence(method: &str) {
    assert_eq!(late_batch_race(true, method), [11, 12]);
}

/// The same race with a v1 erasure (no fence): the erased events come back, which is
/// what the fence is for (and shows the test above can fail).
#[test]
fn without_a_fence_a_late_batch_brings_erased_events_back() {
    assert_eq!(late_batch_race(false, "copy"), [6, 7, 8, 9, 10, 11, 12]);
}

/// `import --from collector.db` moves a SQLite collector's records into PostgreSQL, and a
/// second run (or one after more was stored) copies only what is new.
#[test]
fn import_from_sqlite_is_complete_and_idempotent() {
    let mut old = Collector::start_with(Backend::Sqlite.options());
    let mut client = old.mtls_client();
    let (d1, d2) = (device(61), device(62));
    assert_eq!(
        client.ack(&app_batch(&d1, 1, 1, 20), Encoding::Postcard),
        20
    );
    assert_eq!(client.ack(&app_batch(&d2, 7, 1, 5), Encoding::Postcard), 5);
    let erase = ErasureRequestV2 {
        version: assent_wire::PROTOCOL_VERSION_FENCED_ERASURE,
        device: d2.clone(),
        categories: Some(vec![Category::AppEvents]),
        fences: vec![BufferFence {
            buffer_id: 7,
            last_seq: 5,
        }],
    };
    let reply = client
        .request(
            "POST",
            assent_wire::PATH_ERASURE,
            "application/json",
            encode(&erase, Encoding::Json).unwrap(),
        )
        .unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(client.ack(&app_batch(&d2, 7, 6, 8), Encoding::Postcard), 8);

    let new = Collector::start_with(Backend::Postgres.options());
    let import = |c: &Collector| {
        let from = c.database.display().to_string();
        let out = new.cli(&["import", "--from", &from]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let first = import(&old);
    assert!(first.contains("imported 23 events, 0 gaps"), "{first}");
    assert!(first.contains("1 erasure log rows"), "{first}");
    let again = import(&old);
    assert!(
        again.contains("imported 0 events, 0 gaps, 0 consent records, 0 erasure log rows"),
        "{again}"
    );

    // More arrives at the old collector before the switch: only that is copied.
    let mut client = old.mtls_client();
    assert_eq!(
        client.ack(&app_batch(&d1, 1, 21, 25), Encoding::Postcard),
        25
    );
    let more = import(&old);
    assert!(more.contains("imported 5 events"), "{more}");
    old.kill();
    for dev in [&d1, &d2] {
        // Receipt times come along too.
        let want = old.export(dev, None);
        assert!(!want.is_empty());
        assert_eq!(new.export(dev, None), want);
    }
    // The fence came along: a late resend of erased seqs stays out on PostgreSQL too.
    let mut client = new.mtls_client();
    assert_eq!(client.ack(&app_batch(&d2, 7, 1, 8), Encoding::Postcard), 8);
    assert_eq!(new.event_seqs(&d2), [6, 7, 8]);
    let stats = new.cli(&["stats"]);
    assert!(stats.status.success());
    let stats: serde_json::Value = serde_json::from_slice(&stats.stdout).unwrap();
    assert_eq!(stats["events"], 28);
    assert_eq!(stats["erasures"], 1);
}

/// TLS to PostgreSQL with `sslmode=verify-full` (rustls, the server certificate chained to
/// `database_ca_file`, the host name checked) and the password from
/// `database_password_file`: check-config and serve connect; a wrong CA, a wrong name or a
/// wrong password is refused, and the password never appears in what is printed.
#[test]
fn verify_full_tls_and_a_password_file() {
    let cluster = PrivateCluster::start(58000 + (std::process::id() % 1000) as u16);
    let url = cluster.fresh_database();
    let name = pg_support::database_name(&url);
    let password = "s3cret-Pa55word";
    cluster
        .client(&name)
        .batch_execute(&format!("ALTER ROLE assent PASSWORD '{password}'"))
        .unwrap();
    cluster.stop();
    let dir = tempfile::tempdir().unwrap();
    let db_pki = Pki::with_server(&dir.path().join("db-pki"), &["localhost"], false);
    cluster.write_data_file("server.crt", &std::fs::read(&db_pki.server_cert).unwrap());
    cluster.write_data_file("server.key", &std::fs::read(&db_pki.server_key).unwrap());
    // TCP only with TLS and a password; the socket stays trusted for the test's own use.
    cluster.write_data_file(
        "pg_hba.conf",
        b"local all all trust\nhostssl all all 127.0.0.1/32 scram-sha-256\n",
    );
    cluster.restart_with(
        "-c listen_addresses=127.0.0.1 -c ssl=on -c ssl_cert_file=server.crt \
         -c ssl_key_file=server.key",
    );

    let other_ca = Pki::with_server(&dir.path().join("other"), &["localhost"], false);
    let write = |host: &str, pw: &str, ca: &std::path::Path| {
        std::fs::write(dir.path().join("pw"), format!("{pw}\n")).unwrap();
        let options = Options {
            database_url: Some(format!(
                "postgresql://assent@{host}:{}/{name}?sslmode=verify-full",
                cluster.port
            )),
            ..Options::default()
        };
        let pki = Pki::with_server(&dir.path().join("pki"), &["localhost"], false);
        let config = write_config(dir.path(), &pki, &options);
        let mut text = std::fs::read_to_string(&config).unwrap();
        text = format!(
            "database_password_file = \"{}\"\ndatabase_ca_file = \"{}\"\n{text}",
            dir.path().join("pw").display(),
            ca.display()
        );
        std::fs::write(&config, text).unwrap();
        Command::new(collector_bin())
            .args(["check-config", "--config"])
            .arg(&config)
            .output()
            .unwrap()
    };
    let out = write("localhost", password, &db_pki.ca_file);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("connected to postgresql://assent@localhost"),
        "{text}"
    );
    for (host, pw, ca, want) in [
        ("localhost", password, &other_ca.ca_file, "certificate"),
        ("127.0.0.1", password, &db_pki.ca_file, "certificate"),
        (
            "localhost",
            "wrong",
            &db_pki.ca_file,
            "password authentication failed",
        ),
    ] {
        let out = write(host, pw, ca);
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert_eq!(out.status.code(), Some(78), "{host} {pw}: {err}");
        assert!(err.to_lowercase().contains(want), "{host} {pw}: {err}");
        assert!(!err.contains(password) && !err.contains("wrong\n"), "{err}");
    }
}

/// An erasure takes the device's row first, so it waits for an ingest of that device in
/// flight on another replica and then deletes what that ingest committed. The ingest is
/// held inside its transaction by a lock the test takes on the (device, buffer) row.
fn an_erasure_waits_for_an_ingest_in_flight_and_deletes_what_it_committed(method: &str) {
    let options = pg_options(method);
    let name = pg_support::database_name(options.database_url.as_ref().unwrap());
    let a = start(options.clone());
    let b = start(options);
    let dev = device(71);
    let mut client_a = a.mtls_client();
    assert_eq!(
        client_a.ack(&app_batch(&dev, 1, 1, 3), Encoding::Postcard),
        3
    );

    let mut holder = pg_support::client(&name);
    let mut hold = holder.transaction().unwrap();
    hold.execute(
        "SELECT 1 FROM buffers WHERE device = $1 AND buffer_id = 1 FOR UPDATE",
        &[&dev.as_str()],
    )
    .unwrap();
    let ingest = std::thread::spawn(move || {
        client_a.ack(&app_batch(&dev.clone(), 1, 4, 9), Encoding::Postcard)
    });
    let mut watcher = pg_support::client(&name);
    let waiting = |watcher: &mut postgres::Client, n: i64| {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let got: i64 = watcher
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' \
                     AND datname = current_database()",
                    &[],
                )
                .unwrap()
                .get(0);
            if got >= n {
                return;
            }
            assert!(Instant::now() < deadline, "{got} waiting, want {n}");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    // The ingest holds the device's row and waits for the buffer's.
    waiting(&mut watcher, 1);
    let dev = device(71);
    let erase = std::thread::spawn({
        let mut client_b = b.mtls_client();
        let body = encode(
            &ErasureRequest {
                version: assent_wire::PROTOCOL_VERSION,
                device: dev.clone(),
                categories: None,
            },
            Encoding::Json,
        )
        .unwrap();
        move || {
            client_b
                .request("POST", assent_wire::PATH_ERASURE, "application/json", body)
                .unwrap()
        }
    });
    // The erasure waits for the device's row.
    waiting(&mut watcher, 2);
    hold.commit().unwrap();
    assert_eq!(ingest.join().unwrap(), 9);
    let reply = erase.join().unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["erased_events"], 9);
    assert!(a.event_seqs(&dev).is_empty());
}

/// COPY and multi-row INSERT store the same rows: inventories from the fixture roots
/// (the garbage root's hostile strings included), a batch of 2,500 app events (three
/// INSERT statements in one transaction) and an overlapping resend, exported from a
/// collector of each kind and compared line by line (receipt times aside).
#[test]
fn copy_and_multi_row_insert_store_identical_rows() {
    let exports: Vec<Vec<serde_json::Value>> = ["copy", "insert"]
        .into_iter()
        .map(|method| {
            let c = start(pg_options(method));
            let mut client = c.mtls_client();
            let dev = device(81);
            let mut payloads = inventory_payloads("rpi4-raspios64");
            payloads.extend(inventory_payloads("garbage"));
            let records: Vec<_> = payloads
                .into_iter()
                .zip(1u64..)
                .map(|(p, seq)| event(seq, p))
                .collect();
            let last = records.len() as u64;
            let batch = assent_wire::Batch {
                version: assent_wire::PROTOCOL_VERSION,
                device: dev.clone(),
                buffer_id: 1,
                first_seq: 1,
                last_seq: last,
                records,
            };
            assert_eq!(client.ack(&batch, Encoding::Postcard), last);
            assert_eq!(
                client.ack(&app_batch(&dev, 2, 1, 2500), Encoding::Postcard),
                2500
            );
            assert_eq!(
                client.ack(&app_batch(&dev, 2, 2000, 2600), Encoding::Json),
                2600
            );
            let mut lines = c.export(&dev, None);
            for line in &mut lines {
                line.as_object_mut().unwrap().remove("received_at_ms");
            }
            let events = lines.iter().filter(|l| l["record"] == "event").count();
            assert_eq!(events as u64, last + 2600, "{method}");
            lines
        })
        .collect();
    assert_eq!(exports[0], exports[1]);
}
