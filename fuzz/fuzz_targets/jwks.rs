//! The JWKS parser (a JWK Set or one JWK) on arbitrary text: never panics, never yields a
//! symmetric key.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(set) = mcpgate_auth::jwks::KeySet::parse_text(text) {
        for k in &set.keys {
            assert_ne!(format!("{:?}", k.family), "Hmac");
        }
    }
});
