//! Protocol v1's JSON shape, pinned: a batch built from what the agent collects on the
//! committed fixture roots (through `collect::collect`, the path every event takes), with
//! a gap and a consent record, encoded as the uploader sends it and compared with
//! `tests/fixtures/golden/wire/<root>.json`. Renaming a field anywhere below the wire
//! (a platform fact struct, a wire type) fails here; `ASSENT_UPDATE_GOLDEN=1` rewrites
//! the files after a deliberate protocol change.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use assent::collect::identity::Identity;
use assent::collect::{collect, PlatformReaders};
use assent::config::Config;
use assent::consent::{evaluate, ConsentFile, ConsentRecord, ConsentSource};
use assent_platform::{Category, Root};
use assent_wire::{
    encode, Batch, BootId, ConsentChange, Encoding, Event, Gap, GapReason, Payload, Pseudonym,
    Record, PROTOCOL_VERSION,
};
use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every category granted under policy 1.
fn all_granted() -> ConsentSource {
    let mut file = ConsentFile::default();
    for category in Category::ALL {
        file.records.insert(
            category,
            ConsentRecord {
                granted: true,
                policy_version: 1,
                at: "2026-11-22T10:00:00Z".into(),
                by: "owner".into(),
            },
        );
    }
    ConsentSource::Loaded(file)
}

/// The batch the agent would send for `root`, with the random parts (pseudonym, clock)
/// fixed.
fn batch_for(root: &str) -> Batch {
    let state = tempfile::tempdir().unwrap();
    let mut config = Config::parse(Path::new("/etc/assent/assent.toml"), "").unwrap();
    config.state_dir = state.path().to_path_buf();
    let view = evaluate(&config, &all_granted());
    let readers = PlatformReaders::new(
        Root::at(workspace().join("tests/fixtures/roots").join(root)),
        &config,
    );
    let identity = Identity::load(&config).unwrap();
    let collection = collect(&view, &Category::ALL, &readers, Some(&identity));
    let device = Pseudonym::parse("goldendeviceapseudonymaaaa").unwrap();
    let mut records = Vec::new();
    for (category, payload) in collection.collected() {
        let mut payload = payload.clone();
        if let Payload::DeviceId(identity) = &mut payload {
            identity.pseudonym = device.clone();
        }
        let seq = records.len() as u64 + 1;
        records.push(Record::Event(Event {
            seq,
            category,
            kind: "snapshot".into(),
            wall_time_ms: 1_795_000_000_000,
            boot_id: BootId([0x5a; 16]),
            monotonic_ns: 1_000_000,
            payload,
        }));
    }
    let next = records.len() as u64 + 1;
    records.push(Record::Gap(Gap {
        seq: next,
        first_seq: next,
        last_seq: next,
        count: 1,
        reason: GapReason::Purged,
        category: Some(Category::Location),
    }));
    records.push(Record::Consent(ConsentChange {
        seq: next + 1,
        observed_at: "2026-11-22T10:00:01Z".into(),
        category: Category::Location,
        active: false,
        state: "refused".into(),
        by: Some("owner".into()),
        at: Some("2026-11-22T10:00:00Z".into()),
        policy_version: 1,
    }));
    Batch {
        version: PROTOCOL_VERSION,
        device,
        buffer_id: 7,
        first_seq: 1,
        last_seq: next + 1,
        records,
    }
}

#[test]
fn the_json_wire_shape_of_protocol_v1_is_pinned() {
    for root in ["rpi4-raspios64", "x86-gateway"] {
        let batch = batch_for(root);
        // Every readable category that has facts on these roots is in the batch.
        assert!(
            batch.records.len() >= 6,
            "{root}: {} records",
            batch.records.len()
        );
        let bytes = encode(&batch, Encoding::Json).unwrap();
        let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        let text = serde_json::to_string_pretty(&value).unwrap() + "\n";
        let golden = workspace()
            .join("tests/fixtures/golden/wire")
            .join(format!("{root}.json"));
        if std::env::var_os("ASSENT_UPDATE_GOLDEN").is_some() {
            std::fs::write(&golden, &text).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&golden).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (run with ASSENT_UPDATE_GOLDEN=1 to create it)",
                golden.display()
            )
        });
        assert!(
            want == text,
            "{root}: the JSON wire form changed; if the protocol change is deliberate, \
             rerun with ASSENT_UPDATE_GOLDEN=1 and review the diff of {}",
            golden.display()
        );
        // And the collector's strict decoder still reads the golden form.
        let decoded: Batch =
            assent_wire::decode_batch(want.as_bytes(), Encoding::Json, 10_000).unwrap();
        assert_eq!(decoded, batch);
    }
}

/// The package-list payload (docs/protocol.md, "Package inventories"), pinned apart: a
/// part and a delta over the x86-gateway root's real packages, with fixed ids.
#[test]
fn the_json_wire_shape_of_package_lists_is_pinned() {
    use assent_wire::{package_hash, package_list_digest, PackageChange, PackageList};
    let software = assent_platform::software::read(&Root::at(
        workspace().join("tests/fixtures/roots/x86-gateway"),
    ));
    let assent_platform::Field::Present(packages) = software.packages else {
        panic!("x86-gateway has a dpkg database");
    };
    let mut upgraded = packages.clone();
    upgraded[0].version.push_str("+deb12u1");
    let list = |list_id, change| {
        Payload::Packages(Box::new(PackageList {
            list_id,
            digest: package_list_digest(&packages),
            package_count: packages.len() as u64,
            change,
        }))
    };
    let payloads = [
        list(
            0x1111,
            PackageChange::Part {
                index: 0,
                parts: 1,
                // Not real DEFLATE: the shape is pinned, not the compressor's output.
                packages_deflate: vec![0, 1, 254, 255],
            },
        ),
        list(
            0x2222,
            PackageChange::Delta {
                base: 0x1111,
                removed: vec![package_hash(&packages[0])],
                added: vec![upgraded[0].clone()],
            },
        ),
    ];
    let records: Vec<Record> = (1u64..)
        .zip(payloads)
        .map(|(seq, payload)| {
            Record::Event(Event {
                seq,
                category: Category::Software,
                kind: "packages".into(),
                wall_time_ms: 1_795_000_000_000,
                boot_id: BootId([0x5a; 16]),
                monotonic_ns: 1_000_000,
                payload,
            })
        })
        .collect();
    let batch = Batch {
        version: PROTOCOL_VERSION,
        device: Pseudonym::parse("goldendeviceapseudonymaaaa").unwrap(),
        buffer_id: 7,
        first_seq: 1,
        last_seq: 2,
        records,
    };
    let value: serde_json::Value =
        serde_json::from_slice(&encode(&batch, Encoding::Json).unwrap()).unwrap();
    let text = serde_json::to_string_pretty(&value).unwrap() + "\n";
    let golden = workspace().join("tests/fixtures/golden/wire/packages.json");
    if std::env::var_os("ASSENT_UPDATE_GOLDEN").is_some() {
        std::fs::write(&golden, &text).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&golden).unwrap();
    assert!(
        want == text,
        "the package-list wire form changed; review {}",
        golden.display()
    );
    let decoded = assent_wire::decode_batch(want.as_bytes(), Encoding::Json, 10).unwrap();
    assert_eq!(decoded, batch);
}
