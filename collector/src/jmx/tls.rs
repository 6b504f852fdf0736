//! Trust for https JMX endpoints: the operator's CA file (`ca_file` of the
//! cluster's `[jmx]` section) or, without one, the platform's roots.
//!
//! Jolokia agents and Prometheus exporters that carry broker credentials
//! are often served with a certificate from a private CA, so the HTTP
//! client is given its rustls settings here (built by `lagwatch_tls`: the
//! `ring` provider, as the Kafka client) instead of relying on
//! process-wide defaults.

use std::path::Path;

use rustls::ClientConfig;

/// rustls client settings trusting only the certificates in `ca_file`, or
/// the platform's roots when there is none. Errors say what is wrong with
/// the file.
pub(crate) fn client_settings(ca_file: Option<&Path>) -> Result<ClientConfig, String> {
    let roots =
        lagwatch_tls::trusted_roots(ca_file, "JMX endpoints").map_err(|error| error.to_string())?;
    lagwatch_tls::client_settings(roots).map_err(|error| error.to_string())
}

#[cfg(test)]
mod tests {
    use super::client_settings;

    #[test]
    fn a_missing_or_empty_ca_file_is_named() {
        let missing =
            client_settings(Some("/nonexistent/jmx-ca.pem".as_ref())).expect_err("missing file");
        assert!(missing.contains("/nonexistent/jmx-ca.pem"), "{missing}");
        let empty = tempfile::NamedTempFile::new().expect("temp file");
        let error = client_settings(Some(empty.path())).expect_err("no certificate");
        assert!(error.contains("no PEM certificate"), "{error}");
    }

    #[test]
    fn platform_roots_without_a_ca_file() {
        assert!(client_settings(None).is_ok());
    }
}
