//! The consent file (`assent::consent::ConsentFile`): no panic, and a
//! file that parses renders to text that parses back to the same decisions.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

use assent::consent as file;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("/var/lib/assent/consent.toml");
    let Ok(parsed) = file::ConsentFile::parse(path, text) else {
        return;
    };
    let rendered = parsed.render();
    match file::ConsentFile::parse(path, &rendered) {
        Ok(again) => assert_eq!(again, parsed, "render round trip changed the decisions"),
        Err(e) => panic!("rendered consent file does not parse: {e}\n{rendered}"),
    }
});
