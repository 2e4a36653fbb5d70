//! The `RateLimiter` Durable Object (one per `scope:identity`) and the Worker's client for it.
//! The object is a thin shell around `shared::throttle::check`: history in, decision, history out.

use serde::{Deserialize, Serialize};
use shared::throttle::{self, Decision, Rate, Scope};
use worker::{
    durable_object, Date, DurableObject, Env, Method, Request, RequestInit, Response, Result, State,
};

#[derive(Serialize, Deserialize)]
struct Ask {
    requests: u32,
    period_secs: u64,
}

#[derive(Serialize, Deserialize)]
struct Answer {
    allowed: bool,
    retry_after: u64,
}

#[durable_object]
pub struct RateLimiter {
    state: State,
}

impl DurableObject for RateLimiter {
    fn new(state: State, _env: Env) -> Self {
        Self { state }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let ask: Ask = req.json().await?;
        let rate = Rate {
            requests: ask.requests,
            period_secs: ask.period_secs,
        };
        let storage = self.state.storage();
        // Storage calls hold the object's input gate, so this read-check-write is not
        // interleaved with another request to the same key: counting is exact.
        let mut history: Vec<u64> = storage.get("history").await?.unwrap_or_default();
        let decision = throttle::check(&mut history, rate, Date::now().as_millis());
        storage.put("history", &history).await?;
        let answer = match decision {
            Decision::Allowed => Answer {
                allowed: true,
                retry_after: 0,
            },
            Decision::Throttled { retry_after_secs } => Answer {
                allowed: false,
                retry_after: retry_after_secs,
            },
        };
        Response::from_json(&answer)
    }
}

/// What the Worker does with a request after asking the limiter.
pub enum Verdict {
    Allowed,
    Throttled(u64),
    /// The limiter could not answer and the scope fails closed.
    Unavailable,
}

/// Counts one request of `identity` in `scope`.
pub async fn check(env: &Env, scope: Scope, rate: Rate, identity: &str) -> Verdict {
    match ask(env, scope, rate, identity).await {
        Ok(answer) if answer.allowed => Verdict::Allowed,
        Ok(answer) => Verdict::Throttled(answer.retry_after.max(1)),
        Err(e) => {
            crate::log::error(
                "-",
                "rate limiter unavailable",
                &format!("scope {}: {e}", scope.name()),
            );
            if scope.fails_closed() {
                Verdict::Unavailable
            } else {
                Verdict::Allowed
            }
        }
    }
}

async fn ask(env: &Env, scope: Scope, rate: Rate, identity: &str) -> Result<Answer> {
    let stub = env
        .durable_object("RATE_LIMITER")?
        .get_by_name(&format!("{}:{identity}", scope.name()))?;
    let body = serde_json::to_string(&Ask {
        requests: rate.requests,
        period_secs: rate.period_secs,
    })?;
    let mut init = RequestInit::new();
    init.with_method(Method::Post).with_body(Some(body.into()));
    let mut response = stub
        .fetch_with_request(Request::new_with_init("https://rate-limiter/check", &init)?)
        .await?;
    if response.status_code() != 200 {
        return Err(worker::Error::RustError(format!(
            "limiter answered {}",
            response.status_code()
        )));
    }
    response.json().await
}
