//! Cellular facts through the real binary: `collect --preview` against a private system
//! bus with the fake ModemManager on it (found through `DBUS_SYSTEM_BUS_ADDRESS`), and
//! consent: with `network_detail` refused, the modem's location is never read.

use assent_testkit::bus::{calls, Bus};
use assent_testkit::*;
use serde_json::{json, Value};
use std::process::Output;

fn run(bus: Option<&Bus>, args: &[&str]) -> Output {
    let mut cmd = assent();
    cmd.args(args).env("ASSENT_LOG", "debug");
    match bus {
        Some(bus) => cmd.env("DBUS_SYSTEM_BUS_ADDRESS", bus.address()),
        None => cmd.env("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/nonexistent/bus"),
    };
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "assent {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn preview(bus: Option<&Bus>, extra: &[&str]) -> Value {
    let mut args = vec![
        "collect",
        "--preview",
        "--json",
        "--category",
        "network",
        "--category",
        "network_detail",
    ];
    args.extend(extra);
    serde_json::from_slice(&run(bus, &args).stdout).unwrap()
}

#[test]
fn preview_shows_exactly_the_modems_values() {
    let bus = Bus::start();
    let (_mm, log) = bus.fake_modemmanager("normal");
    let doc = preview(Some(&bus), &[]);
    assert_eq!(
        doc["network"]["modems"],
        json!({"present": [{
            "id": "3",
            "interface": {"present": "wwan0"},
            "operator_name": {"present": "Swisscom"},
            "mcc": {"present": "228"},
            "mnc": {"present": "01"},
            "access_technologies": {"present": ["lte"]},
            "registration": {"present": "roaming"},
            "signal_quality_percent": {"present": 71},
        }]})
    );
    assert_eq!(
        doc["network_detail"]["modems"],
        json!({"present": [{
            "id": "3",
            "serving_cell": {"present": {
                "mcc": "228", "mnc": "01", "lac": null, "cell_id": "1A2B3C4", "tac": "4D2"
            }},
            "lte": {"present": {"rssi_dbm": -65, "rsrp_dbm": -95, "rsrq_db": -11, "snr_db": 12}},
            "nr5g": "absent",
        }]})
    );
    let text = doc.to_string();
    for secret in ["356938035643809", "a1b2c3d4e5f6", "+41791234567", "SIM/0"] {
        assert!(!text.contains(secret), "{secret} in the preview: {text}");
    }
    assert_eq!(
        calls(&log),
        ["GetManagedObjects", "GetManagedObjects", "GetLocation"]
    );
}

#[test]
fn without_modemmanager_or_bus_the_preview_says_absent() {
    let bus = Bus::start();
    let doc = preview(Some(&bus), &[]);
    assert_eq!(doc["network"]["modems"], "absent");
    assert_eq!(doc["network_detail"]["modems"], "absent");
    let doc = preview(None, &[]);
    assert_eq!(doc["network"]["modems"], "absent");
    let human = run(None, &["collect", "--preview", "--category", "network"]);
    let human = String::from_utf8_lossy(&human.stdout);
    assert!(
        human
            .lines()
            .any(|l| l.split_whitespace().eq(["modems", "(absent)"])),
        "{human}"
    );
}

#[test]
fn the_operator_can_turn_cell_ids_and_the_wifi_list_off() {
    let bus = Bus::start();
    let (_mm, log) = bus.fake_modemmanager("normal");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("assent.toml");
    std::fs::write(
        &config,
        "state_dir = \"state\"\n[network_detail]\nwifi_list = false\ncell_ids = false\n",
    )
    .unwrap();
    let doc = preview(Some(&bus), &["--config", config.to_str().unwrap()]);
    assert_eq!(
        doc["network_detail"]["modems"]["present"][0]["serving_cell"],
        "absent"
    );
    assert_eq!(doc["network_detail"]["access_points"], "absent");
    assert_eq!(calls(&log), ["GetManagedObjects", "GetManagedObjects"]);
}

/// Counts the D-Bus location reads (in the fake's call log) and the scan dumps (the
/// reader's debug line) of one `collect --dry-run` under the consent given.
fn dry_run_counts(grant_detail: bool) -> (usize, usize, usize) {
    let bus = Bus::start();
    let (_mm, log) = bus.fake_modemmanager("normal");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("assent.toml");
    std::fs::write(&config, "state_dir = \"state\"\n").unwrap();
    let config = config.to_str().unwrap();
    let mut grant = vec!["consent", "grant", "--all-required", "--config", config];
    if grant_detail {
        grant.push("network_detail");
    }
    run(Some(&bus), &grant);
    let out = run(
        Some(&bus),
        &["collect", "--dry-run", "--json", "--config", config],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let calls = calls(&log);
    let count = |name: &str| calls.iter().filter(|c| *c == name).count();
    (
        count("GetManagedObjects"),
        count("GetLocation"),
        stderr.matches("nl80211 scan dump").count(),
    )
}

#[test]
fn with_network_detail_refused_no_location_read_and_no_scan_dump() {
    let (managed, location, scans) = dry_run_counts(false);
    assert_eq!((managed, location, scans), (1, 0, 0), "network only");
    // The same run with the grant reads the location: the count above can fail.
    let (managed, location, _) = dry_run_counts(true);
    assert_eq!((managed, location), (2, 1));
}
