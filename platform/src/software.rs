//! The `software` category: installed packages and the names of running programs.
//!
//! Packages come from whichever package databases exist under the root: dpkg
//! (`/var/lib/dpkg/status`), opkg (`/var/lib/opkg/status`, else `/usr/lib/opkg/status`)
//! and apk (`/lib/apk/db/installed`). Only a package's name, version and architecture are
//! kept; descriptions, maintainers, dependencies and conffiles are skipped while parsing
//! and never copied.
//!
//! Running programs come from `/proc/<pid>/comm` and nothing else: command lines,
//! environments, owners and every other per-process file are never opened. Kernel threads
//! are kept (their names, such as `kworker/0:1`, say nothing about a person), so the list
//! is simply every comm name with how many processes carry it.

use crate::field::Field;
use crate::read::{ReadError, PACKAGE_DB_LIMIT};
use crate::Root;
use serde::{Deserialize, Serialize};

/// The longest name, version or architecture kept; longer values make the entry malformed.
pub const MAX_PACKAGE_VALUE: usize = 256;
/// The most `/proc/<pid>` directories examined.
pub const MAX_PIDS: usize = 32768;
/// The most `/proc` entries looked at (pids plus the non-numeric ones) before stopping.
const MAX_PROC_ENTRIES: usize = MAX_PIDS + 1024;
/// Size bound for `/proc/<pid>/comm`; the kernel writes at most 15 bytes and a newline.
const COMM_LIMIT: usize = 64;

/// What the `software` category holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Software {
    /// Every package manager whose database exists under the root (even if unreadable).
    pub package_manager: Field<Vec<PackageManager>>,
    /// Installed packages of every readable database, sorted by name and architecture.
    pub packages: Field<Vec<Package>>,
    /// How many entries `packages` holds.
    pub package_count: Field<u64>,
    /// Database entries skipped because a kept value was missing or unusable
    /// (non-UTF-8, NUL or control bytes, too long, no `Package` field).
    pub malformed_entries: Field<u64>,
    /// Program names of running processes with how many processes carry each name,
    /// sorted by name.
    pub running_programs: Field<Vec<RunningProgram>>,
    /// How many processes were counted in `running_programs`.
    pub process_count: Field<u64>,
    /// Processes whose comm was unreadable or not a usable name (non-UTF-8, NUL).
    pub malformed_process_names: Field<u64>,
}

/// A package database format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PackageManager {
    Dpkg,
    Opkg,
    Apk,
}

/// One installed package. Nothing else from the database entry is kept.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Package {
    pub name: String,
    pub version: String,
    /// Absent in apk entries without an `A:` line (`null` in JSON; always encoded, so
    /// non-self-describing formats such as postcard round-trip).
    pub architecture: Option<String>,
}

/// One program name and how many running processes carry it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RunningProgram {
    pub name: String,
    pub count: u64,
}

/// The packages parsed from one database.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PackageDb {
    /// Installed packages, in file order.
    pub packages: Vec<Package>,
    /// Entries skipped because a kept value was missing or unusable.
    pub malformed_entries: u64,
}

/// Reads the `software` category under `root`.
pub fn read(root: &Root) -> Software {
    let (package_manager, packages, malformed) = read_packages(root);
    let package_count = packages.clone().map(|p| p.len() as u64);
    let (running_programs, process_count, malformed_names) = read_running_programs(root);
    Software {
        package_manager,
        packages,
        package_count,
        malformed_entries: malformed,
        running_programs,
        process_count,
        malformed_process_names: malformed_names,
    }
}

type Fields3<A, B, C> = (Field<A>, Field<B>, Field<C>);

fn read_packages(root: &Root) -> Fields3<Vec<PackageManager>, Vec<Package>, u64> {
    let opkg = read_db(root, "/var/lib/opkg/status", parse_status)
        .or_else(|| read_db(root, "/usr/lib/opkg/status", parse_status));
    let sources = [
        (
            PackageManager::Dpkg,
            read_db(root, "/var/lib/dpkg/status", parse_status),
        ),
        (PackageManager::Opkg, opkg),
        (
            PackageManager::Apk,
            read_db(root, "/lib/apk/db/installed", parse_apk_installed),
        ),
    ];

    let found: Vec<PackageManager> = sources
        .iter()
        .filter(|(_, db)| *db != Field::Absent)
        .map(|(manager, _)| *manager)
        .collect();
    if found.is_empty() {
        return (Field::Absent, Field::Absent, Field::Absent);
    }

    let mut packages = Vec::new();
    let mut malformed = 0u64;
    let mut any_present = false;
    let mut first_failure: Option<Field<Vec<Package>>> = None;
    for (_, db) in sources {
        match db {
            Field::Present(db) => {
                any_present = true;
                packages.extend(db.packages);
                malformed = malformed.saturating_add(db.malformed_entries);
            }
            Field::Absent => {}
            Field::Denied => {
                first_failure.get_or_insert(Field::Denied);
            }
            Field::Malformed(reason) => {
                first_failure.get_or_insert(Field::Malformed(reason));
            }
        }
    }
    if !any_present {
        // Every database that exists failed: report the first failure for both fields.
        let failure = first_failure.unwrap_or(Field::Absent);
        let count_failure = failure.clone().map(|_| 0u64);
        return (Field::Present(found), failure, count_failure);
    }
    crate::read::sort_by(&mut packages, |a, b| a < b);
    (
        Field::Present(found),
        Field::Present(packages),
        Field::Present(malformed),
    )
}

fn read_db(
    root: &Root,
    path: &str,
    parse: fn(&[u8]) -> Result<PackageDb, String>,
) -> Field<PackageDb> {
    Field::from_file(root, path, PACKAGE_DB_LIMIT, parse)
}

/// Parses a dpkg or opkg status database: stanzas of `Field: value` lines separated by
/// blank lines, continuation lines starting with a space or tab. Only stanzas whose
/// `Status` ends in `installed` are kept (dpkg `install ok installed`, opkg
/// `install user installed`); removed packages with leftover config are skipped silently.
///
/// A stanza whose name, version or architecture is missing or unusable is skipped and
/// counted in `malformed_entries`. The whole database is malformed only if it holds
/// malformed stanzas and no usable one.
pub fn parse_status(bytes: &[u8]) -> Result<PackageDb, String> {
    let mut db = PackageDb::default();
    let mut stanza = Stanza::default();
    for line in lines(bytes) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(|b| *b == b' ' || *b == b'\t') {
            stanza.finish(&mut db);
            continue;
        }
        // Continuation lines (descriptions, conffiles) are the bulk of a status file:
        // one byte decides to skip them.
        if line[0] == b' ' || line[0] == b'\t' {
            continue;
        }
        stanza.has_content = true;
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            stanza.broken = true;
            continue;
        };
        let (key, value) = (&line[..colon], &line[colon + 1..]);
        let slot = match key {
            b"Package" => &mut stanza.name,
            b"Version" => &mut stanza.version,
            b"Architecture" => &mut stanza.architecture,
            b"Status" => &mut stanza.status,
            _ => continue,
        };
        if slot.is_some() {
            // A repeated key means two entries ran together without a blank line.
            stanza.broken = true;
        } else {
            *slot = Some(trim_blanks(value));
        }
    }
    stanza.finish(&mut db);
    check_db(db)
}

/// The kept fields of one status stanza, borrowed from the database bytes.
#[derive(Default)]
struct Stanza<'a> {
    name: Option<&'a [u8]>,
    version: Option<&'a [u8]>,
    architecture: Option<&'a [u8]>,
    status: Option<&'a [u8]>,
    has_content: bool,
    broken: bool,
}

impl Stanza<'_> {
    /// Adds the stanza to `db` if installed and well formed, then starts a new one.
    fn finish(&mut self, db: &mut PackageDb) {
        let stanza = std::mem::take(self);
        if !stanza.has_content {
            return;
        }
        let installed = stanza
            .status
            .is_some_and(|s| s.rsplit(|b| *b == b' ').next() == Some(b"installed"));
        if !installed && !stanza.broken && stanza.name.is_some() {
            return;
        }
        let package = (|| {
            if stanza.broken {
                return None;
            }
            Some(Package {
                name: package_value(stanza.name?)?,
                version: package_value(stanza.version?)?,
                architecture: Some(package_value(stanza.architecture?)?),
            })
        })();
        match package {
            Some(p) => db.packages.push(p),
            None => db.malformed_entries = db.malformed_entries.saturating_add(1),
        }
    }
}

/// Parses an apk installed database: entries of `X:value` lines (`P` name, `V` version,
/// `A` architecture) separated by blank lines. Every entry is an installed package.
/// Entries without a usable name or version are skipped and counted as malformed.
pub fn parse_apk_installed(bytes: &[u8]) -> Result<PackageDb, String> {
    let mut db = PackageDb::default();
    let mut entry = ApkEntry::default();
    for line in lines(bytes) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(|b| *b == b' ' || *b == b'\t') {
            entry.finish(&mut db);
            continue;
        }
        entry.has_content = true;
        let slot = match line {
            [b'P', b':', ..] => &mut entry.name,
            [b'V', b':', ..] => &mut entry.version,
            [b'A', b':', ..] => &mut entry.architecture,
            [key, b':', ..] if key.is_ascii_alphanumeric() => continue,
            _ => {
                entry.broken = true;
                continue;
            }
        };
        if slot.is_some() {
            entry.broken = true;
        } else {
            *slot = Some(&line[2..]);
        }
    }
    entry.finish(&mut db);
    check_db(db)
}

/// The kept fields of one apk entry, borrowed from the database bytes.
#[derive(Default)]
struct ApkEntry<'a> {
    name: Option<&'a [u8]>,
    version: Option<&'a [u8]>,
    architecture: Option<&'a [u8]>,
    has_content: bool,
    broken: bool,
}

impl ApkEntry<'_> {
    fn finish(&mut self, db: &mut PackageDb) {
        let entry = std::mem::take(self);
        if !entry.has_content {
            return;
        }
        let package = (|| {
            if entry.broken {
                return None;
            }
            let architecture = match entry.architecture {
                Some(a) => Some(package_value(a)?),
                None => None,
            };
            Some(Package {
                name: package_value(entry.name?)?,
                version: package_value(entry.version?)?,
                architecture,
            })
        })();
        match package {
            Some(p) => db.packages.push(p),
            None => db.malformed_entries = db.malformed_entries.saturating_add(1),
        }
    }
}

fn check_db(db: PackageDb) -> Result<PackageDb, String> {
    if db.packages.is_empty() && db.malformed_entries > 0 {
        return Err(format!(
            "no usable entry, {} malformed",
            db.malformed_entries
        ));
    }
    Ok(db)
}

/// Lines of `bytes` without their `\n`; a final line without one is still a line.
fn lines(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    let empty = body.is_empty();
    body.split(|b| *b == b'\n').filter(move |_| !empty)
}

fn trim_blanks(value: &[u8]) -> &[u8] {
    let start = value
        .iter()
        .position(|b| *b != b' ' && *b != b'\t')
        .unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|b| *b != b' ' && *b != b'\t')
        .map_or(start, |i| i + 1);
    &value[start..end]
}

/// A name, version or architecture: non-empty, at most [`MAX_PACKAGE_VALUE`] bytes,
/// UTF-8, with no whitespace, control bytes or NUL.
fn package_value(bytes: &[u8]) -> Option<String> {
    if bytes.is_empty() || bytes.len() > MAX_PACKAGE_VALUE {
        return None;
    }
    if bytes
        .iter()
        .any(|b| b.is_ascii_control() || b.is_ascii_whitespace())
    {
        return None;
    }
    std::str::from_utf8(bytes).ok().map(str::to_string)
}

/// Parses `/proc/<pid>/comm`: one name of printable characters, one trailing newline.
/// Non-UTF-8, NUL or control bytes, an empty name or more than 64 bytes are refused.
pub fn parse_comm(bytes: &[u8]) -> Result<String, String> {
    let name = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    if name.is_empty() {
        return Err("empty".to_string());
    }
    if name.len() > COMM_LIMIT {
        return Err(format!("longer than {COMM_LIMIT} bytes"));
    }
    if name.iter().any(u8::is_ascii_control) {
        return Err("contains a control byte".to_string());
    }
    std::str::from_utf8(name)
        .map(str::to_string)
        .map_err(|_| "not valid UTF-8".to_string())
}

fn read_running_programs(root: &Root) -> Fields3<Vec<RunningProgram>, u64, u64> {
    let entries = match std::fs::read_dir(root.join("/proc")) {
        Ok(entries) => entries,
        Err(e) => {
            let failure = Field::from_read_error(ReadError::from(e));
            return (
                failure.clone(),
                failure.clone().map(|_| 0),
                failure.map(|_| 0),
            );
        }
    };
    // The name is kept as listed so that `00012` is read as `00012`, not as `12`.
    let mut pids: Vec<(u32, String)> = entries
        .take(MAX_PROC_ENTRIES)
        .filter_map(|entry| {
            let name = entry.ok()?.file_name().into_string().ok()?;
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            Some((name.parse::<u32>().ok()?, name))
        })
        .take(MAX_PIDS)
        .collect();
    if pids.is_empty() {
        // A procfs always has pid 1: a /proc without pids is not one.
        return (Field::Absent, Field::Absent, Field::Absent);
    }
    crate::read::sort_by(&mut pids, |a, b| a < b);

    // Names sorted and counted in runs, not a BTreeMap: a map instantiation costs
    // kilobytes of flash.
    let mut names: Vec<String> = Vec::new();
    let mut processes = 0u64;
    let mut malformed = 0u64;
    for (_, pid) in pids {
        match root.read(&format!("/proc/{pid}/comm"), COMM_LIMIT) {
            Ok(bytes) => match parse_comm(&bytes) {
                Ok(name) => {
                    names.push(name);
                    processes += 1;
                }
                Err(_) => malformed += 1,
            },
            // The process exited between listing and reading: it is simply gone.
            Err(ReadError::NotFound) => {}
            Err(_) => malformed += 1,
        }
    }
    crate::read::sort_by(&mut names, |a, b| a < b);
    let mut programs: Vec<RunningProgram> = Vec::new();
    for name in names {
        match programs.last_mut() {
            Some(last) if last.name == name => last.count += 1,
            _ => programs.push(RunningProgram { name, count: 1 }),
        }
    }
    (
        Field::Present(programs),
        Field::Present(processes),
        Field::Present(malformed),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkg(name: &str, version: &str, arch: Option<&str>) -> Package {
        Package {
            name: name.into(),
            version: version.into(),
            architecture: arch.map(Into::into),
        }
    }

    const DPKG: &[u8] = b"Package: adduser\n\
Status: install ok installed\n\
Priority: important\n\
Section: admin\n\
Installed-Size: 849\n\
Maintainer: Debian Adduser Developers <adduser@packages.debian.org>\n\
Architecture: all\n\
Multi-Arch: foreign\n\
Version: 3.134\n\
Depends: passwd\n\
Conffiles:\n /etc/deluser.conf 773fb95e98a27947de4a95abb3d3f2a2\n\
Description: add and remove users and groups\n This package includes the 'adduser' and 'deluser' commands.\n .\n Package: fake-in-description\n\
\n\
Package: old-tool\n\
Status: deinstall ok config-files\n\
Architecture: arm64\n\
Version: 1.0-1\n\
\n\
Package: libc6\n\
Status: install ok installed\n\
Architecture: arm64\n\
Version: 2.36-9+rpt2+deb12u4\n\
Description: GNU C Library: Shared libraries\n\
";

    #[test]
    fn dpkg_keeps_installed_packages_and_only_three_values() {
        let db = parse_status(DPKG).unwrap();
        assert_eq!(
            db.packages,
            vec![
                pkg("adduser", "3.134", Some("all")),
                pkg("libc6", "2.36-9+rpt2+deb12u4", Some("arm64")),
            ]
        );
        assert_eq!(db.malformed_entries, 0);
    }

    #[test]
    fn opkg_status_words_and_crlf_lines() {
        let text = b"Package: busybox\r\nVersion: 1.35.0-r0\r\nStatus: install user installed\r\nArchitecture: armv8a\r\n\r\n\n\nPackage: held\nVersion: 2\nStatus: hold ok installed\nArchitecture: all";
        let db = parse_status(text).unwrap();
        assert_eq!(
            db.packages,
            vec![
                pkg("busybox", "1.35.0-r0", Some("armv8a")),
                pkg("held", "2", Some("all"))
            ]
        );
    }

    #[test]
    fn hostile_status_stanzas_are_counted_not_kept() {
        let long = "9".repeat(10_000);
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (
                b"Package: caf\xe9\nVersion: 1\nArchitecture: all\nStatus: install ok installed\n"
                    .to_vec(),
                "non-UTF-8 name",
            ),
            (
                b"Package: a\0b\nVersion: 1\nArchitecture: all\nStatus: install ok installed\n"
                    .to_vec(),
                "NUL in name",
            ),
            (
                b"Version: 1\nArchitecture: all\nStatus: install ok installed\n".to_vec(),
                "no Package field",
            ),
            (
                format!("Package: x\nVersion: {long}\nArchitecture: all\nStatus: install ok installed\n")
                    .into_bytes(),
                "10,000-byte version",
            ),
            (
                b"Package: x\nArchitecture: all\nStatus: install ok installed\n".to_vec(),
                "no version",
            ),
            (
                b"Package: x\nPackage: y\nVersion: 1\nArchitecture: all\nStatus: install ok installed\n"
                    .to_vec(),
                "two packages run together",
            ),
            (b"\xff\xfe\x00garbage without colon\n".to_vec(), "binary junk"),
        ];
        for (text, what) in cases {
            let mut good = text.clone();
            good.extend_from_slice(
                b"\nPackage: ok\nVersion: 1\nArchitecture: all\nStatus: install ok installed\n",
            );
            let db = parse_status(&good).unwrap();
            assert_eq!(db.packages, vec![pkg("ok", "1", Some("all"))], "{what}");
            assert_eq!(db.malformed_entries, 1, "{what}");
            assert!(parse_status(&text).is_err(), "{what} alone");
        }
    }

    #[test]
    fn empty_and_blank_databases_hold_no_packages() {
        for text in [&b""[..], b"\n", b"\n\n  \n", b"\r\n"] {
            assert_eq!(parse_status(text), Ok(PackageDb::default()));
            assert_eq!(parse_apk_installed(text), Ok(PackageDb::default()));
        }
    }

    #[test]
    fn apk_entries() {
        let text = b"C:Q1abc=\nP:musl\nV:1.2.4-r2\nA:x86_64\nS:383152\nT:the musl c library (libc) implementation\nL:MIT\n\nP:noarch\nV:1\n\nP:bad\xff\nV:1\n\nV:2\nA:x86_64\n";
        let db = parse_apk_installed(text).unwrap();
        assert_eq!(
            db.packages,
            vec![
                pkg("musl", "1.2.4-r2", Some("x86_64")),
                pkg("noarch", "1", None)
            ]
        );
        assert_eq!(db.malformed_entries, 2);
        assert!(parse_apk_installed(b"\x00\x01junk\n\n#!/bin/sh\n").is_err());
    }

    #[test]
    fn comm_names() {
        assert_eq!(parse_comm(b"systemd\n"), Ok("systemd".into()));
        assert_eq!(
            parse_comm(b"kworker/0:1-events"),
            Ok("kworker/0:1-events".into())
        );
        assert_eq!(parse_comm(b"(sd-pam)\n"), Ok("(sd-pam)".into()));
        for bad in [
            &b"\n"[..],
            b"",
            b"a\0b\n",
            b"\xff\xfe\n",
            b"two\nlines\n",
            b"tab\there",
        ] {
            assert!(parse_comm(bad).is_err(), "{bad:?}");
        }
        assert!(parse_comm(&[b'a'; 65]).is_err());
    }

    fn fixture(name: &str) -> Root {
        Root::at(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../tests/fixtures/roots")
                .join(name),
        )
    }

    fn program_names(software: &Software) -> Vec<(&str, u64)> {
        software
            .running_programs
            .present()
            .unwrap()
            .iter()
            .map(|p| (p.name.as_str(), p.count))
            .collect()
    }

    #[test]
    fn rpi4_dpkg_packages_and_programs() {
        let software = read(&fixture("rpi4-raspios64"));
        assert_eq!(
            software.package_manager,
            Field::Present(vec![PackageManager::Dpkg])
        );
        let packages = software.packages.present().unwrap();
        assert_eq!(software.package_count, Field::Present(31));
        assert_eq!(packages.len(), 31);
        assert!(packages.contains(&pkg("libc6", "2.36-9+rpt2+deb12u4", Some("arm64"))));
        assert!(packages.contains(&pkg("raspi-config", "20240313", Some("all"))));
        assert!(
            !packages.iter().any(|p| p.name == "dphys-swapfile"),
            "removed packages are not installed"
        );
        assert!(packages.windows(2).all(|w| w[0] <= w[1]), "sorted");
        assert_eq!(software.malformed_entries, Field::Present(0));
        let programs = program_names(&software);
        assert_eq!(programs.len(), 15);
        assert!(programs.contains(&("avahi-daemon", 2)));
        assert!(programs.contains(&("sshd", 2)));
        assert!(programs.contains(&("NetworkManager", 1)));
        assert!(
            programs.windows(2).all(|w| w[0].0 < w[1].0),
            "sorted, unique"
        );
        assert_eq!(software.process_count, Field::Present(17));
        assert_eq!(software.malformed_process_names, Field::Present(0));
    }

    #[test]
    fn x86_gateway_dpkg_and_modem_daemons() {
        let software = read(&fixture("x86-gateway"));
        assert_eq!(software.package_count, Field::Present(45));
        let packages = software.packages.present().unwrap();
        assert!(packages.contains(&pkg("modemmanager", "1.20.4-1", Some("amd64"))));
        let programs = program_names(&software);
        assert!(programs.contains(&("ModemManager", 1)));
        assert!(programs.contains(&("pppd", 1)));
        assert!(programs.contains(&("kworker/0:2-events", 1)));
    }

    #[test]
    fn yocto_opkg_in_usr_lib() {
        let software = read(&fixture("yocto-opkg"));
        assert_eq!(
            software.package_manager,
            Field::Present(vec![PackageManager::Opkg])
        );
        assert_eq!(software.package_count, Field::Present(22));
        let packages = software.packages.present().unwrap();
        assert!(packages.contains(&pkg("busybox", "1.35.0-r0", Some("cortexa53"))));
        let programs = program_names(&software);
        assert!(programs.contains(&("init", 1)));
        assert!(programs.contains(&("dropbear", 1)));
    }

    #[test]
    fn container_apk_golden() {
        let software = read(&fixture("container"));
        assert_eq!(
            software.package_manager,
            Field::Present(vec![PackageManager::Apk])
        );
        assert_eq!(software.package_count, Field::Present(16));
        let packages = software.packages.present().unwrap();
        assert_eq!(
            packages[0],
            pkg("alpine-baselayout", "3.4.3-r2", Some("x86_64"))
        );
        assert!(packages.contains(&pkg("musl", "1.2.4_git20230717-r4", Some("x86_64"))));
        assert_eq!(program_names(&software), vec![("nginx", 3), ("sh", 1)]);
    }

    #[test]
    fn garbage_root_counts_hostile_entries_and_keeps_the_rest() {
        let software = read(&fixture("garbage"));
        // The harness adds a denied dpkg database at run time; opkg and apk are committed.
        let managers = software.package_manager.present().unwrap();
        assert!(managers.contains(&PackageManager::Opkg), "{managers:?}");
        assert!(managers.contains(&PackageManager::Apk), "{managers:?}");
        assert_eq!(
            software.packages,
            Field::Present(vec![pkg("survivor", "1.2.3-r0", Some("cortexa53"))])
        );
        // Seven broken opkg stanzas plus the truncated last one.
        assert_eq!(software.malformed_entries, Field::Present(8));
        assert_eq!(program_names(&software), vec![("init", 1)]);
        // NUL, non-UTF-8, empty, too long, two lines, escape, loop, loop, directory.
        assert_eq!(software.malformed_process_names, Field::Present(9));
        assert_eq!(
            parse_apk_installed(
                &fixture("garbage")
                    .read("/lib/apk/db/installed", 1 << 20)
                    .unwrap()
            ),
            Err("no usable entry, 4 malformed".to_string())
        );
    }

    #[test]
    fn output_never_holds_command_lines_environments_or_descriptions() {
        for root in [
            "rpi4-raspios64",
            "x86-gateway",
            "yocto-opkg",
            "container",
            "garbage",
        ] {
            let json = serde_json::to_string(&read(&fixture(root))).unwrap();
            for forbidden in [
                "SECRET-CMDLINE-MARKER",
                "SECRET-ENV-MARKER",
                "operator",
                "fixture image",
                "Maintainer",
                "/etc/",
                "Description",
                "Installed-Size",
            ] {
                assert!(!json.contains(forbidden), "{root}: {forbidden} in {json}");
            }
        }
    }

    #[test]
    fn a_root_without_databases_or_proc_is_absent() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("proc")).unwrap();
        std::fs::create_dir(dir.path().join("proc/self")).unwrap();
        let software = read(&Root::at(dir.path()));
        assert_eq!(software.package_manager, Field::Absent);
        assert_eq!(software.packages, Field::Absent);
        assert_eq!(software.package_count, Field::Absent);
        assert_eq!(software.running_programs, Field::Absent);
    }

    #[test]
    fn an_unreadable_only_database_reports_its_failure() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("lib/apk/db")).unwrap();
        std::fs::write(dir.path().join("lib/apk/db/installed"), b"\0\0junk\n").unwrap();
        let software = read(&Root::at(dir.path()));
        assert_eq!(
            software.package_manager,
            Field::Present(vec![PackageManager::Apk])
        );
        assert_eq!(
            software.packages,
            Field::Malformed("no usable entry, 1 malformed".into())
        );
        assert_eq!(
            software.package_count,
            Field::Malformed("no usable entry, 1 malformed".into())
        );
    }

    #[test]
    fn parsers_never_panic_on_arbitrary_bytes() {
        // A cheap deterministic generator stands in for a fuzzer.
        const ALPHABET: &[u8] = b"Package: Version:Status installed\n\n :P:V:A\0\xff\r\t";
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..2000 {
            let len = (state % 300) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    ALPHABET[(state % ALPHABET.len() as u64) as usize]
                })
                .collect();
            let _ = parse_status(&bytes);
            let _ = parse_apk_installed(&bytes);
            let _ = parse_comm(&bytes);
        }
    }
}
