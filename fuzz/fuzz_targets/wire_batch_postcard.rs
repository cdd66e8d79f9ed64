//! The collector's batch decoding, postcard (`assent_wire::decode_batch`), and the
//! agent's stored payloads (`Payload::from_postcard`): no panic; a decoded batch
//! re-encodes to bytes that decode to the same batch, in postcard and in JSON.
#![no_main]

use assent_wire::{decode_batch, encode, Encoding, Payload};
use libfuzzer_sys::fuzz_target;

const MAX_RECORDS: usize = 10_000;

fuzz_target!(|data: &[u8]| {
    if let Ok(payload) = Payload::from_postcard(data) {
        let bytes = payload.to_postcard().expect("a decoded payload encodes");
        let again = Payload::from_postcard(&bytes).expect("a re-encoded payload decodes");
        assert_eq!(again.to_postcard().expect("encodes"), bytes);
        let _ = payload.to_json();
    }
    let Ok(batch) = decode_batch(data, Encoding::Postcard, MAX_RECORDS) else {
        return;
    };
    let once = encode(&batch, Encoding::Postcard).expect("a decoded batch encodes");
    let again =
        decode_batch(&once, Encoding::Postcard, MAX_RECORDS).expect("a re-encoded batch decodes");
    assert_eq!(encode(&again, Encoding::Postcard).expect("encodes"), once);
    // One schema, two encodings: what postcard carried, JSON carries too.
    let json = encode(&batch, Encoding::Json).expect("a decoded batch encodes as JSON");
    let from_json = decode_batch(&json, Encoding::Json, MAX_RECORDS).unwrap_or_else(|e| {
        panic!(
            "the batch as JSON does not decode: {e}: {}",
            String::from_utf8_lossy(&json)
        )
    });
    assert_eq!(
        encode(&from_json, Encoding::Postcard).expect("encodes"),
        once
    );
});
