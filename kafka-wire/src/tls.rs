//! TLS with rustls: builds the client configuration from the `ssl.*`
//! properties once (so bad files fail at startup) and wraps a TCP stream.
//!
//! The `ring` provider is used (no C toolchain beyond `cc`, small build).
//! `ssl.endpoint.identification.algorithm=none` keeps the chain verification
//! and only accepts a certificate whose names do not match the broker host,
//! as librdkafka does.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::error::WireError;

/// The `ssl.*` properties, as read from the profile.
#[derive(Debug, Default)]
pub(crate) struct TlsSettings {
    pub ca_location: Option<String>,
    pub ca_pem: Option<String>,
    pub certificate_location: Option<String>,
    pub certificate_pem: Option<String>,
    pub key_location: Option<String>,
    pub key_pem: Option<String>,
    /// `ssl.key.password`: the password of an encrypted PKCS#8 key.
    pub key_password: Option<String>,
    pub verify_hostname: bool,
}

/// Reads a PEM source: the file at `location` or the inline `pem` text.
fn read_pem(
    location: Option<&str>,
    location_key: &str,
    pem: Option<&str>,
    pem_key: &str,
) -> Result<Option<(String, Vec<u8>)>, WireError> {
    if let Some(path) = location {
        let bytes = std::fs::read(path)
            .map_err(|e| WireError::config(location_key, format!("cannot read {path}: {e}")))?;
        return Ok(Some((format!("{location_key} {path}"), bytes)));
    }
    Ok(pem.map(|p| (pem_key.to_string(), p.as_bytes().to_vec())))
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Builds the rustls client configuration for the `ssl.*` properties.
pub(crate) fn client_config(s: &TlsSettings) -> Result<rustls::ClientConfig, WireError> {
    let mut roots = RootCertStore::empty();
    let ca_location = s.ca_location.as_deref().filter(|l| *l != "probe");
    match read_pem(
        ca_location,
        "ssl.ca.location",
        s.ca_pem.as_deref(),
        "ssl.ca.pem",
    )? {
        Some((what, bytes)) => {
            let key = if ca_location.is_some() {
                "ssl.ca.location"
            } else {
                "ssl.ca.pem"
            };
            for cert in CertificateDer::pem_slice_iter(&bytes) {
                let cert = cert
                    .map_err(|e| WireError::config(key, format!("invalid PEM in {what}: {e}")))?;
                roots.add(cert).map_err(|e| {
                    WireError::config(key, format!("unusable CA certificate in {what}: {e}"))
                })?;
            }
            if roots.is_empty() {
                return Err(WireError::config(
                    key,
                    format!("no certificate found in {what}"),
                ));
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            let (added, _ignored) = roots.add_parsable_certificates(found.certs);
            if added == 0 {
                let errors: Vec<String> = found.errors.iter().map(|e| e.to_string()).collect();
                return Err(WireError::config(
                    "ssl.ca.location",
                    format!(
                        "no CA certificates found in the system store ({}); set ssl.ca.location to a PEM file",
                        errors.join("; ")
                    ),
                ));
            }
        }
    }
    let roots = Arc::new(roots);
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| WireError::config("security.protocol", format!("tls setup: {e}")))?;
    let builder = if s.verify_hostname {
        builder.with_root_certificates(roots)
    } else {
        let inner = WebPkiServerVerifier::builder_with_provider(roots, provider())
            .build()
            .map_err(|e| WireError::config("ssl.ca.location", format!("tls verifier: {e}")))?;
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoHostnameVerifier { inner }))
    };

    let cert = read_pem(
        s.certificate_location.as_deref(),
        "ssl.certificate.location",
        s.certificate_pem.as_deref(),
        "ssl.certificate.pem",
    )?;
    let key = read_pem(
        s.key_location.as_deref(),
        "ssl.key.location",
        s.key_pem.as_deref(),
        "ssl.key.pem",
    )?;
    match (cert, key) {
        (None, None) => Ok(builder.with_no_client_auth()),
        (Some((what, cert_bytes)), Some((key_what, key_bytes))) => {
            let key_prop = if s.key_location.is_some() {
                "ssl.key.location"
            } else {
                "ssl.key.pem"
            };
            let cert_prop = if s.certificate_location.is_some() {
                "ssl.certificate.location"
            } else {
                "ssl.certificate.pem"
            };
            let chain = CertificateDer::pem_slice_iter(&cert_bytes)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| WireError::config(cert_prop, format!("invalid PEM in {what}: {e}")))?;
            if chain.is_empty() {
                return Err(WireError::config(
                    cert_prop,
                    format!("no certificate found in {what}"),
                ));
            }
            let key = private_key(&key_bytes, &key_what, key_prop, s.key_password.as_deref())?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| WireError::config(key_prop, format!("client certificate/key: {e}")))
        }
        (Some(_), None) => Err(WireError::config(
            "ssl.key.location",
            "ssl.certificate.location is set but no client key",
        )),
        (None, Some(_)) => Err(WireError::config(
            "ssl.certificate.location",
            "ssl.key.location is set but no client certificate",
        )),
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The client key: plain PEM (PKCS#8, PKCS#1 or SEC1), or an encrypted PKCS#8
/// key (`BEGIN ENCRYPTED PRIVATE KEY`, PBES2) decrypted with `ssl.key.password`.
/// Legacy OpenSSL-encrypted keys (`Proc-Type: 4,ENCRYPTED`) are refused.
fn private_key(
    bytes: &[u8],
    what: &str,
    key_prop: &str,
    password: Option<&str>,
) -> Result<PrivateKeyDer<'static>, WireError> {
    if contains(bytes, b"Proc-Type: 4,ENCRYPTED") {
        return Err(WireError::config(
            key_prop,
            format!(
                "{what} is a legacy OpenSSL-encrypted key; convert it to PKCS#8 \
                 (openssl pkcs8 -topk8 -v2 aes-256-cbc -in old.pem -out key.pem)"
            ),
        ));
    }
    if !contains(bytes, b"BEGIN ENCRYPTED PRIVATE KEY") {
        return PrivateKeyDer::from_pem_slice(bytes).map_err(|e| {
            WireError::config(key_prop, format!("no usable private key in {what}: {e}"))
        });
    }
    let Some(password) = password else {
        return Err(WireError::config(
            "ssl.key.password",
            format!("{what} is encrypted and ssl.key.password is not set"),
        ));
    };
    let text = std::str::from_utf8(bytes)
        .map_err(|_| WireError::config(key_prop, format!("{what} is not PEM text")))?;
    let (_label, doc) = pkcs8::der::SecretDocument::from_pem(text)
        .map_err(|e| WireError::config(key_prop, format!("invalid PEM in {what}: {e}")))?;
    let encrypted = pkcs8::EncryptedPrivateKeyInfo::try_from(doc.as_bytes()).map_err(|e| {
        WireError::config(key_prop, format!("invalid encrypted key in {what}: {e}"))
    })?;
    let plain = encrypted.decrypt(password).map_err(|e| {
        WireError::config(
            "ssl.key.password",
            format!("cannot decrypt {what} (wrong password or unsupported cipher): {e}"),
        )
    })?;
    Ok(PrivateKeyDer::Pkcs8(plain.as_bytes().to_vec().into()))
}

/// Verifies the chain like the default verifier but accepts a name mismatch.
#[derive(Debug)]
struct NoHostnameVerifier {
    inner: Arc<WebPkiServerVerifier>,
}

impl ServerCertVerifier for NoHostnameVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The TLS server name for a broker host (a DNS name or an IP address).
pub(crate) fn server_name(host: &str) -> Result<ServerName<'static>, String> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(host.to_string())
        .map_err(|e| format!("invalid tls server name {host:?}: {e}"))
}
