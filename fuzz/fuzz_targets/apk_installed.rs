//! The apk database (`assent_platform::software::parse_apk_installed`): no panic; never
//! more packages than lines.
#![no_main]

use assent_platform::software::parse_apk_installed;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(db) = parse_apk_installed(data) {
        let lines = data.split(|b| *b == b'\n').count();
        assert!(db.packages.len() <= lines);
        for p in &db.packages {
            assert!(!p.name.is_empty());
        }
    }
});
