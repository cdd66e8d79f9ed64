//! The workspace and its committed fixture roots, and running tools on test files.

use std::path::{Path, PathBuf};
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

/// The names of the committed fixture roots.
pub const FIXTURES: [&str; 5] = [
    "rpi4-raspios64",
    "x86-gateway",
    "yocto-opkg",
    "container",
    "garbage",
];

/// Runs a command and returns its output, failing with stderr when it fails.
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

/// The rows `query` returns from the SQLite database at `db`, through the `sqlite3`
/// tool (a reader independent of the code under test), one string per row.
pub fn sqlite(db: &Path, query: &str) -> Vec<String> {
    let out = run_ok(Command::new("sqlite3").arg(db).arg(query));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// A fixture root ready to read. The garbage root is copied to a temporary directory
/// and given what git cannot hold: a FIFO, a 1 GiB sparse file and unreadable files.
pub struct MaterializedRoot {
    path: PathBuf,
    /// Whether the tree must be read as an unprivileged user (we are root).
    pub unprivileged: bool,
    _temp: Option<tempfile::TempDir>,
}

impl MaterializedRoot {
    pub fn new(name: &str) -> MaterializedRoot {
        let committed = fixture_root(name);
        if name != "garbage" {
            return MaterializedRoot {
                path: committed,
                unprivileged: false,
                _temp: None,
            };
        }
        let temp = tempfile::Builder::new()
            .prefix("assent-garbage-")
            .tempdir()
            .unwrap();
        let path = temp.path().join("root");
        run_ok(Command::new("cp").arg("-a").arg(&committed).arg(&path));
        hostile_extras(&path);
        let unprivileged = nix_euid_is_root();
        if unprivileged {
            // `nobody` must be able to walk the copy.
            run_ok(Command::new("chmod").args(["a+rX"]).arg(temp.path()));
            run_ok(Command::new("chmod").args(["-R", "a+rX"]).arg(&path));
        }
        for unreadable in ["sys/class/dmi/id/product_name", "var/lib/dpkg/status"] {
            let file = path.join(unreadable);
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(&file, b"secret\n").unwrap();
            run_ok(Command::new("chmod").arg("000").arg(&file));
        }
        MaterializedRoot {
            path,
            unprivileged,
            _temp: Some(temp),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn hostile_extras(root: &Path) {
    let meminfo = root.join("proc/meminfo");
    std::fs::create_dir_all(meminfo.parent().unwrap()).unwrap();
    let huge = std::fs::File::create(&meminfo).unwrap();
    huge.set_len(1 << 30).unwrap();
    let os_release = root.join("etc/os-release");
    std::fs::create_dir_all(os_release.parent().unwrap()).unwrap();
    run_ok(Command::new("mkfifo").arg(&os_release));
    // The DMI class directory is a link into /sys/devices, as on a real system.
    let dmi_class = root.join("sys/class/dmi");
    if std::fs::symlink_metadata(dmi_class.join("id")).is_err() {
        std::fs::create_dir_all(root.join("sys/devices/virtual/dmi/id")).unwrap();
        std::fs::create_dir_all(&dmi_class).unwrap();
        std::os::unix::fs::symlink("../../devices/virtual/dmi/id", dmi_class.join("id")).unwrap();
    }
}

fn nix_euid_is_root() -> bool {
    let out = Command::new("id").arg("-u").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim() == "0"
}
