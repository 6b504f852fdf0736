//! The agent's HTTP endpoint: `/metrics` (Prometheus text), `/healthz`
//! (liveness: nothing panicked, not shutting down) and `/readyz` (each
//! stage's verdict as JSON, `503` when one fails), plus the team API and
//! web page when this process runs the `api` role. With
//! `http.metrics_listen`, `/metrics` moves to a listener of its own (it
//! names every monitored group, so operators keep it internal). Requests
//! carry the client's address for the API's per-address rate limits.
//!
//! The server protects itself ([`Hardening`], from `[http]`): every
//! connection must send its headers within `header_read_timeout`
//! ([`server`]); API requests are bounded in time and number
//! ([`api_guard`]) while the probes and `/metrics` are routed before that
//! guard, so a saturated API never fails a liveness probe; a graceful
//! shutdown gives requests in flight `shutdown_grace`, then drops them.

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use prometheus::{Encoder, Registry, TextEncoder};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::readiness::Readiness;
use crate::supervision::Liveness;

pub mod api_guard;
pub mod server;

/// How the HTTP server protects itself (`[http]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hardening {
    /// Longest a client may take to send a request's headers.
    pub header_read_timeout: Duration,
    /// Longest an API request may take before it is answered 503.
    pub request_timeout: Duration,
    /// API requests served at once; the excess is answered 503 at once.
    pub max_concurrent_requests: usize,
    /// How long requests in flight get on shutdown.
    pub shutdown_grace: Duration,
}

/// Binds `listen` for [`serve`] or [`serve_metrics`]; the error names the
/// `setting` that chose the address. Binding before the server task starts
/// makes a taken port fail the start at once, and lets callers (tests) bind
/// port 0 and read the real port without a bind/release race.
pub async fn bind(listen: SocketAddr, setting: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {listen} (set {setting}): {e}"))
}

/// Serves the endpoints, and `api` routes when given (behind the
/// [`api_guard`]), on `listener` until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    probes: Probes,
    api: Option<Router>,
    hardening: Hardening,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let serves_api = api.is_some();
    let app = match api {
        // The probes' routes match first; everything else is the API's.
        Some(api) => {
            let refused = api_guard::refused_counter(&probes.registry)?;
            router(probes).fallback_service(api_guard::guard(api, hardening, refused))
        }
        None => router(probes),
    };
    let listen = listener.local_addr()?;
    tracing::info!(%listen, api = serves_api, "serving /metrics and /healthz");
    server::run(listener, app, hardening, shutdown).await;
    Ok(())
}

/// Serves only `/metrics` on `listener` (`http.metrics_listen`) until
/// `shutdown`.
pub async fn serve_metrics(
    listener: TcpListener,
    probes: Probes,
    hardening: Hardening,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let app = Router::new()
        .route("/metrics", get(metrics))
        .with_state(probes);
    let listen = listener.local_addr()?;
    tracing::info!(%listen, "serving /metrics on its own listener");
    server::run(listener, app, hardening, shutdown).await;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::readiness::Limits;

    const HARDENING: Hardening = Hardening {
        header_read_timeout: Duration::from_secs(10),
        request_timeout: Duration::from_secs(30),
        max_concurrent_requests: 256,
        shutdown_grace: Duration::from_secs(10),
    };

    fn probes(shutdown: &CancellationToken, metrics_on_main: bool) -> Probes {
        let registry = Registry::new();
        let counter =
            prometheus::IntCounter::new("lagwatch_test_total", "a test counter").expect("counter");
        registry.register(Box::new(counter)).expect("register");
        Probes {
            registry,
            liveness: Liveness::install(shutdown.clone()),
            readiness: Readiness::new(Limits::for_interval(Duration::from_secs(5))),
            metrics_on_main,
        }
    }

    #[tokio::test]
    async fn serves_on_listeners_bound_to_port_zero() {
        let shutdown = CancellationToken::new();
        let main = bind("127.0.0.1:0".parse().expect("addr"), "http.listen")
            .await
            .expect("bind");
        let own = bind("127.0.0.1:0".parse().expect("addr"), "http.metrics_listen")
            .await
            .expect("bind");
        let (main_addr, own_addr) = (
            main.local_addr().expect("addr"),
            own.local_addr().expect("addr"),
        );
        let server = tokio::spawn(serve(
            main,
            probes(&shutdown, false),
            None,
            HARDENING,
            shutdown.clone(),
        ));
        let metrics_server = tokio::spawn(serve_metrics(
            own,
            probes(&shutdown, false),
            HARDENING,
            shutdown.clone(),
        ));
        let client = reqwest::Client::new();

        let healthz = client
            .get(format!("http://{main_addr}/healthz"))
            .send()
            .await
            .expect("healthz");
        assert_eq!(healthz.status(), reqwest::StatusCode::OK);
        assert_eq!(healthz.text().await.expect("body"), "ok\n");
        let readyz = client
            .get(format!("http://{main_addr}/readyz"))
            .send()
            .await
            .expect("readyz");
        let report: serde_json::Value =
            serde_json::from_str(&readyz.text().await.expect("body")).expect("json");
        assert_eq!(report["ready"], serde_json::json!(true), "{report}");
        let moved = client
            .get(format!("http://{main_addr}/metrics"))
            .send()
            .await
            .expect("metrics");
        assert_eq!(
            moved.status(),
            reqwest::StatusCode::NOT_FOUND,
            "/metrics has its own listener"
        );
        let metrics = client
            .get(format!("http://{own_addr}/metrics"))
            .send()
            .await
            .expect("metrics");
        assert!(metrics
            .text()
            .await
            .expect("body")
            .contains("lagwatch_test_total 0"));

        shutdown.cancel();
        server.await.expect("join").expect("serve");
        metrics_server.await.expect("join").expect("serve_metrics");
    }

    #[tokio::test]
    async fn a_taken_port_names_the_setting() {
        let taken = bind("127.0.0.1:0".parse().expect("addr"), "http.listen")
            .await
            .expect("bind");
        let error = bind(taken.local_addr().expect("addr"), "http.metrics_listen")
            .await
            .expect_err("port in use");
        assert!(
            error.to_string().contains("set http.metrics_listen"),
            "{error}"
        );
    }
}
