//! The agent's HTTP endpoint: `/metrics` (Prometheus text), `/healthz`
//! (liveness: nothing panicked, not shutting down) and `/readyz` (each
//! stage's verdict as JSON, `503` when one fails), plus the team API and
//! web page when this process runs the `api` role. With
//! `http.metrics_listen`, `/metrics` moves to a listener of its own (it
//! names every monitored group, so operators keep it internal). Requests
//! carry the client's address for the API's per-address rate limits.

use std::net::SocketAddr;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use prometheus::{Encoder, Registry, TextEncoder};
use tokio_util::sync::CancellationToken;

use crate::readiness::Readiness;
use crate::supervision::Liveness;

/// Serves the endpoints, and `api` routes when given, on `listen` until
/// `shutdown`.
pub async fn serve(
    listen: SocketAddr,
    probes: Probes,
    api: Option<Router>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let serves_api = api.is_some();
    let app = match api {
        Some(api) => router(probes).merge(api),
        None => router(probes),
    };
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {listen} (set http.listen): {e}"))?;
    tracing::info!(%listen, api = serves_api, "serving /metrics and /healthz");
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move { shutdown.cancelled().await })
    .await?;
    Ok(())
}

/// Serves only `/metrics` on `listen` (`http.metrics_listen`) until
/// `shutdown`.
pub async fn serve_metrics(
    listen: SocketAddr,
    probes: Probes,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let app = Router::new()
        .route("/metrics", get(metrics))
        .with_state(probes);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {listen} (set http.metrics_listen): {e}"))?;
    tracing::info!(%listen, "serving /metrics on its own listener");
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await?;
    Ok(())
}

/// What the endpoints report on.
#[derive(Clone)]
pub struct Probes {
    pub registry: Registry,
    pub liveness: Liveness,
    pub readiness: Readiness,
    /// `/metrics` is served on the main listener (no `http.metrics_listen`).
    pub metrics_on_main: bool,
}

pub fn router(probes: Probes) -> Router {
    let router = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz));
    let router = if probes.metrics_on_main {
        router.route("/metrics", get(metrics))
    } else {
        router
    };
    router.with_state(probes)
}

async fn healthz(State(probes): State<Probes>) -> impl IntoResponse {
    if probes.liveness.alive() {
        (StatusCode::OK, "ok\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "stopping\n")
    }
}

async fn readyz(State(probes): State<Probes>) -> impl IntoResponse {
    let report = probes.readiness.report();
    let status = if report.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(report))
}

async fn metrics(State(probes): State<Probes>) -> impl IntoResponse {
    let registry = probes.registry;
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
