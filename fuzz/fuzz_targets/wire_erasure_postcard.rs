//! The collector's erasure decoding (postcard, `assent_wire::decode_erasure`), and the
//! agent's decoding of the collector's answers (`decode_batch_ack`,
//! `decode_erasure_ack`): no panic; a decoded request re-encodes to the same request.
#![no_main]

use assent_wire::{decode_batch_ack, decode_erasure, decode_erasure_ack, encode, Encoding};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = decode_batch_ack(data, Encoding::Postcard);
    let _ = decode_erasure_ack(data, Encoding::Postcard);
    let Ok(request) = decode_erasure(data, Encoding::Postcard) else {
        return;
    };
    for encoding in [Encoding::Postcard, Encoding::Json] {
        let bytes = encode(&request, encoding).expect("a decoded request encodes");
        let again = decode_erasure(&bytes, encoding)
            .unwrap_or_else(|e| panic!("the re-encoded request does not decode: {e}"));
        assert_eq!(again, request);
    }
});
