//! Trust for https JMX endpoints: the operator's CA file (`ca_file` of the
//! cluster's `[jmx]` section) or, without one, the platform's roots.
//!
//! Jolokia agents and Prometheus exporters that carry broker credentials
//! are often served with a certificate from a private CA, so the HTTP
//! client is given its rustls settings here (the `ring` provider, as the
//! Kafka client) instead of relying on process-wide defaults.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};

/// rustls client settings trusting only the certificates in `ca_file`, or
/// the platform's roots when there is none. Errors say what is wrong with
/// the file.
pub(crate) fn client_settings(ca_file: Option<&Path>) -> Result<ClientConfig, String> {
    let roots = match ca_file {
        Some(path) => roots_from_file(path)?,
        None => platform_roots(),
    };
    Ok(
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|error| error.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

fn roots_from_file(path: &Path) -> Result<RootCertStore, String> {
    let shown = path.display();
    let mut roots = RootCertStore::empty();
    let certificates =
        CertificateDer::pem_file_iter(path).map_err(|error| format!("{shown}: {error}"))?;
    for certificate in certificates {
        let certificate = certificate.map_err(|error| format!("{shown}: {error}"))?;
        roots
            .add(certificate)
            .map_err(|error| format!("{shown}: {error}"))?;
    }
    if roots.is_empty() {
        return Err(format!("{shown}: no PEM certificate in the file"));
    }
    Ok(roots)
}

fn platform_roots() -> RootCertStore {
    let found = rustls_native_certs::load_native_certs();
    for error in &found.errors {
        tracing::warn!(%error, "a platform CA certificate could not be loaded");
    }
    let mut roots = RootCertStore::empty();
    let (added, ignored) = roots.add_parsable_certificates(found.certs);
    tracing::debug!(added, ignored, "platform CA certificates for JMX endpoints");
    roots
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
