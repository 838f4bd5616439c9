//! The client's address behind reverse proxies: `X-Forwarded-For`, trusted only from the
//! configured proxies (`trusted_proxies`), so that the per-IP connection limit counts
//! clients rather than the proxy.
//!
//! When the peer is a trusted proxy, the client is the rightmost address of
//! `X-Forwarded-For` that is not itself a trusted proxy (each proxy appends the address it
//! received from). From any other peer the header is ignored: anyone can write it.

use axum::http::HeaderMap;
use std::net::IpAddr;

/// An IP network: an address and a prefix length (`10.0.0.0/8`, `::1/128`, or a single
/// address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    /// Parses `ADDR` or `ADDR/PREFIX`, with a message saying what is wrong.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        let addr: IpAddr = addr.trim().parse().map_err(|_| {
            format!("`{text}` is not an IP address or network (10.0.0.0/8, 192.168.1.10, ::1)")
        })?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|&p| p <= max)
                .ok_or_else(|| format!("`{text}`: the prefix length must be 0 to {max}"))?,
            None => max,
        };
        Ok(IpNet { addr, prefix })
    }

    /// Whether `ip` is in the network (an IPv4-mapped IPv6 address counts as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// The client's address: `peer`, or from `X-Forwarded-For` when `peer` is trusted.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    let hops: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map_while(|hop| hop.trim().parse::<IpAddr>().ok())
        .collect();
    hops.iter()
        .rev()
        .copied()
        .find(|&hop| !is_trusted(hop))
        .or_else(|| hops.first().copied())
        .unwrap_or(peer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn xff(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn networks() {
        let net = IpNet::parse("10.0.0.0/8").unwrap();
        assert!(net.contains(ip("10.1.2.3")));
        assert!(!net.contains(ip("11.0.0.1")));
        assert!(net.contains(ip("::ffff:10.0.0.1")), "IPv4-mapped");
        assert!(!net.contains(ip("::1")));
        let one = IpNet::parse("192.168.1.10").unwrap();
        assert!(one.contains(ip("192.168.1.10")));
        assert!(!one.contains(ip("192.168.1.11")));
        let v6 = IpNet::parse("fd00::/8").unwrap();
        assert!(v6.contains(ip("fd12::1")));
        assert!(!v6.contains(ip("fe80::1")));
        assert!(IpNet::parse("0.0.0.0/0").unwrap().contains(ip("8.8.8.8")));
        for bad in ["", "10.0.0.0/33", "::/129", "example.com", "10.0.0.0/x"] {
            assert!(IpNet::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn forwarded_for() {
        let trusted = [IpNet::parse("10.0.0.0/8").unwrap()];
        let proxy = ip("10.0.0.1");
        assert_eq!(
            client_ip(proxy, &xff(&["1.2.3.4"]), &trusted),
            ip("1.2.3.4")
        );
        // The client may write its own header: the rightmost untrusted hop counts.
        assert_eq!(
            client_ip(proxy, &xff(&["6.6.6.6, 1.2.3.4, 10.0.0.7"]), &trusted),
            ip("1.2.3.4")
        );
        assert_eq!(
            client_ip(proxy, &xff(&["6.6.6.6", "1.2.3.4"]), &trusted),
            ip("1.2.3.4")
        );
        assert_eq!(client_ip(proxy, &HeaderMap::new(), &trusted), proxy);
        assert_eq!(client_ip(proxy, &xff(&["garbage"]), &trusted), proxy);
        // From an untrusted peer the header is ignored.
        let other = ip("5.5.5.5");
        assert_eq!(client_ip(other, &xff(&["1.2.3.4"]), &trusted), other);
        assert_eq!(client_ip(proxy, &xff(&["1.2.3.4"]), &[]), proxy);
    }
}
