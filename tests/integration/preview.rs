//! `assent collect --preview` on the committed fixture roots and on this machine.

use assent_testkit::*;
use serde_json::Value;
use std::process::Command;

const CATEGORIES: [&str; 7] = [
    "device_id",
    "hardware",
    "os",
    "network",
    "network_detail",
    "location",
    "software",
];

#[test]
fn version_and_help_list_every_subcommand() {
    let out = run_ok(assent().arg("--version"));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("assent "), "{text}");
    let out = assent().arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success());
    for sub in SUBCOMMANDS {
        assert!(help.contains(sub), "--help lacks {sub}: {help}");
    }
}

/// Every subcommand `assent --help` must list.
const SUBCOMMANDS: &[&str] = &["collect"];

/// Golden JSON per fixture root. `ASSENT_UPDATE_GOLDEN=1` rewrites the files; review the
/// diff by eye before committing.
#[test]
fn preview_json_matches_golden_files() {
    let update = std::env::var_os("ASSENT_UPDATE_GOLDEN").is_some();
    let mut mismatches = Vec::new();
    for name in FIXTURES {
        let root = MaterializedRoot::new(name);
        let out = run_ok(
            preview_command(&root)
                .args(["--json", "--root"])
                .arg(root.path()),
        );
        let actual: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{name}: output is not JSON: {e}"));
        let keys: Vec<&str> = actual
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut expected_keys = CATEGORIES.to_vec();
        expected_keys.sort();
        assert_eq!(keys, expected_keys, "{name}: one key per category");

        let golden = workspace().join(format!("tests/fixtures/golden/{name}.json"));
        let pretty = serde_json::to_string_pretty(&actual).unwrap() + "\n";
        if update {
            std::fs::create_dir_all(golden.parent().unwrap()).unwrap();
            std::fs::write(&golden, &pretty).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&golden).unwrap_or_else(|e| {
            panic!("{}: {e}; run with ASSENT_UPDATE_GOLDEN=1", golden.display())
        });
        if expected != pretty {
            mismatches.push(format!(
                "{name}: output differs from {}\n--- actual ---\n{pretty}",
                golden.display()
            ));
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

#[test]
fn human_preview_is_marked_grouped_and_aligned() {
    let root = fixture_root("rpi4-raspios64");
    let out = run_ok(assent().args(["collect", "--preview", "--root"]).arg(&root));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("PREVIEW:"), "{text}");
    for category in CATEGORIES {
        assert!(
            text.contains(&format!("\n[{category}]\n")),
            "no group {category}: {text}"
        );
    }
    // Within a group every value starts in the same column.
    let hardware: Vec<&str> = text
        .split("\n[hardware]\n")
        .nth(1)
        .unwrap()
        .lines()
        .take_while(|l| !l.is_empty())
        .collect();
    assert!(hardware.len() > 3, "{text}");
    let columns: Vec<usize> = hardware
        .iter()
        .map(|l| {
            let key_end = 2 + l[2..].find(' ').unwrap();
            key_end + l[key_end..].find(|c: char| c != ' ').unwrap()
        })
        .collect();
    assert!(columns.windows(2).all(|w| w[0] == w[1]), "{hardware:#?}");
}

#[test]
fn category_flag_limits_the_preview() {
    let root = fixture_root("x86-gateway");
    let out = run_ok(
        assent()
            .args([
                "collect",
                "--preview",
                "--json",
                "--category",
                "os",
                "--category",
                "hardware",
                "--root",
            ])
            .arg(&root),
    );
    let value: Value = serde_json::from_slice(&out.stdout).unwrap();
    let keys: Vec<&String> = value.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["hardware", "os"]);

    let out = assent()
        .args(["collect", "--preview", "--category", "hardwar", "--root"])
        .arg(&root)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown category `hardwar`"), "{err}");
}

#[test]
fn a_missing_root_is_a_clear_error() {
    let out = assent()
        .args(["collect", "--preview", "--root", "/nonexistent/assent-root"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("/nonexistent/assent-root: not a directory"),
        "{err}"
    );
}

fn preview_command(root: &MaterializedRoot) -> Command {
    let mut cmd = if root.unprivileged {
        // Root ignores file modes: read the garbage tree as `nobody` so that mode-000
        // files really are denied.
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"]);
        // `assent()` carries ASSENT_TEST_RUNNER (qemu for cross targets), if any.
        let inner = assent();
        c.arg(inner.get_program()).args(inner.get_args());
        c
    } else {
        assent()
    };
    cmd.args(["collect", "--preview"]);
    cmd
}
