//! The routes, the state they share, and JSON fallbacks for unknown paths
//! and methods.

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::handler::Handler;
use axum::routing::{get, on, MethodFilter};
use axum::Router;
use lagwatch_history::ClickHouseConfig;
use lagwatch_model::{Secret, Tenancy};
use lagwatch_rules::RuleSet;
use lagwatch_store::MonitorStore;
use utoipa::openapi::path::HttpMethod;

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

/// Where the API's operations are nested; their `#[utoipa::path]` paths
/// start with it.
pub const API_PREFIX: &str = "/api/v1";

/// The API routes (`/api/v1/...`), `/openapi.json` and the web page, ready
/// to merge into the agent's HTTP router.
pub fn router(store: MonitorStore, settings: ApiSettings) -> Router {
    let state = ApiState::new(store, settings);
    let api = api_routes()
        .router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::limits::per_address,
        ))
        .with_state(state);
    Router::new()
        .nest(API_PREFIX, api)
        .merge(document_routes().router)
        .route("/", get(web::index))
        .route("/index.html", get(web::index))
        .route("/app.js", get(web::script))
        .route("/app.css", get(web::style))
}

/// Every operation under [`API_PREFIX`], each routed at the path and
/// methods of its `#[utoipa::path]` attribute.
pub(crate) fn api_routes() -> DocumentedRoutes<ApiState> {
    DocumentedRoutes::under(API_PREFIX)
        .add(monitors::__path_whoami, monitors::whoami)
        .add(monitors::__path_clusters, monitors::clusters)
        .add(monitors::__path_list, monitors::list)
        .add(monitors::__path_create, monitors::create)
        .add(monitors::__path_get_one, monitors::get_one)
        .add(monitors::__path_update, monitors::update)
        .add(monitors::__path_remove, monitors::remove)
        .add(status::__path_monitor_status, status::monitor_status)
        .add(alerts::__path_firing, alerts::firing)
        .add(alerts::__path_history, alerts::history)
        .add(silences::__path_list, silences::list)
        .add(silences::__path_create, silences::create)
        .add(silences::__path_expire, silences::expire)
        .add(audit::__path_list, audit::list)
        .add(tokens::__path_create, tokens::create)
        .add(tokens::__path_list, tokens::list)
        .add(tokens::__path_remove, tokens::remove)
}

/// `/openapi.json`, routed like the API's operations.
pub(crate) fn document_routes() -> DocumentedRoutes<()> {
    DocumentedRoutes::under("").add(openapi::__path_document, openapi::document)
}

/// A router whose routes take their path and methods from the handlers'
/// `#[utoipa::path]` attributes, and which remembers them: what is routed
/// and what the OpenAPI document lists cannot differ in path or method.
pub(crate) struct DocumentedRoutes<S> {
    prefix: &'static str,
    router: Router<S>,
    /// Full path and method of every route added.
    pub(crate) operations: Vec<(String, HttpMethod)>,
}

impl<S: Clone + Send + Sync + 'static> DocumentedRoutes<S> {
    fn under(prefix: &'static str) -> Self {
        DocumentedRoutes {
            prefix,
            router: Router::new(),
            operations: Vec::new(),
        }
    }

    /// Routes `handler` where `operation` (the `__path_<handler>` type of
    /// its `#[utoipa::path]`) documents it.
    fn add<P: utoipa::Path, H: Handler<T, S>, T: 'static>(
        mut self,
        _operation: P,
        handler: H,
    ) -> Self {
        let path = P::path();
        let Some(local) = path.strip_prefix(self.prefix) else {
            tracing::error!(path = %path, prefix = self.prefix, "documented path outside its router; not routed");
            return self;
        };
        let mut filter: Option<MethodFilter> = None;
        for method in P::methods() {
            let one = method_filter(&method);
            filter = Some(filter.map_or(one, |all| all.or(one)));
            self.operations.push((path.clone(), method));
        }
        if let Some(filter) = filter {
            self.router = self.router.route(local, on(filter, handler));
        }
        self
    }
}

fn method_filter(method: &HttpMethod) -> MethodFilter {
    match method {
        HttpMethod::Get => MethodFilter::GET,
        HttpMethod::Post => MethodFilter::POST,
        HttpMethod::Put => MethodFilter::PUT,
        HttpMethod::Delete => MethodFilter::DELETE,
        HttpMethod::Options => MethodFilter::OPTIONS,
        HttpMethod::Head => MethodFilter::HEAD,
        HttpMethod::Patch => MethodFilter::PATCH,
        HttpMethod::Trace => MethodFilter::TRACE,
    }
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint; see /openapi.json")
}

async fn method_not_allowed() -> ApiError {
    ApiError::method_not_allowed()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use axum::body::Body;
    use axum::http::{Method, Request, StatusCode};
    use tower::ServiceExt;
    use utoipa::OpenApi;

    use super::*;
    use crate::openapi::ApiDoc;

    fn method_of(method: &HttpMethod) -> Method {
        match method {
            HttpMethod::Get => Method::GET,
            HttpMethod::Post => Method::POST,
            HttpMethod::Put => Method::PUT,
            HttpMethod::Delete => Method::DELETE,
            HttpMethod::Options => Method::OPTIONS,
            HttpMethod::Head => Method::HEAD,
            HttpMethod::Patch => Method::PATCH,
            HttpMethod::Trace => Method::TRACE,
        }
    }

    /// Path and method of every operation of the generated document.
    fn documented() -> BTreeSet<(String, Method)> {
        let doc = serde_json::to_value(ApiDoc::openapi()).expect("JSON");
        let mut operations = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for method in item.as_object().expect("path item").keys() {
                let method = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
                operations.insert((path.clone(), method));
            }
        }
        operations
    }

    #[test]
    fn every_routed_operation_is_in_the_document_and_back() {
        let routed: BTreeSet<(String, Method)> = api_routes()
            .operations
            .iter()
            .chain(&document_routes().operations)
            .map(|(path, method)| (path.clone(), method_of(method)))
            .collect();
        assert_eq!(routed.len(), 18, "{routed:?}");
        assert_eq!(routed, documented());
    }

    /// Probes the real router: every documented operation reaches its
    /// handler (401 without a token, not the JSON 404/405 fallbacks), and
    /// every other method on a documented path is 405.
    #[tokio::test]
    async fn the_router_serves_exactly_the_documented_operations() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("api.db").display());
        let store = MonitorStore::connect(&url).await.expect("store");
        let app = router(store, ApiSettings::default());
        let documented = documented();
        let paths: BTreeSet<&String> = documented.iter().map(|(path, _)| path).collect();
        let all = [
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::DELETE,
            Method::PATCH,
        ];
        for path in paths {
            let uri = path.replace("{id}", "1").replace("{team}", "payments");
            for method in &all {
                let request = Request::builder()
                    .method(method.clone())
                    .uri(&uri)
                    .body(Body::empty())
                    .expect("request");
                let status = app.clone().oneshot(request).await.expect("answer").status();
                let expected = if !documented.contains(&(path.clone(), method.clone())) {
                    StatusCode::METHOD_NOT_ALLOWED
                } else if path.starts_with(API_PREFIX) {
                    StatusCode::UNAUTHORIZED
                } else {
                    StatusCode::OK
                };
                assert_eq!(status, expected, "{method} {uri}");
            }
        }
    }
}
