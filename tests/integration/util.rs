//! Helpers that run the real binaries.

use std::path::PathBuf;
use std::process::{Command, Output};

/// The workspace root.
pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// A committed fixture root filesystem.
pub fn fixture_root(name: &str) -> PathBuf {
    workspace().join("tests/fixtures/roots").join(name)
}

/// The `assent` binary built for this test run. When `ASSENT_TEST_RUNNER` is set (for
/// example `qemu-aarch64 -L /usr/aarch64-linux-gnu`), the binary runs under it.
pub fn assent() -> Command {
    let binary = binary_path("assent");
    match std::env::var("ASSENT_TEST_RUNNER") {
        Ok(runner) if !runner.trim().is_empty() => {
            let mut parts = runner.split_whitespace();
            let mut cmd = Command::new(parts.next().unwrap());
            cmd.args(parts).arg(binary);
            cmd
        }
        _ => Command::new(binary),
    }
}

/// Where cargo put a workspace binary: next to this test's `deps` directory.
pub fn binary_path(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} not built; run the tests through `make test` or `cargo build --workspace` first",
        path.display()
    );
    path
}

/// Runs a command and returns its output, failing the test with stderr when it fails.
pub fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{:?} failed with {}\nstderr:\n{}",
        cmd,
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}
