//! os-release (`assent_platform::os::parse_env_file`): no panic; every key kept is a
//! valid shell name and every bad line number is a line of the input.
#![no_main]

use assent_platform::os::parse_env_file;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let file = parse_env_file(data);
    let lines = data.split(|b| *b == b'\n').count();
    for (key, _) in &file.values {
        assert!(
            key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
            "{key:?}"
        );
        assert!(!key.starts_with(|c: char| c.is_ascii_digit()), "{key:?}");
    }
    assert!(file.bad_lines.windows(2).all(|w| w[0] < w[1]));
    assert!(file.bad_lines.iter().all(|n| (1..=lines).contains(n)));
    for key in [
        "ID",
        "NAME",
        "VERSION_ID",
        "PRETTY_NAME",
        "ID_LIKE",
        "BUILD_ID",
        "X",
    ] {
        let _ = file.get(key);
    }
});
