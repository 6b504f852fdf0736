//! HTTP plumbing shared by the webhook, Slack and PagerDuty sinks: endpoint
//! checks, the client, one JSON POST, and how the answer is classified
//! (see the crate docs for the retry policy).

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue, CONTENT_TYPE};
use reqwest::redirect::Policy;
use reqwest::{Client, StatusCode, Url};

use crate::ssrf::{find_refusal, DestinationPolicy, GuardedResolver};
use crate::SinkError;

/// At most this much of an error answer's body goes into the error.
const MAX_ERROR_BODY: usize = 256;

/// Parses an `http`/`https` endpoint. `field` names the config key in
/// errors; a `secret` URL (one that carries a token) is never echoed.
pub(crate) fn endpoint(field: &str, raw: &str, secret: bool) -> Result<Url, SinkError> {
    let shown = if secret {
        String::new()
    } else {
        format!(" `{raw}`")
    };
    let url = Url::parse(raw.trim())
        .map_err(|e| SinkError::Config(format!("{field}{shown} is not a valid URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(SinkError::Config(format!(
            "{field}{shown}: scheme `{}` is not http or https",
            url.scheme()
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(SinkError::Config(format!("{field}{shown} has no host")));
    }
    Ok(url)
}

/// The client of one sink: whole-request `timeout`, no redirects.
pub(crate) fn client(field: &str, timeout: Duration) -> Result<Client, SinkError> {
    if timeout.is_zero() {
        return Err(SinkError::Config(format!(
            "{field}.timeout must be greater than 0"
        )));
    }
    Client::builder()
        .timeout(timeout)
        .redirect(Policy::none())
        .user_agent(concat!("lagwatch/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| SinkError::Config(format!("{field}: cannot build the HTTP client: {e}")))
}

/// The client for team-provided URLs: like [`client`], but host names are
/// resolved and checked by the [`DestinationPolicy`] (the connection goes
/// only to checked addresses) and no proxy is used (a proxy would resolve
/// the name itself, unchecked).
pub(crate) fn team_client(
    field: &str,
    timeout: Duration,
    policy: Arc<DestinationPolicy>,
) -> Result<Client, SinkError> {
    if timeout.is_zero() {
        return Err(SinkError::Config(format!(
            "{field}.timeout must be greater than 0"
        )));
    }
    Client::builder()
        .timeout(timeout)
        .redirect(Policy::none())
        .no_proxy()
        .dns_resolver(GuardedResolver::new(policy))
        .user_agent(concat!("lagwatch/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| SinkError::Config(format!("{field}: cannot build the HTTP client: {e}")))
}

/// Headers every JSON POST starts with; configured headers may override.
pub(crate) fn json_headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers
}

/// POSTs `body` and maps the answer: 2xx is `Ok`, the rest an error that
/// says whether a retry can help. `label` prefixes error messages.
pub(crate) async fn post(
    client: &Client,
    url: &Url,
    headers: &HeaderMap,
    body: Vec<u8>,
    label: &str,
) -> Result<(), SinkError> {
    let response = client
        .post(url.clone())
        .headers(headers.clone())
        .body(body)
        .send()
        .await
        .map_err(|e| match find_refusal(&e) {
            // A team URL resolving to a forbidden address: permanent.
            Some(refused) => SinkError::Rejected(format!("{label}: {refused}")),
            None => SinkError::Delivery(format!("{label}: {}", describe(e))),
        })?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let text = response.text().await.unwrap_or_default();
    Err(classify(status, &text, label))
}

/// The error for a non-2xx answer.
pub(crate) fn classify(status: StatusCode, body: &str, label: &str) -> SinkError {
    let mut shown: String = body.trim().chars().take(MAX_ERROR_BODY).collect();
    if shown.len() < body.trim().len() {
        shown.push_str("...");
    }
    let message = if shown.is_empty() {
        format!("{label}: HTTP {status}")
    } else {
        format!("{label}: HTTP {status}: {shown}")
    };
    if is_permanent(status) {
        SinkError::Rejected(message)
    } else {
        SinkError::Delivery(message)
    }
}

/// 3xx (not followed) and 4xx except 408 Request Timeout, 425 Too Early
/// and 429 Too Many Requests.
fn is_permanent(status: StatusCode) -> bool {
    status.is_redirection()
        || (status.is_client_error() && !matches!(status.as_u16(), 408 | 425 | 429))
}

/// A transport error with its causes, without the URL (it may hold a token).
fn describe(error: reqwest::Error) -> String {
    let timed_out = error.is_timeout();
    let mut text = lagwatch_model::error_chain(&error.without_url());
    if timed_out && !text.contains("timed out") {
        text.push_str(" (timed out)");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answer_classes() {
        for code in [400, 401, 403, 404, 410, 301] {
            let status = StatusCode::from_u16(code).expect("status");
            assert!(classify(status, "", "x").is_permanent(), "{code}");
        }
        for code in [408, 425, 429, 500, 502, 503] {
            let status = StatusCode::from_u16(code).expect("status");
            assert!(!classify(status, "", "x").is_permanent(), "{code}");
        }
    }

    #[test]
    fn error_body_is_cut() {
        let long = "e".repeat(1000);
        let error = classify(StatusCode::BAD_REQUEST, &long, "webhook").to_string();
        assert!(error.len() < 400, "{error}");
        assert!(error.contains("HTTP 400 Bad Request"), "{error}");
    }

    #[test]
    fn secret_endpoint_is_not_echoed() {
        let error = endpoint("slack.webhook_url", "ftp://hooks/T0/B0/token", true)
            .expect_err("scheme")
            .to_string();
        assert!(!error.contains("token"), "{error}");
        assert!(endpoint("x", "not a url", false).is_err());
        assert!(endpoint("x", "http://127.0.0.1:9/hook", false).is_ok());
    }
}
