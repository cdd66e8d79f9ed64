//! The systemd unit: `systemd-analyze verify` is clean and the security exposure stays
//! at "OK" (2.0 or less).

use assent_testkit::*;
use std::process::Command;

fn unit_for_this_build(dir: &std::path::Path) -> std::path::PathBuf {
    let text = std::fs::read_to_string(workspace().join("configs/assent.service")).unwrap();
    // verify checks that ExecStart exists: point it at the binary under test.
    let text = text.replace("/usr/bin/assent", binary_path("assent").to_str().unwrap());
    let path = dir.join("assent.service");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn the_unit_verifies_cleanly_and_exposes_little() {
    let dir = tempfile::tempdir().unwrap();
    let unit = unit_for_this_build(dir.path());
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&unit)
        .output()
        .unwrap();
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "systemd-analyze verify: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run_ok(
        Command::new("systemd-analyze")
            .args(["security", "--offline=true", "--no-pager"])
            .arg(&unit),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or_else(|| panic!("no exposure line:\n{text}"));
    let score: f64 = line
        .split(": ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("cannot read the score from {line:?}"));
    assert!(score <= 2.0, "exposure {score} above 2.0:\n{text}");
    for directive in [
        "Type=notify",
        "WatchdogSec=",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK",
        "SystemCallFilter=@system-service",
        "CapabilityBoundingSet=\n",
    ] {
        let unit_text = std::fs::read_to_string(&unit).unwrap();
        assert!(unit_text.contains(directive), "unit lacks {directive:?}");
    }
}
