//! The `RateLimiter` Durable Object (one per `scope:identity`) and the Worker's client for it.
//! The object is a thin shell around `shared::throttle::check`: history in, decision, history out.
//! The call is a bodiless GET (`?requests=N&period_secs=S`) answered by a bodiless status (204
//! allowed, 429 with `Retry-After`): request and response bodies are streams, and reading them
//! through workers-rs was a large part of the call's CPU.

use serde::Deserialize;
use shared::throttle::{self, Decision, Rate, Scope};
use worker::{durable_object, Date, DurableObject, Env, Request, Response, Result, State};

#[derive(Deserialize)]
struct Ask {
    requests: u32,
    period_secs: u64,
}

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

    async fn fetch(&self, req: Request) -> Result<Response> {
        let ask: Ask = req.query()?;
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
        match decision {
            Decision::Allowed => Ok(Response::empty()?.with_status(204)),
            Decision::Throttled { retry_after_secs } => {
                let response = Response::empty()?.with_status(429);
                response
                    .headers()
                    .set("Retry-After", &retry_after_secs.to_string())?;
                Ok(response)
            }
        }
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
    let url = format!(
        "https://rate-limiter/check?requests={}&period_secs={}",
        rate.requests, rate.period_secs
    );
    let response = stub.fetch_with_str(&url).await?;
    match response.status_code() {
        204 => Ok(Answer {
            allowed: true,
            retry_after: 0,
        }),
        429 => Ok(Answer {
            allowed: false,
            retry_after: response
                .headers()
                .get("Retry-After")?
                .and_then(|v| v.parse().ok())
                .unwrap_or(1),
        }),
        other => Err(worker::Error::RustError(format!(
            "limiter answered {other}"
        ))),
    }
}
