//! The negative matrix of authentication: every rejection issue 3 lists, against real keys.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{EncodingKey, Header};
use serde_json::{Value, json};

use super::*;
use crate::mint;
use crate::spec::AuthSpec;

const SEED_JWK: &str = r#"{ "use": "sig", "kty": "EC", "kid": "XhO06x8JjWH1wwkWkyeEUxsooGEWoEdidEpwyd_hmuI", "crv": "P-256", "alg": "ES256", "x": "XZHF8Em5LbpqfgewAalpSEH4Ka2I2xjcxxUt2j6-lCo", "y": "g3DFz45A7EOUMgmsNXatrXw1t-PG5xsbkxUs851RxSE" }"#;
const SEED_TOKEN: &str = "eyJhbGciOiJFUzI1NiIsImtpZCI6IlhoTzA2eDhKaldIMXd3a1dreWVFVXhzb29HRVdvRWRpZEVwd3lkX2htdUkiLCJ0eXAiOiJKV1QifQ.eyJhdWQiOiJtZS5jb20iLCJleHAiOjE5MDA2NTAyOTQsImlhdCI6MTc0MzYyNDc4NywiaXNzIjoibWUiLCJqdGkiOiJlM2MzNjhkYzBmNGUyODdiYzhkYmM2OTIyOTU5ZTA3M2YzMThkNTliYTlhZjdhY2Q0N2ViMWUzZGIyOTZlYTQwIiwibmJmIjoxNzQzNjI0Nzg3LCJzdWIiOiJtZSJ9.IshAKo62yWHwfnt62vR1nfa4SQmpSB-4ceAMXWs1P_rREl2gYj6nJ7HwLM5avv_eyOFbI-3rRZzCMCuNVLAF5w";
const HS: &str = "0123456789abcdef0123456789abcdef-test";

fn auth(yaml: &str) -> Authenticator {
    let spec: AuthSpec = serde_yaml_ng::from_str(yaml).unwrap();
    Authenticator::build(&spec, None).unwrap()
}

fn build_err(yaml: &str) -> BuildError {
    let spec: AuthSpec = serde_yaml_ng::from_str(yaml).unwrap();
    Authenticator::build(&spec, None).unwrap_err()
}

fn seed_auth(extra: &str) -> Authenticator {
    auth(&format!(
        "jwt:\n  issuers: [me]\n  audiences: [me.com]\n  jwks: {{ inline: {SEED_JWK} }}\n{extra}"
    ))
}

async fn check(a: &Authenticator, token: &str) -> Result<Option<Arc<Identity>>, AuthError> {
    let h = format!("Bearer {token}");
    a.authenticate(Credentials {
        authorization: Some(&h),
        api_key: None,
    })
    .await
}

struct Minted {
    key: mint::GeneratedKey,
}

impl Minted {
    fn new() -> Minted {
        Minted {
            key: mint::generate_es256().unwrap(),
        }
    }

    fn auth(&self, extra: &str) -> Authenticator {
        auth(&format!(
            "jwt:\n  issuers: [iss1, iss2]\n  audiences: [gw]\n  leeway: 30s\n  jwks: {{ inline: {{ keys: [{}] }} }}\n{extra}",
            self.key.public_jwk
        ))
    }

    fn token(&self, claims: Value) -> String {
        mint::sign_es256(&self.key.private_pem, None, &claims).unwrap()
    }

    fn good(&self) -> Value {
        mint::claims("alice", "iss1", &["gw".into()], 3600, Some(&json!({"groups": ["dev"]})))
    }
}

fn forge(header: Value, claims: &Value, sig: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        URL_SAFE_NO_PAD.encode(sig)
    )
}

#[tokio::test]
async fn the_seed_token_is_accepted_with_the_seed_jwk() {
    let a = seed_auth("");
    let id = check(&a, SEED_TOKEN).await.unwrap().unwrap();
    assert_eq!(id.subject, "me");
    assert_eq!(id.source, Source::Jwt);
    assert_eq!(id.claims["aud"], "me.com");
    assert_eq!(id.bearer.as_deref(), Some(SEED_TOKEN));
    assert!(!format!("{id:?}").contains(SEED_TOKEN), "the token is never printed");
    // Second time from the cache.
    assert_eq!(a.cached(), 1);
    assert_eq!(check(&a, SEED_TOKEN).await.unwrap().unwrap(), id);
    // A JWK Set holding the seed key works the same.
    let a = auth(&format!(
        "jwt: {{ issuers: [me], audiences: [me.com], jwks: {{ inline: {{ keys: [{SEED_JWK}] }} }} }}\n"
    ));
    assert!(check(&a, SEED_TOKEN).await.is_ok());
}

#[tokio::test]
async fn seed_token_rejections_by_issuer_and_audience() {
    let a = auth(&format!(
        "jwt: {{ issuers: [other], audiences: [me.com], jwks: {{ inline: {SEED_JWK} }} }}\n"
    ));
    assert_eq!(check(&a, SEED_TOKEN).await, Err(AuthError::Jwt(JwtError::WrongIssuer)));
    let a = auth(&format!(
        "jwt: {{ issuers: [me], audiences: [gw.example], jwks: {{ inline: {SEED_JWK} }} }}\n"
    ));
    assert_eq!(
        check(&a, SEED_TOKEN).await,
        Err(AuthError::Jwt(JwtError::WrongAudience))
    );
}

#[tokio::test]
async fn negative_matrix() {
    let m = Minted::new();
    let a = m.auth("");
    let good = m.good();
    let now = crate::cache::unix_now();
    assert_eq!(
        check(&a, &m.token(good.clone())).await.unwrap().unwrap().subject,
        "alice"
    );
    let with = |k: &str, v: Value| {
        let mut c = good.clone();
        c[k] = v;
        c
    };
    let without = |k: &str| {
        let mut c = good.clone();
        c.as_object_mut().unwrap().remove(k);
        c
    };
    let kid = m.key.public_jwk["kid"].as_str().unwrap().to_owned();
    let es = |c: &Value| m.token(c.clone());
    let tampered = {
        let t = es(&good);
        let i = t.rfind('.').unwrap() + 10;
        let c = if &t[i..i + 1] == "A" { "B" } else { "A" };
        format!("{}{c}{}", &t[..i], &t[i + 1..])
    };
    let other_key = Minted::new();
    let hs_with_public_key = {
        // HS256 signed with the EC public key's coordinates as the HMAC secret.
        let x = URL_SAFE_NO_PAD.decode(m.key.public_jwk["x"].as_str().unwrap()).unwrap();
        let y = URL_SAFE_NO_PAD.decode(m.key.public_jwk["y"].as_str().unwrap()).unwrap();
        let mut point = vec![4u8];
        point.extend(x);
        point.extend(y);
        let mut h = Header::new(jsonwebtoken::Algorithm::HS256);
        h.kid = Some(kid.clone());
        jsonwebtoken::encode(&h, &good, &EncodingKey::from_secret(&point)).unwrap()
    };
    let cases: Vec<(&str, String, AuthError)> = vec![
        ("expired", es(&with("exp", json!(now - 120))), JwtError::Expired.into()),
        (
            "not yet valid",
            es(&with("nbf", json!(now + 600))),
            JwtError::NotYetValid.into(),
        ),
        (
            "wrong issuer",
            es(&with("iss", json!("evil"))),
            JwtError::WrongIssuer.into(),
        ),
        (
            "issuer case",
            es(&with("iss", json!("ISS1"))),
            JwtError::WrongIssuer.into(),
        ),
        (
            "no issuer",
            es(&without("iss")),
            JwtError::MissingClaim("iss".into()).into(),
        ),
        (
            "wrong audience",
            es(&with("aud", json!("gw2"))),
            JwtError::WrongAudience.into(),
        ),
        (
            "audience list without ours",
            es(&with("aud", json!(["a", "b"]))),
            JwtError::WrongAudience.into(),
        ),
        (
            "no audience",
            es(&without("aud")),
            JwtError::MissingClaim("aud".into()).into(),
        ),
        (
            "no exp",
            es(&without("exp")),
            JwtError::MissingClaim("exp".into()).into(),
        ),
        (
            "exp not a number",
            es(&with("exp", json!("soon"))),
            JwtError::MissingClaim("exp".into()).into(),
        ),
        (
            "sub not a string",
            es(&with("sub", json!(5))),
            JwtError::Malformed("sub must be a string").into(),
        ),
        ("bad signature", tampered, JwtError::BadSignature.into()),
        (
            "signed by another key, same kid",
            { mint::sign_es256(&other_key.key.private_pem, Some(&kid), &good).unwrap() },
            JwtError::BadSignature.into(),
        ),
        (
            "unknown kid",
            other_key.token(good.clone()),
            JwtError::UnknownKid.into(),
        ),
        (
            "alg none",
            forge(json!({"alg": "none", "typ": "JWT"}), &good, b""),
            JwtError::AlgNone.into(),
        ),
        (
            "alg None",
            forge(json!({"alg": "None", "kid": kid}), &good, b""),
            JwtError::AlgNone.into(),
        ),
        (
            "HS256 with the public key as secret",
            hs_with_public_key.clone(),
            JwtError::AlgorithmNotAllowed("HS256".into()).into(),
        ),
        (
            "RS256 claimed for an EC key",
            forge(json!({"alg": "RS256", "kid": kid}), &good, &[1; 256]),
            JwtError::NoKey.into(),
        ),
        (
            "EdDSA claimed for an EC key",
            forge(json!({"alg": "EdDSA", "kid": kid}), &good, &[1; 64]),
            JwtError::NoKey.into(),
        ),
        (
            "ES384 claimed for a P-256 key",
            forge(json!({"alg": "ES384", "kid": kid}), &good, &[1; 96]),
            JwtError::NoKey.into(),
        ),
        (
            "unknown alg",
            forge(json!({"alg": "ES999"}), &good, b"x"),
            JwtError::AlgorithmNotAllowed("ES999".into()).into(),
        ),
        (
            "crit header",
            forge(json!({"alg": "ES256", "kid": kid, "crit": ["exp"]}), &good, &[1; 64]),
            JwtError::Malformed("crit header parameters are not supported").into(),
        ),
        (
            "oversized header",
            forge(json!({"alg": "ES256", "pad": "x".repeat(2000)}), &good, &[1; 64]),
            JwtError::HeaderTooLarge.into(),
        ),
        (
            "oversized token",
            format!("a.{}.b", "c".repeat(9000)),
            JwtError::TooLarge.into(),
        ),
        (
            "two parts",
            "abc.def".into(),
            JwtError::Malformed("expected three dot-separated parts").into(),
        ),
        (
            "four parts",
            "a.b.c.d".into(),
            JwtError::Malformed("expected three dot-separated parts").into(),
        ),
        (
            "padding",
            format!("{}=", es(&good)),
            JwtError::Malformed("parts must be base64url without padding").into(),
        ),
        (
            "header not json",
            "YWJj.e30.c2ln".into(),
            JwtError::Malformed("header is not JSON").into(),
        ),
        (
            "claims not json",
            forge(json!({"alg": "ES256", "kid": kid}), &json!(1), &[1; 64]).replace(".MQ.", ".YWJj."),
            JwtError::BadSignature.into(),
        ),
    ];
    for (what, token, want) in cases {
        assert_eq!(check(&a, &token).await, Err(want), "{what}");
    }
    // Within the leeway.
    assert!(check(&a, &es(&with("exp", json!(now - 5)))).await.is_ok());
    assert!(check(&a, &es(&with("nbf", json!(now + 5)))).await.is_ok());
    // The other configured issuer.
    assert!(check(&a, &es(&with("iss", json!("iss2")))).await.is_ok());
    // Audience lists that hold ours.
    assert!(check(&a, &es(&with("aud", json!(["x", "gw"])))).await.is_ok());
}

#[tokio::test]
async fn hs_tokens_need_the_configured_secret() {
    let var = format!("MCPGATE_TEST_HS_{}", std::process::id());
    // SAFETY: tests in this module do not read this variable concurrently.
    unsafe { std::env::set_var(&var, HS) };
    let m = Minted::new();
    let a = auth(&format!(
        "jwt:\n  issuers: [iss1]\n  audiences: [gw]\n  hs_secret: {{ env: {var} }}\n  jwks: {{ inline: {} }}\n",
        m.key.public_jwk
    ));
    let claims = m.good();
    let hs = jsonwebtoken::encode(
        &Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(HS.as_bytes()),
    )
    .unwrap();
    assert_eq!(check(&a, &hs).await.unwrap().unwrap().subject, "alice");
    let wrong = jsonwebtoken::encode(
        &Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(b"another secret of at least 32 bytes!"),
    )
    .unwrap();
    assert_eq!(check(&a, &wrong).await, Err(JwtError::BadSignature.into()));
    // The public key as an HMAC secret does not verify: HS tokens only meet the secret.
    let x = URL_SAFE_NO_PAD.decode(m.key.public_jwk["x"].as_str().unwrap()).unwrap();
    let forged = jsonwebtoken::encode(
        &Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(&x),
    )
    .unwrap();
    assert_eq!(check(&a, &forged).await, Err(JwtError::BadSignature.into()));
    // ES tokens still work.
    assert!(check(&a, &m.token(claims)).await.is_ok());
    // HS algorithms without a secret are a config error.
    let e = build_err(&format!(
        "jwt: {{ algorithms: [HS256], jwks: {{ inline: {SEED_JWK} }} }}\n"
    ));
    assert_eq!(e.field, "auth.jwt.algorithms");
    unsafe { std::env::remove_var(&var) };
}

#[tokio::test]
async fn modes_and_missing_credentials() {
    let a = seed_auth("");
    assert_eq!(a.authenticate(Credentials::default()).await, Err(AuthError::Missing));
    assert_eq!(
        a.authenticate(Credentials {
            authorization: Some("Basic dXNlcjpwYXNz"),
            api_key: None
        })
        .await,
        Err(AuthError::Jwt(JwtError::Malformed(
            "expected `Authorization: Bearer <token>`"
        )))
    );
    assert_eq!(check(&a, "").await, Err(AuthError::Missing));
    let lower = format!("bearer {SEED_TOKEN}");
    assert!(
        a.authenticate(Credentials {
            authorization: Some(&lower),
            api_key: None
        })
        .await
        .is_ok()
    );
    let opt = seed_auth("mode: optional\n");
    assert_eq!(opt.authenticate(Credentials::default()).await, Ok(None));
    // Optional still refuses bad credentials.
    assert!(check(&opt, "a.b.c").await.is_err());
    let none = seed_auth("mode: none\n");
    assert_eq!(check(&none, "garbage").await, Ok(None));
    assert!(!none.is_enabled());
}

#[tokio::test]
async fn api_keys_are_hashed_and_mapped() {
    let key = "mk_live_0123456789";
    let hash = hex::encode(apikey::hash(key));
    let a = auth(&format!(
        "api_keys:\n  - hash: {hash}\n    subject: ci-bot\n    claims: {{ groups: [ci] }}\n"
    ));
    let id = check(&a, key).await.unwrap().unwrap();
    assert_eq!(id.subject, "ci-bot");
    assert_eq!(id.source, Source::ApiKey);
    assert_eq!(id.claims, json!({"sub": "ci-bot", "groups": ["ci"]}));
    let via_header = a
        .authenticate(Credentials {
            authorization: None,
            api_key: Some(key),
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(via_header, id);
    assert_eq!(check(&a, "mk_live_012345678").await, Err(AuthError::UnknownApiKey));
    assert_eq!(
        check(&a, &hash).await,
        Err(AuthError::UnknownApiKey),
        "the hash is not the key"
    );
    assert_eq!(check(&a, SEED_TOKEN).await, Err(AuthError::UnknownApiKey));
    let e = build_err("api_keys: [{ hash: abc, subject: x }]\n");
    assert_eq!(e.field, "auth.api_keys[0].hash");
    let e = build_err(&format!(
        "api_keys: [{{ hash: {hash}, subject: x }}, {{ hash: {hash}, subject: y }}]\n"
    ));
    assert!(e.message.contains("twice"));
}

#[tokio::test]
async fn required_scopes_give_insufficient_scope() {
    let m = Minted::new();
    let a = m.auth("resource: { required_scopes: [mcp:tools] }\n");
    let with_scope = mint::claims(
        "a",
        "iss1",
        &["gw".into()],
        600,
        Some(&json!({"scope": "openid mcp:tools"})),
    );
    assert!(check(&a, &m.token(with_scope)).await.is_ok());
    let scp = mint::claims("a", "iss1", &["gw".into()], 600, Some(&json!({"scp": ["mcp:tools"]})));
    assert!(check(&a, &m.token(scp)).await.is_ok());
    let without = mint::claims("a", "iss1", &["gw".into()], 600, Some(&json!({"scope": "openid"})));
    let e = check(&a, &m.token(without)).await.unwrap_err();
    assert_eq!(e, AuthError::InsufficientScope("mcp:tools".into()));
    assert_eq!(e.status(), 403);
}

#[test]
fn config_errors() {
    assert!(build_err("{}\n").message.contains("neither"));
    assert_eq!(build_err("jwt: { issuers: [a] }\n").field, "auth.jwt");
    assert_eq!(
        build_err("jwt: { jwks: { file: /nonexistent/jwks.json } }\n").field,
        "auth.jwt.jwks.file"
    );
    assert_eq!(
        build_err("jwt: { jwks: { url: 'http://example.com/jwks' } }\n").field,
        "auth.jwt.jwks.url"
    );
    assert_eq!(
        build_err(&format!(
            "jwt: {{ jwks: {{ inline: {SEED_JWK}, url: 'https://x' }} }}\n"
        ))
        .field,
        "auth.jwt.jwks"
    );
    assert_eq!(
        build_err(&format!(
            "jwt: {{ algorithms: [ES257], jwks: {{ inline: {SEED_JWK} }} }}\n"
        ))
        .field,
        "auth.jwt.algorithms"
    );
    assert_eq!(
        build_err("jwt: { jwks: { inline: { kty: oct, k: c2VjcmV0 } } }\n").field,
        "auth.jwt.jwks.inline"
    );
    assert!(serde_yaml_ng::from_str::<AuthSpec>("jwt: { issuer: [a] }\n").is_err());
}

#[test]
fn jwks_file_accepts_a_single_jwk() {
    let dir = std::env::temp_dir().join(format!("mcpgate-auth-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("jwks.json"), SEED_JWK).unwrap();
    let spec: AuthSpec = serde_yaml_ng::from_str("jwt: { issuers: [me], jwks: { file: jwks.json } }\n").unwrap();
    assert!(Authenticator::build(&spec, Some(&dir)).is_ok());
    std::fs::remove_dir_all(&dir).ok();
}

/// A tiny JWKS endpoint on loopback that counts fetches and can be switched.
async fn jwks_server(
    body: Arc<parking_lot::Mutex<Option<String>>>,
    hits: Arc<std::sync::atomic::AtomicUsize>,
) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else { return };
            let body = body.clone();
            let hits = hits.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 2048];
                let _ = s.read(&mut buf).await;
                hits.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let resp = match body.lock().clone() {
                    Some(b) => format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{b}",
                        b.len()
                    ),
                    None => "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".into(),
                };
                let _ = s.write_all(resp.as_bytes()).await;
            });
        }
    });
    format!("http://{addr}/jwks.json")
}

#[tokio::test]
async fn remote_jwks_rotation_refetch_and_outage() {
    use std::sync::atomic::Ordering;
    let k1 = Minted::new();
    let k2 = Minted::new();
    let body = Arc::new(parking_lot::Mutex::new(Some(
        json!({"keys": [k1.key.public_jwk]}).to_string(),
    )));
    let hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let url = jwks_server(body.clone(), hits.clone()).await;
    let a = auth(&format!(
        "jwt:\n  issuers: [iss1]\n  audiences: [gw]\n  jwks: {{ url: '{url}', refresh: 1h, min_refetch: 0s }}\n"
    ));
    a.start();
    // First use: the unknown kid triggers a fetch.
    assert!(check(&a, &k1.token(k1.good())).await.is_ok());
    let after_first = hits.load(Ordering::SeqCst);
    assert!(after_first >= 1);
    // Rotation: k2 appears at the endpoint; a k2 token triggers one refetch and works.
    *body.lock() = Some(json!({"keys": [k1.key.public_jwk, k2.key.public_jwk]}).to_string());
    assert!(check(&a, &k2.token(k2.good())).await.is_ok());
    assert!(hits.load(Ordering::SeqCst) > after_first);
    // Outage: the endpoint fails; the last good keys are kept.
    *body.lock() = None;
    let stranger = Minted::new();
    assert_eq!(
        check(&a, &stranger.token(stranger.good())).await,
        Err(JwtError::UnknownKid.into())
    );
    let mut c = k1.good();
    c["jti"] = json!("fresh");
    assert!(check(&a, &k1.token(c)).await.is_ok(), "last good keys kept");
}

#[tokio::test]
async fn unknown_kid_refetch_is_rate_limited() {
    use std::sync::atomic::Ordering;
    let k1 = Minted::new();
    let body = Arc::new(parking_lot::Mutex::new(Some(
        json!({"keys": [k1.key.public_jwk]}).to_string(),
    )));
    let hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let url = jwks_server(body, hits.clone()).await;
    let a = auth(&format!(
        "jwt:\n  issuers: [iss1]\n  audiences: [gw]\n  jwks: {{ url: '{url}', refresh: 1h, min_refetch: 1h }}\n"
    ));
    assert!(check(&a, &k1.token(k1.good())).await.is_ok());
    let n = hits.load(Ordering::SeqCst);
    for _ in 0..20 {
        let s = Minted::new();
        assert_eq!(check(&a, &s.token(s.good())).await, Err(JwtError::UnknownKid.into()));
    }
    assert_eq!(hits.load(Ordering::SeqCst), n, "no refetch storm from unknown kids");
}

#[test]
fn minted_keys_round_trip() {
    let k = mint::generate_es256().unwrap();
    let der = mint::from_pem(&k.private_pem).unwrap();
    assert_eq!(mint::public_jwk(&der).unwrap(), k.public_jwk);
    assert_eq!(k.public_jwk["alg"], "ES256");
    assert_eq!(k.public_jwk["kty"], "EC");
    assert!(crate::jwks::KeySet::parse(&k.public_jwk).is_ok());
}

#[tokio::test]
async fn remote_jwks_is_fetched_for_a_token_without_kid() {
    let k = Minted::new();
    let body = Arc::new(parking_lot::Mutex::new(Some(
        json!({"keys": [k.key.public_jwk]}).to_string(),
    )));
    let hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let url = jwks_server(body, hits.clone()).await;
    let a = auth(&format!(
        "jwt:\n  issuers: [iss1]\n  audiences: [gw]\n  jwks: {{ url: '{url}', min_refetch: 1h }}\n"
    ));
    let der = mint::from_pem(&k.key.private_pem).unwrap();
    let no_kid = jsonwebtoken::encode(
        &Header::new(jsonwebtoken::Algorithm::ES256),
        &k.good(),
        &EncodingKey::from_ec_der(&der),
    )
    .unwrap();
    assert_eq!(check(&a, &no_kid).await.unwrap().unwrap().subject, "alice");
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 1);
}

impl Authenticator {
    fn remote(&self) -> &Arc<crate::jwks::RemoteJwks> {
        match &self.jwt.as_ref().unwrap().keys {
            KeySource::Remote(r) => r,
            _ => panic!("not a remote JWKS"),
        }
    }
}

#[tokio::test]
async fn a_cached_token_is_refused_once_its_exp_passes() {
    let m = Minted::new();
    let a = auth(&format!(
        "jwt:\n  issuers: [iss1]\n  audiences: [gw]\n  leeway: 0s\n  jwks: {{ inline: {} }}\n",
        m.key.public_jwk
    ));
    let exp = crate::cache::unix_now() + 2;
    let mut c = m.good();
    c["exp"] = json!(exp);
    let t = m.token(c);
    assert!(check(&a, &t).await.is_ok());
    assert!(check(&a, &t).await.is_ok());
    assert_eq!(a.cached(), 1);
    while crate::cache::unix_now() <= exp {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(check(&a, &t).await, Err(JwtError::Expired.into()));
}

#[tokio::test]
async fn a_token_accepted_only_by_the_leeway_is_not_cached() {
    let m = Minted::new();
    let a = m.auth("");
    let mut c = m.good();
    c["exp"] = json!(crate::cache::unix_now() - 5);
    let t = m.token(c);
    assert!(check(&a, &t).await.is_ok(), "within the 30 s leeway");
    assert_eq!(a.cached(), 0);
}

#[tokio::test]
async fn a_cached_token_is_compared_whole() {
    let m = Minted::new();
    let a = m.auth("");
    let t = m.token(m.good());
    assert!(check(&a, &t).await.is_ok());
    assert_eq!(a.cached(), 1);
    // The same header and claims with another signature: verified, and refused.
    let (hp, sig) = t.rsplit_once('.').unwrap();
    let mut bytes = URL_SAFE_NO_PAD.decode(sig).unwrap();
    bytes[10] ^= 1;
    let forged = format!("{hp}.{}", URL_SAFE_NO_PAD.encode(&bytes));
    assert_eq!(check(&a, &forged).await, Err(JwtError::BadSignature.into()));
    // A prefix of the cached token is not the token.
    assert!(check(&a, &t[..t.len() - 1]).await.is_err());
}

#[tokio::test]
async fn a_jwks_change_ends_cached_verifications() {
    use std::sync::atomic::Ordering;
    let k1 = Minted::new();
    let k2 = Minted::new();
    let body = Arc::new(parking_lot::Mutex::new(Some(
        json!({"keys": [k1.key.public_jwk]}).to_string(),
    )));
    let hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let url = jwks_server(body.clone(), hits.clone()).await;
    let a = auth(&format!(
        "jwt:\n  issuers: [iss1]\n  audiences: [gw]\n  jwks: {{ url: '{url}', refresh: 1h, min_refetch: 1h }}\n"
    ));
    let t1 = k1.token(k1.good());
    assert!(check(&a, &t1).await.is_ok());
    assert_eq!(a.cached(), 1);
    let generation = a.remote().keys().generation();
    // A refresh that brings the same document keeps the key set, so the entry stays usable.
    a.remote().fetch_now().await;
    assert_eq!(a.remote().keys().generation(), generation);
    assert!(check(&a, &t1).await.is_ok());
    // k1 is revoked: the endpoint now serves k2 only. After the next refresh a token
    // verified (and cached) with k1 is refused at once, not when its entry ages out.
    *body.lock() = Some(json!({"keys": [k2.key.public_jwk]}).to_string());
    let before = hits.load(Ordering::SeqCst);
    a.remote().fetch_now().await;
    assert_eq!(hits.load(Ordering::SeqCst), before + 1);
    assert_ne!(a.remote().keys().generation(), generation);
    assert_eq!(check(&a, &t1).await, Err(JwtError::UnknownKid.into()));
    assert!(check(&a, &k2.token(k2.good())).await.is_ok());
    // k1 comes back (a rollback): its tokens verify again, against the new set.
    *body.lock() = Some(json!({"keys": [k1.key.public_jwk, k2.key.public_jwk]}).to_string());
    a.remote().fetch_now().await;
    assert!(check(&a, &t1).await.is_ok());
}

#[tokio::test]
async fn api_keys_still_work_beside_cached_jwts() {
    let m = Minted::new();
    let key = "mk_live_beside_jwt";
    let a = m.auth(&format!(
        "api_keys:\n  - hash: {}\n    subject: ci-bot\n",
        hex::encode(apikey::hash(key))
    ));
    let t = m.token(m.good());
    assert_eq!(check(&a, &t).await.unwrap().unwrap().subject, "alice");
    assert_eq!(check(&a, &t).await.unwrap().unwrap().subject, "alice");
    assert_eq!(check(&a, key).await.unwrap().unwrap().subject, "ci-bot");
    assert_eq!(check(&a, "mk_live_other").await, Err(AuthError::UnknownApiKey));
    assert_eq!(a.cached(), 1, "API keys are not held in the token cache");
}
