//! Edge checks applied before any MCP processing: `Host` and `Origin` validation against
//! DNS rebinding, and CORS for browser clients.
//!
//! When the listener is bound to a loopback address and no `allowed_hosts` are configured,
//! only loopback host names are accepted in `Host` — a web page on another site that
//! re-resolves its name to 127.0.0.1 then gets 403. An `Origin`, when present, must be the
//! listener's own address, a loopback origin when bound to loopback, or one of
//! `allowed_origins`.

use http::{HeaderMap, HeaderValue, header};
use mcpgate_config::Listen;

/// The verdict of the edge checks.
#[derive(Debug, PartialEq, Eq)]
pub enum EdgeError {
    /// `Host` not allowed.
    Host(String),
    /// `Origin` not allowed.
    Origin(String),
}

fn is_loopback_name(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    h.eq_ignore_ascii_case("localhost") || h.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Splits `host[:port]` (IPv6 in brackets) into the host part.
fn host_part(hostport: &str) -> &str {
    if let Some(rest) = hostport.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match hostport.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => hostport,
    }
}

/// Checks `Host` and `Origin`.
pub fn check(listen: &Listen, headers: &HeaderMap) -> Result<(), EdgeError> {
    let loopback = listen.address.ip().is_loopback();
    if let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) {
        let host_lc = host.to_ascii_lowercase();
        let ok = if listen.allowed_hosts.is_empty() {
            !loopback || is_loopback_name(host_part(&host_lc))
        } else {
            listen
                .allowed_hosts
                .iter()
                .any(|a| a == "*" || *a == host_lc || *a == host_part(&host_lc))
        };
        if !ok {
            return Err(EdgeError::Host(host.to_owned()));
        }
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        if !origin_allowed(listen, headers, origin) {
            return Err(EdgeError::Origin(origin.to_owned()));
        }
    }
    Ok(())
}

/// Is this `Origin` allowed?
pub fn origin_allowed(listen: &Listen, headers: &HeaderMap, origin: &str) -> bool {
    if listen
        .allowed_origins
        .iter()
        .any(|o| o == "*" || o.eq_ignore_ascii_case(origin))
    {
        return true;
    }
    let Ok(url) = url::Url::parse(origin) else { return false };
    let Some(host) = url.host_str() else { return false };
    if listen.address.ip().is_loopback() && is_loopback_name(host) {
        return true;
    }
    // Same origin as the request's Host.
    let host_header = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
    let origin_hostport = match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_owned(),
    };
    !host_header.is_empty() && origin_hostport.eq_ignore_ascii_case(host_header)
}

/// CORS headers for an allowed browser origin.
pub fn cors_headers(origin: &str, out: &mut HeaderMap) {
    if let Ok(v) = HeaderValue::from_str(origin) {
        out.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
    }
    out.insert(header::VARY, HeaderValue::from_static("Origin"));
    out.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("Mcp-Session-Id, Mcp-Protocol-Version, WWW-Authenticate"),
    );
}

/// Extra headers of a CORS preflight answer.
pub fn preflight_headers(out: &mut HeaderMap) {
    out.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST, DELETE, OPTIONS"),
    );
    out.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static(
            "Content-Type, Accept, Authorization, Mcp-Session-Id, Mcp-Protocol-Version, Last-Event-ID, Mcp-Method, Mcp-Name",
        ),
    );
    out.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listen(addr: &str, origins: &[&str], hosts: &[&str]) -> Listen {
        let mut yaml = format!("listen:\n  address: {addr}\n");
        if !origins.is_empty() {
            yaml.push_str(&format!("  allowed_origins: [{}]\n", origins.join(",")));
        }
        if !hosts.is_empty() {
            yaml.push_str(&format!("  allowed_hosts: [{}]\n", hosts.join(",")));
        }
        mcpgate_config::Config::from_str(&yaml, "t", false).unwrap().listen
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn dns_rebinding_is_refused_on_loopback() {
        let l = listen("127.0.0.1:8080", &[], &[]);
        assert!(check(&l, &headers(&[("host", "127.0.0.1:8080")])).is_ok());
        assert!(check(&l, &headers(&[("host", "localhost:8080")])).is_ok());
        assert!(check(&l, &headers(&[("host", "[::1]:8080")])).is_ok());
        assert_eq!(
            check(&l, &headers(&[("host", "evil.example:8080")])),
            Err(EdgeError::Host("evil.example:8080".into()))
        );
        assert!(
            check(
                &l,
                &headers(&[("host", "localhost:8080"), ("origin", "http://localhost:6274")])
            )
            .is_ok()
        );
        assert!(
            check(
                &l,
                &headers(&[("host", "localhost:8080"), ("origin", "http://evil.example")])
            )
            .is_err()
        );
        assert!(check(&l, &headers(&[("host", "localhost:8080"), ("origin", "null")])).is_err());
    }

    #[test]
    fn configured_origins_and_hosts() {
        let l = listen("0.0.0.0:8080", &["https://app.example.com"], &[]);
        assert!(
            check(
                &l,
                &headers(&[("host", "gw.example.com"), ("origin", "https://app.example.com")])
            )
            .is_ok()
        );
        assert!(
            check(
                &l,
                &headers(&[("host", "gw.example.com"), ("origin", "https://gw.example.com")])
            )
            .is_ok()
        );
        assert!(
            check(
                &l,
                &headers(&[("host", "gw.example.com"), ("origin", "https://other.example.com")])
            )
            .is_err()
        );
        let l = listen("0.0.0.0:8080", &[], &["gw.example.com"]);
        assert!(check(&l, &headers(&[("host", "gw.example.com:8080")])).is_ok());
        assert!(check(&l, &headers(&[("host", "other.example.com")])).is_err());
    }
}
