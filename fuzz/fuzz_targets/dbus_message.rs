//! D-Bus messages (`assent_platform::cellular::fuzz_dbus_message`: the size check, the
//! message parser with and without the property filter, and the ModemManager mappings
//! over what parsed): no panic, and nothing built from a message over the size cap.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let built = assent_platform::cellular::fuzz_dbus_message(data);
    // A value takes at least one byte of the message.
    assert!(built <= 1 + 6 * data.len());
});
