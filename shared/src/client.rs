//! Who the client is, for per-client throttles and lockouts: its network, not its address.
//!
//! An IPv6 host is normally given a whole /64 (and often a /56 or /48), so keying a throttle on
//! the full 128-bit address hands one attacker 2^64 fresh buckets. IPv6 clients are keyed on
//! their prefix (`THROTTLE_IPV6_PREFIX`, default /64), IPv4 clients on their address (/32). The
//! key is the canonical text of the network (RFC 5952: lowercase, zeros compressed), so every
//! spelling of one address is one client, and an IPv4-mapped IPv6 address is its IPv4 address.

use std::net::{IpAddr, Ipv6Addr};

use crate::throttle::Scope;

/// The prefix an IPv6 client is keyed on unless configured otherwise.
pub const DEFAULT_IPV6_PREFIX: u8 = 64;

/// Accepted values of `THROTTLE_IPV6_PREFIX`: shorter than /32 would put whole providers in one
/// bucket; /128 keys single addresses (the behaviour this module exists to avoid, but a valid
/// choice for a deployment that knows its clients).
pub const IPV6_PREFIX_RANGE: std::ops::RangeInclusive<u8> = 32..=128;

/// The client's network key from the `CF-Connecting-IP` value, or `None` when the value is not
/// an IP address.
pub fn network_key(raw: &str, ipv6_prefix: u8) -> Option<String> {
    let address: IpAddr = raw.trim().parse().ok()?;
    Some(match address {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let prefix = ipv6_prefix.clamp(1, 128);
                let mask = u128::MAX << (128 - u32::from(prefix));
                let network = Ipv6Addr::from(u128::from(v6) & mask);
                format!("{network}/{prefix}")
            }
        },
    })
}

/// Parses `THROTTLE_IPV6_PREFIX` (`64` or `/64`).
pub fn parse_ipv6_prefix(raw: &str) -> Result<u8, String> {
    let digits = raw.trim().trim_start_matches('/');
    digits
        .parse::<u8>()
        .ok()
        .filter(|p| IPV6_PREFIX_RANGE.contains(p))
        .ok_or_else(|| {
            format!(
                "{raw:?} is not a prefix length from {} to {}",
                IPV6_PREFIX_RANGE.start(),
                IPV6_PREFIX_RANGE.end()
            )
        })
}

/// A request whose client is unknown, in a scope that must not share one bucket with every
/// other such request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownClient;

/// The identity an anonymous request is throttled as in `scope`. Behind Cloudflare every request
/// carries `CF-Connecting-IP`; one without it did not come through Cloudflare's edge. For the
/// scopes that guard credentials and reset codes such a request is refused rather than counted
/// in one `unknown` bucket (shared by all of them: anyone could exhaust it for everyone, and it
/// would be the only limit on them). The read-only `anon` scope counts it as `unknown`.
pub fn throttle_identity(client: Option<&str>, scope: Scope) -> Result<&str, UnknownClient> {
    match client {
        Some(network) => Ok(network),
        None if scope.fails_closed() => Err(UnknownClient),
        None => Ok("unknown"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn one_client_per_ipv6_64_whatever_the_spelling() {
        let key = network_key("2001:db8:0:1::1", 64).unwrap();
        assert_eq!(key, "2001:db8:0:1::/64");
        for same in [
            "2001:DB8:0:1::1",
            "2001:db8:0000:0001:0000:0000:0000:0001",
            "2001:db8::1:ffff:ffff:ffff:ffff",
            " 2001:db8:0:1:abcd::9 ",
        ] {
            assert_eq!(
                network_key(same, 64).as_deref(),
                Some(key.as_str()),
                "{same}"
            );
        }
        assert_eq!(
            network_key("2001:db8:0:2::1", 64).as_deref(),
            Some("2001:db8:0:2::/64")
        );
        // The example: two spellings of one address are one client at any prefix.
        assert_eq!(
            network_key("2001:DB8::1", 128),
            network_key("2001:db8:0::1", 128)
        );
        assert_eq!(
            network_key("2001:db8::1", 128).as_deref(),
            Some("2001:db8::1/128")
        );
        assert_eq!(
            network_key("2001:db8:aa:bb::1", 48).as_deref(),
            Some("2001:db8:aa::/48")
        );
    }

    #[test]
    fn ipv4_is_keyed_on_its_address_and_mapped_addresses_are_ipv4() {
        assert_eq!(
            network_key("203.0.113.7", 64).as_deref(),
            Some("203.0.113.7")
        );
        assert_eq!(
            network_key("::ffff:203.0.113.7", 64).as_deref(),
            Some("203.0.113.7")
        );
        assert_ne!(
            network_key("203.0.113.7", 64),
            network_key("203.0.113.8", 64)
        );
    }

    #[test]
    fn anything_but_an_address_is_no_client() {
        for raw in [
            "",
            "unknown",
            "203.0.113.7:443",
            "[2001:db8::1]",
            "2001:db8::/64",
            "1.2.3",
        ] {
            assert_eq!(network_key(raw, 64), None, "{raw:?}");
        }
    }

    #[test]
    fn an_unknown_client_is_refused_where_credentials_are_guarded() {
        for scope in Scope::ALL {
            assert_eq!(
                throttle_identity(Some("203.0.113.7"), scope),
                Ok("203.0.113.7")
            );
        }
        assert_eq!(throttle_identity(None, Scope::Auth), Err(UnknownClient));
        assert_eq!(
            throttle_identity(None, Scope::PasswordReset),
            Err(UnknownClient)
        );
        assert_eq!(throttle_identity(None, Scope::Anon), Ok("unknown"));
    }

    #[test]
    fn prefix_setting() {
        assert_eq!(parse_ipv6_prefix("64"), Ok(64));
        assert_eq!(parse_ipv6_prefix("/56"), Ok(56));
        assert_eq!(parse_ipv6_prefix("128"), Ok(128));
        for bad in ["", "0", "31", "129", "sixty-four", "-1"] {
            assert!(parse_ipv6_prefix(bad).is_err(), "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn every_address_of_a_network_has_that_networks_key(
            network in any::<u64>(), host_a in any::<u64>(), host_b in any::<u64>()
        ) {
            let address = |host: u64| Ipv6Addr::from((u128::from(network) << 64) | u128::from(host));
            let (a, b) = (address(host_a), address(host_b));
            prop_assume!(a.to_ipv4_mapped().is_none());
            let key = network_key(&a.to_string(), 64);
            prop_assert!(key.is_some());
            prop_assert_eq!(&key, &network_key(&b.to_string(), 64));
            // The key parses back as the network's first address.
            let text = key.unwrap();
            let (first, prefix) = text.split_once('/').unwrap();
            prop_assert_eq!(prefix, "64");
            prop_assert_eq!(first.parse::<Ipv6Addr>().unwrap(), address(0));
        }
    }
}
