//! Claim matchers: `sub: me`, `{one_of: [..]}`, `{contains: admin}` on nested claim paths.

use serde_json::Value;

/// The claim at `path`: a top-level claim of exactly that name (so claims named like URLs
/// with dots work), else the dotted path walked through nested objects (`a.b.c`).
pub fn claim_at<'a>(claims: &'a Value, path: &str) -> Option<&'a Value> {
    if let Some(v) = claims.get(path) {
        return Some(v);
    }
    if !path.contains('.') {
        return None;
    }
    let mut cur = claims;
    for part in path.split('.') {
        cur = cur.as_object()?.get(part)?;
    }
    Some(cur)
}

/// A compiled claim matcher.
#[derive(Debug, Clone, PartialEq)]
pub enum ClaimMatcher {
    /// Equal to the value (numbers compare by value: `1` equals `1.0`).
    Equals(Value),
    /// Equal to one of the values.
    OneOf(Vec<Value>),
    /// An array holding the value, or a space-separated string holding the word.
    Contains(Value),
    /// Present (`true`) or absent (`false`).
    Exists(bool),
}

fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

impl ClaimMatcher {
    /// Does the claim (absent: `None`) satisfy the matcher?
    pub fn matches(&self, claim: Option<&Value>) -> bool {
        match self {
            ClaimMatcher::Exists(want) => claim.is_some_and(|c| !c.is_null()) == *want,
            ClaimMatcher::Equals(v) => claim.is_some_and(|c| json_eq(c, v)),
            ClaimMatcher::OneOf(vs) => claim.is_some_and(|c| vs.iter().any(|v| json_eq(c, v))),
            ClaimMatcher::Contains(v) => match claim {
                Some(Value::Array(items)) => items.iter().any(|i| json_eq(i, v)),
                Some(Value::String(s)) => v.as_str().is_some_and(|w| s.split_ascii_whitespace().any(|x| x == w)),
                _ => false,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn paths() {
        let c = json!({"sub": "me", "realm": {"roles": ["a", "b"]}, "https://x.io/team": "red", "n": 1});
        assert_eq!(claim_at(&c, "sub"), Some(&json!("me")));
        assert_eq!(claim_at(&c, "realm.roles"), Some(&json!(["a", "b"])));
        assert_eq!(claim_at(&c, "https://x.io/team"), Some(&json!("red")));
        assert_eq!(claim_at(&c, "realm.nope"), None);
        assert_eq!(claim_at(&c, "sub.x"), None);
        assert_eq!(claim_at(&c, "n.x.y"), None);
    }

    #[test]
    fn matchers() {
        let c = json!({"sub": "me", "roles": ["admin", "dev"], "scope": "read write", "lvl": 3});
        assert!(ClaimMatcher::Equals(json!("me")).matches(claim_at(&c, "sub")));
        assert!(!ClaimMatcher::Equals(json!("Me")).matches(claim_at(&c, "sub")));
        assert!(!ClaimMatcher::Equals(json!("me ")).matches(claim_at(&c, "sub")));
        assert!(ClaimMatcher::Equals(json!(3.0)).matches(claim_at(&c, "lvl")));
        assert!(!ClaimMatcher::Equals(json!("3")).matches(claim_at(&c, "lvl")));
        assert!(ClaimMatcher::OneOf(vec![json!("you"), json!("me")]).matches(claim_at(&c, "sub")));
        assert!(ClaimMatcher::Contains(json!("dev")).matches(claim_at(&c, "roles")));
        assert!(!ClaimMatcher::Contains(json!("de")).matches(claim_at(&c, "roles")));
        assert!(ClaimMatcher::Contains(json!("write")).matches(claim_at(&c, "scope")));
        assert!(!ClaimMatcher::Contains(json!("writ")).matches(claim_at(&c, "scope")));
        assert!(!ClaimMatcher::Contains(json!("me")).matches(claim_at(&c, "nope")));
        assert!(ClaimMatcher::Exists(false).matches(claim_at(&c, "nope")));
        assert!(ClaimMatcher::Exists(true).matches(claim_at(&c, "sub")));
        // An array claim never equals a scalar (no implicit "any element").
        assert!(!ClaimMatcher::Equals(json!("admin")).matches(claim_at(&c, "roles")));
    }

    proptest! {
        #[test]
        fn equals_is_exact_for_strings(a in ".{0,12}", b in ".{0,12}") {
            let c = json!({"k": a.clone()});
            prop_assert_eq!(ClaimMatcher::Equals(json!(b.clone())).matches(claim_at(&c, "k")), a == b);
        }

        #[test]
        fn contains_agrees_with_membership(items in proptest::collection::vec("[a-z]{1,4}", 0..6), probe in "[a-z]{1,4}") {
            let c = json!({"k": items.clone(), "s": items.join(" ")});
            let want = items.contains(&probe);
            prop_assert_eq!(ClaimMatcher::Contains(json!(probe.clone())).matches(claim_at(&c, "k")), want);
            prop_assert_eq!(ClaimMatcher::Contains(json!(probe.clone())).matches(claim_at(&c, "s")), want);
        }

        #[test]
        fn one_of_is_any_equals(vals in proptest::collection::vec("[a-c]{1,2}", 0..5), v in "[a-c]{1,2}") {
            let c = json!({"k": v.clone()});
            let m = ClaimMatcher::OneOf(vals.iter().map(|x| json!(x)).collect());
            prop_assert_eq!(m.matches(claim_at(&c, "k")), vals.contains(&v));
        }

        #[test]
        fn nested_paths_find_what_was_put(keys in proptest::collection::vec("[a-z]{1,5}", 1..5), leaf in any::<i64>()) {
            let mut v = json!(leaf);
            for k in keys.iter().rev() {
                v = json!({ k.clone(): v });
            }
            let path = keys.join(".");
            prop_assert_eq!(claim_at(&v, &path), Some(&json!(leaf)));
        }
    }
}
