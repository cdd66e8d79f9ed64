//! `make run` as a new user meets it: `scripts/dev-run.sh` from a copy of the repository's
//! scripts and development configs, run as `nobody` (not root), then stopped the way a
//! terminal's Ctrl-C stops it: SIGINT to its whole process group.

use assent_testkit::binary_path;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The port `configs/dev-collector.toml` listens on.
const DEV_COLLECTOR: &str = "127.0.0.1:18443";

fn as_nobody(program: &Path) -> Command {
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(program);
    cmd
}

#[test]
fn make_run_works_for_a_normal_user_syncs_and_ctrl_c_exits_0() {
    assert!(
        TcpStream::connect(DEV_COLLECTOR).is_err(),
        "{DEV_COLLECTOR} is taken (a `make run` still running?); this test needs it"
    );
    let tree = tempfile::tempdir().unwrap();
    let root = tree.path();
    let workspace = assent_testkit::workspace();
    for dir in ["scripts", "configs", "target/debug"] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
    }
    for file in [
        "scripts/dev-run.sh",
        "scripts/make-certs.sh",
        "configs/dev.toml",
        "configs/dev-collector.toml",
    ] {
        std::fs::copy(workspace.join(file), root.join(file)).unwrap();
    }
    for bin in ["assent", "assent-collector"] {
        std::fs::copy(binary_path(bin), root.join("target/debug").join(bin)).unwrap();
    }
    let status = Command::new("chown")
        .args(["-R", "65534:65534"])
        .arg(root)
        .status()
        .unwrap();
    assert!(status.success());

    let log = root.join("run.log");
    let mut run = as_nobody(Path::new("bash"));
    run.arg(root.join("scripts/dev-run.sh"))
        // The binaries are already built; the script's build step has nothing to do.
        .env("CARGO", "true")
        .env("HOME", root)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(std::fs::File::create(root.join("run.err")).unwrap())
        .process_group(0);
    let mut child = run.spawn().unwrap();
    let group = Pid::from_raw(-(child.id() as i32));
    let read_log = || {
        std::fs::read_to_string(&log).unwrap_or_default()
            + &std::fs::read_to_string(root.join("run.err")).unwrap_or_default()
    };

    // The daemon answers on its control socket and the first sync reached the collector.
    let agent = root.join("target/debug/assent");
    let collector = root.join("target/debug/assent-collector");
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut synced = false;
    let mut last = String::new();
    while Instant::now() < deadline {
        if let Ok(Some(exit)) = child.try_wait() {
            panic!("make run exited early with {exit}:\n{}", read_log());
        }
        let status = as_nobody(&agent)
            .args(["status", "--json", "--config"])
            .arg(root.join("configs/dev.toml"))
            .output()
            .unwrap();
        let stats = as_nobody(&collector)
            .args(["stats", "--config"])
            .arg(root.join("configs/dev-collector.toml"))
            .output()
            .unwrap();
        let events = serde_json::from_slice::<serde_json::Value>(&stats.stdout)
            .ok()
            .and_then(|v| v["events"].as_u64())
            .unwrap_or(0);
        last = format!(
            "status: {}{}\nstats: {}{}",
            String::from_utf8_lossy(&status.stdout),
            String::from_utf8_lossy(&status.stderr),
            String::from_utf8_lossy(&stats.stdout),
            String::from_utf8_lossy(&stats.stderr)
        );
        if status.status.success() && events > 0 {
            synced = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    if !synced {
        let _ = kill(group, Signal::SIGKILL);
        panic!(
            "no status answer or no synced events within 90 s:\n{}\n{last}",
            read_log()
        );
    }
    let text = read_log();
    assert!(
        text.contains("collector up on https://localhost:18443"),
        "{text}"
    );
    assert!(text.contains("starting the agent"), "{text}");
    // The foreground log says that data flows, at the default level (info).
    let deadline = Instant::now() + Duration::from_secs(30);
    while !read_log().contains("first sync of this run: sent") {
        assert!(
            Instant::now() < deadline,
            "no first sync in the log:\n{}",
            read_log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    kill(group, Signal::SIGINT).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        if Instant::now() > deadline {
            let _ = kill(group, Signal::SIGKILL);
            panic!(
                "make run did not stop within 30 s of Ctrl-C:\n{}",
                read_log()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        exit.success(),
        "Ctrl-C is a clean stop: {exit}\n{}",
        read_log()
    );
    assert!(read_log().contains("make run: stopped"), "{}", read_log());
    // The collector started alongside is gone too.
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(DEV_COLLECTOR).is_ok() {
        assert!(Instant::now() < deadline, "the collector outlived make run");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Every target the Makefile declares phony is listed by `make help`, so a new target
/// cannot be added without telling newcomers it exists.
#[test]
fn make_help_lists_every_phony_target() {
    let workspace = assent_testkit::workspace();
    let makefile = std::fs::read_to_string(workspace.join("Makefile")).unwrap();
    // `.PHONY:` lines, with their backslash continuations.
    let mut targets = Vec::new();
    let mut continued = false;
    for line in makefile.lines() {
        let rest = if let Some(rest) = line.strip_prefix(".PHONY:") {
            rest
        } else if continued {
            line
        } else {
            continue;
        };
        continued = rest.trim_end().ends_with('\\');
        targets.extend(
            rest.split_whitespace()
                .filter(|t| *t != "\\")
                .map(str::to_owned),
        );
    }
    assert!(targets.len() > 20, "parsed too few targets: {targets:?}");
    let help = Command::new("make")
        .args(["-s", "--no-print-directory", "help"])
        .current_dir(&workspace)
        .output()
        .unwrap();
    assert!(help.status.success());
    let help = String::from_utf8(help.stdout).unwrap();
    let words: Vec<&str> = help
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .collect();
    let missing: Vec<&String> = targets
        .iter()
        .filter(|t| !words.contains(&t.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "`make help` does not list {missing:?}:\n{help}"
    );
}
