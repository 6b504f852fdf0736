//! The team web page: three static files compiled into the binary.

use axum::http::header;
use axum::response::IntoResponse;

const INDEX_HTML: &str = include_str!("web/index.html");
const APP_JS: &str = include_str!("web/app.js");
const APP_CSS: &str = include_str!("web/app.css");

/// What the page may load and do: its own script, style sheet and API
/// (same origin), a `data:` favicon; no inline script or style, no plugins,
/// no `<base>`, forms only to itself, never framed. Team-provided names are
/// shown as text, and this keeps an injected `<script>` or `style` inert
/// should one ever slip through.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; \
     frame-ancestors 'none'; base-uri 'none'";

/// Headers shared by the static files: the CSP, no MIME sniffing, no
/// framing, no Referer (links to Grafana would otherwise carry the page's
/// URL).
const HARDENING: [(header::HeaderName, &str); 4] = [
    (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::X_FRAME_OPTIONS, "DENY"),
    (header::REFERRER_POLICY, "no-referrer"),
];

pub async fn index() -> impl IntoResponse {
    (
        HARDENING,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        INDEX_HTML,
    )
}

pub async fn script() -> impl IntoResponse {
    (
        HARDENING,
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        APP_JS,
    )
}

pub async fn style() -> impl IntoResponse {
    (
        HARDENING,
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        APP_CSS,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_has_no_inline_code_the_policy_would_block() {
        // The CSP allows no inline script or style: the page must not
        // need any, or it would break in the browser.
        for (name, text) in [("index.html", INDEX_HTML), ("app.js", APP_JS)] {
            for needle in [
                "<script>",
                "style=",
                " onclick=",
                " onload=",
                "javascript:",
                "eval(",
            ] {
                assert!(!text.contains(needle), "{name} contains {needle:?}");
            }
        }
        assert!(INDEX_HTML.contains(r#"<script src="/app.js"></script>"#));
        for directive in [
            "default-src 'none'",
            "script-src 'self'",
            "frame-ancestors 'none'",
        ] {
            assert!(CONTENT_SECURITY_POLICY.contains(directive), "{directive}");
        }
    }

    #[tokio::test]
    async fn every_file_carries_the_hardening_headers() {
        for response in [
            index().await.into_response(),
            script().await.into_response(),
            style().await.into_response(),
        ] {
            let headers = response.headers();
            let get = |name: header::HeaderName| {
                headers
                    .get(&name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string)
            };
            assert_eq!(
                get(header::CONTENT_SECURITY_POLICY).as_deref(),
                Some(CONTENT_SECURITY_POLICY)
            );
            assert_eq!(
                get(header::X_CONTENT_TYPE_OPTIONS).as_deref(),
                Some("nosniff")
            );
            assert_eq!(get(header::REFERRER_POLICY).as_deref(), Some("no-referrer"));
            assert_eq!(get(header::X_FRAME_OPTIONS).as_deref(), Some("DENY"));
        }
    }
}
