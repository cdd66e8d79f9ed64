//! Wall and CPU time of a full `assent collect --preview --json` on this machine's `/`
//! and on every fixture root, running the real release binary as a separate process.
#![allow(clippy::print_stdout)]

use assent_testkit::{workspace, MaterializedRoot, FIXTURES};
use nix::sys::resource::{getrusage, UsageWho};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const RUNS: u32 = 20;

fn main() {
    let binary = workspace().join("target/release/assent");
    assert!(
        binary.exists(),
        "build it first: cargo build --release -p assent"
    );
    println!("preview collection, {RUNS} runs each (release build, separate process)");
    println!(
        "{:<16} {:>12} {:>12} {:>12}",
        "root", "wall mean", "wall max", "cpu mean"
    );
    measure(&binary, "/", Path::new("/"), false);
    for name in FIXTURES {
        let root = MaterializedRoot::new(name);
        measure(&binary, name, root.path(), root.unprivileged);
    }
}

fn measure(binary: &Path, label: &str, root: &Path, unprivileged: bool) {
    let mut walls = Vec::new();
    let cpu_before = children_cpu();
    for _ in 0..RUNS {
        let mut cmd = if unprivileged {
            let mut c = Command::new("setpriv");
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"]);
            c.arg(binary);
            c
        } else {
            Command::new(binary)
        };
        cmd.args(["collect", "--preview", "--json", "--root"])
            .arg(root)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let start = Instant::now();
        let status = cmd.status().expect("run assent");
        walls.push(start.elapsed());
        assert!(status.success(), "{label}: preview failed");
    }
    let cpu = (children_cpu() - cpu_before) / RUNS;
    let mean = walls.iter().sum::<Duration>() / RUNS;
    let max = walls.iter().max().copied().unwrap_or_default();
    println!(
        "{:<16} {:>9.2} ms {:>9.2} ms {:>9.2} ms",
        label,
        ms(mean),
        ms(max),
        ms(cpu)
    );
}

fn children_cpu() -> Duration {
    let usage = getrusage(UsageWho::RUSAGE_CHILDREN).expect("getrusage");
    let user = usage.user_time();
    let system = usage.system_time();
    let micros =
        (user.tv_sec() + system.tv_sec()) * 1_000_000 + (user.tv_usec() + system.tv_usec());
    Duration::from_micros(u64::try_from(micros).unwrap_or(0))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
