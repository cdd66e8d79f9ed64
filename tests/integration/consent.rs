//! Consent, config and identity through the real binary: `check-config`, `consent`,
//! `collect --dry-run`, `reset-id`, and the promise that raw identifiers never leave.

use assent_testkit::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::process::Output;

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

const REQUIRED: [&str; 5] = ["device_id", "hardware", "os", "network", "app_events"];

#[test]
fn check_config_reports_every_error_with_its_line_and_exits_78() {
    let device = Device::new("");
    std::fs::write(
        &device.config,
        "state_dir = \"/var/lib/assent\"\n\
         polcy_version = 1\n\
         [sync]\n\
         interval_seconds = \"often\"\n\
         [collector]\n\
         url = \"http://collector.example.net\"\n",
    )
    .unwrap();
    let out = device.run(&["check-config"]);
    assert_eq!(out.status.code(), Some(78));
    let err = String::from_utf8_lossy(&out.stderr);
    let path = device.config.display().to_string();
    assert!(
        err.contains(&format!(
            "{path}:2:1: unknown key `polcy_version`; did you mean `policy_version`?"
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!("{path}:4:20:")) && err.contains("interval_seconds"),
        "{err}"
    );
    assert!(
        err.contains(&format!("{path}:6:7:")) && err.contains("https"),
        "{err}"
    );
}

#[test]
fn check_config_validates_the_consent_file_too() {
    let device = Device::new("");
    let out = device.run_ok(&["check-config"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("no consent file"), "{text}");

    std::fs::create_dir_all(device.state_dir()).unwrap();
    std::fs::write(
        device.state_dir().join("consent.toml"),
        "[categories.hardware]\ngranted = yes\n",
    )
    .unwrap();
    let out = device.run(&["check-config"]);
    assert_eq!(out.status.code(), Some(78));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("consent.toml:2:"), "{err}");
    assert!(err.contains("nothing is collected"), "{err}");

    // The daemon's consent view, as `consent show` gives it, is empty too.
    let out = device.run_ok(&["consent", "show", "--json"]);
    let view: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(view["problem"].as_str().unwrap().contains("invalid"));
    assert!(view["categories"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["state"] == "no_valid_consent_file"));
}

#[test]
fn dry_run_runs_only_the_readers_consent_allows() {
    let device = Device::new("");
    let root = fixture_root("x86-gateway");

    // No consent file: no reader at all.
    let (doc, readers) = device.dry_run(&root);
    assert_eq!(readers, set(&[]));
    assert!(doc["consent_problem"]
        .as_str()
        .unwrap()
        .contains("no consent file"));
    assert_eq!(doc["categories"]["hardware"]["collected"], false);

    // Every required category: exactly their readers (app_events has none).
    let mut grant = vec!["consent", "grant"];
    grant.extend(REQUIRED);
    device.run_ok(&grant);
    let (doc, readers) = device.dry_run(&root);
    assert_eq!(readers, set(&["device_id", "hardware", "os", "network"]));
    assert_eq!(doc["categories"]["hardware"]["collected"], true);
    assert_eq!(doc["categories"]["software"]["collected"], false);
    assert_eq!(doc["categories"]["software"]["reason"], "not granted");
    assert_eq!(doc["device"]["derivation"], "hardware_device_secret");

    // One optional category more.
    device.run_ok(&["consent", "grant", "software"]);
    let (_, readers) = device.dry_run(&root);
    assert_eq!(
        readers,
        set(&["device_id", "hardware", "os", "network", "software"])
    );

    // A required category withdrawn: nothing runs, and the reason says why.
    device.run_ok(&["consent", "revoke", "network"]);
    let (doc, readers) = device.dry_run(&root);
    assert_eq!(readers, set(&[]));
    assert!(doc["categories"]["software"]["reason"]
        .as_str()
        .unwrap()
        .contains("required categories not granted: network"));

    // Granted again, but the operator raises the policy version: grants lapse.
    device.run_ok(&["consent", "grant", "network"]);
    let text = std::fs::read_to_string(&device.config).unwrap() + "policy_version = 2\n";
    std::fs::write(&device.config, text).unwrap();
    let (doc, readers) = device.dry_run(&root);
    assert_eq!(readers, set(&[]));
    assert!(doc["categories"]["os"]["reason"]
        .as_str()
        .unwrap()
        .contains("policy 2 needs a new grant"));
    device.run_ok(&["consent", "grant", "--all-required", "--by", "guardian"]);
    let (_, readers) = device.dry_run(&root);
    assert_eq!(readers, set(&["device_id", "hardware", "os", "network"]));
}

#[test]
fn without_device_id_no_hardware_identifier_is_read() {
    let device = Device::new("[categories.device_id]\nrequired = false\n");
    device.run_ok(&[
        "consent",
        "grant",
        "hardware",
        "os",
        "network",
        "app_events",
    ]);
    let (doc, readers) = device.dry_run(&fixture_root("rpi4-raspios64"));
    assert!(!readers.contains("device_id"), "{readers:?}");
    assert_eq!(doc["device"]["derivation"], "install_id");
}

#[test]
fn consent_show_lists_every_category_and_revoke_all_turns_everything_off() {
    let device = Device::new("");
    device.run_ok(&[
        "consent",
        "grant",
        "--all-required",
        "--by",
        "technician:ops-17",
    ]);
    let out = device.run_ok(&["consent", "show"]);
    let text = String::from_utf8_lossy(&out.stdout);
    for name in ["device_id", "hardware", "location", "app_events"] {
        assert!(text.contains(name), "{text}");
    }
    assert!(text.contains("technician:ops-17"), "{text}");
    assert!(text.contains("purpose:"), "{text}");
    device.run_ok(&["consent", "revoke", "--all"]);
    let out = device.run_ok(&["consent", "show", "--json"]);
    let view: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(view["categories"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["state"] != "active"));
    // The consent log holds the grant and the withdrawal: a table for a person ...
    let out = device.run_ok(&["consent", "show", "--history"]);
    let table = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<Vec<&str>> = table
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        lines[0],
        ["WHEN", "CATEGORY", "FROM", "TO", "BY", "POLICY"],
        "{table}"
    );
    assert!(
        lines.iter().any(|r| r[1] == "hardware"
            && r[2] == "-"
            && r[3] == "active"
            && r[4] == "technician:ops-17"),
        "{table}"
    );
    assert!(
        lines
            .iter()
            .any(|r| r[1] == "hardware" && r[2] == "active" && r[3] == "refused"),
        "{table}"
    );
    // ... and one JSON object per line with --json, the same changes.
    let out = device.run_ok(&["consent", "show", "--history", "--json"]);
    let entries: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(entries.len(), lines.len() - 1, "{entries:?}");
    assert!(entries
        .iter()
        .any(|e| e["category"] == "hardware" && e["by"] == "technician:ops-17"));
    assert!(entries
        .iter()
        .any(|e| e["category"] == "hardware" && e["state"] == "refused"));
}

#[test]
fn reset_id_unlinks_the_pseudonym() {
    let device = Device::new("");
    device.run_ok(&["consent", "grant", "--all-required"]);
    // The identity is created by the first collection that needs it.
    std::fs::create_dir_all(device.state_dir()).unwrap();
    device.run_ok(&["reset-id"]);
    let root = fixture_root("x86-gateway");
    let (first, _) = device.dry_run(&root);
    let (again, _) = device.dry_run(&root);
    assert_eq!(first["device"]["pseudonym"], again["device"]["pseudonym"]);
    device.run_ok(&["reset-id"]);
    let (after, _) = device.dry_run(&root);
    let p = after["device"]["pseudonym"].as_str().unwrap();
    assert_eq!(p.len(), 26);
    assert_ne!(first["device"]["pseudonym"], after["device"]["pseudonym"]);
}

/// The fixture's raw identifiers, in the forms they could leak in.
fn raw_identifiers(root: &str) -> Vec<String> {
    let values: &[&str] = match root {
        "x86-gateway" => &[
            "4e1b8f3a9c2d47e6b05a1f7c8d3e92b4",
            "00:0b:ab:4f:2e:11",
            "00:0b:ab:4f:2e:12",
            "AKB2348571",
            "3c9d7a51-8e2f-4b06-a1d4-5f0e6b2c9a73",
        ],
        "rpi4-raspios64" => &[
            "a3f9c1d27b8e4f6091c2d3e4f5a6b7c8",
            "dc:a6:32:5e:71:a4",
            "dc:a6:32:5e:71:a5",
            "100000003a9b6c2d",
        ],
        _ => unreachable!(),
    };
    let mut forms = Vec::new();
    for v in values {
        forms.push(v.to_lowercase());
        forms.push(v.replace([':', '-'], "").to_lowercase());
    }
    forms
}

/// Every byte a command wrote and every file in the state directory, lower-cased.
fn everything_written(device: &Device, outputs: &[Output]) -> String {
    let mut all = String::new();
    for out in outputs {
        all.push_str(&String::from_utf8_lossy(&out.stdout));
        all.push_str(&String::from_utf8_lossy(&out.stderr));
    }
    let mut stack = vec![device.dir.path().to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                all.push_str(&String::from_utf8_lossy(&std::fs::read(&path).unwrap()));
            }
        }
    }
    all.to_lowercase()
}

#[test]
fn raw_identifiers_never_appear_outside_the_preview() {
    for name in ["x86-gateway", "rpi4-raspios64"] {
        let device = Device::new("");
        let root = fixture_root(name);
        let root_arg = root.to_str().unwrap();
        let mut outputs = vec![
            device.run_ok(&["check-config"]),
            device.run_ok(&["consent", "grant", "--all-required"]),
            device.run_ok(&["consent", "grant", "network_detail", "software", "location"]),
        ];
        std::fs::create_dir_all(device.state_dir()).unwrap();
        outputs.push(device.run_ok(&["reset-id"]));
        outputs.push(device.run_ok(&["collect", "--dry-run", "--json", "--root", root_arg]));
        outputs.push(device.run_ok(&["collect", "--dry-run", "--root", root_arg]));
        outputs.push(device.run_ok(&["collect", "--root", root_arg]));
        outputs.push(device.run_ok(&["consent", "revoke", "software"]));
        outputs.push(device.run_ok(&["consent", "show", "--json"]));
        outputs.push(device.run_ok(&["consent", "show", "--history"]));
        let written = everything_written(&device, &outputs);
        // The test would be empty if collection had produced nothing.
        assert!(
            written.contains("\"pseudonym\""),
            "{name}: no pseudonym in output"
        );
        for raw in raw_identifiers(name) {
            assert!(!written.contains(&raw), "{name}: {raw} leaked");
        }
        // The preview is the one place they may be seen, and only masked.
        let preview = run_ok(assent().args(["collect", "--preview", "--json", "--root", root_arg]));
        let text = String::from_utf8_lossy(&preview.stdout).to_lowercase();
        for raw in raw_identifiers(name) {
            assert!(
                !text.contains(&raw),
                "{name}: {raw} unmasked in the preview"
            );
        }
    }
}

/// Runs a query on the device's buffer with the sqlite3 tool.
fn buffer_rows(device: &Device, query: &str) -> String {
    sqlite(&device.state_dir().join("buffer.db"), query).join("\n")
}

#[test]
fn collect_stores_active_categories_and_withdrawal_purges_them() {
    let device = Device::new("");
    let root = fixture_root("yocto-opkg");
    let root_arg = root.to_str().unwrap();

    // Without consent nothing is stored (beyond the consent records themselves).
    let out = device.run_ok(&["collect", "--root", root_arg]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("stored nothing"));
    assert_eq!(
        buffer_rows(
            &device,
            "SELECT count(*) FROM records WHERE category <> 'consent'"
        ),
        "0"
    );

    device.run_ok(&["consent", "grant", "--all-required"]);
    device.run_ok(&["consent", "grant", "software"]);
    let out = device.run_ok(&["collect", "--root", root_arg]);
    let text = String::from_utf8_lossy(&out.stdout);
    // Five categories, and the package list as an event of its own (kind `packages`).
    assert!(text.contains("stored 6 events"), "{text}");
    assert!(
        text.contains("not collected: location (not granted)"),
        "{text}"
    );
    assert_eq!(
        buffer_rows(
            &device,
            "SELECT group_concat(category, ',') FROM (SELECT category FROM records \
             WHERE category <> 'consent' ORDER BY seq)"
        ),
        "device_id,hardware,os,network,software,software"
    );
    // Consent changes are queued for the collector, as the legal basis.
    assert_ne!(
        buffer_rows(
            &device,
            "SELECT count(*) FROM records WHERE category = 'consent'"
        ),
        "0"
    );

    // Withdrawal deletes what was not sent, leaves a gap record saying so.
    let out = device.run_ok(&["consent", "revoke", "software"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("deleted 2 unsent events of software"));
    assert_eq!(
        buffer_rows(
            &device,
            "SELECT count(*) FROM records WHERE category = 'software' AND payload IS NOT NULL"
        ),
        "0"
    );
    assert_eq!(
        buffer_rows(
            &device,
            "SELECT gap_count FROM records WHERE gap_reason IS NOT NULL"
        ),
        "2"
    );

    // A hand edit withdrawing a required category: the next run purges and stores nothing.
    let consent_file = device.state_dir().join("consent.toml");
    let text = std::fs::read_to_string(&consent_file).unwrap().replace(
        "[categories.os]\ngranted = true",
        "[categories.os]\ngranted = false",
    );
    std::fs::write(&consent_file, text).unwrap();
    let out = device.run_ok(&["collect", "--root", root_arg]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("stored nothing"));
    assert_eq!(
        buffer_rows(
            &device,
            "SELECT count(*) FROM records WHERE payload IS NOT NULL \
             AND category IN ('device_id', 'hardware', 'os', 'network')"
        ),
        "0"
    );
    assert_eq!(
        buffer_rows(
            &device,
            "SELECT sum(gap_count) FROM records WHERE gap_reason IS NOT NULL"
        ),
        "6",
        "two software events, then the four required ones, are accounted for by gaps"
    );
}
