//! Who is calling: the client address every per-address rule (bad admin keys, rate limits) and
//! every refusal's log line use. Behind a TLS proxy every call comes from the proxy's address, so
//! the proxies named in `[server] trusted_proxies` (`NEXKEY_TRUSTED_PROXIES`) may say, in
//! `X-Forwarded-For`, whom they speak for; from anyone else the header is ignored.

use std::net::IpAddr;
use std::str::FromStr;
use std::sync::Arc;

use ipnet::IpNet;
use poem::Request;

/// The addresses and CIDR ranges whose `X-Forwarded-For` is believed. Empty: none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    pub fn new(ranges: Vec<IpNet>) -> Self {
        TrustedProxies(ranges)
    }

    pub fn contains(&self, address: IpAddr) -> bool {
        let address = canonical(address);
        self.0.iter().any(|range| range.contains(&address))
    }

    pub fn ranges(&self) -> &[IpNet] {
        &self.0
    }
}

/// One entry: an address (`10.0.0.1`, `::1`) or a range (`10.0.0.0/8`).
pub fn parse_range(text: &str) -> Result<IpNet, String> {
    let text = text.trim();
    IpNet::from_str(text)
        .or_else(|_| IpAddr::from_str(text).map(IpNet::from))
        .map_err(|_| format!("{text:?} is neither an IP address nor a CIDR range"))
}

/// The client's address: the TCP peer's, or, when the peer is a trusted proxy, the right-most
/// address of `X-Forwarded-For` that is not itself a trusted proxy (every proxy appends the
/// address it received the call from, so entries to the left of that one are the client's own
/// words). The one function every per-client rule uses.
pub fn client_address(request: &Request) -> Option<IpAddr> {
    let trusted = request
        .data::<Arc<TrustedProxies>>()
        .map(|proxies| proxies.as_ref());
    resolve(peer_address(request), trusted, forwarded_for(request))
}

fn peer_address(request: &Request) -> Option<IpAddr> {
    request
        .remote_addr()
        .as_socket_addr()
        .map(|address| canonical(address.ip()))
}

/// Every `X-Forwarded-For` entry, in order, over all the header's lines.
fn forwarded_for(request: &Request) -> Vec<String> {
    request
        .headers()
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|entry| entry.trim().to_owned())
        .collect()
}

fn resolve(
    peer: Option<IpAddr>,
    trusted: Option<&TrustedProxies>,
    forwarded: Vec<String>,
) -> Option<IpAddr> {
    let peer = peer?;
    let Some(trusted) = trusted.filter(|trusted| trusted.contains(peer)) else {
        return Some(peer);
    };
    let mut client = peer;
    for entry in forwarded.iter().rev() {
        // A malformed hop ends the walk: the last address a trusted hop vouched for stands.
        let Ok(address) = IpAddr::from_str(entry).map(canonical) else {
            break;
        };
        client = address;
        if !trusted.contains(address) {
            break;
        }
    }
    Some(client)
}

/// `::ffff:10.0.0.1` is `10.0.0.1`: a dual-stack listener reports IPv4 peers that way.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxies(list: &[&str]) -> TrustedProxies {
        TrustedProxies::new(list.iter().map(|r| parse_range(r).unwrap()).collect())
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn hops(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_header_counts_only_from_a_trusted_peer() {
        let trusted = proxies(&["10.0.0.0/8", "127.0.0.1"]);
        let forwarded = hops(&["203.0.113.7"]);
        assert_eq!(
            resolve(Some(ip("127.0.0.1")), Some(&trusted), forwarded.clone()),
            Some(ip("203.0.113.7"))
        );
        assert_eq!(
            resolve(Some(ip("198.51.100.1")), Some(&trusted), forwarded.clone()),
            Some(ip("198.51.100.1"))
        );
        assert_eq!(
            resolve(Some(ip("127.0.0.1")), None, forwarded),
            Some(ip("127.0.0.1"))
        );
    }

    #[test]
    fn the_right_most_untrusted_hop_is_the_client() {
        let trusted = proxies(&["10.0.0.0/8", "127.0.0.1"]);
        // The client forged the first entry; the proxies appended the rest.
        let forwarded = hops(&["1.2.3.4", "203.0.113.7", "10.1.1.1"]);
        assert_eq!(
            resolve(Some(ip("127.0.0.1")), Some(&trusted), forwarded),
            Some(ip("203.0.113.7"))
        );
        // Nothing but proxies: the left-most one.
        assert_eq!(
            resolve(
                Some(ip("127.0.0.1")),
                Some(&trusted),
                hops(&["10.0.0.2", "10.0.0.3"])
            ),
            Some(ip("10.0.0.2"))
        );
        // Garbage stops the walk at the last vouched-for address.
        assert_eq!(
            resolve(
                Some(ip("127.0.0.1")),
                Some(&trusted),
                hops(&["junk", "10.0.0.3"])
            ),
            Some(ip("10.0.0.3"))
        );
        assert_eq!(
            resolve(
                Some(ip("::ffff:127.0.0.1")),
                Some(&trusted),
                hops(&["2001:db8::1"])
            ),
            Some(ip("2001:db8::1"))
        );
    }

    #[test]
    fn ranges_parse_as_addresses_or_cidr() {
        assert!(parse_range("10.0.0.1").is_ok());
        assert!(parse_range(" 10.0.0.0/8 ").is_ok());
        assert!(parse_range("::1").is_ok());
        assert!(parse_range("fd00::/8").is_ok());
        assert!(parse_range("proxy.local").is_err());
        assert!(parse_range("10.0.0.0/33").is_err());
    }
}
