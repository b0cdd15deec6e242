//! The policy engine: decisions, deny-wins, default deny, claim and CEL conditions, and the
//! bypass attempts issue 3 lists (names are matched exactly, per target).

use serde_json::json;

use super::*;
use crate::spec::RuleSpec;
use crate::{Identity, Source};

fn policy(yaml: &str, default_allow: bool) -> Policy {
    let specs: Vec<RuleSpec> = serde_yaml_ng::from_str(yaml).unwrap();
    Policy::build(&specs, default_allow).unwrap()
}

fn build_err(yaml: &str) -> BuildError {
    let specs: Vec<RuleSpec> = serde_yaml_ng::from_str(yaml).unwrap();
    Policy::build(&specs, false).unwrap_err()
}

fn who(claims: serde_json::Value) -> Identity {
    Identity {
        subject: claims["sub"].as_str().unwrap_or_default().into(),
        claims,
        source: Source::Jwt,
        bearer: None,
    }
}

fn tool<'a>(
    id: Option<&'a Identity>,
    target: &'a str,
    name: &'a str,
    args: Option<&'a serde_json::Value>,
) -> Request<'a> {
    Request {
        identity: id,
        kind: Kind::Tool,
        method: "tools/call",
        target,
        name,
        args,
    }
}

const SEED: &str = r#"
- name: mcp-jq-auth
  allow: { tools: ["markitdown:convert_to_markdown"] }
  when: { claims: { sub: me } }
"#;

#[test]
fn seed_policy_one_to_one() {
    let p = policy(SEED, false);
    let me = who(json!({"sub": "me", "iss": "me"}));
    let you = who(json!({"sub": "you"}));
    let d = p.decide(&tool(Some(&me), "markitdown", "convert_to_markdown", None));
    assert!(d.allowed);
    assert_eq!(&*d.rule, "mcp-jq-auth");
    let d = p.decide(&tool(Some(&you), "markitdown", "convert_to_markdown", None));
    assert!(!d.allowed);
    assert_eq!(&*d.rule, "default");
    assert!(!p.decide(&tool(None, "markitdown", "convert_to_markdown", None)).allowed);
    assert!(!p.decide(&tool(Some(&me), "markitdown", "other", None)).allowed);
    assert!(p.visible(Some(&me), Kind::Tool, "markitdown", "convert_to_markdown"));
    assert!(!p.visible(Some(&you), Kind::Tool, "markitdown", "convert_to_markdown"));
}

#[test]
fn empty_policy_is_default() {
    let me = who(json!({"sub": "me"}));
    assert!(
        !Policy::build(&[], false)
            .unwrap()
            .decide(&tool(Some(&me), "a", "b", None))
            .allowed
    );
    assert!(Policy::allow_all().decide(&tool(Some(&me), "a", "b", None)).allowed);
}

#[test]
fn bypass_attempts_are_denied() {
    let p = policy(SEED, false);
    let me = who(json!({"sub": "me"}));
    for (target, name) in [
        ("markitdown", "Convert_To_Markdown"),
        ("markitdown", "CONVERT_TO_MARKDOWN"),
        ("markitdown", "convert-to-markdown"),
        ("markitdown", "convert_to_markdown "),
        ("markitdown", " convert_to_markdown"),
        ("markitdown", "convert_to_markdown\0"),
        ("markitdown", "markitdown_convert_to_markdown"),
        ("markitdown", "markitdown:convert_to_markdown"),
        ("Markitdown", "convert_to_markdown"),
        ("markitdown2", "convert_to_markdown"),
        ("markitdow", "convert_to_markdown"),
        ("markitdown-evil", "convert_to_markdown"),
        ("markitdown_convert", "to_markdown"),
        ("", "convert_to_markdown"),
        ("unknown", "convert_to_markdown"),
    ] {
        assert!(
            !p.decide(&tool(Some(&me), target, name, None)).allowed,
            "{target}:{name}"
        );
    }
    // Same names as a prompt or resource or method are other kinds.
    for kind in [Kind::Prompt, Kind::Resource, Kind::Method] {
        let r = Request {
            kind,
            ..tool(Some(&me), "markitdown", "convert_to_markdown", None)
        };
        assert!(!p.decide(&r).allowed, "{kind:?}");
    }
    // Claim tricks.
    for claims in [
        json!({"sub": "Me"}),
        json!({"sub": "me "}),
        json!({"sub": ["me"]}),
        json!({"sub": null}),
        json!({"SUB": "me"}),
        json!({"nested": {"sub": "me"}}),
    ] {
        let id = who(claims.clone());
        assert!(
            !p.decide(&tool(Some(&id), "markitdown", "convert_to_markdown", None))
                .allowed,
            "{claims}"
        );
    }
}

#[test]
fn deny_wins_over_allow() {
    let p = policy(
        r#"
- name: everyone
  allow: { tools: ["*"] }
- name: no-admin
  deny: { tools: ["db:drop_*", "*:shutdown"] }
  when: { claims: { "realm.roles": { contains: intern } } }
"#,
        false,
    );
    let intern = who(json!({"sub": "i", "realm": {"roles": ["intern", "dev"]}}));
    let dev = who(json!({"sub": "d", "realm": {"roles": ["dev"]}}));
    let d = p.decide(&tool(Some(&intern), "db", "drop_table", None));
    assert_eq!((d.allowed, &*d.rule), (false, "no-admin"));
    assert!(!p.decide(&tool(Some(&intern), "x", "shutdown", None)).allowed);
    assert!(p.decide(&tool(Some(&intern), "db", "select", None)).allowed);
    assert!(p.decide(&tool(Some(&dev), "db", "drop_table", None)).allowed);
    assert!(!p.visible(Some(&intern), Kind::Tool, "db", "drop_table"));
    assert!(p.visible(Some(&dev), Kind::Tool, "db", "drop_table"));
}

#[test]
fn matchers_one_of_contains_exists() {
    let p = policy(
        r#"
- allow: { tools: ["a:*"] }
  when:
    claims:
      team: { one_of: [red, blue] }
      scope: { contains: "tools:a" }
      email_verified: true
      banned: { exists: false }
"#,
        false,
    );
    let ok = who(json!({"sub":"x","team":"red","scope":"openid tools:a","email_verified":true}));
    assert!(p.decide(&tool(Some(&ok), "a", "t", None)).allowed);
    let mut bad = ok.clone();
    bad.claims["team"] = json!("green");
    assert!(!p.decide(&tool(Some(&bad), "a", "t", None)).allowed);
    let mut bad = ok.clone();
    bad.claims["scope"] = json!("tools:ab");
    assert!(!p.decide(&tool(Some(&bad), "a", "t", None)).allowed);
    let mut bad = ok.clone();
    bad.claims["banned"] = json!(true);
    assert!(!p.decide(&tool(Some(&bad), "a", "t", None)).allowed);
    let mut bad = ok.clone();
    bad.claims["email_verified"] = json!("true");
    assert!(!p.decide(&tool(Some(&bad), "a", "t", None)).allowed);
}

#[test]
fn cel_over_claims_and_arguments() {
    let p = policy(
        r#"
- name: data-uris-only
  allow: { tools: ["markitdown:convert_to_markdown"] }
  when:
    claims: { sub: me }
    cel: 'args.uri.startsWith("data:") && method == "tools/call" && target == "markitdown" && name == "convert_to_markdown"'
- name: no-files
  deny: { tools: ["*"] }
  when: { cel: 'args.uri.startsWith("file:")' }
"#,
        false,
    );
    let me = who(json!({"sub": "me"}));
    let data = json!({"uri": "data:text/plain;base64,SGk="});
    let file = json!({"uri": "file:///etc/passwd"});
    let http = json!({"uri": "http://x"});
    assert!(
        p.decide(&tool(Some(&me), "markitdown", "convert_to_markdown", Some(&data)))
            .allowed
    );
    let d = p.decide(&tool(Some(&me), "markitdown", "convert_to_markdown", Some(&file)));
    assert_eq!((d.allowed, &*d.rule), (false, "no-files"));
    assert!(
        !p.decide(&tool(Some(&me), "markitdown", "convert_to_markdown", Some(&http)))
            .allowed
    );
    // No arguments: the allow rule's CEL errors (no match); the deny rule's errors (fail closed).
    let d = p.decide(&tool(Some(&me), "markitdown", "convert_to_markdown", None));
    assert_eq!((d.allowed, &*d.rule), (false, "no-files"));
    // Listing: both CEL conditions need arguments, so the tool is listed for `me`.
    assert!(p.visible(Some(&me), Kind::Tool, "markitdown", "convert_to_markdown"));
    assert!(!p.visible(
        Some(&who(json!({"sub": "you"}))),
        Kind::Tool,
        "markitdown",
        "convert_to_markdown"
    ));
}

#[test]
fn cel_over_claims_decides_listing() {
    let p = policy(
        r#"
- allow: { tools: ["*"] }
  when: { cel: '"admin" in claims.groups' }
"#,
        false,
    );
    let admin = who(json!({"sub": "a", "groups": ["admin"]}));
    let user = who(json!({"sub": "u", "groups": ["users"]}));
    assert!(p.visible(Some(&admin), Kind::Tool, "t", "x"));
    assert!(!p.visible(Some(&user), Kind::Tool, "t", "x"));
    assert!(p.decide(&tool(Some(&admin), "t", "x", None)).allowed);
    assert!(!p.decide(&tool(Some(&user), "t", "x", None)).allowed);
    assert!(!p.decide(&tool(None, "t", "x", None)).allowed);
}

#[test]
fn resources_by_uri_and_methods() {
    let p = policy(
        r#"
- allow:
    resources: ["docs:file:///srv/docs/*"]
    prompts: ["docs:summarize"]
    methods: ["docs:tasks/*"]
"#,
        false,
    );
    let r = |target: &'static str, uri: &'static str| Request {
        identity: None,
        kind: Kind::Resource,
        method: "resources/read",
        target,
        name: uri,
        args: None,
    };
    assert!(p.decide(&r("docs", "file:///srv/docs/a.md")).allowed);
    assert!(!p.decide(&r("docs", "file:///srv/docs2/a.md")).allowed);
    assert!(!p.decide(&r("docs", "file:///etc/passwd")).allowed);
    assert!(!p.decide(&r("other", "file:///srv/docs/a.md")).allowed);
    assert!(!p.decide(&r("docs", "FILE:///srv/docs/a.md")).allowed);
    let m = Request {
        kind: Kind::Method,
        method: "tasks/get",
        name: "tasks/get",
        ..r("docs", "")
    };
    assert!(p.decide(&m).allowed);
    let pr = Request {
        kind: Kind::Prompt,
        name: "summarize",
        ..r("docs", "")
    };
    assert!(p.decide(&pr).allowed);
}

#[test]
fn build_errors_name_the_field() {
    let e = build_err("- allow: { tools: [nocolon] }\n");
    assert_eq!(e.field, "policies[0].allow.tools[0]");
    let e = build_err("- name: r\n  allow: { tools: [\"a:b\"] }\n  when: { cel: 'claims.sub ==' }\n");
    assert_eq!(e.field, "policies[0].when.cel");
    assert!(e.message.starts_with("CEL does not compile"), "{}", e.message);
    let e = build_err("- when: { claims: { sub: me } }\n");
    assert!(e.message.contains("allow"));
    let e = build_err("- allow: {}\n");
    assert!(e.message.contains("names no"));
    let e = build_err("- allow: { tools: [\"a:b\"] }\n  when: { claims: { sub: { equals: a, one_of: [b] } } }\n");
    assert!(e.message.contains("exactly one"), "{}", e.message);
}

#[test]
fn unknown_fields_are_rejected() {
    assert!(serde_yaml_ng::from_str::<Vec<RuleSpec>>("- allow: { tool: [\"a:b\"] }\n").is_err());
    assert!(serde_yaml_ng::from_str::<Vec<RuleSpec>>("- alow: { tools: [\"a:b\"] }\n").is_err());
}

/// [`Policy::visible`] by trying every rule in order: the reference for the index.
fn visible_linear(p: &Policy, identity: Option<&Identity>, kind: Kind, target: &str, name: &str) -> bool {
    let req = Request {
        identity,
        kind,
        method: kind.call_method(),
        target,
        name,
        args: None,
    };
    let mut allow = false;
    for rule in &p.rules {
        if !rule.covers(kind, target, name) {
            continue;
        }
        let cond = rule.condition(&req);
        match rule.effect {
            Effect::Deny if cond == Cond::Yes => return false,
            Effect::Allow if cond != Cond::No => allow = true,
            _ => {}
        }
    }
    allow || p.default_allow
}

#[test]
fn the_index_finds_literal_glob_and_any_target_rules_in_file_order() {
    let p = policy(
        r#"
- name: first-allow
  allow: { tools: ["fx:echo", "fx:echo"] }
  when: { claims: { sub: me } }
- name: glob-deny
  deny: { tools: ["fx:ec*"] }
  when: { claims: { sub: eve } }
- name: any-deny
  deny: { tools: ["*:echo"] }
  when: { claims: { sub: mallory } }
- name: second-allow
  allow: { tools: ["f*:e*"] }
- name: other-target
  allow: { tools: ["fy:zap"] }
"#,
        false,
    );
    let me = who(json!({"sub": "me"}));
    let eve = who(json!({"sub": "eve"}));
    let mallory = who(json!({"sub": "mallory"}));
    let bob = who(json!({"sub": "bob"}));
    let d = |id: &Identity, t: &'static str, n: &'static str| {
        let d = p.decide(&tool(Some(id), t, n, None));
        (d.allowed, d.rule.to_string())
    };
    assert_eq!(d(&me, "fx", "echo"), (true, "first-allow".into()));
    assert_eq!(d(&bob, "fx", "echo"), (true, "second-allow".into()));
    assert_eq!(d(&eve, "fx", "echo"), (false, "glob-deny".into()));
    assert_eq!(d(&mallory, "fx", "echo"), (false, "any-deny".into()));
    assert_eq!(d(&mallory, "fy", "echo"), (false, "any-deny".into()));
    assert_eq!(d(&bob, "fy", "echo"), (true, "second-allow".into()));
    assert_eq!(d(&bob, "fy", "zap"), (true, "other-target".into()));
    assert_eq!(d(&bob, "fx", "zap"), (false, "default".into()));
    assert_eq!(d(&bob, "fz", "x"), (false, "default".into()));
    // Kinds have indexes of their own: a tool rule says nothing about a prompt.
    let prompt = Request {
        kind: Kind::Prompt,
        method: "prompts/get",
        ..tool(Some(&me), "fx", "echo", None)
    };
    assert_eq!(&*p.decide(&prompt).rule, "default");
    assert!(!p.visible(Some(&eve), Kind::Tool, "fx", "echo"));
    assert!(p.visible(Some(&bob), Kind::Tool, "fx", "echo"));
    assert!(!p.visible(Some(&bob), Kind::Prompt, "fx", "echo"));
}

mod index_agrees {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    const PATTERNS: [&str; 8] = ["a:x", "a:*", "a:x*", "*:x", "b:y", "*", "*:*y", "b*:x"];
    const SUBJECTS: [&str; 3] = ["u1", "u2", "u3"];

    fn rule_yaml(i: usize, deny: bool, pats: &[usize], kind: &str, when: Option<usize>) -> String {
        let list: Vec<String> = pats.iter().map(|p| format!("\"{}\"", PATTERNS[*p])).collect();
        let mut y = format!(
            "- name: r{i}\n  {}: {{ {kind}: [{}] }}\n",
            if deny { "deny" } else { "allow" },
            list.join(", ")
        );
        if let Some(s) = when {
            y.push_str(&format!("  when: {{ claims: {{ sub: {} }} }}\n", SUBJECTS[s]));
        }
        y
    }

    fn arb_rule() -> impl Strategy<Value = (bool, Vec<usize>, bool, Option<usize>)> {
        (
            any::<bool>(),
            proptest::collection::vec(0..PATTERNS.len(), 1..4),
            any::<bool>(),
            proptest::option::of(0..SUBJECTS.len()),
        )
    }

    proptest! {
        // Whatever the rules, the indexed decision is the one of trying every rule in order:
        // same verdict and same deciding rule, for calls and for listings.
        #[test]
        fn with_the_linear_scan(
            rules in proptest::collection::vec(arb_rule(), 0..12),
            default_allow in any::<bool>(),
            sub in 0..SUBJECTS.len() + 1,
            target in prop::sample::select(vec!["a", "b", "bb", "c"]),
            name in prop::sample::select(vec!["x", "xy", "y", "zy", "z"]),
        ) {
            let mut yaml = String::new();
            for (i, (deny, pats, prompt, when)) in rules.iter().enumerate() {
                yaml.push_str(&rule_yaml(i, *deny, pats, if *prompt { "prompts" } else { "tools" }, *when));
            }
            if yaml.is_empty() {
                yaml.push_str("[]");
            }
            let p = policy(&yaml, default_allow);
            let id = SUBJECTS.get(sub).map(|s| who(json!({ "sub": s })));
            for kind in [Kind::Tool, Kind::Prompt] {
                let req = Request {
                    identity: id.as_ref(),
                    kind,
                    method: kind.call_method(),
                    target,
                    name,
                    args: None,
                };
                prop_assert_eq!(p.decide(&req), p.decide_linear(&req));
                prop_assert_eq!(
                    p.visible(id.as_ref(), kind, target, name),
                    visible_linear(&p, id.as_ref(), kind, target, name)
                );
            }
        }
    }
}
