//! Client configuration, parsed from the librdkafka-style profile the rest of
//! lagwatch already uses, so one cluster profile serves both librdkafka (for
//! producing and consuming) and this crate (for the admin reads).
//!
//! Only the properties that matter for connecting are read; librdkafka tuning
//! knobs are ignored. Everything that can fail (unknown protocol, unsupported
//! mechanism, unreadable or unusable PEM files) fails here, at startup, naming
//! the property, rather than at the first connection.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::error::WireError;
use crate::tls;

/// How connections to the brokers are secured (`security.protocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecurityProtocol {
    Plaintext,
    Ssl,
    SaslPlaintext,
    SaslSsl,
}

impl SecurityProtocol {
    fn uses_tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }
    fn uses_sasl(self) -> bool {
        matches!(
            self,
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
        )
    }
}

/// A SASL mechanism this crate implements (`sasl.mechanism`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaslMechanism {
    Plain,
    ScramSha256,
    ScramSha512,
}

impl SaslMechanism {
    /// The mechanism's name in SaslHandshake.
    pub fn name(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

/// SASL credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct SaslConfig {
    pub mechanism: SaslMechanism,
    pub username: String,
    pub password: String,
}

impl fmt::Debug for SaslConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SaslConfig")
            .field("mechanism", &self.mechanism)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Everything a [`crate::WireClient`] needs to reach a cluster.
#[derive(Clone)]
pub struct WireConfig {
    /// `host:port` entries of `bootstrap.servers`.
    pub bootstrap: Vec<String>,
    pub security: SecurityProtocol,
    pub sasl: Option<SaslConfig>,
    /// The TLS client configuration when `security` uses TLS.
    pub(crate) tls: Option<Arc<rustls::ClientConfig>>,
    /// Sent in every request header (`client.id`, default `lagwatch`).
    pub client_id: String,
    /// Timeout of one request (and of one connection attempt); also the budget
    /// of the retries of one call.
    pub request_timeout: Duration,
}

impl fmt::Debug for WireConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WireConfig")
            .field("bootstrap", &self.bootstrap)
            .field("security", &self.security)
            .field("sasl", &self.sasl)
            .field("tls", &self.tls.is_some())
            .field("client_id", &self.client_id)
            .field("request_timeout", &self.request_timeout)
            .finish()
    }
}

impl WireConfig {
    /// A PLAINTEXT configuration for `bootstrap_servers`.
    pub fn plaintext(
        bootstrap_servers: &str,
        request_timeout: Duration,
    ) -> Result<Self, WireError> {
        Self::from_properties(bootstrap_servers, &BTreeMap::new(), request_timeout)
    }

    /// From a librdkafka-style profile: the `bootstrap.servers` string plus
    /// properties such as `security.protocol` (PLAINTEXT|SSL|SASL_PLAINTEXT|SASL_SSL,
    /// case-insensitive), `sasl.mechanism` (or `sasl.mechanisms`)
    /// PLAIN|SCRAM-SHA-256|SCRAM-SHA-512, `sasl.username`, `sasl.password`,
    /// `ssl.ca.location` (PEM file; `probe` = the system's roots, also the
    /// default), `ssl.ca.pem` (inline PEM), `ssl.certificate.location` +
    /// `ssl.key.location` (mTLS, PEM; or inline `ssl.certificate.pem` +
    /// `ssl.key.pem`), `ssl.endpoint.identification.algorithm` (`https`, the
    /// default, verifies the host name; `none` skips only the host name check,
    /// the chain is still verified) and `client.id`.
    ///
    /// An encrypted PKCS#8 key (`BEGIN ENCRYPTED PRIVATE KEY`, PBES2 as
    /// `openssl pkcs8 -topk8 -v2 aes-256-cbc` writes) is decrypted with
    /// `ssl.key.password`; legacy OpenSSL-encrypted PEM keys are refused. Unknown `security.protocol`
    /// values and unsupported mechanisms (GSSAPI, OAUTHBEARER) are refused naming
    /// the property. Other properties are ignored.
    pub fn from_properties(
        bootstrap_servers: &str,
        properties: &BTreeMap<String, String>,
        request_timeout: Duration,
    ) -> Result<Self, WireError> {
        let bootstrap = parse_bootstrap(bootstrap_servers)?;
        let get = |key: &str| {
            properties
                .get(key)
                .map(|v| v.trim())
                .filter(|v| !v.is_empty())
        };
        let security = match get("security.protocol") {
            None => SecurityProtocol::Plaintext,
            Some(v) => match v.to_ascii_uppercase().as_str() {
                "PLAINTEXT" => SecurityProtocol::Plaintext,
                "SSL" => SecurityProtocol::Ssl,
                "SASL_PLAINTEXT" => SecurityProtocol::SaslPlaintext,
                "SASL_SSL" => SecurityProtocol::SaslSsl,
                other => {
                    return Err(WireError::config(
                        "security.protocol",
                        format!(
                            "unknown value {other:?} (expected PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL)"
                        ),
                    ))
                }
            },
        };
        let sasl = if security.uses_sasl() {
            let (key, mech) = match get("sasl.mechanism") {
                Some(m) => ("sasl.mechanism", m),
                None => (
                    "sasl.mechanisms",
                    get("sasl.mechanisms").unwrap_or("GSSAPI"),
                ),
            };
            let mechanism = match mech.to_ascii_uppercase().as_str() {
                "PLAIN" => SaslMechanism::Plain,
                "SCRAM-SHA-256" => SaslMechanism::ScramSha256,
                "SCRAM-SHA-512" => SaslMechanism::ScramSha512,
                other => {
                    return Err(WireError::config(
                        key,
                        format!(
                            "unsupported sasl mechanism {other:?} (supported: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512; \
                             librdkafka's default is GSSAPI when none is set)"
                        ),
                    ))
                }
            };
            let username = get("sasl.username")
                .ok_or_else(|| WireError::config("sasl.username", "required for SASL"))?;
            let password = properties
                .get("sasl.password")
                .ok_or_else(|| WireError::config("sasl.password", "required for SASL"))?;
            Some(SaslConfig {
                mechanism,
                username: username.to_string(),
                password: password.clone(),
            })
        } else {
            None
        };
        let tls = if security.uses_tls() {
            Some(Arc::new(tls::client_config(&tls::TlsSettings {
                ca_location: get("ssl.ca.location").map(str::to_string),
                ca_pem: get("ssl.ca.pem").map(str::to_string),
                certificate_location: get("ssl.certificate.location").map(str::to_string),
                certificate_pem: get("ssl.certificate.pem").map(str::to_string),
                key_location: get("ssl.key.location").map(str::to_string),
                key_pem: get("ssl.key.pem").map(str::to_string),
                key_password: properties.get("ssl.key.password").cloned(),
                verify_hostname: match get("ssl.endpoint.identification.algorithm") {
                    None => true,
                    Some(v) if v.eq_ignore_ascii_case("https") => true,
                    Some(v) if v.eq_ignore_ascii_case("none") => false,
                    Some(other) => {
                        return Err(WireError::config(
                            "ssl.endpoint.identification.algorithm",
                            format!("unknown value {other:?} (expected https or none)"),
                        ))
                    }
                },
            })?))
        } else {
            None
        };
        if request_timeout.is_zero() {
            return Err(WireError::config(
                "request_timeout",
                "must be greater than zero",
            ));
        }
        Ok(WireConfig {
            bootstrap,
            security,
            sasl,
            tls,
            client_id: get("client.id").unwrap_or("lagwatch").to_string(),
            request_timeout,
        })
    }
}

/// `a:9092, PLAINTEXT://b:9093,[::1]:9094,c` -> `["a:9092", "b:9093", "[::1]:9094", "c:9092"]`.
fn parse_bootstrap(servers: &str) -> Result<Vec<String>, WireError> {
    let mut out = Vec::new();
    for raw in servers.split(',') {
        let entry = raw.trim();
        if entry.is_empty() {
            continue;
        }
        let entry = entry.split_once("://").map_or(entry, |(_, rest)| rest);
        let entry = entry.trim_end_matches('/');
        let has_port = if let Some(rest) = entry.strip_prefix('[') {
            match rest.split_once(']') {
                Some((_, tail)) => tail.starts_with(':'),
                None => {
                    return Err(WireError::config(
                        "bootstrap.servers",
                        format!("unterminated IPv6 address in {raw:?}"),
                    ))
                }
            }
        } else {
            entry.contains(':')
        };
        let addr = if has_port {
            let port = entry.rsplit_once(':').map(|(_, p)| p).unwrap_or_default();
            if port.parse::<u16>().is_err() {
                return Err(WireError::config(
                    "bootstrap.servers",
                    format!("invalid port in {raw:?}"),
                ));
            }
            entry.to_string()
        } else {
            format!("{entry}:9092")
        };
        if !out.contains(&addr) {
            out.push(addr);
        }
    }
    if out.is_empty() {
        return Err(WireError::config(
            "bootstrap.servers",
            "no broker address given",
        ));
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn props(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const T: Duration = Duration::from_secs(5);

    #[test]
    fn bootstrap_list_is_parsed() {
        let c = WireConfig::from_properties(" a:1, PLAINTEXT://b:2 ,[::1]:3,c,a:1", &props(&[]), T)
            .unwrap();
        assert_eq!(c.bootstrap, vec!["a:1", "b:2", "[::1]:3", "c:9092"]);
        assert_eq!(c.security, SecurityProtocol::Plaintext);
        assert_eq!(c.client_id, "lagwatch");
        assert!(WireConfig::from_properties(" , ", &props(&[]), T).is_err());
        assert!(WireConfig::from_properties("a:x", &props(&[]), T).is_err());
    }

    #[test]
    fn sasl_profiles() {
        let c = WireConfig::from_properties(
            "a:1",
            &props(&[
                ("security.protocol", "sasl_plaintext"),
                ("sasl.mechanisms", "scram-sha-512"),
                ("sasl.username", "alice"),
                ("sasl.password", "s3cret"),
                ("queued.min.messages", "1000"),
            ]),
            T,
        )
        .unwrap();
        assert_eq!(c.security, SecurityProtocol::SaslPlaintext);
        let sasl = c.sasl.clone().unwrap();
        assert_eq!(sasl.mechanism, SaslMechanism::ScramSha512);
        assert_eq!(sasl.username, "alice");
        assert!(!format!("{c:?}").contains("s3cret"));
    }

    #[test]
    fn unsupported_settings_name_the_property() {
        let err = |p: &[(&str, &str)]| {
            WireConfig::from_properties("a:1", &props(p), T)
                .unwrap_err()
                .to_string()
        };
        assert!(err(&[("security.protocol", "SASL_KERBEROS")]).contains("security.protocol"));
        let e = err(&[
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanism", "OAUTHBEARER"),
        ]);
        assert!(
            e.contains("sasl.mechanism") && e.contains("OAUTHBEARER"),
            "{e}"
        );
        let e = err(&[("security.protocol", "SASL_PLAINTEXT")]);
        assert!(e.contains("sasl.mechanisms") && e.contains("GSSAPI"), "{e}");
        let e = err(&[
            ("security.protocol", "SASL_PLAINTEXT"),
            ("sasl.mechanism", "PLAIN"),
        ]);
        assert!(e.contains("sasl.username"), "{e}");
        let e = err(&[
            ("security.protocol", "SSL"),
            ("ssl.endpoint.identification.algorithm", "dns"),
        ]);
        assert!(e.contains("ssl.endpoint.identification.algorithm"), "{e}");
        let e = err(&[
            ("security.protocol", "SSL"),
            ("ssl.ca.location", "/nonexistent/ca.pem"),
        ]);
        assert!(
            e.contains("ssl.ca.location") && e.contains("/nonexistent/ca.pem"),
            "{e}"
        );
        let e = err(&[
            ("security.protocol", "SSL"),
            ("ssl.certificate.location", "/nonexistent/c.pem"),
            ("ssl.key.location", "/nonexistent/k.pem"),
        ]);
        assert!(e.contains("ssl.certificate.location"), "{e}");
    }

    #[test]
    fn ssl_with_system_roots() {
        let c = WireConfig::from_properties(
            "a:1",
            &props(&[("security.protocol", "SSL"), ("ssl.ca.location", "probe")]),
            T,
        )
        .unwrap();
        assert!(c.tls.is_some());
        assert!(c.sasl.is_none());
    }
}
