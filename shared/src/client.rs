//! Who the client is, for per-client throttles and lockouts: its network, not its address.
//!
//! An IPv6 host is normally given a whole /64 (and often a /56 or /48), so keying a throttle on
//! the full 128-bit address hands one attacker 2^64 fresh buckets. IPv6 clients are keyed on
//! their prefix (`THROTTLE_IPV6_PREFIX`, default /64), IPv4 clients on their address (/32). The
//! key is the canonical text of the network (RFC 5952: lowercase, zeros compressed), so every
//! spelling of one address is one client, and an IPv4-mapped IPv6 address is its IPv4 address.

use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

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
///
/// The nested reset budgets count wider networks than the client's own key (`network`, from
/// [`network_key`]): `password_reset_site` its IPv6 /48 or IPv4 /24, `password_reset_provider`
/// its IPv6 /32 or IPv4 /16 (never narrower than the key itself), and `password_reset_all`
/// one bucket for everyone. One host holds a /64, a site often a /48: per-/64 budgets alone let
/// one site make 65,536 times the requests (and code guesses) of one client.
pub fn throttle_identity(
    client: Option<&str>,
    scope: Scope,
) -> Result<Cow<'_, str>, UnknownClient> {
    let network = match client {
        Some(network) => network,
        None if scope.fails_closed() => return Err(UnknownClient),
        None => return Ok(Cow::Borrowed("unknown")),
    };
    Ok(match scope {
        Scope::PasswordResetSite => Cow::Owned(wider(network, 48, 24)),
        Scope::PasswordResetProvider => Cow::Owned(wider(network, 32, 16)),
        Scope::PasswordResetAll => Cow::Borrowed("all"),
        _ => Cow::Borrowed(network),
    })
}

/// The network of `v6_prefix` (IPv6) or `v4_prefix` (IPv4) holding a [`network_key`]; a key
/// that is already wider stays as it is.
fn wider(key: &str, v6_prefix: u8, v4_prefix: u8) -> String {
    if let Some((address, prefix)) = key.split_once('/') {
        let (Ok(address), Ok(prefix)) = (address.parse::<Ipv6Addr>(), prefix.parse::<u8>()) else {
            return key.to_owned();
        };
        let prefix = prefix.min(v6_prefix);
        let mask = u128::MAX << (128 - u32::from(prefix));
        return format!("{}/{prefix}", Ipv6Addr::from(u128::from(address) & mask));
    }
    match key.parse::<Ipv4Addr>() {
        Ok(address) => {
            let mask = u32::MAX << (32 - u32::from(v4_prefix));
            format!("{}/{v4_prefix}", Ipv4Addr::from(u32::from(address) & mask))
        }
        Err(_) => key.to_owned(),
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
        for scope in [Scope::Anon, Scope::User, Scope::Auth, Scope::PasswordReset] {
            assert_eq!(
                throttle_identity(Some("203.0.113.7"), scope).as_deref(),
                Ok("203.0.113.7")
            );
        }
        for scope in Scope::ALL.into_iter().filter(|s| s.fails_closed()) {
            assert_eq!(
                throttle_identity(None, scope),
                Err(UnknownClient),
                "{scope:?}"
            );
        }
        assert_eq!(throttle_identity(None, Scope::Auth), Err(UnknownClient));
        assert_eq!(
            throttle_identity(None, Scope::PasswordReset),
            Err(UnknownClient)
        );
        assert_eq!(
            throttle_identity(None, Scope::Anon).as_deref(),
            Ok("unknown")
        );
    }

    #[test]
    fn the_nested_reset_budgets_count_wider_networks() {
        let nested = |key: &str| {
            [
                Scope::PasswordReset,
                Scope::PasswordResetSite,
                Scope::PasswordResetProvider,
                Scope::PasswordResetAll,
            ]
            .map(|scope| throttle_identity(Some(key), scope).unwrap().into_owned())
        };
        assert_eq!(
            nested("2001:db8:aa:bb::/64"),
            [
                "2001:db8:aa:bb::/64",
                "2001:db8:aa::/48",
                "2001:db8::/32",
                "all"
            ]
        );
        assert_eq!(
            nested("203.0.113.7"),
            ["203.0.113.7", "203.0.113.0/24", "203.0.0.0/16", "all"]
        );
        // A client key already wider than a level (THROTTLE_IPV6_PREFIX=40) stays as it is.
        assert_eq!(
            nested("2001:db8:a000::/40"),
            [
                "2001:db8:a000::/40",
                "2001:db8:a000::/40",
                "2001:db8::/32",
                "all"
            ]
        );
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
        /// Every /64 of one /48 (IPv4: every address of one /24) shares the site bucket, and
        /// every /48 of one /32 the provider bucket.
        #[test]
        fn every_network_of_a_site_shares_its_budget(site in any::<u16>(), subnet_a in any::<u16>(), subnet_b in any::<u16>(), host in any::<u8>()) {
            let key = |subnet: u16| network_key(&format!("2001:db8:{site:x}:{subnet:x}::1"), 64).unwrap();
            let identity = |subnet: u16, scope| throttle_identity(Some(&key(subnet)), scope).unwrap().into_owned();
            prop_assert_eq!(identity(subnet_a, Scope::PasswordResetSite), identity(subnet_b, Scope::PasswordResetSite));
            prop_assert_eq!(identity(subnet_a, Scope::PasswordResetProvider), "2001:db8::/32");
            let v4 = network_key(&format!("198.51.100.{host}"), 64).unwrap();
            prop_assert_eq!(throttle_identity(Some(&v4), Scope::PasswordResetSite).unwrap(), "198.51.100.0/24");
        }

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
