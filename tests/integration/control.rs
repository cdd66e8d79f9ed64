//! The control socket as a device's own settings screen uses it: a non-root user in the
//! admin group sees each category's purpose and state, grants and withdraws, and the
//! consent log records that user; a user outside the group is refused, by the socket
//! file's mode and, where the mode lets it connect, by the daemon's peer policy. Creates real
//! users and a group (`useradd`, `groupadd`; the tests run as root).

use assent_testkit::*;
use serde_json::Value;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const ADMIN_GROUP: &str = "assent-test-admin";
const KIOSK_USER: &str = "assent-test-kiosk";
const OTHER_USER: &str = "assent-test-other";

/// A system user, created if missing; with `group` as a supplementary group.
fn ensure_user(name: &str, group: Option<&str>) {
    let exists = Command::new("id")
        .arg(name)
        .output()
        .unwrap()
        .status
        .success();
    if !exists {
        run_ok(Command::new("useradd").args([
            "--system",
            "--no-create-home",
            "--shell",
            "/usr/sbin/nologin",
            name,
        ]));
    }
    if let Some(group) = group {
        run_ok(Command::new("usermod").args(["--append", "--groups", group, name]));
    }
}

/// `assent ARGS` as `user`, through `runuser` (which sets the user's groups from
/// /etc/group, as a login would).
fn assent_as(user: &str, device: &Device, args: &[&str]) -> Output {
    let mut cmd = Command::new("runuser");
    cmd.args(["-u", user, "--"]);
    if let Ok(runner) = std::env::var("ASSENT_TEST_RUNNER") {
        cmd.args(runner.split_whitespace());
    }
    cmd.arg(binary_path("assent"))
        .args(args)
        .arg("--config")
        .arg(&device.config);
    cmd.output().unwrap()
}

fn control_as(user: &str, device: &Device, request: &str) -> Output {
    assent_as(user, device, &["control", request])
}

fn answer(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn category<'a>(answer: &'a Value, name: &str) -> &'a Value {
    answer["consent"]["categories"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["category"] == name)
        .unwrap_or_else(|| panic!("no {name} in {answer}"))
}

fn consent_log(device: &Device) -> Vec<Value> {
    std::fs::read_to_string(device.state_dir().join("consent.log"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn an_admin_group_user_grants_and_withdraws_over_the_control_socket_and_others_are_refused() {
    run_ok(Command::new("groupadd").args(["--force", ADMIN_GROUP]));
    ensure_user(KIOSK_USER, Some(ADMIN_GROUP));
    ensure_user(OTHER_USER, None);
    let device = Device::new(&format!(
        "[events]\nsocket = \"events.sock\"\n[control]\nsocket = \"control.sock\"\n\
         admin_group = \"{ADMIN_GROUP}\"\n"
    ));
    // The settings screen must reach the socket's directory and read the config.
    std::fs::set_permissions(device.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&device.config, std::fs::Permissions::from_mode(0o644)).unwrap();
    let daemon = Daemon::start(&device, &[], &[]);
    daemon.wait_log("running", Duration::from_secs(10));

    let socket = device.dir.path().join("control.sock");
    let meta = std::fs::symlink_metadata(&socket).unwrap();
    let admin_gid =
        String::from_utf8(run_ok(Command::new("getent").args(["group", ADMIN_GROUP])).stdout)
            .unwrap()
            .split(':')
            .nth(2)
            .unwrap()
            .parse::<u32>()
            .unwrap();
    assert_eq!(meta.mode() & 0o7777, 0o660);
    assert_eq!(meta.gid(), admin_gid);

    // Shown with purposes; nothing active without a consent file.
    let shown = answer(&control_as(
        KIOSK_USER,
        &device,
        r#"{"command":"consent-show"}"#,
    ));
    let hardware = category(&shown, "hardware");
    assert!(!hardware["purpose"].as_str().unwrap().is_empty(), "{shown}");
    assert_eq!(hardware["active"], false, "{shown}");
    let required: Vec<String> = shown["consent"]["categories"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["required"] == true)
        .map(|c| c["category"].as_str().unwrap().to_string())
        .collect();
    assert!(!required.is_empty(), "{shown}");

    // Granted by the kiosk user: active at once, recorded as made by that user.
    let grant = serde_json::json!({"command": "consent-grant", "categories": required});
    let granted = answer(&control_as(KIOSK_USER, &device, &grant.to_string()));
    for name in &required {
        assert_eq!(category(&granted, name)["active"], true, "{granted}");
    }
    let uid = String::from_utf8(run_ok(Command::new("id").args(["-u", KIOSK_USER])).stdout)
        .unwrap()
        .trim()
        .to_string();
    let by = format!("{KIOSK_USER} (uid {uid}) via the control socket");
    assert_eq!(category(&granted, &required[0])["by"], by.as_str());
    let log = consent_log(&device);
    assert!(
        log.iter().any(|e| e["category"] == required[0].as_str()
            && e["state"] == "active"
            && e["by"] == by.as_str()),
        "{log:?}"
    );
    // The same effect as `assent consent grant`: the consent file says so too.
    let view: Value =
        serde_json::from_slice(&device.run_ok(&["consent", "show", "--json"]).stdout).unwrap();
    let file_hardware = view["categories"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["category"] == required[0].as_str())
        .unwrap();
    assert_eq!(file_hardware["state"], "active", "{view}");
    assert_eq!(file_hardware["by"], by.as_str(), "{view}");

    // A user outside the admin group cannot use the socket, and changes nothing.
    let consent_file = device.state_dir().join("consent.toml");
    let log_before = std::fs::read(device.state_dir().join("consent.log")).unwrap();
    let file_before = std::fs::read(&consent_file).unwrap();
    let withdraw = serde_json::json!({"command": "consent-withdraw", "categories": [required[0]]});
    let refused = control_as(OTHER_USER, &device, &withdraw.to_string());
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("Permission denied"), "{stderr}");
    assert!(
        stderr.contains("for root and members of the admin group"),
        "{stderr}"
    );
    assert!(!stderr.contains("is `assent run` running"), "{stderr}");
    assert_eq!(
        std::fs::read(device.state_dir().join("consent.log")).unwrap(),
        log_before
    );
    // The events socket (0660, the agent's group) refuses the same user with what is
    // needed, not with a hint that the agent is down.
    let emitted = assent_as(OTHER_USER, &device, &["emit", "from_other"]);
    assert!(!emitted.status.success());
    let stderr = String::from_utf8_lossy(&emitted.stderr);
    assert!(stderr.contains("permission denied"), "{stderr}");
    assert!(
        stderr.contains("members of events.socket_group"),
        "{stderr}"
    );
    assert!(!stderr.contains("is the agent running"), "{stderr}");

    // With the file mode opened to everyone (a misconfigured path or an ACL), the same
    // user connects, and the daemon's peer policy refuses it with the documented answer.
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    let other_uid = String::from_utf8(run_ok(Command::new("id").args(["-u", OTHER_USER])).stdout)
        .unwrap()
        .trim()
        .parse::<u32>()
        .unwrap();
    let refused = control_as(OTHER_USER, &device, &withdraw.to_string());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(75), "{stderr}");
    assert!(
        stderr.contains(&format!("uid {other_uid} may not use the control socket")),
        "{stderr}"
    );
    assert!(!stderr.contains("Permission denied"), "{stderr}");
    daemon.wait_log(
        &format!("control socket: refused uid {other_uid} (pid "),
        Duration::from_secs(5),
    );
    // The answer comes after any change would have been made: nothing was.
    assert_eq!(
        std::fs::read(device.state_dir().join("consent.log")).unwrap(),
        log_before
    );
    assert_eq!(std::fs::read(&consent_file).unwrap(), file_before);
    let still: Value =
        serde_json::from_slice(&device.run_ok(&["consent", "show", "--json"]).stdout).unwrap();
    assert!(
        still["categories"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["category"] == required[0].as_str() && c["state"] == "active"),
        "{still}"
    );
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o660)).unwrap();

    // Withdrawn by the kiosk user: nothing is active (a required category is gone),
    // and the log says who.
    let withdrawn = answer(&control_as(KIOSK_USER, &device, &withdraw.to_string()));
    assert_eq!(
        category(&withdrawn, &required[0])["state"],
        "refused",
        "{withdrawn}"
    );
    assert!(withdrawn["consent"]["categories"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["active"] == false));
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let log = consent_log(&device);
        if log.iter().any(|e| {
            e["category"] == required[0].as_str()
                && e["state"] == "refused"
                && e["by"] == by.as_str()
        }) {
            break;
        }
        assert!(Instant::now() < deadline, "{log:?}");
        std::thread::sleep(Duration::from_millis(50));
    }

    // A bad request is answered with the reason, not acted on.
    let bad = control_as(
        KIOSK_USER,
        &device,
        r#"{"command":"consent-grant","categories":["nope"]}"#,
    );
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("bad request"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
}
