//! Client addresses behind reverse proxies.
//!
//! Behind Caddy or nginx every connection comes from the proxy, so anything keyed by the peer
//! address (the sign-in limit above all) would lump every client together. A proxy appends the
//! address it saw to `X-Forwarded-For`; but a client can send that header too, with any address
//! it likes in it. So the header is believed only as far as the chain of *trusted* proxies
//! (`trusted_proxies`, a list of CIDRs) reaches: starting from the peer and walking the header
//! from the right, every hop that is a trusted proxy vouches for the address to its left, and
//! the first address that is not a trusted proxy is the client. Entries left of it were written
//! by the client and are ignored.

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use ipnet::IpNet;

/// The networks whose connections may say who the client is (`trusted_proxies`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    nets: Vec<IpNet>,
}

impl TrustedProxies {
    /// Parses a comma- or space-separated list of CIDRs (`10.0.0.0/8, ::1/128`); a bare address
    /// stands for itself alone (`/32` or `/128`). An empty list trusts no one.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut nets = Vec::new();
        for item in text.split([',', ' ', '\t', '\n']).filter(|s| !s.is_empty()) {
            let net = match IpNet::from_str(item) {
                Ok(net) => net,
                Err(_) => match IpAddr::from_str(item) {
                    Ok(ip) => IpNet::from(canonical(ip)),
                    Err(_) => {
                        return Err(format!(
                            "expected CIDRs such as 10.0.0.0/8 or ::1/128 separated by commas, got {item:?}"
                        ));
                    }
                },
            };
            nets.push(net.trunc());
        }
        Ok(Self { nets })
    }

    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }

    /// Whether `ip` belongs to a trusted proxy (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.nets.iter().any(|net| net.contains(&ip))
    }

    /// The client's address for a connection from `peer` carrying the given `X-Forwarded-For`
    /// header values (in the order they arrived; several headers count as one list).
    ///
    /// An untrusted peer's header is ignored: the peer is the client. Otherwise the header is
    /// walked from the right past trusted proxies, and the first address that is not one is the
    /// client. When every hop is trusted, the left-most is the client. An entry that is not an
    /// address stops the walk at the last good hop, since nothing left of it can be vouched for.
    pub fn client_address<'a>(
        &self,
        peer: IpAddr,
        forwarded_for: impl IntoIterator<Item = &'a str>,
    ) -> IpAddr {
        let mut client = canonical(peer);
        if !self.contains(client) {
            return client;
        }
        let hops: Vec<&str> = forwarded_for
            .into_iter()
            .flat_map(|value| value.split(','))
            .map(str::trim)
            .collect();
        for hop in hops.iter().rev() {
            if hop.is_empty() {
                continue;
            }
            let Some(ip) = parse_hop(hop) else {
                break;
            };
            client = ip;
            if !self.contains(ip) {
                break;
            }
        }
        client
    }
}

/// One `X-Forwarded-For` entry: an address, possibly with a port (`1.2.3.4:5678`, `[::1]:80`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    IpAddr::from_str(hop)
        .or_else(|_| SocketAddr::from_str(hop).map(|s| s.ip()))
        .ok()
        .map(canonical)
}

/// IPv4-mapped IPv6 addresses (a dual-stack listener's view of IPv4 peers) as plain IPv4, so a
/// client has one address whichever way it arrived.
fn canonical(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn trusted(s: &str) -> TrustedProxies {
        TrustedProxies::parse(s).unwrap()
    }

    #[test]
    fn parses_cidrs_and_bare_addresses() {
        let t = trusted("10.0.0.0/8, 192.168.1.7 ::1/128,fd00::/8");
        assert!(t.contains(ip("10.200.3.4")));
        assert!(t.contains(ip("192.168.1.7")));
        assert!(!t.contains(ip("192.168.1.8")));
        assert!(t.contains(ip("::1")));
        assert!(t.contains(ip("fd12::5")));
        assert!(
            t.contains(ip("::ffff:10.1.2.3")),
            "IPv4-mapped peers match IPv4 nets"
        );
        assert!(!t.contains(ip("11.0.0.1")));
        assert!(TrustedProxies::parse("").unwrap().is_empty());
        assert!(TrustedProxies::parse(" , ").unwrap().is_empty());
        let err = TrustedProxies::parse("10.0.0.0/8, proxy.local").unwrap_err();
        assert!(err.contains("\"proxy.local\""), "{err}");
        assert!(TrustedProxies::parse("10.0.0.0/33").is_err());
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let t = trusted("10.0.0.0/8");
        assert_eq!(
            t.client_address(ip("203.0.113.9"), ["1.1.1.1"]),
            ip("203.0.113.9")
        );
        let none = TrustedProxies::default();
        assert_eq!(
            none.client_address(ip("10.0.0.1"), ["1.1.1.1"]),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn a_trusted_peer_names_the_client_right_most_untrusted_wins() {
        let t = trusted("10.0.0.0/8, 172.16.0.0/12");
        // One proxy: the client is what it appended.
        assert_eq!(
            t.client_address(ip("10.0.0.2"), ["198.51.100.7"]),
            ip("198.51.100.7")
        );
        // The client forged an entry; the proxy appended the real address after it.
        assert_eq!(
            t.client_address(ip("10.0.0.2"), ["6.6.6.6, 198.51.100.7"]),
            ip("198.51.100.7")
        );
        // Several hops: a CDN edge (trusted), then the load balancer (trusted), then us.
        assert_eq!(
            t.client_address(
                ip("10.0.0.2"),
                ["6.6.6.6, 198.51.100.7, 172.16.4.4, 10.9.9.9"]
            ),
            ip("198.51.100.7")
        );
        // The hops may come as several headers.
        assert_eq!(
            t.client_address(ip("10.0.0.2"), ["6.6.6.6, 198.51.100.7", "172.16.4.4"]),
            ip("198.51.100.7")
        );
        // An untrusted hop in the middle stops the walk there: it could have written the rest.
        assert_eq!(
            t.client_address(ip("10.0.0.2"), ["198.51.100.7, 203.0.113.1, 10.1.1.1"]),
            ip("203.0.113.1")
        );
        // Every hop trusted: the left-most is the client.
        assert_eq!(
            t.client_address(ip("10.0.0.2"), ["10.3.3.3, 172.16.0.9"]),
            ip("10.3.3.3")
        );
        // No header from a trusted peer: the peer itself.
        assert_eq!(t.client_address(ip("10.0.0.2"), []), ip("10.0.0.2"));
        // Ports and IPv6 entries, and IPv4-mapped peers.
        assert_eq!(
            t.client_address(ip("::ffff:10.0.0.2"), ["[2001:db8::1]:4431, 10.0.0.5:80"]),
            ip("2001:db8::1")
        );
        assert_eq!(
            t.client_address(ip("10.0.0.2"), ["198.51.100.7:5000"]),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn garbage_stops_at_the_last_hop_a_trusted_proxy_vouched_for() {
        let t = trusted("10.0.0.0/8");
        assert_eq!(
            t.client_address(ip("10.0.0.2"), ["1.2.3.4, unknown, 10.5.5.5"]),
            ip("10.5.5.5")
        );
        assert_eq!(
            t.client_address(ip("10.0.0.2"), ["not-an-ip"]),
            ip("10.0.0.2")
        );
        assert_eq!(
            t.client_address(ip("10.0.0.2"), [" 198.51.100.7 , , "]),
            ip("198.51.100.7")
        );
    }
}
