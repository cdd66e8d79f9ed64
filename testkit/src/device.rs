//! A device under test: its own config and state directory in a temp dir, the real
//! `assent` run against it, and its daemon as a real process killed on drop.

use crate::binaries::{assent, binary_path};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A device with its own config and state directory.
pub struct Device {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
}

impl Device {
    pub fn new(extra_config: &str) -> Device {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("assent.toml");
        std::fs::write(
            &config,
            format!("state_dir = \"state\"\nlog_level = \"debug\"\n{extra_config}"),
        )
        .unwrap();
        Device { dir, config }
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    pub fn run(&self, args: &[&str]) -> Output {
        assent()
            .args(args)
            .arg("--config")
            .arg(&self.config)
            .env("ASSENT_LOG", "debug")
            .output()
            .unwrap()
    }

    pub fn run_ok(&self, args: &[&str]) -> Output {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "assent {args:?} failed: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// `collect --dry-run --json` on a fixture root: the JSON and the readers that ran.
    pub fn dry_run(&self, root: &Path) -> (Value, BTreeSet<String>) {
        let out = self.run_ok(&[
            "collect",
            "--dry-run",
            "--json",
            "--root",
            root.to_str().unwrap(),
        ]);
        let readers = String::from_utf8_lossy(&out.stderr)
            .lines()
            .filter_map(|l| l.split("reader ran: ").nth(1))
            .map(str::to_string)
            .collect();
        (serde_json::from_slice(&out.stdout).unwrap(), readers)
    }
}

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

/// Sends `per_client` app events from each of `clients` threads over the events socket,
/// `pipeline` lines at a time before reading their answers, as a busy local program
/// would; returns how many were answered `ok` (stored durably). Used by the benches.
pub fn emit_pipelined(socket: &Path, clients: usize, per_client: usize, pipeline: usize) -> usize {
    use std::io::{BufRead, BufReader, Write};
    let handles: Vec<_> = (0..clients)
        .map(|c| {
            let path = socket.to_path_buf();
            std::thread::spawn(move || {
                let mut stream = std::os::unix::net::UnixStream::connect(path).unwrap();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut accepted = 0;
                for chunk in 0..per_client / pipeline {
                    let mut text = String::new();
                    for i in 0..pipeline {
                        text.push_str(&format!(
                            "{{\"name\":\"bench\",\"attrs\":{{\"client\":{c},\"chunk\":{chunk},\"i\":{i},\"note\":\"{}\"}}}}\n",
                            "x".repeat(120)
                        ));
                    }
                    stream.write_all(text.as_bytes()).unwrap();
                    for _ in 0..pipeline {
                        let mut line = String::new();
                        reader.read_line(&mut line).unwrap();
                        if line.starts_with("ok ") {
                            accepted += 1;
                        }
                    }
                }
                accepted
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).sum()
}

/// The lines [`emit_windowed`] sends: `per_client` app events of about 170 bytes for each
/// of `clients` connections, each connection's lines in one buffer.
pub fn windowed_lines(clients: usize, per_client: usize) -> Vec<Vec<u8>> {
    let note = "x".repeat(120);
    (0..clients)
        .map(|c| {
            (0..per_client)
                .flat_map(|i| {
                    format!(
                        "{{\"name\":\"bench\",\"attrs\":{{\"client\":{c},\"i\":{i},\"note\":\"{note}\"}}}}\n"
                    )
                    .into_bytes()
                })
                .collect()
        })
        .collect()
}

/// Sends each buffer of `texts` (from [`windowed_lines`]) on a connection of its own to
/// the events socket, keeping up to `window` lines unanswered at all times: a writer
/// thread tops the window up as a reader thread counts answers, the load shape of
/// producers that keep `window` events submitted to the store. Returns how many lines
/// were answered `ok` (stored durably).
pub fn emit_windowed(socket: &Path, texts: Vec<Vec<u8>>, window: usize) -> usize {
    use std::io::{Read, Write};
    use std::sync::{Arc, Condvar, Mutex};
    let handles: Vec<_> = texts
        .into_iter()
        .map(|text| {
            let path = socket.to_path_buf();
            std::thread::spawn(move || {
                let per_client = text.iter().filter(|b| **b == b'\n').count();
                let mut stream = std::os::unix::net::UnixStream::connect(path).unwrap();
                let mut reading = stream.try_clone().unwrap();
                let unanswered = Arc::new((Mutex::new(0usize), Condvar::new()));
                let answered = Arc::clone(&unanswered);
                let reader = std::thread::spawn(move || {
                    let mut buf = vec![0u8; 64 * 1024];
                    let (mut lines, mut accepted) = (0, 0);
                    // The first bytes of the current answer line, to tell `ok ` from errors.
                    let mut start = Vec::with_capacity(3);
                    while lines < per_client {
                        let n = reading.read(&mut buf).unwrap();
                        assert!(n > 0, "the agent closed after {lines} answers");
                        let mut ended = 0;
                        for &b in &buf[..n] {
                            if b == b'\n' {
                                accepted += usize::from(start == b"ok ");
                                ended += 1;
                                start.clear();
                            } else if start.len() < 3 {
                                start.push(b);
                            }
                        }
                        lines += ended;
                        let (count, freed) = &*answered;
                        *count.lock().unwrap() -= ended;
                        freed.notify_one();
                    }
                    accepted
                });
                let mut sent = 0;
                let mut offsets = text
                    .iter()
                    .enumerate()
                    .filter(|(_, b)| **b == b'\n')
                    .map(|(i, _)| i + 1);
                let mut written = 0;
                while sent < per_client {
                    let room = {
                        let (count, freed) = &*unanswered;
                        let mut count = count.lock().unwrap();
                        while *count >= window {
                            count = freed.wait(count).unwrap();
                        }
                        let room = (window - *count).min(per_client - sent);
                        *count += room;
                        room
                    };
                    let end = offsets.nth(room - 1).unwrap();
                    stream.write_all(&text[written..end]).unwrap();
                    written = end;
                    sent += room;
                }
                reader.join().unwrap()
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).sum()
}
