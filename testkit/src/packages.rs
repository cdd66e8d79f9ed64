//! A generated package fixture: a root whose dpkg database holds thousands of
//! Debian-like packages (names from a vocabulary of real Debian stems, prefixes and
//! suffixes, versions with epochs, revisions and `+dfsg`), deterministic for a seed.
//! Too large to commit as a root (3,000 packages make a 700 KB status file), so tests
//! and benches write it where they need it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// One package of the fixture: (name, version, architecture).
pub type FixturePackage = (String, String, String);

const PREFIXES: [&str; 8] = [
    "lib", "lib", "lib", "python3-", "golang-", "node-", "r-cran-", "",
];
const STEMS: [&str; 48] = [
    "acl",
    "apt",
    "attr",
    "audit",
    "bz2",
    "cap",
    "curl",
    "db5.3",
    "dbus",
    "expat",
    "ffi",
    "gcrypt",
    "gdbm",
    "glib2.0",
    "gmp",
    "gnutls",
    "gpg-error",
    "gssapi",
    "hogweed",
    "icu",
    "idn2",
    "jansson",
    "keyutils",
    "krb5",
    "ldap",
    "lz4",
    "lzma",
    "mount",
    "ncurses",
    "nettle",
    "nghttp2",
    "numa",
    "p11-kit",
    "pam",
    "pcre2",
    "psl",
    "readline",
    "rtmp",
    "sasl2",
    "seccomp",
    "selinux",
    "semanage",
    "sepol",
    "smartcols",
    "sqlite3",
    "ssh",
    "ssl",
    "systemd",
];
const SUFFIXES: [&str; 12] = [
    "", "-dev", "-doc", "-common", "-data", "1", "6", "3", "-bin", "-utils", "-dbg", "0",
];

/// `count` distinct packages, sorted by (name, version, architecture) as the agent's
/// reader sorts them.
pub fn generate(count: usize, seed: u64) -> Vec<FixturePackage> {
    let mut state = seed | 1;
    let mut next = move || {
        // xorshift64*: deterministic, no crate needed for a fixture.
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    let mut names = BTreeSet::new();
    let mut out = Vec::new();
    while out.len() < count {
        let r = next();
        let name = format!(
            "{}{}{}{}",
            PREFIXES[(r % 8) as usize],
            STEMS[((r >> 8) % 48) as usize],
            if (r >> 16).is_multiple_of(4) {
                format!("-{}", (r >> 20) % 40)
            } else {
                String::new()
            },
            SUFFIXES[((r >> 28) % 12) as usize],
        );
        if !names.insert(name.clone()) {
            continue;
        }
        out.push((name, version(next()), arch(next())));
    }
    out.sort();
    out
}

/// A new version for package `i`: what an upgrade of it installs.
pub fn upgraded(packages: &[FixturePackage], i: usize) -> Vec<FixturePackage> {
    let mut out = packages.to_vec();
    out[i].1 = format!("{}+deb12u1", out[i].1);
    out.sort();
    out
}

fn version(r: u64) -> String {
    let epoch = if r.is_multiple_of(10) { "1:" } else { "" };
    let dfsg = if (r >> 4).is_multiple_of(5) {
        "+dfsg"
    } else {
        ""
    };
    format!(
        "{epoch}{}.{}.{}{dfsg}-{}",
        (r >> 8) % 12,
        (r >> 16) % 30,
        (r >> 24) % 20,
        (r >> 32) % 6 + 1
    )
}

fn arch(r: u64) -> String {
    if r.is_multiple_of(5) { "all" } else { "amd64" }.to_string()
}

/// Writes a root under `dir` whose `/var/lib/dpkg/status` lists `packages` as dpkg
/// writes them (with the fields the reader skips), and returns the root.
pub fn write_root(dir: &Path, packages: &[FixturePackage]) -> PathBuf {
    let dpkg = dir.join("var/lib/dpkg");
    std::fs::create_dir_all(&dpkg).unwrap();
    let mut status = String::new();
    for (name, version, arch) in packages {
        status.push_str(&format!(
            "Package: {name}\nStatus: install ok installed\nPriority: optional\n\
             Section: libs\nInstalled-Size: 1234\n\
             Maintainer: Debian Maintainers <debian@lists.debian.org>\n\
             Architecture: {arch}\nMulti-Arch: same\nVersion: {version}\n\
             Depends: libc6 (>= 2.34)\nDescription: {name} library\n \
             A generated package of the inventory fixture.\n\n"
        ));
    }
    let tmp = dpkg.join("status.new");
    std::fs::write(&tmp, status).unwrap();
    std::fs::rename(&tmp, dpkg.join("status")).unwrap();
    dir.to_path_buf()
}
