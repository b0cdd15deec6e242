//! The token parser: shape and size checks and the JOSE header, on arbitrary bytes. It must
//! never panic, and `alg: none` must never parse as an accepted algorithm.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else { return };
    if let Ok(h) = mcpgate_auth::parse_header(token) {
        assert!(token.len() <= mcpgate_auth::MAX_TOKEN_BYTES);
        let _ = h.kid;
    }
    let _ = mcpgate_auth::split_token(token);
});
