//! Tests of the parser and the typed readers: tables of good and bad TOML, each error
//! checked with its position.

use super::*;
use std::path::Path;

const FILE: &str = "/etc/assent/test.toml";

/// Parses `text`, lets `walk` read from its root, and returns every diagnostic as
/// `line:column: message` strings (the file name is the same everywhere).
fn check(text: &str, walk: impl FnOnce(&mut Table<'_>)) -> Vec<String> {
    let doc = match Document::parse(Path::new(FILE), text) {
        Ok(doc) => doc,
        Err(e) => return render(e),
    };
    {
        let mut root = doc.root();
        walk(&mut root);
    }
    match doc.finish() {
        Ok(()) => Vec::new(),
        Err(e) => render(e),
    }
}

fn render(d: Diagnostics) -> Vec<String> {
    d.0.iter()
        .map(|d| {
            assert_eq!(d.file, Path::new(FILE));
            format!("{}:{}: {}", d.line, d.column, d.message)
        })
        .collect()
}

#[test]
fn line_column_counts_characters_from_one() {
    let cases: &[(&str, usize, (usize, usize))] = &[
        ("", 0, (1, 1)),
        ("abc", 0, (1, 1)),
        ("abc", 2, (1, 3)),
        ("a\nbc", 2, (2, 1)),
        ("a\nbc", 3, (2, 2)),
        ("a\r\nb", 3, (2, 1)),
        // Two-byte characters count once.
        ("é = x", 3, (1, 3)),
        ("ab", 99, (1, 3)),
    ];
    for (text, offset, want) in cases {
        assert_eq!(line_column(text, *offset), *want, "{text:?} at {offset}");
    }
}

#[test]
fn edit_distance_table() {
    let cases = [
        ("", "", 0),
        ("abc", "", 3),
        ("", "abc", 3),
        ("state_dir", "state_dir", 0),
        ("stat_dir", "state_dir", 1),
        ("intervall_seconds", "interval_seconds", 1),
        ("xyz", "xyx", 1),
        // A swap of neighbours is one edit.
        ("durabiltiy", "durability", 1),
        ("kitten", "sitting", 3),
    ];
    for (a, b, want) in cases {
        assert_eq!(edit_distance(a, b), want, "{a} / {b}");
    }
}

#[test]
fn nearest_suggests_only_close_names() {
    let keys = [
        "state_dir",
        "consent_file",
        "policy_version",
        "log_level",
        "url",
    ];
    let cases = [
        ("stat_dir", Some("state_dir")),
        ("consent_fiel", Some("consent_file")),
        ("policy_versoin", Some("policy_version")),
        ("LOG_LEVEL", Some("log_level")),
        ("uri", Some("url")),
        ("loglevel", Some("log_level")),
        ("xyz", None),
        ("collector", None),
        ("", None),
    ];
    for (word, want) in cases {
        assert_eq!(nearest(word, keys), want, "{word}");
    }
    assert_eq!(nearest("anything", []), None);
}

#[test]
fn diagnostic_display() {
    let d = Diagnostic {
        file: PathBuf::from("/etc/assent/assent.toml"),
        line: 3,
        column: 7,
        message: "unknown key `stat_dir`".into(),
    };
    assert_eq!(
        d.to_string(),
        "/etc/assent/assent.toml:3:7: unknown key `stat_dir`"
    );
    let whole = Diagnostic::whole_file(Path::new("/x.toml"), "cannot read: no such file");
    assert_eq!(whole.to_string(), "/x.toml: cannot read: no such file");
    let all = Diagnostics(vec![d.clone(), whole]);
    assert_eq!(
        all.to_string(),
        "/etc/assent/assent.toml:3:7: unknown key `stat_dir`\n/x.toml: cannot read: no such file"
    );
    let as_error: &dyn std::error::Error = &all;
    assert_eq!(as_error.to_string().lines().count(), 2);
    assert_eq!(Diagnostics::from(d.clone()).len(), 1);
    // Machine-readable form for `check-config --json`.
    let json = serde_json::to_value(Diagnostics(vec![d.clone()])).unwrap();
    assert_eq!(
        json,
        serde_json::json!([{
            "file": "/etc/assent/assent.toml",
            "line": 3,
            "column": 7,
            "message": "unknown key `stat_dir`"
        }])
    );
    assert_eq!(
        serde_json::from_value::<Diagnostics>(json).unwrap(),
        Diagnostics(vec![d])
    );
}

#[test]
fn a_syntax_error_gives_one_diagnostic_at_its_position() {
    let cases: &[(&str, &str)] = &[
        ("a = \n", "1:5"),
        ("a = 1\n[sync\nb = 2\n", "2:6"),
        ("a = 1\na = 2\n", "2:1"),
        ("a = \"unterminated\n", "1:18"),
        ("a = 1\nb = \"x\0y\"\n", "2:7"),
        ("[a]\n[a]\n", "2:2"),
        ("ok = 1\n= 3\n", "2:1"),
        ("a = 1 2\n", "1:5"),
    ];
    for (text, position) in cases {
        let found = check(text, |_| {});
        assert_eq!(found.len(), 1, "{text:?}: {found:?}");
        assert!(
            found[0].starts_with(&format!("{position}: invalid TOML: ")),
            "{text:?}: {found:?}"
        );
    }
}

#[test]
fn typed_getters_read_good_values() {
    let text = r#"
name = "x"
on = true
count = 0x10
big = 1_000
dir = "/var/lib/assent"
rel = "data/state"
list = ["a", "b"]
empty_list = []
level = "warn"
metered = "defer"
[sub]
inner = 3
"#;
    let found = check(text, |t| {
        assert_eq!(t.string("name").as_deref(), Some("x"));
        assert_eq!(t.bool("on"), Some(true));
        assert_eq!(t.u64("count", 1..=100), Some(16));
        assert_eq!(t.u64("big", 0..=u64::MAX), Some(1000));
        assert_eq!(t.path("dir"), Some(PathBuf::from("/var/lib/assent")));
        assert_eq!(t.path("rel"), Some(PathBuf::from("/etc/assent/data/state")));
        assert_eq!(
            t.string_array("list"),
            Some(vec!["a".to_string(), "b".to_string()])
        );
        assert_eq!(t.string_array("empty_list"), Some(Vec::new()));
        assert_eq!(t.choice("level", &["error", "warn"]), Some("warn"));
        match t.string_or_table("metered", "a string or a table") {
            Some(StringOrTable::String(s)) => assert_eq!(s, "defer"),
            other => panic!("{other:?}"),
        }
        let mut sub = t.table("sub").expect("sub is a table");
        assert_eq!(sub.name(), "sub");
        assert_eq!(sub.u64("inner", 1..=3), Some(3));
        // Absent keys are `None` and no error.
        assert_eq!(sub.string("absent"), None);
        assert_eq!(t.u64("absent", 1..=2), None);
        assert!(t.table("absent_table").is_none());
    });
    assert_eq!(found, Vec::<String>::new());
}

#[test]
fn wrong_types_are_reported_at_the_value() {
    // (line of the document, getter, expected message)
    type Getter = fn(&mut Table<'_>);
    let cases: &[(&str, Getter, &str)] = &[
        (
            "interval_seconds = \"300\"",
            |t| {
                let _ = t.u64("interval_seconds", 1..=u64::MAX);
            },
            "1:20: key `interval_seconds`: expected a positive integer, found a string",
        ),
        (
            "max = 1.5",
            |t| {
                let _ = t.u64("max", 0..=10);
            },
            "1:7: key `max`: expected a non-negative integer, found a float",
        ),
        (
            "name = 3",
            |t| {
                let _ = t.string("name");
            },
            "1:8: key `name`: expected a string, found an integer",
        ),
        (
            "on = \"yes\"",
            |t| {
                let _ = t.bool("on");
            },
            "1:6: key `on`: expected a boolean (`true` or `false`), found a string",
        ),
        (
            "dir = false",
            |t| {
                let _ = t.path("dir");
            },
            "1:7: key `dir`: expected a string, found a boolean",
        ),
        (
            "sync = 1",
            |t| {
                let _ = t.table("sync");
            },
            "1:8: key `sync`: expected a table, found an integer",
        ),
        (
            "list = \"eth0\"",
            |t| {
                let _ = t.string_array("list");
            },
            "1:8: key `list`: expected an array of strings, found a string",
        ),
        (
            "level = 2",
            |t| {
                let _ = t.choice("level", &["info", "debug"]);
            },
            "1:9: key `level`: expected one of `info`, `debug`, found an integer",
        ),
        (
            "metered = [1]",
            |t| {
                let _ = t.string_or_table("metered", "`allow`, `defer` or a table");
            },
            "1:11: key `metered`: expected `allow`, `defer` or a table, found an array",
        ),
        (
            "when = 2026-11-22T10:00:00Z",
            |t| {
                let _ = t.string("when");
            },
            "1:8: key `when`: expected a string, found a datetime",
        ),
        (
            "[sync]\ninterval_seconds = true",
            |t| {
                if let Some(mut s) = t.table("sync") {
                    s.u64("interval_seconds", 1..=10);
                }
            },
            "2:20: key `sync.interval_seconds`: expected a positive integer, found a boolean",
        ),
    ];
    for (text, getter, want) in cases {
        let found = check(text, getter);
        assert_eq!(found, vec![want.to_string()], "{text}");
    }
}

/// Document, accepted range, value read, diagnostic.
type RangeCase = (
    &'static str,
    RangeInclusive<u64>,
    Option<u64>,
    Option<&'static str>,
);

#[test]
fn integers_out_of_range_are_errors() {
    let cases: &[RangeCase] = &[
        ("n = 1", 1..=u64::MAX, Some(1), None),
        ("n = 0", 0..=u64::MAX, Some(0), None),
        (
            "n = 0",
            1..=u64::MAX,
            None,
            Some("1:5: key `n`: must be at least 1, found 0"),
        ),
        (
            "n = -5",
            1..=u64::MAX,
            None,
            Some("1:5: key `n`: must be at least 1, found -5"),
        ),
        (
            "n = -1",
            0..=u64::MAX,
            None,
            Some("1:5: key `n`: must not be negative, found -1"),
        ),
        (
            "n = 86401",
            1..=86400,
            None,
            Some("1:5: key `n`: must be between 1 and 86400, found 86401"),
        ),
        (
            "n = 11",
            0..=10,
            None,
            Some("1:5: key `n`: must be at most 10, found 11"),
        ),
        (
            "n = 9223372036854775807",
            0..=u64::MAX,
            Some(9_223_372_036_854_775_807),
            None,
        ),
        (
            "n = 99999999999999999999999999999999999999999",
            1..=u64::MAX,
            None,
            Some("1:5: key `n`: must be at least 1, found a number too large"),
        ),
        ("n = 0o17", 1..=100, Some(15), None),
        ("n = 0b101", 1..=100, Some(5), None),
        ("n = +7", 1..=100, Some(7), None),
    ];
    for (text, range, want_value, want_error) in cases {
        let mut got = None;
        let found = check(text, |t| got = t.u64("n", range.clone()));
        assert_eq!(got, *want_value, "{text}");
        let want: Vec<String> = want_error.iter().map(|s| s.to_string()).collect();
        assert_eq!(found, want, "{text}");
    }
}

#[test]
fn unknown_keys_are_reported_with_a_suggestion_when_close() {
    let text =
        "stat_dir = \"/x\"\nlog_level = \"info\"\nfoo = 1\n[sync]\nintervl_seconds = 3\n[buffer]\n";
    let found = check(text, |t| {
        t.path("state_dir");
        t.string("log_level");
        if let Some(mut s) = t.table("sync") {
            s.u64("interval_seconds", 1..=10);
            s.bool("metered");
        }
        // `buffer` present but never asked about: the whole table is unknown.
    });
    assert_eq!(
        found,
        vec![
            "1:1: unknown key `stat_dir`; did you mean `state_dir`?".to_string(),
            "3:1: unknown key `foo`".to_string(),
            "5:1: unknown key `sync.intervl_seconds`; did you mean `sync.interval_seconds`?"
                .to_string(),
            "6:2: unknown key `buffer`".to_string(),
        ]
    );
}

#[test]
fn a_noun_renames_unknown_keys() {
    let text = "[categories.hardwar]\nrequired = true\n[categories.os]\n";
    let found = check(text, |t| {
        if let Some(cats) = t.table("categories") {
            let mut cats = cats.with_noun("category");
            assert_eq!(cats.keys(), vec!["hardwar", "os"]);
            for name in ["hardware", "os", "software"] {
                drop(cats.table(name));
            }
        }
    });
    assert_eq!(
        found,
        vec!["1:13: unknown category `hardwar`; did you mean `hardware`?".to_string()]
    );
}

#[test]
fn keys_inside_an_unknown_table_are_not_reported_twice() {
    let found = check("[extra]\na = 1\nb = 2\n", |_| {});
    assert_eq!(found, vec!["1:2: unknown key `extra`".to_string()]);
}

#[test]
fn every_error_is_collected_at_once_and_sorted() {
    let text = "\
logg_level = \"info\"
interval_seconds = \"300\"
[collector]
url = \"http://x\"
durability = \"fast\"
";
    let found = check(text, |t| {
        t.string("log_level");
        t.u64("interval_seconds", 1..=u64::MAX);
        if let Some(mut c) = t.table("collector") {
            c.string_with("url", |s| {
                if s.starts_with("https://") {
                    Ok(s.to_string())
                } else {
                    Err(format!("must start with `https://`, found `{s}`"))
                }
            });
            c.choice("durability", &["full", "normal"]);
            c.missing("ca_file");
        }
    });
    assert_eq!(
        found,
        vec![
            "1:1: unknown key `logg_level`; did you mean `log_level`?",
            "2:20: key `interval_seconds`: expected a positive integer, found a string",
            "3:1: missing key `collector.ca_file`",
            "4:7: key `collector.url`: must start with `https://`, found `http://x`",
            "5:14: key `collector.durability`: expected one of `full`, `normal`, found `fast`",
        ]
    );
}

#[test]
fn error_helpers_point_at_the_value_or_the_table() {
    let text = "[sync]\nbackoff_base_seconds = 10\n";
    let found = check(text, |t| {
        let mut s = t.table("sync").expect("sync");
        s.u64("backoff_base_seconds", 1..=100);
        s.error(
            "backoff_base_seconds",
            "must not exceed `backoff_max_seconds`",
        );
        s.error("absent", "is needed here");
        s.error_here("this table is odd");
    });
    assert_eq!(
        found,
        vec![
            "1:1: key `sync.absent`: is needed here",
            "1:1: this table is odd",
            "2:24: key `sync.backoff_base_seconds`: must not exceed `backoff_max_seconds`",
        ]
    );
}

#[test]
fn paths_must_be_non_empty_and_without_nul() {
    let cases: &[(&str, Option<&str>, Option<&str>)] = &[
        ("p = \"/abs/x\"", Some("/abs/x"), None),
        ("p = \"rel/x\"", Some("/etc/assent/rel/x"), None),
        ("p = \"../up\"", Some("/etc/up"), None),
        ("p = \"\"", None, Some("1:5: key `p`: must not be empty")),
        (
            "p = \"/a\\u0000b\"",
            None,
            Some("1:5: key `p`: must not contain a NUL character"),
        ),
    ];
    for (text, want_path, want_error) in cases {
        let mut got = None;
        let found = check(text, |t| got = t.path("p"));
        assert_eq!(got, want_path.map(PathBuf::from), "{text}");
        let want: Vec<String> = want_error.iter().map(|s| s.to_string()).collect();
        assert_eq!(found, want, "{text}");
    }
}

#[test]
fn relative_paths_follow_the_file_not_the_working_directory() {
    let doc = Document::parse(Path::new("conf/a.toml"), "p = \"x\"").expect("parses");
    let got = doc.root().path("p").expect("a path");
    let cwd = std::env::current_dir().expect("cwd");
    assert_eq!(got, cwd.join("conf").join("x"));
    let doc = Document::parse(Path::new("a.toml"), "p = \"x\"").expect("parses");
    let got = doc.root().path("p").expect("a path");
    assert_eq!(got, cwd.join("x"));
}

#[test]
fn leading_parent_components_are_taken_off_the_canonical_directory() {
    let cases = [
        ("/etc/assent", "../state", "/etc/state"),
        ("/etc/assent", "./../../x", "/x"),
        ("/", "../../x", "/x"),
        ("/etc/assent", "a/../b", "/etc/assent/a/../b"),
        ("/etc/assent", "/var/lib/assent", "/var/lib/assent"),
        ("/etc/assent", ".", "/etc/assent"),
    ];
    for (base, relative, want) in cases {
        assert_eq!(
            join_below(Path::new(base), relative),
            Path::new(want),
            "{base} + {relative}"
        );
    }

    // A config reached through a symlinked directory: `..` is the real parent's, as
    // the kernel would resolve it, not the symlink's.
    let tmp = TempDir::new("dotdot");
    let real = tmp.0.join("real").join("configs");
    std::fs::create_dir_all(&real).expect("mkdir");
    std::os::unix::fs::symlink(&real, tmp.0.join("link")).expect("symlink");
    let file = tmp.0.join("link").join("dev.toml");
    let doc = Document::parse(&file, "p = \"../dev-state\"").expect("parses");
    let got = doc.root().path("p").expect("a path");
    let canonical_tmp = std::fs::canonicalize(&tmp.0).expect("canonical");
    assert_eq!(got, canonical_tmp.join("real").join("dev-state"));
}

#[test]
fn string_arrays_report_each_bad_item() {
    let text = "list = [\"eth0\", 3, \"wwan0\", true]\n";
    let mut got = Some(Vec::new());
    let found = check(text, |t| got = t.string_array("list"));
    assert_eq!(got, None);
    assert_eq!(
        found,
        vec![
            "1:17: key `list`: item 2: expected a string, found an integer",
            "1:29: key `list`: item 4: expected a string, found a boolean",
        ]
    );
}

#[test]
fn string_array_checks_run_on_each_item() {
    let text = "ifs = [\"wwan0\", \"\", \"ppp0\"]\n";
    let found = check(text, |t| {
        let got = t.string_array_with("ifs", |s| {
            if s.is_empty() {
                Err("must not be empty".to_string())
            } else {
                Ok(s.len())
            }
        });
        assert_eq!(got, None);
    });
    assert_eq!(found, vec!["1:17: key `ifs`: item 2: must not be empty"]);
    let found = check("ifs = [\"a\", \"bc\"]", |t| {
        assert_eq!(
            t.string_array_with("ifs", |s| Ok::<_, String>(s.len())),
            Some(vec![1, 2])
        );
    });
    assert_eq!(found, Vec::<String>::new());
}

#[test]
fn integer_arrays_check_each_item_against_the_range() {
    let found = check("ids = [0, 1000, 0x10]\nnone = []\n", |t| {
        assert_eq!(t.u64_array("ids", 0..=4000), Some(vec![0, 1000, 16]));
        assert_eq!(t.u64_array("none", 0..=4000), Some(Vec::new()));
        assert_eq!(t.u64_array("absent", 0..=4000), None);
    });
    assert_eq!(found, Vec::<String>::new());
    let text = "ids = [1, -1, \"2\", 5000, 99999999999999999999]\nid = 3\n";
    let found = check(text, |t| {
        assert_eq!(t.u64_array("ids", 0..=4000), None);
        assert_eq!(t.u64_array("id", 0..=4000), None);
    });
    assert_eq!(
        found,
        vec![
            "1:11: key `ids`: item 2: must be at most 4000, found -1",
            "1:15: key `ids`: item 3: expected an integer, found a string",
            "1:20: key `ids`: item 4: must be at most 4000, found 5000",
            "1:26: key `ids`: item 5: must be at most 4000, found 99999999999999999999",
            "2:6: key `id`: expected an array of integers, found an integer",
        ]
    );
}

#[test]
fn choices_are_exact_and_suggest_the_nearest() {
    let levels = &["error", "warn", "info", "debug", "trace"];
    let cases: &[(&str, Option<&str>, Option<&str>)] = &[
        ("l = \"info\"", Some("info"), None),
        (
            "l = \"Info\"",
            None,
            Some("1:5: key `l`: expected one of `error`, `warn`, `info`, `debug`, `trace`, found `Info`; did you mean `info`?"),
        ),
        (
            "l = \"warning\"",
            None,
            Some("1:5: key `l`: expected one of `error`, `warn`, `info`, `debug`, `trace`, found `warning`"),
        ),
        (
            "l = \"debgu\"",
            None,
            Some("1:5: key `l`: expected one of `error`, `warn`, `info`, `debug`, `trace`, found `debgu`; did you mean `debug`?"),
        ),
    ];
    for (text, want_value, want_error) in cases {
        let mut got = None;
        let found = check(text, |t| got = t.choice("l", levels));
        assert_eq!(got, *want_value, "{text}");
        let want: Vec<String> = want_error.iter().map(|s| s.to_string()).collect();
        assert_eq!(found, want, "{text}");
    }
}

#[test]
fn string_or_table_gives_a_walkable_table() {
    let text = "metered = { max_bytes_per_day = 0, extra = 1 }\n";
    let mut limit = None;
    let found = check(text, |t| {
        match t.string_or_table("metered", "a string or a table") {
            Some(StringOrTable::Table(mut m)) => {
                assert_eq!(m.name(), "metered");
                limit = m.u64("max_bytes_per_day", 0..=u64::MAX);
            }
            other => panic!("{other:?}"),
        }
    });
    assert_eq!(limit, Some(0));
    assert_eq!(found, vec!["1:36: unknown key `metered.extra`"]);
}

#[test]
fn document_report_and_clean_finish() {
    let doc = Document::parse(Path::new(FILE), "a = 1\nb = 2\n").expect("parses");
    {
        let mut root = doc.root();
        assert!(root.contains("a"));
        assert!(!root.contains("c"));
        root.u64("a", 0..=9);
        root.u64("b", 0..=9);
    }
    doc.report(6, "custom check failed");
    let err = doc.finish().expect_err("one error");
    assert_eq!(
        err.to_string(),
        "/etc/assent/test.toml:2:1: custom check failed"
    );
    let doc = Document::parse(Path::new(FILE), "").expect("empty parses");
    drop(doc.root());
    assert_eq!(doc.finish(), Ok(()));
}

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("assent-confcheck-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn read_text_is_bounded_and_names_the_file() {
    let tmp = TempDir::new("read");
    let good = tmp.0.join("good.toml");
    std::fs::write(&good, "a = 1\n").expect("write");
    assert_eq!(read_text(&good, 100).as_deref(), Ok("a = 1\n"));

    let missing = tmp.0.join("missing.toml");
    let err = read_text(&missing, 100).expect_err("missing");
    assert_eq!(err.kind, std::io::ErrorKind::NotFound);
    assert_eq!(
        err.to_string(),
        format!("{}: cannot read: no such file", missing.display())
    );

    let err = read_text(&tmp.0, 100).expect_err("a directory");
    assert_eq!(
        err.diagnostic.message,
        "cannot read: not a regular file".to_string()
    );

    let big = tmp.0.join("big.toml");
    std::fs::write(&big, vec![b'#'; 101]).expect("write");
    let err = read_text(&big, 100).expect_err("too big");
    assert_eq!(err.diagnostic.message, "file is larger than 100 bytes");
    assert!(read_text(&big, 101).is_ok());

    let bad = tmp.0.join("bad.toml");
    std::fs::write(&bad, b"a = 1\nb = \"\xff\"\n").expect("write");
    let err = read_text(&bad, 100).expect_err("not UTF-8");
    assert_eq!(err.kind, std::io::ErrorKind::InvalidData);
    assert_eq!(
        err.to_string(),
        format!("{}:2:6: not valid UTF-8", bad.display())
    );
    let as_diagnostics: Diagnostics = err.into();
    assert_eq!(as_diagnostics.len(), 1);
}

#[test]
fn read_text_refuses_a_fifo_without_blocking() {
    let tmp = TempDir::new("fifo");
    let fifo = tmp.0.join("fifo.toml");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo (coreutils) must be installed to run this test");
    assert!(status.success(), "mkfifo failed");
    let err = read_text(&fifo, 100).expect_err("a FIFO");
    assert_eq!(err.diagnostic.message, "cannot read: not a regular file");
}
