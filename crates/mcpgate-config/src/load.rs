//! Loading: text → spec (with parser positions) → validated runtime [`Config`].

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::spec::{FileSpec, HttpSpec, SecretSpec, SessionMode};
use crate::{Config, Glob, Listen, NameFilter, Naming, Secret, Target, Transport};

/// A config file that cannot be used, with where the problem is.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{origin}: cannot read file: {source}")]
    Read {
        /// File name.
        origin: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The text is not valid YAML/JSON, or does not fit the schema.
    #[error("{origin}:{line}:{column}: {message}")]
    Syntax {
        /// File name.
        origin: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// A value is well-formed but not acceptable.
    #[error("{origin}{}: {field}: {message}", position(*.line))]
    Invalid {
        /// File name.
        origin: String,
        /// 1-based line, when the value could be located in the text.
        line: Option<usize>,
        /// The field's path, e.g. `targets[1].name`.
        field: String,
        /// What is wrong.
        message: String,
    },
}

fn position(line: Option<usize>) -> String {
    line.map(|l| format!(":{l}")).unwrap_or_default()
}

impl ConfigError {
    /// The 1-based line of the problem, if known.
    pub fn line(&self) -> Option<usize> {
        match self {
            ConfigError::Read { .. } => None,
            ConfigError::Syntax { line, .. } => Some(*line),
            ConfigError::Invalid { line, .. } => *line,
        }
    }
}

pub(crate) fn load_file(path: &Path) -> Result<Config, ConfigError> {
    let origin = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        origin: origin.clone(),
        source,
    })?;
    let json = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("json"));
    let base = path.parent().map(Path::to_path_buf);
    let mut cfg = load_text(&text, &origin, json, base)?;
    cfg.source = Some(path.to_path_buf());
    Ok(cfg)
}

pub(crate) fn load_text(text: &str, origin: &str, json: bool, base: Option<PathBuf>) -> Result<Config, ConfigError> {
    let spec: FileSpec = if json {
        serde_json::from_str(text).map_err(|e| ConfigError::Syntax {
            origin: origin.into(),
            line: e.line(),
            column: e.column(),
            message: strip_position(&e.to_string()),
        })?
    } else if text.trim().is_empty() {
        serde_yaml_ng::from_str("{}").expect("empty document parses")
    } else {
        serde_yaml_ng::from_str(text).map_err(|e| {
            let (line, column) = e.location().map(|l| (l.line(), l.column())).unwrap_or((1, 1));
            ConfigError::Syntax {
                origin: origin.into(),
                line,
                column,
                message: strip_position(&e.to_string()),
            }
        })?
    };
    Validator {
        origin,
        text,
        base: base.as_deref(),
    }
    .run(spec)
}

/// serde_yaml/serde_json append "at line X column Y"; the error already carries it.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

struct Validator<'a> {
    origin: &'a str,
    text: &'a str,
    base: Option<&'a Path>,
}

impl Validator<'_> {
    fn err(&self, field: impl Into<String>, needle: Option<&str>, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            origin: self.origin.into(),
            line: needle.and_then(|n| self.locate(n)),
            field: field.into(),
            message: message.into(),
        }
    }

    /// The line of `needle` (best effort): a `name: <needle>` line when there is one (target
    /// names are short and may occur elsewhere), else the first line containing it.
    fn locate(&self, needle: &str) -> Option<usize> {
        if needle.is_empty() {
            return None;
        }
        let is_name_line = |l: &str| {
            let l = l.trim_start().trim_start_matches("- ").trim_start_matches(['{', '"']);
            l.strip_prefix("name").is_some_and(|r| {
                r.trim_start_matches('"')
                    .trim_start()
                    .trim_start_matches(':')
                    .trim()
                    .trim_matches(['"', '\'', ',', '}'])
                    == needle
            })
        };
        let mut lines = self.text.lines();
        lines
            .position(is_name_line)
            .or_else(|| self.text.lines().position(|l| l.contains(needle)))
            .map(|i| i + 1)
    }

    fn run(&self, spec: FileSpec) -> Result<Config, ConfigError> {
        let l = spec.listen;
        let address = l.address.parse().map_err(|_| {
            self.err(
                "listen.address",
                Some(&l.address),
                format!("`{}` is not a socket address like 127.0.0.1:8080", l.address),
            )
        })?;
        let mut paths = HashSet::new();
        for (field, p) in [
            ("listen.mcp_path", &l.mcp_path),
            ("listen.sse_path", &l.sse_path),
            ("listen.message_path", &l.message_path),
        ] {
            if !p.starts_with('/') || p.contains(['?', '#', ' ']) {
                return Err(self.err(field, Some(p), format!("`{p}` must be an absolute path like /mcp")));
            }
            if !paths.insert(p.as_str()) {
                return Err(self.err(field, Some(p), format!("path `{p}` is used twice")));
            }
        }
        for o in &l.allowed_origins {
            if o != "*"
                && url::Url::parse(o)
                    .map(|u| u.origin().ascii_serialization() != *o)
                    .unwrap_or(true)
            {
                return Err(self.err(
                    "listen.allowed_origins",
                    Some(o),
                    format!("`{o}` is not an origin like http://localhost:6274 (scheme://host[:port], no path)"),
                ));
            }
        }
        if l.max_body_bytes < 1024 {
            return Err(self.err("listen.max_body_bytes", None, "must be at least 1024"));
        }
        if l.keep_alive.0 < Duration::from_millis(100) {
            return Err(self.err("listen.keep_alive", None, "must be at least 100ms"));
        }
        let listen = Listen {
            address,
            mcp_path: l.mcp_path,
            sse_path: l.sse_path,
            message_path: l.message_path,
            allowed_origins: l.allowed_origins,
            allowed_hosts: l.allowed_hosts.into_iter().map(|h| h.to_ascii_lowercase()).collect(),
            keep_alive: l.keep_alive.0,
            session_idle_timeout: l.session_idle_timeout.0,
            max_body_bytes: l.max_body_bytes,
            resume_buffer: l.resume_buffer.max(1),
            page_size: l.page_size,
        };

        let sep = spec.naming.separator;
        if sep.is_empty() || sep.len() > 3 || !sep.chars().all(|c| c == '_' || c == '-') {
            return Err(self.err(
                "naming.separator",
                None,
                format!("`{sep}` must be 1-3 characters of `_` and `-`"),
            ));
        }
        let naming = Naming {
            separator: sep,
            prefix: spec.naming.prefix,
        };

        let mut names = HashSet::new();
        let mut targets = Vec::with_capacity(spec.targets.len());
        for (i, t) in spec.targets.into_iter().enumerate() {
            let at = format!("targets[{i}]");
            let name = t.name;
            let name_ok = !name.is_empty()
                && name.len() <= 32
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                && !name.contains(naming.separator.as_str());
            if !name_ok {
                return Err(self.err(
                    format!("{at}.name"),
                    Some(&name),
                    format!(
                        "`{name}` is not a valid target name: use 1-32 letters, digits, `-` or `_`, not containing the separator `{}`",
                        naming.separator
                    ),
                ));
            }
            if !names.insert(name.clone()) {
                return Err(self.err(
                    format!("{at}.name"),
                    Some(&name),
                    format!("target name `{name}` is used twice"),
                ));
            }
            let transport = match (t.stdio, t.sse, t.streamable_http) {
                (Some(s), None, None) => {
                    if s.command.trim().is_empty() {
                        return Err(self.err(format!("{at}.stdio.command"), Some(&name), "must not be empty"));
                    }
                    let mut env = Vec::with_capacity(s.env.len());
                    for (k, v) in s.env {
                        if k.is_empty() || k.contains(['=', '\0']) {
                            return Err(self.err(
                                format!("{at}.stdio.env"),
                                Some(&k),
                                format!("`{k}` is not a valid variable name"),
                            ));
                        }
                        let v = self.secret(&format!("{at}.stdio.env.{k}"), v)?;
                        env.push((k, v));
                    }
                    let command = self.expand(&format!("{at}.stdio.command"), &s.command)?;
                    let args = s
                        .args
                        .iter()
                        .enumerate()
                        .map(|(j, a)| self.expand(&format!("{at}.stdio.args[{j}]"), a))
                        .collect::<Result<Vec<_>, _>>()?;
                    Transport::Stdio {
                        command,
                        args,
                        env,
                        cwd: s.cwd.map(|c| self.relative(c)),
                    }
                }
                (None, Some(h), None) => {
                    let (url, headers) = self.http(&format!("{at}.sse"), h)?;
                    Transport::Sse { url, headers }
                }
                (None, None, Some(h)) => {
                    let (url, headers) = self.http(&format!("{at}.streamable_http"), h)?;
                    Transport::StreamableHttp { url, headers }
                }
                _ => {
                    return Err(self.err(
                        at,
                        Some(&name),
                        format!("target `{name}` must have exactly one of `stdio`, `sse`, `streamable_http`"),
                    ));
                }
            };
            let tools = t.tools.unwrap_or_default();
            let tools = NameFilter {
                allow: tools.allow.iter().map(|p| Glob::new(p)).collect(),
                deny: tools.deny.iter().map(|p| Glob::new(p)).collect(),
            };
            let stdio = matches!(transport, Transport::Stdio { .. });
            let session = t.session.unwrap_or(SessionMode::PerClient);
            if t.forward_authorization && (stdio || session == SessionMode::Shared) {
                return Err(self.err(
                    format!("{at}.forward_authorization"),
                    Some(&name),
                    "needs an HTTP target with `session: per_client` (a shared or stdio upstream cannot carry each client's token)",
                ));
            }
            let connect_default = if stdio { 30 } else { 10 };
            targets.push(Target {
                name: Arc::from(name),
                transport,
                tools,
                session,
                connect_timeout: t.connect_timeout.map_or(Duration::from_secs(connect_default), |d| d.0),
                request_timeout: t.request_timeout.map_or(Duration::from_secs(300), |d| d.0),
                forward_authorization: t.forward_authorization,
            });
        }
        let auth = match &spec.auth {
            Some(a) => mcpgate_auth::Authenticator::build(a, self.base).map_err(|e| self.auth_err(e))?,
            None => mcpgate_auth::Authenticator::disabled(),
        };
        let policy = mcpgate_auth::Policy::build(&spec.policies, !auth.is_enabled()).map_err(|e| self.auth_err(e))?;
        Ok(Config {
            source: None,
            listen,
            naming,
            targets,
            auth: Arc::new(auth),
            policy: Arc::new(policy),
        })
    }

    fn auth_err(&self, e: mcpgate_auth::BuildError) -> ConfigError {
        self.err(e.field, e.needle.as_deref(), e.message)
    }

    fn http(&self, at: &str, h: HttpSpec) -> Result<(url::Url, Vec<(String, Secret)>), ConfigError> {
        let url = url::Url::parse(&h.url).map_err(|e| {
            self.err(
                format!("{at}.url"),
                Some(&h.url),
                format!("`{}` is not a URL: {e}", h.url),
            )
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(self.err(
                format!("{at}.url"),
                Some(&h.url),
                "only http and https URLs are supported",
            ));
        }
        let mut headers = Vec::with_capacity(h.headers.len());
        for (k, v) in h.headers {
            let valid = !k.is_empty()
                && k.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
            if !valid {
                return Err(self.err(
                    format!("{at}.headers"),
                    Some(&k),
                    format!("`{k}` is not a valid header name"),
                ));
            }
            let v = self.secret(&format!("{at}.headers.{k}"), v)?;
            if v.expose().bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
                return Err(self.err(
                    format!("{at}.headers.{k}"),
                    Some(&k),
                    "header value contains a line break",
                ));
            }
            headers.push((k, v));
        }
        Ok((url, headers))
    }

    /// Expands `${NAME}` from the environment; `${MCPGATE_EXE}` is this mcpgate executable
    /// (so configs can run the built-in example server without installing anything).
    fn expand(&self, field: &str, text: &str) -> Result<String, ConfigError> {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let Some(end) = after.find('}') else {
                return Err(self.err(field, Some(text), format!("unterminated `${{` in `{text}`")));
            };
            let name = &after[..end];
            let value = if name == "MCPGATE_EXE" {
                std::env::current_exe().map(|p| p.display().to_string()).ok()
            } else {
                std::env::var(name).ok()
            };
            let Some(value) = value else {
                return Err(self.err(field, Some(text), format!("environment variable `{name}` is not set")));
            };
            out.push_str(&value);
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    fn secret(&self, field: &str, s: SecretSpec) -> Result<Secret, ConfigError> {
        match s {
            SecretSpec::Inline(v) => Ok(Secret::new(v)),
            SecretSpec::Env { env } => std::env::var(&env)
                .map(Secret::new)
                .map_err(|_| self.err(field, Some(&env), format!("environment variable `{env}` is not set"))),
            SecretSpec::File { file } => {
                let path = self.relative(file);
                std::fs::read_to_string(&path)
                    .map(|v| Secret::new(v.trim_end_matches(['\n', '\r'])))
                    .map_err(|e| self.err(field, None, format!("cannot read secret file {}: {e}", path.display())))
            }
        }
    }

    fn relative(&self, p: PathBuf) -> PathBuf {
        match self.base {
            Some(base) if p.is_relative() && !base.as_os_str().is_empty() => base.join(p),
            _ => p,
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::{Config, SessionMode};

    fn load(yaml: &str) -> Result<Config, String> {
        Config::from_str(yaml, "test.yaml", false).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults() {
        let c = load("targets:\n  - name: a\n    stdio: {command: srv}\n").unwrap();
        assert_eq!(c.listen.address.to_string(), "127.0.0.1:8080");
        assert_eq!(c.listen.mcp_path, "/mcp");
        assert_eq!(c.targets[0].session, SessionMode::PerClient);
        assert!(c.targets[0].tools.permits("anything"));
    }

    #[test]
    fn errors_carry_positions() {
        insta::assert_snapshot!(load("listen:\n  adress: 1.2.3.4:5\n").unwrap_err(), @"test.yaml:2:3: listen: unknown field `adress`, expected one of `address`, `mcp_path`, `sse_path`, `message_path`, `allowed_origins`, `allowed_hosts`, `keep_alive`, `session_idle_timeout`, `max_body_bytes`, `resume_buffer`, `page_size`");
        insta::assert_snapshot!(load("targets:\n  - name: a\n  - name: b_c\n    stdio: {command: x}\n").unwrap_err(), @"test.yaml:2: targets[0]: target `a` must have exactly one of `stdio`, `sse`, `streamable_http`");
        insta::assert_snapshot!(load("targets:\n  - name: ok\n    stdio: {command: x}\n  - name: b_c\n    stdio: {command: x}\n").unwrap_err(), @"test.yaml:4: targets[1].name: `b_c` is not a valid target name: use 1-32 letters, digits, `-` or `_`, not containing the separator `_`");
        insta::assert_snapshot!(load("targets:\n  - name: a\n    sse: {url: 'ftp://x'}\n").unwrap_err(), @"test.yaml:3: targets[0].sse.url: only http and https URLs are supported");
        insta::assert_snapshot!(load("targets:\n  - name: a\n    streamable_http: {url: 'http://x', headers: {Authorization: {env: MCPGATE_TEST_UNSET_VAR}}}\n").unwrap_err(), @"test.yaml:3: targets[0].streamable_http.headers.Authorization: environment variable `MCPGATE_TEST_UNSET_VAR` is not set");
        insta::assert_snapshot!(load("targets: [}").unwrap_err(), @"test.yaml:1:11: did not find expected node content");
    }

    #[test]
    fn expands_variables_in_commands() {
        let c =
            load("targets:\n  - name: a\n    stdio: {command: '${MCPGATE_EXE}', args: ['--home=${HOME}']}\n").unwrap();
        match &c.targets[0].transport {
            crate::Transport::Stdio { command, args, .. } => {
                assert_eq!(*command, std::env::current_exe().unwrap().display().to_string());
                assert_eq!(args[0], format!("--home={}", std::env::var("HOME").unwrap()));
            }
            _ => panic!(),
        }
        let e = load("targets:\n  - name: a\n    stdio: {command: '${MCPGATE_NOPE_VAR}'}\n").unwrap_err();
        assert!(e.contains("MCPGATE_NOPE_VAR"), "{e}");
    }

    #[test]
    fn auth_and_policies() {
        let jwk = r#"{ "use": "sig", "kty": "EC", "kid": "XhO06x8JjWH1wwkWkyeEUxsooGEWoEdidEpwyd_hmuI", "crv": "P-256", "alg": "ES256", "x": "XZHF8Em5LbpqfgewAalpSEH4Ka2I2xjcxxUt2j6-lCo", "y": "g3DFz45A7EOUMgmsNXatrXw1t-PG5xsbkxUs851RxSE" }"#;
        let base = format!(
            "targets:\n  - name: markitdown\n    sse: {{url: 'http://127.0.0.1:1/sse'}}\nauth:\n  jwt:\n    issuers: [me]\n    audiences: [me.com]\n    jwks: {{inline: {jwk}}}\n"
        );
        let c = load(&base).unwrap();
        assert!(c.auth.is_enabled());
        assert!(c.auth.hide_denied);
        assert!(!c.policy.default_allow());
        assert!(!c.targets[0].forward_authorization);
        let seed = format!(
            "{base}policies:\n  - name: mcp-jq-auth\n    allow: {{tools: [\"markitdown:convert_to_markdown\"]}}\n    when: {{claims: {{sub: me}}}}\n"
        );
        assert_eq!(load(&seed).unwrap().policy.len(), 1);
        // No auth: everything allowed by default.
        assert!(load("targets: []\n").unwrap().policy.default_allow());
        assert!(!load("targets: []\n").unwrap().auth.is_enabled());
        // Errors carry the line.
        let bad_cel = format!(
            "{base}policies:\n  - name: r1\n    allow: {{tools: [\"a:b\"]}}\n    when: {{cel: 'claims.sub =='}}\n"
        );
        let e = load(&bad_cel).unwrap_err();
        assert!(
            e.starts_with("test.yaml:12: policies[0].when.cel: CEL does not compile"),
            "{e}"
        );
        let bad_pattern = format!("{base}policies:\n  - name: r1\n    allow: {{tools: [\"nocolon\"]}}\n");
        insta::assert_snapshot!(load(&bad_pattern).unwrap_err(), @"test.yaml:11: policies[0].allow.tools[0]: `nocolon` is not a `target:name` pattern (use `*` for every target or name)");
        let e = load("auth:\n  jwt:\n    jwks: {file: /nonexistent/jwks.json}\n").unwrap_err();
        assert!(
            e.starts_with("test.yaml:3: auth.jwt.jwks.file: cannot read /nonexistent/jwks.json"),
            "{e}"
        );
        let e = load("auth:\n  jwt:\n    isuers: [me]\n").unwrap_err();
        assert!(e.starts_with("test.yaml:3:5: auth.jwt: unknown field `isuers`"), "{e}");
        let e = load("targets:\n  - name: a\n    stdio: {command: x}\n    forward_authorisation: true\n").unwrap_err();
        assert!(e.contains("unknown field `forward_authorisation`"), "{e}");
        let e = load("targets:\n  - name: a\n    stdio: {command: x}\n    forward_authorization: true\n").unwrap_err();
        assert!(
            e.contains("targets[0].forward_authorization: needs an HTTP target"),
            "{e}"
        );
        let ok = load("targets:\n  - name: a\n    streamable_http: {url: 'http://127.0.0.1:1/mcp'}\n    forward_authorization: true\n").unwrap();
        assert!(ok.targets[0].forward_authorization);
    }

    #[test]
    fn json_is_accepted() {
        let c = Config::from_str(
            r#"{"targets":[{"name":"a","streamable_http":{"url":"http://127.0.0.1:1/mcp"}}]}"#,
            "c.json",
            true,
        )
        .unwrap();
        assert_eq!(c.targets[0].session, SessionMode::PerClient);
        let e = Config::from_str("{\n \"targets\": 1}", "c.json", true)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("c.json:2:"), "{e}");
    }

    #[test]
    fn secrets_are_redacted_in_debug() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("tok"), "s3cret\n").unwrap();
        std::fs::write(dir.path().join("c.yaml"), "targets:\n  - name: a\n    streamable_http:\n      url: http://127.0.0.1:1/mcp\n      headers: {Authorization: {file: tok}}\n").unwrap();
        let c = Config::load(&dir.path().join("c.yaml")).unwrap();
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("s3cret"));
        match &c.targets[0].transport {
            crate::Transport::StreamableHttp { headers, .. } => assert_eq!(headers[0].1.expose(), "s3cret"),
            _ => panic!(),
        }
    }
}
