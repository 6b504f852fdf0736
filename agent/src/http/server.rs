//! The connection loop under every listener: hyper's HTTP/1 server with a
//! header-read timeout and a graceful shutdown that has a deadline.
//!
//! Why not `axum::serve`: it sets no timer, so a client that opens a
//! connection and trickles its headers a byte at a time (slowloris) holds
//! the connection and its task forever, and its graceful shutdown waits
//! for every request however long it takes. Here hyper cuts a connection
//! whose headers are not complete within `header_read_timeout`, and on
//! shutdown the requests in flight get `shutdown_grace`; then their
//! connections are dropped so the process can go on stopping.
//!
//! Every request carries the peer address as axum's `ConnectInfo`, which
//! the API's per-address rate limits read.

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::connect_info::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use super::Hardening;

/// Serves `app` on `listener` until `shutdown`, then waits at most
/// `hardening.shutdown_grace` for the requests in flight.
pub async fn run(
    listener: TcpListener,
    app: Router,
    hardening: Hardening,
    shutdown: CancellationToken,
) {
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(hardening.header_read_timeout);
    let graceful = GracefulShutdown::new();
    let mut connections = JoinSet::new();
    loop {
        let (stream, client) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    pause_after_accept_error(&error).await;
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        // Reap finished connections so the set holds only open ones.
        while connections.try_join_next().is_some() {}
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%client, %error, "cannot set TCP_NODELAY");
        }
        let service = app
            .clone()
            .map_request(move |mut request: axum::http::Request<Incoming>| {
                request.extensions_mut().insert(ConnectInfo(client));
                request
            });
        let connection = graceful
            .watch(http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service)));
        connections.spawn(async move {
            if let Err(error) = connection.await {
                log_connection_error(client, &error);
            }
        });
    }
    drop(listener);
    let open = graceful.count();
    match tokio::time::timeout(hardening.shutdown_grace, graceful.shutdown()).await {
        Ok(()) => tracing::info!(connections = open, "HTTP server stopped"),
        Err(_) => {
            while connections.try_join_next().is_some() {}
            tracing::warn!(
                connections = connections.len(),
                grace = ?hardening.shutdown_grace,
                "requests still in flight after http.shutdown_grace: dropping their connections"
            );
            connections.abort_all();
        }
    }
}

fn log_connection_error(client: SocketAddr, error: &hyper::Error) {
    if error.is_timeout() {
        tracing::debug!(%client, "client did not send its request headers within http.header_read_timeout; disconnected");
    } else {
        tracing::debug!(%client, %error, "HTTP connection ended with an error");
    }
}

/// Accept fails when the process is out of file descriptors (or the
/// client gave up during the handshake); retrying at once would spin.
async fn pause_after_accept_error(error: &std::io::Error) {
    use std::io::ErrorKind;
    if matches!(
        error.kind(),
        ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset | ErrorKind::ConnectionRefused
    ) {
        return;
    }
    tracing::warn!(%error, "cannot accept an HTTP connection; retrying in 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}
