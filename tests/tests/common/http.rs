//! The one HTTP client of the integration tests (reqwest): requests to a
//! `lagwatch` listener as any client would send them, answers kept whole
//! (status, headers, body, parsed JSON) so a test can assert on any part.
//! A client can leave from a chosen loopback address (127.0.0.x) to be a
//! different client address to the server (per-address rate limits).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use anyhow::{ensure, Context};
use serde_json::Value;

/// How long one request may take before the test fails.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// One HTTP answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    /// `name: value` lines, as received.
    pub headers: String,
    pub body: String,
    /// The body parsed as JSON; `Null` when it is not JSON.
    pub json: Value,
}

impl Reply {
    /// The value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then(|| value.trim().to_string())
        })
    }

    /// The `error.field` of an API error answer.
    pub fn error_field(&self) -> Option<&str> {
        self.json["error"]["field"].as_str()
    }

    /// The `error.code` of an API error answer.
    pub fn error_code(&self) -> Option<&str> {
        self.json["error"]["code"].as_str()
    }

    /// The `error.message` of an API error answer (empty without one).
    pub fn error_message(&self) -> &str {
        self.json["error"]["message"].as_str().unwrap_or_default()
    }
}

/// A client of one `lagwatch` listener.
#[derive(Debug, Clone)]
pub struct HttpClient {
    client: reqwest::Client,
    server: SocketAddr,
}

impl HttpClient {
    /// A client of the listener on `server`.
    pub fn new(server: SocketAddr) -> Self {
        HttpClient {
            client: reqwest::Client::new(),
            server,
        }
    }

    /// A client of the listener on 127.0.0.1:`port`.
    pub fn local(port: u16) -> Self {
        HttpClient::new(SocketAddr::from(([127, 0, 0, 1], port)))
    }

    /// A client of `server` whose connections leave from `from`.
    pub fn from_address(server: SocketAddr, from: IpAddr) -> anyhow::Result<Self> {
        Ok(HttpClient {
            client: reqwest::Client::builder().local_address(from).build()?,
            server,
        })
    }

    /// `method path` with an optional bearer `token` and JSON `body`
    /// (POST and PUT always say `Content-Type: application/json`).
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
    ) -> anyhow::Result<Reply> {
        let method = reqwest::Method::from_bytes(method.as_bytes())?;
        let body = body.unwrap_or("");
        let sends_json =
            !body.is_empty() || method == reqwest::Method::POST || method == reqwest::Method::PUT;
        let mut request = self
            .client
            .request(method.clone(), format!("http://{}{path}", self.server))
            .timeout(REQUEST_TIMEOUT);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if sends_json {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.to_string());
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("{method} {path} on {}", self.server))?;
        let status = response.status().as_u16();
        let headers: String = response
            .headers()
            .iter()
            .map(|(name, value)| format!("{name}: {}\r\n", value.to_str().unwrap_or("<not text>")))
            .collect();
        let body = response.text().await.context("reply body")?;
        let json = serde_json::from_str(&body).unwrap_or(Value::Null);
        Ok(Reply {
            status,
            headers,
            body,
            json,
        })
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> anyhow::Result<Reply> {
        self.request("GET", path, token, None).await
    }

    /// The body of `GET path`, which must answer 200.
    pub async fn get_ok(&self, path: &str, token: Option<&str>) -> anyhow::Result<String> {
        let reply = self.get(path, token).await?;
        ensure!(
            reply.status == 200,
            "GET {path}: {} {}",
            reply.status,
            reply.body
        );
        Ok(reply.body)
    }
}

/// Fails with `what`, the status and the body unless `reply` has `status`.
pub fn expect(reply: &Reply, status: u16, what: &str) -> anyhow::Result<()> {
    ensure!(
        reply.status == status,
        "{what}: expected {status}, got {} {}",
        reply.status,
        reply.body
    );
    Ok(())
}

/// POSTs `body` to `url` (ClickHouse's HTTP interface, for example), which
/// must answer 200; returns the answer's body, trimmed.
pub async fn post_text(url: &str, body: &str) -> anyhow::Result<String> {
    let response = reqwest::Client::new()
        .post(url)
        .body(body.to_string())
        .timeout(REQUEST_TIMEOUT)
        .send()
        .await
        .with_context(|| format!("POST {url}"))?;
    let status = response.status();
    let text = response.text().await.context("reply body")?;
    ensure!(status == reqwest::StatusCode::OK, "{url}: {status} {text}");
    Ok(text.trim().to_string())
}
