//! The client's address, for rate limits and the session list: the TCP peer, or an address
//! from `X-Forwarded-For` only as far as the hops that appended it are proxies we trust.
//!
//! The header is read from the right: each proxy appends the address it received the request
//! from, so the rightmost entry was written by the proxy nearest to us and everything further
//! left was written by whoever the previous hop was, in the end the client itself. Starting
//! from the TCP peer, while the current hop is a trusted proxy we step one entry left; the
//! first address that is not a trusted proxy is the client. Trusting the leftmost entry (what
//! many limiters do) lets any client pick its own address, and so its own rate-limit bucket.
//! A malformed entry stops the walk at the trusted hop that passed it on, and the walk stops
//! after 32 hops.
//!
//! IPv6 clients are keyed by their /64 for rate limits ([`ClientAddress::rate_limit_key`]):
//! one subscriber usually holds a whole /64 and could otherwise rotate addresses freely.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use http::HeaderMap;
use ipnet::IpNet;

/// Entries of `X-Forwarded-For` examined at most.
const MAX_FORWARDED_HOPS: usize = 32;

/// The proxies (load balancers, CDNs) whose `X-Forwarded-For` entries are believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    ranges: Vec<IpNet>,
}

impl TrustedProxies {
    /// No proxy is trusted: the TCP peer is the client (the default).
    pub fn none() -> TrustedProxies {
        TrustedProxies::default()
    }

    /// Parses a comma-separated list of addresses or CIDR ranges
    /// (`10.0.0.0/8, 192.168.1.7, fd00::/8`).
    pub fn parse(text: &str) -> Result<TrustedProxies, String> {
        let mut ranges = Vec::new();
        for item in text
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
        {
            let range = match item.parse::<IpNet>() {
                Ok(range) => range,
                Err(_) => match item.parse::<IpAddr>() {
                    Ok(address) => IpNet::from(address),
                    Err(_) => {
                        return Err(format!("{item:?} is not an IP address or CIDR range"));
                    }
                },
            };
            ranges.push(range.trunc());
        }
        Ok(TrustedProxies { ranges })
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Whether `address` lies in one of the ranges.
    pub fn contains(&self, address: IpAddr) -> bool {
        self.trusts(address)
    }

    fn trusts(&self, address: IpAddr) -> bool {
        let address = canonical(address);
        self.ranges.iter().any(|range| range.contains(&address))
    }

    /// The client address of a request that arrived from `peer` with these headers.
    pub fn client_address(&self, peer: SocketAddr, headers: &HeaderMap) -> ClientAddress {
        let mut current = canonical(peer.ip());
        if self.ranges.is_empty() || !self.trusts(current) {
            return ClientAddress(current);
        }
        // All X-Forwarded-For headers, in order, as one list (RFC 7230 §3.2.2).
        let entries: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .map(str::trim)
            .collect();
        for entry in entries.iter().rev().take(MAX_FORWARDED_HOPS) {
            let Some(address) = parse_forwarded_entry(entry) else {
                break;
            };
            current = canonical(address);
            if !self.trusts(current) {
                break;
            }
        }
        ClientAddress(current)
    }
}

/// `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1`, `[2001:db8::1]:443`.
fn parse_forwarded_entry(entry: &str) -> Option<IpAddr> {
    if let Ok(address) = entry.parse::<IpAddr>() {
        return Some(address);
    }
    entry.parse::<SocketAddr>().ok().map(|socket| socket.ip())
}

/// IPv4-mapped IPv6 (`::ffff:1.2.3.4`) is the IPv4 address it carries.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// A client's address as Coil decided it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientAddress(pub IpAddr);

impl ClientAddress {
    /// The rate-limit bucket: the address for IPv4, its /64 network for IPv6.
    pub fn rate_limit_key(&self) -> String {
        match self.0 {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => {
                let segments = v6.segments();
                let network = Ipv6Addr::new(
                    segments[0],
                    segments[1],
                    segments[2],
                    segments[3],
                    0,
                    0,
                    0,
                    0,
                );
                format!("{network}/64")
            }
        }
    }
}

impl std::fmt::Display for ClientAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn peer(text: &str) -> SocketAddr {
        SocketAddr::new(text.parse().unwrap(), 40_000)
    }

    fn headers(values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for value in values {
            map.append("x-forwarded-for", HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn client(proxies: &TrustedProxies, from: &str, forwarded: &[&str]) -> String {
        proxies
            .client_address(peer(from), &headers(forwarded))
            .to_string()
    }

    #[test]
    fn without_trusted_proxies_the_peer_is_the_client() {
        let none = TrustedProxies::none();
        assert_eq!(client(&none, "203.0.113.9", &["1.1.1.1"]), "203.0.113.9");
    }

    #[test]
    fn an_untrusted_peer_cannot_forward() {
        let proxies = TrustedProxies::parse("10.0.0.0/8").unwrap();
        assert_eq!(client(&proxies, "203.0.113.9", &["1.1.1.1"]), "203.0.113.9");
    }

    #[test]
    fn the_walk_goes_right_to_left_over_trusted_hops() {
        let proxies = TrustedProxies::parse("10.0.0.0/8, 192.168.1.7").unwrap();
        // client -> CDN edge 192.168.1.7 -> LB 10.0.0.2 -> us.
        assert_eq!(
            client(&proxies, "10.0.0.2", &["198.51.100.4, 192.168.1.7"]),
            "198.51.100.4"
        );
        // A spoofed leftmost entry is ignored: the client is what our first proxy saw.
        assert_eq!(
            client(&proxies, "10.0.0.2", &["6.6.6.6, 198.51.100.4"]),
            "198.51.100.4"
        );
        // Several header lines form one list.
        assert_eq!(
            client(
                &proxies,
                "10.0.0.2",
                &["6.6.6.6", "198.51.100.4", "192.168.1.7"]
            ),
            "198.51.100.4"
        );
        // Every entry trusted: the leftmost one is the best we know.
        assert_eq!(client(&proxies, "10.0.0.2", &["10.1.1.1"]), "10.1.1.1");
        // No header at all: the proxy itself.
        assert_eq!(client(&proxies, "10.0.0.2", &[]), "10.0.0.2");
    }

    #[test]
    fn malformed_entries_stop_at_the_trusted_hop() {
        let proxies = TrustedProxies::parse("10.0.0.0/8").unwrap();
        assert_eq!(
            client(&proxies, "10.0.0.2", &["1.1.1.1, garbage"]),
            "10.0.0.2"
        );
        assert_eq!(
            client(&proxies, "10.0.0.2", &["1.1.1.1, 10.0.0.9, "]),
            "10.0.0.2"
        );
        // Ports and brackets are accepted.
        assert_eq!(
            client(&proxies, "10.0.0.2", &["198.51.100.4:5555"]),
            "198.51.100.4"
        );
        assert_eq!(
            client(&proxies, "10.0.0.2", &["[2001:db8::7]:443"]),
            "2001:db8::7"
        );
    }

    #[test]
    fn ipv4_mapped_and_ipv6_networks() {
        let proxies = TrustedProxies::parse("10.0.0.0/8").unwrap();
        assert_eq!(
            client(&proxies, "::ffff:10.0.0.2", &["198.51.100.4"]),
            "198.51.100.4"
        );
        let address = ClientAddress("2001:db8:1:2:aaaa::1".parse().unwrap());
        assert_eq!(address.rate_limit_key(), "2001:db8:1:2::/64");
        assert_eq!(
            ClientAddress("1.2.3.4".parse().unwrap()).rate_limit_key(),
            "1.2.3.4"
        );
    }

    #[test]
    fn bad_proxy_lists_are_refused() {
        assert!(TrustedProxies::parse("10.0.0.0/33").is_err());
        assert!(TrustedProxies::parse("example.com").is_err());
        assert!(TrustedProxies::parse("").unwrap().is_empty());
    }
}
