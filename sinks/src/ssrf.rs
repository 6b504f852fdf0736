//! Where team-provided webhook URLs may point.
//!
//! Teams register webhook URLs through the API, and lagwatch makes the
//! request from inside the network: unchecked, any team could make it reach
//! loopback services, cloud metadata (`169.254.169.254`) or internal admin
//! ports. So a team URL may only reach public addresses, unless the operator
//! allows an internal receiver (`sinks.allow_private`).
//!
//! The check is made on the address actually connected to. Host names are
//! resolved by [`GuardedResolver`], which the team client uses as its DNS
//! resolver: every address of the answer is checked and only checked
//! addresses are handed to the connector, so a name that answers differently
//! between a check and the connection (DNS rebinding) gains nothing. URLs
//! with a literal address never reach a resolver and are checked by
//! [`DestinationPolicy::check_url`] before the request. The team client uses
//! no proxy (a proxy would resolve the name itself, after the check).
//!
//! Operator-configured endpoints (`[[webhooks]]`, Slack, PagerDuty) are
//! trusted and do not go through this.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::Url;
use serde::{Deserialize, Serialize};

use lagwatch_model::address::{embedded_v4, forbidden_kind, prefix_eq};

use crate::SinkError;

/// The `[sinks]` section: settings shared by the sinks.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SinksConfig {
    /// Internal destinations team webhooks may reach although they are
    /// loopback, private, link-local or otherwise non-public: CIDRs
    /// (`10.1.0.0/16`, `fd00::/8`, a bare address) or host names
    /// (`hooks.internal`, any address it resolves to). Empty by default.
    #[serde(default)]
    pub allow_private: Vec<String>,
}

/// Why a destination was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "destination {address} is a {kind} address; team webhooks may only reach public \
     addresses (an operator can allow it in `sinks.allow_private`)"
)]
pub struct Refused {
    pub address: IpAddr,
    pub kind: &'static str,
}

/// An IP network, `address/prefix`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cidr {
    address: IpAddr,
    prefix: u8,
}

impl Cidr {
    fn parse(text: &str) -> Option<Cidr> {
        let (address, prefix) = match text.split_once('/') {
            Some((a, p)) => (a.parse::<IpAddr>().ok()?, Some(p.parse::<u8>().ok()?)),
            None => (text.parse::<IpAddr>().ok()?, None),
        };
        let max = if address.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(Cidr { address, prefix })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        match (self.address, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                prefix_eq(u32::from(net).into(), u32::from(ip).into(), self.prefix, 32)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                prefix_eq(u128::from(net), u128::from(ip), self.prefix, 128)
            }
            _ => false,
        }
    }
}

/// Which destinations team webhooks may reach: public addresses, plus the
/// operator's `allow_private` networks and host names.
#[derive(Debug, Clone, Default)]
pub struct DestinationPolicy {
    networks: Vec<Cidr>,
    hosts: Vec<String>,
    /// Names answered without DNS (tests; see [`Self::with_static_host`]).
    static_hosts: BTreeMap<String, Vec<IpAddr>>,
}

/// A host name as compared: lower case, without a trailing dot.
/// `localhost` or a name under it.
fn is_localhost(host: &str) -> bool {
    let host = normalize_host(host);
    host == "localhost" || host.ends_with(".localhost")
}

fn normalize_host(host: &str) -> String {
    host.trim_end_matches('.').to_ascii_lowercase()
}

impl DestinationPolicy {
    /// Parses `sinks.allow_private`: each entry is a CIDR, an address or a
    /// host name.
    pub fn new(config: &SinksConfig) -> Result<DestinationPolicy, SinkError> {
        let mut policy = DestinationPolicy::default();
        for (index, entry) in config.allow_private.iter().enumerate() {
            let entry = entry.trim();
            if let Some(cidr) = Cidr::parse(entry) {
                policy.networks.push(cidr);
            } else if !entry.is_empty()
                && !entry.contains('/')
                && entry
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
            {
                policy.hosts.push(normalize_host(entry));
            } else {
                return Err(SinkError::Config(format!(
                    "sinks.allow_private[{index}] `{entry}` is neither a CIDR (10.1.0.0/16), \
                     an address nor a host name"
                )));
            }
        }
        Ok(policy)
    }

    /// Answers `host` with `addresses` instead of asking DNS. The answer is
    /// still checked like any other; a way for tests to make a name point
    /// anywhere without touching the system resolver.
    pub fn with_static_host(mut self, host: &str, addresses: &[IpAddr]) -> DestinationPolicy {
        self.static_hosts
            .insert(normalize_host(host), addresses.to_vec());
        self
    }

    fn host_allowed(&self, host: &str) -> bool {
        let host = normalize_host(host);
        self.hosts.contains(&host)
    }

    fn network_allowed(&self, ip: IpAddr) -> bool {
        let v4 = match ip {
            IpAddr::V6(v6) => embedded_v4(v6).map(IpAddr::V4),
            IpAddr::V4(_) => None,
        };
        self.networks
            .iter()
            .any(|n| n.contains(ip) || v4.is_some_and(|v4| n.contains(v4)))
    }

    /// Whether `ip`, reached through a URL naming `host`, is allowed.
    pub fn check(&self, host: Option<&str>, ip: IpAddr) -> Result<(), Refused> {
        if host.is_some_and(|h| self.host_allowed(h)) || self.network_allowed(ip) {
            return Ok(());
        }
        match forbidden_kind(ip) {
            Some(kind) => Err(Refused { address: ip, kind }),
            None => Ok(()),
        }
    }

    /// The check for a URL whose host is a literal address (names are
    /// checked when the client resolves them, see [`GuardedResolver`]).
    pub fn check_url(&self, url: &Url) -> Result<(), Refused> {
        match url.host() {
            Some(url::Host::Ipv4(v4)) => self.check(None, IpAddr::V4(v4)),
            Some(url::Host::Ipv6(v6)) => self.check(None, IpAddr::V6(v6)),
            // `localhost` (any case, with or without the root dot, and its
            // subdomains) is loopback by definition (RFC 6761), whether or
            // not this machine's resolver knows the spelling.
            Some(url::Host::Domain(name)) if is_localhost(name) && !self.host_allowed(name) => {
                Err(Refused {
                    address: IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
                    kind: "loopback",
                })
            }
            _ => Ok(()),
        }
    }

    /// Resolves `host` and checks every address; any refused address
    /// refuses the name (a mixed answer is how rebinding attacks start).
    pub async fn resolve(&self, host: &str) -> Result<Vec<SocketAddr>, BoxError> {
        let addresses: Vec<SocketAddr> = match self.static_hosts.get(&normalize_host(host)) {
            Some(ips) => ips.iter().map(|ip| SocketAddr::new(*ip, 0)).collect(),
            None => tokio::net::lookup_host((host, 0)).await?.collect(),
        };
        for address in &addresses {
            self.check(Some(host), address.ip())?;
        }
        Ok(addresses)
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The team client's DNS resolver: [`DestinationPolicy::resolve`].
#[derive(Debug, Clone)]
pub struct GuardedResolver {
    policy: Arc<DestinationPolicy>,
}

impl GuardedResolver {
    pub fn new(policy: Arc<DestinationPolicy>) -> GuardedResolver {
        GuardedResolver { policy }
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = Arc::clone(&self.policy);
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addresses = policy.resolve(&host).await?;
            Ok(Box::new(addresses.into_iter()) as Addrs)
        })
    }
}

/// The refusal somewhere in an error's causes (a reqwest error wraps the
/// resolver's).
pub fn find_refusal<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a Refused> {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(refused) = e.downcast_ref::<Refused>() {
            return Some(refused);
        }
        current = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("address")
    }

    #[test]
    fn non_public_addresses_are_classified() {
        for (address, kind) in [
            ("127.0.0.1", "loopback"),
            ("127.255.1.2", "loopback"),
            ("0.0.0.0", "unspecified"),
            ("10.1.2.3", "private"),
            ("172.16.0.1", "private"),
            ("172.31.255.255", "private"),
            ("192.168.1.1", "private"),
            ("100.64.0.1", "shared (CGNAT)"),
            ("100.127.255.255", "shared (CGNAT)"),
            ("169.254.169.254", "link-local"),
            ("224.0.0.1", "multicast"),
            ("239.255.255.250", "multicast"),
            ("255.255.255.255", "broadcast"),
            ("::", "unspecified"),
            ("::1", "loopback"),
            ("::ffff:127.0.0.1", "loopback"),
            ("::ffff:169.254.169.254", "link-local"),
            ("::ffff:10.0.0.1", "private"),
            ("::127.0.0.1", "loopback"),
            ("::ffff:0.0.0.0", "unspecified"),
            ("64:ff9b::a9fe:a9fe", "link-local"),
            ("2002:7f00:1::", "loopback"),
            ("fc00::1", "unique-local (private)"),
            ("fd12:3456::1", "unique-local (private)"),
            ("fe80::1", "link-local"),
            ("febf::1", "link-local"),
            ("ff02::1", "multicast"),
        ] {
            assert_eq!(forbidden_kind(ip(address)), Some(kind), "{address}");
        }
    }

    #[test]
    fn public_addresses_pass() {
        for address in [
            "8.8.8.8",
            "1.1.1.1",
            "172.32.0.1",
            "172.15.255.255",
            "100.63.255.255",
            "100.128.0.0",
            "169.253.255.255",
            "11.0.0.1",
            "::ffff:8.8.8.8",
            "2001:4860:4860::8888",
            "2606:4700::1111",
            "fe00::1",
        ] {
            assert_eq!(forbidden_kind(ip(address)), None, "{address}");
        }
    }

    fn policy(entries: &[&str]) -> DestinationPolicy {
        DestinationPolicy::new(&SinksConfig {
            allow_private: entries.iter().map(|e| e.to_string()).collect(),
        })
        .expect("policy")
    }

    #[test]
    fn allowlist_opens_networks_and_names() {
        let p = policy(&["10.1.0.0/16", "hooks.internal", "127.0.0.1", "fd00::/8"]);
        assert!(p.check(None, ip("10.1.200.3")).is_ok());
        assert!(p.check(None, ip("::ffff:10.1.0.9")).is_ok(), "mapped form");
        assert_eq!(
            p.check(None, ip("10.2.0.1")),
            Err(Refused {
                address: ip("10.2.0.1"),
                kind: "private"
            })
        );
        assert!(p.check(None, ip("127.0.0.1")).is_ok());
        assert!(p.check(None, ip("127.0.0.2")).is_err());
        assert!(p.check(None, ip("fd00::5")).is_ok());
        assert!(p.check(Some("HOOKS.internal."), ip("192.168.1.1")).is_ok());
        assert!(p.check(Some("other.internal"), ip("192.168.1.1")).is_err());
        assert!(DestinationPolicy::default()
            .check(None, ip("10.1.0.1"))
            .is_err());
    }

    #[test]
    fn bad_allowlist_entries_are_refused() {
        for entry in ["10.0.0.0/33", "::/129", "http://x", "a b", "", "10.0.0.0/x"] {
            let error = DestinationPolicy::new(&SinksConfig {
                allow_private: vec![entry.to_string()],
            })
            .expect_err(entry)
            .to_string();
            assert!(error.contains("sinks.allow_private[0]"), "{error}");
        }
    }

    #[test]
    fn literal_urls_are_checked() {
        let p = DestinationPolicy::default();
        for url in [
            "http://127.0.0.1:8080/x",
            "http://[::ffff:127.0.0.1]:1/",
            "http://[::1]/",
            "http://2130706433/",
            "http://0x7f.1/",
            "http://169.254.169.254/latest/meta-data/",
            "http://[fe80::1]/",
        ] {
            let url = Url::parse(url).expect("url");
            assert!(p.check_url(&url).is_err(), "{url}");
        }
        assert!(p
            .check_url(&Url::parse("http://93.184.216.34/").expect("url"))
            .is_ok());
    }

    #[tokio::test]
    async fn resolution_checks_every_address() {
        let p = DestinationPolicy::default()
            .with_static_host("mixed.example", &[ip("93.184.216.34"), ip("10.0.0.1")])
            .with_static_host("public.example", &[ip("93.184.216.34")]);
        let error = p.resolve("mixed.example").await.expect_err("mixed");
        assert_eq!(
            find_refusal(error.as_ref()).map(|r| r.address),
            Some(ip("10.0.0.1"))
        );
        assert_eq!(
            p.resolve("public.example").await.expect("public"),
            [SocketAddr::new(ip("93.184.216.34"), 0)]
        );
        let error = p.resolve("localhost").await.expect_err("localhost");
        assert_eq!(
            find_refusal(error.as_ref()).map(|r| r.kind),
            Some("loopback")
        );
    }
}
