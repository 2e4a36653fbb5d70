//! One-time reset codes: six digits from a CSPRNG without modulo bias, stored only as a keyed
//! hash bound to the email, and compared in constant time.

use hmac::{Hmac, Mac};
use rand_core::RngCore;
use sha2::Sha256;

pub const OTP_DIGITS: usize = 6;
/// How long a code is valid, in seconds (the email says "10 minutes").
pub const OTP_TTL_SECS: i64 = 600;
/// Wrong guesses after which a code is burned.
pub const OTP_MAX_ATTEMPTS: u32 = 5;

const CODES: u32 = 1_000_000;
/// The largest multiple of 10^6 that fits in a u32: draws at or above it are rejected, so
/// every code is equally likely.
const ACCEPT_BELOW: u32 = u32::MAX - (u32::MAX % CODES);

/// A six-digit code. Its `Debug` hides the digits so it cannot reach a log by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct OtpCode(String);

impl OtpCode {
    pub fn generate<R: RngCore + ?Sized>(rng: &mut R) -> Self {
        loop {
            let draw = rng.next_u32();
            if draw < ACCEPT_BELOW {
                return Self(format!("{:06}", draw % CODES));
            }
        }
    }

    /// Exactly six ASCII digits (what a user types, trimmed).
    pub fn parse(raw: &str) -> Option<Self> {
        let raw = raw.trim();
        (raw.len() == OTP_DIGITS && raw.bytes().all(|b| b.is_ascii_digit()))
            .then(|| Self(raw.to_owned()))
    }

    /// The digits, for the email that carries them and nothing else.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for OtpCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OtpCode(******)")
    }
}

/// HMAC-SHA256(secret, email_key ‖ 0x00 ‖ code). Binding the email means a hash copied to
/// another account's record is useless; the key means a leaked store cannot be brute-forced
/// over the 10^6 codes without the secret.
pub fn hash(secret: &[u8], email_key: &str, code: &OtpCode) -> [u8; 32] {
    mac(secret, email_key, code).finalize().into_bytes().into()
}

/// Constant-time comparison of a submitted code against the stored hash.
pub fn matches(secret: &[u8], email_key: &str, code: &OtpCode, stored: &[u8]) -> bool {
    mac(secret, email_key, code).verify_slice(stored).is_ok()
}

fn mac(secret: &[u8], email_key: &str, code: &OtpCode) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC accepts any key length");
    mac.update(email_key.as_bytes());
    mac.update(&[0]);
    mac.update(code.0.as_bytes());
    mac
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand_core::OsRng;

    /// Replays fixed draws, to drive the rejection branch.
    struct Fixed(Vec<u32>);
    impl rand_core::RngCore for Fixed {
        fn next_u32(&mut self) -> u32 {
            self.0.remove(0)
        }
        fn next_u64(&mut self) -> u64 {
            u64::from(self.next_u32())
        }
        fn fill_bytes(&mut self, _: &mut [u8]) {
            unimplemented!()
        }
        fn try_fill_bytes(&mut self, _: &mut [u8]) -> Result<(), rand_core::Error> {
            unimplemented!()
        }
    }

    #[test]
    fn biased_tail_is_rejected() {
        let mut rng = Fixed(vec![u32::MAX, ACCEPT_BELOW, 1_234_567]);
        assert_eq!(OtpCode::generate(&mut rng).expose(), "234567");
        let mut rng = Fixed(vec![7]);
        assert_eq!(OtpCode::generate(&mut rng).expose(), "000007");
    }

    #[test]
    fn codes_spread_over_all_digits() {
        let mut first_digit = [0u32; 10];
        for _ in 0..5_000 {
            let code = OtpCode::generate(&mut OsRng);
            first_digit[usize::from(code.expose().as_bytes()[0] - b'0')] += 1;
        }
        // Each leading digit expects 500; 300..700 is > 9 sigma wide.
        assert!(
            first_digit.iter().all(|n| (300..700).contains(n)),
            "{first_digit:?}"
        );
    }

    #[test]
    fn parse_rules_and_debug_hides_digits() {
        assert!(OtpCode::parse(" 012345 ").is_some());
        for bad in ["12345", "1234567", "12345a", "١٢٣٤٥٦", ""] {
            assert!(OtpCode::parse(bad).is_none(), "{bad:?}");
        }
        assert_eq!(
            format!("{:?}", OtpCode::parse("123456").unwrap()),
            "OtpCode(******)"
        );
    }

    #[test]
    fn hash_binds_secret_email_and_code() {
        let code = OtpCode::parse("123456").unwrap();
        let stored = hash(b"secret", "a@example.com", &code);
        assert!(matches(b"secret", "a@example.com", &code, &stored));
        assert!(!matches(b"other", "a@example.com", &code, &stored));
        assert!(!matches(b"secret", "b@example.com", &code, &stored));
        assert!(!matches(
            b"secret",
            "a@example.com",
            &OtpCode::parse("123457").unwrap(),
            &stored
        ));
        assert!(!matches(b"secret", "a@example.com", &code, &stored[..31]));
    }

    proptest! {
        #[test]
        fn generated_codes_are_six_digits_and_reparse(draws in proptest::collection::vec(any::<u32>(), 1..8)) {
            let mut draws = draws;
            draws.push(0);
            let code = OtpCode::generate(&mut Fixed(draws));
            prop_assert_eq!(OtpCode::parse(code.expose()), Some(code.clone()));
        }

        #[test]
        fn only_the_right_code_matches(a in 0u32..1_000_000, b in 0u32..1_000_000) {
            let ca = OtpCode::parse(&format!("{a:06}")).unwrap();
            let cb = OtpCode::parse(&format!("{b:06}")).unwrap();
            let stored = hash(b"k", "e", &ca);
            prop_assert_eq!(matches(b"k", "e", &cb, &stored), a == b);
        }
    }
}
