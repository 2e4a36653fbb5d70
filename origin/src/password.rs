//! argon2id hashing on its own small pool of threads (ARGON2_MAX_CONCURRENCY, default one per
//! core): a burst of logins queues instead of exhausting memory or starving the async workers.
//! Each pool thread owns one 19 MiB block of argon2 memory and reuses it for every hash, so
//! the origin's memory stays at one block per thread (allocating per hash left a retained
//! glibc arena per blocking thread: ~645 MiB peak RSS under a login benchmark) and no hash
//! pays for faulting in and zeroing fresh pages (~10 % of a hash).
//!
//! Users imported from Django keep their Django hash (`pbkdf2_sha256$…`, or Django's
//! `argon2$argon2id$…`) until their first successful login, which re-hashes the password with
//! the current argon2id parameters.

use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use argon2::password_hash::{rand_core::OsRng, Output, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;
use tokio::sync::oneshot;

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
/// The same for argon2 hashes, checked before any memory is allocated: a stored `m` is an
/// allocation request (up to 4 TiB) and `t` a time multiplier. Django's argon2 default is
/// m=102400 KiB, t=2, p=8; ours m=19456, t=2, p=1. 256 MiB, 16 passes and 16 lanes leave room
/// for stronger settings without letting one row abort the process or hold a thread for hours.
pub const ARGON2_MAX_M_COST_KIB: u32 = 262_144;
pub const ARGON2_MAX_T_COST: u32 = 16;
pub const ARGON2_MAX_P_COST: u32 = 16;

type Job = Box<dyn FnOnce(&mut Memory) + Send>;

/// Why the hashing pool did not produce an answer.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// The queue is full (ARGON2_QUEUE_DEPTH): the caller is told at once to come back, rather
    /// than queueing work no client will wait for.
    #[error("password hashing queue full")]
    QueueFull,
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

#[derive(Clone)]
pub struct PasswordHasher {
    jobs: mpsc::SyncSender<Job>,
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

fn params() -> Params {
    Params::new(M_COST_KIB, T_COST, P_COST, None).expect("OWASP parameters are valid")
}

/// argon2's working memory, kept between hashes by each pool thread. Sized for the current
/// parameters; a stored hash with a larger `m` (an imported Django argon2 hash uses 100 MiB)
/// gets a temporary block of its own, so the kept one never grows.
#[derive(Default)]
pub struct Memory(Vec<Block>);

impl Memory {
    fn compute(
        &mut self,
        ctx: &Argon2<'_>,
        password: &[u8],
        salt: &[u8],
        out: &mut [u8],
    ) -> argon2::Result<()> {
        let blocks = ctx.params().block_count();
        if blocks > params().block_count() {
            return ctx.hash_password_into(password, salt, out);
        }
        if self.0.len() < blocks {
            self.0.resize(blocks, Block::default());
        }
        // Every block is written before it is read in the first pass, so leftovers from the
        // previous hash never matter.
        ctx.hash_password_into_with_memory(password, salt, out, &mut self.0[..blocks])
    }

    /// A new PHC string (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`) for `password`.
    pub fn hash(&mut self, password: &str) -> anyhow::Result<String> {
        let salt = SaltString::generate(&mut OsRng);
        let mut salt_bytes = [0u8; 64];
        let raw_salt = salt
            .decode_b64(&mut salt_bytes)
            .map_err(|e| anyhow::anyhow!("salt: {e}"))?;
        let params = params();
        let ctx = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
        let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
        self.compute(&ctx, password.as_bytes(), raw_salt, &mut out)
            .map_err(|e| anyhow::anyhow!("argon2 hash failed: {e}"))?;
        let phc = PasswordHash {
            algorithm: argon2::ARGON2ID_IDENT,
            version: Some(Version::V0x13.into()),
            params: (&params)
                .try_into()
                .map_err(|e| anyhow::anyhow!("argon2 params: {e}"))?,
            salt: Some(salt.as_salt()),
            hash: Some(Output::new(&out).map_err(|e| anyhow::anyhow!("argon2 output: {e}"))?),
        };
        Ok(phc.to_string())
    }

    /// Checks `password` against a stored PHC string with the parameters it carries (older
    /// hashes keep verifying); the comparison is constant-time (`Output`'s equality).
    fn verify_phc(&mut self, password: &str, phc: &str) -> Verified {
        let Ok(parsed) = PasswordHash::new(phc) else {
            return Verified::default();
        };
        let (Ok(algorithm), Some(expected), Some(salt)) = (
            Algorithm::try_from(parsed.algorithm),
            parsed.hash,
            parsed.salt,
        ) else {
            return Verified::default();
        };
        let version = match parsed.version.map(Version::try_from) {
            None => Version::default(),
            Some(Ok(v)) => v,
            Some(Err(_)) => return Verified::default(),
        };
        let Ok(params) = Params::try_from(&parsed) else {
            return Verified::default();
        };
        if !within_caps(&params) {
            return Verified::default();
        }
        let mut salt_bytes = [0u8; 64];
        let Ok(raw_salt) = salt.decode_b64(&mut salt_bytes) else {
            return Verified::default();
        };
        let ctx = Argon2::new(algorithm, version, params);
        let mut out = vec![0u8; expected.len()];
        let ok = self
            .compute(&ctx, password.as_bytes(), raw_salt, &mut out)
            .is_ok()
            && Output::new(&out).is_ok_and(|computed| computed == expected);
        Verified {
            ok,
            needs_rehash: ok && !current_params(&parsed),
        }
    }

    /// Checks `password` against any supported stored format; unknown formats (other Django
    /// hashers, unusable `!` passwords) never match.
    pub fn verify(&mut self, password: &str, stored: &str) -> Verified {
        if let Some(phc) = stored.strip_prefix("argon2") {
            if phc.starts_with("$argon2") {
                // Django's wrapper: always re-hashed, so every stored hash ends up in one format.
                let v = self.verify_phc(password, phc);
                return Verified {
                    ok: v.ok,
                    needs_rehash: v.ok,
                };
            }
        }
        if stored.starts_with("$argon2") {
            return self.verify_phc(password, stored);
        }
        if stored.starts_with(DJANGO_PBKDF2) {
            return verify_django_pbkdf2(password, stored);
        }
        Verified::default()
    }
}

/// Synchronous hash with the configured parameters (the hasher's dummy hash).
fn hash_blocking(password: &str) -> anyhow::Result<String> {
    Memory::default().hash(password)
}

fn within_caps(params: &Params) -> bool {
    params.m_cost() <= ARGON2_MAX_M_COST_KIB
        && params.t_cost() <= ARGON2_MAX_T_COST
        && params.p_cost() <= ARGON2_MAX_P_COST
}

/// True for the hash formats a login can check: ours and the two Django ones.
pub fn is_supported(stored: &str) -> bool {
    stored.starts_with("$argon2")
        || stored.starts_with(DJANGO_ARGON2)
        || stored.starts_with(DJANGO_PBKDF2)
}

/// A supported format whose cost parameters are beyond what this service computes
/// (`ARGON2_MAX_*`, `PBKDF2_MAX_ITERATIONS`), or cannot be read at all: such a hash never
/// verifies, so its user needs a password reset. Read from the string only; nothing is hashed.
pub fn exceeds_caps(stored: &str) -> bool {
    let phc = stored
        .strip_prefix("argon2")
        .filter(|p| p.starts_with("$argon2"));
    if let Some(phc) = phc.or(stored.starts_with("$argon2").then_some(stored)) {
        let Ok(parsed) = PasswordHash::new(phc) else {
            return true;
        };
        return [
            ("m", ARGON2_MAX_M_COST_KIB),
            ("t", ARGON2_MAX_T_COST),
            ("p", ARGON2_MAX_P_COST),
        ]
        .into_iter()
        .any(|(name, cap)| parsed.params.get_decimal(name).is_none_or(|v| v > cap));
    }
    if let Some(rest) = stored.strip_prefix(DJANGO_PBKDF2) {
        return rest
            .split('$')
            .next()
            .and_then(|n| n.parse::<u64>().ok())
            .is_some_and(|n| n > u64::from(PBKDF2_MAX_ITERATIONS));
    }
    false
}

fn current_params(parsed: &PasswordHash<'_>) -> bool {
    parsed.algorithm.as_str() == "argon2id"
        && parsed.version == Some(0x13)
        && Params::try_from(parsed)
            .is_ok_and(|p| p.m_cost() == M_COST_KIB && p.t_cost() == T_COST && p.p_cost() == P_COST)
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

/// Checks `password` against any supported stored format (see [`Memory::verify`]).
pub fn verify_blocking(password: &str, stored: &str) -> Verified {
    Memory::default().verify(password, stored)
}

impl PasswordHasher {
    /// Starts `threads` hashing threads (each keeps its own argon2 memory) behind a queue of
    /// at most `queue_depth` waiting jobs.
    pub fn new(threads: usize, queue_depth: usize) -> anyhow::Result<Self> {
        let dummy = hash_blocking("dummy password for timing equalisation")?;
        // Bounded: under a login flood the queue stops growing and callers are told to come
        // back (503) at once, instead of every request waiting longer than any client will.
        let (jobs, receiver) = mpsc::sync_channel::<Job>(queue_depth.max(1));
        let receiver = Arc::new(Mutex::new(receiver));
        let queue: SharedQueue = Arc::new(QueueDepth::default());
        for i in 0..threads.max(1) {
            let receiver = receiver.clone();
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || {
                    let mut memory = Memory::default();
                    loop {
                        // The lock is held only while waiting for the next job.
                        let job = match receiver.lock() {
                            Ok(r) => r.recv(),
                            Err(_) => return,
                        };
                        let Ok(job) = job else { return };
                        queue.waiting.fetch_sub(1, Ordering::Relaxed);
                        queue.running.fetch_add(1, Ordering::Relaxed);
                        // A panic fails this one request (its reply is dropped), not the thread.
                        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            job(&mut memory)
                        }));
                        queue.running.fetch_sub(1, Ordering::Relaxed);
                    }
                })
                .context("cannot start an argon2 thread")?;
        }
        Ok(Self {
            jobs,
            queue,
            dummy_hash: dummy.into(),
        })
    }

    /// Hashes being computed and waiting, for the metrics.
    pub fn queue(&self) -> &QueueDepth {
        &self.queue
    }

    /// Runs `work` on a hashing thread, queued behind the others. A full queue is answered at
    /// once ([`HashError::QueueFull`]); a job whose caller has gone (client disconnected, the
    /// request future dropped) by the time a thread takes it is skipped, not computed.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Memory) -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let (reply, answer) = oneshot::channel();
        let queue = self.queue.clone();
        let job: Job = Box::new(move |memory| {
            if reply.is_closed() {
                queue.abandoned.inc();
                return;
            }
            let _ = reply.send(work(memory));
        });
        // Counted before sending: a thread may take the job (and count it down) at once.
        self.queue.waiting.fetch_add(1, Ordering::Relaxed);
        match self.jobs.try_send(job) {
            Ok(()) => {}
            Err(mpsc::TrySendError::Full(_)) => {
                self.queue.waiting.fetch_sub(1, Ordering::Relaxed);
                self.queue.rejected.inc();
                return Err(HashError::QueueFull);
            }
            Err(mpsc::TrySendError::Disconnected(_)) => {
                self.queue.waiting.fetch_sub(1, Ordering::Relaxed);
                return Err(anyhow::anyhow!("the argon2 threads have stopped").into());
            }
        }
        Ok(answer.await.context("password hashing task failed")?)
    }

    pub async fn hash(&self, password: SecretString) -> Result<String, HashError> {
        Ok(self
            .run(move |memory| memory.hash(password.expose_secret()))
            .await??)
    }

    /// Verifies against `stored`, or against the dummy hash when there is no account (or the
    /// attempt is refused before its password may be checked), so every path costs one argon2
    /// computation.
    pub async fn verify(
        &self,
        password: SecretString,
        stored: Option<String>,
    ) -> Result<Verified, HashError> {
        let known = stored.is_some();
        let stored = stored.unwrap_or_else(|| self.dummy_hash.to_string());
        let verified = self
            .run(move |memory| memory.verify(password.expose_secret(), &stored))
            .await?;
        Ok(if known { verified } else { Verified::default() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hash_then_verify() {
        let hasher = PasswordHasher::new(2, 8).unwrap();
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
    fn reused_memory_agrees_with_the_argon2_crate_both_ways() {
        use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
        let mut memory = Memory::default();
        // A hash made the usual way (allocating per hash, as before the pool kept memory).
        let salt = SaltString::generate(&mut OsRng);
        let theirs = Argon2::new(Algorithm::Argon2id, Version::V0x13, params())
            .hash_password(b"73926481", &salt)
            .unwrap()
            .to_string();
        assert_eq!(
            memory.verify("73926481", &theirs),
            Verified {
                ok: true,
                needs_rehash: false
            }
        );
        assert!(!memory.verify("73926480", &theirs).ok);
        // Ours verifies with the crate's own verifier.
        let ours = memory.hash("73926481").unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(Argon2::default()
            .verify_password(b"73926481", &parsed)
            .is_ok());
        assert!(Argon2::default()
            .verify_password(b"73926480", &parsed)
            .is_err());
        // Smaller and larger `m` (the larger one on a temporary block): right answers, and
        // both ask for a re-hash to the current parameters; the kept block does not grow.
        for m in [8_192, 32_768] {
            let other = Params::new(m, 1, 1, None).unwrap();
            let old = Argon2::new(Algorithm::Argon2id, Version::V0x13, other)
                .hash_password(b"73926481", &salt)
                .unwrap()
                .to_string();
            assert_eq!(
                memory.verify("73926481", &old),
                Verified {
                    ok: true,
                    needs_rehash: true
                },
                "m={m}"
            );
            assert!(!memory.verify("73926480", &old).ok, "m={m}");
        }
        assert_eq!(memory.0.len(), params().block_count());
    }

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

    /// A Django-style argon2 hash of "73926481" with the given parameters, made by the
    /// argon2 crate (so only the caps can make it fail).
    fn django_argon2(m: u32, t: u32, p: u32) -> String {
        use argon2::password_hash::PasswordHasher as _;
        let salt = SaltString::generate(&mut OsRng);
        let params = Params::new(m, t, p, None).unwrap();
        let phc = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password(b"73926481", &salt)
            .unwrap()
            .to_string();
        format!("argon2{phc}")
    }

    #[test]
    fn argon2_parameters_at_the_caps_verify_and_beyond_them_never_do() {
        // Django's default (m=102400, p=8) is well inside.
        assert!(!exceeds_caps(DJANGO_ARGON2_58203941));
        // At the t and p caps (small m, so the test stays fast): verifies.
        let at_caps = django_argon2(8 * ARGON2_MAX_P_COST, ARGON2_MAX_T_COST, ARGON2_MAX_P_COST);
        assert!(!exceeds_caps(&at_caps));
        assert!(verify_blocking("73926481", &at_caps).ok);
        // One over on t or p: a correct password is refused without computing anything.
        for (m, t, p) in [
            (8 * 17, 1, ARGON2_MAX_P_COST + 1),
            (64, ARGON2_MAX_T_COST + 1, 1),
        ] {
            let over = django_argon2(m, t, p);
            assert!(exceeds_caps(&over), "{over}");
            assert_eq!(verify_blocking("73926481", &over), Verified::default());
            let ours = over.strip_prefix("argon2").unwrap();
            assert!(exceeds_caps(ours));
            assert_eq!(verify_blocking("73926481", ours), Verified::default());
        }
        // m beyond the cap is refused from the string alone (never allocated): 4 TiB and just
        // over 256 MiB, with any salt and output.
        for m in [
            u64::from(ARGON2_MAX_M_COST_KIB) + 1,
            u64::from(u32::MAX),
            1 << 40,
        ] {
            let hostile = format!(
                "argon2$argon2id$v=19$m={m},t=2,p=1$WVpnNGFsUzRqNndhSFhONnhDNlZFaw$JZAT5+RZknVuxof7sx1JBSLIe4DuefGCSwZPhFxgobo"
            );
            assert!(exceeds_caps(&hostile), "{hostile}");
            assert_eq!(verify_blocking("58203941", &hostile), Verified::default());
        }
        let at_m_cap = DJANGO_ARGON2_58203941.replace("m=102400", "m=262144");
        assert!(!exceeds_caps(&at_m_cap));
        // PBKDF2 beyond its iteration cap is reported the same way.
        assert!(exceeds_caps(
            "pbkdf2_sha256$4294967295$salt$ucb9on6pm75ks8PkOAzbbBrBzr1FAMCR9IUeshlJxtM="
        ));
        assert!(!exceeds_caps(DJANGO_PBKDF2_73926481));
        assert!(!exceeds_caps("!unusable"));
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
