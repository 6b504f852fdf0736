//! The OpenAPI 3.1 document of the API, generated from the handlers'
//! `#[utoipa::path]` attributes and the body types' `ToSchema` derives, so
//! it says what the code accepts and returns. It is served at
//! `/openapi.json` and checked in as `api/openapi.json` for readers and
//! client generators; a test fails when the two differ (refresh with
//! `LAGWATCH_BLESS_OPENAPI=1 cargo test -p lagwatch-api openapi`).
//!
//! - [`responses`]: the shared error answers (401, 400, 403, 404, 413,
//!   429, 503).
//! - [`schemas`]: the error body and mirrors of types from crates without
//!   utoipa (alert events, window status), each tested against the real
//!   type.

pub mod responses;
pub mod schemas;

use std::sync::LazyLock;

use axum::http::header;
use axum::response::IntoResponse;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::{alerts, audit, monitors, silences, status, tokens};
use responses::{
    AdminOnly, BadRequest, Forbidden, NotFound, PayloadTooLarge, RateLimited, Unauthorized,
    Unavailable,
};

/// The API's operations, shared answers and security scheme.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "lagwatch team API",
        version = "1.0.0",
        description = "Monitors, live status, alerts, silences and audit log of one team (per-team bearer tokens); admin token for token management. Every 4xx is {\"error\": {\"code\", \"message\", \"field\"?}}."
    ),
    servers((url = "/")),
    paths(
        monitors::whoami,
        monitors::clusters,
        monitors::list,
        monitors::create,
        monitors::get_one,
        monitors::update,
        monitors::remove,
        status::monitor_status,
        alerts::firing,
        alerts::history,
        silences::list,
        silences::create,
        silences::expire,
        audit::list,
        tokens::create,
        tokens::list,
        tokens::remove,
        document,
    ),
    components(schemas(schemas::ErrorBody), responses(
        BadRequest,
        Unauthorized,
        Forbidden,
        AdminOnly,
        NotFound,
        PayloadTooLarge,
        RateLimited,
        Unavailable,
    )),
    modifiers(&BearerToken),
    security(("bearer" = [])),
)]
pub struct ApiDoc;

/// Adds the `bearer` security scheme every operation but this document's
/// requires.
struct BearerToken;

impl Modify for BearerToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("A team token (lw_...) or the admin token"))
                    .build(),
            ),
        );
    }
}

/// The document as served and checked in: pretty JSON and a final newline.
pub fn document_json() -> String {
    match ApiDoc::openapi().to_pretty_json() {
        Ok(json) => camel_case_link_keys(&json) + "\n",
        Err(error) => {
            tracing::error!(error = %error, "cannot render the OpenAPI document");
            String::from("{}\n")
        }
    }
}

/// Keys utoipa 5 writes in snake case in link objects (its `Link` lacks
/// `rename_all = "camelCase"`; fixed in utoipa 6, which needs Rust 1.88),
/// with the names OpenAPI gives them. Nothing else in the document uses
/// these keys (a test checks), so renaming them in the text is safe.
const LINK_KEYS: [(&str, &str); 3] = [
    ("\"operation_id\": ", "\"operationId\": "),
    ("\"operation_ref\": ", "\"operationRef\": "),
    ("\"request_body\": ", "\"requestBody\": "),
];

fn camel_case_link_keys(json: &str) -> String {
    LINK_KEYS
        .iter()
        .fold(json.to_string(), |text, (snake, camel)| {
            text.replace(snake, camel)
        })
}

/// Rendered once, on the first request.
static DOCUMENT: LazyLock<String> = LazyLock::new(document_json);

/// This document
#[utoipa::path(
    get,
    path = "/openapi.json",
    operation_id = "openapi",
    security(()),
    responses((status = 200, description = "OpenAPI 3.1 document", body = Object)),
)]
pub async fn document() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        DOCUMENT.as_str(),
    )
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    const BLESS: &str = "LAGWATCH_BLESS_OPENAPI";

    #[test]
    fn openapi_json_is_the_generated_document() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi.json");
        let generated = document_json();
        if std::env::var_os(BLESS).is_some() {
            std::fs::write(&path, &generated).expect("write api/openapi.json");
            return;
        }
        let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
        if checked_in != generated {
            let line = checked_in
                .lines()
                .zip(generated.lines())
                .position(|(a, b)| a != b)
                .unwrap_or_else(|| checked_in.lines().count().min(generated.lines().count()));
            panic!(
                "api/openapi.json is not the document the code generates (first difference at \
                 line {}: checked in {:?}, generated {:?}).\nRefresh it with: \
                 {BLESS}=1 cargo test -p lagwatch-api openapi",
                line + 1,
                checked_in.lines().nth(line),
                generated.lines().nth(line),
            );
        }
    }

    /// Every key [`camel_case_link_keys`] renames, with whether it sits
    /// directly in a link object.
    fn snake_case_link_keys(value: &serde_json::Value, in_link: bool, found: &mut Vec<bool>) {
        match value {
            serde_json::Value::Object(map) => {
                for (key, child) in map {
                    if LINK_KEYS
                        .iter()
                        .any(|(snake, _)| snake.trim_end_matches(": ") == format!("{key:?}"))
                    {
                        found.push(in_link);
                    }
                    let links = key == "links";
                    if links {
                        for link in child.as_object().into_iter().flat_map(|m| m.values()) {
                            snake_case_link_keys(link, true, found);
                        }
                    } else {
                        snake_case_link_keys(child, false, found);
                    }
                }
            }
            serde_json::Value::Array(items) => {
                for item in items {
                    snake_case_link_keys(item, false, found);
                }
            }
            _ => {}
        }
    }

    #[test]
    fn links_name_their_operation_in_camel_case_and_nothing_else_is_renamed() {
        let raw = serde_json::to_value(ApiDoc::openapi()).expect("JSON");
        let mut found = Vec::new();
        snake_case_link_keys(&raw, false, &mut found);
        assert_eq!(found.len(), 6, "the six links name their operation");
        assert!(
            found.iter().all(|in_link| *in_link),
            "only links: {found:?}"
        );
        let doc: serde_json::Value = serde_json::from_str(&document_json()).expect("JSON");
        let link =
            &doc["paths"]["/api/v1/silences"]["post"]["responses"]["201"]["links"]["expireSilence"];
        assert_eq!(link["operationId"], "expireSilence");
        assert_eq!(link["parameters"]["id"], "$response.body#/id");
        let mut left = Vec::new();
        snake_case_link_keys(&doc, false, &mut left);
        assert!(left.is_empty(), "no snake-case link keys remain");
    }

    #[test]
    fn the_document_is_openapi_3_1_with_a_bearer_scheme() {
        let doc: serde_json::Value = serde_json::from_str(&document_json()).expect("JSON");
        assert_eq!(doc["openapi"], "3.1.0");
        assert_eq!(
            doc["components"]["securitySchemes"]["bearer"]["scheme"],
            "bearer"
        );
        assert_eq!(doc["security"], serde_json::json!([{ "bearer": [] }]));
    }
}
