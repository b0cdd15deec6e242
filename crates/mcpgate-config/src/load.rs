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

/// An HTTP transport's first URL, headers, and every URL (replicas).
type HttpParts = (url::Url, Vec<(String, Secret)>, Vec<url::Url>);

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
        // ---- Limits (issue 4) ----
        if l.max_json_depth < 8 {
            return Err(self.err("listen.max_json_depth", None, "must be at least 8"));
        }
        if l.max_streams_per_session == 0 {
            return Err(self.err("listen.max_streams_per_session", None, "must be at least 1"));
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
            max_json_depth: l.max_json_depth,
            max_sessions: l.max_sessions,
            max_sessions_per_identity: l.max_sessions_per_identity,
            max_streams_per_session: l.max_streams_per_session,
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
            // Traffic management (issue 4): every URL of an HTTP target.
            let mut endpoints = Vec::new();
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
                    let (url, headers, all) = self.http(&format!("{at}.sse"), h)?;
                    endpoints = all;
                    Transport::Sse { url, headers }
                }
                (None, None, Some(h)) => {
                    let (url, headers, all) = self.http(&format!("{at}.streamable_http"), h)?;
                    endpoints = all;
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
            if t.generation == crate::Generation::Stateless && matches!(transport, Transport::Sse { .. }) {
                return Err(self.err(
                    format!("{at}.generation"),
                    Some(&name),
                    "`stateless` (2026-07-28) needs a stdio or streamable_http target: the legacy HTTP+SSE transport is session-based",
                ));
            }
            let connect_default = if stdio { 30 } else { 10 };
            // ---- Limits (issue 4) ----
            let max_message_bytes = match t.max_message_bytes {
                Some(n) if n < 1024 => {
                    return Err(self.err(format!("{at}.max_message_bytes"), Some(&name), "must be at least 1024"));
                }
                Some(n) => n,
                None => 16 << 20,
            };
            // ---- Traffic management (issue 4) ----
            let own = crate::traffic::TargetTrafficSpec {
                timeouts: t.timeouts,
                retries: t.retries,
                concurrency: t.concurrency,
                health: t.health,
                circuit_breaker: t.circuit_breaker,
            };
            if t.load_balancing.is_some() && endpoints.len() < 2 {
                return Err(self.err(
                    format!("{at}.load_balancing"),
                    Some(&name),
                    "needs an HTTP target with several `urls`",
                ));
            }
            let traffic = crate::traffic::resolve(
                &own,
                &spec.traffic.defaults,
                t.request_timeout.map(|d| d.0),
                t.load_balancing,
                endpoints,
            )
            .map_err(|(field, message)| self.err(format!("{at}.{field}"), Some(&name), message))?;
            targets.push(Target {
                name: Arc::from(name),
                transport,
                tools,
                session,
                generation: t.generation,
                connect_timeout: t.connect_timeout.map_or(Duration::from_secs(connect_default), |d| d.0),
                request_timeout: traffic.timeouts.call,
                forward_authorization: t.forward_authorization,
                log_arguments: t.log_arguments,
                log_results: t.log_results,
                // ---- Limits and supervision (issue 4) ----
                max_message_bytes,
                max_processes: t.max_processes.unwrap_or(0),
                traffic,
            });
        }
        // ---- Traffic management (issue 4) ----
        let mut rate_limits = Vec::with_capacity(spec.traffic.rate_limits.len());
        for (i, r) in spec.traffic.rate_limits.iter().enumerate() {
            let limit = crate::traffic::rate_limit(r).map_err(|(field, message)| {
                self.err(format!("traffic.rate_limits[{i}].{field}"), Some(&r.rate), message)
            })?;
            rate_limits.push(limit);
        }
        // Defaults are validated even when every target overrides them.
        crate::traffic::resolve(&spec.traffic.defaults, &Default::default(), None, None, Vec::new())
            .map_err(|(field, message)| self.err(format!("traffic.defaults.{field}"), None, message))?;
        // ---- Observability (issue 5) ----
        let metrics = self.metrics(&spec.observability.metrics, &listen)?;
        let access_log = self.access_log(&spec.observability.access_log);
        let min_targets_up = spec.observability.readiness.min_targets_up;
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
            shutdown: crate::Shutdown {
                announce: spec.shutdown.announce.0,
                drain_timeout: spec.shutdown.drain_timeout.0,
            },
            supervision: self.supervision(&spec.supervision)?,
            observability: crate::Observability {
                tracing: spec.observability.tracing.map(|t| self.tracing(t)).transpose()?,
                metrics,
                access_log,
                min_targets_up,
            },
            rate_limits,
            stateless: self.stateless(spec.stateless)?,
        })
    }

    // ---- Stateless clients (issue 6) ----
    fn stateless(&self, s: crate::spec::StatelessSpec) -> Result<crate::Stateless, ConfigError> {
        let at = "stateless";
        let request_state_key = match s.request_state_key {
            None => None,
            Some(k) => {
                let key = self.secret(&format!("{at}.request_state_key"), k)?;
                if key.expose().len() < 32 {
                    return Err(self.err(
                        format!("{at}.request_state_key"),
                        Some("request_state_key"),
                        "the key must be at least 32 bytes (e.g. `openssl rand -hex 32`)",
                    ));
                }
                Some(key)
            }
        };
        if s.input_wait.0.is_zero() {
            return Err(self.err(format!("{at}.input_wait"), Some("input_wait"), "must be longer than 0s"));
        }
        if s.max_held_calls == 0 {
            return Err(self.err(
                format!("{at}.max_held_calls"),
                Some("max_held_calls"),
                "must be at least 1 (0 would refuse every call that needs input)",
            ));
        }
        Ok(crate::Stateless {
            request_state_key,
            input_wait: s.input_wait.0,
            max_held_calls: s.max_held_calls,
        })
    }

    // ---- Observability (issue 5) ----
    fn metrics(&self, m: &crate::spec::MetricsSpec, listen: &Listen) -> Result<crate::Metrics, ConfigError> {
        let at = "observability.metrics";
        let p = &m.path;
        if !p.starts_with('/') || p.contains(['?', '#', ' ']) {
            return Err(self.err(
                format!("{at}.path"),
                Some(p),
                format!("`{p}` must be an absolute path like /metrics"),
            ));
        }
        let address = match &m.address {
            None => None,
            Some(a) => Some(a.parse().map_err(|_| {
                self.err(
                    format!("{at}.address"),
                    Some(a),
                    format!("`{a}` is not a socket address like 127.0.0.1:9464"),
                )
            })?),
        };
        if m.enabled && address.is_none() {
            let taken = [
                listen.mcp_path.as_str(),
                listen.sse_path.as_str(),
                listen.message_path.as_str(),
                "/healthz",
                "/readyz",
            ];
            if taken.contains(&p.as_str()) || p.starts_with(mcpgate_auth::metadata::WELL_KNOWN) {
                return Err(self.err(
                    format!("{at}.path"),
                    Some(p),
                    format!("path `{p}` is already served by the main listener"),
                ));
            }
        }
        if address.is_some() && address == Some(listen.address) {
            return Err(self.err(
                format!("{at}.address"),
                m.address.as_deref(),
                "must differ from listen.address (leave it out to serve metrics on the main listener)",
            ));
        }
        if m.max_tools_per_target == 0 {
            return Err(self.err(format!("{at}.max_tools_per_target"), None, "must be at least 1"));
        }
        Ok(crate::Metrics {
            enabled: m.enabled,
            path: m.path.clone(),
            address,
            max_tools_per_target: m.max_tools_per_target,
        })
    }

    fn access_log(&self, a: &crate::spec::AccessLogSpec) -> crate::AccessLog {
        let output = match a.output.as_deref() {
            None | Some("stderr") => crate::AccessLogOutput::Stderr,
            Some("stdout") => crate::AccessLogOutput::Stdout,
            Some(path) => crate::AccessLogOutput::File(self.relative(PathBuf::from(path))),
        };
        crate::AccessLog {
            enabled: a.enabled,
            format: a.format,
            output,
        }
    }

    fn tracing(&self, t: crate::spec::TracingSpec) -> Result<crate::Tracing, ConfigError> {
        let at = "observability.tracing";
        let o = t.otlp;
        let mut endpoint = url::Url::parse(&o.endpoint).map_err(|e| {
            self.err(
                format!("{at}.otlp.endpoint"),
                Some(&o.endpoint),
                format!("`{}` is not a URL: {e}", o.endpoint),
            )
        })?;
        if !matches!(endpoint.scheme(), "http" | "https") || endpoint.host_str().is_none() {
            return Err(self.err(
                format!("{at}.otlp.endpoint"),
                Some(&o.endpoint),
                "must be an http:// or https:// URL with a host",
            ));
        }
        if o.protocol == crate::spec::OtlpProtocol::HttpProtobuf && endpoint.path() == "/" {
            endpoint.set_path("/v1/traces");
        }
        let mut headers = Vec::with_capacity(o.headers.len());
        for (k, v) in o.headers {
            // gRPC metadata keys are lower-case header names; HTTP accepts those too.
            let valid = !k.is_empty()
                && k.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
                && !k.to_ascii_lowercase().ends_with("-bin");
            if !valid {
                return Err(self.err(
                    format!("{at}.otlp.headers"),
                    Some(&k),
                    format!("`{k}` is not a valid header name"),
                ));
            }
            let v = self.secret(&format!("{at}.otlp.headers.{k}"), v)?;
            if v.expose().bytes().any(|b| !(b == b'\t' || (0x20..0x7f).contains(&b))) {
                return Err(self.err(
                    format!("{at}.otlp.headers.{k}"),
                    None,
                    "the value must be visible ASCII (spaces and tabs allowed)",
                ));
            }
            headers.push((k.to_ascii_lowercase(), v));
        }
        if !(0.0..=1.0).contains(&t.sampling_ratio) {
            return Err(self.err(
                format!("{at}.sampling_ratio"),
                None,
                format!("{} is not between 0 and 1", t.sampling_ratio),
            ));
        }
        if t.service_name.trim().is_empty() {
            return Err(self.err(format!("{at}.service_name"), None, "must not be empty"));
        }
        let timeout = o.timeout.map_or(Duration::from_secs(10), |d| d.0);
        if timeout < Duration::from_millis(10) {
            return Err(self.err(format!("{at}.otlp.timeout"), None, "must be at least 10ms"));
        }
        Ok(crate::Tracing {
            endpoint,
            protocol: o.protocol,
            headers,
            timeout,
            sampling_ratio: t.sampling_ratio,
            service_name: t.service_name,
        })
    }

    // ---- Operations (issue 4) ----
    fn supervision(&self, s: &crate::spec::SupervisionSpec) -> Result<crate::Supervision, ConfigError> {
        if s.backoff_initial.0 < Duration::from_millis(10) {
            return Err(self.err("supervision.backoff_initial", None, "must be at least 10ms"));
        }
        if s.backoff_max.0 < s.backoff_initial.0 {
            return Err(self.err(
                "supervision.backoff_max",
                None,
                "must not be shorter than backoff_initial",
            ));
        }
        if s.crash_loop_restarts < 2 {
            return Err(self.err("supervision.crash_loop_restarts", None, "must be at least 2"));
        }
        if s.stderr_lines > 10_000 {
            return Err(self.err("supervision.stderr_lines", None, "must be at most 10000"));
        }
        Ok(crate::Supervision {
            backoff_initial: s.backoff_initial.0,
            backoff_max: s.backoff_max.0,
            crash_loop_restarts: s.crash_loop_restarts,
            crash_loop_window: s.crash_loop_window.0,
            crash_loop_backoff: s.crash_loop_backoff.0.max(s.backoff_max.0),
            stderr_lines: s.stderr_lines,
        })
    }

    fn auth_err(&self, e: mcpgate_auth::BuildError) -> ConfigError {
        self.err(e.field, e.needle.as_deref(), e.message)
    }

    /// An HTTP transport: the first URL, the headers, and every URL (`url`, or `urls` for
    /// replicas).
    fn http(&self, at: &str, h: HttpSpec) -> Result<HttpParts, ConfigError> {
        let (field, written) = match (h.url, h.urls.is_empty()) {
            (Some(u), true) => ("url", vec![u]),
            (None, false) => ("urls", h.urls),
            (Some(_), false) => return Err(self.err(at, None, "give either `url` or `urls`, not both")),
            (None, true) => return Err(self.err(at, None, "needs a `url` (or `urls` for replicas)")),
        };
        let mut all = Vec::with_capacity(written.len());
        for (j, text) in written.iter().enumerate() {
            let f = if field == "url" {
                format!("{at}.url")
            } else {
                format!("{at}.urls[{j}]")
            };
            let url = url::Url::parse(text)
                .map_err(|e| self.err(f.clone(), Some(text), format!("`{text}` is not a URL: {e}")))?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err(self.err(f, Some(text), "only http and https URLs are supported"));
            }
            if all.contains(&url) {
                return Err(self.err(f, Some(text), format!("`{text}` is listed twice")));
            }
            all.push(url);
        }
        let url = all[0].clone();
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
        Ok((url, headers, all))
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
        insta::assert_snapshot!(load("listen:\n  adress: 1.2.3.4:5\n").unwrap_err(), @"test.yaml:2:3: listen: unknown field `adress`, expected one of `address`, `mcp_path`, `sse_path`, `message_path`, `allowed_origins`, `allowed_hosts`, `keep_alive`, `session_idle_timeout`, `max_body_bytes`, `resume_buffer`, `page_size`, `max_json_depth`, `max_sessions`, `max_sessions_per_identity`, `max_streams_per_session`");
        insta::assert_snapshot!(load("targets:\n  - name: a\n  - name: b_c\n    stdio: {command: x}\n").unwrap_err(), @"test.yaml:2: targets[0]: target `a` must have exactly one of `stdio`, `sse`, `streamable_http`");
        insta::assert_snapshot!(load("targets:\n  - name: ok\n    stdio: {command: x}\n  - name: b_c\n    stdio: {command: x}\n").unwrap_err(), @"test.yaml:4: targets[1].name: `b_c` is not a valid target name: use 1-32 letters, digits, `-` or `_`, not containing the separator `_`");
        insta::assert_snapshot!(load("targets:\n  - name: a\n    sse: {url: 'ftp://x'}\n").unwrap_err(), @"test.yaml:3: targets[0].sse.url: only http and https URLs are supported");
        insta::assert_snapshot!(load("targets:\n  - name: a\n    streamable_http: {url: 'http://x', headers: {Authorization: {env: MCPGATE_TEST_UNSET_VAR}}}\n").unwrap_err(), @"test.yaml:3: targets[0].streamable_http.headers.Authorization: environment variable `MCPGATE_TEST_UNSET_VAR` is not set");
        insta::assert_snapshot!(load("targets: [}").unwrap_err(), @"test.yaml:1:11: did not find expected node content");
    }

    #[test]
    fn stateless_settings() {
        let c = load("targets: []\n").unwrap();
        assert!(c.stateless.request_state_key.is_none());
        assert_eq!(c.stateless.input_wait, std::time::Duration::from_secs(300));
        assert_eq!(c.stateless.max_held_calls, 1024);
        let key = "k".repeat(32);
        let c = load(&format!(
            "stateless:\n  request_state_key: {key}\n  input_wait: 30s\n  max_held_calls: 5\ntargets: []\n"
        ))
        .unwrap();
        assert_eq!(
            c.stateless.request_state_key.as_ref().map(|k| k.expose().len()),
            Some(32)
        );
        assert_eq!(format!("{:?}", c.stateless.request_state_key), "Some(<redacted>)");
        assert_eq!((c.stateless.input_wait.as_secs(), c.stateless.max_held_calls), (30, 5));
        insta::assert_snapshot!(load("stateless:\n  request_state_key: short\ntargets: []\n").unwrap_err(), @"test.yaml:2: stateless.request_state_key: the key must be at least 32 bytes (e.g. `openssl rand -hex 32`)");
        insta::assert_snapshot!(load("stateless:\n  max_held_calls: 0\ntargets: []\n").unwrap_err(), @"test.yaml:2: stateless.max_held_calls: must be at least 1 (0 would refuse every call that needs input)");
        insta::assert_snapshot!(load("stateless:\n  input_wait: 0s\ntargets: []\n").unwrap_err(), @"test.yaml:2: stateless.input_wait: must be longer than 0s");
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
        let e = load("targets:\n  - name: a\n    sse: {url: 'http://127.0.0.1:1/sse'}\n    generation: stateless\n")
            .unwrap_err();
        assert!(e.contains("targets[0].generation"), "{e}");
        let g = load("targets:\n  - name: a\n    stdio: {command: x}\n    generation: session\n").unwrap();
        assert_eq!(g.targets[0].generation, crate::Generation::Session);
        let e = load("targets:\n  - name: a\n    stdio: {command: x}\n    generation: modern\n").unwrap_err();
        assert!(e.contains("generation"), "{e}");
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
    fn tracing_is_off_unless_configured() {
        assert!(load("targets: []").unwrap().observability.tracing.is_none());
    }

    #[test]
    fn tracing_otlp_settings() {
        // SAFETY: tests of this module read this variable only.
        unsafe { std::env::set_var("MCPGATE_TEST_OTLP_KEY", "k3y") };
        let c = load(
            "observability:\n  tracing:\n    otlp:\n      endpoint: http://127.0.0.1:4318\n      headers: {X-Api-Key: {env: MCPGATE_TEST_OTLP_KEY}}\n",
        )
        .unwrap();
        let t = c.observability.tracing.as_ref().unwrap();
        assert_eq!(t.endpoint.as_str(), "http://127.0.0.1:4318/v1/traces");
        assert_eq!(t.protocol, crate::OtlpProtocol::HttpProtobuf);
        assert_eq!(t.headers[0].0, "x-api-key");
        assert_eq!(t.headers[0].1.expose(), "k3y");
        assert_eq!((t.sampling_ratio, t.service_name.as_str()), (1.0, "mcpgate"));
        assert_eq!(t.timeout, std::time::Duration::from_secs(10));
        assert!(!format!("{c:?}").contains("k3y"));

        let c = load(
            "observability:\n  tracing:\n    sampling_ratio: 0.25\n    service_name: gw\n    otlp: {endpoint: 'http://c:4317', protocol: grpc, timeout: 2s}\n",
        )
        .unwrap();
        let t = c.observability.tracing.unwrap();
        assert_eq!(t.endpoint.as_str(), "http://c:4317/");
        assert_eq!(t.protocol, crate::OtlpProtocol::Grpc);
        assert_eq!((t.sampling_ratio, t.service_name.as_str()), (0.25, "gw"));
        // An explicit path is kept as written.
        let c = load("observability:\n  tracing:\n    otlp: {endpoint: 'https://c/otlp/traces'}\n").unwrap();
        assert_eq!(
            c.observability.tracing.unwrap().endpoint.as_str(),
            "https://c/otlp/traces"
        );
    }

    #[test]
    fn tracing_errors_name_the_field() {
        let cases = [
            (
                "observability:\n  tracing:\n    otlp: {endpoint: 'ftp://c'}\n",
                "observability.tracing.otlp.endpoint",
            ),
            (
                "observability:\n  tracing:\n    otlp: {endpoint: 'not a url'}\n",
                "observability.tracing.otlp.endpoint",
            ),
            (
                "observability:\n  tracing:\n    sampling_ratio: 1.5\n    otlp: {endpoint: 'http://c'}\n",
                "observability.tracing.sampling_ratio",
            ),
            (
                "observability:\n  tracing:\n    otlp: {endpoint: 'http://c', headers: {'a b': x}}\n",
                "observability.tracing.otlp.headers",
            ),
            (
                "observability:\n  tracing:\n    otlp: {endpoint: 'http://c', headers: {a: \"x\\ny\"}}\n",
                "observability.tracing.otlp.headers.a",
            ),
            (
                "observability:\n  tracing:\n    otlp: {endpoint: 'http://c', protocol: http/json}\n",
                "unknown variant",
            ),
            (
                "observability:\n  tracing:\n    otlp: {endpoint: 'http://c'}\n    ratio: 1\n",
                "unknown field",
            ),
            ("observability:\n  tracing: {}\n", "missing field `otlp`"),
        ];
        for (yaml, want) in cases {
            let e = load(yaml).unwrap_err();
            assert!(e.contains(want), "{yaml}: {e}");
        }
    }

    #[test]
    fn metrics_and_access_log_defaults() {
        let c = load("targets: []").unwrap();
        let o = &c.observability;
        assert_eq!(o.metrics, crate::Metrics::default());
        assert!(o.metrics.enabled && o.metrics.address.is_none() && o.metrics.path == "/metrics");
        assert!(!o.access_log.enabled);
        assert_eq!(o.access_log.output, crate::AccessLogOutput::Stderr);
        assert_eq!(o.min_targets_up, None);
    }

    #[test]
    fn metrics_access_log_and_readiness_settings() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.yaml");
        std::fs::write(
            &file,
            "observability:\n  metrics: {address: '127.0.0.1:9464', path: /m, max_tools_per_target: 5}\n  access_log: {enabled: true, format: text, output: logs/access.log}\n  readiness: {min_targets_up: 2}\ntargets:\n  - name: a\n    stdio: {command: x}\n    log_arguments: true\n",
        )
        .unwrap();
        let c = Config::load(&file).unwrap();
        let o = &c.observability;
        assert_eq!(o.metrics.address, Some("127.0.0.1:9464".parse().unwrap()));
        assert_eq!((o.metrics.path.as_str(), o.metrics.max_tools_per_target), ("/m", 5));
        assert_eq!(o.access_log.format, crate::AccessLogFormat::Text);
        assert_eq!(
            o.access_log.output,
            crate::AccessLogOutput::File(dir.path().join("logs/access.log"))
        );
        assert_eq!(o.min_targets_up, Some(2));
        assert!(c.targets[0].log_arguments && !c.targets[0].log_results);
        let c = load("observability:\n  access_log: {enabled: true, output: stdout}\n").unwrap();
        assert_eq!(c.observability.access_log.output, crate::AccessLogOutput::Stdout);
    }

    #[test]
    fn metrics_errors_name_the_field() {
        let cases = [
            (
                "observability:\n  metrics: {path: metrics}\n",
                "observability.metrics.path: `metrics` must be an absolute path",
            ),
            (
                "observability:\n  metrics: {path: /mcp}\n",
                "observability.metrics.path: path `/mcp` is already served",
            ),
            ("observability:\n  metrics: {path: /readyz}\n", "already served"),
            (
                "observability:\n  metrics: {address: nowhere}\n",
                "observability.metrics.address: `nowhere` is not a socket address",
            ),
            (
                "listen: {address: '127.0.0.1:9000'}\nobservability:\n  metrics: {address: '127.0.0.1:9000'}\n",
                "must differ from listen.address",
            ),
            (
                "observability:\n  metrics: {max_tools_per_target: 0}\n",
                "observability.metrics.max_tools_per_target: must be at least 1",
            ),
            ("observability:\n  access_log: {format: xml}\n", "unknown variant `xml`"),
            (
                "observability:\n  readiness: {min_targets: 1}\n",
                "unknown field `min_targets`",
            ),
        ];
        for (yaml, want) in cases {
            let e = load(yaml).unwrap_err();
            assert!(e.contains(want), "{yaml}: {e}");
        }
        // A separate listener frees the path on the main one.
        assert!(load("observability:\n  metrics: {path: /mcp, address: '127.0.0.1:9464'}\n").is_ok());
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
