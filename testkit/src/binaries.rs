//! The real binaries of this build.

use std::path::PathBuf;
use std::process::Command;

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
