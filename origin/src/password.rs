//! argon2id hashing on the blocking pool, behind a semaphore so a burst of logins queues
//! instead of exhausting memory (each hash holds 19 MiB) or starving the async workers.
//!
//! Users imported from Django keep their Django hash (`pbkdf2_sha256$…`, or Django's
//! `argon2$argon2id$…`) until their first successful login, which re-hashes the password with
//! the current argon2id parameters.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use anyhow::Context;
use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString,
};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;

use crate::metrics::{QueueDepth, SharedQueue};

/// OWASP Password Storage Cheat Sheet minimum for argon2id: m=19456 KiB, t=2, p=1.
pub const M_COST_KIB: u32 = 19_456;
pub const T_COST: u32 = 2;
pub const P_COST: u32 = 1;

/// Django's PBKDF2 hasher prefix (`pbkdf2_sha256$<iterations>$<salt>$<base64 hash>`).
const DJANGO_PBKDF2: &str = "pbkdf2_sha256$";
/// Django's Argon2 hasher stores argon2-cffi's PHC string behind the word `argon2`.
const DJANGO_ARGON2: &str = "argon2$argon2";
/// Bounds the work a corrupt or hostile imported hash can cause (Django 5.2 uses 1,000,000).
const PBKDF2_MAX_ITERATIONS: u32 = 10_000_000;

#[derive(Clone)]
pub struct PasswordHasher {
    permits: Arc<Semaphore>,
    queue: SharedQueue,
    /// Verified against for unknown emails, so an unknown account costs the same time.
    dummy_hash: Arc<str>,
}

/// The result of checking a password against a stored hash.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Verified {
    pub ok: bool,
    /// The password matched a hash that is not argon2id with the current parameters: store a
    /// fresh hash.
    pub needs_rehash: bool,
}

fn argon2() -> Argon2<'static> {
    let params = Params::new(M_COST_KIB, T_COST, P_COST, None).expect("OWASP parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Synchronous hash with the configured parameters (CLI and benchmarks).
pub fn hash_blocking(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("argon2 hash failed: {e}"))
}

/// True for the hash formats a login can check: ours and the two Django ones.
pub fn is_supported(stored: &str) -> bool {
    stored.starts_with("$argon2")
        || stored.starts_with(DJANGO_ARGON2)
        || stored.starts_with(DJANGO_PBKDF2)
}

fn current_params(parsed: &PasswordHash<'_>) -> bool {
    parsed.algorithm.as_str() == "argon2id"
        && parsed.version == Some(0x13)
        && Params::try_from(parsed)
            .is_ok_and(|p| p.m_cost() == M_COST_KIB && p.t_cost() == T_COST && p.p_cost() == P_COST)
}

fn verify_phc(password: &str, phc: &str) -> Verified {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return Verified::default();
    };
    // The parameters come from the stored hash, so older hashes keep verifying.
    let ok = argon2()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok();
    Verified {
        ok,
        needs_rehash: ok && !current_params(&parsed),
    }
}

/// Django's `PBKDF2PasswordHasher`: PBKDF2-HMAC-SHA256 over the salt's ASCII bytes, 32-byte
/// key, standard base64 with padding; compared in constant time.
fn verify_django_pbkdf2(password: &str, encoded: &str) -> Verified {
    let mut parts = encoded.splitn(4, '$');
    let (Some("pbkdf2_sha256"), Some(iterations), Some(salt), Some(expected)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Verified::default();
    };
    let Ok(iterations) = iterations.parse::<u32>() else {
        return Verified::default();
    };
    let Ok(expected) = STANDARD.decode(expected) else {
        return Verified::default();
    };
    if iterations == 0 || iterations > PBKDF2_MAX_ITERATIONS || expected.len() != 32 {
        return Verified::default();
    }
    let mut derived = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<sha2::Sha256>(
        password.as_bytes(),
        salt.as_bytes(),
        iterations,
        &mut derived,
    );
    let ok: bool = derived.ct_eq(expected.as_slice()).into();
    Verified {
        ok,
        needs_rehash: ok,
    }
}

/// Checks `password` against any supported stored format; unknown formats (other Django
/// hashers, unusable `!` passwords) never match.
pub fn verify_blocking(password: &str, stored: &str) -> Verified {
    if let Some(phc) = stored.strip_prefix("argon2") {
        if phc.starts_with("$argon2") {
            // Django's wrapper: always re-hashed, so every stored hash ends up in one format.
            let v = verify_phc(password, phc);
            return Verified {
                ok: v.ok,
                needs_rehash: v.ok,
            };
        }
    }
    if stored.starts_with("$argon2") {
        return verify_phc(password, stored);
    }
    if stored.starts_with(DJANGO_PBKDF2) {
        return verify_django_pbkdf2(password, stored);
    }
    Verified::default()
}

impl PasswordHasher {
    pub fn new(max_concurrency: usize) -> anyhow::Result<Self> {
        let dummy = hash_blocking("dummy password for timing equalisation")?;
        Ok(Self {
            permits: Arc::new(Semaphore::new(max_concurrency)),
            queue: Arc::new(QueueDepth::default()),
            dummy_hash: dummy.into(),
        })
    }

    /// Hashes being computed and waiting, for the metrics.
    pub fn queue(&self) -> &QueueDepth {
        &self.queue
    }

    /// Runs `work` on the blocking pool once a permit is free, counted in the queue gauges.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> anyhow::Result<T> {
        self.queue.waiting.fetch_add(1, Ordering::Relaxed);
        let permit = self.permits.acquire().await;
        self.queue.waiting.fetch_sub(1, Ordering::Relaxed);
        let _permit = permit.context("hasher closed")?;
        self.queue.running.fetch_add(1, Ordering::Relaxed);
        let result = tokio::task::spawn_blocking(work).await;
        self.queue.running.fetch_sub(1, Ordering::Relaxed);
        result.context("password hashing task failed")
    }

    pub async fn hash(&self, password: SecretString) -> anyhow::Result<String> {
        self.run(move || hash_blocking(password.expose_secret()))
            .await?
    }

    /// Verifies against `stored`, or against the dummy hash when there is no account, so both
    /// paths cost one argon2 computation.
    pub async fn verify(
        &self,
        password: SecretString,
        stored: Option<String>,
    ) -> anyhow::Result<Verified> {
        let known = stored.is_some();
        let stored = stored.unwrap_or_else(|| self.dummy_hash.to_string());
        let verified = self
            .run(move || verify_blocking(password.expose_secret(), &stored))
            .await?;
        Ok(if known { verified } else { Verified::default() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hash_then_verify() {
        let hasher = PasswordHasher::new(2).unwrap();
        let phc = hasher.hash(SecretString::from("73926481")).await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        let right = hasher
            .verify(SecretString::from("73926481"), Some(phc.clone()))
            .await
            .unwrap();
        assert_eq!(
            right,
            Verified {
                ok: true,
                needs_rehash: false
            }
        );
        assert!(
            !hasher
                .verify(SecretString::from("73926482"), Some(phc))
                .await
                .unwrap()
                .ok
        );
        // The dummy path never succeeds, even with the dummy's own password.
        assert!(
            !hasher
                .verify(
                    SecretString::from("dummy password for timing equalisation"),
                    None
                )
                .await
                .unwrap()
                .ok
        );
        assert!(
            !hasher
                .verify(SecretString::from("x"), Some("not a phc".into()))
                .await
                .unwrap()
                .ok
        );
    }

    // Made by Django 5.2's own hashers (origin/tests/fixtures/make_django_users.py).
    const DJANGO_PBKDF2_73926481: &str =
        "pbkdf2_sha256$1000000$jspprVBKUL0hWgjCHOkXQD$ucb9on6pm75ks8PkOAzbbBrBzr1FAMCR9IUeshlJxtM=";
    const DJANGO_ARGON2_58203941: &str = "argon2$argon2id$v=19$m=102400,t=2,p=8$WVpnNGFsUzRqNndhSFhONnhDNlZFaw$JZAT5+RZknVuxof7sx1JBSLIe4DuefGCSwZPhFxgobo";

    #[test]
    fn django_pbkdf2_sha256_verifies_and_asks_for_a_rehash() {
        let right = verify_blocking("73926481", DJANGO_PBKDF2_73926481);
        assert_eq!(
            right,
            Verified {
                ok: true,
                needs_rehash: true
            }
        );
        assert!(!verify_blocking("73926482", DJANGO_PBKDF2_73926481).ok);
        // One flipped character of the stored key, or a changed iteration count: no match.
        let tampered = DJANGO_PBKDF2_73926481.replace("ucb9", "ucb8");
        assert!(!verify_blocking("73926481", &tampered).ok);
        let fewer = DJANGO_PBKDF2_73926481.replace("$1000000$", "$999999$");
        assert!(!verify_blocking("73926481", &fewer).ok);
    }

    #[test]
    fn django_argon2_verifies_and_asks_for_a_rehash() {
        let right = verify_blocking("58203941", DJANGO_ARGON2_58203941);
        assert_eq!(
            right,
            Verified {
                ok: true,
                needs_rehash: true
            }
        );
        assert!(!verify_blocking("58203942", DJANGO_ARGON2_58203941).ok);
    }

    #[test]
    fn unsupported_and_hostile_hashes_never_match() {
        for stored in [
            "",
            "!y0IgjJS79SReyUdxbyuoHYfJ6pQWnxBmdhGK75Di",
            "pbkdf2_sha1$1000000$eSXzK7WNxzasVeCd4LLnlY$LpsmcitOzvX6Jc5qOS34v0vI+Sg=",
            "md5$salt$0123456789abcdef0123456789abcdef",
            "pbkdf2_sha256$0$salt$ucb9on6pm75ks8PkOAzbbBrBzr1FAMCR9IUeshlJxtM=",
            "pbkdf2_sha256$4294967295$salt$ucb9on6pm75ks8PkOAzbbBrBzr1FAMCR9IUeshlJxtM=",
            "pbkdf2_sha256$1000$salt$not base64",
            "pbkdf2_sha256$1000$salt$c2hvcnQ=",
            "pbkdf2_sha256$1000$salt",
            "argon2$bcrypt$whatever",
        ] {
            assert_eq!(
                verify_blocking("73926481", stored),
                Verified::default(),
                "{stored}"
            );
        }
        assert!(!is_supported("pbkdf2_sha1$1$a$b"));
        assert!(!is_supported("!unusable"));
        assert!(is_supported(DJANGO_PBKDF2_73926481));
        assert!(is_supported(DJANGO_ARGON2_58203941));
    }
}
