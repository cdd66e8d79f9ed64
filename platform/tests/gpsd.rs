//! The gpsd client against a real gpsd (fed by `gpsfake` from a committed NMEA log) and
//! against small fake servers that misbehave.

// Test helpers outside `#[test]` functions fail loudly too.
#![allow(clippy::unwrap_used, clippy::panic)]

use assent_platform::location::{self, FixMode, GpsdOptions, GpsdState, Location};
use assent_platform::{Field, Root};
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// The position written in `fixtures/gps/fix.nmea`: 4612.3000 N, 00608.4000 E.
const LATITUDE: f64 = 46.205;
const LONGITUDE: f64 = 6.14;

/// A free loopback port: bind to port 0, note the port, release it.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Runs gpsfake (and the gpsd it starts) in its own process group, killed on drop so a
/// failing assertion never leaves a daemon behind.
struct GpsFake {
    child: Child,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl GpsFake {
    fn start(port: u16) -> GpsFake {
        let nmea = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gps/fix.nmea");
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("gpsfake.log");
        let stderr = std::fs::File::create(&log).unwrap();
        // -n: gpsd reads the device at once; -c: a short pause between sentences so a
        // fix arrives within a second; no -1, so the log repeats until killed.
        let child = Command::new("gpsfake")
            .args(["-q", "-n", "-c", "0.05", "-P", &port.to_string()])
            .arg(&nmea)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .process_group(0)
            .spawn();
        let child = match child {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
                "gpsfake is not installed: install the gpsd and gpsd-clients packages \
                 (apt-get install -y gpsd gpsd-clients) to run this test"
            ),
            Err(e) => panic!("cannot start gpsfake: {e}"),
        };
        GpsFake {
            child,
            log,
            _dir: dir,
        }
    }

    /// Waits until gpsd accepts connections on `port`.
    fn wait_listening(&mut self, port: u16, limit: Duration) {
        let started = Instant::now();
        while started.elapsed() < limit {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "gpsfake exited early ({status}); is the gpsd package installed? {}",
                    self.stderr()
                );
            }
            thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "gpsd did not listen on port {port} within {limit:?}: {}",
            self.stderr()
        );
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for GpsFake {
    fn drop(&mut self) {
        // The whole group: gpsfake and the gpsd it runs in the foreground. TERM first so
        // gpsfake stops its gpsd itself, then KILL whatever is left of the group.
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(3) {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            thread::sleep(Duration::from_millis(20));
        }
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn options(port: u16, timeout: Duration) -> GpsdOptions {
    GpsdOptions {
        address: SocketAddr::from(([127, 0, 0, 1], port)),
        timeout,
    }
}

#[test]
fn real_gpsd_fed_by_gpsfake_reports_the_logged_3d_fix() {
    let port = free_port();
    let mut fake = GpsFake::start(port);
    fake.wait_listening(port, Duration::from_secs(20));

    let location = location::read(&Root::live(), &options(port, Duration::from_secs(10)));

    assert_eq!(
        location.gpsd,
        Field::Present(GpsdState::Connected),
        "{location:?}; gpsfake: {}",
        fake.stderr()
    );
    let fix = location.fix.present().unwrap();
    assert_eq!(fix.mode, FixMode::ThreeD);
    assert!((fix.latitude_deg - LATITUDE).abs() < 1e-6, "{fix:?}");
    assert!((fix.longitude_deg - LONGITUDE).abs() < 1e-6, "{fix:?}");
    let altitude = fix.altitude_m.present().unwrap();
    assert!((altitude - 412.5).abs() < 1e-3, "{fix:?}");
    let time = fix.time.present().unwrap();
    assert!(time.starts_with("2024-06-15T09:30:"), "{time}");
    // gpsd derives the error estimate from the HDOP in GGA / GSA.
    let error = fix.horizontal_error_m.present().unwrap();
    assert!(*error > 0.0 && *error < 100.0, "{fix:?}");
    // Speed comes from RMC, the last sentence of an epoch: if gpsd has it, it is the
    // logged 0.5 knots.
    if let Some(speed) = fix.speed_mps.present() {
        assert!((speed - 0.5 * 1852.0 / 3600.0).abs() < 0.01, "{fix:?}");
    }
}

#[test]
fn nothing_listening_is_unreachable_at_once() {
    let port = free_port();
    let started = Instant::now();
    let location = location::read(&Root::live(), &options(port, Duration::from_secs(5)));
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        location,
        Location {
            gpsd: Field::Present(GpsdState::Unreachable),
            fix: Field::Absent,
        }
    );
}

/// A one-connection server that checks the WATCH request, then sends `lines` and holds
/// the connection open until the client closes it.
fn fake_gpsd(lines: Vec<Vec<u8>>) -> (u16, thread::JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        stream
            .write_all(b"{\"class\":\"VERSION\",\"release\":\"3.22\",\"proto_major\":3}\n")
            .unwrap();
        let mut request = String::new();
        BufReader::new(stream.try_clone().unwrap())
            .read_line(&mut request)
            .unwrap();
        for line in lines {
            // The client may hang up once it has a fix.
            if stream.write_all(&line).is_err() {
                break;
            }
        }
        // Wait for the client to close, so the test sees the client's own timeout.
        let mut rest = Vec::new();
        let _ = std::io::Read::read_to_end(&mut stream, &mut rest);
        request
    });
    (port, handle)
}

#[test]
fn a_fix_after_hostile_lines_is_found_and_the_watch_request_sent() {
    let (port, server) = fake_gpsd(vec![
        b"not json at all\n".to_vec(),
        b"{\"class\":\"TPV\",\"mode\":3,\"lat\":NaN,\"lon\":1}\n".to_vec(),
        b"{\"class\":\"TPV\",\"mode\":3,\"lat\":1e999,\"lon\":1}\n".to_vec(),
        b"\xff\xfe\x00\n".to_vec(),
        b"{\"mode\":3,\"lat\":1,\"lon\":1}\n".to_vec(),
        b"{\"class\":\"SKY\",\"satellites\":[]}\n".to_vec(),
        b"{\"class\":\"TPV\",\"mode\":1}\n".to_vec(),
        b"{\"class\":\"TPV\",\"mode\":2,\"lat\":-12.5,\"lon\":130.75,\"epx\":6.0,\"epy\":8.0}\n"
            .to_vec(),
    ]);
    let location = location::read(&Root::live(), &options(port, Duration::from_secs(5)));
    assert_eq!(location.gpsd, Field::Present(GpsdState::Connected));
    let fix = location.fix.present().unwrap();
    assert_eq!(fix.mode, FixMode::TwoD);
    assert_eq!((fix.latitude_deg, fix.longitude_deg), (-12.5, 130.75));
    assert_eq!(fix.horizontal_error_m, Field::Present(10.0));
    assert_eq!(fix.altitude_m, Field::Absent);
    assert_eq!(
        server.join().unwrap(),
        "?WATCH={\"enable\":true,\"json\":true}\n"
    );
}

#[test]
fn no_fix_before_the_timeout_is_reported_in_time() {
    let (port, server) = fake_gpsd(vec![b"{\"class\":\"TPV\",\"mode\":1}\n".to_vec()]);
    let started = Instant::now();
    let location = location::read(&Root::live(), &options(port, Duration::from_millis(500)));
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(450), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
    assert_eq!(
        location,
        Location {
            gpsd: Field::Present(GpsdState::NoFix),
            fix: Field::Absent,
        }
    );
    server.join().unwrap();
}

#[test]
fn a_peer_that_is_not_gpsd_gives_a_malformed_fix() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let _ = stream.write_all(b"SSH-2.0-OpenSSH_9.2p1\r\n");
    });
    let location = location::read(&Root::live(), &options(port, Duration::from_secs(2)));
    server.join().unwrap();
    assert_eq!(location.gpsd, Field::Present(GpsdState::NoFix));
    assert!(
        matches!(&location.fix, Field::Malformed(r) if r.starts_with("not a gpsd stream")),
        "{location:?}"
    );
}

#[test]
fn an_endless_line_is_bounded_by_the_timeout() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let chunk = vec![b'x'; 64 << 10];
        let started = Instant::now();
        // Stream bytes without a newline until the client hangs up.
        while started.elapsed() < Duration::from_secs(10) {
            if stream.write_all(&chunk).is_err() {
                break;
            }
        }
    });
    let started = Instant::now();
    let location = location::read(&Root::live(), &options(port, Duration::from_millis(700)));
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(location.gpsd, Field::Present(GpsdState::NoFix));
    assert!(!location.fix.is_present());
    server.join().unwrap();
}
