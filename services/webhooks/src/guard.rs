//! The SSRF guard: webhooks are requests this platform makes, from inside its network, to URLs
//! merchants choose. A URL must not reach the platform itself or its neighbours: loopback,
//! private networks (RFC 1918, IPv6 unique-local), link-local (the cloud metadata server at
//! 169.254.169.254 among them), carrier-grade NAT, unspecified, multicast and broadcast addresses,
//! and the same inside IPv4-mapped and NAT64 IPv6 addresses, are refused unless their network is
//! listed in `webhooks.allowed_networks` (tests allow `127.0.0.0/8`).
//!
//! The check runs when an endpoint is registered (the URL's IP literal, or every address its host
//! name resolves to) and again on every connection: the HTTP client resolves names through
//! [`GuardedResolver`], which drops forbidden addresses, so a name that later resolves elsewhere
//! (DNS rebinding) cannot reach them either. Redirects are not followed and no proxy is used.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

/// An IP network: `10.0.0.0/8`, `::1/128`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `addr/prefix` (or a bare address, a single host).
    pub fn parse(text: &str) -> Result<Cidr, String> {
        let (addr, prefix) = match text.trim().split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text.trim(), None),
        };
        let network: IpAddr =
            addr.parse().map_err(|_| format!("{text:?} is not an IP network (10.0.0.0/8, ::1/128)"))?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => {
                p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(|| format!("{text:?}: bad prefix length"))?
            }
        };
        Ok(Cidr { network, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = if self.prefix == 0 { 0 } else { u32::MAX << (32 - u32::from(self.prefix)) };
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = if self.prefix == 0 { 0 } else { u128::MAX << (128 - u32::from(self.prefix)) };
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// Why an address is refused, or `None` for a public one.
fn forbidden_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let o = ip.octets();
    if ip.is_loopback() {
        Some("a loopback address")
    } else if ip.is_private() {
        Some("a private address")
    } else if ip.is_link_local() {
        Some("a link-local address (the cloud metadata server among them)")
    } else if o[0] == 100 && (64..128).contains(&o[1]) {
        Some("a carrier-grade NAT address")
    } else if ip.is_unspecified() || o[0] == 0 {
        Some("an unspecified address")
    } else if ip.is_multicast() || ip.is_broadcast() || o[0] >= 240 {
        Some("a multicast, broadcast or reserved address")
    } else if o[0] == 192 && o[1] == 0 && o[2] == 0 {
        Some("an IETF protocol address")
    } else {
        None
    }
}

fn forbidden_v6(ip: Ipv6Addr) -> Option<&'static str> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return forbidden_v4(v4);
    }
    let s = ip.segments();
    // NAT64 (64:ff9b::/96): the IPv4 address it carries.
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6].iter().all(|x| *x == 0) {
        let [a, b] = s[6].to_be_bytes();
        let [c, d] = s[7].to_be_bytes();
        return forbidden_v4(Ipv4Addr::new(a, b, c, d));
    }
    if ip.is_loopback() {
        Some("a loopback address")
    } else if ip.is_unspecified() {
        Some("an unspecified address")
    } else if s[0] & 0xfe00 == 0xfc00 {
        Some("a private (unique-local) address")
    } else if s[0] & 0xffc0 == 0xfe80 {
        Some("a link-local address")
    } else if ip.is_multicast() {
        Some("a multicast address")
    } else if s[0] == 0 && s[1..6].iter().all(|x| *x == 0) {
        // The deprecated IPv4-compatible form (::a.b.c.d).
        Some("an IPv4-compatible address")
    } else {
        None
    }
}

/// The guard, with the networks configuration allows.
#[derive(Debug, Clone, Default)]
pub struct Guard {
    allowed: Vec<Cidr>,
}

impl Guard {
    pub fn new(allowed: Vec<Cidr>) -> Guard {
        Guard { allowed }
    }

    /// Why `ip` may not be called, or `None`.
    pub fn refuse(&self, ip: IpAddr) -> Option<&'static str> {
        if self.allowed.iter().any(|c| c.contains(ip)) {
            return None;
        }
        match ip {
            IpAddr::V4(v4) => forbidden_v4(v4),
            IpAddr::V6(v6) => forbidden_v6(v6),
        }
    }

    /// Whether every address of `ip`'s kind is allowed explicitly (plain `http://` is accepted
    /// only for those: a test server, a sidecar).
    pub fn explicitly_allowed(&self, ip: IpAddr) -> bool {
        self.allowed.iter().any(|c| c.contains(ip))
    }

    /// Checks a URL a merchant registers: `https://` (or `http://` to an allowed network), no user
    /// info, a host whose every address is allowed. Returns the URL normalised, or why it is refused.
    pub async fn check_url(&self, text: &str) -> Result<url::Url, String> {
        let url = url::Url::parse(text.trim()).map_err(|_| "is not an absolute URL".to_owned())?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err("must not carry a user name or password".into());
        }
        if url.fragment().is_some() {
            return Err("must not have a #fragment".into());
        }
        let host = match url.host() {
            Some(url::Host::Domain(d)) => d.to_owned(),
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            None => return Err("has no host".into()),
        };
        let port = url.port_or_known_default().unwrap_or(443);
        let addrs: Vec<IpAddr> = match host.parse::<IpAddr>() {
            Ok(ip) => vec![ip],
            Err(_) => match tokio::net::lookup_host((host.as_str(), port)).await {
                Ok(found) => found.map(|a| a.ip()).collect(),
                Err(_) => return Err(format!("host {host:?} does not resolve")),
            },
        };
        if addrs.is_empty() {
            return Err(format!("host {host:?} does not resolve"));
        }
        for ip in &addrs {
            if let Some(why) = self.refuse(*ip) {
                return Err(format!("resolves to {why}; webhooks go to public addresses only"));
            }
        }
        match url.scheme() {
            "https" => {}
            "http" if addrs.iter().all(|ip| self.explicitly_allowed(*ip)) => {}
            _ => return Err("must be https://".into()),
        }
        Ok(url)
    }
}

/// Resolves names for the webhook client and drops every address the guard refuses: a name
/// with no address left fails to connect.
#[derive(Debug, Clone)]
pub struct GuardedResolver(pub Arc<Guard>);

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let guard = Arc::clone(&self.0);
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = found.into_iter().filter(|a| guard.refuse(a.ip()).is_none()).collect();
            if allowed.is_empty() {
                return Err(format!("{host} resolves to no address webhooks may call").into());
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_are_refused() {
        let guard = Guard::default();
        for bad in [
            "127.0.0.1",
            "127.8.9.10",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "::127.0.0.1",
        ] {
            assert!(guard.refuse(bad.parse().unwrap()).is_some(), "{bad}");
        }
        for good in ["93.184.215.14", "8.8.8.8", "2606:2800:21f:cb07:6820:80da:af6b:8b2c", "172.32.0.1"] {
            assert_eq!(guard.refuse(good.parse().unwrap()), None, "{good}");
        }
    }

    #[tokio::test]
    async fn every_connection_resolves_past_the_guard() {
        use reqwest::dns::Resolve as _;
        let name = |n: &str| n.parse::<reqwest::dns::Name>().unwrap();
        let refused = GuardedResolver(Arc::new(Guard::default())).resolve(name("localhost")).await;
        assert!(refused.is_err(), "a name resolving to loopback only reaches nothing");
        let allowed = Guard::new(vec![Cidr::parse("127.0.0.0/8").unwrap()]);
        let addrs: Vec<SocketAddr> =
            GuardedResolver(Arc::new(allowed)).resolve(name("localhost")).await.unwrap().collect();
        assert!(!addrs.is_empty());
        assert!(addrs.iter().all(|a| a.ip().is_ipv4() && a.ip().is_loopback()), "::1 is dropped: {addrs:?}");
    }

    #[test]
    fn configuration_allows_listed_networks_only() {
        let guard = Guard::new(vec![Cidr::parse("127.0.0.0/8").unwrap()]);
        assert_eq!(guard.refuse("127.0.0.1".parse().unwrap()), None);
        assert!(guard.refuse("::1".parse().unwrap()).is_some(), "IPv6 loopback is another network");
        assert!(guard.refuse("169.254.169.254".parse().unwrap()).is_some());
        assert!(Cidr::parse("10.0.0.0/33").is_err());
        assert!(Cidr::parse("ten").is_err());
        assert!(Cidr::parse("fd00::/8").unwrap().contains("fdab::1".parse().unwrap()));
        assert!(!Cidr::parse("fd00::/8").unwrap().contains("fe00::1".parse().unwrap()));
    }
}
