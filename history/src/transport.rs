//! How lagwatch reaches ClickHouse: HTTP or HTTPS (rustls with the `ring`
//! provider, the one the Kafka client already uses), trusting either the
//! platform's roots or only the operator's `clickhouse.ca_file`.
//!
//! The `clickhouse` crate's own TLS client trusts fixed roots and cannot
//! take a private CA, so lagwatch hands it a hyper client built here. The
//! TLS settings are built once per CA file and shared by every client the
//! writer and readers create.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::TokioExecutor;
use lagwatch_tls::client_settings;
use rustls::{ClientConfig, RootCertStore};

use crate::config::ClickHouseConfig;

/// TCP keep-alive on idle pooled connections (as the crate's default client).
const TCP_KEEPALIVE: Duration = Duration::from_secs(60);
/// Below ClickHouse's own 3 s keep-alive, so a pooled connection is never
/// reused just as the server closes it.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(2);

/// Why the TLS settings for ClickHouse could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("clickhouse.ca_file {path}: {reason}")]
    CaFile { path: PathBuf, reason: String },
    #[error("TLS settings for ClickHouse: {0}")]
    Rustls(#[from] rustls::Error),
}

/// A `clickhouse::Client` (no URL, user or settings yet) whose HTTP client
/// speaks https with the trust `config` asks for. When the CA file cannot
/// be read the error is logged and the client trusts nothing, so every
/// https request fails verification instead of trusting a wrong server;
/// [`check_tls`] reports the same error at start.
pub(crate) fn clickhouse_client(config: &ClickHouseConfig) -> clickhouse::Client {
    let mut http = HttpConnector::new();
    http.set_keepalive(Some(TCP_KEEPALIVE));
    let mut hyper = HyperClient::builder(TokioExecutor::new());
    hyper.pool_idle_timeout(POOL_IDLE_TIMEOUT);
    let tls = tls_settings(config.ca_file.as_deref()).or_else(|error| {
        tracing::error!(%error, "ClickHouse TLS settings unusable; https requests will fail");
        client_settings(RootCertStore::empty())
            .map(Arc::new)
            .map_err(TlsSetupError::from)
    });
    match tls {
        Ok(tls) => {
            http.enforce_http(false);
            let connector = hyper_rustls::HttpsConnectorBuilder::new()
                .with_tls_config((*tls).clone())
                .https_or_http()
                .enable_http1()
                .wrap_connector(http);
            clickhouse::Client::with_http_client(hyper.build(connector))
        }
        Err(error) => {
            tracing::error!(%error, "no TLS for ClickHouse; only http URLs work");
            clickhouse::Client::with_http_client(hyper.build(http))
        }
    }
}

/// Checks that the TLS settings of `config` can be built (the CA file is
/// readable and holds at least one certificate).
pub fn check_tls(config: &ClickHouseConfig) -> Result<(), TlsSetupError> {
    tls_settings(config.ca_file.as_deref()).map(|_| ())
}

type SettingsByCa = Mutex<HashMap<Option<PathBuf>, Arc<ClientConfig>>>;

fn tls_settings(ca_file: Option<&Path>) -> Result<Arc<ClientConfig>, TlsSetupError> {
    static BUILT: OnceLock<SettingsByCa> = OnceLock::new();
    let built = BUILT.get_or_init(Default::default);
    let key = ca_file.map(Path::to_path_buf);
    if let Some(settings) = built.lock().ok().and_then(|map| map.get(&key).cloned()) {
        return Ok(settings);
    }
    let roots = lagwatch_tls::trusted_roots(ca_file, "ClickHouse").map_err(|error| {
        TlsSetupError::CaFile {
            path: error.path,
            reason: error.reason,
        }
    })?;
    let settings = Arc::new(client_settings(roots)?);
    if let Ok(mut map) = built.lock() {
        map.insert(key, settings.clone());
    }
    Ok(settings)
}
