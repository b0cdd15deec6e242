//! The accept loop of the main listener: every connection is served by hyper's HTTP/1.1
//! connection directly.
//!
//! Not `axum::serve`: it goes through hyper-util's protocol-sniffing builder, which first reads
//! up to 24 bytes on its own to tell an HTTP/2 preface apart and then hands them back to
//! hyper. hyper's first read then returns only those bytes, the request head is incomplete,
//! and its 8 KiB read buffer is grown to 16 KiB for the rest — on every connection, for as
//! long as it lives (an open GET stream lives for hours). The gateway serves HTTP/1.1 only,
//! so there is nothing to sniff. Graceful shutdown is the same as axum's: stop accepting,
//! ask every connection to finish its in-flight exchange, wait for them all.

use std::future::Future;
use std::pin::pin;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Serves `router` on `listener` until `shutdown` resolves and every connection has ended.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // The signal: `stop_rx` is dropped when `shutdown` resolves.
    let (stop_tx, stop_rx) = watch::channel(());
    tokio::spawn(async move {
        shutdown.await;
        drop(stop_rx);
    });
    // Every connection task holds a receiver; all gone = every connection ended.
    let (done_tx, done_rx) = watch::channel(());
    loop {
        let stream = tokio::select! {
            r = listener.accept() => match r {
                Ok((stream, _)) => stream,
                Err(e) => {
                    accept_error(e).await;
                    continue;
                }
            },
            _ = stop_tx.closed() => break,
        };
        let service = TowerToHyperService::new(router.clone());
        let stop = stop_tx.clone();
        let done = done_rx.clone();
        tokio::spawn(async move {
            let mut conn = pin!(http1::Builder::new().serve_connection(TokioIo::new(stream), service));
            let mut stopping = pin!(stop.closed());
            let mut asked = false;
            loop {
                tokio::select! {
                    r = conn.as_mut() => {
                        if let Err(e) = r {
                            tracing::trace!(error = %e, "A connection ended with an error.");
                        }
                        break;
                    }
                    _ = &mut stopping, if !asked => {
                        asked = true;
                        conn.as_mut().graceful_shutdown();
                    }
                }
            }
            drop(done);
        });
    }
    drop(done_rx);
    drop(listener);
    done_tx.closed().await;
    Ok(())
}

/// After a failed `accept`: a connection that went away is nothing; anything else (out of
/// descriptors, typically) is logged and the loop pauses a second instead of spinning.
async fn accept_error(e: std::io::Error) {
    use std::io::ErrorKind::*;
    if matches!(e.kind(), ConnectionRefused | ConnectionAborted | ConnectionReset) {
        return;
    }
    tracing::error!(error = %e, "Cannot accept a connection; retrying in a second.");
    tokio::time::sleep(Duration::from_secs(1)).await;
}
