//! A Kafka cluster's connection profile: where its brokers are and how to
//! authenticate, shared by every client lagwatch opens (the collector's
//! sampling clients, the metrics-topic producer and consumers, the
//! alert-state topic).
//!
//! A profile is `bootstrap_servers` plus librdkafka `properties` (plain
//! values) and `secret_properties` (read from an environment variable or a
//! file, never logged). Security is plain librdkafka settings:
//!
//! - TLS: `security.protocol = "SSL"` (or `"SASL_SSL"` with SASL on top),
//!   `ssl.ca.location` (the CA bundle that signed the brokers'
//!   certificates), and for mutual TLS `ssl.certificate.location` plus
//!   `ssl.key.location`, with `ssl.key.password` as a secret property when
//!   the key is encrypted.
//! - SASL: `sasl.mechanism`, `sasl.username`, and `sasl.password` as a
//!   secret property.
//!
//! [`ClusterConfig::check_secrets`] runs at start: secrets must be readable,
//! `security.protocol` must be a known one, TLS files must be readable and
//! TLS settings must not sit next to a plaintext protocol (librdkafka would
//! silently ignore them).
//!
//! The profile's serde form does not deny unknown fields on its own: it is
//! flattened into larger sections (the collector's per-cluster settings),
//! which deny them.

use std::collections::BTreeMap;

use rdkafka::config::ClientConfig;

/// Connection settings of one Kafka cluster (its auth profile included).
#[derive(Clone, PartialEq, Default, serde::Deserialize, serde::Serialize)]
pub struct ClusterConfig {
    /// Comma-separated `host:port` list of brokers to bootstrap from.
    pub bootstrap_servers: String,
    /// Extra librdkafka properties (e.g. `security.protocol = "SASL_SSL"`,
    /// `sasl.mechanism = "SCRAM-SHA-512"`, `ssl.ca.location`).
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
    /// librdkafka properties whose values are secrets, read from an
    /// environment variable or a file at start (e.g. `"sasl.password" =
    /// { file = "/run/secrets/kafka" }`). Never logged.
    #[serde(default)]
    pub secret_properties: BTreeMap<String, SecretRef>,
}

/// Where a secret property's value comes from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum SecretRef {
    /// An environment variable's value.
    Env(String),
    /// A file's content, trailing newline removed.
    File(std::path::PathBuf),
}

impl SecretRef {
    /// Reads the secret; the error names the source, never the value.
    pub fn resolve(&self) -> Result<String, String> {
        match self {
            SecretRef::Env(name) => {
                std::env::var(name).map_err(|_| format!("environment variable {name} is not set"))
            }
            SecretRef::File(path) => std::fs::read_to_string(path)
                .map(|text| text.trim_end_matches(['\n', '\r']).to_string())
                .map_err(|e| format!("cannot read {}: {e}", path.display())),
        }
    }
}

/// Property names whose values are hidden in `Debug` output.
fn is_sensitive(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["password", "secret", "key", "token", "jaas"]
        .iter()
        .any(|word| key.contains(word))
}

impl std::fmt::Debug for ClusterConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let properties: BTreeMap<&str, &str> = self
            .properties
            .iter()
            .map(|(k, v)| (k.as_str(), if is_sensitive(k) { "***" } else { v.as_str() }))
            .collect();
        f.debug_struct("ClusterConfig")
            .field("bootstrap_servers", &self.bootstrap_servers)
            .field("properties", &properties)
            .field(
                "secret_properties",
                &self.secret_properties.keys().collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl ClusterConfig {
    /// Checks, at start, what the profile reads from outside the config:
    /// every secret property must be readable, and the security settings
    /// must be coherent (see [`ClusterConfig::check_security`]). A mistake
    /// is a clear startup error instead of an auth failure or a silent
    /// plaintext connection later. Errors name keys and paths, never
    /// secret values.
    pub fn check_secrets(&self) -> Result<(), String> {
        for (key, secret) in &self.secret_properties {
            secret
                .resolve()
                .map_err(|e| format!("secret property `{key}`: {e}"))?;
        }
        self.check_security()
    }

    /// Checks the TLS / SASL settings: a known `security.protocol`, TLS
    /// files that exist and can be read, a client certificate only with
    /// its key (and the other way round), and no TLS settings on a
    /// plaintext protocol.
    pub fn check_security(&self) -> Result<(), String> {
        let protocol = self
            .properties
            .get("security.protocol")
            .map(|p| p.to_ascii_lowercase());
        let tls = match protocol.as_deref() {
            None | Some("plaintext") | Some("sasl_plaintext") => false,
            Some("ssl") | Some("sasl_ssl") => true,
            Some(other) => {
                return Err(format!(
                    "`security.protocol` is `{other}`; expected PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL"
                ))
            }
        };
        let has = |key: &str| {
            self.properties.contains_key(key) || self.secret_properties.contains_key(key)
        };
        let tls_keys: Vec<&str> = self
            .properties
            .keys()
            .chain(self.secret_properties.keys())
            .map(String::as_str)
            .filter(|k| k.starts_with("ssl.") && *k != "ssl.endpoint.identification.algorithm")
            .collect();
        if !tls && !tls_keys.is_empty() {
            return Err(format!(
                "TLS settings ({}) need `security.protocol` SSL or SASL_SSL, not {}",
                tls_keys.join(", "),
                protocol.as_deref().unwrap_or("the default PLAINTEXT")
            ));
        }
        if has("ssl.certificate.location") != has("ssl.key.location") {
            return Err(
                "mutual TLS needs both `ssl.certificate.location` and `ssl.key.location`".into(),
            );
        }
        for key in TLS_FILE_PROPERTIES {
            let Some(path) = self.properties.get(*key) else {
                continue;
            };
            // librdkafka's own keyword: use the system's CA store.
            if *key == "ssl.ca.location" && path == "probe" {
                continue;
            }
            let path = std::path::Path::new(path);
            let readable = if path.is_dir() {
                std::fs::read_dir(path).map(|_| ())
            } else {
                std::fs::File::open(path).map(|_| ())
            };
            readable.map_err(|e| format!("`{key}`: cannot read {}: {e}", path.display()))?;
        }
        Ok(())
    }

    /// A client configuration for a member of one of lagwatch's consumer
    /// groups (evaluator, history): the profile plus a short session
    /// timeout, so a killed member's partitions move to a survivor within
    /// seconds (the brokers' minimum, 6 s, instead of librdkafka's 45 s).
    /// The profile's own `session.timeout.ms` / `heartbeat.interval.ms`
    /// win.
    pub fn group_member_config(&self) -> ClientConfig {
        let mut config = self.client_config();
        for (key, value) in [
            ("session.timeout.ms", "6000"),
            ("heartbeat.interval.ms", "1500"),
        ] {
            if !self.properties.contains_key(key) {
                config.set(key, value);
            }
        }
        config
    }

    /// An rdkafka client configuration for this cluster.
    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.bootstrap_servers);
        for (key, value) in &self.properties {
            config.set(key, value);
        }
        for (key, secret) in &self.secret_properties {
            match secret.resolve() {
                Ok(value) => {
                    config.set(key, value);
                }
                Err(error) => {
                    tracing::error!(property = %key, error = %error, "secret property unavailable")
                }
            }
        }
        config
    }
}

/// Properties naming files librdkafka reads when a client is created.
const TLS_FILE_PROPERTIES: &[&str] = &[
    "ssl.ca.location",
    "ssl.certificate.location",
    "ssl.key.location",
    "ssl.keystore.location",
    "ssl.crl.location",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_come_from_files_and_never_show_in_debug() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("password");
        std::fs::write(&path, "s3cr3t\n").expect("write");
        let cluster = ClusterConfig {
            bootstrap_servers: "b:9092".into(),
            properties: BTreeMap::from([
                ("security.protocol".to_string(), "SASL_SSL".to_string()),
                ("sasl.username".to_string(), "svc".to_string()),
                ("ssl.key.password".to_string(), "inline-secret".to_string()),
            ]),
            secret_properties: BTreeMap::from([(
                "sasl.password".to_string(),
                SecretRef::File(path),
            )]),
        };
        assert_eq!(cluster.check_secrets(), Ok(()));
        assert_eq!(cluster.client_config().get("sasl.password"), Some("s3cr3t"));
        let shown = format!("{cluster:?}");
        assert!(
            !shown.contains("s3cr3t") && !shown.contains("inline-secret"),
            "{shown}"
        );
        assert!(shown.contains("svc"));
    }

    fn tls_profile(dir: &std::path::Path, protocol: &str) -> ClusterConfig {
        for name in ["ca.pem", "client.pem", "client.key"] {
            std::fs::write(dir.join(name), "-----BEGIN X-----\n").expect("write");
        }
        let path = |name: &str| dir.join(name).to_string_lossy().to_string();
        std::fs::write(dir.join("key-password"), "k3y-pass\n").expect("write");
        ClusterConfig {
            bootstrap_servers: "b:9093".into(),
            properties: BTreeMap::from([
                ("security.protocol".to_string(), protocol.to_string()),
                ("ssl.ca.location".to_string(), path("ca.pem")),
                ("ssl.certificate.location".to_string(), path("client.pem")),
                ("ssl.key.location".to_string(), path("client.key")),
            ]),
            secret_properties: BTreeMap::from([(
                "ssl.key.password".to_string(),
                SecretRef::File(dir.join("key-password")),
            )]),
        }
    }

    #[test]
    fn tls_profiles_pass_the_start_checks_and_hide_the_key_password() {
        let dir = tempfile::tempdir().expect("tempdir");
        for protocol in ["SSL", "SASL_SSL", "ssl"] {
            let cluster = tls_profile(dir.path(), protocol);
            assert_eq!(cluster.check_secrets(), Ok(()), "{protocol}");
            let config = cluster.client_config();
            assert_eq!(config.get("ssl.key.password"), Some("k3y-pass"));
            assert_eq!(config.get("security.protocol"), Some(protocol));
            let shown = format!("{cluster:?}");
            assert!(!shown.contains("k3y-pass"), "{shown}");
            assert!(shown.contains("ca.pem") && shown.contains("ssl.key.password"));
        }
        // The system CA store keyword and a CA directory are accepted.
        let mut cluster = tls_profile(dir.path(), "SSL");
        cluster
            .properties
            .insert("ssl.ca.location".into(), "probe".into());
        assert_eq!(cluster.check_secrets(), Ok(()));
        cluster.properties.insert(
            "ssl.ca.location".into(),
            dir.path().to_string_lossy().to_string(),
        );
        assert_eq!(cluster.check_secrets(), Ok(()));
    }

    #[test]
    fn incoherent_tls_profiles_are_start_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let error = |edit: &dyn Fn(&mut ClusterConfig)| {
            let mut cluster = tls_profile(dir.path(), "SSL");
            edit(&mut cluster);
            cluster.check_secrets().expect_err("must be rejected")
        };
        let missing = error(&|c| {
            c.properties
                .insert("ssl.ca.location".into(), "/nonexistent/ca.pem".into());
        });
        assert!(
            missing.contains("ssl.ca.location") && missing.contains("/nonexistent/ca.pem"),
            "{missing}"
        );
        let plaintext = error(&|c| {
            c.properties
                .insert("security.protocol".into(), "SASL_PLAINTEXT".into());
        });
        assert!(
            plaintext.contains("SSL or SASL_SSL") && plaintext.contains("ssl.ca.location"),
            "{plaintext}"
        );
        let default_plaintext = error(&|c| {
            c.properties.remove("security.protocol");
        });
        assert!(
            default_plaintext.contains("PLAINTEXT"),
            "{default_plaintext}"
        );
        let typo = error(&|c| {
            c.properties
                .insert("security.protocol".into(), "TLS".into());
        });
        assert!(typo.contains("`tls`"), "{typo}");
        let half_mtls = error(&|c| {
            c.properties.remove("ssl.key.location");
        });
        assert!(half_mtls.contains("ssl.key.location"), "{half_mtls}");
        for message in [missing, plaintext, default_plaintext, typo, half_mtls] {
            assert!(!message.contains("k3y-pass"), "{message}");
        }
    }

    #[test]
    fn missing_secret_is_named_without_value() {
        let cluster = ClusterConfig {
            bootstrap_servers: "b:9092".into(),
            secret_properties: BTreeMap::from([(
                "sasl.password".to_string(),
                SecretRef::Env("LAGWATCH_TEST_SURELY_UNSET".into()),
            )]),
            ..ClusterConfig::default()
        };
        let error = cluster.check_secrets().expect_err("unset");
        assert!(
            error.contains("sasl.password") && error.contains("LAGWATCH_TEST_SURELY_UNSET"),
            "{error}"
        );
    }
}
