//! The `RateLimiter` Durable Object (one per `scope:identity`) and the Worker's client for it.
//! The object is a thin shell around `shared::throttle::check` (exact scopes) and
//! `shared::lease::grant` (leased scopes): history in, decision, history out. The call is a
//! bodiless GET (`?requests=N&period_secs=S[&lease=true]`) answered by a bodiless status (204
//! allowed, with `Lease-Permits` for a lease; 429 with `Retry-After` and `Retry-After-Ms`):
//! request and response bodies are streams, and reading them through workers-rs was a large
//! part of the call's CPU.
//!
//! The high-volume scopes (`anon`, `user`) are leased: the client keeps each isolate's leases
//! and remembered refusals (`shared::lease::Leases`), so most of their requests make no call.
//!
//! An object deletes its storage with an alarm once its last allowed request has left the
//! window (`throttle::cleanup_alarm`): one object per client address and per account would
//! otherwise be kept, and billed, forever.

use std::cell::{Cell, RefCell};

use serde::Deserialize;
use shared::lease::{self, Leases, Local};
use shared::throttle::{self, Decision, Rate, Scope};
use worker::js_sys::Uint8Array;
use worker::wasm_bindgen::JsCast;
use worker::wasm_bindgen_futures::JsFuture;
use worker::{
    durable_object, DurableObject, Env, Error, Request, Response, Result, State, Storage,
};

use crate::ports::{Limiter, Verdict};

/// The storage key of the history: `throttle::encode_history`'s bytes.
const HISTORY: &str = "history";
/// A lease's permit count, on a 204.
const LEASE_PERMITS: &str = "Lease-Permits";
/// A refusal's wait to the millisecond, on a 429 (the isolate remembers the refusal that long).
const RETRY_AFTER_MS: &str = "Retry-After-Ms";

#[derive(Deserialize)]
struct Ask {
    requests: u32,
    period_secs: u64,
    #[serde(default)]
    lease: bool,
}

/// The object's answer: permits granted (1 for an exact check), or the wait in ms.
type Answer = std::result::Result<u32, u64>;

#[durable_object]
pub struct RateLimiter {
    state: State,
    /// The history, read from storage by the object's first request. An object has exactly
    /// one live instance, so while it lives this copy is the truth and storage is only
    /// written, never read again: reading (and converting) the whole log on every request
    /// was most of the limiter's CPU on a busy key.
    history: RefCell<Option<Vec<u64>>>,
    /// The clean-up alarm this instance scheduled, if any (ms since the epoch). After an
    /// eviction it is unknown (`None`), and the first allowed request schedules it again.
    alarm_at: Cell<Option<u64>>,
}

impl DurableObject for RateLimiter {
    fn new(state: State, _env: Env) -> Self {
        Self {
            state,
            history: RefCell::new(None),
            alarm_at: Cell::new(None),
        }
    }

    async fn fetch(&self, req: Request) -> Result<Response> {
        let ask: Ask = req.query()?;
        let rate = Rate {
            requests: ask.requests,
            period_secs: ask.period_secs,
        };
        let storage = self.state.storage();
        if self.history.borrow().is_none() {
            // A storage read closes the object's input gate: no other request runs until it
            // completes, so no request can slip in between the load and the check.
            let stored = load(&storage).await?;
            self.history.borrow_mut().get_or_insert(stored);
        }
        // Check and record synchronously (no await while borrowed), so counting is exact even
        // when the next request arrives while this one's write is in flight.
        let now = crate::now_ms();
        let (answer, changed) = {
            let mut history = self.history.borrow_mut();
            let history = history.get_or_insert_with(Vec::new);
            let answer: Answer = if ask.lease {
                lease::grant(history, rate, now)
            } else {
                match throttle::check(history, rate, now) {
                    Decision::Allowed => Ok(1),
                    Decision::Throttled { retry_after_secs } => Err(retry_after_secs * 1_000),
                }
            };
            let changed = answer.is_ok().then(|| throttle::encode_history(history));
            (answer, changed)
        };
        // A refusal records nothing (expired entries are dropped again on the next load), so
        // only a grant writes: once per lease on the leased scopes. The response waits for the
        // writes (output gate).
        if let Some(bytes) = changed {
            storage
                .put_raw(HISTORY, Uint8Array::new_from_slice(&bytes))
                .await?;
            if let Some(at) = throttle::cleanup_alarm(self.alarm_at.get(), rate, now) {
                storage.set_alarm((at - now) as i64).await?;
                self.alarm_at.set(Some(at));
            }
        }
        match answer {
            Ok(permits) => {
                let response = Response::empty()?.with_status(204);
                if ask.lease {
                    response
                        .headers()
                        .set(LEASE_PERMITS, &permits.to_string())?;
                }
                Ok(response)
            }
            Err(wait_ms) => {
                let response = Response::empty()?.with_status(429);
                let headers = response.headers();
                headers.set(
                    "Retry-After",
                    &throttle::retry_after_secs(wait_ms).to_string(),
                )?;
                headers.set(RETRY_AFTER_MS, &wait_ms.to_string())?;
                Ok(response)
            }
        }
    }

    /// The clean-up alarm: it was last moved to at least one window after the newest allowed
    /// request (a later one would have moved it again), so every entry has left the window and
    /// the object forgets the key. (A scope's period lengthened by a redeploy can make a key
    /// that has had no allowed request since forget early, admitting up to one more rate's worth.)
    async fn alarm(&self) -> Result<Response> {
        self.state.storage().delete_all().await?;
        *self.history.borrow_mut() = Some(Vec::new());
        self.alarm_at.set(None);
        Response::empty()
    }
}

/// The stored history, or an empty one for a new object.
async fn load(storage: &Storage) -> Result<Vec<u64>> {
    let value = JsFuture::from(storage.as_raw().get(HISTORY)?).await?;
    if value.is_undefined() {
        return Ok(Vec::new());
    }
    let bytes = value
        .dyn_ref::<Uint8Array>()
        .ok_or_else(|| Error::RustError("stored throttle history is not bytes".into()))?;
    throttle::decode_history(&bytes.to_vec())
        .ok_or_else(|| Error::RustError("stored throttle history is torn".into()))
}

thread_local! {
    /// This isolate's leases and remembered refusals of the leased scopes (an isolate is
    /// single-threaded; what it holds lives as long as it does).
    static LEASES: RefCell<Leases> = RefCell::new(Leases::default());
}

/// The Worker's client of the `RateLimiter` objects, for one request.
pub struct LimiterClient<'a> {
    pub env: &'a Env,
    pub request_id: &'a str,
}

impl Limiter for LimiterClient<'_> {
    async fn check(&self, scope: Scope, rate: Rate, identity: &str) -> Verdict {
        let key = format!("{}:{identity}", scope.name());
        let leased = scope.leased();
        if leased {
            let now = crate::now_ms();
            match LEASES.with_borrow_mut(|leases| leases.spend(&key, now)) {
                Local::Allowed => return Verdict::Allowed,
                Local::Throttled(secs) => return Verdict::Throttled(secs),
                Local::Ask => {}
            }
        }
        match ask(self.env, &key, rate, leased).await {
            Ok(answer) => {
                if leased {
                    let now = crate::now_ms();
                    LEASES.with_borrow_mut(|leases| match answer {
                        Ok(permits) => leases.granted(&key, permits, rate, now),
                        Err(wait_ms) => leases.refused(&key, wait_ms, now),
                    });
                }
                match answer {
                    Ok(_) => Verdict::Allowed,
                    Err(wait_ms) => Verdict::Throttled(throttle::retry_after_secs(wait_ms)),
                }
            }
            Err(e) => {
                crate::log::error(
                    self.request_id,
                    "rate limiter unavailable",
                    &format!("scope {}: {e}", scope.name()),
                );
                Verdict::Unavailable
            }
        }
    }
}

async fn ask(env: &Env, key: &str, rate: Rate, lease: bool) -> Result<Answer> {
    let stub = env.durable_object("RATE_LIMITER")?.get_by_name(key)?;
    let url = format!(
        "https://rate-limiter/check?requests={}&period_secs={}{}",
        rate.requests,
        rate.period_secs,
        if lease { "&lease=true" } else { "" }
    );
    let response = stub.fetch_with_str(&url).await?;
    let header = |name: &str| -> Result<Option<u64>> {
        Ok(response.headers().get(name)?.and_then(|v| v.parse().ok()))
    };
    match response.status_code() {
        204 => Ok(Ok(header(LEASE_PERMITS)?.unwrap_or(1) as u32)),
        429 => Ok(Err(match header(RETRY_AFTER_MS)? {
            Some(ms) => ms,
            None => header("Retry-After")?.unwrap_or(1) * 1_000,
        })),
        other => Err(worker::Error::RustError(format!(
            "limiter answered {other}"
        ))),
    }
}
