//! Edge→origin request signatures.
//!
//! The origin trusts the identity the edge forwards (the user id it verified from the access
//! token) only when the request carries an HMAC-SHA256 over the method, path with query,
//! timestamp, body hash, that identity and the client's network, made with a secret only the
//! two share. The network is signed because the origin's login back-off is keyed on it: a
//! caller who could choose it could spread guesses over made-up networks. A request
//! older or newer than `MAX_SKEW_SECS` is refused, which bounds replay.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

pub const HEADER_TIMESTAMP: &str = "x-edge-timestamp";
pub const HEADER_IDENTITY: &str = "x-edge-identity";
pub const HEADER_SIGNATURE: &str = "x-edge-signature";
/// Set by the origin on its answer to a request whose signature it refused, so the edge can
/// tell a misconfiguration (different `ORIGIN_SIGNING_SECRET`, clock skew) from a client's 401
/// and answer 503 instead of passing a 401 on to a client that did nothing wrong.
pub const HEADER_SIGNATURE_REFUSED: &str = "x-edge-signature-refused";
/// The client's network as the edge saw it (an address or prefix); empty when unknown.
pub const HEADER_CLIENT_NETWORK: &str = "X-Client-Network";
/// Longest client network accepted (an IPv6 address with a prefix length fits in 43).
pub const MAX_CLIENT_NETWORK_CHARS: usize = 64;
pub const MAX_SKEW_SECS: i64 = 60;
pub const MIN_SECRET_BYTES: usize = 32;
/// Which canonical form a signature covers (`2` or `3`). Absent: either, as the releases
/// before this header sent v3, and those before them v2.
pub const HEADER_SIGNATURE_VERSION: &str = "x-edge-signature-version";

/// The versions of the canonical string. A release adds a version and keeps verifying the
/// previous one, so origin-first and edge-first rollouts both serve: the rule is that a release
/// may change the signed request only if the previous release can still talk to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SignatureVersion {
    /// Method, path and query, timestamp, body hash, identity, client network.
    V2,
    /// v2 and the client's `User-Agent`.
    #[default]
    V3,
}

impl SignatureVersion {
    /// What a verifier accepts (the current version and the previous one).
    pub const ACCEPTED: [SignatureVersion; 2] = [Self::V3, Self::V2];

    /// The header's value, `2` or `3`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V2 => "2",
            Self::V3 => "3",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value.trim().trim_start_matches(['v', 'V']) {
            "2" => Some(Self::V2),
            "3" => Some(Self::V3),
            _ => None,
        }
    }

    /// Whether this version signs the client's agent (v2 did not: a v2 request's agent header
    /// is not trusted).
    pub fn signs_agent(self) -> bool {
        self == Self::V3
    }
}

/// A session id: the UUID of a refresh family, in its canonical text form (lowercase,
/// hyphenated) on the wire and in tokens.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionId([u8; 16]);

impl SessionId {
    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// Only the canonical form (`xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, lowercase hex), so one
    /// session has one spelling and a parsed id prints back as it came.
    pub fn parse(raw: &str) -> Option<Self> {
        let bytes = raw.as_bytes();
        if bytes.len() != 36 {
            return None;
        }
        let mut hex = String::with_capacity(32);
        for (i, &b) in bytes.iter().enumerate() {
            if matches!(i, 8 | 13 | 18 | 23) {
                if b != b'-' {
                    return None;
                }
            } else if b.is_ascii_digit() || (b'a'..=b'f').contains(&b) {
                hex.push(b as char);
            } else {
                return None;
            }
        }
        crate::hex::decode(&hex)?.try_into().ok().map(Self)
    }
}

impl std::fmt::Display for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hex = crate::hex::encode(&self.0);
        write!(
            f,
            "{}-{}-{}-{}-{}",
            &hex[..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..]
        )
    }
}

impl std::fmt::Debug for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SessionId({self})")
    }
}

/// Who the edge says is calling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Identity {
    Anonymous,
    /// A user whose access token the edge verified, with that token's `ver` and `sid` (`None`
    /// for a token issued before sessions were named).
    User {
        id: i64,
        token_version: i32,
        session: Option<SessionId>,
    },
}

/// The identity of a verified access token's holder.
impl From<&crate::token::Claims> for Identity {
    fn from(claims: &crate::token::Claims) -> Self {
        Self::User {
            id: claims.user_id,
            token_version: claims.ver,
            session: claims.sid.as_deref().and_then(SessionId::parse),
        }
    }
}

impl Identity {
    /// `anon`, `user:{id}:{ver}`, or `user:{id}:{ver}:{session}`.
    pub fn to_header(self) -> String {
        match self {
            Self::Anonymous => "anon".to_owned(),
            Self::User {
                id,
                token_version,
                session: None,
            } => format!("user:{id}:{token_version}"),
            Self::User {
                id,
                token_version,
                session: Some(session),
            } => format!("user:{id}:{token_version}:{session}"),
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        if raw == "anon" {
            return Some(Self::Anonymous);
        }
        let rest = raw.strip_prefix("user:")?;
        let (id, rest) = rest.split_once(':')?;
        let (ver, session) = match rest.split_once(':') {
            Some((ver, session)) => (ver, Some(SessionId::parse(session)?)),
            None => (rest, None),
        };
        let canonical = |s: &str| {
            !s.is_empty()
                && s.bytes().all(|b| b.is_ascii_digit())
                && (s == "0" || !s.starts_with('0'))
        };
        if !canonical(id) || !canonical(ver) {
            return None;
        }
        Some(Self::User {
            id: id.parse().ok()?,
            token_version: ver.parse().ok()?,
            session,
        })
    }
}

/// Whether `network` may travel in [`HEADER_CLIENT_NETWORK`]: at most
/// [`MAX_CLIENT_NETWORK_CHARS`] characters of hex digits, `.`, `:` and `/` (IPv4, IPv6, CIDR),
/// or empty for unknown. Nothing else can reach the canonical string, so no newline can forge a
/// field boundary, and nothing unbounded reaches the origin's database key.
pub fn is_valid_client_network(network: &str) -> bool {
    network.len() <= MAX_CLIENT_NETWORK_CHARS
        && network
            .bytes()
            .all(|b| b.is_ascii_hexdigit() || matches!(b, b'.' | b':' | b'/'))
}

/// The client's `User-Agent` as the edge saw it, shown in the session list; empty when unknown.
pub const HEADER_CLIENT_AGENT: &str = "X-Client-Agent";
/// Longest client agent kept (longer ones are cut by [`client_agent`]).
pub const MAX_CLIENT_AGENT_CHARS: usize = 256;

/// Whether `agent` may travel in [`HEADER_CLIENT_AGENT`]: at most [`MAX_CLIENT_AGENT_CHARS`]
/// printable ASCII characters (so no newline reaches the canonical string), without a space at
/// either end (which HTTP would strip on the way, see [`survives_http`]).
pub fn is_valid_client_agent(agent: &str) -> bool {
    agent.len() <= MAX_CLIENT_AGENT_CHARS
        && agent.bytes().all(|b| (0x20..0x7f).contains(&b))
        && survives_http(agent)
}

/// A `User-Agent` made fit for [`HEADER_CLIENT_AGENT`]: any other character becomes `?`, it is
/// cut at [`MAX_CLIENT_AGENT_CHARS`], and spaces at either end go *after* the cut. Fetch's
/// `Headers` and every HTTP parser (httparse among them) strip a header value's leading and
/// trailing whitespace: a signed value ending in a space would reach the origin as another
/// string, and the signature would be refused. It is what the client says it is, for display
/// only.
pub fn client_agent(raw: &str) -> String {
    let cut: String = raw
        .chars()
        .take(MAX_CLIENT_AGENT_CHARS)
        .map(|c| if (' '..='~').contains(&c) { c } else { '?' })
        .collect();
    cut.trim_matches(' ').to_owned()
}

/// Whether a header value reaches the other side as it was signed: HTTP (RFC 9110 §5.5) and
/// Fetch (header value normalisation) strip leading and trailing spaces and tabs, and carry no
/// CR, LF or NUL. Every signed header value must pass this.
pub fn survives_http(value: &str) -> bool {
    value.trim_matches(|c| matches!(c, ' ' | '\t' | '\r' | '\n')) == value
        && !value.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0))
}

/// The parts of a request that the signature covers.
pub struct SignedParts<'a> {
    pub method: &'a str,
    /// Path and query exactly as sent (`/internal/users?page=2`).
    pub path_and_query: &'a str,
    pub timestamp: i64,
    pub identity: Identity,
    pub body: &'a [u8],
    /// The client's network (see [`is_valid_client_network`]); `""` when unknown.
    pub client_network: &'a str,
    /// The client's agent (see [`is_valid_client_agent`]); `""` when unknown.
    pub client_agent: &'a str,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("missing or malformed signature headers")]
    Malformed,
    #[error("request timestamp outside the allowed window")]
    Stale,
    #[error("signature does not match")]
    Mismatch,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the request-signing secret must be at least {MIN_SECRET_BYTES} bytes")]
pub struct ShortSecret;

/// Holds the shared secrets (the first signs, every one verifies: a rotation lists the new one
/// first and the old one after it until every signer has the new one) and the version it signs;
/// `Debug` never shows a secret.
pub struct RequestSigner {
    secrets: Vec<Vec<u8>>,
    version: SignatureVersion,
}

impl std::fmt::Debug for RequestSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "RequestSigner({} secrets [redacted], {:?})",
            self.secrets.len(),
            self.version
        )
    }
}

impl RequestSigner {
    pub fn new(secret: &[u8]) -> Result<Self, ShortSecret> {
        Self::with_secrets(&[secret])
    }

    /// Several secrets, the first of which signs; at least one, each long enough.
    pub fn with_secrets(secrets: &[&[u8]]) -> Result<Self, ShortSecret> {
        if secrets.is_empty() || secrets.iter().any(|s| s.len() < MIN_SECRET_BYTES) {
            return Err(ShortSecret);
        }
        Ok(Self {
            secrets: secrets.iter().map(|s| s.to_vec()).collect(),
            version: SignatureVersion::default(),
        })
    }

    /// Signs `version`'s canonical form (verifying accepts every version of `ACCEPTED`).
    pub fn signing(mut self, version: SignatureVersion) -> Self {
        self.version = version;
        self
    }

    /// The version [`Self::sign`] signs, for the `x-edge-signature-version` header.
    pub fn version(&self) -> SignatureVersion {
        self.version
    }

    /// Lowercase hex HMAC for the `x-edge-signature` header.
    pub fn sign(&self, parts: &SignedParts<'_>) -> String {
        let mac = mac(&self.secrets[0], parts, self.version);
        crate::hex::encode(&mac.finalize().into_bytes())
    }

    /// Checks the skew first (cheap), then the MAC of the current version in constant time
    /// against every secret.
    pub fn verify(
        &self,
        parts: &SignedParts<'_>,
        signature_hex: &str,
        now: i64,
    ) -> Result<(), SignatureError> {
        self.verify_versions(parts, signature_hex, &[SignatureVersion::V3], now)
            .map(|_| ())
    }

    /// [`Self::verify`] for a signature of any of `versions`: the one the header names, or
    /// (no header) every accepted one. A v2 signature does not cover `parts.client_agent`: the
    /// caller must not trust the agent then (see [`SignatureVersion::signs_agent`]).
    pub fn verify_versions(
        &self,
        parts: &SignedParts<'_>,
        signature_hex: &str,
        versions: &[SignatureVersion],
        now: i64,
    ) -> Result<SignatureVersion, SignatureError> {
        if now.abs_diff(parts.timestamp) > MAX_SKEW_SECS.unsigned_abs() {
            return Err(SignatureError::Stale);
        }
        let signature = crate::hex::decode(signature_hex)
            .filter(|s| s.len() == 32)
            .ok_or(SignatureError::Malformed)?;
        for &version in versions {
            for secret in &self.secrets {
                if mac(secret, parts, version).verify_slice(&signature).is_ok() {
                    return Ok(version);
                }
            }
        }
        Err(SignatureError::Mismatch)
    }
}

fn mac(secret: &[u8], parts: &SignedParts<'_>, version: SignatureVersion) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC accepts any key length");
    // Newline-separated fields; none of them can contain a newline (method and path are HTTP
    // tokens, the network is checked by `is_valid_client_network` before use, the rest are
    // generated here), so the encoding is unambiguous. `v2` added the network and `v3` the
    // agent: signers and verifiers of different versions never agree, rather than silently
    // dropping a field.
    let common = format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        parts.method.to_ascii_uppercase(),
        parts.path_and_query,
        parts.timestamp,
        crate::hex::encode(&Sha256::digest(parts.body)),
        parts.identity.to_header(),
        parts.client_network,
    );
    let canonical = match version {
        SignatureVersion::V2 => format!("v2\n{common}"),
        SignatureVersion::V3 => format!("v3\n{common}\n{}", parts.client_agent),
    };
    mac.update(canonical.as_bytes());
    mac
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const NOW: i64 = 1_800_000_000;

    fn parts<'a>(body: &'a [u8], identity: Identity) -> SignedParts<'a> {
        SignedParts {
            method: "POST",
            path_and_query: "/internal/me?x=1",
            timestamp: NOW,
            identity,
            body,
            client_network: "203.0.113.7",
            client_agent: "Mozilla/5.0 (X11; Linux x86_64)",
        }
    }

    #[test]
    fn valid_signature_verifies() {
        let signer = RequestSigner::new(&[1; 32]).unwrap();
        let user = Identity::User {
            id: 7,
            token_version: 2,
            session: None,
        };
        let sig = signer.sign(&parts(b"{}", user));
        assert_eq!(sig.len(), 64);
        assert_eq!(
            signer.verify(&parts(b"{}", user), &sig, NOW + MAX_SKEW_SECS),
            Ok(())
        );
    }

    #[test]
    fn every_covered_part_matters() {
        let signer = RequestSigner::new(&[1; 32]).unwrap();
        let user = Identity::User {
            id: 7,
            token_version: 2,
            session: None,
        };
        let sig = signer.sign(&parts(b"{}", user));
        let check = |p: SignedParts<'_>| signer.verify(&p, &sig, NOW);
        assert_eq!(check(parts(b"{ }", user)), Err(SignatureError::Mismatch));
        assert_eq!(
            check(parts(
                b"{}",
                Identity::User {
                    id: 8,
                    token_version: 2,
                    session: None,
                }
            )),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            check(parts(
                b"{}",
                Identity::User {
                    id: 7,
                    token_version: 3,
                    session: None,
                }
            )),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            check(parts(b"{}", Identity::Anonymous)),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            check(SignedParts {
                method: "PATCH",
                ..parts(b"{}", user)
            }),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            check(SignedParts {
                path_and_query: "/internal/me",
                ..parts(b"{}", user)
            }),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            check(SignedParts {
                timestamp: NOW + 1,
                ..parts(b"{}", user)
            }),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            check(SignedParts {
                client_network: "203.0.113.8",
                ..parts(b"{}", user)
            }),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            check(SignedParts {
                client_agent: "curl/8.5.0",
                ..parts(b"{}", user)
            }),
            Err(SignatureError::Mismatch)
        );
        let session = Identity::User {
            id: 7,
            token_version: 2,
            session: SessionId::parse("0b9c6d2e-5f1a-4c3b-9d8e-7f6a5b4c3d2e"),
        };
        assert_eq!(check(parts(b"{}", session)), Err(SignatureError::Mismatch));
        let other = RequestSigner::new(&[2; 32]).unwrap();
        assert_eq!(
            other.verify(&parts(b"{}", user), &sig, NOW),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn stale_and_malformed() {
        let signer = RequestSigner::new(&[1; 32]).unwrap();
        let sig = signer.sign(&parts(b"", Identity::Anonymous));
        let p = parts(b"", Identity::Anonymous);
        assert_eq!(
            signer.verify(&p, &sig, NOW + MAX_SKEW_SECS + 1),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            signer.verify(&p, &sig, NOW - MAX_SKEW_SECS - 1),
            Err(SignatureError::Stale)
        );
        // Far-off timestamps are stale, not an overflow (`now - timestamp` would wrap).
        for timestamp in [i64::MIN, i64::MAX] {
            let far = SignedParts {
                timestamp,
                ..parts(b"", Identity::Anonymous)
            };
            assert_eq!(
                signer.verify(&far, &sig, NOW),
                Err(SignatureError::Stale),
                "{timestamp}"
            );
        }
        assert_eq!(signer.verify(&p, "zz", NOW), Err(SignatureError::Malformed));
        assert_eq!(
            signer.verify(&p, &sig[..62], NOW),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            signer.verify(&p, &format!("{}g", &sig[..63]), NOW),
            Err(SignatureError::Malformed)
        );
        assert!(RequestSigner::new(&[1; 31]).is_err());
        assert_eq!(
            format!("{signer:?}"),
            "RequestSigner(1 secrets [redacted], V3)"
        );
        assert!(RequestSigner::with_secrets(&[]).is_err());
        assert!(RequestSigner::with_secrets(&[&[1; 32], &[2; 31]]).is_err());
    }

    #[test]
    fn the_first_secret_signs_and_every_one_verifies() {
        let p = parts(b"{}", Identity::Anonymous);
        let old = RequestSigner::new(&[1; 32]).unwrap();
        let new = RequestSigner::new(&[2; 32]).unwrap();
        let rotating = RequestSigner::with_secrets(&[&[2; 32], &[1; 32]]).unwrap();
        assert_eq!(rotating.sign(&p), new.sign(&p));
        assert_eq!(rotating.verify(&p, &old.sign(&p), NOW), Ok(()));
        assert_eq!(rotating.verify(&p, &new.sign(&p), NOW), Ok(()));
        // Once the old secret is dropped, what it signed is refused.
        assert_eq!(
            new.verify(&p, &old.sign(&p), NOW),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn the_previous_version_verifies_and_a_version_is_only_its_own_form() {
        let mut p = parts(b"{}", Identity::Anonymous);
        p.client_agent = "curl/8";
        let v2 = RequestSigner::new(&[1; 32])
            .unwrap()
            .signing(SignatureVersion::V2);
        let v3 = RequestSigner::new(&[1; 32]).unwrap();
        assert_eq!(v2.version().as_str(), "2");
        let (sig2, sig3) = (v2.sign(&p), v3.sign(&p));
        assert_ne!(sig2, sig3);
        let all = SignatureVersion::ACCEPTED;
        assert_eq!(
            v3.verify_versions(&p, &sig2, &all, NOW),
            Ok(SignatureVersion::V2)
        );
        assert_eq!(
            v3.verify_versions(&p, &sig3, &all, NOW),
            Ok(SignatureVersion::V3)
        );
        // A header naming v3 does not let a v2 signature through, nor the other way round.
        assert_eq!(
            v3.verify_versions(&p, &sig2, &[SignatureVersion::V3], NOW),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            v3.verify_versions(&p, &sig3, &[SignatureVersion::V2], NOW),
            Err(SignatureError::Mismatch)
        );
        // v2 does not cover the agent; v3 does.
        let mut other_agent = p;
        other_agent.client_agent = "evil/1";
        assert!(v3.verify_versions(&other_agent, &sig2, &all, NOW).is_ok());
        assert!(v3.verify_versions(&other_agent, &sig3, &all, NOW).is_err());
        assert!(!SignatureVersion::V2.signs_agent() && SignatureVersion::V3.signs_agent());
        assert_eq!(SignatureVersion::parse("v2"), Some(SignatureVersion::V2));
        assert_eq!(SignatureVersion::parse("4"), None);
    }

    #[test]
    fn changing_only_the_client_network_breaks_the_signature() {
        let signer = RequestSigner::new(&[1; 32]).unwrap();
        let sig = signer.sign(&parts(b"{}", Identity::Anonymous));
        for network in ["", "203.0.113.70", "2001:db8::/64", "203.0.113.7/32"] {
            assert_eq!(
                signer.verify(
                    &SignedParts {
                        client_network: network,
                        ..parts(b"{}", Identity::Anonymous)
                    },
                    &sig,
                    NOW
                ),
                Err(SignatureError::Mismatch),
                "{network:?}"
            );
        }
        assert_eq!(
            signer.verify(&parts(b"{}", Identity::Anonymous), &sig, NOW),
            Ok(())
        );
    }

    #[test]
    fn client_agents_are_made_printable_and_short() {
        assert_eq!(client_agent("curl/8.5.0"), "curl/8.5.0");
        assert_eq!(client_agent("a\nb\tc\u{e9}"), "a?b?c?");
        let long = client_agent(&"\u{e9}x".repeat(MAX_CLIENT_AGENT_CHARS));
        assert_eq!(long.chars().count(), MAX_CLIENT_AGENT_CHARS);
        for agent in ["", "curl/8.5.0", long.as_str()] {
            assert!(is_valid_client_agent(agent), "{agent:?}");
        }
        for bad in ["a\nb", "\u{e9}", &"x".repeat(MAX_CLIENT_AGENT_CHARS + 1)] {
            assert!(!is_valid_client_agent(bad), "{bad:?}");
        }
    }

    /// What Fetch's `Headers` and httparse do to a header value: strip leading and trailing
    /// HTTP whitespace (spaces and tabs).
    fn normalised(value: &str) -> &str {
        value.trim_matches(|c| c == ' ' || c == '\t')
    }

    #[test]
    fn agents_cut_at_a_space_lose_the_space() {
        // The 256th character a space: the cut value must not end in it.
        let raw = format!("Mozilla/5.0 {} B", "A".repeat(243));
        assert_eq!(raw.chars().nth(MAX_CLIENT_AGENT_CHARS - 1), Some(' '));
        let agent = client_agent(&raw);
        assert_eq!(agent, format!("Mozilla/5.0 {}", "A".repeat(243)));
        assert!(is_valid_client_agent(&agent));
        assert_eq!(client_agent("  curl/8.5.0\t"), "curl/8.5.0?");
        assert_eq!(client_agent("   "), "");
        for bad in [" curl", "curl ", " "] {
            assert!(!is_valid_client_agent(bad), "{bad:?}");
            assert!(!survives_http(bad), "{bad:?}");
        }
    }

    #[test]
    fn session_ids_have_one_spelling() {
        let raw = "0b9c6d2e-5f1a-4c3b-9d8e-7f6a5b4c3d2e";
        let id = SessionId::parse(raw).unwrap();
        assert_eq!(id.to_string(), raw);
        assert_eq!(id.as_bytes()[0], 0x0b);
        for bad in [
            "",
            "0b9c6d2e5f1a4c3b9d8e7f6a5b4c3d2e",
            "0B9C6D2E-5F1A-4C3B-9D8E-7F6A5B4C3D2E",
            "0b9c6d2e-5f1a-4c3b-9d8e-7f6a5b4c3d2",
            "0b9c6d2e-5f1a-4c3b-9d8e-7f6a5b4c3d2e0",
            "0b9c6d2e_5f1a-4c3b-9d8e-7f6a5b4c3d2e",
            "gb9c6d2e-5f1a-4c3b-9d8e-7f6a5b4c3d2e",
            "{id}",
        ] {
            assert_eq!(SessionId::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn client_network_forms() {
        for good in [
            "",
            "203.0.113.7",
            "2001:db8:85a3::8a2e:370:7334",
            "2001:db8:1:2::/64",
            "10.0.0.0/8",
            &"f".repeat(MAX_CLIENT_NETWORK_CHARS),
        ] {
            assert!(is_valid_client_network(good), "{good:?}");
        }
        for bad in [
            "unknown",
            "203.0.113.7\nuser:1:0",
            "1.2.3.4 ",
            "::ffff:1.2.3.4%eth0",
            &"f".repeat(MAX_CLIENT_NETWORK_CHARS + 1),
        ] {
            assert!(!is_valid_client_network(bad), "{bad:?}");
        }
    }

    #[test]
    fn identity_header_forms() {
        assert_eq!(Identity::parse("anon"), Some(Identity::Anonymous));
        assert_eq!(
            Identity::parse("user:5:0"),
            Some(Identity::User {
                id: 5,
                token_version: 0,
                session: None,
            })
        );
        let session = SessionId::parse("0b9c6d2e-5f1a-4c3b-9d8e-7f6a5b4c3d2e").unwrap();
        assert_eq!(
            Identity::parse("user:5:0:0b9c6d2e-5f1a-4c3b-9d8e-7f6a5b4c3d2e"),
            Some(Identity::User {
                id: 5,
                token_version: 0,
                session: Some(session),
            })
        );
        for bad in [
            "",
            "user",
            "user:",
            "user:5",
            "user:-5:0",
            "user:05:0",
            "user:5:0:1",
            "user:5:0:",
            "user:5:0:0B9C6D2E-5F1A-4C3B-9D8E-7F6A5B4C3D2E",
            "user:5:0:0b9c6d2e5f1a4c3b9d8e7f6a5b4c3d2e",
            "user:5:0:0b9c6d2e-5f1a-4c3b-9d8e-7f6a5b4c3d2e:1",
            "user:a:0",
            "USER:5:0",
            "user:99999999999999999999:0",
        ] {
            assert_eq!(Identity::parse(bad), None, "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn identity_round_trips(id in 0i64..i64::MAX, ver in 0i32..i32::MAX,
                                session in proptest::option::of(any::<[u8; 16]>())) {
            let session = session.map(SessionId::from_bytes);
            let identity = Identity::User { id, token_version: ver, session };
            prop_assert_eq!(Identity::parse(&identity.to_header()), Some(identity));
        }

        #[test]
        fn session_ids_round_trip(bytes in any::<[u8; 16]>()) {
            let id = SessionId::from_bytes(bytes);
            prop_assert_eq!(SessionId::parse(&id.to_string()), Some(id));
        }

        #[test]
        fn identity_parse_never_panics(s in "\\PC{0,40}") {
            if let Some(identity) = Identity::parse(&s) {
                prop_assert_eq!(identity.to_header(), s);
            }
        }

        /// Whatever a client sends as its agent (spaces and tabs at either end, control and
        /// non-ASCII characters, 0 to 1,000 characters), what the edge signs reaches the origin
        /// unchanged by HTTP's normalisation, and the origin accepts it.
        #[test]
        fn signed_agents_survive_http_normalisation(raw in "[ \t]{0,3}[\\PC\t\u{80}-\u{ff} ]{0,1000}[ \t]{0,3}") {
            let agent = client_agent(&raw);
            prop_assert!(survives_http(&agent), "{:?}", agent);
            prop_assert!(is_valid_client_agent(&agent), "{:?}", agent);
            prop_assert_eq!(normalised(&agent), agent.as_str());
        }

        /// The other signed header values: the identity, the network (only what
        /// `is_valid_client_network` lets through), the timestamp and the signature.
        #[test]
        fn other_signed_values_survive_http_normalisation(
            id in 0i64..i64::MAX, ver in 0i32..i32::MAX,
            session in proptest::option::of(any::<[u8; 16]>()),
            network in "[ \t]?[0-9a-f.:/ ]{0,70}[ \t]?", timestamp in any::<i64>()) {
            let identity = Identity::User { id, token_version: ver, session: session.map(SessionId::from_bytes) };
            for value in [identity.to_header(), timestamp.to_string()] {
                prop_assert!(survives_http(&value), "{:?}", value);
            }
            if is_valid_client_network(&network) {
                prop_assert!(survives_http(&network), "{:?}", network);
            }
            let signer = RequestSigner::new(&[9; 40]).unwrap();
            let p = SignedParts { method: "GET", path_and_query: "/internal/me", timestamp: NOW, identity, body: b"", client_network: "", client_agent: "" };
            prop_assert!(survives_http(&signer.sign(&p)));
        }

        #[test]
        fn sign_verify_round_trip(body in proptest::collection::vec(any::<u8>(), 0..256),
                                  path in "/[a-z/?=&0-9]{0,40}", skew in -MAX_SKEW_SECS..=MAX_SKEW_SECS) {
            let signer = RequestSigner::new(&[9; 40]).unwrap();
            let p = SignedParts { method: "GET", path_and_query: &path, timestamp: NOW, identity: Identity::Anonymous, body: &body, client_network: "", client_agent: "" };
            let sig = signer.sign(&p);
            prop_assert_eq!(signer.verify(&p, &sig, NOW + skew), Ok(()));
        }
    }
}
