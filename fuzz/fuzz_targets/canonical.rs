//! Any JSONPath list and body through the signature canonicaliser: valid JSON out, every path a
//! key, and the same text for the same input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nexkey::nexway::signature::{JsonPath, canonical, sign};

fuzz_target!(|input: &[u8]| {
    // First line: comma-separated paths; the rest: the body.
    let text = String::from_utf8_lossy(input);
    let (paths, body) = text.split_once('\n').unwrap_or((&text, "{}"));
    let paths: Vec<JsonPath> = paths
        .split(',')
        .filter_map(|p| JsonPath::parse(p).ok())
        .collect();
    let Ok(body) = serde_json::from_str::<serde_json::Value>(body) else {
        return;
    };
    let message = canonical(&body, &paths);
    let back: std::collections::BTreeMap<String, String> =
        serde_json::from_str(&message).expect("the canonical text is JSON");
    for path in &paths {
        assert!(back.contains_key(path.as_str()));
    }
    assert_eq!(message, canonical(&body, &paths));
    assert_eq!(sign("k", &message).len(), 64);
});
