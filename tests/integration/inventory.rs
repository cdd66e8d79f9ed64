//! Package inventories of any size, end to end: 3,000 packages collected by the real
//! agent from a generated dpkg root under the smallest, a small and the default buffer,
//! sent to the real collector over mutual TLS, and rebuilt by `assent-collector
//! inventory` exactly, on both backends; then one package upgraded travels as a delta.

use assent_testkit::collector::Collector;
use assent_testkit::on_both_backends;
use assent_testkit::packages::{self, FixturePackage};
use assent_testkit::pg::{sql_execute, sql_rows, Backend};
use assent_testkit::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;

const PACKAGES: usize = 3000;

/// A device sending to `collector` with a client certificate, with `extra` config.
fn device_for(collector: &Collector, name: &str, extra: &str) -> Device {
    let cert = collector.pki.client(name);
    Device::new(&format!(
        "[collector]\nurl = \"https://localhost:{}\"\nca_file = \"{}\"\n\
         client_cert_file = \"{}\"\nclient_key_file = \"{}\"\n\
         [sync]\nbackoff_base_seconds = 1\nbackoff_max_seconds = 2\nmetered = \"allow\"\n{extra}\n",
        collector.addr.port(),
        collector.pki.ca_file.display(),
        cert.cert_file.display(),
        cert.key_file.display()
    ))
}

fn collect_and_sync(device: &Device, root: &Path) {
    device.run_ok(&["collect", "--root", root.to_str().unwrap()]);
    let out = device.run(&["sync", "--once"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("remaining: 0 events"),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What `assent-collector inventory` prints for `device`, and whether it exited 0.
fn inventory(collector: &Collector, device: &str) -> (Value, bool) {
    let out = collector.cli(&["inventory", "--device", device, "--category", "software"]);
    let text = String::from_utf8_lossy(&out.stdout);
    let value: Value = serde_json::from_str(text.trim())
        .unwrap_or_else(|e| panic!("{e}: {text}\n{}", String::from_utf8_lossy(&out.stderr)));
    (value, out.status.success())
}

/// The rebuilt list as (name, version, architecture), when the collector says it is
/// complete.
fn rebuilt(collector: &Collector, device: &str) -> Vec<FixturePackage> {
    let (value, ok) = inventory(collector, device);
    assert!(ok && value["complete"] == true, "{value:#}");
    value["list"]["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_string(),
                p["version"].as_str().unwrap().to_string(),
                p["architecture"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// (kind of change, payload JSON length) of each package-list event the collector holds.
fn package_events(collector: &Collector, device: &str) -> Vec<(String, usize)> {
    collector
        .export(
            &assent_wire::Pseudonym::parse(device).unwrap(),
            Some("software"),
        )
        .into_iter()
        .filter(|line| line["kind"] == "packages")
        .map(|line| {
            let change = &line["payload"]["change"];
            let kind = if change.get("part").is_some() {
                "part"
            } else {
                "delta"
            };
            (kind.to_string(), line["payload"].to_string().len())
        })
        .collect()
}

fn three_thousand_packages_arrive_whole_under_any_buffer(backend: Backend) {
    let collector = Collector::start_with(backend.options());
    let list = packages::generate(PACKAGES, 15);
    assert_eq!(list.len(), PACKAGES);
    let mut known = BTreeSet::new();
    for (n, max_bytes) in [Some(256 * 1024), Some(1024 * 1024), None]
        .into_iter()
        .enumerate()
    {
        let dir = tempfile::tempdir().unwrap();
        let root = packages::write_root(dir.path(), &list);
        let extra = max_bytes.map_or(String::new(), |b| format!("[buffer]\nmax_bytes = {b}"));
        let device = device_for(&collector, &format!("device-{n}"), &extra);
        device.run_ok(&["consent", "grant", "--all-required"]);
        device.run_ok(&["consent", "grant", "software"]);
        collect_and_sync(&device, &root);

        let pseudonym = new_device(&collector, &mut known);
        assert_eq!(
            rebuilt(&collector, &pseudonym),
            list,
            "buffer {max_bytes:?}"
        );
        let first = package_events(&collector, &pseudonym);
        assert!(first.iter().all(|(kind, _)| kind == "part"), "{first:?}");
        if max_bytes == Some(256 * 1024) {
            assert!(first.len() > 1, "one part only under 256 KiB: {first:?}");
        }

        // One package upgraded: the collector's list follows, through one small delta.
        let after = packages::upgraded(&list, 1234);
        packages::write_root(dir.path(), &after);
        collect_and_sync(&device, &root);
        assert_eq!(
            rebuilt(&collector, &pseudonym),
            after,
            "buffer {max_bytes:?}"
        );
        let events = package_events(&collector, &pseudonym);
        assert_eq!(events.len(), first.len() + 1, "{events:?}");
        let (kind, delta_bytes) = events.last().unwrap().clone();
        assert_eq!(kind, "delta");
        let full_bytes: usize = first.iter().map(|(_, b)| b).sum();
        assert!(
            delta_bytes * 20 < full_bytes,
            "{delta_bytes} vs {full_bytes}"
        );

        // Nothing changed: nothing new is sent for the list.
        collect_and_sync(&device, &root);
        assert_eq!(package_events(&collector, &pseudonym).len(), events.len());
    }
}

/// The one device the collector holds that is not in `known`, added to it.
fn new_device(collector: &Collector, known: &mut BTreeSet<String>) -> String {
    let all: BTreeSet<String> = sql_rows(collector, "SELECT DISTINCT device FROM events")
        .into_iter()
        .map(|row| row[0].clone())
        .collect();
    let new: Vec<&String> = all.difference(known).collect();
    assert_eq!(new.len(), 1, "{all:?} after {known:?}");
    let device = new[0].clone();
    known.insert(device.clone());
    device
}

fn erasure_starts_the_list_afresh_and_a_lost_part_is_reported_incomplete(backend: Backend) {
    let collector = Collector::start_with(backend.options());
    let list = packages::generate(PACKAGES, 16);
    let dir = tempfile::tempdir().unwrap();
    let root = packages::write_root(dir.path(), &list);
    let device = device_for(&collector, "device", "[buffer]\nmax_bytes = 262144");
    device.run_ok(&["consent", "grant", "--all-required"]);
    device.run_ok(&["consent", "grant", "software"]);
    collect_and_sync(&device, &root);
    let pseudonym = new_device(&collector, &mut BTreeSet::new());
    assert_eq!(rebuilt(&collector, &pseudonym), list);

    // Withdrawn: the collector erases every part; nothing is shown as a list.
    device.run_ok(&["consent", "revoke", "software"]);
    assert!(device.run(&["sync", "--once"]).status.success());
    assert!(package_events(&collector, &pseudonym).is_empty());
    let (value, ok) = inventory(&collector, &pseudonym);
    assert!(
        !ok && value["complete"] == false && value["list"].is_null(),
        "{value:#}"
    );

    // Granted again: a full snapshot, not a delta on the erased list.
    device.run_ok(&["consent", "grant", "software"]);
    collect_and_sync(&device, &root);
    let events = package_events(&collector, &pseudonym);
    assert!(
        events.len() > 1 && events.iter().all(|(k, _)| k == "part"),
        "{events:?}"
    );
    assert_eq!(rebuilt(&collector, &pseudonym), list);

    // A part lost: the list is incomplete, and says which parts are missing.
    let deleted = sql_execute(
        &collector,
        "DELETE FROM events WHERE kind = 'packages' AND seq = \
         (SELECT max(seq) FROM events WHERE kind = 'packages')",
    );
    assert_eq!(deleted, 1);
    let (value, ok) = inventory(&collector, &pseudonym);
    assert!(!ok, "{value:#}");
    assert_eq!(value["complete"], false);
    assert!(value["list"].is_null(), "{value:#}");
    let problem = value["problem"].as_str().unwrap();
    assert!(
        problem.contains(&format!("1 of {} parts missing", events.len())),
        "{problem}"
    );
}

on_both_backends!(
    three_thousand_packages_arrive_whole_under_any_buffer,
    erasure_starts_the_list_afresh_and_a_lost_part_is_reported_incomplete,
);
