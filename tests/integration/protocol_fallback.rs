//! Staged upgrades: the real v2 agent against a real collector that speaks protocol v1
//! only (`max_protocol = 1`), on both backends. Events arrive exactly once, erasures work
//! as v1 (without fences), and the agent logs the fallback once per sync run. The same
//! run against a v2 collector is the control: no fallback, fences stored.

use assent_testkit::collector::{Collector, Options};
use assent_testkit::on_both_backends;
use assent_testkit::pg::{sql_rows, Backend};
use assent_testkit::*;
use std::collections::BTreeSet;

const FALLBACK_LINE: &str = "the collector speaks protocol v1 only";

fn device_for(collector: &Collector) -> Device {
    let cert = collector.pki.client("device-1");
    Device::new(&format!(
        "[collector]\nurl = \"https://localhost:{}\"\nca_file = \"{}\"\n\
         client_cert_file = \"{}\"\nclient_key_file = \"{}\"\n\
         [sync]\nbackoff_base_seconds = 1\nbackoff_max_seconds = 2\nmetered = \"allow\"\n",
        collector.addr.port(),
        collector.pki.ca_file.display(),
        cert.cert_file.display(),
        cert.key_file.display()
    ))
}

fn collect(device: &Device, rounds: usize) {
    let root = fixture_root("x86-gateway");
    for _ in 0..rounds {
        device.run_ok(&["collect", "--root", root.to_str().unwrap()]);
    }
}

/// (seq, category) of every event the agent holds unsent.
fn agent_events(device: &Device) -> BTreeSet<(u64, String)> {
    sqlite(
        &device.state_dir().join("buffer.db"),
        "SELECT seq, category FROM records WHERE payload IS NOT NULL AND category <> 'consent'",
    )
    .iter()
    .map(|r| {
        let (seq, cat) = r.split_once('|').unwrap();
        (seq.parse().unwrap(), cat.to_string())
    })
    .collect()
}

/// Every event row the collector holds, duplicates kept.
fn collector_events(collector: &Collector) -> Vec<(u64, String)> {
    sql_rows(
        collector,
        "SELECT seq, category FROM events ORDER BY seq, category",
    )
    .into_iter()
    .map(|r| (r[0].parse().unwrap(), r[1].clone()))
    .collect()
}

/// `sync --once`; its stderr (the agent's log).
fn sync_once(device: &Device) -> String {
    let out = device.run(&["sync", "--once"]);
    let log = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        out.status.success(),
        "sync failed: {}\n{}\n{log}",
        out.status,
        String::from_utf8_lossy(&out.stdout)
    );
    log
}

/// What one staged-upgrade run left behind.
struct Run {
    collector: Collector,
    /// The agent's log of the sync run that sent both erasures.
    erasing_log: String,
}

/// Sends two collections, withdraws software and location (two erasure requests, sent
/// in one sync run before the rest of the backlog), sends again; checks what holds on
/// every collector.
fn staged_upgrade(backend: Backend, max_protocol: Option<u16>) -> Run {
    let collector = Collector::start_with(Options {
        max_protocol,
        ..backend.options()
    });
    let device = device_for(&collector);
    device.run_ok(&["consent", "grant", "--all-required"]);
    device.run_ok(&["consent", "grant", "software"]);
    device.run_ok(&["consent", "grant", "location"]);
    collect(&device, 2);
    let first = agent_events(&device);
    let sent_of = |category: &str| first.iter().filter(|(_, c)| c == category).count();
    // Software: two snapshots and the package list, in one part the first time and
    // unchanged the second (docs/protocol.md, "Package inventories").
    assert_eq!(
        (sent_of("software"), sent_of("location")),
        (3, 2),
        "{first:?}"
    );
    let others_per_collection = (first.len() - 5) / 2;
    let log = sync_once(&device);
    assert!(!log.contains(FALLBACK_LINE), "no erasure yet:\n{log}");
    let mut stored = collector_events(&collector);
    let unique: BTreeSet<_> = stored.iter().cloned().collect();
    assert_eq!(unique, first, "the first sync stores what the agent held");
    assert_eq!(stored.len(), unique.len(), "nothing stored twice");

    // A backlog, then two withdrawals: two erasure requests queued ahead of it.
    collect(&device, 2);
    device.run_ok(&["consent", "revoke", "software"]);
    device.run_ok(&["consent", "revoke", "location"]);
    collect(&device, 1);
    let second = agent_events(&device);
    assert!(
        second
            .iter()
            .all(|(_, c)| c != "software" && c != "location"),
        "the withdrawn backlog is purged: {second:?}"
    );
    assert_eq!(second.len(), others_per_collection * 3, "{second:?}");
    let erasing_log = sync_once(&device);

    // Software and location are erased at the collector; everything else arrived once.
    let want: BTreeSet<_> = first
        .union(&second)
        .filter(|(_, c)| c != "software" && c != "location")
        .cloned()
        .collect();
    stored = collector_events(&collector);
    let unique: BTreeSet<_> = stored.iter().cloned().collect();
    assert_eq!(unique, want, "erased categories gone, the rest stored");
    assert_eq!(stored.len(), want.len(), "nothing stored twice");
    assert_eq!(
        sql_rows(
            &collector,
            "SELECT categories, erased_events FROM erasure_log ORDER BY id"
        ),
        vec![
            vec!["software".to_string(), "3".to_string()],
            vec!["location".to_string(), "2".to_string()]
        ]
    );
    // The high-water is the agent's last assigned seq, which the agent holds acked.
    let buffer = device.state_dir().join("buffer.db");
    let last_seq = sqlite(
        &buffer,
        "SELECT seq FROM sqlite_sequence WHERE name = 'records'",
    );
    assert_eq!(sqlite(&buffer, "SELECT acked_through FROM state"), last_seq);
    assert_eq!(
        sql_rows(&collector, "SELECT high_water FROM buffers"),
        vec![last_seq]
    );
    let log = sync_once(&device);
    assert_eq!(collector_events(&collector).len(), want.len(), "{log}");
    Run {
        collector,
        erasing_log,
    }
}

fn a_v2_agent_falls_back_once_to_a_v1_only_collector(backend: Backend) {
    let run = staged_upgrade(backend, Some(1));
    assert!(
        run.collector
            .log()
            .contains("protocol v1 only (max_protocol = 1)"),
        "{}",
        run.collector.log()
    );
    assert_eq!(
        run.erasing_log.matches(FALLBACK_LINE).count(),
        1,
        "two erasures, one fallback logged:\n{}",
        run.erasing_log
    );
    // A v1 collector never sees a fence.
    assert_eq!(
        sql_rows(&run.collector, "SELECT count(*) FROM erasure_fences"),
        vec![vec!["0".to_string()]]
    );
}

on_both_backends!(a_v2_agent_falls_back_once_to_a_v1_only_collector);

/// The control: the same run against a v2 collector stores the fences, so the checks
/// above can tell a fallback from none.
#[test]
fn a_v2_agent_does_not_fall_back_to_a_v2_collector() {
    let run = staged_upgrade(Backend::Sqlite, None);
    assert!(
        !run.erasing_log.contains(FALLBACK_LINE),
        "{}",
        run.erasing_log
    );
    let fences = sql_rows(
        &run.collector,
        "SELECT category FROM erasure_fences ORDER BY category",
    );
    assert_eq!(
        fences,
        vec![vec!["location".to_string()], vec!["software".to_string()]]
    );
}
