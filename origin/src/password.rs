//! argon2id hashing on the blocking pool, behind a semaphore so a burst of logins queues
//! instead of exhausting memory (each hash holds 19 MiB) or starving the async workers.

use std::sync::Arc;

use anyhow::Context;
use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString,
};
use argon2::{Algorithm, Argon2, Params, Version};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Semaphore;

/// OWASP Password Storage Cheat Sheet minimum for argon2id: m=19456 KiB, t=2, p=1.
pub const M_COST_KIB: u32 = 19_456;
pub const T_COST: u32 = 2;
pub const P_COST: u32 = 1;

#[derive(Clone)]
pub struct PasswordHasher {
    permits: Arc<Semaphore>,
    /// Verified against for unknown emails, so an unknown account costs the same time.
    dummy_hash: Arc<str>,
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

fn verify_blocking(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        // The parameters come from the stored hash, so older hashes keep verifying.
        Ok(parsed) => argon2()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

impl PasswordHasher {
    pub fn new(max_concurrency: usize) -> anyhow::Result<Self> {
        let dummy = hash_blocking("dummy password for timing equalisation")?;
        Ok(Self {
            permits: Arc::new(Semaphore::new(max_concurrency)),
            dummy_hash: dummy.into(),
        })
    }

    pub async fn hash(&self, password: SecretString) -> anyhow::Result<String> {
        let _permit = self.permits.acquire().await.context("hasher closed")?;
        tokio::task::spawn_blocking(move || hash_blocking(password.expose_secret()))
            .await
            .context("hash task failed")?
    }

    /// Verifies against `phc`, or against the dummy hash when there is no account, so both
    /// paths cost one argon2 computation.
    pub async fn verify(
        &self,
        password: SecretString,
        phc: Option<String>,
    ) -> anyhow::Result<bool> {
        let _permit = self.permits.acquire().await.context("hasher closed")?;
        let known = phc.is_some();
        let phc = phc.unwrap_or_else(|| self.dummy_hash.to_string());
        let ok =
            tokio::task::spawn_blocking(move || verify_blocking(password.expose_secret(), &phc))
                .await
                .context("verify task failed")?;
        Ok(known && ok)
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
        assert!(hasher
            .verify(SecretString::from("73926481"), Some(phc.clone()))
            .await
            .unwrap());
        assert!(!hasher
            .verify(SecretString::from("73926482"), Some(phc))
            .await
            .unwrap());
        // The dummy path never succeeds, even with the dummy's own password.
        assert!(!hasher
            .verify(
                SecretString::from("dummy password for timing equalisation"),
                None
            )
            .await
            .unwrap());
        assert!(!hasher
            .verify(SecretString::from("x"), Some("not a phc".into()))
            .await
            .unwrap());
    }
}
