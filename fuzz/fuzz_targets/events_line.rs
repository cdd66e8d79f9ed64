//! One line of the local events socket (`assent::events::parse`, with the limits from
//! `assent::config`): no panic; an event the plain-line path reads is what the general
//! parser reads; and an accepted event written back as a line parses to the same event.
#![no_main]

use assent_wire::{AppEvent, AttrValue};
use libfuzzer_sys::fuzz_target;

use assent::config;
use assent::events::{parse, plain};

/// The event as the line a program would send.
fn to_line(event: &AppEvent) -> Vec<u8> {
    let attrs: serde_json::Map<String, serde_json::Value> = event
        .attrs
        .iter()
        .map(|(k, v)| {
            let v = match v {
                AttrValue::Bool(b) => serde_json::Value::from(*b),
                AttrValue::Int(i) => serde_json::Value::from(*i),
                AttrValue::Float(f) => serde_json::Value::from(*f),
                AttrValue::Text(s) => serde_json::Value::from(s.as_str()),
            };
            (k.clone(), v)
        })
        .collect();
    let line = serde_json::json!({ "name": event.name, "attrs": attrs });
    serde_json::to_vec(&line).unwrap_or_default()
}

/// Floats are compared to within rounding: serde_json parses them fast, not exactly.
fn same(a: &AttrValue, b: &AttrValue) -> bool {
    match (a, b) {
        (AttrValue::Float(x), AttrValue::Float(y)) => {
            x == y || (x - y).abs() <= f64::EPSILON * 4.0 * x.abs().max(y.abs())
        }
        _ => a == b,
    }
}

fuzz_target!(|data: &[u8]| {
    let limits = parse::Limits::from_config(&config::EventsConfig::default());
    // The byte-by-byte path for plain lines reads exactly what serde_json's does.
    if let Some(plain) = plain::parse_plain(data, &limits) {
        assert_eq!(parse::parse_general(data, &limits), Ok(plain));
    }
    let Ok(event) = parse::parse_event_line(data, &limits) else {
        return;
    };
    assert!(event.attrs.len() <= limits.max_attributes);
    let line = to_line(&event);
    let roomy = parse::Limits {
        max_message_bytes: usize::MAX,
        max_attributes: usize::MAX,
    };
    let again = match parse::parse_event_line(&line, &roomy) {
        Ok(e) => e,
        Err(e) => panic!(
            "re-written event rejected: {e}: {}",
            String::from_utf8_lossy(&line)
        ),
    };
    assert_eq!(again.name, event.name);
    assert_eq!(again.attrs.len(), event.attrs.len());
    for ((k1, v1), (k2, v2)) in event.attrs.iter().zip(again.attrs.iter()) {
        assert_eq!(k1, k2);
        assert!(same(v1, v2), "{k1}: {v1:?} became {v2:?}");
    }
});
