//! /proc/net/route (`assent_platform::network::parse_route`) and the default-route
//! choice over it: no panic; the default route is one of the parsed entries.
#![no_main]

use assent_platform::network::{default_ipv4, parse_route};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(routes) = parse_route(data) else {
        return;
    };
    assert!(routes.len() <= data.split(|b| *b == b'\n').count());
    if let Some(default) = default_ipv4(&routes) {
        assert!(routes.iter().any(|r| r.interface == default.interface));
    }
});
