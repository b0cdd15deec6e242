//! Live reload of the whole configuration (targets, naming, authentication, policies,
//! limits): on SIGHUP, and when the config file (or a file beside it, such as a JWKS file)
//! changes. A file that does not load is rejected with its error and the running config
//! stays; sessions are never dropped. How targets are added, replaced and retired is
//! `Gateway::reload`'s business (mcpgate-core); listener address, paths and body limit need a
//! restart (a warning says so).

use std::path::{Path, PathBuf};
use std::time::Duration;

use mcpgate_config::Config;
use mcpgate_core::Gateway;
use notify::Watcher;

/// Starts the SIGHUP handler and the file watcher. The returned watcher must be kept alive.
pub fn spawn(path: PathBuf, gw: Gateway) -> Option<notify::RecommendedWatcher> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<&'static str>();
    #[cfg(unix)]
    {
        let tx = tx.clone();
        tokio::spawn(async move {
            let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else {
                return;
            };
            while hup.recv().await.is_some() {
                if tx.send("SIGHUP").is_err() {
                    return;
                }
            }
        });
    }
    let watcher = watch(&path, tx);
    tokio::spawn(async move {
        while let Some(why) = rx.recv().await {
            // Editors write in several steps: let the burst settle, then reload once.
            tokio::time::sleep(Duration::from_millis(150)).await;
            while rx.try_recv().is_ok() {}
            reload(&path, &gw, why);
        }
    });
    watcher
}

/// Does a change to `p` call for a reload: the config file itself, a key file (JWKS, PEM)
/// beside it, or a Kubernetes ConfigMap/Secret volume swapping its `..data` link? Other files
/// in the directory (logs) are ignored.
fn relevant(p: &Path, config_name: Option<&std::ffi::OsStr>) -> bool {
    p.file_name().is_some_and(|n| Some(n) == config_name)
        || p.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("..data"))
        || p.extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| matches!(e, "json" | "jwk" | "jwks" | "pem" | "yaml" | "yml"))
}

fn watch(path: &Path, tx: tokio::sync::mpsc::UnboundedSender<&'static str>) -> Option<notify::RecommendedWatcher> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let config_name = path.file_name().map(|n| n.to_owned());
    let handler = move |ev: notify::Result<notify::Event>| {
        if let Ok(ev) = ev
            && (ev.kind.is_modify() || ev.kind.is_create() || ev.kind.is_remove())
            && ev.paths.iter().any(|p| relevant(p, config_name.as_deref()))
        {
            let _ = tx.send("file change");
        }
    };
    let mut w = match notify::recommended_watcher(handler) {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!(error = %e, "Cannot watch the config file; reload with SIGHUP.");
            return None;
        }
    };
    if let Err(e) = w.watch(&dir, notify::RecursiveMode::NonRecursive) {
        tracing::warn!(dir = %dir.display(), error = %e, "Cannot watch the config directory; reload with SIGHUP.");
        return None;
    }
    Some(w)
}

fn reload(path: &Path, gw: &Gateway, why: &str) {
    let new = match Config::load(path) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(trigger = why, error = %e, "Config reload rejected; the running config stays.");
            return;
        }
    };
    let report = gw.reload(new);
    if !report.needs_restart.is_empty() {
        tracing::warn!(
            settings = ?report.needs_restart,
            "These listener settings changed but need a restart; the running values stay."
        );
    }
    tracing::info!(trigger = why, file = %path.display(), "Config reloaded.");
}

#[cfg(test)]
mod tests {
    use super::relevant;
    use std::ffi::OsStr;
    use std::path::Path;

    #[test]
    fn which_changes_reload() {
        let name = Some(OsStr::new("gateway.conf"));
        assert!(relevant(Path::new("/etc/mcpgate/gateway.conf"), name));
        assert!(relevant(Path::new("/etc/mcpgate/jwks.json"), name));
        assert!(relevant(Path::new("/etc/mcpgate/key.pem"), name));
        assert!(relevant(Path::new("/etc/mcpgate/..data"), name));
        assert!(relevant(Path::new("/etc/mcpgate/..data_tmp"), name));
        assert!(!relevant(Path::new("/etc/mcpgate/gateway.log"), name));
        assert!(!relevant(Path::new("/etc/mcpgate/.gateway.conf.swp"), name));
    }
}
