//! `mcpgate token`: test keys and tokens for trying authentication without an identity
//! provider. `keygen` writes an ES256 private key and the matching JWKS; `sign` prints a
//! token signed with that key.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Subcommand;
use mcpgate_auth::mint;

/// `mcpgate token …`
#[derive(Subcommand)]
pub enum TokenCommand {
    /// Generate an ES256 key pair: the private key (PKCS#8 PEM) and its JWKS.
    Keygen {
        /// Where to write the private key.
        #[arg(long, default_value = "mcpgate-key.pem")]
        key: PathBuf,
        /// Where to write the public JWKS.
        #[arg(long, default_value = "jwks.json")]
        jwks: PathBuf,
        /// Write one JWK object (like the seed's jwks.json) instead of a JWK Set.
        #[arg(long)]
        single: bool,
    },
    /// Print a token signed with a key from `keygen`.
    Sign {
        /// The private key.
        #[arg(long, default_value = "mcpgate-key.pem")]
        key: PathBuf,
        /// `sub` claim.
        #[arg(long)]
        sub: String,
        /// `iss` claim.
        #[arg(long)]
        iss: String,
        /// `aud` claim (repeatable).
        #[arg(long)]
        aud: Vec<String>,
        /// Lifetime: `30s`, `15m`, `1h`, `7d`.
        #[arg(long, default_value = "1h")]
        ttl: String,
        /// Extra claim `name=value` (value parsed as JSON when it is JSON, else a string;
        /// repeatable).
        #[arg(long = "claim", value_name = "NAME=VALUE")]
        claims: Vec<String>,
        /// `kid` header (default: the key's thumbprint, as in the JWKS).
        #[arg(long)]
        kid: Option<String>,
    },
}

fn ttl_secs(t: &str) -> anyhow::Result<u64> {
    let t = t.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(split);
    let n: u64 = n.parse().with_context(|| format!("`{t}` is not a duration like 1h"))?;
    Ok(match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86400,
        _ => bail!("`{t}` is not a duration like 1h"),
    })
}

/// Runs a token subcommand.
pub fn run(cmd: TokenCommand) -> anyhow::Result<()> {
    match cmd {
        TokenCommand::Keygen { key, jwks, single } => {
            let k = mint::generate_es256().map_err(anyhow::Error::msg)?;
            write_private(&key, &k.private_pem)?;
            let doc = if single {
                k.public_jwk.clone()
            } else {
                serde_json::json!({ "keys": [k.public_jwk] })
            };
            std::fs::write(&jwks, serde_json::to_string_pretty(&doc)? + "\n")
                .with_context(|| format!("cannot write {}", jwks.display()))?;
            eprintln!(
                "Wrote {} (private) and {} (kid {}).",
                key.display(),
                jwks.display(),
                k.public_jwk["kid"].as_str().unwrap_or("?")
            );
            Ok(())
        }
        TokenCommand::Sign {
            key,
            sub,
            iss,
            aud,
            ttl,
            claims,
            kid,
        } => {
            let pem = std::fs::read_to_string(&key).with_context(|| format!("cannot read {}", key.display()))?;
            let mut extra = serde_json::Map::new();
            for c in claims {
                let Some((k, v)) = c.split_once('=') else {
                    bail!("--claim `{c}` is not NAME=VALUE");
                };
                let v = serde_json::from_str(v).unwrap_or_else(|_| serde_json::Value::String(v.to_owned()));
                extra.insert(k.to_owned(), v);
            }
            let claims = mint::claims(
                &sub,
                &iss,
                &aud,
                ttl_secs(&ttl)?,
                Some(&serde_json::Value::Object(extra)),
            );
            let token = mint::sign_es256(&pem, kid.as_deref(), &claims).map_err(anyhow::Error::msg)?;
            println!("{token}");
            Ok(())
        }
    }
}

fn write_private(path: &PathBuf, pem: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(pem.as_bytes())?;
    Ok(())
}
