//! The agent's HTTP endpoint: `/metrics` (Prometheus text) and `/healthz`,
//! plus the team API and web page when this process runs the `api` role.

use std::net::SocketAddr;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use prometheus::{Encoder, Registry, TextEncoder};
use tokio_util::sync::CancellationToken;

/// Serves the endpoints, and `api` routes when given, on `listen` until
/// `shutdown`.
pub async fn serve(
    listen: SocketAddr,
    registry: Registry,
    api: Option<Router>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let serves_api = api.is_some();
    let app = match api {
        Some(api) => router(registry).merge(api),
        None => router(registry),
    };
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {listen} (set http.listen): {e}"))?;
    tracing::info!(%listen, api = serves_api, "serving /metrics and /healthz");
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await?;
    Ok(())
}

pub fn router(registry: Registry) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .with_state(registry)
}

async fn metrics(State(registry): State<Registry>) -> impl IntoResponse {
    let encoder = TextEncoder::new();
    let mut body = Vec::new();
    // Encode family by family so one broken family cannot fail the scrape.
    for family in registry.gather() {
        let mut one = Vec::new();
        match encoder.encode(std::slice::from_ref(&family), &mut one) {
            Ok(()) => body.extend_from_slice(&one),
            Err(error) => {
                tracing::warn!(metric = family.name(), error = %error, "metric family not exported")
            }
        }
    }
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, encoder.format_type().to_string())],
        body,
    )
}
