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
/// How many of those wrong guesses may come from networks other than the one that asked for
/// the code (all of them together): an outsider can never burn the asker's last three.
pub const OTP_OTHER_NETWORK_ATTEMPTS: u32 = 2;

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

/// [`matches`] under any of a rotation's secrets (the current first).
pub fn matches_any<S: AsRef<[u8]>>(
    secrets: &[S],
    email_key: &str,
    code: &OtpCode,
    stored: &[u8],
) -> bool {
    secrets
        .iter()
        .any(|secret| matches(secret.as_ref(), email_key, code, stored))
}

fn mac(secret: &[u8], email_key: &str, code: &OtpCode) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC accepts any key length");
    mac.update(email_key.as_bytes());
    mac.update(&[0]);
    mac.update(code.0.as_bytes());
    mac
}

/// What the `OtpStore` Durable Object keeps for one email: the code only as its keyed hash.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OtpRecord {
    /// Hex of [`hash`].
    pub hash: String,
    /// Unix seconds after which the code is refused.
    pub expires_at: i64,
    /// Wrong guesses from the requester's network.
    pub attempts: u32,
    /// Set once the code was accepted or burned; it is never accepted again.
    pub spent: bool,
    /// The client network (`shared::client::network_key`) that asked for this code: its wrong
    /// guesses are `attempts`, every other network's together `other_attempts` (records written
    /// before this field have `""`).
    #[serde(default)]
    pub requester: String,
    /// Wrong guesses from networks other than the requester's, all together (at most
    /// `OTP_OTHER_NETWORK_ATTEMPTS`).
    #[serde(default)]
    pub other_attempts: u32,
    /// Set when the code was spent by being accepted (not burned by wrong guesses), so that
    /// [`OtpRecord::reinstate`] can give it back.
    #[serde(default)]
    pub accepted: bool,
}

/// The result of presenting a code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// Right code, in time: consumed now.
    Accepted,
    /// Wrong code; the record counts it (and burns it at the fifth).
    Wrong,
    /// No live code: none issued, expired, already used or burned.
    NoLiveCode,
}

impl OtpRecord {
    /// A fresh record for `code`, replacing whatever was stored before.
    pub fn issue(secret: &[u8], email_key: &str, code: &OtpCode, now: i64) -> Self {
        Self {
            hash: crate::hex::encode(&hash(secret, email_key, code)),
            expires_at: now + OTP_TTL_SECS,
            attempts: 0,
            requester: String::new(),
            other_attempts: 0,
            spent: false,
            accepted: false,
        }
    }

    /// Whether nothing about this record can matter any more at `now`: past its expiry no
    /// attempt, reinstatement or replacement rule looks at it, so its storage may be deleted.
    pub fn expired(&self, now: i64) -> bool {
        now >= self.expires_at
    }

    /// The same record, asked for by `network`.
    pub fn requested_from(mut self, network: &str) -> Self {
        self.requester = network.to_owned();
        self
    }

    /// Whether a new code asked for by `network` may take this one's place. A live code is only
    /// replaced from the network that asked for it: otherwise anyone could void the owner's
    /// emailed code at will by asking for another one (the new code goes to the owner's inbox
    /// too, but its guesses would then be the asker's to burn).
    pub fn replaceable_by(&self, network: &str, now: i64) -> bool {
        self.spent || self.expired(now) || network == self.requester
    }

    /// Checks `code`, presented from `network`, and updates the record: single use, expiry,
    /// and at most `OTP_MAX_ATTEMPTS` wrong guesses in all (then the code is burned), of which
    /// at most `OTP_OTHER_NETWORK_ATTEMPTS` from networks other than the requester's (then it is
    /// closed to them, and still open to the requester's). Nobody gets more guesses per code
    /// than before, and an outsider can no longer burn the owner's code.
    /// `secrets`: every value of `OTP_SECRET`, so a code issued before a rotation still works.
    pub fn attempt<S: AsRef<[u8]>>(
        &mut self,
        secrets: &[S],
        email_key: &str,
        code: &OtpCode,
        now: i64,
        network: &str,
    ) -> Attempt {
        let own = network == self.requester;
        if self.spent
            || self.expired(now)
            || self.attempts + self.other_attempts >= OTP_MAX_ATTEMPTS
            || (!own && self.other_attempts >= OTP_OTHER_NETWORK_ATTEMPTS)
        {
            return Attempt::NoLiveCode;
        }
        let stored = crate::hex::decode(&self.hash).unwrap_or_default();
        if matches_any(secrets, email_key, code, &stored) {
            self.spent = true;
            self.accepted = true;
            return Attempt::Accepted;
        }
        if own {
            self.attempts += 1;
        } else {
            self.other_attempts += 1;
        }
        if self.attempts + self.other_attempts >= OTP_MAX_ATTEMPTS {
            self.spent = true;
        }
        Attempt::Wrong
    }
}

impl OtpRecord {
    /// Makes an accepted code live again, because what it was exchanged for did not happen:
    /// `confirm` with `{email, otp}` whose new password the origin refused (a typo in
    /// `re_new_password` must not cost the user their code). Only the very code that was
    /// accepted, and only until it expires: its wrong-guess count is kept, a burned code stays
    /// burned, and whoever reinstates a code has just proved they know it, so nothing is
    /// gained by an attacker. Returns whether the code is live again.
    pub fn reinstate<S: AsRef<[u8]>>(
        &mut self,
        secrets: &[S],
        email_key: &str,
        code: &OtpCode,
        now: i64,
    ) -> bool {
        let stored = crate::hex::decode(&self.hash).unwrap_or_default();
        if !self.accepted || self.expired(now) || !matches_any(secrets, email_key, code, &stored) {
            return false;
        }
        self.spent = false;
        self.accepted = false;
        true
    }
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
    fn a_code_issued_before_a_secret_rotation_still_works() {
        let (old, new): (&[u8], &[u8]) = (b"old-secret", b"new-secret");
        let issued = OtpRecord::issue(old, "a", &code("123456"), NOW).requested_from(OWNER);
        let mut rotated = issued.clone();
        assert_eq!(
            rotated.attempt(&[new, old], "a", &code("123456"), NOW, OWNER),
            Attempt::Accepted
        );
        assert!(rotated.reinstate(&[new, old], "a", &code("123456"), NOW));
        // Once the old secret is retired, its codes are wrong.
        let mut retired = issued;
        assert_eq!(
            retired.attempt(&[new], "a", &code("123456"), NOW, OWNER),
            Attempt::Wrong
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

    const NOW: i64 = 1_800_000_000;
    /// The network the records in these tests were requested from.
    const OWNER: &str = "";
    const ELSEWHERE: &str = "203.0.113.7";

    fn code(s: &str) -> OtpCode {
        OtpCode::parse(s).unwrap()
    }

    #[test]
    fn record_accepts_the_right_code_once() {
        let mut r = OtpRecord::issue(b"k", "a@example.com", &code("123456"), NOW);
        assert!(!r.hash.contains("123456"));
        assert_eq!(
            r.attempt(&[b"k"], "a@example.com", &code("123456"), NOW + 1, OWNER),
            Attempt::Accepted
        );
        assert_eq!(
            r.attempt(&[b"k"], "a@example.com", &code("123456"), NOW + 2, OWNER),
            Attempt::NoLiveCode
        );
    }

    #[test]
    fn record_expires_after_ten_minutes() {
        let mut r = OtpRecord::issue(b"k", "a", &code("123456"), NOW);
        assert_eq!(
            r.attempt(&[b"k"], "a", &code("123456"), NOW + OTP_TTL_SECS, OWNER),
            Attempt::NoLiveCode
        );
        let mut r = OtpRecord::issue(b"k", "a", &code("123456"), NOW);
        assert_eq!(
            r.attempt(&[b"k"], "a", &code("123456"), NOW + OTP_TTL_SECS - 1, OWNER),
            Attempt::Accepted
        );
    }

    #[test]
    fn five_wrong_guesses_burn_the_code() {
        let mut r = OtpRecord::issue(b"k", "a", &code("123456"), NOW);
        for _ in 0..OTP_MAX_ATTEMPTS {
            assert_eq!(
                r.attempt(&[b"k"], "a", &code("000000"), NOW, OWNER),
                Attempt::Wrong
            );
        }
        assert!(r.spent);
        assert_eq!(
            r.attempt(&[b"k"], "a", &code("123456"), NOW, OWNER),
            Attempt::NoLiveCode
        );
        // Four wrong guesses leave the right one usable.
        let mut r = OtpRecord::issue(b"k", "a", &code("123456"), NOW);
        for _ in 0..OTP_MAX_ATTEMPTS - 1 {
            r.attempt(&[b"k"], "a", &code("000000"), NOW, OWNER);
        }
        assert_eq!(
            r.attempt(&[b"k"], "a", &code("123456"), NOW, OWNER),
            Attempt::Accepted
        );
    }

    #[test]
    fn an_accepted_code_can_be_reinstated_once_by_its_holder_until_it_expires() {
        let mut r = OtpRecord::issue(b"k", "a", &code("123456"), NOW);
        assert_eq!(
            r.attempt(&[b"k"], "a", &code("000000"), NOW, OWNER),
            Attempt::Wrong
        );
        // Not accepted yet: nothing to give back.
        assert!(!r.reinstate(&[b"k"], "a", &code("123456"), NOW));
        assert_eq!(
            r.attempt(&[b"k"], "a", &code("123456"), NOW, OWNER),
            Attempt::Accepted
        );
        // Another code, email or secret does not bring it back.
        assert!(!r.reinstate(&[b"k"], "a", &code("654321"), NOW));
        assert!(!r.reinstate(&[b"k"], "b", &code("123456"), NOW));
        assert!(!r.reinstate(&[b"other"], "a", &code("123456"), NOW));
        assert!(r.reinstate(&[b"k"], "a", &code("123456"), NOW + 1));
        // Live again, with the earlier wrong guess still counted.
        assert_eq!(r.attempts, 1);
        assert!(
            !r.reinstate(&[b"k"], "a", &code("123456"), NOW + 1),
            "only once per acceptance"
        );
        assert_eq!(
            r.attempt(&[b"k"], "a", &code("123456"), NOW + 2, OWNER),
            Attempt::Accepted
        );
        // Past its expiry it stays spent.
        assert!(!r.reinstate(&[b"k"], "a", &code("123456"), NOW + OTP_TTL_SECS));
        // A burned code is never reinstated, even with the right code.
        let mut burned = OtpRecord::issue(b"k", "a", &code("123456"), NOW);
        for _ in 0..OTP_MAX_ATTEMPTS {
            burned.attempt(&[b"k"], "a", &code("000000"), NOW, OWNER);
        }
        assert!(!burned.reinstate(&[b"k"], "a", &code("123456"), NOW));
    }

    #[test]
    fn guesses_from_other_networks_cannot_burn_the_owners_code() {
        let owner = "2001:db8:1::/64";
        let mut r = OtpRecord::issue(b"k", "a", &code("123456"), NOW).requested_from(owner);
        for _ in 0..OTP_OTHER_NETWORK_ATTEMPTS {
            assert_eq!(
                r.attempt(&[b"k"], "a", &code("000000"), NOW, ELSEWHERE),
                Attempt::Wrong
            );
        }
        // Closed to every other network, even for the right code...
        for network in [ELSEWHERE, "198.51.100.1"] {
            assert_eq!(
                r.attempt(&[b"k"], "a", &code("123456"), NOW, network),
                Attempt::NoLiveCode
            );
        }
        assert!(!r.spent);
        // ...and still open to the owner's network, for what is left of the five.
        for _ in 0..OTP_MAX_ATTEMPTS - OTP_OTHER_NETWORK_ATTEMPTS - 1 {
            assert_eq!(
                r.attempt(&[b"k"], "a", &code("000001"), NOW, owner),
                Attempt::Wrong
            );
        }
        assert_eq!(
            r.attempt(&[b"k"], "a", &code("123456"), NOW, owner),
            Attempt::Accepted
        );
        // Five wrong guesses in all burn it, whoever made them.
        let mut r = OtpRecord::issue(b"k", "a", &code("123456"), NOW).requested_from(owner);
        r.attempt(&[b"k"], "a", &code("000000"), NOW, ELSEWHERE);
        for _ in 0..OTP_MAX_ATTEMPTS - 1 {
            r.attempt(&[b"k"], "a", &code("000000"), NOW, owner);
        }
        assert!(r.spent);
        assert_eq!(
            r.attempt(&[b"k"], "a", &code("123456"), NOW, owner),
            Attempt::NoLiveCode
        );
    }

    #[test]
    fn a_live_code_is_replaced_only_from_the_network_that_asked_for_it() {
        let owner = "192.0.2.1";
        let mut r = OtpRecord::issue(b"k", "a", &code("123456"), NOW).requested_from(owner);
        assert!(r.replaceable_by(owner, NOW + 1));
        assert!(!r.replaceable_by(ELSEWHERE, NOW + 1));
        // Even with its outsiders' guesses used up.
        for _ in 0..OTP_MAX_ATTEMPTS {
            r.attempt(&[b"k"], "a", &code("000000"), NOW, ELSEWHERE);
        }
        assert!(!r.replaceable_by(ELSEWHERE, NOW + 1));
        // Expired or spent: anyone may ask for a new one.
        assert!(r.replaceable_by(ELSEWHERE, NOW + OTP_TTL_SECS));
        r.attempt(&[b"k"], "a", &code("123456"), NOW, owner);
        assert!(r.replaceable_by(ELSEWHERE, NOW + 1));
    }

    #[test]
    fn a_new_code_replaces_the_old() {
        // The store keeps one record per email: issuing overwrites it.
        let old = code("111111");
        let first = OtpRecord::issue(b"k", "a", &old, NOW);
        let mut r = OtpRecord::issue(b"k", "a", &code("222222"), NOW + 5);
        assert_ne!(first.hash, r.hash);
        assert_eq!(
            r.attempt(&[b"k"], "a", &old, NOW + 6, OWNER),
            Attempt::Wrong
        );
        assert_eq!(
            r.attempt(&[b"k"], "a", &code("222222"), NOW + 6, OWNER),
            Attempt::Accepted
        );
    }

    #[test]
    fn record_round_trips_through_json() {
        let r = OtpRecord::issue(b"k", "a", &code("123456"), NOW);
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(serde_json::from_str::<OtpRecord>(&json).unwrap(), r);
        let mut corrupt = r.clone();
        corrupt.hash = "zz".into();
        assert_eq!(
            corrupt.attempt(&[b"k"], "a", &code("123456"), NOW, OWNER),
            Attempt::Wrong
        );
    }

    proptest! {
        /// Whatever the guesses, at most `OTP_MAX_ATTEMPTS` are judged, and a code is accepted
        /// at most once.
        #[test]
        fn attempts_are_bounded(guesses in proptest::collection::vec(0u32..1_000_000, 1..20), secret_code in 0u32..1_000_000) {
            let right = code(&format!("{secret_code:06}"));
            let mut r = OtpRecord::issue(b"k", "a", &right, NOW);
            let mut judged = 0;
            let mut accepted = 0;
            for g in guesses {
                match r.attempt(&[b"k"], "a", &code(&format!("{g:06}")), NOW, OWNER) {
                    Attempt::Accepted => { judged += 1; accepted += 1; }
                    Attempt::Wrong => judged += 1,
                    Attempt::NoLiveCode => {}
                }
            }
            prop_assert!(judged <= OTP_MAX_ATTEMPTS as usize);
            prop_assert!(accepted <= 1);
        }
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
