//! The routes, the state they share, and JSON fallbacks for unknown paths
//! and methods.

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post};
use axum::Router;
use lagwatch_history::ClickHouseConfig;
use lagwatch_model::{Secret, Tenancy};
use lagwatch_rules::RuleSet;
use lagwatch_store::MonitorStore;

use crate::error::ApiError;
use crate::input::MAX_BODY_BYTES;
use crate::limits::{Limiter, RateLimits};
use crate::{alerts, audit, monitors, openapi, silences, status, tokens, web};

/// What the API needs from the agent's configuration.
#[derive(Debug, Clone, Default)]
pub struct ApiSettings {
    /// Names of the configured clusters (monitors must name one).
    pub clusters: Vec<String>,
    /// The admin token; without one, only team tokens work.
    pub admin_token: Option<Secret>,
    /// Grafana base URL the web page links to.
    pub grafana_url: Option<String>,
    /// Where status and alert history are read; 503 without.
    pub clickhouse: Option<ClickHouseConfig>,
    /// The rules files, for the window settings the status replay uses;
    /// the compiled-in defaults without.
    pub rules: Option<Arc<RuleSet>>,
    /// Which clusters, groups and topics each team owns, and its quotas.
    pub tenancy: Arc<Tenancy>,
    /// Request and failed-authentication rate limits.
    pub rate_limits: RateLimits,
}

/// Shared, cheaply cloned state of every handler.
#[derive(Clone)]
pub struct ApiState {
    inner: Arc<Inner>,
}

struct Inner {
    store: MonitorStore,
    clusters: Vec<String>,
    admin_token_sha256: Option<String>,
    grafana_url: Option<String>,
    clickhouse: Option<ClickHouseConfig>,
    rules: Option<Arc<RuleSet>>,
    tenancy: Arc<Tenancy>,
    limiter: Limiter,
}

impl ApiState {
    pub fn new(store: MonitorStore, settings: ApiSettings) -> Self {
        ApiState {
            inner: Arc::new(Inner {
                store,
                clusters: settings.clusters,
                admin_token_sha256: settings
                    .admin_token
                    .as_ref()
                    .map(|token| crate::auth::sha256_hex(token.expose())),
                grafana_url: settings.grafana_url,
                clickhouse: settings.clickhouse,
                rules: settings.rules,
                tenancy: settings.tenancy,
                limiter: Limiter::new(settings.rate_limits),
            }),
        }
    }

    pub fn store(&self) -> &MonitorStore {
        &self.inner.store
    }

    pub fn clusters(&self) -> &[String] {
        &self.inner.clusters
    }

    pub fn grafana_url(&self) -> Option<&str> {
        self.inner.grafana_url.as_deref()
    }

    /// The configured rules files, if the agent passed them.
    pub fn rules(&self) -> Option<Arc<RuleSet>> {
        self.inner.rules.clone()
    }

    /// Team ownership and quotas.
    pub fn tenancy(&self) -> &Tenancy {
        &self.inner.tenancy
    }

    pub(crate) fn limiter(&self) -> &Limiter {
        &self.inner.limiter
    }

    pub(crate) fn admin_token_sha256(&self) -> Option<&str> {
        self.inner.admin_token_sha256.as_deref()
    }

    /// The ClickHouse settings, or 503 when history is not configured.
    pub fn clickhouse(&self) -> Result<&ClickHouseConfig, ApiError> {
        self.inner.clickhouse.as_ref().ok_or_else(|| {
            ApiError::history_unavailable(
                "no [clickhouse] section is configured: status and alert history are unavailable",
            )
        })
    }
}

/// The API routes (`/api/v1/...`), `/openapi.json` and the web page, ready
/// to merge into the agent's HTTP router.
pub fn router(store: MonitorStore, settings: ApiSettings) -> Router {
    let state = ApiState::new(store, settings);
    let api = Router::new()
        .route("/whoami", get(monitors::whoami))
        .route("/clusters", get(monitors::clusters))
        .route("/monitors", get(monitors::list).post(monitors::create))
        .route(
            "/monitors/{id}",
            get(monitors::get_one)
                .put(monitors::update)
                .delete(monitors::remove),
        )
        .route("/monitors/{id}/status", get(status::monitor_status))
        .route("/alerts", get(alerts::firing))
        .route("/alerts/history", get(alerts::history))
        .route("/silences", get(silences::list).post(silences::create))
        .route("/silences/{id}", delete(silences::expire))
        .route("/audit", get(audit::list))
        .route(
            "/teams/{team}/tokens",
            post(tokens::create).get(tokens::list),
        )
        .route("/tokens/{id}", delete(tokens::remove))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::limits::per_address,
        ))
        .with_state(state);
    Router::new()
        .nest("/api/v1", api)
        .route("/openapi.json", get(openapi::document))
        .route("/", get(web::index))
        .route("/index.html", get(web::index))
        .route("/app.js", get(web::script))
        .route("/app.css", get(web::style))
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint; see /openapi.json")
}

async fn method_not_allowed() -> ApiError {
    ApiError::method_not_allowed()
}
