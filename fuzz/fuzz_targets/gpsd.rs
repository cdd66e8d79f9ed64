//! gpsd JSON (`assent_platform::location::parse_gpsd_line`): no panic; a fix taken
//! from a TPV report has its coordinates in range.
#![no_main]

use assent_platform::location::{parse_gpsd_line, GpsdMessage};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(GpsdMessage::Tpv(tpv)) = parse_gpsd_line(data) {
        if let Some(fix) = tpv.fix() {
            assert!((-90.0..=90.0).contains(&fix.latitude_deg), "{fix:?}");
            assert!((-180.0..=180.0).contains(&fix.longitude_deg), "{fix:?}");
        }
    }
});
