//! The schema distributed by device on a sharded PostgreSQL: Citus (built from source by
//! `scripts/citus.sh`, which `.ci/run` calls), a coordinator and two workers as
//! throw-away clusters. `assent-collector migrate` creates the schema on the
//! coordinator, `configs/citus-distribute.sql` distributes it as docs/fleet.md says, and
//! two collector replicas (one writing events by COPY, one by multi-row INSERT) ingest
//! overlapping batches of several devices at once and erase through it: each seq once,
//! erasures complete, fences kept; retention drops and creates distributed partitions.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use assent_testkit::collector as support;
use assent_testkit::pg as pg_support;

use assent_collector::pg::PgStorage;
use assent_collector::storage::Storage;
use assent_wire::{encode, BufferFence, Encoding, ErasureRequestV2};
use pg_support::PrivateCluster;
use std::collections::BTreeMap;
use std::net::TcpListener;
use std::process::Command;
use std::sync::{Arc, Barrier};
use support::*;

const DATABASE: &str = "fleet";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A cluster with Citus loaded, listening on 127.0.0.1 (the coordinator reaches the
/// workers over TCP), with the `fleet` database and the extension in it.
fn citus_node() -> (PrivateCluster, u16) {
    let port = free_port();
    let cluster = PrivateCluster::start(port);
    cluster.stop();
    cluster.restart_with("-c listen_addresses=127.0.0.1 -c shared_preload_libraries=citus");
    let mut admin = cluster.client("postgres");
    admin
        .batch_execute(&format!("CREATE DATABASE {DATABASE}"))
        .unwrap();
    cluster
        .client(DATABASE)
        .batch_execute("CREATE EXTENSION citus")
        .unwrap_or_else(|e| {
            panic!(
                "cannot create the citus extension (built and installed by scripts/citus.sh, \
                 which .ci/run calls): {e:?}"
            )
        });
    (cluster, port)
}

fn cli(config: &std::path::Path, args: &[&str]) -> std::process::Output {
    let out = Command::new(collector_bin())
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "assent-collector {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn the_schema_distributed_by_device_on_citus_ingests_exactly_once_and_erases() {
    let (coordinator, coordinator_port) = citus_node();
    let workers: Vec<(PrivateCluster, u16)> = (0..2).map(|_| citus_node()).collect();
    let mut db = coordinator.client(DATABASE);
    db.query_one(
        "SELECT citus_set_coordinator_host('127.0.0.1', $1)",
        &[&i32::from(coordinator_port)],
    )
    .unwrap();
    for (_, port) in &workers {
        db.query_one(
            "SELECT citus_add_node('127.0.0.1', $1)",
            &[&i32::from(*port)],
        )
        .unwrap();
    }

    // migrate, then the distribution script the docs name.
    let url = format!(
        "postgresql://assent@/{DATABASE}?host={}&port={coordinator_port}",
        coordinator.dir.path().display()
    );
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::with_server(&dir.path().join("pki"), &["localhost"], false);
    let config = write_config(
        dir.path(),
        &pki,
        &Options {
            database_url: Some(url.clone()),
            ..Options::default()
        },
    );
    cli(&config, &["migrate"]);
    let script = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../configs/citus-distribute.sql"
    ))
    .unwrap();
    // Few shards: enough to spread devices over both workers, quick to create.
    db.batch_execute(&format!("SET citus.shard_count = 4;\n{script}"))
        .unwrap_or_else(|e| panic!("configs/citus-distribute.sql: {e:?}"));
    let distributed: Vec<String> = db
        .query(
            "SELECT logicalrelid::text FROM pg_dist_partition ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    for table in [
        "buffers",
        "consent_records",
        "device_days",
        "devices",
        "erasure_fences",
        "erasure_log",
        "events",
        "gaps",
    ] {
        assert!(
            distributed.iter().any(|t| t == table),
            "{table} not distributed: {distributed:?}"
        );
    }

    // Two replicas, each way of writing events.
    let replica = |method: &str| {
        Collector::start_with(Options {
            database_url: Some(url.clone()),
            database_write_method: Some(method.into()),
            ..Options::default()
        })
    };
    let a = replica("copy");
    let b = replica("insert");

    // Several devices at once (group commits spanning shards on both workers), each
    // device's overlapping and resent batches sent to both replicas at the same moment.
    let devices: Vec<u64> = (200..206).collect();
    let rounds = 15u64;
    let barrier = Arc::new(Barrier::new(devices.len() * 2));
    let mut threads = Vec::new();
    for &n in &devices {
        for (c, pattern) in [
            (&a, &[(1u64, 10u64), (1, 20), (5, 15)][..]),
            (&b, &[(1, 15), (1, 10), (11, 20)][..]),
        ] {
            let mut client = c.mtls_client();
            let barrier = barrier.clone();
            let pattern = pattern.to_vec();
            threads.push(std::thread::spawn(move || {
                let dev = device(n);
                for round in 0..rounds {
                    let base = round * 20;
                    barrier.wait();
                    for (from, to) in &pattern {
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
            }));
        }
    }
    for t in threads {
        t.join().unwrap();
    }
    for &n in &devices {
        let dev = device(n);
        let seqs = a.event_seqs(&dev);
        let mut counts: BTreeMap<u64, u32> = BTreeMap::new();
        for s in &seqs {
            *counts.entry(*s).or_default() += 1;
        }
        let twice: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
        assert!(
            twice.is_empty(),
            "device {n}: stored more than once: {twice:?}"
        );
        assert_eq!(seqs, (1..=rounds * 20).collect::<Vec<_>>(), "device {n}");
        let hw: i64 = db
            .query_one(
                "SELECT high_water FROM buffers WHERE device = $1 AND buffer_id = 5",
                &[&dev.as_str()],
            )
            .unwrap()
            .get(0);
        assert_eq!(hw, (rounds * 20) as i64, "device {n}");
    }
    // The rows are on the workers, spread over both.
    let nodes: i64 = db
        .query_one(
            "SELECT count(DISTINCT nodeport) FROM citus_shards \
             WHERE table_name = 'events'::regclass",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(nodes, 2);
    let total: i64 = db
        .query_one("SELECT count(*) FROM events", &[])
        .unwrap()
        .get(0);
    assert_eq!(total, (devices.len() as u64 * rounds * 20) as i64);

    // A fenced erasure through B; a late batch below the fence through A stores nothing
    // of it, one above it is stored.
    let dev = device(devices[0]);
    let request = encode(
        &ErasureRequestV2 {
            version: assent_wire::PROTOCOL_VERSION_FENCED_ERASURE,
            device: dev.clone(),
            categories: Some(vec![assent_platform::Category::AppEvents]),
            fences: vec![BufferFence {
                buffer_id: 5,
                last_seq: rounds * 20 + 10,
            }],
        },
        Encoding::Json,
    )
    .unwrap();
    let reply = b
        .mtls_client()
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
    assert_eq!(reply.json()["erased_events"], rounds * 20);
    let mut client_a = a.mtls_client();
    let last = rounds * 20;
    assert_eq!(
        client_a.ack(&app_batch(&dev, 5, last + 1, last + 12), Encoding::Postcard),
        last + 12
    );
    assert_eq!(a.event_seqs(&dev), vec![last + 11, last + 12]);
    assert_eq!(
        db.query_one(
            "SELECT categories FROM erasure_log WHERE device = $1",
            &[&dev.as_str()]
        )
        .unwrap()
        .get::<_, String>(0),
        "app_events"
    );
    // The other devices are untouched; stats work across shards.
    assert_eq!(b.event_seqs(&device(devices[1])).len() as u64, rounds * 20);
    let stats: serde_json::Value =
        serde_json::from_slice(&cli(&config, &["stats"]).stdout).unwrap();
    assert_eq!(stats["devices"], devices.len());
    assert_eq!(stats["erasures"], 1);

    // Retention: a partition made after distribution is distributed too, so the sweep
    // recreates a missing day ahead as a distributed partition and drops an old one.
    let day_name = |db: &mut postgres::Client, day: i64| -> String {
        db.query_one(
            "SELECT to_char(to_timestamp($1::bigint * 86400) AT TIME ZONE 'UTC', 'YYYYMMDD')",
            &[&day],
        )
        .unwrap()
        .get(0)
    };
    let day_ms = 86_400_000i64;
    let today = assent_collector::server::now_ms().div_euclid(day_ms);
    let ahead = format!("events_{}", day_name(&mut db, today + 7));
    db.batch_execute(&format!("DROP TABLE {ahead}")).unwrap();
    let old_day = today - 400;
    let old = format!("events_{}", day_name(&mut db, old_day));
    db.batch_execute(&format!(
        "CREATE TABLE {old} PARTITION OF events FOR VALUES FROM ({}) TO ({})",
        old_day * day_ms,
        (old_day + 1) * day_ms
    ))
    .unwrap();
    db.execute(
        "INSERT INTO events VALUES ($1, 5, 1, 'app_events', 'k', 0, '00', 0, '{}', $2)",
        &[&device(devices[2]).as_str(), &(old_day * day_ms + 1)],
    )
    .unwrap();
    let mut storage = PgStorage::open(&pg_support::target(&url)).unwrap();
    let swept = storage
        .sweep_retention(assent_collector::server::now_ms() - 30 * day_ms)
        .unwrap();
    assert_eq!(swept, 0, "the old row went with its partition");
    let exists = |db: &mut postgres::Client, table: &str| -> bool {
        db.query_one("SELECT to_regclass($1) IS NOT NULL", &[&table])
            .unwrap()
            .get(0)
    };
    assert!(!exists(&mut db, &old), "{old} not dropped");
    assert!(exists(&mut db, &ahead), "{ahead} not recreated");
    let ahead_distributed: bool = db
        .query_one(
            "SELECT count(*) = 1 FROM pg_dist_partition WHERE logicalrelid = to_regclass($1)",
            &[&ahead],
        )
        .unwrap()
        .get(0);
    assert!(ahead_distributed, "{ahead} is a local table");
    let total: i64 = db
        .query_one("SELECT count(*) FROM events", &[])
        .unwrap()
        .get(0);
    assert_eq!(total, ((devices.len() as u64 - 1) * rounds * 20 + 2) as i64);
}
