//! The lean front's request-head parser, `ssekit::lean::parse_head`, on arbitrary
//! bytes: no panic; a complete head's length is within the input, and parsing
//! the head alone gives the same head; any prefix of a complete head is
//! incomplete or an error, never another complete head; and what the demo's
//! route reads from a head (`Last-Event-ID` and the query) never panics either.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ssekit::Resume;
use ssekit::lean::parse_head;

fuzz_target!(|bytes: &[u8]| {
    let Ok(Some((parts, len))) = parse_head(bytes) else { return };
    assert!(len > 0 && len <= bytes.len(), "{len} of {}", bytes.len());
    assert_eq!(bytes[len - 1], b'\n', "a head ends with an empty line");
    let (again, again_len) = parse_head(&bytes[..len]).expect("the head alone").expect("complete");
    assert_eq!(again_len, len);
    assert_eq!((&again.method, &again.uri, again.version), (&parts.method, &parts.uri, parts.version));
    assert_eq!(again.headers, parts.headers);
    for cut in [len - 1, len / 2] {
        assert!(!matches!(parse_head(&bytes[..cut]), Ok(Some(_))), "a complete head within the head, at {cut}");
    }
    let _ = Resume::from_request(&parts.headers, parts.uri.query());
});
