//! Scenario 9: what OpenTelemetry tracing costs on the hot path. The same `tools/call` load
//! goes through a gateway without `observability.tracing` ("direct" in the tables) and one
//! that makes a server and a client span for every call, puts the context into the upstream
//! request (`_meta` and headers), samples everything and exports every span over OTLP/HTTP to
//! an in-process sink ([`crate::otlp_sink`]).
//!
//! Tracing *off* has no row of its own: it is the baseline of every other scenario, and its
//! whole cost is a branch on `Option<Tracing>` at each instrumented point (see
//! docs/observability.md, *Cost*).

use std::sync::atomic::Ordering;

use super::*;

impl Suite {
    pub(super) async fn scenario9(&mut self, up: &Server) -> anyhow::Result<ScenarioResult> {
        eprintln!("scenario 9: OpenTelemetry tracing exported over OTLP, on vs off");
        let (sink, received) = crate::otlp_sink::start().await?;
        let off_yaml = one_target_yaml(&up.mcp());
        let on_yaml = format!(
            "{}observability:\n  tracing:\n    sampling_ratio: 1\n    otlp: {{ endpoint: {}, protocol: http/protobuf }}\n",
            one_target_yaml(&up.mcp()),
            yaml_str(&sink)
        );
        let off = self.start_gateway("s9-off", &off_yaml).await?;
        let on = self.start_gateway("s9-on", &on_yaml).await?;
        let call = Call::tool("echo", r#"{"message":"hello"}"#);
        let mut comparisons = Vec::new();
        for c in self.p.small_concurrency.clone() {
            let cmp = self
                .compare(
                    "tracing (every span exported), on vs off",
                    &off.streamable(),
                    &on.streamable(),
                    on.proc.pid,
                    &call,
                    c,
                )
                .await?;
            let p50_pct = change_pct(cmp.gateway.latency_us.p50, cmp.direct.latency_us.p50);
            let errors = cmp.direct.errors + cmp.gateway.errors;
            let err_note = (errors > 0).then(|| format!("{errors} errors"));
            let failed_or_info = if errors > 0 { Verdict::Failed } else { Verdict::Info };
            self.rows.push(Row {
                scenario: "9".into(),
                metric: format!("tracing, every span exported, c={c}: p50 latency, off → on"),
                unit: "µs",
                direct: Some(cmp.direct.latency_us.p50),
                gateway: Some(cmp.gateway.latency_us.p50),
                versus: Some(format!("{p50_pct:+.1} %")),
                bar: None,
                verdict: failed_or_info,
                noise: join_notes([cmp.p50_noise(), err_note.clone()]),
            });
            self.rows.push(Row {
                scenario: "9".into(),
                metric: format!("tracing, every span exported, c={c}: throughput, off → on"),
                unit: "req/s",
                direct: Some(cmp.direct.throughput_rps),
                gateway: Some(cmp.gateway.throughput_rps),
                versus: Some(format!("{:.2}×", cmp.throughput_ratio)),
                bar: None,
                verdict: failed_or_info,
                noise: join_notes([cmp.ratio_noise(), err_note]),
            });
            if c == 16 {
                // CPU per call of each gateway, measured the same way: the same load again
                // with the roles swapped, so the harness watches the tracing-off process.
                let swapped = self
                    .compare(
                        "tracing, on vs off (roles swapped: CPU of the tracing-off gateway)",
                        &on.streamable(),
                        &off.streamable(),
                        off.proc.pid,
                        &call,
                        c,
                    )
                    .await?;
                let cpu = |c: &Comparison| c.gateway_cost.map_or(0.0, |g| g.cpu_s_per_1k);
                let (off_cpu, on_cpu) = (cpu(&swapped), cpu(&cmp));
                self.rows.push(Row {
                    scenario: "9".into(),
                    metric: format!("tracing, every span exported, c={c}: gateway CPU per 1,000 calls, off → on"),
                    unit: "s",
                    direct: Some(off_cpu),
                    gateway: Some(on_cpu),
                    versus: Some(format!("{:+.1} %", change_pct(on_cpu, off_cpu))),
                    bar: None,
                    verdict: failed_or_info,
                    noise: None,
                });
                comparisons.push(swapped);
            }
            comparisons.push(cmp);
        }
        off.proc.stop().await;
        // Stopping flushes the exporter: after it, every span the run made has been sent.
        on.proc.stop().await;
        let exports = received.requests.load(Ordering::Relaxed);
        let bytes = received.bytes.load(Ordering::Relaxed);
        anyhow::ensure!(exports > 0, "the OTLP sink received no export");
        Ok(ScenarioResult {
            id: "9",
            title: "",
            status: "ok",
            error: None,
            comparisons,
            details: serde_json::json!({
                "note": "direct = the gateway without tracing; gateway = tracing on, sampling 1, every span exported over OTLP/HTTP (protobuf) to an in-process sink that answers 200",
                "otlp_exports": exports,
                "otlp_bytes": bytes,
            }),
        })
    }
}
