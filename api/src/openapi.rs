//! The OpenAPI 3.0 document, checked in as `api/openapi.json` and served at
//! `/openapi.json` exactly as checked in.

use axum::http::header;
use axum::response::IntoResponse;

/// The checked-in document.
pub const OPENAPI_JSON: &str = include_str!("../openapi.json");

pub async fn document() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI_JSON)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_document_is_openapi_3_json_with_every_path() {
        let doc: serde_json::Value = serde_json::from_str(super::OPENAPI_JSON).expect("JSON");
        assert!(doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.0")));
        let paths = doc["paths"].as_object().expect("paths");
        for path in [
            "/api/v1/whoami",
            "/api/v1/clusters",
            "/api/v1/monitors",
            "/api/v1/monitors/{id}",
            "/api/v1/monitors/{id}/status",
            "/api/v1/alerts",
            "/api/v1/alerts/history",
            "/api/v1/silences",
            "/api/v1/silences/{id}",
            "/api/v1/audit",
            "/api/v1/teams/{team}/tokens",
            "/api/v1/tokens/{id}",
        ] {
            assert!(paths.contains_key(path), "{path} missing from openapi.json");
        }
    }
}
