//! The agent's operator config (`assent::config`) through `Config::parse`: no panic, and every error has a position
//! inside the text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

use assent::config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let lines = text.split('\n').count();
    match config::Config::parse(Path::new("/etc/assent/config.toml"), text) {
        Ok(config) => {
            let _ = config.warnings();
        }
        Err(diagnostics) => {
            assert!(!diagnostics.is_empty(), "an error with no diagnostic");
            for d in diagnostics.iter() {
                assert!(d.line >= 1 && d.line <= lines, "line {} of {lines}", d.line);
                assert!(d.column >= 1);
                let _ = d.to_string();
            }
        }
    }
});
