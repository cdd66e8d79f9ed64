//! Tests of the protocol types: round trips in both encodings over fixture facts, and
//! strict decoding of hostile bytes.

use super::*;
use assent_platform::{Facts, ReadOptions, Root};

fn fixture(name: &str) -> Root {
    Root::at(format!(
        "{}/../tests/fixtures/roots/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
}

fn pseudonym() -> Pseudonym {
    Pseudonym::parse("abcdefghijklmnopqrstuvwxyz").unwrap()
}

/// Every payload type, with realistic contents read from a fixture root.
fn payloads(root: &str) -> Vec<Payload> {
    let root = fixture(root);
    let mut out = vec![
        Payload::DeviceId(DeviceIdentity {
            pseudonym: pseudonym(),
            derivation: Derivation::HardwareDeviceSecret,
            sources: vec!["machine_id".into()],
        }),
        Payload::AppEvent(AppEvent {
            name: "door_opened".into(),
            attrs: BTreeMap::from([
                ("door".into(), AttrValue::Text("north".into())),
                ("count".into(), AttrValue::Int(3)),
                ("ok".into(), AttrValue::Bool(true)),
                ("temp_c".into(), AttrValue::Float(21.5)),
            ]),
        }),
    ];
    for category in Category::READABLE {
        match assent_platform::read(category, &root, &ReadOptions::default()) {
            Some(Facts::Hardware(f)) => out.push(Payload::Hardware(Box::new(f))),
            Some(Facts::Os(f)) => out.push(Payload::Os(Box::new(f))),
            Some(Facts::Network(f)) => out.push(Payload::Network(Box::new(f))),
            Some(Facts::NetworkDetail(f)) => out.push(Payload::NetworkDetail(Box::new(f))),
            Some(Facts::Location(f)) => out.push(Payload::Location(Box::new(f))),
            Some(Facts::Software(f)) => out.push(Payload::Software(Box::new(f))),
            _ => {}
        }
    }
    out.extend(package_lists());
    out
}

fn package_lists() -> Vec<Payload> {
    let package = software::Package {
        name: "libssl3".into(),
        version: "3.0.15-1~deb12u1".into(),
        architecture: Some("amd64".into()),
    };
    let digest = package_list_digest(std::slice::from_ref(&package));
    vec![
        Payload::Packages(Box::new(PackageList {
            list_id: 0xfeed_beef,
            digest,
            package_count: 1,
            change: PackageChange::Part {
                index: 0,
                parts: 1,
                packages_deflate: vec![1, 2, 3, 250],
            },
        })),
        Payload::Packages(Box::new(PackageList {
            list_id: u64::MAX,
            digest,
            package_count: 1,
            change: PackageChange::Delta {
                base: 0xfeed_beef,
                removed: vec![package_hash(&package), 1],
                added: vec![package],
            },
        })),
    ]
}

#[test]
fn package_parts_must_be_numbered_within_their_count() {
    for (index, parts) in [(0, 0), (1, 1), (5, 3), (0, MAX_PACKAGE_PARTS + 1)] {
        let payload = Payload::Packages(Box::new(PackageList {
            list_id: 1,
            digest: [0; 32],
            package_count: 0,
            change: PackageChange::Part {
                index,
                parts,
                packages_deflate: Vec::new(),
            },
        }));
        let b = batch(vec![Record::Event(Event {
            seq: 1,
            category: Category::Software,
            kind: "packages".into(),
            wall_time_ms: 0,
            boot_id: BootId::default(),
            monotonic_ns: 0,
            payload,
        })]);
        for encoding in [Encoding::Postcard, Encoding::Json] {
            let err = decode_batch(&encode(&b, encoding).unwrap(), encoding, 100).unwrap_err();
            assert!(err.0.contains("package part"), "{err}");
        }
    }
}

#[test]
fn the_list_digest_is_postcards_encoding_of_the_sorted_list() {
    let list: Vec<software::Package> = (0..200)
        .map(|i| software::Package {
            name: format!("p{i:03}"),
            version: "1".into(),
            architecture: (i % 2 == 0).then(|| "all".to_string()),
        })
        .collect();
    let whole = postcard::to_stdvec(&list).unwrap();
    let expected = ring::digest::digest(&ring::digest::SHA256, &whole);
    assert_eq!(&package_list_digest(&list)[..], expected.as_ref());
    assert_ne!(package_hash(&list[0]), package_hash(&list[1]));
    let mut by_hand = Vec::new();
    encode_packages(&list, &mut by_hand);
    assert_eq!(by_hand, whole);
    let long = software::Package {
        name: "n".repeat(300),
        version: String::new(),
        architecture: Some("a".repeat(20_000)),
    };
    let mut by_hand = Vec::new();
    encode_packages(std::slice::from_ref(&long), &mut by_hand);
    assert_eq!(by_hand, postcard::to_stdvec(&vec![long]).unwrap());
}

fn batch(records: Vec<Record>) -> Batch {
    let first_seq = records.first().map_or(1, Record::seq);
    let last_seq = records.last().map_or(1, Record::seq);
    Batch {
        version: PROTOCOL_VERSION,
        device: pseudonym(),
        buffer_id: 7,
        first_seq,
        last_seq,
        records,
    }
}

fn sample_batch(root: &str) -> Batch {
    let mut records: Vec<Record> = payloads(root)
        .into_iter()
        .enumerate()
        .map(|(i, payload)| {
            Record::Event(Event {
                seq: 10 + i as u64,
                category: payload.category(),
                kind: "snapshot".into(),
                wall_time_ms: 1_795_000_000_000,
                boot_id: BootId([0x5a; 16]),
                monotonic_ns: 12_345_678,
                payload,
            })
        })
        .collect();
    records.push(Record::Gap(Gap {
        seq: 40,
        first_seq: 30,
        last_seq: 33,
        count: 4,
        reason: GapReason::Evicted,
        category: Some(Category::Software),
    }));
    records.push(Record::Consent(ConsentChange {
        seq: 41,
        observed_at: "2026-11-22T10:00:00Z".into(),
        category: Category::Location,
        active: false,
        state: "refused".into(),
        by: Some("owner".into()),
        at: Some("2026-11-22T10:00:00Z".into()),
        policy_version: 1,
    }));
    batch(records)
}

#[test]
fn batches_round_trip_in_both_encodings() {
    for root in [
        "rpi4-raspios64",
        "x86-gateway",
        "yocto-opkg",
        "container",
        "garbage",
    ] {
        let original = sample_batch(root);
        for encoding in [Encoding::Postcard, Encoding::Json] {
            let bytes = encode(&original, encoding).unwrap();
            let decoded = decode_batch(&bytes, encoding, 10_000)
                .unwrap_or_else(|e| panic!("{root} {encoding:?}: {e}"));
            assert_eq!(decoded, original, "{root} {encoding:?}");
        }
    }
}

#[test]
fn stored_payloads_round_trip() {
    for payload in payloads("x86-gateway") {
        let bytes = payload.to_postcard().unwrap();
        assert_eq!(Payload::from_postcard(&bytes).unwrap(), payload);
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(Payload::from_postcard(&longer).is_err());
    }
}

#[test]
fn json_is_readable() {
    let bytes = encode(&sample_batch("rpi4-raspios64"), Encoding::Json).unwrap();
    let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(value["version"], 1);
    assert_eq!(value["device"], "abcdefghijklmnopqrstuvwxyz");
    let first = &value["records"][0]["event"];
    assert_eq!(first["boot_id"], "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a");
    assert_eq!(first["category"], "device_id");
}

#[test]
fn unknown_versions_are_rejected_clearly() {
    let mut b = sample_batch("container");
    b.version = 2;
    for encoding in [Encoding::Postcard, Encoding::Json] {
        let err = decode_batch(&encode(&b, encoding).unwrap(), encoding, 100).unwrap_err();
        assert!(err.0.contains("unsupported protocol version 2"), "{err}");
    }
    let err = decode_batch(br#"{"device":"x"}"#, Encoding::Json, 100).unwrap_err();
    assert!(err.0.contains("missing field `version`"), "{err}");
}

#[test]
fn hostile_bodies_are_rejected_not_panicked_on() {
    let good = encode(&sample_batch("x86-gateway"), Encoding::Postcard).unwrap();
    // Every truncation and some garbage.
    for cut in 0..good.len() {
        assert!(
            decode_batch(&good[..cut], Encoding::Postcard, 100).is_err(),
            "cut {cut}"
        );
    }
    let mut trailing = good.clone();
    trailing.extend_from_slice(b"xx");
    let err = decode_batch(&trailing, Encoding::Postcard, 100).unwrap_err();
    assert!(err.0.contains("trailing"), "{err}");
    let mut state = 0x1234_5678_u32;
    for _ in 0..2000 {
        let len = (state % 300) as usize;
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                (state & 0xff) as u8
            })
            .collect();
        let _ = decode_batch(&bytes, Encoding::Postcard, 100);
        let _ = decode_batch(&bytes, Encoding::Json, 100);
    }
    // A length prefix claiming a huge vector must not allocate it.
    let mut huge = vec![1u8, 0];
    huge.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
    assert!(decode_batch(&huge, Encoding::Postcard, 100).is_err());
}

#[test]
fn batch_rules_are_enforced() {
    let ok = sample_batch("container");
    type Mutation = Box<dyn Fn(&mut Batch)>;
    let cases: Vec<(Mutation, &str)> = vec![
        (Box::new(|b| b.first_seq = 0), "bad seq range"),
        (Box::new(|b| b.last_seq = b.first_seq - 1), "bad seq range"),
        (Box::new(|b| b.last_seq = 20), "outside the batch range"),
        (
            Box::new(|b| b.records.swap(0, 1)),
            "not strictly increasing",
        ),
        (
            Box::new(|b| {
                if let Record::Event(e) = &mut b.records[0] {
                    e.category = Category::Location;
                }
            }),
            "payload of device_id under category location",
        ),
    ];
    for (mutate, expected) in cases {
        let mut b = ok.clone();
        mutate(&mut b);
        let err = validate_batch(&b, 100).unwrap_err();
        assert!(err.0.contains(expected), "{err} (expected {expected})");
    }
    let err = validate_batch(&ok, 3).unwrap_err();
    assert!(err.0.contains("more than the limit of 3"), "{err}");
}

#[test]
fn strict_json_rejects_unknown_fields_and_bad_pseudonyms() {
    let mut value = serde_json::to_value(sample_batch("container")).unwrap();
    value["extra"] = serde_json::json!(1);
    let err = decode_batch(&serde_json::to_vec(&value).unwrap(), Encoding::Json, 100).unwrap_err();
    assert!(err.0.contains("unknown field `extra`"), "{err}");
    let mut value = serde_json::to_value(sample_batch("container")).unwrap();
    value["device"] = serde_json::json!("4e1b8f3a9c2d47e6b05a1f7c8d3e92b4");
    let err = decode_batch(&serde_json::to_vec(&value).unwrap(), Encoding::Json, 100).unwrap_err();
    assert!(err.0.contains("pseudonym"), "{err}");
}

#[test]
fn erasure_requests_decode_strictly() {
    let request = ErasureRequest {
        version: 1,
        device: pseudonym(),
        categories: Some(vec![Category::Location]),
    };
    for encoding in [Encoding::Postcard, Encoding::Json] {
        let bytes = encode(&request, encoding).unwrap();
        assert_eq!(decode_erasure(&bytes, encoding).unwrap(), request);
    }
    let empty = ErasureRequest {
        categories: Some(vec![]),
        ..request
    };
    assert!(decode_erasure(&encode(&empty, Encoding::Json).unwrap(), Encoding::Json).is_err());
}

#[test]
fn content_types_are_recognised() {
    assert_eq!(
        Encoding::from_content_type("application/json; charset=utf-8"),
        Some(Encoding::Json)
    );
    assert_eq!(
        Encoding::from_content_type(CONTENT_TYPE_POSTCARD),
        Some(Encoding::Postcard)
    );
    assert_eq!(Encoding::from_content_type("text/plain"), None);
}

/// Found by the `wire_batch_postcard` fuzz target: a float attribute (21.5 with its
/// lowest bits set) came back from the batch's JSON form one unit in the last place off,
/// because serde_json parsed floats approximately; `float_roundtrip` makes it exact.
#[test]
fn fuzz_regression_float_survives_postcard_to_json_and_back() {
    let bytes = include_bytes!("../tests/fuzz/batch-postcard-float-via-json.bin");
    let batch = decode_batch(bytes, Encoding::Postcard, 1000).unwrap();
    let postcard = encode(&batch, Encoding::Postcard).unwrap();
    let json = encode(&batch, Encoding::Json).unwrap();
    let from_json = decode_batch(&json, Encoding::Json, 1000).unwrap();
    assert_eq!(from_json, batch);
    assert_eq!(encode(&from_json, Encoding::Postcard).unwrap(), postcard);
    // The same property on the value alone, across awkward floats.
    for f in [
        f64::from_bits(0x4035_8000_0000_0bff),
        0.1 + 0.2,
        f64::MIN_POSITIVE,
        5e-324,
        f64::MAX,
        -1.234_567_890_123_456_7e-300,
    ] {
        let json = serde_json::to_vec(&AttrValue::Float(f)).unwrap();
        let back: AttrValue = serde_json::from_slice(&json).unwrap();
        assert_eq!(
            back,
            AttrValue::Float(f),
            "{}",
            String::from_utf8_lossy(&json)
        );
    }
}

#[test]
fn erasure_requests_of_both_versions() {
    let v1 = ErasureRequest {
        version: PROTOCOL_VERSION,
        device: pseudonym(),
        categories: Some(vec![Category::AppEvents]),
    };
    let v2 = ErasureRequestV2 {
        version: PROTOCOL_VERSION_FENCED_ERASURE,
        device: pseudonym(),
        categories: None,
        fences: vec![
            BufferFence {
                buffer_id: u64::MAX,
                last_seq: 40,
            },
            BufferFence {
                buffer_id: 3,
                last_seq: 7,
            },
        ],
    };
    for encoding in [Encoding::Postcard, Encoding::Json] {
        let got = decode_erasure_any(&encode(&v1, encoding).unwrap(), encoding).unwrap();
        assert_eq!(
            (got.version, got.categories, got.fences),
            (1, v1.categories.clone(), vec![])
        );
        let bytes = encode(&v2, encoding).unwrap();
        let got = decode_erasure_any(&bytes, encoding).unwrap();
        assert_eq!((got.version, got.fences), (2, v2.fences.clone()));
        // What a v1-only collector answers: the agent reads it as "fall back to v1".
        let err = decode_erasure(&bytes, encoding).unwrap_err();
        assert!(is_unsupported_version(&err.0), "{err}");
        assert_eq!(
            err.0,
            "unsupported protocol version 2 (this server speaks 1)"
        );
        let mut twice = v2.clone();
        twice.fences[1].buffer_id = u64::MAX;
        let err = decode_erasure_any(&encode(&twice, encoding).unwrap(), encoding).unwrap_err();
        assert!(err.0.contains("two fences for one buffer"), "{err}");
    }
    let err = decode_erasure_any(br#"{"version":3}"#, Encoding::Json).unwrap_err();
    assert_eq!(
        err.0,
        "unsupported protocol version 3 (this server speaks 1 and 2)"
    );
}

#[test]
fn fuzz_regression_non_finite_floats_are_refused_in_both_encodings() {
    // Found by `wire_batch_postcard`: a postcard float attribute that is NaN decoded, but
    // its JSON form (`null`) did not, so the collector would have stored a payload it
    // cannot read back.
    let bytes = include_bytes!("../tests/fuzz/batch-postcard-nan-float.bin");
    let error = decode_batch(bytes, Encoding::Postcard, 1000).unwrap_err();
    assert!(
        error.to_string().contains("is not a finite number"),
        "{error}"
    );
    let event = |seq: u64, payload: Payload| {
        Record::Event(Event {
            seq,
            category: payload.category(),
            kind: "snapshot".into(),
            wall_time_ms: 1_795_000_000_000,
            boot_id: BootId([0x5a; 16]),
            monotonic_ns: 1,
            payload,
        })
    };
    let attr = |f: f64| {
        Payload::AppEvent(AppEvent {
            name: "reading".into(),
            attrs: BTreeMap::from([("value".into(), AttrValue::Float(f))]),
        })
    };
    let fix = |latitude_deg: f64, speed: f64| {
        Payload::Location(Box::new(location::Location {
            gpsd: assent_platform::Field::Present(location::GpsdState::Connected),
            fix: assent_platform::Field::Present(location::Fix {
                mode: location::FixMode::ThreeD,
                latitude_deg,
                longitude_deg: 13.4,
                altitude_m: assent_platform::Field::Absent,
                speed_mps: assent_platform::Field::Present(speed),
                track_deg: assent_platform::Field::Absent,
                time: assent_platform::Field::Absent,
                horizontal_error_m: assent_platform::Field::Absent,
            }),
        }))
    };
    for (payload, field) in [
        (attr(f64::NAN), "attribute `value`"),
        (attr(f64::INFINITY), "attribute `value`"),
        (attr(f64::NEG_INFINITY), "attribute `value`"),
        (fix(f64::NAN, 1.0), "location fix `latitude_deg`"),
        (fix(52.5, f64::INFINITY), "location fix `speed_mps`"),
    ] {
        let bytes = encode(&batch(vec![event(1, payload)]), Encoding::Postcard).unwrap();
        let error = decode_batch(&bytes, Encoding::Postcard, 1000).unwrap_err();
        assert!(
            error
                .to_string()
                .contains(&format!("event 1: {field} is not a finite number")),
            "{error}"
        );
    }
    // Finite extremes still pass, in both encodings.
    for payload in [attr(f64::MAX), attr(-0.0), fix(-90.0, 0.0)] {
        let b = batch(vec![event(1, payload)]);
        for encoding in [Encoding::Postcard, Encoding::Json] {
            let bytes = encode(&b, encoding).unwrap();
            assert_eq!(decode_batch(&bytes, encoding, 1000).unwrap(), b);
        }
    }
}
