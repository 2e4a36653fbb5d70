//! In-memory ports for the flow tests: a limiter that records and answers as scripted, an
//! OTP store with the Durable Object's rules (`shared::otp::OtpRecord`), an origin that records
//! calls and answers as scripted, and a runtime with a fixed clock and code.

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::pin::{pin, Pin};
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use rand_core::RngCore;
use shared::internal::InternalRoute;
use shared::keys::VerifyingKeys;
use shared::otp::{Attempt, OtpCode, OtpRecord};
use shared::signing::Identity;
use shared::throttle::{Rate, Scope};
use shared::token::{TokenError, Unverified, Verified};

use crate::ports::{self, Limiter, Origin, OriginReply, Ports, Runtime, Unreachable, Verdict};

/// The flows' futures never wait on anything real: one poll completes them.
pub fn ready<F: Future>(future: F) -> F::Output {
    match pin!(future).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("a fake port never makes a flow wait"),
    }
}

pub const NOW: i64 = 1_700_000_000;
pub const OTP_SECRET: &[u8] = b"otp-secret-otp-secret-otp-secret";

#[derive(Default)]
pub struct FakeLimiter {
    pub calls: RefCell<Vec<(Scope, String)>>,
    /// The answer per scope (`Allowed` when absent).
    pub verdicts: RefCell<HashMap<Scope, Verdict>>,
    /// When set, a scope without a scripted verdict is decided by the real arithmetic
    /// (`shared::throttle::check`) over one history per key, at the fixed clock.
    pub counting: RefCell<bool>,
    histories: RefCell<HashMap<(Scope, String), Vec<u64>>>,
}

impl Limiter for FakeLimiter {
    async fn check(&self, scope: Scope, rate: Rate, identity: &str) -> Verdict {
        self.calls.borrow_mut().push((scope, identity.to_owned()));
        if let Some(verdict) = self.verdicts.borrow().get(&scope) {
            return *verdict;
        }
        if !*self.counting.borrow() {
            return Verdict::Allowed;
        }
        let mut histories = self.histories.borrow_mut();
        let history = histories.entry((scope, identity.to_owned())).or_default();
        match shared::throttle::check(history, rate, NOW as u64 * 1_000) {
            shared::throttle::Decision::Allowed => Verdict::Allowed,
            shared::throttle::Decision::Throttled { retry_after_secs } => {
                Verdict::Throttled(retry_after_secs)
            }
        }
    }
}

/// The `OtpStore` object's rules over a map, one record per email.
#[derive(Default)]
pub struct MemoryOtpStore {
    pub records: RefCell<HashMap<String, OtpRecord>>,
    pub down: RefCell<bool>,
}

impl MemoryOtpStore {
    fn up(&self) -> Result<(), Unreachable> {
        if *self.down.borrow() {
            Err(Unreachable("otp store down".into()))
        } else {
            Ok(())
        }
    }
}

impl ports::OtpStore for MemoryOtpStore {
    async fn issue(
        &self,
        email_key: &str,
        code: &OtpCode,
        network: &str,
    ) -> Result<bool, Unreachable> {
        self.up()?;
        let mut records = self.records.borrow_mut();
        if records
            .get(email_key)
            .is_some_and(|r| !r.replaceable_by(network, NOW))
        {
            return Ok(false);
        }
        let record = OtpRecord::issue(OTP_SECRET, email_key, code, NOW).requested_from(network);
        records.insert(email_key.to_owned(), record);
        Ok(true)
    }

    async fn accept(
        &self,
        email_key: &str,
        code: &OtpCode,
        network: &str,
    ) -> Result<bool, Unreachable> {
        self.up()?;
        let mut records = self.records.borrow_mut();
        let Some(record) = records.get_mut(email_key) else {
            return Ok(false);
        };
        Ok(record.attempt(&[OTP_SECRET], email_key, code, NOW, network) == Attempt::Accepted)
    }

    async fn reinstate(&self, email_key: &str, code: &OtpCode) -> Result<bool, Unreachable> {
        self.up()?;
        let mut records = self.records.borrow_mut();
        let Some(record) = records.get_mut(email_key) else {
            return Ok(false);
        };
        Ok(record.reinstate(&[OTP_SECRET], email_key, code, NOW))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginCall {
    pub route: InternalRoute,
    pub query: Option<String>,
    pub identity: Identity,
    pub body: Option<Vec<u8>>,
}

impl OriginCall {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(self.body.as_deref().unwrap_or_default()).unwrap()
    }
}

/// Records every call; answers each route as scripted, else 200 `{}`.
#[derive(Clone, Default)]
pub struct ScriptedOrigin {
    pub calls: Rc<RefCell<Vec<OriginCall>>>,
    pub answers: Rc<RefCell<HashMap<InternalRoute, Result<OriginReply, Unreachable>>>>,
}

impl ScriptedOrigin {
    pub fn answer(&self, route: InternalRoute, status: u16, body: &str) {
        let reply = OriginReply {
            status,
            body: body.as_bytes().to_vec(),
        };
        self.answers.borrow_mut().insert(route, Ok(reply));
    }

    pub fn unreachable(&self, route: InternalRoute) {
        let down = Unreachable("connection refused".into());
        self.answers.borrow_mut().insert(route, Err(down));
    }
}

impl Origin for ScriptedOrigin {
    async fn call(
        &self,
        route: InternalRoute,
        query: Option<&str>,
        identity: Identity,
        body: Option<&[u8]>,
    ) -> Result<OriginReply, Unreachable> {
        self.calls.borrow_mut().push(OriginCall {
            route,
            query: query.map(str::to_owned),
            identity,
            body: body.map(<[u8]>::to_vec),
        });
        self.answers
            .borrow()
            .get(&route)
            .cloned()
            .unwrap_or_else(|| {
                Ok(OriginReply {
                    status: 200,
                    body: b"{}".to_vec(),
                })
            })
    }
}

/// Draws the same number forever: a draw below 10^6 is the next code's digits.
pub struct FixedRng(pub u32);

impl RngCore for FixedRng {
    fn next_u32(&mut self) -> u32 {
        self.0
    }

    fn next_u64(&mut self) -> u64 {
        u64::from(self.0)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        dest.fill(7);
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

type Deferred = Pin<Box<dyn Future<Output = ()>>>;

#[derive(Clone, Default)]
pub struct FakeRuntime {
    /// The work handed to `after_response`, not yet run.
    pub deferred: Rc<RefCell<Vec<Deferred>>>,
    pub logs: Rc<RefCell<Vec<String>>>,
}

/// Every code the fake runtime draws.
pub const CODE: &str = "123456";

impl FakeRuntime {
    /// Runs the work scheduled after the response, as `ctx.wait_until` does.
    pub fn run_deferred(&self) {
        let tasks: Vec<Deferred> = self.deferred.borrow_mut().drain(..).collect();
        for task in tasks {
            ready(task);
        }
    }
}

impl Runtime for FakeRuntime {
    fn now(&self) -> i64 {
        NOW
    }

    fn rng(&self) -> impl RngCore {
        FixedRng(CODE.parse().unwrap())
    }

    fn after_response(&self, task: impl Future<Output = ()> + 'static) {
        self.deferred.borrow_mut().push(Box::pin(task));
    }

    fn log_error(&self, message: &str, error: &str) {
        self.logs.borrow_mut().push(format!("{message}: {error}"));
    }

    async fn check_signature<'t>(
        &self,
        keys: &VerifyingKeys,
        token: Unverified<'t>,
    ) -> Result<Verified<'t>, TokenError> {
        keys.check(token)
    }
}

#[derive(Default)]
pub struct Fakes {
    pub limiter: FakeLimiter,
    pub otp_store: MemoryOtpStore,
    pub origin: ScriptedOrigin,
    pub runtime: FakeRuntime,
}

impl Ports for Fakes {
    type Limiter = FakeLimiter;
    type OtpStore = MemoryOtpStore;
    type Origin = ScriptedOrigin;
    type Runtime = FakeRuntime;

    fn limiter(&self) -> &FakeLimiter {
        &self.limiter
    }

    fn otp_store(&self) -> &MemoryOtpStore {
        &self.otp_store
    }

    fn origin(&self) -> &ScriptedOrigin {
        &self.origin
    }

    fn runtime(&self) -> &FakeRuntime {
        &self.runtime
    }
}
