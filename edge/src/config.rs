//! The Worker's configuration, read from its vars and secrets once per isolate. Every problem
//! names the variable at fault; secret values are never echoed.

use shared::keys::{Algorithm, VerifyingKeys};
use shared::settings::{self, TokenSettings};
use shared::signing::RequestSigner;
use shared::signing::SignatureVersion;
use shared::throttle::{ThrottleRates, DEFAULT_RATES};
use shared::token::{ResetTokens, TokenVerifier};

use crate::cors::CorsPolicy;
use crate::log::AccessLog;

pub struct Config {
    pub verifier: TokenVerifier,
    /// The body of `/.well-known/jwks.json`, serialised once per isolate.
    pub jwks_body: Vec<u8>,
    pub resets: ResetTokens,
    pub signer: RequestSigner,
    pub origin_url: String,
    pub origin_timeout_ms: u64,
    pub rates: ThrottleRates,
    /// IPv6 clients are throttled per network of this prefix length (`shared::client`).
    pub ipv6_prefix: u8,
    pub cors: CorsPolicy,
    /// ACCESS_LOG: which answers get the Worker's own access line.
    pub access_log: AccessLog,
}

/// A configuration problem: the variable and what is wrong with it (shared with the origin).
pub use shared::settings::SettingError as ConfigError;

fn err(variable: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError::new(variable, problem)
}

impl Config {
    /// `lookup` returns a var's or secret's value, if set.
    pub fn load(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let required = |name: &'static str| settings::required(&lookup, name);
        // Issuer, audience, algorithm and the shared secrets: read as the origin reads them.
        let tokens = TokenSettings::load(&lookup)?;
        let keys = match tokens.algorithm {
            Algorithm::EdDSA => VerifyingKeys::from_jwks_json(&required("JWT_PUBLIC_KEYS")?)
                .map_err(|e| err("JWT_PUBLIC_KEYS", e.to_string()))?,
            Algorithm::HS256 => {
                VerifyingKeys::hs256_all(&settings::bytes_of(&tokens.hs256_secrets))
                    .map_err(|e| err("JWT_SECRET", e.to_string()))?
            }
        };
        // Read by the OtpStore object itself; checked here so a missing one is reported at once.
        settings::secrets(lookup("OTP_SECRET").as_deref(), "OTP_SECRET")?;
        let origin_url = required("ORIGIN_URL")?.trim_end_matches('/').to_owned();
        match origin_url.split_once("://") {
            Some(("https", _)) => {}
            // Passwords, tokens and reset codes would cross the network in clear text.
            Some(("http", rest)) if is_loopback_host(rest) => {}
            Some(("http", _)) => {
                return Err(err(
                    "ORIGIN_URL",
                    "must be https:// unless the origin is on loopback (local development)",
                ))
            }
            _ => return Err(err("ORIGIN_URL", "must be an http(s) URL")),
        }
        let origin_timeout_ms = match lookup("ORIGIN_TIMEOUT_MS") {
            None => 10_000,
            Some(v) => v
                .parse()
                .ok()
                .filter(|ms| (1..=60_000).contains(ms))
                .ok_or_else(|| err("ORIGIN_TIMEOUT_MS", "must be 1..=60000 milliseconds"))?,
        };
        let jwks_body =
            serde_json::to_vec(keys.jwks()).map_err(|e| err("JWT_PUBLIC_KEYS", e.to_string()))?;
        Ok(Self {
            jwks_body,
            verifier: TokenVerifier::new(keys, tokens.audience),
            resets: tokens.resets,
            // ORIGIN_SIGNATURE_VERSION: the canonical form signed, so a Worker rolled out before
            // its origin signs what the running origin still checks.
            signer: match lookup("ORIGIN_SIGNATURE_VERSION").filter(|v| !v.is_empty()) {
                None => tokens.signer,
                Some(v) => tokens.signer.signing(
                    SignatureVersion::parse(&v)
                        .ok_or_else(|| err("ORIGIN_SIGNATURE_VERSION", "must be 2 or 3"))?,
                ),
            },
            origin_url,
            origin_timeout_ms,
            rates: ThrottleRates::parse(
                &lookup("THROTTLE_RATES").unwrap_or_else(|| DEFAULT_RATES.into()),
            )
            .map_err(|e| err("THROTTLE_RATES", e))?,
            ipv6_prefix: match lookup("THROTTLE_IPV6_PREFIX") {
                None => shared::client::DEFAULT_IPV6_PREFIX,
                Some(v) => shared::client::parse_ipv6_prefix(&v)
                    .map_err(|e| err("THROTTLE_IPV6_PREFIX", e))?,
            },
            cors: CorsPolicy::parse(&lookup("CORS_ALLOWED_ORIGINS").unwrap_or_default())
                .map_err(|e| err("CORS_ALLOWED_ORIGINS", e))?,
            access_log: match lookup("ACCESS_LOG") {
                None => AccessLog::default(),
                Some(v) => AccessLog::parse(&v).map_err(|e| err("ACCESS_LOG", e))?,
            },
        })
    }
}

/// Whether the authority of a URL (what follows `scheme://`) names this machine: `localhost`,
/// `127.0.0.0/8` or `[::1]`, with or without a port.
fn is_loopback_host(rest: &str) -> bool {
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit('@').next().unwrap_or_default();
    let host = match host_port.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host_port.split(':').next().unwrap_or_default(),
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::keys::{Ed25519PrivateKey, Jwks};
    use std::collections::HashMap;

    fn good() -> HashMap<&'static str, String> {
        let jwks = Jwks {
            keys: vec![Ed25519PrivateKey::from_seed([1; 32]).public_jwk()],
        };
        HashMap::from([
            ("JWT_PUBLIC_KEYS", serde_json::to_string(&jwks).unwrap()),
            ("ORIGIN_URL", "http://127.0.0.1:8000/".into()),
            ("ORIGIN_SIGNING_SECRET", "s".repeat(32)),
            ("RESET_TOKEN_SECRET", "r".repeat(32)),
            ("OTP_SECRET", "o".repeat(32)),
        ])
    }

    fn load(vars: &HashMap<&'static str, String>) -> Result<Config, ConfigError> {
        Config::load(|name| vars.get(name).cloned())
    }

    #[test]
    fn defaults_apply() {
        let c = load(&good()).unwrap();
        assert_eq!(c.origin_url, "http://127.0.0.1:8000");
        assert_eq!(c.origin_timeout_ms, 10_000);
        assert_eq!(c.rates, ThrottleRates::default());
        assert_eq!(c.ipv6_prefix, 64);
        assert_eq!(c.cors, CorsPolicy::None);
        assert_eq!(c.access_log, AccessLog::Errors);
        // The published JWKS is the configured one, serialised once.
        let published: serde_json::Value = serde_json::from_slice(&c.jwks_body).unwrap();
        let configured: serde_json::Value =
            serde_json::from_str(&good()["JWT_PUBLIC_KEYS"]).unwrap();
        assert_eq!(published, configured);
    }

    #[test]
    fn plain_http_to_the_origin_only_on_loopback() {
        for url in [
            "https://origin.example.com",
            "https://10.0.0.5:8443/",
            "http://127.0.0.1:8000",
            "http://127.1.2.3",
            "http://localhost:8000/",
            "http://[::1]:8000",
        ] {
            let mut vars = good();
            vars.insert("ORIGIN_URL", url.into());
            assert!(load(&vars).is_ok(), "{url} is allowed");
        }
        for url in [
            "http://origin.example.com",
            "http://10.0.0.5:8000",
            "http://127.0.0.1.example.com",
            "http://localhost.example.com",
            "http://127.0.0.1@evil.example.com",
            "http://[::2]:8000",
        ] {
            let mut vars = good();
            vars.insert("ORIGIN_URL", url.into());
            let message = load(&vars)
                .err()
                .unwrap_or_else(|| panic!("{url} is refused"))
                .to_string();
            assert!(
                message.contains("ORIGIN_URL") && message.contains("https://"),
                "{message}"
            );
            assert!(!message.contains(url), "the value is not echoed: {message}");
        }
    }

    #[test]
    fn each_problem_names_its_variable_without_the_value() {
        let cases: [(&str, Option<&str>, &str); 11] = [
            ("ACCESS_LOG", Some("verbose"), "ACCESS_LOG"),
            ("JWT_PUBLIC_KEYS", None, "JWT_PUBLIC_KEYS"),
            ("JWT_PUBLIC_KEYS", Some("{}"), "JWT_PUBLIC_KEYS"),
            ("ORIGIN_URL", Some("ftp://x"), "ORIGIN_URL"),
            (
                "ORIGIN_SIGNING_SECRET",
                Some("too-short-secret-value"),
                "ORIGIN_SIGNING_SECRET",
            ),
            ("RESET_TOKEN_SECRET", None, "RESET_TOKEN_SECRET"),
            ("OTP_SECRET", Some(""), "OTP_SECRET"),
            ("THROTTLE_RATES", Some("auth=3/week"), "THROTTLE_RATES"),
            (
                "CORS_ALLOWED_ORIGINS",
                Some("example.com"),
                "CORS_ALLOWED_ORIGINS",
            ),
            ("JWT_ALGORITHM", Some("RS256"), "JWT_ALGORITHM"),
            ("THROTTLE_IPV6_PREFIX", Some("16"), "THROTTLE_IPV6_PREFIX"),
        ];
        for (name, value, expected) in cases {
            let mut vars = good();
            match value {
                Some(v) => vars.insert(name, v.to_owned()),
                None => vars.remove(name),
            };
            let e = load(&vars)
                .err()
                .unwrap_or_else(|| panic!("{name}={value:?} accepted"));
            assert_eq!(e.variable, expected);
            let secret = name.ends_with("_SECRET");
            if let Some(v) = value.filter(|v| secret && v.len() > 8) {
                assert!(!e.to_string().contains(v), "{e}");
            }
        }
    }

    #[test]
    fn the_signature_version_is_chosen_for_a_rollout() {
        use shared::signing::SignatureVersion;
        assert_eq!(
            load(&good()).unwrap().signer.version(),
            SignatureVersion::V3
        );
        let mut vars = good();
        vars.insert("ORIGIN_SIGNATURE_VERSION", "2".into());
        assert_eq!(load(&vars).unwrap().signer.version(), SignatureVersion::V2);
        vars.insert("ORIGIN_SIGNATURE_VERSION", "4".into());
        let e = load(&vars).err().unwrap();
        assert_eq!(e.variable, "ORIGIN_SIGNATURE_VERSION");
    }

    #[test]
    fn hs256_needs_its_secret() {
        let mut vars = good();
        vars.insert("JWT_ALGORITHM", "HS256".into());
        assert_eq!(load(&vars).err().unwrap().variable, "JWT_SECRET");
        vars.insert("JWT_SECRET", "k".repeat(32));
        assert!(load(&vars).is_ok());
    }
}
