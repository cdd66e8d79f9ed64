//! Package inventories: the bytes one package upgrade costs against the full list. The
//! release `assent` collects a generated 3,000-package dpkg root and syncs it to the real
//! collector (mutual TLS), then one package is upgraded and it collects and syncs again.
//! Printed per buffer size: the store's event limit, the full list as one uncompressed
//! event (what the `software` payload carried before, refused when it passes the limit),
//! the parts stored and the sync's request bytes, then the same for the upgrade. The
//! second sync also carries the other categories' snapshots, which `assent collect`
//! stores every time; the delta alone is printed beside it.
#![allow(clippy::print_stdout, clippy::unwrap_used)]

use assent_platform::software::Package;
use assent_testkit::collector::{Collector, Options};
use assent_testkit::{packages, run_ok, sqlite, workspace};
use std::path::Path;
use std::process::Command;

const PACKAGES: usize = 3000;

fn main() {
    let assent = workspace().join("target/release/assent");
    assert!(
        assent.exists(),
        "build it first: cargo build --release -p assent"
    );
    let list = packages::generate(PACKAGES, 15);
    let as_one_event = assent_wire::Payload::Software(Box::new(software_of(&list)))
        .to_postcard()
        .unwrap()
        .len();
    println!(
        "package inventory of {PACKAGES} packages: the whole list as one uncompressed event \
         is {as_one_event} bytes"
    );
    println!(
        "{:>10} {:>12} {:>6} {:>12} {:>12} {:>12} {:>12} {:>10}",
        "buffer",
        "event limit",
        "parts",
        "parts bytes",
        "full sync",
        "delta bytes",
        "upgrade sync",
        "upgrade/full"
    );
    for max_bytes in [256 * 1024u64, 1024 * 1024, 16 * 1024 * 1024] {
        let collector = Collector::start_with(Options {
            log_level: "info".into(),
            ..Default::default()
        });
        let dir = tempfile::tempdir().unwrap();
        let root = packages::write_root(&dir.path().join("root"), &list);
        let config = dir.path().join("assent.toml");
        let cert = collector.pki.client("bench-device");
        std::fs::write(
            &config,
            format!(
                "state_dir = \"state\"\n[buffer]\nmax_bytes = {max_bytes}\n[collector]\n\
                 url = \"https://localhost:{}\"\nca_file = \"{}\"\nclient_cert_file = \"{}\"\n\
                 client_key_file = \"{}\"\n[sync]\nmetered = \"allow\"\n",
                collector.addr.port(),
                collector.pki.ca_file.display(),
                cert.cert_file.display(),
                cert.key_file.display()
            ),
        )
        .unwrap();
        let run = |args: &[&str]| {
            let out = run_ok(
                Command::new(&assent)
                    .args(args)
                    .arg("--config")
                    .arg(&config),
            );
            String::from_utf8_lossy(&out.stdout).to_string()
        };
        run(&["consent", "grant", "--all-required"]);
        run(&["consent", "grant", "software"]);
        let buffer = dir.path().join("state/buffer.db");

        run(&["collect", "--root", root.to_str().unwrap()]);
        let (parts, parts_bytes) = package_events(&buffer);
        let full_sync = sync_bytes(&run(&["sync", "--once"]));

        packages::write_root(&root, &packages::upgraded(&list, 1234));
        run(&["collect", "--root", root.to_str().unwrap()]);
        let (deltas, delta_bytes) = package_events(&buffer);
        assert_eq!(deltas, 1, "the upgrade is one delta event");
        let upgrade_sync = sync_bytes(&run(&["sync", "--once"]));
        println!(
            "{:>10} {:>12} {:>6} {:>12} {:>12} {:>12} {:>12} {:>10.3}",
            max_bytes,
            assent_store::max_event_bytes(max_bytes).unwrap(),
            parts,
            parts_bytes,
            full_sync,
            delta_bytes,
            upgrade_sync,
            upgrade_sync as f64 / full_sync as f64
        );
    }
}

/// (count, payload bytes) of the package-list events the buffer holds unsent.
fn package_events(buffer: &Path) -> (u64, u64) {
    let row = sqlite(
        buffer,
        "SELECT count(*), coalesce(sum(length(payload)), 0) FROM records WHERE kind = 'packages'",
    );
    let mut fields = row[0].split('|').map(|f| f.parse::<u64>().unwrap());
    (fields.next().unwrap(), fields.next().unwrap())
}

/// The request bytes `assent sync --once` reports.
fn sync_bytes(text: &str) -> u64 {
    text.split(" batches (")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no byte count in {text}"))
}

fn software_of(list: &[packages::FixturePackage]) -> assent_platform::software::Software {
    use assent_platform::software::Software;
    use assent_platform::Field;
    let packages: Vec<Package> = list
        .iter()
        .map(|(name, version, arch)| Package {
            name: name.clone(),
            version: version.clone(),
            architecture: Some(arch.clone()),
        })
        .collect();
    Software {
        package_manager: Field::Absent,
        package_count: Field::Present(packages.len() as u64),
        packages: Field::Present(packages),
        malformed_entries: Field::Present(0),
        running_programs: Field::Absent,
        process_count: Field::Absent,
        malformed_process_names: Field::Absent,
    }
}
