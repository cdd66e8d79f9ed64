//! A test that keeps the repository honest, in the spirit of rust-analyzer's tidy:
//! every Rust module opens with a `//!` header; no dead-code allowance hides dead code;
//! the names ARCHITECTURE.md mentions exist in the tree; and every key documented in
//! `docs/config.md` is read by the config code, and the other way round.
//!
//! It reads the files git would hold (`fuzz/` aside: it is not a workspace member and
//! includes agent modules by path).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Every file under the workspace except build output, git's own and `fuzz/`, as paths
/// relative to the workspace with `/` separators.
fn files() -> Vec<String> {
    fn walk(dir: &Path, base: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            let rel = path
                .strip_prefix(base)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if ["target", ".git", "fuzz"].contains(&rel.as_str()) {
                continue;
            }
            let kind = entry.file_type().unwrap();
            if kind.is_dir() {
                walk(&path, base, out);
            } else if kind.is_file() {
                out.push(rel);
            }
        }
    }
    let base = workspace();
    let mut out = Vec::new();
    walk(&base, &base, &mut out);
    out.sort();
    out
}

fn rust_sources() -> Vec<(String, String)> {
    files()
        .into_iter()
        .filter(|f| f.ends_with(".rs") && !f.starts_with("tests/fixtures/"))
        .map(|f| {
            let text = std::fs::read_to_string(workspace().join(&f)).unwrap();
            (f, text)
        })
        .collect()
}

#[test]
fn every_module_opens_with_a_doc_header() {
    let missing: Vec<String> = rust_sources()
        .into_iter()
        .filter(|(_, text)| !text.trim_start().starts_with("//!"))
        .map(|(f, _)| f)
        .collect();
    assert!(
        missing.is_empty(),
        "modules without a `//!` header: {missing:?}"
    );
}

#[test]
fn no_allow_dead_code() {
    let pattern = ["allow(", "dead_code"].concat();
    let hits: Vec<String> = rust_sources()
        .into_iter()
        .filter(|(_, text)| text.contains(&pattern))
        .map(|(f, _)| f)
        .collect();
    assert!(hits.is_empty(), "`{pattern}` in {hits:?}");
}

/// The text between backticks, outside fenced code blocks.
fn backticked(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        let mut parts = line.split('`');
        parts.next();
        while let (Some(inside), Some(_)) = (parts.next(), parts.next()) {
            out.push(inside.to_string());
        }
    }
    out
}

/// Whether `name` is declared as an item (fn, type, trait, module, const) somewhere.
fn declared(sources: &[(String, String)], files: &[String], name: &str) -> bool {
    let kinds = [
        "fn", "struct", "enum", "trait", "type", "mod", "const", "static",
    ];
    let declares = |text: &str| {
        kinds.iter().any(|k| {
            let needle = format!("{k} {name}");
            text.match_indices(&needle).any(|(i, _)| {
                let after = text[i + needle.len()..].chars().next();
                !after.is_some_and(|c| c.is_alphanumeric() || c == '_')
            })
        })
    };
    sources.iter().any(|(_, text)| declares(text))
        || files
            .iter()
            .any(|f| f.ends_with(&format!("/{name}.rs")) || f.contains(&format!("/{name}/")))
}

/// Crates outside the workspace whose items ARCHITECTURE.md names.
const EXTERNAL: [&str; 6] = ["smol", "std", "hyper", "rustls", "ring", "log"];

/// Traits of std and serde that ARCHITECTURE.md names.
const EXTERNAL_TRAITS: [&str; 4] = ["Debug", "Display", "Serialize", "Deserialize"];

#[test]
fn names_in_architecture_exist() {
    let text = std::fs::read_to_string(workspace().join("ARCHITECTURE.md")).unwrap();
    let files = files();
    let sources = rust_sources();
    let mut missing = BTreeSet::new();
    for span in backticked(&text) {
        let name = span.trim_end_matches("()");
        if name.contains(' ') || name.starts_with('/') || name.starts_with('-') {
            continue; // commands, absolute device paths, signatures
        }
        let is_path = name.contains('/') || name.ends_with(".rs") || name.ends_with(".md");
        if is_path {
            let dir = name.ends_with('/');
            let found = files.iter().any(|f| {
                if dir {
                    f.starts_with(name) || f.contains(&format!("/{name}"))
                } else {
                    f == name || f.ends_with(&format!("/{name}"))
                }
            });
            if !found {
                missing.insert(span.clone());
            }
            continue;
        }
        let segments: Vec<&str> = name.split("::").collect();
        if segments.len() > 1 {
            if EXTERNAL.contains(&segments[0]) {
                continue;
            }
            if !segments.iter().all(|s| declared(&sources, &files, s)) {
                missing.insert(span.clone());
            }
            continue;
        }
        // A type name: CamelCase with a lower-case letter (not SO_PEERCRED, PEM).
        let camel = name.chars().next().is_some_and(|c| c.is_ascii_uppercase())
            && name.chars().any(|c| c.is_ascii_lowercase())
            && name.chars().all(|c| c.is_ascii_alphanumeric());
        if camel && !EXTERNAL_TRAITS.contains(&name) && !declared(&sources, &files, name) {
            missing.insert(span.clone());
        }
    }
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md names what the tree does not hold: {missing:?}"
    );
}

/// The keys of `docs/config.md`'s key tables (rows under a `| key |` header).
fn documented_keys(docs: &str) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    let mut in_table = false;
    for line in docs.lines() {
        if line.starts_with("| key |") {
            in_table = true;
            continue;
        }
        if !line.starts_with('|') {
            in_table = false;
            continue;
        }
        if in_table {
            if let Some(key) = line
                .strip_prefix("| `")
                .and_then(|rest| rest.split_once("` |"))
                .map(|(key, _)| key)
            {
                keys.insert(key.to_string());
            }
        }
    }
    keys
}

/// The keys the config parser reads: the first argument of each typed reader call.
fn keys_read_by_code(code: &str) -> BTreeSet<String> {
    let code = &code[..code.find("#[cfg(test)]").unwrap_or(code.len())];
    let readers = [
        "bool",
        "choice",
        "path",
        "string_array_with",
        "string_or_table",
        "string_with",
        "u64",
        "u64_array",
    ];
    let mut keys = BTreeSet::new();
    for reader in readers {
        let call = format!(".{reader}(");
        for (i, _) in code.match_indices(&call) {
            let rest = code[i + call.len()..].trim_start();
            if let Some(literal) = rest.strip_prefix('"') {
                if let Some((key, _)) = literal.split_once('"') {
                    keys.insert(key.to_string());
                }
            }
        }
    }
    keys
}

#[test]
fn config_docs_and_config_code_name_the_same_keys() {
    let docs = std::fs::read_to_string(workspace().join("docs/config.md")).unwrap();
    let code = std::fs::read_to_string(workspace().join("agent/src/config/mod.rs")).unwrap();
    let documented = documented_keys(&docs);
    let read = keys_read_by_code(&code);
    assert!(documented.len() >= 30, "{documented:?}");
    let undocumented: Vec<&String> = read
        .iter()
        // Keys of an inline value table are documented in their key's row.
        .filter(|k| !documented.contains(*k) && !docs.contains(&format!("{k} = ")))
        .collect();
    let unread: Vec<&String> = documented.difference(&read).collect();
    assert!(
        undocumented.is_empty(),
        "read by the config code but not in docs/config.md: {undocumented:?}"
    );
    assert!(
        unread.is_empty(),
        "in docs/config.md but never read by the config code: {unread:?}"
    );
}

/// The error types of each `Result<...>` in `text`: its last top-level type argument
/// when it has two (so `io::Result<String>` is not one).
fn result_error_types(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (i, _) in text.match_indices("Result<") {
        let before = text[..i].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue; // `ParseResult<`, `TryResult<`
        }
        let mut depth = 0usize;
        let mut args = vec![String::new()];
        for c in text[i + "Result".len()..].chars() {
            match c {
                '<' => {
                    depth += 1;
                    if depth == 1 {
                        continue;
                    }
                }
                '>' => {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                ',' if depth == 1 => {
                    args.push(String::new());
                    continue;
                }
                _ => {}
            }
            if let Some(last) = args.last_mut() {
                last.push(c);
            }
        }
        if args.last().is_some_and(|a| a.trim().is_empty()) {
            args.pop(); // a trailing comma
        }
        if args.len() == 2 {
            out.push(args[1].split_whitespace().collect());
        }
    }
    out
}

/// The agent's errors are types that keep their context, not strings.
#[test]
fn no_string_errors_in_the_agent() {
    let mut hits = Vec::new();
    for (file, text) in rust_sources() {
        if !file.starts_with("agent/src/") {
            continue;
        }
        for error in result_error_types(&text) {
            if ["String", "std::string::String", "&str", "&'staticstr"].contains(&error.as_str()) {
                hits.push(format!("{file}: Result<_, {error}>"));
            }
        }
    }
    assert!(hits.is_empty(), "string errors: {hits:#?}");
    // The rule sees what it is meant to see.
    let sample = "fn a() -> Result<(), String> {}\nfn b() -> Result<\n    Vec<u8>,\n    String,\n> {}\nfn c() -> io::Result<String> {}\nfn d() -> Result<BTreeMap<String, u8>, E> {}";
    assert_eq!(result_error_types(sample), ["String", "String", "E"]);
}
