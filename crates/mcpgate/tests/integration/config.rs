//! Configuration: every shipped example loads, and `mcpgate check` reports a broken file
//! with its position and a non-zero exit.

use std::path::PathBuf;
use std::process::Output;

use crate::common::*;

fn examples_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

async fn mcpgate(args: &[&str]) -> Output {
    let mut cmd = tokio::process::Command::new(MCPGATE);
    cmd.args(args).env("MCPGATE_LOG", "error").kill_on_drop(true);
    within("mcpgate to exit", cmd.output()).await.expect("mcpgate runs")
}

#[test]
fn every_example_config_loads() {
    let mut checked = 0;
    for entry in std::fs::read_dir(examples_dir()).expect("examples/ exists") {
        let path = entry.unwrap().path();
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        if !["yaml", "yml", "json"].contains(&ext) {
            continue;
        }
        let cfg = mcpgate_config::Config::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(!cfg.targets.is_empty(), "{} has targets", path.display());
        checked += 1;
    }
    assert!(checked >= 1, "no example configs found");
}

#[tokio::test]
async fn check_accepts_every_example_and_prints_its_targets() {
    for entry in std::fs::read_dir(examples_dir()).unwrap() {
        let path = entry.unwrap().path();
        if !path
            .extension()
            .is_some_and(|e| e == "yaml" || e == "yml" || e == "json")
        {
            continue;
        }
        let out = mcpgate(&["check", "-c", path.to_str().unwrap()]).await;
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}: {stdout}{}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let cfg = mcpgate_config::Config::load(&path).unwrap();
        for t in &cfg.targets {
            assert!(stdout.contains(&*t.name), "target {} is listed: {stdout}", t.name);
        }
    }
}

#[tokio::test]
async fn check_rejects_a_broken_config_with_its_position() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, &str, &str); 3] = [
        (
            "typo.yaml",
            "listen:\n  address: 127.0.0.1:8080\ntargets:\n  - name: a\n    stdio:\n      comand: echo\n",
            ":6:",
        ),
        (
            "two-transports.yaml",
            "targets:\n  - name: a\n    stdio:\n      command: echo\n    sse:\n      url: http://127.0.0.1:1/sse\n",
            ":2",
        ),
        ("not-yaml.yaml", "targets: [\n  - name: a\n", ":"),
    ];
    for (file, text, position) in cases {
        let path = dir.path().join(file);
        std::fs::write(&path, text).unwrap();
        let out = mcpgate(&["check", "-c", path.to_str().unwrap()]).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{file} must be rejected");
        let expected = format!("{file}{position}");
        assert!(
            stderr.contains(&expected),
            "{file}: the error names the position ({expected}): {stderr}"
        );
        // The library reports the same position.
        let err = mcpgate_config::Config::load(&path).expect_err("invalid");
        assert!(err.to_string().contains(&expected), "{err}");
    }
    let missing = dir.path().join("missing.yaml");
    let out = mcpgate(&["check", "-c", missing.to_str().unwrap()]).await;
    assert!(!out.status.success());
}
