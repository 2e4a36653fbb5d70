//! Djoser's account activation link, `{uid}/{token}`: `uid` is the account id as Django encodes
//! it (`urlsafe_base64_encode(force_bytes(pk))`: the decimal id, base64url without padding) and
//! `token` is `{expiry}-{mac}`, an HMAC-SHA256 over the account id, its email and the expiry with
//! a key derived from the origin's `RESET_TOKEN_SECRET`. A token is only ever checked against an
//! inactive account, so activating spends every token of the account at once; each expires
//! after [`ACTIVATION_TOKEN_TTL_SECS`].
//!
//! The same email carries a 6-digit code (`otp`'s rules: hashed, 5 attempts, 10 minutes), whose
//! hash is keyed by [`ActivationKeys::code_secret`].

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// How long an activation link works: Django's `PASSWORD_RESET_TIMEOUT` default, 3 days.
pub const ACTIVATION_TOKEN_TTL_SECS: i64 = 3 * 86_400;
/// Hex characters of the MAC kept in a token (128 bits).
const MAC_HEX_CHARS: usize = 32;

/// The account id in a link, as Django encodes it.
pub fn encode_uid(id: i64) -> String {
    URL_SAFE_NO_PAD.encode(id.to_string())
}

/// The account id of a link's `uid`: only the canonical encoding of a positive decimal id.
pub fn decode_uid(uid: &str) -> Option<i64> {
    let bytes = URL_SAFE_NO_PAD.decode(uid).ok()?;
    let text = std::str::from_utf8(&bytes).ok()?;
    let id: i64 = text.parse().ok().filter(|id| *id > 0)?;
    (encode_uid(id) == uid).then_some(id)
}

/// The keys of activation links and codes, derived from one secret, or from each value of a
/// rotation's list: the first makes links and codes, every one checks them.
pub struct ActivationKeys {
    token_keys: Vec<[u8; 32]>,
    code_keys: Vec<[u8; 32]>,
}

impl std::fmt::Debug for ActivationKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ActivationKeys([redacted])")
    }
}

fn derive(secret: &[u8], label: &str) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC accepts any key length");
    mac.update(label.as_bytes());
    mac.finalize().into_bytes().into()
}

impl ActivationKeys {
    pub fn new(secret: &[u8]) -> Self {
        Self::rotating(&[secret])
    }

    /// `secrets`: the current secret first (never empty: the settings refuse an empty list).
    pub fn rotating(secrets: &[&[u8]]) -> Self {
        let derive_all =
            |label: &str| -> Vec<[u8; 32]> { secrets.iter().map(|s| derive(s, label)).collect() };
        Self {
            token_keys: derive_all("auth-api activation token v1"),
            code_keys: derive_all("auth-api activation code v1"),
        }
    }

    /// The key of `otp::hash` for new activation codes.
    pub fn code_secret(&self) -> &[u8] {
        &self.code_keys[0]
    }

    /// Every key a stored code may have been hashed with (`otp::matches_any`).
    pub fn code_secrets(&self) -> &[[u8; 32]] {
        &self.code_keys
    }

    fn mac(key: &[u8; 32], id: i64, email_key: &str, expires: i64) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts any key length");
        mac.update(format!("activation\n{id}\n{email_key}\n{expires}").as_bytes());
        let mut hex = crate::hex::encode(&mac.finalize().into_bytes());
        hex.truncate(MAC_HEX_CHARS);
        hex
    }

    /// A token for the account `id` with the email (lookup key) `email_key`, made at `now`.
    pub fn token(&self, id: i64, email_key: &str, now: i64) -> String {
        let expires = now + ACTIVATION_TOKEN_TTL_SECS;
        format!(
            "{expires}-{}",
            Self::mac(&self.token_keys[0], id, email_key, expires)
        )
    }

    /// Whether `token` was made for this account and has not expired at `now`.
    pub fn check(&self, id: i64, email_key: &str, token: &str, now: i64) -> bool {
        let Some((expires, mac)) = token.split_once('-') else {
            return false;
        };
        let Ok(expires) = expires.parse::<i64>() else {
            return false;
        };
        if expires < now || mac.len() != MAC_HEX_CHARS {
            return false;
        }
        self.token_keys.iter().any(|key| {
            let expected = Self::mac(key, id, email_key, expires);
            bool::from(expected.as_bytes().ct_eq(mac.as_bytes()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const NOW: i64 = 1_800_000_000;

    #[test]
    fn uids_are_djangos() {
        // Django: urlsafe_base64_encode(force_bytes(42)) == "NDI".
        assert_eq!(encode_uid(42), "NDI");
        assert_eq!(decode_uid("NDI"), Some(42));
        for bad in ["", "NDI=", "MDQy", "LTE", "MA", "!!", "YWJj"] {
            assert_eq!(decode_uid(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_token_works_for_its_account_until_it_expires() {
        let keys = ActivationKeys::new(&[7; 32]);
        let token = keys.token(42, "ada@example.com", NOW);
        assert!(keys.check(42, "ada@example.com", &token, NOW));
        assert!(keys.check(
            42,
            "ada@example.com",
            &token,
            NOW + ACTIVATION_TOKEN_TTL_SECS
        ));
        assert!(!keys.check(
            42,
            "ada@example.com",
            &token,
            NOW + ACTIVATION_TOKEN_TTL_SECS + 1
        ));
        assert!(!keys.check(43, "ada@example.com", &token, NOW));
        assert!(!keys.check(42, "bob@example.com", &token, NOW));
        assert!(!ActivationKeys::new(&[8; 32]).check(42, "ada@example.com", &token, NOW));
        // A later expiry with the same MAC, a cut MAC, or junk: refused.
        let (expires, mac) = token.split_once('-').unwrap();
        let later = format!("{}-{mac}", expires.parse::<i64>().unwrap() + 1);
        assert!(!keys.check(42, "ada@example.com", &later, NOW));
        let cut = format!("{expires}-{}", &mac[..31]);
        assert!(!keys.check(42, "ada@example.com", &cut, NOW));
        for junk in ["", "-", "x-y", "1-", &token.replace('-', "")] {
            assert!(!keys.check(42, "ada@example.com", junk, NOW), "{junk:?}");
        }
        assert_ne!(keys.code_secret(), &[7; 32][..]);
        assert_eq!(format!("{keys:?}"), "ActivationKeys([redacted])");
    }

    #[test]
    fn links_made_before_a_secret_rotation_still_work() {
        let (old, new) = ([7; 32], [8; 32]);
        let token = ActivationKeys::new(&old).token(42, "ada@example.com", NOW);
        let rotating = ActivationKeys::rotating(&[&new, &old]);
        assert!(rotating.check(42, "ada@example.com", &token, NOW));
        assert_eq!(
            rotating.code_secret(),
            ActivationKeys::new(&new).code_secret()
        );
        assert_eq!(rotating.code_secrets().len(), 2);
        let fresh = rotating.token(42, "ada@example.com", NOW);
        assert!(ActivationKeys::new(&new).check(42, "ada@example.com", &fresh, NOW));
        assert!(!ActivationKeys::new(&new).check(42, "ada@example.com", &token, NOW));
    }

    proptest! {
        #[test]
        fn uids_round_trip(id in 1i64..i64::MAX) {
            prop_assert_eq!(decode_uid(&encode_uid(id)), Some(id));
        }

        #[test]
        fn checking_never_panics(token in "\\PC{0,80}") {
            let keys = ActivationKeys::new(&[7; 32]);
            prop_assert!(!keys.check(42, "ada@example.com", &token, NOW));
        }
    }
}
