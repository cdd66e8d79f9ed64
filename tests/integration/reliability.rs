//! Rows of the fault matrix in docs/reliability.md that no other suite covered: a bad
//! config on SIGHUP, and a server whose answers are hostile.

use assent_testkit::collector::{Collector, Options};
use assent_testkit::fault_proxy::{Fault, FaultProxy};
use assent_testkit::*;
use std::process::Command;
use std::time::Duration;

#[test]
fn sighup_with_a_bad_config_keeps_the_last_good_one_and_keeps_serving() {
    let device = Device::new("[control]\nsocket = \"control.sock\"\n");
    device.run_ok(&["consent", "grant", "--all-required"]);
    // A copy of the good config, for the CLI to find the control socket once the
    // daemon's own file is broken.
    let good = device.dir.path().join("good.toml");
    std::fs::copy(&device.config, &good).unwrap();
    let daemon = Daemon::start(&device, &[], &[]);
    daemon.wait_log("running", Duration::from_secs(10));

    std::fs::write(
        &device.config,
        "state_dir = \"state\"\n[sync]\ninterval_seconds = \"often\"\n",
    )
    .unwrap();
    run_ok(Command::new("kill").args(["-HUP", &daemon.child.id().to_string()]));
    daemon.wait_log(
        "invalid, keeping the running configuration",
        Duration::from_secs(10),
    );
    assert!(
        daemon.log().contains("interval_seconds"),
        "{}",
        daemon.log()
    );
    let status = assent()
        .args(["status", "--json", "--config"])
        .arg(&good)
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert!(
        status["active_categories"]
            .as_array()
            .is_some_and(|a| a.iter().any(|c| c == "hardware")),
        "{status}"
    );

    // A good config again is taken on the next SIGHUP.
    std::fs::copy(&good, &device.config).unwrap();
    run_ok(Command::new("kill").args(["-HUP", &daemon.child.id().to_string()]));
    daemon.wait_log("SIGHUP: configuration reloaded", Duration::from_secs(10));
}

#[test]
fn garbage_and_oversized_answers_from_the_server_lose_and_duplicate_nothing() {
    let token = "hostile-server-token-0123456789ab";
    let collector = Collector::start_with(Options {
        plain_http: true,
        mtls: false,
        tokens: vec![("fleet".into(), token.into())],
        ..Options::default()
    });
    // The batch is stored each time, but the agent gets garbage or a body far over its
    // response limit instead of the acknowledgement.
    let proxy = FaultProxy::start(
        &collector.pki.server_cert,
        &collector.pki.server_key,
        collector.addr,
        vec![
            Fault::GarbageAfterForward(16),
            Fault::None,
            Fault::GarbageAfterForward(1 << 20),
            Fault::None,
            Fault::GarbageAfterForward(0),
        ],
    );
    let token_file = collector.dir.path().join("device-token");
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    let device = Device::new(&format!(
        "[collector]\nurl = \"https://localhost:{}\"\nca_file = \"{}\"\ntoken_file = \"{}\"\n\
         [sync]\nbackoff_base_seconds = 1\nbackoff_max_seconds = 1\nmetered = \"allow\"\n",
        proxy.addr.port(),
        collector.pki.ca_file.display(),
        token_file.display(),
    ));
    device.run_ok(&["consent", "grant", "--all-required"]);
    let root = fixture_root("x86-gateway");
    for _ in 0..4 {
        device.run_ok(&["collect", "--root", root.to_str().unwrap()]);
    }
    let out = device.run(&["sync", "--once", "--batch-events", "4", "--attempts", "30"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("collector's answer"), "{stderr}");
    assert!(stderr.contains("larger than"), "{stderr}");
    let injected = proxy.faults_injected();
    assert!(injected.len() >= 3, "{injected:?}");
    let count = |q: &str| -> u64 { sqlite(&collector.database, q)[0].parse().unwrap() };
    assert_eq!(count("SELECT count(*) FROM events"), 16);
    assert_eq!(count("SELECT count(DISTINCT seq) FROM events"), 16);
}
