//! The ModemManager reader against a real `dbus-daemon` (a private system bus with its
//! own config) and a fake ModemManager on it (`fixtures/dbus/fake_modemmanager.py`,
//! dbus-python), well behaved and misbehaving.

// Test helpers outside `#[test]` functions fail loudly too.
#![allow(clippy::unwrap_used, clippy::panic)]

use assent_platform::cellular::{
    self, CellularOptions, Modem, ModemCell, OperatorCode, RadioSignal, ServingCell,
};
use assent_platform::{network_detail, Field, Root};
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dbus/fake_modemmanager.py");
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

    fn options(&self) -> CellularOptions {
        CellularOptions {
            bus_path: Some(self.socket.to_str().unwrap().to_string()),
            timeout: Duration::from_millis(800),
            cell_ids: true,
        }
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

fn calls(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

fn expected_modem() -> Modem {
    Modem {
        id: "3".into(),
        interface: Field::Present("wwan0".into()),
        operator_name: Field::Present("Swisscom".into()),
        operator_code: Field::Present(OperatorCode {
            mcc: "228".into(),
            mnc: "01".into(),
        }),
        access_technologies: Field::Present(vec!["lte".into()]),
        registration: Field::Present("roaming".into()),
        signal_quality_percent: Field::Present(71),
    }
}

fn expected_cell(tac: Option<&str>) -> ModemCell {
    ModemCell {
        id: "3".into(),
        serving_cell: Field::Present(ServingCell {
            mcc: "228".into(),
            mnc: "01".into(),
            lac: None,
            cell_id: "1A2B3C4".into(),
            tac: tac.map(str::to_string),
        }),
        lte: Field::Present(RadioSignal {
            rssi_dbm: Some(-65),
            rsrp_dbm: Some(-95),
            rsrq_db: Some(-11),
            snr_db: Some(12),
        }),
        nr5g: Field::Absent,
    }
}

#[test]
fn a_modem_gives_exactly_the_fakes_values_and_no_identifiers() {
    let bus = Bus::start();
    let (_mm, log) = bus.fake_modemmanager("normal");
    let live = Root::live();
    let modems = cellular::read_modems(&live, &bus.options());
    assert_eq!(modems, Field::Present(vec![expected_modem()]));
    let cells = cellular::read_cells(&live, &bus.options());
    assert_eq!(cells, Field::Present(vec![expected_cell(Some("4D2"))]));
    let json = format!(
        "{}{}",
        serde_json::to_string(&modems).unwrap(),
        serde_json::to_string(&cells).unwrap()
    );
    for secret in [
        "356938035643809",
        "a1b2c3d4e5f6",
        "+41791234567",
        "SIM",
        "Quectel",
        "46.2",
    ] {
        assert!(!json.contains(secret), "{secret} leaked: {json}");
    }
    assert_eq!(
        calls(&log),
        ["GetManagedObjects", "GetManagedObjects", "GetLocation"]
    );
}

#[test]
fn the_four_field_location_form_has_no_tac() {
    let bus = Bus::start();
    let (_mm, _log) = bus.fake_modemmanager("four-field");
    let cells = cellular::read_cells(&Root::live(), &bus.options());
    assert_eq!(cells, Field::Present(vec![expected_cell(None)]));
}

#[test]
fn with_cell_ids_off_the_location_is_never_read() {
    let bus = Bus::start();
    let (_mm, log) = bus.fake_modemmanager("normal");
    let options = CellularOptions {
        cell_ids: false,
        ..bus.options()
    };
    let cells = cellular::read_cells(&Root::live(), &options);
    let mut expected = expected_cell(None);
    expected.serving_cell = Field::Absent;
    assert_eq!(cells, Field::Present(vec![expected]));
    assert_eq!(calls(&log), ["GetManagedObjects"]);
}

#[test]
fn a_refused_location_read_is_denied() {
    let bus = Bus::start();
    let (_mm, _log) = bus.fake_modemmanager("denied");
    let Field::Present(cells) = cellular::read_cells(&Root::live(), &bus.options()) else {
        panic!("modems missing")
    };
    assert_eq!(cells[0].serving_cell, Field::Denied);
    assert!(cells[0].lte.is_present());
}

#[test]
fn no_modem_no_modemmanager_and_no_bus_are_absent() {
    let bus = Bus::start();
    let live = Root::live();
    // Nothing owns the name; NO_AUTO_START means the bus does not try to start it.
    assert_eq!(cellular::read_modems(&live, &bus.options()), Field::Absent);
    assert_eq!(cellular::read_cells(&live, &bus.options()), Field::Absent);
    let (_mm, _log) = bus.fake_modemmanager("no-modem");
    assert_eq!(cellular::read_modems(&live, &bus.options()), Field::Absent);
    let nowhere = CellularOptions {
        bus_path: Some("/nonexistent/system_bus_socket".into()),
        ..bus.options()
    };
    assert_eq!(cellular::read_modems(&live, &nowhere), Field::Absent);
    // A fixture root never touches the bus.
    let fixture = Root::at(Path::new(env!("CARGO_MANIFEST_DIR")));
    assert_eq!(
        cellular::read_modems(&fixture, &bus.options()),
        Field::Absent
    );
}

fn malformed_within_the_deadline(mode: &str, reason: &str) {
    let bus = Bus::start();
    let (_mm, _log) = bus.fake_modemmanager(mode);
    let started = Instant::now();
    let modems = cellular::read_modems(&Root::live(), &bus.options());
    let elapsed = started.elapsed();
    match &modems {
        Field::Malformed(r) => assert!(r.contains(reason), "{mode}: {r}"),
        other => panic!("{mode}: expected malformed, got {other:?}"),
    }
    // The deadline is 800 ms; the slow fake sleeps 5 s.
    assert!(elapsed < Duration::from_secs(3), "{mode} took {elapsed:?}");
    let detail = network_detail::read(&Root::live(), false, &bus.options());
    assert!(
        matches!(detail.modems, Field::Malformed(_)),
        "{mode}: {:?}",
        detail.modems
    );
}

#[test]
fn a_slow_modemmanager_times_out() {
    malformed_within_the_deadline("slow", "did not answer in time");
}

#[test]
fn a_reply_of_the_wrong_signature_is_malformed() {
    malformed_within_the_deadline("wrong-signature", "reply signature \"a{sv}\"");
}

#[test]
fn a_huge_reply_is_refused_unread() {
    malformed_within_the_deadline("huge", "size limit");
}

#[test]
fn deep_nesting_is_refused() {
    malformed_within_the_deadline("deep", "nested too deeply");
}
