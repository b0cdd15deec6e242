//! Resource patterns `target:name`, where `*` matches any run of characters.
//!
//! Only `*` is special (a `?` is common in URIs). Matching is exact and case-sensitive, on
//! the target name and the upstream's own name separately — never on the exposed, prefixed
//! name — so separator or prefix tricks in what a client sends cannot reach another target.

/// A compiled `target:name` pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    target: String,
    name: String,
}

impl Pattern {
    /// Parses `target:name`, or `*` for everything. The target part is everything before
    /// the first `:` (target names cannot contain one), so names and URIs may.
    pub fn parse(text: &str) -> Result<Pattern, String> {
        if text == "*" {
            return Ok(Pattern {
                target: "*".into(),
                name: "*".into(),
            });
        }
        let Some((target, name)) = text.split_once(':') else {
            return Err(format!(
                "`{text}` is not a `target:name` pattern (use `*` for every target or name)"
            ));
        };
        if target.is_empty() || name.is_empty() {
            return Err(format!("`{text}`: target and name must not be empty (use `*`)"));
        }
        Ok(Pattern {
            target: target.into(),
            name: name.into(),
        })
    }

    /// The target part.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The name part.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Does `(target, name)` match?
    pub fn matches(&self, target: &str, name: &str) -> bool {
        glob(self.target.as_bytes(), target.as_bytes()) && glob(self.name.as_bytes(), name.as_bytes())
    }
}

impl std::fmt::Display for Pattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.target, self.name)
    }
}

/// `*`-only glob over bytes (linear with backtracking to the last star).
pub(crate) fn glob(p: &[u8], s: &[u8]) -> bool {
    let (mut pi, mut si) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while si < s.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some(pi);
            mark = si;
            pi += 1;
        } else if pi < p.len() && p[pi] == s[si] {
            pi += 1;
            si += 1;
        } else if let Some(st) = star {
            pi = st + 1;
            mark += 1;
            si = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == b'*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parsing_and_matching() {
        let p = Pattern::parse("markitdown:convert_to_markdown").unwrap();
        assert!(p.matches("markitdown", "convert_to_markdown"));
        assert!(!p.matches("markitdown", "Convert_to_markdown"));
        assert!(!p.matches("markitdown2", "convert_to_markdown"));
        assert!(!p.matches("markitdown", "convert_to_markdown2"));
        assert!(!p.matches("mark", "itdown:convert_to_markdown"));
        let p = Pattern::parse("docs:file:///srv/*").unwrap();
        assert!(p.matches("docs", "file:///srv/a/b.md"));
        assert!(!p.matches("docs", "file:///etc/passwd"));
        assert!(Pattern::parse("*").unwrap().matches("x", "y"));
        assert!(Pattern::parse("a:*").unwrap().matches("a", ""));
        assert!(!Pattern::parse("a:*").unwrap().matches("a-b", "x"));
        assert!(Pattern::parse("*:echo").unwrap().matches("zz", "echo"));
        assert!(Pattern::parse("no-colon").is_err());
        assert!(Pattern::parse(":x").is_err());
        assert!(Pattern::parse("x:").is_err());
        // `?` is literal.
        assert!(Pattern::parse("a:q?x").unwrap().matches("a", "q?x"));
        assert!(!Pattern::parse("a:q?x").unwrap().matches("a", "qzx"));
    }

    fn regex_like(p: &str, s: &str) -> bool {
        // Reference implementation: recursive.
        fn go(p: &[u8], s: &[u8]) -> bool {
            match p.first() {
                None => s.is_empty(),
                Some(b'*') => (0..=s.len()).any(|i| go(&p[1..], &s[i..])),
                Some(c) => s.first() == Some(c) && go(&p[1..], &s[1..]),
            }
        }
        go(p.as_bytes(), s.as_bytes())
    }

    proptest! {
        #[test]
        fn glob_agrees_with_reference(p in "[ab*]{0,8}", s in "[ab]{0,10}") {
            prop_assert_eq!(glob(p.as_bytes(), s.as_bytes()), regex_like(&p, &s));
        }

        #[test]
        fn literal_patterns_match_only_themselves(a in "[a-zA-Z0-9_/.:-]{1,12}", b in "[a-zA-Z0-9_/.:-]{1,12}") {
            prop_assert_eq!(glob(a.as_bytes(), b.as_bytes()), a == b);
        }

        #[test]
        fn target_star_never_crosses_into_other_targets(t in "[a-z]{1,6}", other in "[a-z]{1,6}", n in "[a-z_]{1,8}") {
            let p = Pattern::parse(&format!("{t}:*")).unwrap();
            prop_assert_eq!(p.matches(&other, &n), t == other);
        }
    }
}
