//! Integrity-protected opaque tokens: bytes the gateway hands to a client and must get back
//! unmodified (the `requestState` of a multi-round-trip result). The token is the payload
//! followed by its HMAC-SHA256 tag, Base64url without padding; [`Sealer::open`] gives the
//! payload back only when the tag verifies (constant-time), so a client cannot forge or alter
//! one. The payload is not encrypted: put nothing secret in it.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::hmac;

/// Length of the tag appended to every payload.
const TAG_LEN: usize = 32;

/// Seals and opens tokens with one HMAC-SHA256 key.
pub struct Sealer {
    key: hmac::Key,
}

impl Sealer {
    /// A sealer with a fresh random key (tokens are valid in this process only).
    pub fn random() -> Self {
        let rng = ring::rand::SystemRandom::new();
        let key = hmac::Key::generate(hmac::HMAC_SHA256, &rng).expect("the system random generator works");
        Sealer { key }
    }

    /// A sealer with a given key (processes that share it accept each other's tokens).
    pub fn with_key(key: &[u8]) -> Self {
        Sealer {
            key: hmac::Key::new(hmac::HMAC_SHA256, key),
        }
    }

    /// `payload` with its tag, as a header- and JSON-safe string.
    pub fn seal(&self, payload: &[u8]) -> String {
        let tag = hmac::sign(&self.key, payload);
        let mut buf = Vec::with_capacity(payload.len() + TAG_LEN);
        buf.extend_from_slice(payload);
        buf.extend_from_slice(tag.as_ref());
        URL_SAFE_NO_PAD.encode(buf)
    }

    /// The payload of a token this key sealed; `None` for anything else.
    pub fn open(&self, token: &str) -> Option<Vec<u8>> {
        let mut buf = URL_SAFE_NO_PAD.decode(token).ok()?;
        if buf.len() < TAG_LEN {
            return None;
        }
        let at = buf.len() - TAG_LEN;
        hmac::verify(&self.key, &buf[..at], &buf[at..]).ok()?;
        buf.truncate(at);
        Some(buf)
    }
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(<key>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_rejections() {
        let s = Sealer::random();
        let t = s.seal(b"hello");
        assert_eq!(s.open(&t).as_deref(), Some(&b"hello"[..]));
        // Another key, a changed character, an appended suffix, a truncation: all refused.
        assert_eq!(Sealer::random().open(&t), None);
        let mut chars: Vec<char> = t.chars().collect();
        chars[2] = if chars[2] == 'A' { 'B' } else { 'A' };
        assert_eq!(s.open(&chars.into_iter().collect::<String>()), None);
        assert_eq!(s.open(&format!("{t}-TAMPERED")), None);
        assert_eq!(s.open(&t[..t.len() - 4]), None);
        assert_eq!(s.open(""), None);
        // A shared key opens the other's tokens.
        let (a, b) = (Sealer::with_key(b"k"), Sealer::with_key(b"k"));
        assert_eq!(b.open(&a.seal(b"x")).as_deref(), Some(&b"x"[..]));
    }
}
