//! dpkg and opkg status databases (`assent_platform::software::parse_status`): no
//! panic; never more packages than stanzas.
#![no_main]

use assent_platform::software::parse_status;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(db) = parse_status(data) {
        let lines = data.split(|b| *b == b'\n').count();
        assert!(db.packages.len() <= lines);
        for p in &db.packages {
            assert!(!p.name.is_empty());
        }
    }
});
