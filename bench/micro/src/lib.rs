//! Micro-benchmark cases of the code the edge and the origin share, defined once: the native
//! criterion run (`origin/benches/micro.rs`) and the Wasm run under Node (`bench/micro/run.mjs`,
//! this crate built for wasm32 with the exports below) call the same functions on the same
//! fixture.
//!
//! Every case returns whether it got the expected answer, so a case that silently starts
//! failing (a refused token, say) is reported instead of being timed.

use shared::keys::{Ed25519PrivateKey, Jwks, SigningKey, VerifyingKeys};
use shared::otp::{self, OtpCode};
use shared::token::{Audience, Claims, TokenIssuer, TokenKind, TokenVerifier};
use shared::validate::{PasswordPolicy, UserAttributes};

/// Fixed clock for the fixture's tokens (valid from `NOW` for an hour).
pub const NOW: i64 = 1_800_000_000;
const HS_SECRET: &[u8] = b"micro-benchmark-hs256-secret-0123456789";
const OTP_SECRET: &[u8] = b"micro-benchmark-otp-secret-0123456789ab";

/// One signer and verifier per algorithm, a token of each, and the other inputs.
pub struct Fixture {
    ed_issuer: TokenIssuer,
    ed_verifier: TokenVerifier,
    ed_token: String,
    hs_issuer: TokenIssuer,
    hs_verifier: TokenVerifier,
    hs_token: String,
    claims: Claims,
    code: OtpCode,
}

fn audience() -> Audience {
    Audience {
        issuer: "auth-api".into(),
        audience: "auth-api".into(),
    }
}

impl Default for Fixture {
    fn default() -> Self {
        Self::new()
    }
}

impl Fixture {
    pub fn new() -> Self {
        let private = Ed25519PrivateKey::from_seed([42; 32]);
        let jwks = Jwks {
            keys: vec![private.public_jwk()],
        };
        let ed_issuer = TokenIssuer::new(SigningKey::ed25519(&private), audience());
        let ed_verifier = TokenVerifier::new(VerifyingKeys::from_jwks(&jwks).unwrap(), audience());
        let hs_issuer = TokenIssuer::new(SigningKey::hs256(HS_SECRET).unwrap(), audience());
        let hs_verifier = TokenVerifier::new(VerifyingKeys::hs256(HS_SECRET).unwrap(), audience());
        let subject = shared::token::Subject {
            user_id: 4242,
            token_version: 3,
            role: "user".into(),
        };
        let claims = ed_issuer.claims(
            TokenKind::Access,
            &subject,
            "0f8c3a6e2b7d4f1a9c5e8b2d7a4f6c1e".into(),
            NOW,
            3600,
        );
        let ed_token = ed_issuer.sign(&claims).unwrap();
        let hs_token = hs_issuer.sign(&claims).unwrap();
        Self {
            ed_issuer,
            ed_verifier,
            ed_token,
            hs_issuer,
            hs_verifier,
            hs_token,
            claims,
            code: OtpCode::parse("493817").unwrap(),
        }
    }
}

/// A case: its name (as reported) and one operation.
pub struct Case {
    pub name: &'static str,
    pub run: fn(&Fixture) -> bool,
}

pub const CASES: &[Case] = &[
    Case {
        name: "token_verify_eddsa",
        run: |f| f.ed_verifier.access(&f.ed_token, NOW + 1).is_ok(),
    },
    Case {
        name: "token_issue_eddsa",
        run: |f| f.ed_issuer.sign(&f.claims).is_ok_and(|t| t == f.ed_token),
    },
    Case {
        name: "token_verify_hs256",
        run: |f| f.hs_verifier.access(&f.hs_token, NOW + 1).is_ok(),
    },
    Case {
        name: "token_issue_hs256",
        run: |f| f.hs_issuer.sign(&f.claims).is_ok_and(|t| t == f.hs_token),
    },
    Case {
        name: "password_policy_seed",
        run: |_| policy_accepts(PasswordPolicy::Seed, "73926481"),
    },
    Case {
        name: "password_policy_strong",
        run: |_| policy_accepts(PasswordPolicy::Strong, "correct horse battery staple"),
    },
    Case {
        name: "otp_hash",
        run: |f| otp::hash(OTP_SECRET, "grace@example.com", &f.code) != [0; 32],
    },
];

/// A password policy's check of grace's password (the work of a sign-up's validation).
fn policy_accepts(policy: PasswordPolicy, password: &str) -> bool {
    policy
        .check(
            password,
            &UserAttributes {
                username: "grace",
                email: "grace@example.com",
            },
        )
        .is_ok()
}

/// Runs `case` `iterations` times; the number of right answers (equals `iterations` unless
/// the case is broken).
pub fn run(fixture: &Fixture, case: &Case, iterations: u32) -> u32 {
    (0..iterations)
        .map(|_| u32::from((case.run)(fixture)))
        .sum()
}

#[cfg(target_arch = "wasm32")]
mod wasm {
    use std::cell::OnceCell;
    use wasm_bindgen::prelude::*;

    thread_local! {
        static FIXTURE: OnceCell<super::Fixture> = const { OnceCell::new() };
    }

    /// The case names, in order.
    #[wasm_bindgen]
    pub fn cases() -> Vec<String> {
        super::CASES.iter().map(|c| c.name.to_owned()).collect()
    }

    /// Runs the named case `iterations` times; the number of right answers, or -1 for an
    /// unknown name.
    #[wasm_bindgen]
    pub fn run(name: &str, iterations: u32) -> i64 {
        let Some(case) = super::CASES.iter().find(|c| c.name == name) else {
            return -1;
        };
        FIXTURE.with(|f| {
            i64::from(super::run(
                f.get_or_init(super::Fixture::new),
                case,
                iterations,
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_case_gets_the_right_answer() {
        let fixture = Fixture::new();
        for case in CASES {
            assert_eq!(run(&fixture, case, 3), 3, "{}", case.name);
        }
    }

    #[test]
    fn a_verify_case_notices_a_refused_token() {
        let mut fixture = Fixture::new();
        fixture.ed_token.push('x');
        assert_eq!(run(&fixture, &CASES[0], 2), 0);
    }
}
