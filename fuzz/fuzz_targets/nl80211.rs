//! nl80211 replies (`assent_platform::network_detail::fuzz_nl80211_reply`: the netlink
//! framing, the reply collector, and the family, interface, scan entry and station
//! parsers over every message): no panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let parsed = assent_platform::network_detail::fuzz_nl80211_reply(data);
    // At most: 2 collectors + (family, error, interface + ssid, scan entry + ssid,
    // station + mac) per message.
    assert!(parsed <= 2 * (data.len() / 16) + 8 * (data.len() / 16));
});
