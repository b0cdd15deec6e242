//! The OpenTelemetry trace pipeline of `mcpgate run`: a tracer provider with a batch span
//! processor exporting over OTLP (HTTP/protobuf or gRPC), built from `observability.tracing`,
//! and flushed when the gateway stops. The spans themselves are made by
//! `mcpgate_core::trace`; nothing here runs when tracing is not configured.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Context as _;
use mcpgate_config::{OtlpProtocol, Tracing};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_otlp::{WithExportConfig as _, WithHttpConfig as _, WithTonicConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};

/// The running trace pipeline.
pub struct Pipeline {
    provider: SdkTracerProvider,
}

/// Builds the exporter and the tracer provider; must run inside the Tokio runtime (the gRPC
/// channel and the HTTP client live on it).
pub fn start(cfg: &Tracing) -> anyhow::Result<(Pipeline, mcpgate_core::trace::Tracing)> {
    let exporter = match cfg.protocol {
        OtlpProtocol::HttpProtobuf => {
            let headers: HashMap<String, String> = cfg
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), v.expose().to_owned()))
                .collect();
            opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                .with_endpoint(cfg.endpoint.as_str())
                .with_timeout(cfg.timeout)
                .with_headers(headers)
                .with_http_client(RuntimeHttpClient::new(cfg.timeout)?)
                .build()
        }
        OtlpProtocol::Grpc => {
            let mut headers = http::HeaderMap::new();
            for (k, v) in &cfg.headers {
                let name = http::HeaderName::try_from(k.as_str())
                    .with_context(|| format!("`{k}` is not a gRPC metadata key"))?;
                let mut value = http::HeaderValue::try_from(v.expose())
                    .with_context(|| format!("the value of `{k}` is not valid metadata"))?;
                value.set_sensitive(true);
                headers.append(name, value);
            }
            let metadata = opentelemetry_otlp::tonic_types::metadata::MetadataMap::from_headers(headers);
            let mut builder = opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint(cfg.endpoint.as_str())
                .with_timeout(cfg.timeout)
                .with_metadata(metadata);
            if cfg.endpoint.scheme() == "https" {
                let _ = rustls::crypto::ring::default_provider().install_default();
                builder = builder.with_tls_config(
                    opentelemetry_otlp::tonic_types::transport::ClientTlsConfig::new().with_native_roots(),
                );
            }
            builder.build()
        }
    }
    .context("cannot build the OTLP exporter")?;
    let resource = Resource::builder()
        .with_service_name(cfg.service_name.clone())
        .with_attribute(KeyValue::new("service.version", mcpgate_core::VERSION))
        .build();
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
            cfg.sampling_ratio,
        ))))
        .with_resource(resource)
        .build();
    let scope = InstrumentationScope::builder("mcpgate")
        .with_version(mcpgate_core::VERSION)
        .build();
    let tracer = provider.tracer_with_scope(scope);
    tracing::info!(
        endpoint = %cfg.endpoint,
        protocol = match cfg.protocol { OtlpProtocol::HttpProtobuf => "http/protobuf", OtlpProtocol::Grpc => "grpc" },
        sampling_ratio = cfg.sampling_ratio,
        "Exporting traces over OTLP."
    );
    Ok((Pipeline { provider }, mcpgate_core::trace::Tracing::new(tracer)))
}

impl Pipeline {
    /// Exports the spans still queued, then stops the exporter (bounded by `timeout`).
    pub async fn shutdown(self, timeout: Duration) {
        // The batch processor's thread blocks until the export is done, and the export runs
        // on this runtime: wait for it from a blocking thread, not from a runtime worker.
        let provider = self.provider;
        let done = tokio::task::spawn_blocking(move || provider.shutdown_with_timeout(timeout)).await;
        match done {
            Ok(Ok(())) => tracing::debug!("Trace exporter flushed and stopped."),
            Ok(Err(e)) => tracing::warn!(error = %e, "Could not flush the trace exporter."),
            Err(e) => tracing::warn!(error = %e, "Could not flush the trace exporter."),
        }
    }
}

/// The HTTP client of the OTLP/HTTP exporter. The batch processor exports from a thread of
/// its own; each request is handed to the Tokio runtime (where reqwest's connections live)
/// and awaited from there.
#[derive(Debug, Clone)]
struct RuntimeHttpClient {
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

impl RuntimeHttpClient {
    fn new(timeout: Duration) -> anyhow::Result<Self> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .context("cannot build the OTLP HTTP client")?;
        Ok(RuntimeHttpClient {
            client,
            runtime: tokio::runtime::Handle::current(),
        })
    }
}

/// Largest OTLP response body read (the collector's partial-success message).
const MAX_RESPONSE_BYTES: usize = 1 << 20;

#[async_trait::async_trait]
impl opentelemetry_http::HttpClient for RuntimeHttpClient {
    async fn send_bytes(
        &self,
        request: http::Request<bytes::Bytes>,
    ) -> Result<http::Response<bytes::Bytes>, opentelemetry_http::HttpError> {
        let client = self.client.clone();
        let exchange = async move {
            let request = reqwest::Request::try_from(request)?;
            let mut response = client.execute(request).await?;
            let status = response.status();
            let headers = std::mem::take(response.headers_mut());
            let mut body = bytes::BytesMut::new();
            while let Some(chunk) = response.chunk().await? {
                if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                    return Err("the OTLP response body is too large".into());
                }
                body.extend_from_slice(&chunk);
            }
            let mut out = http::Response::new(body.freeze());
            *out.status_mut() = status;
            *out.headers_mut() = headers;
            Ok::<_, opentelemetry_http::HttpError>(out)
        };
        self.runtime.spawn(exchange).await?
    }
}
