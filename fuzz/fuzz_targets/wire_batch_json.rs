//! The collector's batch decoding, JSON (`assent_wire::decode_batch`): no panic; a
//! decoded batch re-encodes to bytes that decode to the same batch, in JSON and in
//! postcard.
#![no_main]

use assent_wire::{decode_batch, encode, Encoding};
use libfuzzer_sys::fuzz_target;

const MAX_RECORDS: usize = 10_000;

fuzz_target!(|data: &[u8]| {
    let Ok(batch) = decode_batch(data, Encoding::Json, MAX_RECORDS) else {
        return;
    };
    let once = encode(&batch, Encoding::Json).expect("a decoded batch encodes");
    let again = decode_batch(&once, Encoding::Json, MAX_RECORDS).unwrap_or_else(|e| {
        panic!(
            "the re-encoded batch does not decode: {e}: {}",
            String::from_utf8_lossy(&once)
        )
    });
    assert_eq!(encode(&again, Encoding::Json).expect("encodes"), once);
    let postcard = encode(&batch, Encoding::Postcard).expect("a decoded batch encodes as postcard");
    let from_postcard = decode_batch(&postcard, Encoding::Postcard, MAX_RECORDS)
        .unwrap_or_else(|e| panic!("the batch as postcard does not decode: {e}"));
    assert_eq!(
        encode(&from_postcard, Encoding::Json).expect("encodes"),
        once
    );
});
