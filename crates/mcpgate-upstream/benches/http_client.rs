//! Measures the HTTP side of the upstream client on loopback, to back the choice of HTTP
//! client: raw POST round trips with reqwest vs a bare hyper-util client against the same
//! fixed-answer server, then full `Connection::request` round trips (Streamable HTTP, JSON
//! and SSE answers) against the example server.
//!
//! Measured on the 2-core dev machine (release profile, 20 000 requests each). First run,
//! quiet machine, `Connection` still on reqwest:
//!
//! | path                                   | sequential  | 32 in flight |
//! |----------------------------------------|-------------|--------------|
//! | raw POST, reqwest 0.13                 | 14 000/s    | 14 700/s     |
//! | raw POST, hyper-util 0.1               | 29 100/s    | 43 100/s     |
//! | `Connection::request` on reqwest, JSON | 12 200/s    | 20 200/s     |
//! | `Connection::request` on reqwest, SSE  |  7 000/s    |  7 900/s     |
//!
//! Later runs with `Connection` on hyper-util shared the cores with other builds (load 4–5)
//! and are noisy: raw hyper-util stayed 1.1–2× ahead of raw reqwest; `Connection::request`
//! reached 15 300/s (JSON) and 9 300/s (SSE) sequentially in the better of them.
//!
//! which is why [`mcpgate_upstream::HttpClient`] wraps hyper-util.
//!
//! `cargo bench -p mcpgate-upstream --bench http_client` (prints requests/second).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use mcpgate_proto::RawJson;
use mcpgate_upstream::{ConnectOptions, Connection, HttpClient, Inbound, TransportSpec};
use tokio::time::Instant;

const BODY: &str =
    r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"message":"hello"}}}"#;
const ANSWER: &str = r#"{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"hello"}]}}"#;

async fn fixed_server() -> std::net::SocketAddr {
    use axum::routing::post;
    let app = axum::Router::new().route(
        "/mcp",
        post(|| async { ([(http::header::CONTENT_TYPE, "application/json")], ANSWER) }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// Runs `n` operations with `concurrency` workers; returns operations per second.
async fn run<F, Fut>(n: usize, concurrency: usize, op: F) -> f64
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let op = Arc::new(op);
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let op = op.clone();
            tokio::spawn(async move {
                for _ in 0..n / concurrency {
                    op().await;
                }
            })
        })
        .collect();
    for w in workers {
        w.await.unwrap();
    }
    n as f64 / started.elapsed().as_secs_f64()
}

fn report(name: &str, sequential: f64, concurrent: f64) {
    println!("{name:<44} {sequential:>9.0} req/s sequential   {concurrent:>9.0} req/s with 32 in flight");
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n: usize = std::env::var("BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let addr = fixed_server().await;
    let url = format!("http://{addr}/mcp");

    // Installs rustls' ring provider, which reqwest (rustls-no-provider) needs too.
    let gateway_client = HttpClient::new();
    let client = reqwest::Client::builder().tcp_nodelay(true).no_proxy().build().unwrap();
    let mk = |client: reqwest::Client, url: String| {
        move || {
            let client = client.clone();
            let url = url.clone();
            async move {
                let resp = client
                    .post(url)
                    .header(http::header::ACCEPT, "application/json, text/event-stream")
                    .header(http::header::CONTENT_TYPE, "application/json")
                    .body(Bytes::from_static(BODY.as_bytes()))
                    .send()
                    .await
                    .unwrap();
                let body = resp.bytes().await.unwrap();
                assert_eq!(body.len(), ANSWER.len());
            }
        }
    };
    run(1000, 1, mk(client.clone(), url.clone())).await; // warm up
    let seq = run(n, 1, mk(client.clone(), url.clone())).await;
    let conc = run(n, 32, mk(client.clone(), url.clone())).await;
    report("raw POST, reqwest", seq, conc);

    let hyper: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let uri: http::Uri = url.parse().unwrap();
    let mk = |hyper: Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>, uri: http::Uri| {
        move || {
            let hyper = hyper.clone();
            let uri = uri.clone();
            async move {
                let req = http::Request::post(uri)
                    .header(http::header::ACCEPT, "application/json, text/event-stream")
                    .header(http::header::CONTENT_TYPE, "application/json")
                    .body(Full::new(Bytes::from_static(BODY.as_bytes())))
                    .unwrap();
                let resp = hyper.request(req).await.unwrap();
                let body = resp.into_body().collect().await.unwrap().to_bytes();
                assert_eq!(body.len(), ANSWER.len());
            }
        }
    };
    run(1000, 1, mk(hyper.clone(), uri.clone())).await;
    let seq = run(n, 1, mk(hyper.clone(), uri.clone())).await;
    let conc = run(n, 32, mk(hyper.clone(), uri.clone())).await;
    report("raw POST, hyper-util", seq, conc);

    for sse in [false, true] {
        let server = mcpgate_example_server::spawn_http(mcpgate_example_server::Options {
            sse_responses: sse,
            ..Default::default()
        })
        .await
        .unwrap();
        let spec = TransportSpec::StreamableHttp {
            url: server.mcp_url().parse().unwrap(),
            headers: Default::default(),
        };
        let handler = Arc::new(|_: Inbound| {});
        let (conn, _) = Connection::connect(&spec, ConnectOptions::new("bench", gateway_client.clone()), handler)
            .await
            .unwrap();
        let params = RawJson::from_static(r#"{"name":"echo","arguments":{"message":"hello"}}"#);
        let mk = |conn: Connection, params: RawJson| {
            move || {
                let conn = conn.clone();
                let params = params.clone();
                async move {
                    let r = conn.request("tools/call", Some(params)).await.unwrap();
                    assert!(r.result.is_some());
                }
            }
        };
        run(1000, 1, mk(conn.clone(), params.clone())).await;
        let seq = run(n, 1, mk(conn.clone(), params.clone())).await;
        let conc = run(n, 32, mk(conn.clone(), params.clone())).await;
        let name = if sse {
            "Connection::request, example server, SSE"
        } else {
            "Connection::request, example server, JSON"
        };
        report(name, seq, conc);
        conn.close().await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
