//! The ModemManager reader against a real `dbus-daemon` (a private system bus with its
//! own config) and a fake ModemManager on it (`fixtures/dbus/fake_modemmanager.py`,
//! dbus-python), well behaved and misbehaving.

// Test helpers outside `#[test]` functions fail loudly too.
#![allow(clippy::unwrap_used, clippy::panic)]

use assent_platform::cellular::{
    self, CellularOptions, Modem, ModemCell, RadioSignal, ServingCell,
};
use assent_platform::{network_detail, Field, Root};
use std::path::Path;
use std::time::{Duration, Instant};

use assent_testkit::bus::{calls, Bus};

fn options(bus: &Bus) -> CellularOptions {
    CellularOptions {
        bus_path: Some(bus.socket.to_str().unwrap().to_string()),
        timeout: Duration::from_millis(800),
        cell_ids: true,
    }
}

fn expected_modem() -> Modem {
    Modem {
        id: "3".into(),
        interface: Field::Present("wwan0".into()),
        operator_name: Field::Present("Swisscom".into()),
        mcc: Field::Present("228".into()),
        mnc: Field::Present("01".into()),
        access_technologies: Field::Present(vec!["lte".into()]),
        registration: Field::Present("roaming".into()),
        signal_quality_percent: Field::Present(71),
    }
}

fn expected_cell(tac: Option<&str>) -> ModemCell {
    ModemCell {
        id: "3".into(),
        serving_cell: Field::Present(ServingCell {
            mcc: "228".into(),
            mnc: "01".into(),
            lac: None,
            cell_id: "1A2B3C4".into(),
            tac: tac.map(str::to_string),
        }),
        lte: Field::Present(RadioSignal {
            rssi_dbm: Some(-65),
            rsrp_dbm: Some(-95),
            rsrq_db: Some(-11),
            snr_db: Some(12),
        }),
        nr5g: Field::Absent,
    }
}

#[test]
fn a_modem_gives_exactly_the_fakes_values_and_no_identifiers() {
    let bus = Bus::start();
    let (_mm, log) = bus.fake_modemmanager("normal");
    let live = Root::live();
    let modems = cellular::read_modems(&live, &options(&bus));
    assert_eq!(modems, Field::Present(vec![expected_modem()]));
    let cells = cellular::read_cells(&live, &options(&bus));
    assert_eq!(cells, Field::Present(vec![expected_cell(Some("4D2"))]));
    let json = format!(
        "{}{}",
        serde_json::to_string(&modems).unwrap(),
        serde_json::to_string(&cells).unwrap()
    );
    for secret in [
        "356938035643809",
        "a1b2c3d4e5f6",
        "+41791234567",
        "SIM",
        "Quectel",
        "46.2",
    ] {
        assert!(!json.contains(secret), "{secret} leaked: {json}");
    }
    assert_eq!(
        calls(&log),
        ["GetManagedObjects", "GetManagedObjects", "GetLocation"]
    );
}

#[test]
fn the_four_field_location_form_has_no_tac() {
    let bus = Bus::start();
    let (_mm, _log) = bus.fake_modemmanager("four-field");
    let cells = cellular::read_cells(&Root::live(), &options(&bus));
    assert_eq!(cells, Field::Present(vec![expected_cell(None)]));
}

#[test]
fn with_cell_ids_off_the_location_is_never_read() {
    let bus = Bus::start();
    let (_mm, log) = bus.fake_modemmanager("normal");
    let options = CellularOptions {
        cell_ids: false,
        ..options(&bus)
    };
    let cells = cellular::read_cells(&Root::live(), &options);
    let mut expected = expected_cell(None);
    expected.serving_cell = Field::Absent;
    assert_eq!(cells, Field::Present(vec![expected]));
    assert_eq!(calls(&log), ["GetManagedObjects"]);
}

#[test]
fn a_refused_location_read_is_denied() {
    let bus = Bus::start();
    let (_mm, _log) = bus.fake_modemmanager("denied");
    let Field::Present(cells) = cellular::read_cells(&Root::live(), &options(&bus)) else {
        panic!("modems missing")
    };
    assert_eq!(cells[0].serving_cell, Field::Denied);
    assert!(cells[0].lte.is_present());
}

#[test]
fn no_modem_no_modemmanager_and_no_bus_are_absent() {
    let bus = Bus::start();
    let live = Root::live();
    // Nothing owns the name; NO_AUTO_START means the bus does not try to start it.
    assert_eq!(cellular::read_modems(&live, &options(&bus)), Field::Absent);
    assert_eq!(cellular::read_cells(&live, &options(&bus)), Field::Absent);
    let (_mm, _log) = bus.fake_modemmanager("no-modem");
    assert_eq!(cellular::read_modems(&live, &options(&bus)), Field::Absent);
    let nowhere = CellularOptions {
        bus_path: Some("/nonexistent/system_bus_socket".into()),
        ..options(&bus)
    };
    assert_eq!(cellular::read_modems(&live, &nowhere), Field::Absent);
    // A fixture root never touches the bus.
    let fixture = Root::at(Path::new(env!("CARGO_MANIFEST_DIR")));
    assert_eq!(
        cellular::read_modems(&fixture, &options(&bus)),
        Field::Absent
    );
}

fn malformed_within_the_deadline(mode: &str, reason: &str) {
    let bus = Bus::start();
    let (_mm, _log) = bus.fake_modemmanager(mode);
    let started = Instant::now();
    let modems = cellular::read_modems(&Root::live(), &options(&bus));
    let elapsed = started.elapsed();
    match &modems {
        Field::Malformed(r) => assert!(r.contains(reason), "{mode}: {r}"),
        other => panic!("{mode}: expected malformed, got {other:?}"),
    }
    // The deadline is 800 ms; the slow fake sleeps 5 s.
    assert!(elapsed < Duration::from_secs(3), "{mode} took {elapsed:?}");
    let detail = network_detail::read(&Root::live(), false, &options(&bus));
    assert!(
        matches!(detail.modems, Field::Malformed(_)),
        "{mode}: {:?}",
        detail.modems
    );
}

#[test]
fn a_slow_modemmanager_times_out() {
    malformed_within_the_deadline("slow", "did not answer in time");
}

#[test]
fn a_reply_of_the_wrong_signature_is_malformed() {
    malformed_within_the_deadline("wrong-signature", "wrong signature \"a{sv}\"");
}

#[test]
fn a_huge_reply_is_refused_unread() {
    malformed_within_the_deadline("huge", "size limit");
}

#[test]
fn deep_nesting_is_refused() {
    malformed_within_the_deadline("deep", "nested too deeply");
}
