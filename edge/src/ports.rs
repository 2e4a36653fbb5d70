//! What the flows need from the world, as small traits: the Durable Object clients, the origin
//! client and the runtime implement them in the Worker (`limiter`, `otp_store`, `origin`,
//! `lib.rs`); the tests implement them with in-memory fakes (`flows::fakes`).
//!
//! `async fn` in traits without `Send` bounds: the Worker is single-threaded Wasm and nothing
//! here is ever sent to another thread.
#![allow(async_fn_in_trait)]

use std::future::Future;

use rand_core::RngCore;
use shared::internal::InternalRoute;
use shared::keys::VerifyingKeys;
use shared::otp::OtpCode;
use shared::signing::Identity;
use shared::throttle::{Rate, Scope};
use shared::token::{TokenError, Unverified, Verified};

/// The `RateLimiter` answer for one request of `identity` in `scope`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    /// Over the rate: retry after this many seconds.
    Throttled(u64),
    /// The limiter could not answer (the flow decides whether the scope fails closed).
    Unavailable,
}

pub trait Limiter {
    /// Counts one request of `identity` in `scope` at `rate`.
    async fn check(&self, scope: Scope, rate: Rate, identity: &str) -> Verdict;
}

/// A dependency that could not answer; the text is for the log only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreachable(pub String);

/// The reset codes of one email each (`OtpStore` Durable Object; rules in
/// `shared::otp::OtpRecord`).
pub trait OtpStore {
    /// Stores a fresh code asked for from `network`; false when the email's live code was asked
    /// for from another network and is kept (then nothing is to be emailed).
    async fn issue(
        &self,
        email_key: &str,
        code: &OtpCode,
        network: &str,
    ) -> Result<bool, Unreachable>;

    /// Whether `code`, presented from `network`, is the email's live code (consumed if so).
    async fn accept(
        &self,
        email_key: &str,
        code: &OtpCode,
        network: &str,
    ) -> Result<bool, Unreachable>;

    /// Makes `code`, accepted earlier, live again (its use failed).
    async fn reinstate(&self, email_key: &str, code: &OtpCode) -> Result<bool, Unreachable>;
}

/// The origin's answer to an internal call (any status below 500).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginReply {
    pub status: u16,
    pub body: Vec<u8>,
}

/// Signed calls to the origin's internal routes, for one public request (its request id and
/// client network travel with every call). Unreachable, timed out, signature refused or 5xx are
/// all `Unreachable`.
pub trait Origin {
    async fn call(
        &self,
        route: InternalRoute,
        query: Option<&str>,
        identity: Identity,
        body: Option<&[u8]>,
    ) -> Result<OriginReply, Unreachable>;
}

/// Clock, randomness, the log, and work that runs after the response is sent.
pub trait Runtime {
    /// Unix seconds.
    fn now(&self) -> i64;

    /// A CSPRNG (codes, token ids).
    fn rng(&self) -> impl RngCore;

    /// Runs `task` after the response is sent (`ctx.wait_until`): the client's answer must not
    /// wait for, or reveal, what it does.
    fn after_response(&self, task: impl Future<Output = ()> + 'static);

    /// An unexpected failure, for the operator (never a token, code or password).
    fn log_error(&self, message: &str, error: &str);

    /// Checks the signature of a token already parsed by `keys` (the platform's WebCrypto in
    /// the Worker, Rust in the tests).
    async fn check_signature<'t>(
        &self,
        keys: &VerifyingKeys,
        token: Unverified<'t>,
    ) -> Result<Verified<'t>, TokenError>;
}

/// Everything a request's flow uses, for one request. The origin client and the runtime are
/// cloned into the work that runs after the response, hence `Clone + 'static`.
pub trait Ports {
    type Limiter: Limiter;
    type OtpStore: OtpStore;
    type Origin: Origin + Clone + 'static;
    type Runtime: Runtime + Clone + 'static;

    fn limiter(&self) -> &Self::Limiter;
    fn otp_store(&self) -> &Self::OtpStore;
    fn origin(&self) -> &Self::Origin;
    fn runtime(&self) -> &Self::Runtime;
}
