//! Exposed names: `<target><sep><name>` prefixing, the 64-character client limit, and the
//! reverse lookup from an exposed name back to `(target, upstream name)`.
//!
//! Clients commonly require tool names to match `^[a-zA-Z0-9_-]{1,64}$`. A name that would be
//! longer, or that contains other characters, is rewritten deterministically: invalid
//! characters become `_` and the name is cut to leave room for `-` plus 8 hex digits of the
//! SHA-256 of the full name, so it stays unique and stable across restarts.

use sha2::{Digest, Sha256};

/// Longest exposed name.
pub const MAX_NAME: usize = 64;

fn valid_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// The exposed name for upstream `name` of `target` (`prefix` decides whether to prefix).
pub fn expose(target: &str, sep: &str, name: &str, prefix: bool) -> String {
    let full = if prefix {
        format!("{target}{sep}{name}")
    } else {
        name.to_owned()
    };
    if !full.is_empty() && full.len() <= MAX_NAME && full.chars().all(valid_char) {
        return full;
    }
    let digest = Sha256::digest(full.as_bytes());
    let suffix = hex::encode(&digest[..4]);
    let mut clean: String = full.chars().map(|c| if valid_char(c) { c } else { '_' }).collect();
    let keep = MAX_NAME - 1 - suffix.len();
    if clean.len() > keep {
        clean.truncate(keep);
    }
    format!("{clean}-{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixing_and_limits() {
        assert_eq!(expose("md", "_", "convert_to_markdown", true), "md_convert_to_markdown");
        assert_eq!(expose("md", "_", "convert_to_markdown", false), "convert_to_markdown");
        let long = "x".repeat(80);
        let a = expose("t", "_", &long, true);
        assert_eq!(a.len(), 64);
        assert_eq!(a, expose("t", "_", &long, true), "deterministic");
        assert_ne!(a, expose("u", "_", &long, true), "distinct targets stay distinct");
        let dotted = expose("t", "_", "get.user", true);
        assert!(dotted.starts_with("t_get_user-"), "{dotted}");
        assert!(dotted.chars().all(valid_char));
        assert_ne!(dotted, expose("t", "_", "get_user", true));
    }
}
