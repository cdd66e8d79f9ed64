//! A private system bus (`dbus-daemon` with its own config, no systemd) and the fake
//! ModemManager (`platform/tests/fixtures/dbus/fake_modemmanager.py`) on it; shared by
//! the platform tests and the integration tests.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A private system bus; the daemon is killed on drop.
#[derive(Debug)]
pub struct Bus {
    daemon: Child,
    pub socket: PathBuf,
    dir: tempfile::TempDir,
}

impl Bus {
    pub fn start() -> Bus {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("system_bus_socket");
        let config = dir.path().join("bus.conf");
        std::fs::write(
            &config,
            format!(
                "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\"
 \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">
<busconfig>
  <type>system</type>
  <listen>unix:path={}</listen>
  <auth>EXTERNAL</auth>
  <policy context=\"default\">
    <allow send_destination=\"*\" eavesdrop=\"true\"/>
    <allow eavesdrop=\"true\"/>
    <allow own=\"*\"/>
  </policy>
</busconfig>
",
                socket.display()
            ),
        )
        .unwrap();
        let daemon = Command::new("dbus-daemon")
            .arg(format!("--config-file={}", config.display()))
            .args(["--nofork", "--print-address=1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn();
        let mut daemon = match daemon {
            Ok(d) => d,
            Err(e) => panic!("cannot start dbus-daemon (apt-get install dbus): {e}"),
        };
        let mut line = String::new();
        BufReader::new(daemon.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(line.starts_with("unix:path="), "dbus-daemon said {line:?}");
        Bus {
            daemon,
            socket,
            dir,
        }
    }

    pub fn address(&self) -> String {
        format!("unix:path={}", self.socket.display())
    }

    /// Starts the fake ModemManager in `mode`; returns it and its call log.
    pub fn fake_modemmanager(&self, mode: &str) -> (FakeMm, PathBuf) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../platform/tests/fixtures/dbus/fake_modemmanager.py");
        let log = self.dir.path().join(format!("calls-{mode}.log"));
        let child = Command::new("/usr/bin/python3")
            .arg(&script)
            .args([mode, log.to_str().unwrap()])
            .env("DBUS_SYSTEM_BUS_ADDRESS", self.address())
            .stdout(Stdio::piped())
            .process_group(0)
            .spawn();
        let mut child = match child {
            Ok(c) => c,
            Err(e) => panic!(
                "cannot start the fake ModemManager (apt-get install python3-dbus python3-gi): {e}"
            ),
        };
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line, "ready\n", "the fake ModemManager did not start");
        (FakeMm(child), log)
    }
}

impl Drop for Bus {
    fn drop(&mut self) {
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
    }
}

#[derive(Debug)]
pub struct FakeMm(Child);

impl Drop for FakeMm {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn calls(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}
