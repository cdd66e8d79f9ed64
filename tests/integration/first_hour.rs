//! What a new user meets in their first hour (issue 18), each against the real binaries:
//! a withdrawal reaches a running collector at once, errors that say what to do, output
//! a person reads.

use assent_testkit::collector::Collector;
use assent_testkit::*;
use std::process::Output;
use std::time::{Duration, Instant};

/// Long enough that nothing unrelated (a collection, the sync interval) sends anything
/// while a test waits: only a wake-up for the withdrawal itself can.
const LONG: u64 = 24 * 3600;

/// A device sending to `collector` over mutual TLS, with every interval at a day and
/// its sockets in its own directory.
fn long_interval_device(collector: &Collector) -> Device {
    let cert = collector.pki.client("device-1");
    let categories: String = [
        "device_id",
        "hardware",
        "os",
        "network",
        "network_detail",
        "location",
        "software",
    ]
    .iter()
    .map(|c| format!("[categories.{c}]\ninterval_seconds = {LONG}\n"))
    .collect();
    Device::new(&format!(
        "{categories}\
         [events]\nsocket = \"events.sock\"\n[control]\nsocket = \"control.sock\"\n\
         [collector]\nurl = \"https://localhost:{}\"\nca_file = \"{}\"\n\
         client_cert_file = \"{}\"\nclient_key_file = \"{}\"\n\
         [sync]\ninterval_seconds = {LONG}\nbackoff_base_seconds = 1\n\
         backoff_max_seconds = 2\nmetered = \"allow\"\n",
        collector.addr.port(),
        collector.pki.ca_file.display(),
        cert.cert_file.display(),
        cert.key_file.display(),
    ))
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Polls the collector's database until `query` returns a row, for at most 10 s.
fn wait_for_rows(collector: &Collector, query: &str, daemon: &Daemon) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let rows = sqlite(&collector.database, query);
        if !rows.is_empty() {
            return rows;
        }
        assert!(
            Instant::now() < deadline,
            "the collector has no row for {query:?} after 10 s; daemon log:\n{}",
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_withdrawal_reaches_the_collector_within_seconds_from_the_cli_and_the_control_socket() {
    let collector = Collector::start();
    let device = long_interval_device(&collector);
    device.run_ok(&["consent", "grant", "--all-required"]);
    device.run_ok(&["consent", "grant", "software", "location", "network_detail"]);
    let daemon = Daemon::start(&device, &[], &[]);
    daemon.wait_log("first sync of this run: sent", Duration::from_secs(30));
    // Let the first collections be stored and the uploader settle into its day-long
    // wait for more data.
    daemon.wait_log("stored ", Duration::from_secs(30));
    std::thread::sleep(Duration::from_secs(1));

    // From the command line, while the daemon runs.
    device.run_ok(&["consent", "revoke", "software"]);
    let erased = wait_for_rows(
        &collector,
        "SELECT categories FROM erasure_log WHERE categories LIKE '%software%'",
        &daemon,
    );
    assert_eq!(erased, vec!["software".to_string()]);
    wait_for_rows(
        &collector,
        "SELECT state FROM consent_records WHERE category = 'software' AND active = 0",
        &daemon,
    );

    // From the control socket, as a settings screen would.
    let out = device.run_ok(&[
        "control",
        r#"{"command":"consent-withdraw","categories":["location"]}"#,
    ]);
    assert!(stdout(&out).contains("\"ok\":true"), "{}", stdout(&out));
    wait_for_rows(
        &collector,
        "SELECT categories FROM erasure_log WHERE categories LIKE '%location%'",
        &daemon,
    );

    // A required category: everything stops, and the records of that reach the
    // collector too (under the install pseudonym, since device_id is off as well).
    let out = device.run_ok(&["consent", "revoke", "os"]);
    let text = stdout(&out);
    assert!(
        text.contains("os is required: nothing at all is collected or sent now"),
        "{text}"
    );
    assert!(
        text.contains("assent consent grant os"),
        "says how to undo: {text}"
    );
    wait_for_rows(
        &collector,
        "SELECT state FROM consent_records WHERE category = 'os' AND active = 0",
        &daemon,
    );
    wait_for_rows(
        &collector,
        "SELECT state FROM consent_records WHERE category = 'hardware' AND active = 0",
        &daemon,
    );
    assert!(stderr(&out).is_empty(), "{}", stderr(&out));

    // Every column of `consent show` has a header.
    let text = stdout(&device.run_ok(&["consent", "show"]));
    let header = text.lines().find(|l| l.starts_with("CATEGORY")).unwrap();
    assert_eq!(
        header.split_whitespace().collect::<Vec<_>>(),
        ["CATEGORY", "NEEDED", "STATE", "BY", "AT"],
        "{text}"
    );

    // `status` says in words why nothing is active and what its counts count.
    let text = stdout(&device.run_ok(&["status"]));
    assert!(
        text.contains("active categories none: a required category is not granted"),
        "{text}"
    );
    assert!(text.contains(" consent records, "), "{text}");
    assert!(text.contains(" gap records; "), "{text}");
    assert!(
        !text.lines().any(|l| l.trim_end().ends_with(" -")),
        "{text}"
    );
}

#[test]
fn check_config_finds_missing_files_and_groups_at_their_keys_and_so_does_the_runtime_error() {
    let device = Device::new(
        "[identity]\nfleet_key_file = \"fleet.key\"\n\
         [collector]\nurl = \"https://localhost:1\"\nca_file = \"nope.pem\"\n\
         token_file = \"token\"\n\
         [events]\nsocket = \"e.sock\"\nsocket_group = \"assent-no-such-group\"\n\
         [control]\nsocket = \"c.sock\"\nadmin_group = \"assent-no-such-admin\"\n",
    );
    let out = device.run(&["check-config"]);
    assert_eq!(out.status.code(), Some(78), "{}", stderr(&out));
    let err = stderr(&out);
    let path = device.config.display().to_string();
    // Device::new writes two lines before the extra config.
    for expected in [
        format!("{path}:4:18: key `identity.fleet_key_file`: "),
        format!("{path}:7:11: key `collector.ca_file`: "),
        format!("{path}:8:14: key `collector.token_file`: "),
        format!("{path}:11:16: key `events.socket_group`: no group `assent-no-such-group`"),
        format!("{path}:14:15: key `control.admin_group`: no group `assent-no-such-admin`"),
    ] {
        assert!(err.contains(&expected), "{expected:?} in:\n{err}");
    }
    assert!(err.contains("nope.pem: no such file"), "{err}");

    // The same config still serves commands that need none of those files.
    device.run_ok(&["consent", "show"]);
    // And where a file is needed, the error names its key.
    let out = device.run(&["sync", "--once"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("collector.ca_file: "),
        "{}",
        stderr(&out)
    );
}

#[test]
fn every_usage_error_exits_64_and_help_exits_0() {
    let device = Device::new("");
    for args in [
        vec!["frobnicate"],
        vec!["status", "--bogus"],
        vec!["consent", "revoke"],
        vec!["consent", "wobble"],
        vec!["sync", "--once", "--batch-events", "many"],
        vec!["collect", "--preview", "--dry-run"],
        vec!["control", r#"{"command":"nope"}"#],
    ] {
        let out = device.run(&args);
        assert_eq!(out.status.code(), Some(64), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).starts_with("assent: "),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    // A missing value at the end of the line (`device.run` appends `--config`).
    let out = assent()
        .args(["consent", "grant", "--by"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64), "{}", stderr(&out));
    assert!(stderr(&out).contains("--by"), "{}", stderr(&out));
    let out = assent().arg("--help").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).contains("Usage: assent"), "{}", stdout(&out));
    let out = assent().args(["consent", "--help"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).contains("revoke"), "{}", stdout(&out));
}

#[test]
fn without_config_the_default_file_comes_with_a_hint_and_assent_config_picks_another() {
    let device = Device::new("");
    let missing = device.dir.path().join("no-such.toml");
    // No --config: the file comes from ASSENT_CONFIG (the default path may exist on
    // the machine running the tests), and cannot be read.
    let out = assent()
        .arg("status")
        .env("ASSENT_CONFIG", &missing)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("{}: cannot read", missing.display())),
        "{err}"
    );
    assert!(err.contains("`--config PATH` picks another file"), "{err}");
    assert!(err.contains("ASSENT_CONFIG"), "{err}");

    // ASSENT_CONFIG is honoured...
    let out = assent()
        .args(["consent", "show", "--json"])
        .env("ASSENT_CONFIG", &device.config)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    // ...and --config wins over it; an explicit --config gets no hint.
    let out = assent()
        .args(["consent", "show", "--config"])
        .arg(&missing)
        .env("ASSENT_CONFIG", &device.config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    assert!(
        !stderr(&out).contains("picks another file"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn paths_above_the_config_directory_are_printed_without_dot_dot() {
    // configs/dev.toml keeps its state beside configs/, as the shipped dev config does.
    let dir = tempfile::tempdir().unwrap();
    let configs = dir.path().join("configs");
    std::fs::create_dir(&configs).unwrap();
    let config = configs.join("dev.toml");
    std::fs::write(&config, "state_dir = \"../dev-state\"\n").unwrap();
    let out = assent()
        .args(["consent", "show", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let want = std::fs::canonicalize(dir.path())
        .unwrap()
        .join("dev-state")
        .join("consent.toml");
    assert!(
        text.contains(&format!("consent file: {} ", want.display())),
        "{text}"
    );
    assert!(!text.contains(".."), "{text}");
}

#[test]
fn new_data_waits_for_the_sync_interval_and_a_sync_request_does_not() {
    let collector = Collector::start();
    let device = long_interval_device(&collector);
    device.run_ok(&["consent", "grant", "--all-required"]);
    let daemon = Daemon::start(&device, &[], &[]);
    daemon.wait_log("first sync of this run: sent", Duration::from_secs(30));
    daemon.wait_log("stored ", Duration::from_secs(30));
    std::thread::sleep(Duration::from_secs(1));
    let probe = "SELECT seq FROM events WHERE category = 'app_events' AND payload_json LIKE '%interval_probe%'";

    // Each accepted event wakes the uploader; within the day-long interval that only
    // gathers more data, whatever the number of wake-ups.
    for _ in 0..5 {
        let out = device.run_ok(&["emit", "interval_probe"]);
        assert!(stdout(&out).starts_with("ok "), "{}", stdout(&out));
        std::thread::sleep(Duration::from_millis(600));
    }
    assert!(
        sqlite(&collector.database, probe).is_empty(),
        "sent before the interval ended; daemon log:\n{}",
        daemon.log()
    );

    // A request is urgent: everything queued goes now.
    device.run_ok(&["sync"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while sqlite(&collector.database, probe).len() < 5 {
        assert!(
            Instant::now() < deadline,
            "not sent within 10 s of `assent sync`; daemon log:\n{}",
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
