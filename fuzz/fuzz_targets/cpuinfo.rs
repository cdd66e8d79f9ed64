//! /proc/cpuinfo (`assent_platform::hardware::parse_cpuinfo`): no panic, the derived
//! names too, and the result survives its own JSON round trip.
#![no_main]

use assent_platform::hardware::{parse_cpuinfo, CpuInfo};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let info = parse_cpuinfo(data);
    let _ = info.cpu_model();
    let _ = info.cpu_vendor();
    let json = serde_json::to_vec(&info).expect("cpuinfo serializes");
    let again: CpuInfo = serde_json::from_slice(&json).expect("cpuinfo deserializes");
    assert_eq!(again, info);
});
