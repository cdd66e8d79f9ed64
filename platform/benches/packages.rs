//! Parses a generated 5,000-package dpkg status database for about a second and prints
//! the rate. Run with `cargo bench -p assent-platform --bench packages`.

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use assent_platform::software::parse_status;
use std::fmt::Write;
use std::hint::black_box;
use std::time::{Duration, Instant};

const PACKAGES: usize = 5000;

/// A status file shaped like a real Debian one: every stanza has the usual header fields,
/// dependency lists, a multi-paragraph description, and every fourth one conffiles; one in
/// fifty is a removed package with only its config left.
fn generate() -> String {
    let mut text = String::with_capacity(PACKAGES * 1200);
    for i in 0..PACKAGES {
        let name = format!(
            "lib{}-package{i}",
            ["foo", "bar", "gtk", "qt", "perl"][i % 5]
        );
        let status = if i % 50 == 49 {
            "deinstall ok config-files"
        } else {
            "install ok installed"
        };
        let arch = ["amd64", "all", "arm64"][i % 3];
        let _ = write!(
            text,
            "Package: {name}\n\
             Status: {status}\n\
             Priority: optional\n\
             Section: libs\n\
             Installed-Size: {size}\n\
             Maintainer: Debian Library Maintainers <pkg-libs@lists.example.invalid>\n\
             Architecture: {arch}\n\
             Multi-Arch: same\n\
             Source: {name}-src ({i}.2.3-1)\n\
             Version: 1:{i}.2.3-1+deb12u{u}\n\
             Replaces: {name}-old (<< {i}.0)\n\
             Depends: libc6 (>= 2.34), libgcc-s1 (>= 3.0), libstdc++6 (>= 12), zlib1g (>= 1:1.2.0)\n\
             Recommends: {name}-data (= 1:{i}.2.3-1+deb12u{u})\n",
            size = 100 + i * 7 % 9000,
            u = i % 9,
        );
        if i % 4 == 0 {
            let _ = write!(
                text,
                "Conffiles:\n /etc/{name}/main.conf 0123456789abcdef0123456789abcdef\n \
                 /etc/{name}/extra.conf fedcba9876543210fedcba9876543210\n"
            );
        }
        let _ = write!(
            text,
            "Description: shared library number {i} for the benchmark\n \
             This library provides routines that many programs on the system use. It is\n \
             packaged separately so that programs can share one copy in memory.\n \
             .\n \
             This package contains the shared library; the development files are in the\n \
             matching -dev package and the documentation in the -doc package.\n\
             Homepage: https://example.invalid/{name}\n\n"
        );
    }
    text
}

fn main() {
    let text = generate();
    let bytes = text.as_bytes();
    let db = parse_status(bytes).expect("the generated database parses");
    let installed = PACKAGES - PACKAGES / 50;
    assert_eq!(db.packages.len(), installed);
    assert_eq!(db.malformed_entries, 0);

    let started = Instant::now();
    let mut rounds = 0u32;
    while started.elapsed() < Duration::from_secs(1) {
        let db = parse_status(black_box(bytes)).unwrap();
        black_box(&db);
        rounds += 1;
    }
    let seconds = started.elapsed().as_secs_f64();
    let per_second = f64::from(rounds) * PACKAGES as f64 / seconds;
    let mb_per_second = f64::from(rounds) * bytes.len() as f64 / seconds / 1e6;
    println!(
        "dpkg status parse: {PACKAGES} packages ({installed} installed, {:.1} MB), \
         {per_second:.0} packages/s, {mb_per_second:.0} MB/s ({rounds} rounds)",
        bytes.len() as f64 / 1e6
    );
}
