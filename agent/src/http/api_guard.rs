//! Bounds on the team API's requests, in time and in number.
//!
//! A request not answered within `http.request_timeout` (a store query
//! stuck on a lock, a slow client body) is answered 503 `request_timeout`
//! and its handler dropped, which frees its slot. At most
//! `http.max_concurrent_requests` API requests run at once; one more is
//! answered 503 `overloaded` with `Retry-After` at once rather than queued,
//! so a burst cannot build an unbounded backlog whose answers come too
//! late to matter. One budget is shared by all API routes (tower's global
//! concurrency limit, not a limit per route).
//!
//! Every refusal is counted in `lagwatch_http_requests_refused_total`
//! by `reason` (`overloaded`, `request_timeout`), so an operator sees the
//! API shedding load without reading logs.
//!
//! The guard wraps only the API: [`super::serve`] routes `/healthz`,
//! `/readyz` and `/metrics` before it, so probes keep answering when the
//! API is saturated.

use axum::error_handling::HandleErrorLayer;
use axum::http::StatusCode;
use axum::Router;
use lagwatch_api::ApiError;
use prometheus::{IntCounterVec, Opts, Registry};
use tower::limit::GlobalConcurrencyLimitLayer;
use tower::load_shed::error::Overloaded;
use tower::load_shed::LoadShedLayer;
use tower::timeout::error::Elapsed;
use tower::timeout::TimeoutLayer;
use tower::{BoxError, ServiceBuilder};

use super::Hardening;

/// Seconds an `overloaded` answer asks the client to wait.
const RETRY_OVERLOADED_AFTER_SECS: u64 = 1;

/// `lagwatch_http_requests_refused_total{reason}`, registered in
/// `registry`.
pub fn refused_counter(registry: &Registry) -> prometheus::Result<IntCounterVec> {
    let counter = IntCounterVec::new(
        Opts::new(
            "lagwatch_http_requests_refused_total",
            "API requests the HTTP guard answered 503: overloaded (http.max_concurrent_requests) or request_timeout (http.request_timeout).",
        ),
        &["reason"],
    )?;
    registry.register(Box::new(counter.clone()))?;
    Ok(counter)
}

/// `api` behind the request timeout and the concurrency limit; refusals
/// are counted in `refused`.
pub fn guard(api: Router, hardening: Hardening, refused: IntCounterVec) -> Router {
    let guarded = ServiceBuilder::new()
        .layer(HandleErrorLayer::new(move |error: BoxError| {
            let refused = refused.clone();
            async move { refusal(error, &refused) }
        }))
        .layer(LoadShedLayer::new())
        .layer(GlobalConcurrencyLimitLayer::new(
            hardening.max_concurrent_requests,
        ))
        .layer(TimeoutLayer::new(hardening.request_timeout))
        .service(api);
    Router::new().fallback_service(guarded)
}

/// The answer to a request the guard stopped.
fn refusal(error: BoxError, refused: &IntCounterVec) -> ApiError {
    if error.is::<Overloaded>() {
        tracing::debug!("API request refused: http.max_concurrent_requests reached");
        refused.with_label_values(&["overloaded"]).inc();
        overloaded()
    } else if error.is::<Elapsed>() {
        tracing::warn!("API request not answered within http.request_timeout");
        refused.with_label_values(&["request_timeout"]).inc();
        timed_out()
    } else {
        tracing::error!(%error, "API request failed in the HTTP guard");
        ApiError::internal()
    }
}

fn overloaded() -> ApiError {
    ApiError {
        status: StatusCode::SERVICE_UNAVAILABLE,
        code: "overloaded",
        message: "the API is serving as many requests as it may at once; retry later".into(),
        field: None,
        retry_after_secs: Some(RETRY_OVERLOADED_AFTER_SECS),
    }
}

fn timed_out() -> ApiError {
    ApiError {
        status: StatusCode::SERVICE_UNAVAILABLE,
        code: "request_timeout",
        message: "the request was not answered in time; retry later".into(),
        field: None,
        retry_after_secs: None,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use axum::body::Body;
    use axum::http::{header, Request};
    use axum::routing::get;
    use tokio::sync::Semaphore;
    use tower::ServiceExt;

    use super::*;

    fn hardening(max: usize, timeout: Duration) -> Hardening {
        Hardening {
            header_read_timeout: Duration::from_secs(10),
            request_timeout: timeout,
            max_concurrent_requests: max,
            shutdown_grace: Duration::from_secs(1),
        }
    }

    /// `/slow` waits for a permit of `gate` (never, unless the test adds
    /// one); `/fast` answers at once.
    fn app(gate: Arc<Semaphore>) -> Router {
        Router::new()
            .route(
                "/slow",
                get(move || {
                    let gate = Arc::clone(&gate);
                    async move {
                        let _permit = gate.acquire().await;
                        "slow"
                    }
                }),
            )
            .route("/fast", get(|| async { "fast" }))
    }

    async fn get_status(router: &Router, path: &str) -> (StatusCode, Option<String>, String) {
        let response = router
            .clone()
            .oneshot(Request::get(path).body(Body::empty()).expect("request"))
            .await
            .expect("infallible");
        let status = response.status();
        let retry_after = response
            .headers()
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .expect("body");
        (
            status,
            retry_after,
            String::from_utf8_lossy(&body).into_owned(),
        )
    }

    #[tokio::test]
    async fn a_request_over_its_time_is_answered_503_and_frees_its_slot() {
        let gate = Arc::new(Semaphore::new(0));
        let refused = refused_counter(&Registry::new()).expect("counter");
        let router = guard(
            app(gate),
            hardening(1, Duration::from_millis(200)),
            refused.clone(),
        );

        let started = Instant::now();
        let (status, _, body) = get_status(&router, "/slow").await;
        let took = started.elapsed();
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body.contains("request_timeout"), "{body}");
        assert!(
            took >= Duration::from_millis(200) && took < Duration::from_secs(2),
            "{took:?}"
        );
        assert_eq!(refused.with_label_values(&["request_timeout"]).get(), 1);
        // The only slot is free again: a fast request is served.
        let (status, _, body) = get_status(&router, "/fast").await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "fast"));
    }

    #[tokio::test]
    async fn requests_over_the_limit_are_refused_at_once_with_retry_after() {
        let gate = Arc::new(Semaphore::new(0));
        let counter = refused_counter(&Registry::new()).expect("counter");
        let router = guard(
            app(Arc::clone(&gate)),
            hardening(2, Duration::from_secs(30)),
            counter.clone(),
        );
        let held: Vec<_> = (0..2)
            .map(|_| {
                let router = router.clone();
                tokio::spawn(async move { get_status(&router, "/slow").await })
            })
            .collect();
        // Both slots are taken once a third request is refused; wait for that.
        let deadline = Instant::now() + Duration::from_secs(5);
        let refused = loop {
            let started = Instant::now();
            let answer = get_status(&router, "/fast").await;
            if answer.0 == StatusCode::SERVICE_UNAVAILABLE {
                break (answer, started.elapsed());
            }
            assert!(Instant::now() < deadline, "the slots never filled");
            tokio::task::yield_now().await;
        };
        let ((status, retry_after, body), took) = refused;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(retry_after.as_deref(), Some("1"));
        assert!(body.contains("overloaded"), "{body}");
        assert!(took < Duration::from_millis(100), "refused in {took:?}");
        assert!(counter.with_label_values(&["overloaded"]).get() >= 1);

        gate.add_permits(2);
        for request in held {
            let (status, _, body) = request.await.expect("join");
            assert_eq!((status, body.as_str()), (StatusCode::OK, "slow"));
        }
        let (status, _, _) = get_status(&router, "/fast").await;
        assert_eq!(status, StatusCode::OK, "slots freed");
    }
}
