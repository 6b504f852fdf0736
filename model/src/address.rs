//! Which IP addresses are not public: loopback, private, link-local,
//! shared (CGNAT), multicast, broadcast, unspecified and reserved, also in
//! the IPv6 forms that carry an IPv4 address (mapped, compatible, NAT64,
//! 6to4).
//!
//! Team-provided webhook URLs must not make lagwatch reach internal
//! services (SSRF). The store refuses literal non-public addresses when a
//! monitor is registered ([`webhook_url_refusal`]); the webhook sink checks
//! the address it actually connects to (the `ssrf` module of the sinks
//! crate). One classification serves both.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Whether the first `prefix` of `bits` bits of `a` and `b` are equal.
pub fn prefix_eq(a: u128, b: u128, prefix: u8, bits: u32) -> bool {
    if prefix == 0 {
        return true;
    }
    let shift = bits - u32::from(prefix);
    (a >> shift) == (b >> shift)
}

/// Whether `ip` is in `base/prefix` (IPv4).
fn in_v4(ip: Ipv4Addr, base: [u8; 4], prefix: u8) -> bool {
    prefix_eq(
        u32::from(ip).into(),
        u32::from(Ipv4Addr::from(base)).into(),
        prefix,
        32,
    )
}

/// The kind of non-public address `ip` is, or `None` when it is public.
pub fn forbidden_kind(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let table: [([u8; 4], u8, &'static str); 11] = [
        ([0, 0, 0, 0], 8, "unspecified"),
        ([127, 0, 0, 0], 8, "loopback"),
        ([10, 0, 0, 0], 8, "private"),
        ([172, 16, 0, 0], 12, "private"),
        ([192, 168, 0, 0], 16, "private"),
        ([100, 64, 0, 0], 10, "shared (CGNAT)"),
        ([169, 254, 0, 0], 16, "link-local"),
        ([224, 0, 0, 0], 4, "multicast"),
        ([255, 255, 255, 255], 32, "broadcast"),
        ([240, 0, 0, 0], 4, "reserved"),
        ([192, 0, 0, 0], 24, "reserved"),
    ];
    table
        .iter()
        .find(|(base, prefix, _)| in_v4(ip, *base, *prefix))
        .map(|(_, _, kind)| *kind)
}

fn forbidden_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let bits = u128::from(ip);
    let seg = ip.segments();
    if ip.is_unspecified() {
        return Some("unspecified");
    }
    if ip.is_loopback() {
        return Some("loopback");
    }
    // Forms that carry an IPv4 address: mapped ::ffff:a.b.c.d, compatible
    // ::a.b.c.d, NAT64 64:ff9b::a.b.c.d and 6to4 2002:aabb:ccdd::.
    let low_v4 = Ipv4Addr::from((bits & 0xffff_ffff) as u32);
    if bits >> 32 == 0xffff || bits >> 32 == 0 || bits >> 32 == 0x0064_ff9b_0000_0000_0000_0000 {
        return forbidden_v4(low_v4);
    }
    if seg[0] == 0x2002 {
        let embedded = Ipv4Addr::from(((bits >> 80) & 0xffff_ffff) as u32);
        return forbidden_v4(embedded);
    }
    match seg[0] {
        s if s & 0xfe00 == 0xfc00 => Some("unique-local (private)"),
        s if s & 0xffc0 == 0xfe80 => Some("link-local"),
        s if s & 0xffc0 == 0xfec0 => Some("site-local (private)"),
        s if s & 0xff00 == 0xff00 => Some("multicast"),
        _ => None,
    }
}

/// The IPv4 address an IPv6 address stands for (mapped, compatible, NAT64,
/// 6to4), so an allowlisted IPv4 network also covers those forms.
pub fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let bits = u128::from(ip);
    if bits >> 32 == 0xffff
        || (bits >> 32 == 0 && bits > 1)
        || bits >> 32 == 0x0064_ff9b_0000_0000_0000_0000
    {
        return Some(Ipv4Addr::from((bits & 0xffff_ffff) as u32));
    }
    (ip.segments()[0] == 0x2002).then(|| Ipv4Addr::from(((bits >> 80) & 0xffff_ffff) as u32))
}

/// Why a team webhook URL cannot be registered: its host is `localhost`
/// (or a `.localhost` name) or a literal non-public address. Host names
/// are resolved only at delivery, where the address is checked again (an
/// operator may allow internal networks there, reached by host name).
pub fn webhook_url_refusal(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = match host_port.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host_port.split(':').next().unwrap_or_default(),
    };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    if host == "localhost" || host.ends_with(".localhost") {
        return Some(format!(
            "`{host}` is this machine; team webhooks must reach a public host"
        ));
    }
    let ip: IpAddr = host.parse().ok()?;
    forbidden_kind(ip)
        .map(|kind| format!("{ip} is a {kind} address; team webhooks must reach a public host"))
}
