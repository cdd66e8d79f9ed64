//! The `os` category: which operating system runs, on which kernel, in which language
//! and time zone, and for how long it has been up.
//!
//! Sources: os-release, `uname` (live system only) or `/proc/sys/kernel/*`, the locale
//! files, the `/etc/localtime` link, `/proc/uptime` and the boot id. The host name is
//! not read: it often names the owner.

use crate::field::{parse_line, truncate_for_reason, Field, MAX_TEXT_VALUE};
use crate::read::{ReadError, ATTRIBUTE_LIMIT, TEXT_LIMIT};
use crate::Root;
use serde::{Deserialize, Serialize};

/// The operating system. os-release keys keep their names in snake case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Os {
    /// Which os-release file was read: `/etc/os-release`, or `/usr/lib/os-release`
    /// when the first does not exist.
    pub os_release_path: Field<String>,
    /// Lines of that file that were not valid assignments and were skipped.
    pub os_release_bad_lines: Field<u32>,
    /// os-release `NAME`.
    pub name: Field<String>,
    /// os-release `ID`.
    pub id: Field<String>,
    /// `ID_LIKE`, split at blanks.
    pub id_like: Field<Vec<String>>,
    /// os-release `VERSION`.
    pub version: Field<String>,
    /// os-release `VERSION_ID`.
    pub version_id: Field<String>,
    /// os-release `VERSION_CODENAME`.
    pub version_codename: Field<String>,
    /// os-release `PRETTY_NAME`.
    pub pretty_name: Field<String>,
    /// os-release `BUILD_ID`.
    pub build_id: Field<String>,
    /// os-release `VARIANT_ID`.
    pub variant_id: Field<String>,
    /// os-release `IMAGE_ID`.
    pub image_id: Field<String>,
    /// os-release `IMAGE_VERSION`.
    pub image_version: Field<String>,

    /// `uname -s`, else `/proc/sys/kernel/ostype`.
    pub kernel_name: Field<String>,
    /// `uname -r`, else `/proc/sys/kernel/osrelease`.
    pub kernel_release: Field<String>,
    /// `uname -v`, else `/proc/sys/kernel/version`.
    pub kernel_version: Field<String>,
    /// `uname -m`; only on the live system.
    pub architecture: Field<String>,

    /// `LANG` of `/etc/locale.conf`, else of `/etc/default/locale`.
    pub language: Field<String>,
    /// The zone name `/etc/localtime` links to, else `/etc/timezone`.
    pub timezone: Field<String>,
    /// Whole seconds since boot.
    pub uptime_seconds: Field<u64>,
    /// The kernel's random id of this boot; it changes at every boot.
    pub boot_id: Field<String>,
}

/// Reads the `os` category under `root`.
pub fn read(root: &Root) -> Os {
    let (os_release_path, release) = read_os_release(root);
    let get = |key: &str| release.as_ref().map_or_else(Field::clone, |f| f.get(key));
    let bad_lines = match &release {
        Ok(file) => Field::Present(u32::try_from(file.bad_lines.len()).unwrap_or(u32::MAX)),
        Err(state) => state.clone().map(|_| 0),
    };
    let id_like = get("ID_LIKE").map(|v| v.split_whitespace().map(str::to_string).collect());
    let kernel = read_kernel(root);

    Os {
        os_release_path,
        os_release_bad_lines: bad_lines,
        name: get("NAME"),
        id: get("ID"),
        id_like,
        version: get("VERSION"),
        version_id: get("VERSION_ID"),
        version_codename: get("VERSION_CODENAME"),
        pretty_name: get("PRETTY_NAME"),
        build_id: get("BUILD_ID"),
        variant_id: get("VARIANT_ID"),
        image_id: get("IMAGE_ID"),
        image_version: get("IMAGE_VERSION"),
        kernel_name: kernel.name,
        kernel_release: kernel.release,
        kernel_version: kernel.version,
        architecture: kernel.machine,
        language: read_language(root),
        timezone: read_timezone(root),
        uptime_seconds: Field::from_file(root, "/proc/uptime", ATTRIBUTE_LIMIT, parse_uptime),
        boot_id: Field::from_file(
            root,
            "/proc/sys/kernel/random/boot_id",
            ATTRIBUTE_LIMIT,
            parse_boot_id,
        ),
    }
}

/// `/etc/os-release`, and `/usr/lib/os-release` only when the first does not exist: a
/// present but unreadable `/etc/os-release` is reported, not papered over.
fn read_os_release(root: &Root) -> (Field<String>, Result<EnvFile, Field<String>>) {
    let mut first_error = None;
    for path in ["/etc/os-release", "/usr/lib/os-release"] {
        match root.read(path, TEXT_LIMIT) {
            Ok(bytes) => return (Field::Present(path.to_string()), Ok(parse_env_file(&bytes))),
            Err(ReadError::NotFound) => continue,
            Err(e) => {
                first_error = Some(Field::from_read_error(e));
                break;
            }
        }
    }
    let state = first_error.unwrap_or(Field::Absent);
    (state.clone(), Err(state))
}

// ---- environment-style files (os-release, locale.conf) ------------------------------

/// The assignments of an os-release style file. Each value is the unquoted text, or
/// why that assignment could not be used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvFile {
    /// Each assigned key (once, in first-assignment order) with its unquoted value, or
    /// why the assignment was bad. A list, not a map: a BTreeMap instantiation costs
    /// kilobytes of flash, and the files hold a few dozen keys.
    pub values: Vec<(String, Result<String, String>)>,
    /// 1-based numbers of lines that are neither blank, a comment nor `KEY=value`.
    pub bad_lines: Vec<usize>,
}

impl EnvFile {
    /// The value of `key`: absent when not assigned; malformed when its assignment was
    /// bad, or when the file held no valid assignment at all (binary junk).
    pub fn get(&self, key: &str) -> Field<String> {
        match self.values.iter().find(|(k, _)| k == key).map(|(_, v)| v) {
            Some(Ok(v)) => Field::Present(v.clone()),
            Some(Err(reason)) => Field::Malformed(reason.clone()),
            None if self.values.is_empty() && !self.bad_lines.is_empty() => {
                Field::Malformed("no valid assignment in the file".to_string())
            }
            None => Field::Absent,
        }
    }
}

/// Parses the os-release format (also used by `/etc/locale.conf` and
/// `/etc/default/locale`): one `KEY=value` per line, values unquoted or in single or
/// double quotes with shell rules, `#` comments and blank lines ignored. A later
/// assignment of a key replaces an earlier one, as in the shell. Variable expansion is
/// not done (the format forbids it): `$` is kept literally.
pub fn parse_env_file(bytes: &[u8]) -> EnvFile {
    let mut file = EnvFile {
        values: Vec::new(),
        bad_lines: Vec::new(),
    };
    for (index, raw) in bytes.split(|b| *b == b'\n').enumerate() {
        let line = crate::field::trim_ascii(raw);
        if line.is_empty() || line.starts_with(b"#") {
            continue;
        }
        let Some(eq) = line.iter().position(|b| *b == b'=') else {
            file.bad_lines.push(index + 1);
            continue;
        };
        let key = &line[..eq];
        let key_ok = key
            .first()
            .is_some_and(|b| b.is_ascii_alphabetic() || *b == b'_')
            && key.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'_');
        let Some(key) = key_ok.then(|| String::from_utf8_lossy(key).into_owned()) else {
            file.bad_lines.push(index + 1);
            continue;
        };
        let value = parse_env_value(&line[eq + 1..]);
        if value.is_err() {
            file.bad_lines.push(index + 1);
        }
        match file.values.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => file.values.push((key, value)),
        }
    }
    file
}

/// Unquotes one value with the shell's rules for a single word.
fn parse_env_value(bytes: &[u8]) -> Result<String, String> {
    if bytes.contains(&0) {
        return Err("contains a NUL byte".to_string());
    }
    if bytes.len() > MAX_TEXT_VALUE {
        return Err(format!("longer than {MAX_TEXT_VALUE} bytes"));
    }
    let text = std::str::from_utf8(bytes).map_err(|_| "not valid UTF-8".to_string())?;
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => loop {
                match chars.next() {
                    None => return Err("unterminated double quote".to_string()),
                    Some('"') => break,
                    Some('\\') => match chars.next() {
                        Some(e @ ('"' | '\\' | '$' | '`')) => out.push(e),
                        Some(other) => {
                            out.push('\\');
                            out.push(other);
                        }
                        None => return Err("unterminated double quote".to_string()),
                    },
                    Some(other) => out.push(other),
                }
            },
            '\'' => loop {
                match chars.next() {
                    None => return Err("unterminated single quote".to_string()),
                    Some('\'') => break,
                    Some(other) => out.push(other),
                }
            },
            '\\' => match chars.next() {
                Some(e) => out.push(e),
                None => return Err("trailing backslash".to_string()),
            },
            c if c.is_ascii_whitespace() => {
                // The word ends here; only a comment may follow.
                let rest = chars.as_str().trim_start();
                if rest.is_empty() || rest.starts_with('#') {
                    break;
                }
                return Err(format!(
                    "unquoted blank before {:?}",
                    truncate_for_reason(rest)
                ));
            }
            c => out.push(c),
        }
    }
    Ok(out)
}

// ---- kernel -------------------------------------------------------------------------

struct Kernel {
    name: Field<String>,
    release: Field<String>,
    version: Field<String>,
    machine: Field<String>,
}

/// `uname` on the live system; elsewhere the procfs files under the root, and no
/// architecture since no file states it.
fn read_kernel(root: &Root) -> Kernel {
    if root.is_live() {
        return match nix::sys::utsname::uname() {
            Ok(uts) => {
                let text = |s: &std::ffi::OsStr| match s.to_str() {
                    Some(v) => Field::Present(v.to_string()),
                    None => Field::Malformed("not valid UTF-8".to_string()),
                };
                Kernel {
                    name: text(uts.sysname()),
                    release: text(uts.release()),
                    version: text(uts.version()),
                    machine: text(uts.machine()),
                }
            }
            Err(e) => {
                let state = Field::Malformed(format!("uname failed: {e}"));
                Kernel {
                    name: state.clone(),
                    release: state.clone(),
                    version: state.clone(),
                    machine: state,
                }
            }
        };
    }
    let file = |path: &str| Field::from_file(root, path, ATTRIBUTE_LIMIT, parse_line);
    Kernel {
        name: file("/proc/sys/kernel/ostype"),
        release: file("/proc/sys/kernel/osrelease"),
        version: file("/proc/sys/kernel/version"),
        machine: Field::Absent,
    }
}

// ---- language and time zone ---------------------------------------------------------

/// `LANG` from `/etc/locale.conf` (systemd), or from `/etc/default/locale` (Debian) when
/// the first file does not exist or does not set it. A bad `locale.conf` is reported.
fn read_language(root: &Root) -> Field<String> {
    let lang = |path: &str| match root.read(path, TEXT_LIMIT) {
        Ok(bytes) => match parse_env_file(&bytes).get("LANG") {
            Field::Present(value) => Field::from_parse(validate_locale(value)),
            other => other,
        },
        Err(e) => Field::from_read_error(e),
    };
    match lang("/etc/locale.conf") {
        Field::Absent => lang("/etc/default/locale"),
        other => other,
    }
}

/// Locale names: `en_GB.UTF-8`, `C.UTF-8`, `POSIX`, `de_DE@euro`.
fn validate_locale(value: String) -> Result<String, String> {
    let ok = !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.@-".contains(&b));
    if ok {
        Ok(value)
    } else {
        Err(format!(
            "not a locale name: {:?}",
            truncate_for_reason(&value)
        ))
    }
}

/// The zone `/etc/localtime` links to (the link is read, not followed), else the name
/// in `/etc/timezone`.
fn read_timezone(root: &Root) -> Field<String> {
    let from_link = match root.read_link("/etc/localtime") {
        Ok(target) => match target.to_str() {
            Some(t) => Field::from_parse(parse_localtime_target(t)),
            None => Field::Malformed("link target is not valid UTF-8".to_string()),
        },
        // A copied zone file rather than a link says nothing about its name.
        Err(ReadError::Invalid) => {
            Field::Malformed("/etc/localtime is not a symbolic link".to_string())
        }
        Err(e) => Field::from_read_error(e),
    };
    from_link.or_else(|| {
        Field::from_file(root, "/etc/timezone", ATTRIBUTE_LIMIT, |b| {
            parse_line(b).and_then(validate_zone)
        })
    })
}

/// The zone name in a link target such as `../usr/share/zoneinfo/Europe/London`; the
/// `posix/` and `right/` variants of the database name the same zone.
pub fn parse_localtime_target(target: &str) -> Result<String, String> {
    let Some((_, zone)) = target.rsplit_once("zoneinfo/") else {
        return Err(format!(
            "link target not under zoneinfo: {:?}",
            truncate_for_reason(target)
        ));
    };
    let zone = zone
        .strip_prefix("posix/")
        .or_else(|| zone.strip_prefix("right/"))
        .unwrap_or(zone);
    validate_zone(zone.to_string())
}

/// Zone names are path-like words: `UTC`, `Europe/London`, `Etc/GMT+1`.
fn validate_zone(zone: String) -> Result<String, String> {
    let ok = !zone.is_empty()
        && zone.len() <= 64
        && zone.split('/').all(|part| {
            !part.is_empty()
                && part != "."
                && part != ".."
                && part
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_+-.".contains(&b))
        });
    if ok {
        Ok(zone)
    } else {
        Err(format!("not a zone name: {:?}", truncate_for_reason(&zone)))
    }
}

// ---- uptime and boot id -------------------------------------------------------------

/// The first number of `/proc/uptime` (`93784.52 362731.08`), cut to whole seconds.
pub fn parse_uptime(bytes: &[u8]) -> Result<u64, String> {
    let line = parse_line(bytes)?;
    let first = line.split_ascii_whitespace().next().unwrap_or_default();
    let bad = || format!("not a number of seconds: {:?}", truncate_for_reason(first));
    let (whole, fraction) = first.split_once('.').unwrap_or((first, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !digits(whole) || !digits(fraction) {
        return Err(bad());
    }
    whole.parse().map_err(|_| bad())
}

/// A boot id is a UUID in its 8-4-4-4-12 hexadecimal form.
pub fn parse_boot_id(bytes: &[u8]) -> Result<String, String> {
    let line = parse_line(bytes)?;
    let groups: Vec<&str> = line.split('-').collect();
    let ok = groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()));
    if ok {
        Ok(line.to_ascii_lowercase())
    } else {
        Err(format!("not a UUID: {:?}", truncate_for_reason(&line)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Root {
        let path = format!(
            "{}/../tests/fixtures/roots/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        assert!(
            std::path::Path::new(&path).is_dir(),
            "fixture root {path} is missing"
        );
        Root::at(path)
    }

    fn p(s: &str) -> Field<String> {
        Field::Present(s.to_string())
    }

    fn is_malformed<T>(field: &Field<T>) -> bool {
        matches!(field, Field::Malformed(_))
    }

    #[test]
    fn os_release_values_follow_shell_quoting() {
        let cases: &[(&str, Result<&str, ()>)] = &[
            ("plain", Ok("plain")),
            ("\"double quoted\"", Ok("double quoted")),
            ("'single quoted'", Ok("single quoted")),
            (r#""esc \"q\" \\ \$ \`""#, Ok(r#"esc "q" \ $ `"#)),
            (r#""keeps \n as is""#, Ok(r"keeps \n as is")),
            (r"'no \escapes'", Ok(r"no \escapes")),
            (r"un\ quoted", Ok("un quoted")),
            ("\"con\"'cat'enated", Ok("concatenated")),
            ("\"with comment\" # note", Ok("with comment")),
            ("\"trailing\"   ", Ok("trailing")),
            ("", Ok("")),
            ("\"\"", Ok("")),
            ("$HOME", Ok("$HOME")),
            ("\"unterminated", Err(())),
            ("'unterminated", Err(())),
            ("trailing\\", Err(())),
            ("two words", Err(())),
            ("\"ok\" junk", Err(())),
            ("a\0b", Err(())),
        ];
        for (input, expected) in cases {
            let got = parse_env_value(input.as_bytes());
            match expected {
                Ok(v) => assert_eq!(got, Ok(v.to_string()), "{input:?}"),
                Err(()) => assert!(got.is_err(), "{input:?} gave {got:?}"),
            }
        }
        assert!(parse_env_value(&[b'"', 0xff, b'"']).is_err());
        assert!(parse_env_value(&vec![b'a'; MAX_TEXT_VALUE + 1]).is_err());
    }

    #[test]
    fn os_release_file_keeps_good_lines_and_counts_bad_ones() {
        let file = parse_env_file(
            b"# comment\n\
NAME=\"Debian GNU/Linux\"\r\n\
\n\
  ID=debian\n\
ID_LIKE=\"rhel fedora\"\n\
not an assignment\n\
export FOO=1\n\
1KEY=x\n\
VERSION_ID=\"12\n\
NAME=\"Debian Again\"\n\
PRETTY_NAME=\xff\xfe\n",
        );
        assert_eq!(file.get("NAME"), p("Debian Again"));
        assert_eq!(file.get("ID"), p("debian"));
        assert_eq!(file.get("ID_LIKE"), p("rhel fedora"));
        assert!(is_malformed(&file.get("VERSION_ID")));
        assert!(is_malformed(&file.get("PRETTY_NAME")));
        assert_eq!(file.get("BUILD_ID"), Field::Absent);
        assert_eq!(file.bad_lines, vec![6, 7, 8, 9, 11]);

        let junk = parse_env_file(&[0xff, 0x00, 0x13, b'\n', 0x80]);
        assert!(is_malformed(&junk.get("ID")));
        let empty = parse_env_file(b"");
        assert_eq!(empty.get("ID"), Field::Absent);
    }

    #[test]
    fn locale_files() {
        let systemd = parse_env_file(b"LANG=en_GB.UTF-8\nLC_TIME=en_DK.UTF-8\n");
        assert_eq!(systemd.get("LANG"), p("en_GB.UTF-8"));
        let debian = parse_env_file(b"#  File generated by update-locale\nLANG=\"de_DE.UTF-8\"\n");
        assert_eq!(debian.get("LANG"), p("de_DE.UTF-8"));
        assert_eq!(validate_locale("C.UTF-8".into()), Ok("C.UTF-8".into()));
        assert_eq!(
            validate_locale("de_DE@euro".into()),
            Ok("de_DE@euro".into())
        );
        assert!(validate_locale("en GB".into()).is_err());
        assert!(validate_locale(String::new()).is_err());
        assert!(validate_locale("$(reboot)".into()).is_err());
    }

    #[test]
    fn localtime_targets() {
        let cases: &[(&str, Result<&str, ()>)] = &[
            ("../usr/share/zoneinfo/Europe/London", Ok("Europe/London")),
            ("/usr/share/zoneinfo/UTC", Ok("UTC")),
            ("/usr/share/zoneinfo/posix/Asia/Tokyo", Ok("Asia/Tokyo")),
            ("/usr/share/zoneinfo/Etc/GMT+1", Ok("Etc/GMT+1")),
            (
                "/var/db/timezone/zoneinfo/America/New_York",
                Ok("America/New_York"),
            ),
            ("/etc/shadow", Err(())),
            ("/usr/share/zoneinfo/", Err(())),
            ("/usr/share/zoneinfo/../../../etc/shadow", Err(())),
            ("/usr/share/zoneinfo/Europe//London", Err(())),
            ("/usr/share/zoneinfo/Europe/Lon don", Err(())),
        ];
        for (target, expected) in cases {
            let got = parse_localtime_target(target);
            match expected {
                Ok(v) => assert_eq!(got, Ok(v.to_string()), "{target}"),
                Err(()) => assert!(got.is_err(), "{target} gave {got:?}"),
            }
        }
    }

    #[test]
    fn uptime_and_boot_id() {
        assert_eq!(parse_uptime(b"93784.52 362731.08\n"), Ok(93784));
        assert_eq!(parse_uptime(b"17\n"), Ok(17));
        assert_eq!(parse_uptime(b"0.99 0.10\n"), Ok(0));
        for bad in [
            &b"abc\n"[..],
            b"",
            b"-5.0 1.0",
            b".5 1",
            b"1e9 1",
            b"99999999999999999999999.00 1",
            b"12.3\x0045",
        ] {
            assert!(
                parse_uptime(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(
            parse_boot_id(b"5D1B2E7A-93C4-4F0E-8A6B-2C7D9E1F3A40\n"),
            Ok("5d1b2e7a-93c4-4f0e-8a6b-2c7d9e1f3a40".into())
        );
        assert!(parse_boot_id(b"not-a-uuid\n").is_err());
        assert!(parse_boot_id(b"5d1b2e7a-93c4-4f0e-8a6b-2c7d9e1f3a4g\n").is_err());
        assert!(parse_boot_id(b"5d1b2e7a93c44f0e8a6b2c7d9e1f3a40\n").is_err());
    }

    #[test]
    fn rpi4_fixture() {
        let os = read(&fixture("rpi4-raspios64"));
        assert_eq!(os.os_release_path, p("/etc/os-release"));
        assert_eq!(os.os_release_bad_lines, Field::Present(0));
        assert_eq!(os.id, p("debian"));
        assert_eq!(os.name, p("Debian GNU/Linux"));
        assert_eq!(os.version_id, p("12"));
        assert_eq!(os.version_codename, p("bookworm"));
        assert_eq!(os.pretty_name, p("Debian GNU/Linux 12 (bookworm)"));
        assert_eq!(os.id_like, Field::Absent);
        assert_eq!(os.kernel_name, p("Linux"));
        assert_eq!(os.kernel_release, p("6.6.31+rpt-rpi-v8"));
        assert!(os.kernel_version.is_present());
        assert_eq!(os.architecture, Field::Absent);
        assert_eq!(os.language, p("en_GB.UTF-8"));
        assert_eq!(os.timezone, p("Europe/London"));
        assert_eq!(os.uptime_seconds, Field::Present(93784));
        assert_eq!(os.boot_id, p("3f6c1e2a-8b4d-4c7e-9a15-0d2e4f6a8b1c"));
    }

    #[test]
    fn x86_gateway_fixture() {
        let os = read(&fixture("x86-gateway"));
        assert_eq!(os.os_release_path, p("/etc/os-release"));
        assert_eq!(os.id, p("debian"));
        assert_eq!(os.version, p("12 (bookworm)"));
        assert_eq!(os.kernel_release, p("6.1.0-18-amd64"));
        assert_eq!(
            os.kernel_version,
            p("#1 SMP PREEMPT_DYNAMIC Debian 6.1.76-1 (2024-02-01)")
        );
        assert_eq!(os.language, p("en_US.UTF-8"));
        assert_eq!(os.timezone, p("Europe/Berlin"));
        assert!(os.uptime_seconds.is_present());
    }

    #[test]
    fn yocto_fixture() {
        let os = read(&fixture("yocto-opkg"));
        // /etc/os-release is a relative link to ../usr/lib/os-release.
        assert_eq!(os.os_release_path, p("/etc/os-release"));
        assert_eq!(os.id, p("poky"));
        assert_eq!(os.name, p("Poky (Yocto Project Reference Distro)"));
        assert_eq!(os.version_id, p("4.0.17"));
        assert_eq!(os.version_codename, p("kirkstone"));
        assert_eq!(os.kernel_release, p("5.15.71+g9b9a1b0e2d4a"));
        assert_eq!(os.language, Field::Absent);
        assert_eq!(os.timezone, p("UTC"));
    }

    #[test]
    fn container_fixture() {
        let os = read(&fixture("container"));
        assert_eq!(os.id, p("alpine"));
        assert_eq!(os.version_id, p("3.19.1"));
        assert_eq!(os.pretty_name, p("Alpine Linux v3.19"));
        assert_eq!(os.kernel_release, Field::Absent);
        assert_eq!(os.kernel_name, Field::Absent);
        assert_eq!(os.language, Field::Absent);
        assert_eq!(os.timezone, Field::Absent);
        assert_eq!(os.boot_id, Field::Absent);
        assert_eq!(os.uptime_seconds, Field::Present(4521));
    }

    #[test]
    fn garbage_fixture_is_malformed_not_a_panic() {
        let os = read(&fixture("garbage"));
        // The committed tree has no /etc/os-release (the harness adds a FIFO there).
        if os.os_release_path == p("/usr/lib/os-release") {
            assert!(os.os_release_bad_lines.present().is_some_and(|n| *n >= 5));
            assert!(is_malformed(&os.name), "{:?}", os.name);
            assert!(is_malformed(&os.version_id), "{:?}", os.version_id);
            assert!(is_malformed(&os.pretty_name), "{:?}", os.pretty_name);
            assert_eq!(os.id, p("$(reboot)"), "kept literally, never expanded");
        } else {
            assert!(
                is_malformed(&os.os_release_path),
                "{:?}",
                os.os_release_path
            );
            assert!(is_malformed(&os.name));
        }
        assert!(is_malformed(&os.kernel_release), "{:?}", os.kernel_release);
        assert!(is_malformed(&os.kernel_name));
        assert!(is_malformed(&os.kernel_version));
        assert!(is_malformed(&os.language), "{:?}", os.language);
        assert!(is_malformed(&os.timezone), "{:?}", os.timezone);
        assert!(is_malformed(&os.uptime_seconds));
        assert!(is_malformed(&os.boot_id));
    }

    #[test]
    fn a_fifo_etc_os_release_is_reported_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("etc")).unwrap();
        std::fs::create_dir_all(dir.path().join("usr/lib")).unwrap();
        std::fs::write(dir.path().join("usr/lib/os-release"), b"ID=fallback\n").unwrap();
        nix::unistd::mkfifo(
            &dir.path().join("etc/os-release"),
            nix::sys::stat::Mode::S_IRWXU,
        )
        .unwrap();
        let os = read(&Root::at(dir.path()));
        assert_eq!(
            os.os_release_path,
            Field::Malformed("not a regular file".into())
        );
        assert_eq!(os.id, Field::Malformed("not a regular file".into()));

        std::fs::remove_file(dir.path().join("etc/os-release")).unwrap();
        let os = read(&Root::at(dir.path()));
        assert_eq!(os.os_release_path, p("/usr/lib/os-release"));
        assert_eq!(os.id, p("fallback"));
    }

    #[test]
    fn a_copied_localtime_falls_back_to_etc_timezone() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("etc")).unwrap();
        std::fs::write(dir.path().join("etc/localtime"), b"TZif2...").unwrap();
        let os = read(&Root::at(dir.path()));
        assert!(is_malformed(&os.timezone), "{:?}", os.timezone);
        std::fs::write(dir.path().join("etc/timezone"), b"Europe/Paris\n").unwrap();
        let os = read(&Root::at(dir.path()));
        assert_eq!(os.timezone, p("Europe/Paris"));
    }

    #[test]
    fn live_root_uses_uname() {
        let os = read(&Root::live());
        assert_eq!(os.kernel_name, p("Linux"));
        assert!(os.kernel_release.present().is_some_and(|r| !r.is_empty()));
        assert!(os.architecture.is_present());
    }
}
