//! `assent_confcheck::Document::parse` and a walk that calls every getter of `Table`
//! (recursing into sub-tables, leaving some keys unasked so the unknown-key path runs):
//! no panic, and every diagnostic has a position inside the text.
#![no_main]

use assent_confcheck::{Document, StringOrTable, Table};
use libfuzzer_sys::fuzz_target;
use std::path::Path;

const CHOICES: &[&str] = &["allow", "defer", "deny", "info", "debug"];

fn walk(table: &mut Table<'_>, depth: usize, salt: usize) {
    let keys: Vec<String> = table.keys().iter().map(|k| k.to_string()).collect();
    for (i, key) in keys.iter().enumerate() {
        let _ = table.contains(key);
        match (i + salt) % 14 {
            0 => drop(table.string(key)),
            1 => drop(table.string_with(key, |s| s.parse::<u32>().map_err(|e| e.to_string()))),
            2 => drop(table.bool(key)),
            3 => drop(table.u64(key, 0..=u64::MAX)),
            4 => drop(table.u64(key, 1..=65_535)),
            5 => drop(table.u64_array(key, 0..=100)),
            6 => drop(table.path(key)),
            7 => drop(table.string_array(key)),
            8 => drop(table.choice(key, CHOICES)),
            9 | 10 => {
                let child = table.table(key);
                let child = if i % 2 == 0 {
                    child.map(|c| c.with_noun("category"))
                } else {
                    child
                };
                if let Some(mut child) = child.filter(|_| depth < 8) {
                    walk(&mut child, depth + 1, salt + i);
                }
            }
            11 => match table.string_or_table(key, "a string or a table") {
                Some(StringOrTable::Table(mut child)) if depth < 8 => {
                    walk(&mut child, depth + 1, salt + i)
                }
                Some(StringOrTable::String(s)) => table.error(key, &s),
                _ => {}
            },
            12 => table.missing(key),
            // 13: not asked, so reported as unknown with the nearest asked key.
            _ => {}
        }
    }
    table.error_here("checked");
    let _ = table.name();
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let lines = text.split('\n').count();
    let salt = data.first().map_or(0, |b| usize::from(*b));
    let result = match Document::parse(Path::new("conf/fuzz.toml"), text) {
        Ok(doc) => {
            {
                let mut root = doc.root();
                walk(&mut root, 0, salt);
            }
            doc.report(text.len() / 2, "a report in the middle");
            doc.finish()
        }
        Err(e) => Err(e),
    };
    if let Err(diagnostics) = result {
        for d in diagnostics.iter() {
            assert!(d.line >= 1 && d.line <= lines, "line {} of {lines}", d.line);
            assert!(d.column >= 1);
            let _ = d.to_string();
        }
    }
});
