//! The daemon (`assent run`) as a real process: systemd notification, and sync driven by
//! connectivity in a network namespace.

use crate::collector_support::{Collector, Options};
use crate::consent::Device;
use crate::util::*;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `assent run`, killed on drop.
pub struct Daemon {
    pub child: Child,
    pub log: PathBuf,
}

impl Daemon {
    pub fn start(device: &Device, wrap: &[&str], env: &[(&str, &str)]) -> Daemon {
        let log = device.dir.path().join("daemon.log");
        let file = std::fs::File::create(&log).unwrap();
        let mut cmd = if wrap.is_empty() {
            assent()
        } else {
            let mut c = Command::new(wrap[0]);
            c.args(&wrap[1..]).arg(binary_path("assent"));
            c
        };
        cmd.args(["run", "--config"])
            .arg(&device.config)
            .env("ASSENT_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file);
        for (k, v) in env {
            cmd.env(k, v);
        }
        Daemon {
            child: cmd.spawn().unwrap(),
            log,
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the log contains `text`.
    pub fn wait_log(&self, text: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while !self.log().contains(text) {
            assert!(
                Instant::now() < deadline,
                "daemon did not log {text:?} within {timeout:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs a command that must succeed.
fn sh(args: &[&str]) {
    run_ok(Command::new(args[0]).args(&args[1..]));
}

#[test]
fn the_daemon_notifies_systemd_ready_and_watchdog() {
    let device = Device::new("");
    let socket_path = device.dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let _daemon = Daemon::start(
        &device,
        &[],
        &[
            ("NOTIFY_SOCKET", socket_path.to_str().unwrap()),
            ("WATCHDOG_USEC", "200000"),
        ],
    );
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !(seen.iter().any(|m: &String| m.contains("READY=1"))
        && seen.iter().any(|m| m.contains("WATCHDOG=1")))
    {
        assert!(Instant::now() < deadline, "notifications so far: {seen:?}");
        let mut buf = [0u8; 1024];
        let n = socket.recv(&mut buf).unwrap();
        seen.push(String::from_utf8_lossy(&buf[..n]).to_string());
    }
    assert!(seen.iter().any(|m| m.contains("STATUS=")), "{seen:?}");
}

/// A network namespace joined to the host by a veth pair, removed on drop.
struct Netns {
    name: String,
    host_ip: String,
}

impl Netns {
    fn new(tag: &str) -> Netns {
        let n = std::process::id() % 200 + 20;
        let name = format!("assent-{tag}-{}", std::process::id());
        let (host_if, ns_if) = (format!("ah{n}{tag}"), format!("an{n}{tag}"));
        let (host_ip, ns_ip) = (format!("10.{n}.7.1"), format!("10.{n}.7.2"));
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        let _ = Command::new("ip").args(["link", "del", &host_if]).output();
        sh(&["ip", "netns", "add", &name]);
        sh(&[
            "ip", "link", "add", &host_if, "type", "veth", "peer", "name", &ns_if,
        ]);
        sh(&["ip", "link", "set", &ns_if, "netns", &name]);
        sh(&[
            "ip",
            "addr",
            "add",
            &format!("{host_ip}/24"),
            "dev",
            &host_if,
        ]);
        sh(&["ip", "link", "set", &host_if, "up"]);
        let ns = Netns { name, host_ip };
        ns.exec(&["ip", "addr", "add", &format!("{ns_ip}/24"), "dev", &ns_if]);
        ns.exec(&["ip", "link", "set", "lo", "up"]);
        ns
    }

    fn exec(&self, args: &[&str]) {
        let mut full = vec!["ip", "netns", "exec", &self.name];
        full.extend_from_slice(args);
        sh(&full);
    }

    fn ns_if(&self) -> String {
        let out = Command::new("ip")
            .args([
                "netns", "exec", &self.name, "ip", "-o", "link", "show", "type", "veth",
            ])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        text.split(": ")
            .nth(1)
            .unwrap()
            .split('@')
            .next()
            .unwrap()
            .to_string()
    }

    fn link(&self, up: bool) {
        let ns_if = self.ns_if();
        self.exec(&["ip", "link", "set", &ns_if, if up { "up" } else { "down" }]);
        if up {
            self.exec(&["ip", "route", "replace", "default", "via", &self.host_ip]);
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

fn collector_events(database: &Path) -> u64 {
    let out = run_ok(
        Command::new("sqlite3")
            .arg(database)
            .arg("SELECT count(*) FROM events"),
    );
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

#[test]
fn link_down_means_no_attempts_and_link_up_means_sync_within_seconds() {
    let ns = Netns::new("sy");
    let collector = Collector::start_with(Options {
        listen: format!("{}:0", ns.host_ip),
        server_names: vec!["localhost".into(), ns.host_ip.clone()],
        ..Options::default()
    });
    let cert = collector.pki.client("device-1");
    let device = Device::new(&format!(
        "[collector]\nurl = \"https://{}:{}\"\nca_file = \"{}\"\nclient_cert_file = \"{}\"\n\
         client_key_file = \"{}\"\n[sync]\nbackoff_base_seconds = 1\nbackoff_max_seconds = 2\n\
         metered = \"allow\"\n",
        ns.host_ip,
        collector.addr.port(),
        collector.pki.ca_file.display(),
        cert.cert_file.display(),
        cert.key_file.display(),
    ));
    device.run_ok(&["consent", "grant", "--all-required"]);

    // Link down: the daemon collects, stores, and makes no attempt to send.
    ns.link(false);
    let netns_exec = ["ip", "netns", "exec", ns.name.as_str()];
    let daemon = Daemon::start(&device, &netns_exec, &[]);
    daemon.wait_log(
        "offline (no interface up with a default route)",
        Duration::from_secs(10),
    );
    daemon.wait_log("stored ", Duration::from_secs(10));
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(collector_events(&collector.database), 0);
    // The uploader was woken by the new data and held back; it never tried (a try
    // would log its failure as `sync: ...`).
    daemon.wait_log("offline: not syncing", Duration::from_secs(1));
    assert!(!daemon.log().contains("sync:"), "{}", daemon.log());

    // Link up: connectivity returns and the queue arrives within seconds.
    let up = Instant::now();
    ns.link(true);
    let deadline = up + Duration::from_secs(10);
    while collector_events(&collector.database) < 4 {
        assert!(
            Instant::now() < deadline,
            "nothing synced 10 s after the link came up:\n{}",
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    daemon.wait_log("connectivity: online via", Duration::from_secs(1));
}
