//! Signing keys, verification key sets and their JWKS form.
//!
//! The algorithm is chosen by configuration and pinned: a verifier built for EdDSA never
//! accepts an HS256 token (algorithm confusion, RFC 8725 §2.1) and looks keys up by `kid` only
//! in its own set (never from `jku`, `x5u` or an embedded `jwk`).

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use ed25519_dalek::SigningKey as DalekSigningKey;
use jsonwebtoken::{DecodingKey, EncodingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Minimum HS256 secret length (RFC 7518 §3.2: a key at least as long as the hash output).
pub const MIN_HMAC_SECRET_BYTES: usize = 32;

/// The JWT algorithms this service supports. Everything else is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Algorithm {
    /// Ed25519 signatures; only the public key is needed to verify (default).
    #[default]
    EdDSA,
    /// HMAC-SHA256 with a shared secret of at least 32 bytes.
    HS256,
}

impl Algorithm {
    pub(crate) fn to_jwt(self) -> jsonwebtoken::Algorithm {
        match self {
            Self::EdDSA => jsonwebtoken::Algorithm::EdDSA,
            Self::HS256 => jsonwebtoken::Algorithm::HS256,
        }
    }
}

impl std::str::FromStr for Algorithm {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "EdDSA" => Ok(Self::EdDSA),
            "HS256" => Ok(Self::HS256),
            other => Err(KeyError::UnsupportedAlgorithm(other.to_owned())),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("unsupported JWT algorithm {0:?} (expected EdDSA or HS256)")]
    UnsupportedAlgorithm(String),
    #[error("not an Ed25519 private key in PKCS#8 PEM form (as `origin keygen` writes)")]
    BadPrivateKey,
    #[error("the HS256 secret must be at least {MIN_HMAC_SECRET_BYTES} bytes")]
    ShortSecret,
    #[error("not a JWKS document with Ed25519 keys: {0}")]
    BadJwks(String),
    #[error("the key set is empty")]
    Empty,
}

/// A public key as a JSON Web Key (RFC 8037 `OKP`/`Ed25519`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    pub kty: String,
    pub crv: String,
    pub x: String,
    pub kid: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    #[serde(default, rename = "use", skip_serializing_if = "Option::is_none")]
    pub use_: Option<String>,
}

impl Jwk {
    /// The JWK of an Ed25519 public key, with its RFC 7638 thumbprint as `kid`.
    pub fn ed25519(public_key: &[u8; 32]) -> Self {
        let x = URL_SAFE_NO_PAD.encode(public_key);
        Self {
            kid: thumbprint(&x),
            kty: "OKP".into(),
            crv: "Ed25519".into(),
            x,
            alg: Some("EdDSA".into()),
            use_: Some("sig".into()),
        }
    }
}

/// RFC 7638 thumbprint of an Ed25519 JWK: SHA-256 over the required members in
/// lexicographic order, base64url.
fn thumbprint(x: &str) -> String {
    let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

/// `{"keys": [...]}`, the document served at `/.well-known/jwks.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

/// PKCS#8 DER prefix of an Ed25519 private key (RFC 8410 §7); the 32-byte seed follows.
pub(crate) const PKCS8_ED25519_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// An Ed25519 private key (its 32-byte seed).
pub struct Ed25519PrivateKey {
    seed: [u8; 32],
}

impl Ed25519PrivateKey {
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Self { seed }
    }

    /// Parses `-----BEGIN PRIVATE KEY-----` PKCS#8 PEM; newlines may be written as `\\n`
    /// (one-line env files).
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        let body: String = pem
            .replace("\\n", "\n")
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with("-----"))
            .collect();
        let der = STANDARD.decode(body).map_err(|_| KeyError::BadPrivateKey)?;
        if der.len() != 48 || der[..16] != PKCS8_ED25519_PREFIX {
            return Err(KeyError::BadPrivateKey);
        }
        let mut seed = [0u8; 32];
        seed.copy_from_slice(&der[16..]);
        Ok(Self { seed })
    }

    fn der(&self) -> Vec<u8> {
        let mut der = PKCS8_ED25519_PREFIX.to_vec();
        der.extend_from_slice(&self.seed);
        der
    }

    pub fn to_pem(&self) -> String {
        let b64 = STANDARD.encode(self.der());
        format!("-----BEGIN PRIVATE KEY-----\n{b64}\n-----END PRIVATE KEY-----\n")
    }

    pub fn public_key(&self) -> [u8; 32] {
        DalekSigningKey::from_bytes(&self.seed)
            .verifying_key()
            .to_bytes()
    }

    pub fn public_jwk(&self) -> Jwk {
        Jwk::ed25519(&self.public_key())
    }
}

impl std::fmt::Debug for Ed25519PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Ed25519PrivateKey([redacted])")
    }
}

/// The key the origin signs access and refresh tokens with.
pub struct SigningKey {
    pub(crate) algorithm: Algorithm,
    pub(crate) kid: Option<String>,
    pub(crate) key: EncodingKey,
}

impl SigningKey {
    pub fn ed25519(private: &Ed25519PrivateKey) -> Self {
        Self {
            algorithm: Algorithm::EdDSA,
            kid: Some(private.public_jwk().kid),
            key: EncodingKey::from_ed_der(&private.der()),
        }
    }

    pub fn hs256(secret: &[u8]) -> Result<Self, KeyError> {
        if secret.len() < MIN_HMAC_SECRET_BYTES {
            return Err(KeyError::ShortSecret);
        }
        Ok(Self {
            algorithm: Algorithm::HS256,
            kid: None,
            key: EncodingKey::from_secret(secret),
        })
    }
}

/// The keys a verifier accepts, all of one pinned algorithm.
pub struct VerifyingKeys {
    pub(crate) algorithm: Algorithm,
    pub(crate) keys: Vec<(Option<String>, DecodingKey)>,
    jwks: Jwks,
}

impl VerifyingKeys {
    /// Ed25519 keys from a JWKS document (several during a key rotation).
    pub fn from_jwks(jwks: &Jwks) -> Result<Self, KeyError> {
        if jwks.keys.is_empty() {
            return Err(KeyError::Empty);
        }
        let mut keys = Vec::with_capacity(jwks.keys.len());
        for jwk in &jwks.keys {
            if jwk.kty != "OKP" || jwk.crv != "Ed25519" {
                return Err(KeyError::BadJwks(format!(
                    "key {:?} is not OKP/Ed25519",
                    jwk.kid
                )));
            }
            if jwk.alg.as_deref().is_some_and(|a| a != "EdDSA") {
                return Err(KeyError::BadJwks(format!(
                    "key {:?} is not for EdDSA",
                    jwk.kid
                )));
            }
            let raw = URL_SAFE_NO_PAD
                .decode(&jwk.x)
                .ok()
                .filter(|x| x.len() == 32)
                .ok_or_else(|| KeyError::BadJwks(format!("key {:?} has a bad `x`", jwk.kid)))?;
            keys.push((Some(jwk.kid.clone()), DecodingKey::from_ed_der(&raw)));
        }
        Ok(Self {
            algorithm: Algorithm::EdDSA,
            keys,
            jwks: jwks.clone(),
        })
    }

    pub fn from_jwks_json(json: &str) -> Result<Self, KeyError> {
        let jwks: Jwks =
            serde_json::from_str(json).map_err(|e| KeyError::BadJwks(e.to_string()))?;
        Self::from_jwks(&jwks)
    }

    pub fn hs256(secret: &[u8]) -> Result<Self, KeyError> {
        Self::hs256_all(&[secret])
    }

    /// HS256 during a rotation: a token (SimpleJWT's carry no `kid`) is valid if any of the
    /// secrets signed it.
    pub fn hs256_all(secrets: &[&[u8]]) -> Result<Self, KeyError> {
        if secrets.is_empty() {
            return Err(KeyError::Empty);
        }
        if secrets.iter().any(|s| s.len() < MIN_HMAC_SECRET_BYTES) {
            return Err(KeyError::ShortSecret);
        }
        Ok(Self {
            algorithm: Algorithm::HS256,
            keys: secrets
                .iter()
                .map(|secret| (None, DecodingKey::from_secret(secret)))
                .collect(),
            // A symmetric secret is never published.
            jwks: Jwks::default(),
        })
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The public JWKS (empty for HS256).
    pub fn jwks(&self) -> &Jwks {
        &self.jwks
    }

    /// A token's `kid` is looked up in our set only. Without a `kid`, a set of exactly one key
    /// is used (a single Ed25519 key), or for HS256 the first secret, the others being tried by
    /// [`VerifyingKeys::check`]; with several Ed25519 keys a `kid` is required.
    pub(crate) fn position(&self, kid: Option<&str>) -> Option<usize> {
        match kid {
            Some(kid) => self
                .keys
                .iter()
                .position(|(k, _)| k.as_deref() == Some(kid)),
            None if self.keys.len() == 1 || self.algorithm == Algorithm::HS256 => Some(0),
            None => None,
        }
    }

    /// The number of keys (indexes of [`Self::key_material`]).
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Never true: a set is made of at least one key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The raw bytes of key `index` (an Ed25519 public key, or the HMAC secret), for a runtime
    /// that imports them into its own cryptography once (the Worker's WebCrypto).
    pub fn key_material(&self, index: usize) -> Option<&[u8]> {
        self.keys
            .get(index)
            .and_then(|(_, key)| key.try_get_as_bytes().ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_round_trip_and_rfc8032_public_key() {
        // RFC 8032 §7.1 test vector 1.
        let seed: [u8; 32] =
            hex32("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
        let key = Ed25519PrivateKey::from_seed(seed);
        assert_eq!(
            key.public_key(),
            hex32("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
        );
        let again = Ed25519PrivateKey::from_pem(&key.to_pem()).unwrap();
        assert_eq!(again.seed, seed);
        let one_line = key.to_pem().replace('\n', "\\n");
        assert_eq!(Ed25519PrivateKey::from_pem(&one_line).unwrap().seed, seed);
    }

    #[test]
    fn rejects_other_pems() {
        assert_eq!(
            Ed25519PrivateKey::from_pem("nonsense").unwrap_err(),
            KeyError::BadPrivateKey
        );
        // A P-256 key's PKCS#8 prefix differs.
        let not_ed = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----",
            STANDARD.encode([0x30u8; 48])
        );
        assert_eq!(
            Ed25519PrivateKey::from_pem(&not_ed).unwrap_err(),
            KeyError::BadPrivateKey
        );
    }

    #[test]
    fn jwk_thumbprint_matches_rfc8037_example() {
        // RFC 8037 Appendix A.3: the thumbprint of the A.2 public key.
        let x = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
        assert_eq!(thumbprint(x), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
    }

    #[test]
    fn jwks_round_trip_and_validation() {
        let key = Ed25519PrivateKey::from_seed([7; 32]);
        let jwks = Jwks {
            keys: vec![key.public_jwk()],
        };
        let json = serde_json::to_string(&jwks).unwrap();
        assert!(json.contains(r#""use":"sig""#) && json.contains(r#""alg":"EdDSA""#));
        let set = VerifyingKeys::from_jwks_json(&json).unwrap();
        assert_eq!(set.algorithm(), Algorithm::EdDSA);
        assert_eq!(set.position(Some(&key.public_jwk().kid)), Some(0));
        assert_eq!(set.position(Some("other")), None);
        assert_eq!(set.position(None), Some(0));
        assert_eq!(set.key_material(0), Some(&key.public_key()[..]));
        assert_eq!(set.key_material(1), None);

        assert_eq!(
            VerifyingKeys::from_jwks_json(r#"{"keys":[]}"#).err(),
            Some(KeyError::Empty)
        );
        let mut bad = jwks.clone();
        bad.keys[0].x = "AAAA".into();
        assert!(matches!(
            VerifyingKeys::from_jwks(&bad),
            Err(KeyError::BadJwks(_))
        ));
        let mut rsa = jwks;
        rsa.keys[0].kty = "RSA".into();
        assert!(matches!(
            VerifyingKeys::from_jwks(&rsa),
            Err(KeyError::BadJwks(_))
        ));
    }

    #[test]
    fn hmac_secret_length_enforced() {
        assert_eq!(SigningKey::hs256(&[1; 31]).err().map(|_| ()), Some(()));
        assert!(SigningKey::hs256(&[1; 32]).is_ok());
        assert!(VerifyingKeys::hs256(&[1; 31]).is_err());
        assert!(VerifyingKeys::hs256(&[1; 32])
            .unwrap()
            .jwks()
            .keys
            .is_empty());
    }

    #[test]
    fn algorithm_names() {
        assert_eq!("EdDSA".parse::<Algorithm>(), Ok(Algorithm::EdDSA));
        assert_eq!("HS256".parse::<Algorithm>(), Ok(Algorithm::HS256));
        assert!("none".parse::<Algorithm>().is_err());
        assert!("RS256".parse::<Algorithm>().is_err());
    }

    fn hex32(s: &str) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (i, b) in out.iter_mut().enumerate() {
            *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap();
        }
        out
    }
}
