//! Any bytes through the body parser and the normaliser: an answer or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nexkey::fulfillment::Operation;
use nexkey::nexway::{NexwayBody, normalise};

fuzz_target!(|bytes: &[u8]| {
    if let Ok(request) = NexwayBody::parse(bytes) {
        let _ = normalise::command(Operation::New, request);
    }
});
