//! Trust for lagwatch's https clients (ClickHouse in `history`, JMX
//! endpoints in `collector`): the operator's CA file, or without one the
//! platform's roots, in rustls settings with the `ring` provider (the one
//! the Kafka client uses; no aws-lc-rs).
//!
//! Its own crate because the two users sit on different branches of the
//! dependency graph: `history` must not build the collector's Kafka and
//! JMX code (the API depends on it), the collector must not build
//! ClickHouse, and `model` stays free of TLS dependencies.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};

/// A CA file that cannot be used: unreadable, not PEM, or without any
/// certificate. Displays as `<path>: <reason>`.
#[derive(Debug, thiserror::Error)]
#[error("{}: {reason}", path.display())]
pub struct CaFileError {
    pub path: PathBuf,
    pub reason: String,
}

/// The certificates of `ca_file`, or the platform's roots when there is
/// none. `purpose` names the client in the platform roots' log lines.
pub fn trusted_roots(
    ca_file: Option<&Path>,
    purpose: &'static str,
) -> Result<RootCertStore, CaFileError> {
    match ca_file {
        Some(path) => roots_from_file(path),
        None => Ok(platform_roots(purpose)),
    }
}

/// Every certificate of the PEM file at `path`; at least one.
pub fn roots_from_file(path: &Path) -> Result<RootCertStore, CaFileError> {
    let fail = |reason: String| CaFileError {
        path: path.to_path_buf(),
        reason,
    };
    let mut roots = RootCertStore::empty();
    let certificates =
        CertificateDer::pem_file_iter(path).map_err(|error| fail(error.to_string()))?;
    for certificate in certificates {
        let certificate = certificate.map_err(|error| fail(error.to_string()))?;
        roots
            .add(certificate)
            .map_err(|error| fail(error.to_string()))?;
    }
    if roots.is_empty() {
        return Err(fail("no PEM certificate in the file".to_string()));
    }
    Ok(roots)
}

/// The platform's CA certificates; ones that cannot be loaded or parsed
/// are logged and left out.
pub fn platform_roots(purpose: &'static str) -> RootCertStore {
    let found = rustls_native_certs::load_native_certs();
    for error in &found.errors {
        tracing::warn!(%error, purpose, "a platform CA certificate could not be loaded");
    }
    let mut roots = RootCertStore::empty();
    let (added, ignored) = roots.add_parsable_certificates(found.certs);
    tracing::debug!(added, ignored, purpose, "platform CA certificates");
    roots
}

/// rustls client settings (ring provider, safe default protocol versions,
/// no client certificate) trusting `roots`.
pub fn client_settings(roots: RootCertStore) -> Result<ClientConfig, rustls::Error> {
    Ok(
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_or_empty_ca_file_is_named() {
        let missing = roots_from_file("/nonexistent/ca.pem".as_ref()).expect_err("missing file");
        assert!(
            missing.to_string().starts_with("/nonexistent/ca.pem: "),
            "{missing}"
        );
        let empty = tempfile::NamedTempFile::new().expect("temp file");
        let error = roots_from_file(empty.path()).expect_err("no certificate");
        assert_eq!(error.reason, "no PEM certificate in the file");
    }

    #[test]
    fn without_a_ca_file_the_platform_roots_make_usable_settings() {
        let roots = trusted_roots(None, "test").expect("platform roots");
        assert!(client_settings(roots).is_ok());
    }
}
