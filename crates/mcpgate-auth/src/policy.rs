//! Authorization: allow and deny rules over `target:name` resources, for callers matched by
//! claims and CEL.
//!
//! A request is allowed when no deny rule matches it and at least one allow rule does; with
//! no matching rule the default decides (deny once authentication is on). Rules are checked on
//! the target and the upstream's own name, after the gateway resolved the exposed name — so a
//! client cannot reach a tool through spelling. A CEL expression that fails to evaluate (a
//! missing claim, a type error) makes an allow rule not match and a deny rule match: errors
//! fail closed.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use serde_json::Value;

use crate::Identity;
use crate::authn::BuildError;
use crate::claims::{ClaimMatcher, claim_at};
use crate::pattern::Pattern;
use crate::spec::{ClaimMatchSpec, ResourcesSpec, RuleSpec};

/// What kind of thing a request touches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `tools/call` (and tool listing).
    Tool,
    /// `prompts/get`, prompt completions (and prompt listing).
    Prompt,
    /// `resources/read|subscribe|unsubscribe`, resource completions (and listing), by URI.
    Resource,
    /// Any other method relayed to a target, by method name.
    Method,
}

impl Kind {
    /// The method that uses an item of this kind (`tools/call`, …; empty for methods).
    pub fn call_method(self) -> &'static str {
        match self {
            Kind::Tool => "tools/call",
            Kind::Prompt => "prompts/get",
            Kind::Resource => "resources/read",
            Kind::Method => "",
        }
    }

    /// Label for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Tool => "tool",
            Kind::Prompt => "prompt",
            Kind::Resource => "resource",
            Kind::Method => "method",
        }
    }
}

/// One authorization question.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The caller (`None`: anonymous).
    pub identity: Option<&'a Identity>,
    /// What is touched.
    pub kind: Kind,
    /// The JSON-RPC method.
    pub method: &'a str,
    /// The target's name.
    pub target: &'a str,
    /// The upstream's own tool/prompt name, the resource URI, or the method.
    pub name: &'a str,
    /// The call's arguments (`arguments` of tools/call and prompts/get), if any.
    pub args: Option<&'a Value>,
}

/// The answer, with the rule that gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Allowed?
    pub allowed: bool,
    /// The deciding rule's name, or `default`.
    pub rule: Arc<str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Effect {
    Allow,
    Deny,
}

struct Rule {
    name: Arc<str>,
    effect: Effect,
    tools: Vec<Pattern>,
    prompts: Vec<Pattern>,
    resources: Vec<Pattern>,
    methods: Vec<Pattern>,
    claims: Vec<(String, ClaimMatcher)>,
    cel: Option<Arc<cel::Program>>,
}

impl std::fmt::Debug for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rule")
            .field("name", &self.name)
            .field("effect", &self.effect)
            .field("tools", &self.tools)
            .field("prompts", &self.prompts)
            .field("resources", &self.resources)
            .field("methods", &self.methods)
            .field("claims", &self.claims)
            .field("cel", &self.cel.is_some())
            .finish()
    }
}

static CEL_ENV: LazyLock<Arc<cel::Env>> = LazyLock::new(|| Arc::new(cel::Env::stdlib()));

/// A compiled policy: immutable, shared by every request until a reload swaps it.
#[derive(Debug)]
pub struct Policy {
    rules: Vec<Rule>,
    /// Per [`Kind`] (in the order of [`Kind::index`]): the rules that may cover a resource.
    index: [Index; 4],
    default_allow: bool,
    default_name: Arc<str>,
}

/// Where to find the rules whose patterns of one kind may match `target:name`, without
/// trying every rule: patterns with a literal target are filed under it (literal names in a
/// map, the others in a list), patterns whose target has a `*` are tried for every target.
/// Built once with the policy; entries are rule positions, each list in rule order.
#[derive(Debug, Default)]
struct Index {
    by_target: HashMap<Box<str>, TargetRules>,
    any_target: Vec<(u32, Pattern)>,
}

#[derive(Debug, Default)]
struct TargetRules {
    exact: HashMap<Box<str>, Vec<u32>>,
    globs: Vec<(u32, Box<str>)>,
}

impl Index {
    fn build(rules: &[Rule], kind: Kind) -> Index {
        let mut ix = Index::default();
        for (i, rule) in rules.iter().enumerate() {
            let i = i as u32;
            for p in rule.patterns(kind) {
                if p.target().contains('*') {
                    ix.any_target.push((i, p.clone()));
                    continue;
                }
                let t = ix.by_target.entry(p.target().into()).or_default();
                if p.name().contains('*') {
                    t.globs.push((i, p.name().into()));
                } else {
                    let e = t.exact.entry(p.name().into()).or_default();
                    if e.last() != Some(&i) {
                        e.push(i);
                    }
                }
            }
        }
        ix
    }

    /// Calls `f` with the position of every rule with a pattern matching `target:name` (a
    /// rule with several matching patterns may come more than once; not in rule order).
    fn covering(&self, target: &str, name: &str, mut f: impl FnMut(usize)) {
        if let Some(t) = self.by_target.get(target) {
            if let Some(rules) = t.exact.get(name) {
                rules.iter().for_each(|&i| f(i as usize));
            }
            for (i, p) in &t.globs {
                if crate::pattern::glob(p.as_bytes(), name.as_bytes()) {
                    f(*i as usize);
                }
            }
        }
        for (i, p) in &self.any_target {
            if p.matches(target, name) {
                f(*i as usize);
            }
        }
    }
}

/// How a rule's condition turned out.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Cond {
    Yes,
    No,
    /// CEL could not be evaluated.
    Error,
}

impl Policy {
    /// A policy that allows everything (no authentication, no rules).
    pub fn allow_all() -> Policy {
        Policy {
            rules: vec![],
            index: Default::default(),
            default_allow: true,
            default_name: Arc::from("default"),
        }
    }

    /// Compiles `policies:`. `default_allow` is the decision when no rule matches.
    pub fn build(specs: &[RuleSpec], default_allow: bool) -> Result<Policy, BuildError> {
        let mut rules = Vec::new();
        for (i, r) in specs.iter().enumerate() {
            let at = format!("policies[{i}]");
            let name: Arc<str> = Arc::from(r.name.clone().unwrap_or_else(|| at.clone()));
            let needle = r.name.as_deref();
            if r.allow.is_none() && r.deny.is_none() {
                return Err(BuildError::new(at, needle, "a rule needs `allow` or `deny`"));
            }
            let (claims, cel) = match &r.when {
                None => (vec![], None),
                Some(w) => {
                    let mut claims = Vec::new();
                    for (path, m) in &w.claims {
                        if path.is_empty() {
                            return Err(BuildError::new(format!("{at}.when.claims"), needle, "empty claim path"));
                        }
                        let m = matcher(m)
                            .map_err(|msg| BuildError::new(format!("{at}.when.claims.{path}"), Some(path), msg))?;
                        claims.push((path.clone(), m));
                    }
                    let cel = match &w.cel {
                        Some(src) => Some(Arc::new(CEL_ENV.compile(src).map_err(|e| {
                            BuildError::new(
                                format!("{at}.when.cel"),
                                Some(src.lines().next().unwrap_or(src)),
                                format!("CEL does not compile: {e}"),
                            )
                        })?)),
                        None => None,
                    };
                    (claims, cel)
                }
            };
            for (effect, res) in [(Effect::Deny, &r.deny), (Effect::Allow, &r.allow)] {
                let Some(res) = res else { continue };
                let which = if effect == Effect::Allow { "allow" } else { "deny" };
                let rule = Rule {
                    name: name.clone(),
                    effect,
                    tools: patterns(res, &at, which, "tools", &res.tools)?,
                    prompts: patterns(res, &at, which, "prompts", &res.prompts)?,
                    resources: patterns(res, &at, which, "resources", &res.resources)?,
                    methods: patterns(res, &at, which, "methods", &res.methods)?,
                    claims: claims.clone(),
                    cel: cel.clone(),
                };
                if rule.tools.is_empty()
                    && rule.prompts.is_empty()
                    && rule.resources.is_empty()
                    && rule.methods.is_empty()
                {
                    return Err(BuildError::new(
                        format!("{at}.{which}"),
                        needle,
                        "names no `tools`, `prompts`, `resources` or `methods`",
                    ));
                }
                rules.push(rule);
            }
        }
        let index = [Kind::Tool, Kind::Prompt, Kind::Resource, Kind::Method].map(|k| Index::build(&rules, k));
        Ok(Policy {
            rules,
            index,
            default_allow,
            default_name: Arc::from("default"),
        })
    }

    /// Number of compiled rules (an entry with both `allow` and `deny` counts twice).
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// No rules?
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Does every request get allowed without looking (no rules, default allow)?
    pub fn allows_everything(&self) -> bool {
        self.rules.is_empty() && self.default_allow
    }

    /// Does any rule use CEL (so decisions need the call's arguments)?
    pub fn uses_arguments(&self) -> bool {
        self.rules.iter().any(|r| r.cel.is_some())
    }

    /// The decision when no rule matches.
    pub fn default_allow(&self) -> bool {
        self.default_allow
    }

    /// Decides a request: the first deny rule (in file order) that covers it and whose
    /// condition holds or cannot be evaluated; else the first allow rule that covers it and
    /// whose condition holds; else the default. Only the rules the index finds for the
    /// request's `target:name` are looked at, and nothing is allocated unless a CEL
    /// condition has to be evaluated.
    pub fn decide(&self, req: &Request<'_>) -> Decision {
        let (mut deny, mut allow) = (usize::MAX, usize::MAX);
        self.index[req.kind.index()].covering(req.target, req.name, |i| {
            let rule = &self.rules[i];
            match rule.effect {
                Effect::Deny if i < deny && rule.condition(req) != Cond::No => deny = i,
                Effect::Allow if i < allow && rule.condition(req) == Cond::Yes => allow = i,
                _ => {}
            }
        });
        let (allowed, rule) = if deny != usize::MAX {
            (false, &self.rules[deny].name)
        } else if allow != usize::MAX {
            (true, &self.rules[allow].name)
        } else {
            (self.default_allow, &self.default_name)
        };
        Decision {
            allowed,
            rule: rule.clone(),
        }
    }

    /// [`Policy::decide`] by trying every rule in order: the reference the index is tested
    /// against.
    #[cfg(test)]
    fn decide_linear(&self, req: &Request<'_>) -> Decision {
        let mut allow: Option<&Arc<str>> = None;
        for rule in &self.rules {
            if !rule.covers(req.kind, req.target, req.name) {
                continue;
            }
            let cond = rule.condition(req);
            match rule.effect {
                Effect::Deny if cond != Cond::No => {
                    return Decision {
                        allowed: false,
                        rule: rule.name.clone(),
                    };
                }
                Effect::Allow if cond == Cond::Yes && allow.is_none() => allow = Some(&rule.name),
                _ => {}
            }
        }
        match allow {
            Some(r) => Decision {
                allowed: true,
                rule: r.clone(),
            },
            None => Decision {
                allowed: self.default_allow,
                rule: self.default_name.clone(),
            },
        }
    }

    /// Should the item be listed to `identity`? Like [`Policy::decide`] without arguments,
    /// except that a CEL condition that cannot be decided without the call's arguments counts
    /// as "may apply": it lists the item for an allow rule and does not hide it for a deny
    /// rule (the call itself is still decided in full).
    pub fn visible(&self, identity: Option<&Identity>, kind: Kind, target: &str, name: &str) -> bool {
        let req = Request {
            identity,
            kind,
            method: kind.call_method(),
            target,
            name,
            args: None,
        };
        let (mut denied, mut allow) = (false, false);
        self.index[kind.index()].covering(target, name, |i| {
            let rule = &self.rules[i];
            match rule.effect {
                Effect::Deny if !denied && rule.condition(&req) == Cond::Yes => denied = true,
                Effect::Allow if !allow && rule.condition(&req) != Cond::No => allow = true,
                _ => {}
            }
        });
        !denied && (allow || self.default_allow)
    }
}

impl Kind {
    fn index(self) -> usize {
        match self {
            Kind::Tool => 0,
            Kind::Prompt => 1,
            Kind::Resource => 2,
            Kind::Method => 3,
        }
    }
}

impl Rule {
    fn patterns(&self, kind: Kind) -> &[Pattern] {
        match kind {
            Kind::Tool => &self.tools,
            Kind::Prompt => &self.prompts,
            Kind::Resource => &self.resources,
            Kind::Method => &self.methods,
        }
    }

    #[cfg(test)]
    fn covers(&self, kind: Kind, target: &str, name: &str) -> bool {
        self.patterns(kind).iter().any(|p| p.matches(target, name))
    }

    fn condition(&self, req: &Request<'_>) -> Cond {
        let claims = req.identity.map(|i| &i.claims);
        for (path, m) in &self.claims {
            if !m.matches(claims.and_then(|c| claim_at(c, path))) {
                return Cond::No;
            }
        }
        let Some(program) = &self.cel else {
            return Cond::Yes;
        };
        match eval_cel(program, req) {
            Some(true) => Cond::Yes,
            Some(false) => Cond::No,
            None => Cond::Error,
        }
    }
}

fn eval_cel(program: &cel::Program, req: &Request<'_>) -> Option<bool> {
    let mut ctx = cel::Context::with_env(CEL_ENV.clone());
    let empty = Value::Object(Default::default());
    let claims = req.identity.map_or(&empty, |i| &i.claims);
    ctx.add_variable_from_value("claims", cel::to_value(claims).ok()?);
    ctx.add_variable_from_value("method", req.method.to_owned());
    ctx.add_variable_from_value("target", req.target.to_owned());
    ctx.add_variable_from_value("name", req.name.to_owned());
    ctx.add_variable_from_value("kind", req.kind.as_str().to_owned());
    match req.args {
        Some(a) => ctx.add_variable_from_value("args", cel::to_value(a).ok()?),
        None => ctx.add_variable_from_value("args", cel::Value::Null),
    }
    match program.execute(&ctx) {
        Ok(cel::Value::Bool(b)) => Some(b),
        Ok(_) => None,
        Err(_) => None,
    }
}

fn patterns(
    _res: &ResourcesSpec,
    at: &str,
    which: &str,
    field: &str,
    items: &[String],
) -> Result<Vec<Pattern>, BuildError> {
    items
        .iter()
        .enumerate()
        .map(|(j, p)| Pattern::parse(p).map_err(|m| BuildError::new(format!("{at}.{which}.{field}[{j}]"), Some(p), m)))
        .collect()
}

fn matcher(m: &ClaimMatchSpec) -> Result<ClaimMatcher, String> {
    match m {
        ClaimMatchSpec::Value(v) => Ok(ClaimMatcher::Equals(v.clone())),
        ClaimMatchSpec::Op(op) => {
            let n = op.equals.is_some() as u8
                + op.one_of.is_some() as u8
                + op.contains.is_some() as u8
                + op.exists.is_some() as u8;
            if n != 1 {
                return Err("use exactly one of `equals`, `one_of`, `contains`, `exists`".into());
            }
            Ok(if let Some(v) = &op.equals {
                ClaimMatcher::Equals(v.clone())
            } else if let Some(vs) = &op.one_of {
                ClaimMatcher::OneOf(vs.clone())
            } else if let Some(v) = &op.contains {
                ClaimMatcher::Contains(v.clone())
            } else {
                ClaimMatcher::Exists(op.exists.unwrap_or(true))
            })
        }
    }
}

#[cfg(test)]
mod tests;
