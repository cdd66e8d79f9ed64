//! The shipped unit under a real systemd: a Debian 12 root (`scripts/test-root.sh`, cached
//! outside the repository) booted by `systemd-nspawn` with this build's `assent` and
//! `configs/assent.service` bound in unchanged. Every test adds a drop-in that turns the
//! system call filter's EPERM into a kill, so a denied call fails the test instead of
//! being absorbed as an error the agent tolerates.

use assent_testkit::*;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The cached root, built once per test run (about a minute the first time on a machine).
fn test_root() -> PathBuf {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let out = run_ok(&mut Command::new(workspace().join("scripts/test-root.sh")));
        PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
    })
    .clone()
}

/// A booted container, killed on drop (its overlay is thrown away with it).
struct Container {
    nspawn: Child,
    leader: u32,
    _dir: tempfile::TempDir,
}

impl Container {
    fn boot() -> Container {
        let root = test_root();
        let dir = tempfile::tempdir().unwrap();
        let console = std::fs::File::create(dir.path().join("console.log")).unwrap();
        let mut cmd = Command::new("systemd-nspawn");
        cmd.args([
            "--quiet",
            "--register=no",
            "--keep-unit",
            "--volatile=overlay",
            "--console=passive",
            "--boot",
        ])
        .arg("--directory")
        .arg(&root)
        .arg(format!(
            "--bind-ro={}:/usr/bin/assent",
            binary_path("assent").display()
        ))
        .arg(format!(
            "--bind-ro={}:/etc/systemd/system/assent.service",
            workspace().join("configs/assent.service").display()
        ))
        // Masked: the journal stays in /run, where the tests read it. Flushing it to the
        // overlay's /var can fail while several containers boot at once, leaving the
        // system "degraded" for a unit that is not the agent's.
        .arg("--bind-ro=/dev/null:/etc/systemd/system/systemd-journal-flush.service")
        .stdin(Stdio::null())
        .stdout(console.try_clone().unwrap())
        .stderr(console);
        let mut nspawn = cmd.spawn().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        let leader = loop {
            if let Some(pid) = namespace_init_below(nspawn.id()) {
                break pid;
            }
            if let Ok(Some(status)) = nspawn.try_wait() {
                panic!(
                    "systemd-nspawn exited with {status}:\n{}",
                    std::fs::read_to_string(dir.path().join("console.log")).unwrap_or_default()
                );
            }
            assert!(Instant::now() < deadline, "no container init within 30 s");
            std::thread::sleep(Duration::from_millis(20));
        };
        let container = Container {
            nspawn,
            leader,
            _dir: dir,
        };
        // `is-system-running --wait` fails while systemd is not yet listening: retry.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let out = container.sh("systemctl is-system-running --wait");
            let state = String::from_utf8_lossy(&out.stdout).trim().to_string();
            if state == "running" {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "container not running within 30 s: {state:?} {}\n{}",
                String::from_utf8_lossy(&out.stderr),
                container.sh("systemctl --failed --no-pager").stdout_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        container.write(
            "/etc/systemd/system/assent.service.d/kill-on-denied-call.conf",
            "[Service]\n# A denied system call kills the agent (SIGSYS) instead of failing with EPERM.\nSystemCallErrorNumber=kill\n",
        );
        container
    }

    /// Runs a shell script inside the container, as root, in all its namespaces.
    fn sh(&self, script: &str) -> Output {
        self.sh_with_input(script, b"")
    }

    fn sh_with_input(&self, script: &str, input: &[u8]) -> Output {
        let mut child = Command::new("nsenter")
            .arg("--target")
            .arg(self.leader.to_string())
            .args(["--all", "--", "/bin/sh", "-c", script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input).unwrap();
        child.wait_with_output().unwrap()
    }

    /// Runs a script that must succeed; returns its standard output.
    fn ok(&self, script: &str) -> String {
        let out = self.sh(script);
        assert!(
            out.status.success(),
            "{script:?} failed: {}\n{}{}",
            out.status,
            out.stdout_text(),
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout_text()
    }

    fn write(&self, path: &str, text: &str) {
        let out = self.sh_with_input(
            &format!("mkdir -p \"$(dirname {path})\" && cat > {path}"),
            text.as_bytes(),
        );
        assert!(out.status.success(), "cannot write {path}");
    }

    /// One property of a unit (`systemctl show -p NAME --value`).
    fn property(&self, unit: &str, name: &str) -> String {
        self.ok(&format!("systemctl show {unit} -p {name} --value"))
            .trim()
            .to_string()
    }

    /// The agent's journal entries: (priority, message, monotonic µs), oldest first.
    fn agent_journal(&self) -> Vec<(u8, String, u64)> {
        self.ok("journalctl --sync >/dev/null 2>&1; journalctl -u assent.service _COMM=assent -o json --no-pager")
            .lines()
            .map(|line| {
                let entry: serde_json::Value = serde_json::from_str(line).unwrap();
                let field = |name: &str| entry[name].as_str().unwrap_or_default().to_string();
                (
                    field("PRIORITY").parse().unwrap(),
                    field("MESSAGE"),
                    field("__MONOTONIC_TIMESTAMP").parse().unwrap(),
                )
            })
            .collect()
    }

    /// Waits until the agent has logged a line containing `text`; returns its priority.
    fn wait_journal(&self, text: &str) -> u8 {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let journal = self.agent_journal();
            if let Some((priority, _, _)) = journal.iter().find(|(_, m, _)| m.contains(text)) {
                return *priority;
            }
            assert!(
                Instant::now() < deadline,
                "the agent did not log {text:?}:\n{journal:#?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until `systemctl show` reports `want` for a property.
    fn wait_property(&self, unit: &str, name: &str, want: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let got = self.property(unit, name);
            if got == want {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{unit} {name} is {got:?}, not {want:?}, after {timeout:?}:\n{}",
                self.ok("systemctl status --no-pager assent.service; true")
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// No line of the system journal says a process died of SIGSYS (a denied call).
    fn assert_no_denied_call(&self) {
        let journal = self.ok("journalctl --no-pager -o cat");
        assert!(
            !journal.contains("status=31/SYS") && !journal.contains("signal=SYS"),
            "a system call was denied:\n{journal}"
        );
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        // Killing the namespace's init ends every process in it; nspawn then exits.
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.leader as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.nspawn.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.nspawn.kill();
        let _ = self.nspawn.wait();
    }
}

trait StdoutText {
    fn stdout_text(&self) -> String;
}

impl StdoutText for Output {
    fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).to_string()
    }
}

/// The descendant of `pid` that is PID 1 of its own PID namespace (the container's init).
fn namespace_init_below(pid: u32) -> Option<u32> {
    let mut queue = vec![pid];
    while let Some(p) = queue.pop() {
        let status = std::fs::read_to_string(format!("/proc/{p}/status")).unwrap_or_default();
        let nspid: Vec<&str> = status
            .lines()
            .find_map(|l| l.strip_prefix("NSpid:"))
            .map(|rest| rest.split_whitespace().collect())
            .unwrap_or_default();
        if p != pid && nspid.len() > 1 && nspid.last() == Some(&"1") {
            return Some(p);
        }
        let tasks = std::fs::read_dir(format!("/proc/{p}/task")).ok()?;
        for task in tasks.flatten() {
            let children =
                std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            queue.extend(
                children
                    .split_whitespace()
                    .filter_map(|c| c.parse::<u32>().ok()),
            );
        }
    }
    None
}

/// The config every test starts from: the defaults, info level, no collector.
const CONFIG: &str = "log_level = \"info\"\n";

/// Grants every category (so that every reader runs under the filter), then starts.
fn grant_and_start(c: &Container) {
    c.ok("systemctl daemon-reload");
    c.ok("assent consent grant --all-required && assent consent grant network_detail location software");
    c.ok("systemctl start assent.service");
}

#[test]
fn the_shipped_unit_starts_on_ready_serves_reloads_and_stops_cleanly() {
    let c = Container::boot();
    c.write("/etc/assent/assent.toml", CONFIG);
    grant_and_start(&c);

    // `systemctl start` of a Type=notify unit returns once READY=1 arrived, so the
    // control socket answers at once, without a retry.
    assert_eq!(c.property("assent.service", "ActiveState"), "active");
    let status = c.ok("assent status --json");
    assert!(status.contains("app_events"), "{status}");
    // READY came through the real notify socket with the daemon's status text.
    assert_eq!(c.property("assent.service", "Type"), "notify");
    assert!(!c.property("assent.service", "StatusText").is_empty());

    // Events through /run/assent, stored durably.
    let ok = c.ok("assent emit door_opened door=front count=3");
    assert!(ok.starts_with("ok "), "{ok}");
    let status: serde_json::Value = serde_json::from_str(&c.ok("assent status --json")).unwrap();
    assert!(status.to_string().contains("events"), "{status}");

    // Reload: a valid file is taken; an invalid one is refused, every line of the error
    // (the diagnostics follow on their own lines) at priority 3, and the daemon serves on.
    c.write("/etc/assent/assent.toml", "log_level = \"debug\"\n");
    c.ok("systemctl reload assent.service");
    assert_eq!(
        c.wait_journal("SIGHUP: configuration reloaded from /etc/assent/assent.toml"),
        6
    );
    c.write("/etc/assent/assent.toml", "log_level = \"loud\"\n");
    c.ok("systemctl reload assent.service");
    assert_eq!(
        c.wait_journal("invalid, keeping the running configuration"),
        3
    );
    assert_eq!(c.wait_journal("/etc/assent/assent.toml:1:13"), 3);
    c.ok("systemctl is-active assent.service");
    c.write("/etc/assent/assent.toml", CONFIG);
    c.ok("assent emit after_reload");
    let journal = c.agent_journal();

    // Each line at its own priority: no `<N>` prefix left in a message, and the known
    // lines where they belong.
    assert_eq!(c.wait_journal("no [collector] section"), 4);
    assert_eq!(c.wait_journal("running (state in"), 6);
    for (priority, message, _) in &journal {
        assert!(
            !message.starts_with('<') && !message.starts_with("assent: "),
            "priority {priority}: {message:?}"
        );
    }

    // Stop: SIGTERM, exit 0 within TimeoutStopSec (a timeout would say Result=timeout).
    c.ok("systemctl stop assent.service");
    assert_eq!(c.property("assent.service", "Result"), "success");
    // Result is `timeout` after a kill at TimeoutStopSec, `exit-code` or `signal` after
    // an unclean exit; systemd says "Deactivated successfully" only after exit 0.
    c.wait_journal("stopping");
    let journal = c.ok("journalctl -u assent.service --no-pager -o cat");
    assert!(
        journal.contains("assent.service: Deactivated successfully"),
        "{journal}"
    );
    assert_eq!(c.property("assent.service", "ExecMainStatus"), "0");
    assert_eq!(c.property("assent.service", "NRestarts"), "0");
    c.assert_no_denied_call();
}

#[test]
fn a_stopped_agent_is_killed_and_restarted_by_the_watchdog() {
    let c = Container::boot();
    c.write("/etc/assent/assent.toml", CONFIG);
    // The shipped 60 s and 5 s, shortened so the test takes seconds; the mechanism is the
    // unit's own.
    c.write(
        "/etc/systemd/system/assent.service.d/short-watchdog.conf",
        "[Service]\nWatchdogSec=3s\nRestartSec=1s\n",
    );
    grant_and_start(&c);
    let first = c.property("assent.service", "MainPID");
    c.ok(&format!("kill -STOP {first}"));
    c.wait_property("assent.service", "NRestarts", "1", Duration::from_secs(30));
    c.wait_property(
        "assent.service",
        "ActiveState",
        "active",
        Duration::from_secs(30),
    );
    assert_ne!(c.property("assent.service", "MainPID"), first);
    let journal = c.ok("journalctl -u assent.service --no-pager -o cat");
    assert!(
        journal.contains("Watchdog timeout") && journal.contains("Failed with result 'watchdog'"),
        "{journal}"
    );
    c.ok("assent status");
    c.assert_no_denied_call();
}

#[test]
fn configured_groups_work_for_a_non_root_member_and_a_fatal_error_is_logged_at_3() {
    let c = Container::boot();
    c.ok("groupadd assent-events && groupadd assent-admin && useradd --create-home --groups assent-events,assent-admin alice && useradd --create-home bob");
    c.write(
        "/etc/assent/assent.toml",
        "log_level = \"info\"\n[events]\nsocket_group = \"assent-events\"\n[control]\nadmin_group = \"assent-admin\"\n",
    );
    // Without the drop-in the service may not give its sockets to those groups: the
    // start fails, and says why at priority 3 (err).
    c.ok("systemctl daemon-reload");
    c.ok("assent consent grant --all-required");
    assert!(!c.sh("systemctl start assent.service").status.success());
    assert_eq!(
        c.wait_journal("/run/assent/control.sock: cannot set group"),
        3
    );
    c.ok("systemctl stop assent.service; systemctl reset-failed assent.service; true");

    // With the groups named for the service (docs/config.md), it starts.
    c.write(
        "/etc/systemd/system/assent.service.d/groups.conf",
        "[Service]\nSupplementaryGroups=assent-events assent-admin\n",
    );
    c.ok("systemctl daemon-reload && systemctl start assent.service");
    let sockets = c.ok("stat -c '%n %G %a' /run/assent/events.sock /run/assent/control.sock");
    assert!(
        sockets.contains("/run/assent/events.sock assent-events 660")
            && sockets.contains("/run/assent/control.sock assent-admin 660"),
        "{sockets}"
    );
    let ok = c.ok("runuser -u alice -- assent emit from_alice");
    assert!(ok.starts_with("ok "), "{ok}");
    let status = c.ok("runuser -u alice -- assent status");
    assert!(status.contains("queue"), "{status}");
    // Someone in neither group is refused by the sockets' permissions.
    let refused = c.sh("runuser -u bob -- assent emit from_bob");
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("permission denied"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    assert!(!c.sh("runuser -u bob -- assent status").status.success());
    c.assert_no_denied_call();
}
