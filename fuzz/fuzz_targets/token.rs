//! Any string as an access, refresh, session or reset token: an error, never a panic, and
//! never accepted (no key here ever signed anything).
#![no_main]

use libfuzzer_sys::fuzz_target;
use shared::keys::{Ed25519PrivateKey, Jwks, VerifyingKeys};
use shared::token::{Audience, ResetTokens, TokenVerifier};

fn audience() -> Audience {
    Audience {
        issuer: "auth-api".into(),
        audience: "auth-api".into(),
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    let jwks = Jwks {
        keys: vec![Ed25519PrivateKey::from_seed([1; 32]).public_jwk()],
    };
    let eddsa = TokenVerifier::new(VerifyingKeys::from_jwks(&jwks).unwrap(), audience());
    let hs256 = TokenVerifier::new(
        VerifyingKeys::hs256(b"fuzz-secret-0123456789abcdef0123456789").unwrap(),
        audience(),
    );
    let now = 1_800_000_000;
    for verifier in [&eddsa, &hs256] {
        assert!(verifier.access(token, now).is_err());
        assert!(verifier.refresh(token, now).is_err());
        assert!(verifier.session(token, now).is_err());
    }
    let resets = ResetTokens::new(b"fuzz-reset-secret-0123456789abcdef0123", audience()).unwrap();
    assert!(resets.verify(token, now).is_err());
});
