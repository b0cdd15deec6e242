//! A minimal OTLP/HTTP endpoint for the tracing scenario: it accepts `POST /v1/traces`
//! (HTTP/1.1, keep-alive), counts the export requests and their bytes, and answers `200` with
//! an empty `ExportTraceServiceResponse` (an empty protobuf message is zero bytes). It does not
//! decode the spans: the scenario measures the gateway's cost of making and exporting them, and
//! the integration tests check their content.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// What the sink received.
#[derive(Default, Debug)]
pub struct SinkStats {
    /// Export requests answered.
    pub requests: AtomicU64,
    /// Body bytes received.
    pub bytes: AtomicU64,
}

/// Starts the sink on 127.0.0.1 (ephemeral port); returns its base URL and its counters. It
/// runs until the process ends.
pub async fn start() -> std::io::Result<(String, Arc<SinkStats>)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let stats = Arc::new(SinkStats::default());
    let counted = stats.clone();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            tokio::spawn(serve(sock, counted.clone()));
        }
    });
    Ok((format!("http://{addr}"), stats))
}

const OK: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n";

async fn serve(mut sock: tokio::net::TcpStream, stats: Arc<SinkStats>) {
    let mut buf = Vec::with_capacity(64 * 1024);
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        // Headers.
        let head_end = loop {
            if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break p + 4;
            }
            match sock.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:").and_then(|v| v.trim().parse().ok()))
            .unwrap_or(0);
        // Body.
        while buf.len() < head_end + len {
            match sock.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        buf.drain(..head_end + len);
        stats.requests.fetch_add(1, Ordering::Relaxed);
        stats.bytes.fetch_add(len as u64, Ordering::Relaxed);
        if sock.write_all(OK).await.is_err() {
            return;
        }
    }
}
