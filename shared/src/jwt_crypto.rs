//! The cryptography behind `jsonwebtoken`: EdDSA (Ed25519) and HS256, nothing else.
//!
//! jsonwebtoken's own `rust_crypto` provider dispatches every algorithm through one table, so
//! RSA, P-256 and P-384 code stayed in the Worker's Wasm although no key of ours could ever
//! use them (≈ 55 KB gzip). This provider only knows the two algorithms we accept; any other
//! algorithm is an `InvalidAlgorithm` error (the verifier pins the algorithm before it gets
//! here anyway). Installed once per process by [`install`], which every sign and verify path
//! of this crate calls first.

use std::sync::Once;

use ed25519_dalek::{Signature, SigningKey as DalekSigningKey, VerifyingKey};
use hmac::{Hmac, Mac};
use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier, KeyUtils};
use jsonwebtoken::errors::{Error, ErrorKind};
use jsonwebtoken::signature::{self, Signer, Verifier};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, EncodingKey};
use sha2::Sha256;

use crate::keys::PKCS8_ED25519_PREFIX;

type HmacSha256 = Hmac<Sha256>;

static PROVIDER: CryptoProvider = CryptoProvider {
    signer_factory: new_signer,
    verifier_factory: new_verifier,
    // JWK helpers (thumbprints, RSA/EC components) are not used: our JWKS code is in `keys`.
    key_utils: KeyUtils::new_unimplemented(),
};

/// Makes [`PROVIDER`] jsonwebtoken's process-wide default (idempotent). If something else in
/// the process installed a provider first, that one stays; the algorithm is pinned by the
/// callers either way.
pub(crate) fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = PROVIDER.install_default();
    });
}

/// Whether `signature` over `message` is valid for `key` under the pinned `algorithm`.
pub(crate) fn verify(
    algorithm: crate::keys::Algorithm,
    key: &DecodingKey,
    message: &[u8],
    signature: &[u8],
) -> bool {
    new_verifier(&algorithm.to_jwt(), key)
        .is_ok_and(|verifier| verifier.verify(message, &signature.to_vec()).is_ok())
}

fn new_signer(algorithm: &Algorithm, key: &EncodingKey) -> Result<Box<dyn JwtSigner>, Error> {
    match (algorithm, key.family()) {
        (Algorithm::HS256, AlgorithmFamily::Hmac) => {
            let mac = HmacSha256::new_from_slice(key.as_bytes())
                .map_err(|_| Error::from(ErrorKind::InvalidKeyFormat))?;
            Ok(Box::new(Hs256(mac)))
        }
        (Algorithm::EdDSA, AlgorithmFamily::Ed) => {
            // `keys::SigningKey::ed25519` stores exactly our PKCS#8 prefix + the 32-byte seed.
            let seed = key
                .as_bytes()
                .strip_prefix(PKCS8_ED25519_PREFIX.as_slice())
                .and_then(|seed| <[u8; 32]>::try_from(seed).ok())
                .ok_or_else(|| Error::from(ErrorKind::InvalidEddsaKey))?;
            Ok(Box::new(EdSigner(DalekSigningKey::from_bytes(&seed))))
        }
        (Algorithm::HS256 | Algorithm::EdDSA, _) => Err(ErrorKind::InvalidKeyFormat.into()),
        _ => Err(ErrorKind::InvalidAlgorithm.into()),
    }
}

fn new_verifier(algorithm: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>, Error> {
    match (algorithm, key.family()) {
        (Algorithm::HS256, AlgorithmFamily::Hmac) => {
            let mac = HmacSha256::new_from_slice(key.try_get_as_bytes()?)
                .map_err(|_| Error::from(ErrorKind::InvalidKeyFormat))?;
            Ok(Box::new(Hs256(mac)))
        }
        (Algorithm::EdDSA, AlgorithmFamily::Ed) => {
            let raw = <&[u8; 32]>::try_from(key.try_get_as_bytes()?)
                .map_err(|_| Error::from(ErrorKind::InvalidEddsaKey))?;
            let key = VerifyingKey::from_bytes(raw)
                .map_err(|_| Error::from(ErrorKind::InvalidEddsaKey))?;
            Ok(Box::new(EdVerifier(key)))
        }
        (Algorithm::HS256 | Algorithm::EdDSA, _) => Err(ErrorKind::InvalidKeyFormat.into()),
        _ => Err(ErrorKind::InvalidAlgorithm.into()),
    }
}

struct Hs256(HmacSha256);

impl Signer<Vec<u8>> for Hs256 {
    fn try_sign(&self, msg: &[u8]) -> Result<Vec<u8>, signature::Error> {
        let mut mac = self.0.clone();
        mac.update(msg);
        Ok(mac.finalize().into_bytes().to_vec())
    }
}

impl Verifier<Vec<u8>> for Hs256 {
    /// Constant-time comparison (`verify_slice`).
    fn verify(&self, msg: &[u8], signature: &Vec<u8>) -> Result<(), signature::Error> {
        let mut mac = self.0.clone();
        mac.update(msg);
        mac.verify_slice(signature)
            .map_err(|_| signature::Error::new())
    }
}

impl JwtSigner for Hs256 {
    fn algorithm(&self) -> Algorithm {
        Algorithm::HS256
    }
}

impl JwtVerifier for Hs256 {
    fn algorithm(&self) -> Algorithm {
        Algorithm::HS256
    }
}

struct EdSigner(DalekSigningKey);

impl Signer<Vec<u8>> for EdSigner {
    fn try_sign(&self, msg: &[u8]) -> Result<Vec<u8>, signature::Error> {
        Ok(self.0.sign(msg).to_bytes().to_vec())
    }
}

impl JwtSigner for EdSigner {
    fn algorithm(&self) -> Algorithm {
        Algorithm::EdDSA
    }
}

struct EdVerifier(VerifyingKey);

impl Verifier<Vec<u8>> for EdVerifier {
    /// Strict verification: refuses non-canonical and small-order encodings (RFC 8032 §5.1.7
    /// plus the malleability checks), which `verify` alone would accept.
    fn verify(&self, msg: &[u8], signature: &Vec<u8>) -> Result<(), signature::Error> {
        let signature = Signature::from_slice(signature)?;
        self.0.verify_strict(msg, &signature)
    }
}

impl JwtVerifier for EdVerifier {
    fn algorithm(&self) -> Algorithm {
        Algorithm::EdDSA
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_algorithms_are_refused_by_the_provider() {
        install();
        let secret = EncodingKey::from_secret(&[7u8; 32]);
        for alg in [
            Algorithm::HS384,
            Algorithm::HS512,
            Algorithm::RS256,
            Algorithm::ES256,
            Algorithm::PS256,
        ] {
            let signed = jsonwebtoken::crypto::sign(b"x.y", &secret, alg);
            assert!(
                matches!(
                    signed.as_ref().map_err(|e| e.kind()),
                    Err(ErrorKind::InvalidAlgorithm)
                ),
                "{alg:?}: {signed:?}"
            );
        }
        // A key of the wrong family for the algorithm is refused too.
        let hs = DecodingKey::from_secret(&[7u8; 32]);
        let verified = jsonwebtoken::crypto::verify("AAAA", b"x.y", &hs, Algorithm::EdDSA);
        assert!(verified.is_err());
    }

    #[test]
    fn hs256_round_trip_and_tamper() {
        install();
        let enc = EncodingKey::from_secret(&[9u8; 32]);
        let dec = DecodingKey::from_secret(&[9u8; 32]);
        let sig = jsonwebtoken::crypto::sign(b"head.body", &enc, Algorithm::HS256).unwrap();
        assert!(jsonwebtoken::crypto::verify(&sig, b"head.body", &dec, Algorithm::HS256).unwrap());
        assert!(!jsonwebtoken::crypto::verify(&sig, b"head.bodz", &dec, Algorithm::HS256).unwrap());
    }
}
