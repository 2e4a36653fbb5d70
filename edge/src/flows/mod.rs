//! The request flows, as plain Rust over the traits of `ports`: route, authenticate, throttle,
//! validate, then answer here or forward to the origin. One module per route group; a flow
//! returns its answer or the `Problem` that is answered instead.

mod forward;
mod input;
mod reset;
mod user;
mod verify;

#[cfg(test)]
mod fakes;
#[cfg(test)]
mod tests;

use std::borrow::Cow;

use shared::client;
use shared::internal::InternalRoute;
use shared::problem::Problem;
use shared::signing::Identity;

use crate::config::Config;
use crate::cors;
use crate::http::{EdgeRequest, Reply, ReplyBody};
use crate::ports::{Limiter, Origin, OriginReply, Ports, Runtime, Verdict};
use crate::routes::{self, resolve, Miss, Row, Who};

/// Who is counted now, with their key (`routes::Who`).
#[derive(Clone, Copy)]
enum Counted<'a> {
    Client,
    User(&'a str),
    Email(&'a str),
}

impl Counted<'_> {
    fn who(self) -> Who {
        match self {
            Self::Client => Who::Client,
            Self::User(_) => Who::User,
            Self::Email(_) => Who::Email,
        }
    }
}

/// What the shell sends: a reply, or a file of the static assets (the API docs), which only
/// the runtime can read.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    Reply(Reply),
    Asset(String),
}

/// One public request being answered.
struct Flow<'a, P: Ports> {
    req: &'a EdgeRequest,
    config: &'a Config,
    ports: &'a P,
    /// The route's row of `routes::ROUTES`: its throttle checks and what it forwards.
    row: &'static Row,
    /// The client's network for anonymous throttling (`shared::client::network_key`) from
    /// Cloudflare's `CF-Connecting-IP`, never `X-Forwarded-For` (which the client controls);
    /// `None` when the request did not come through Cloudflare.
    client: Option<String>,
}

type Answered = Result<Reply, Problem>;

pub async fn handle<P: Ports>(req: &EdgeRequest, config: &Config, ports: &P) -> Answer {
    if req.method == "OPTIONS" {
        return Answer::Reply(preflight(req, config));
    }
    let row = match resolve(&req.method, &req.path) {
        Ok(row) => row,
        Err(Miss::NotFound) => return Answer::Reply(Problem::NotFound.into()),
        Err(Miss::MethodNotAllowed { allow }) => {
            let method = req.method.clone();
            return Answer::Reply(Problem::MethodNotAllowed { method, allow }.into());
        }
    };
    let flow = Flow {
        req,
        config,
        ports,
        row,
        client: client_network(req, config),
    };
    let answered = match row.answer {
        routes::Answer::Asset(path) => return Answer::Asset(path.to_owned()),
        routes::Answer::Docs(path) => {
            return Answer::Asset(path.unwrap_or(req.path.as_str()).to_owned())
        }
        routes::Answer::Jwks => flow.jwks(),
        routes::Answer::Health => Ok(health()),
        routes::Answer::Verify => flow.verify().await,
        routes::Answer::Forward(to) => flow.forward(to).await,
        routes::Answer::User { to, body } => flow.user(to, body).await,
        routes::Answer::ResetRequest => flow.reset_request().await,
        routes::Answer::ResetVerifyOtp => flow.reset_verify_otp().await,
        routes::Answer::ResetConfirm => flow.reset_confirm().await,
        routes::Answer::ResendActivation => flow.resend_activation().await,
    };
    Answer::Reply(answered.unwrap_or_else(Reply::from))
}

/// The client's network as throttles and the origin key it, from `CF-Connecting-IP`.
pub fn client_network(req: &EdgeRequest, config: &Config) -> Option<String> {
    req.cf_connecting_ip
        .as_deref()
        .and_then(|raw| client::network_key(raw, config.ipv6_prefix))
}

/// The release and the commit this Worker was built from, as `x-auth-api-version` carries them
/// (semantic-version build metadata: `0.2.0+1a2b3c4d5e6f`).
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "+", env!("EDGE_GIT_COMMIT"));

/// `GET /healthz`: answered here (never the origin's), so a monitor sees which Worker is live.
fn health() -> Reply {
    Reply::json(
        200,
        serde_json::json!({
            "status": "ok",
            "version": env!("CARGO_PKG_VERSION"),
            "commit": env!("EDGE_GIT_COMMIT"),
        }),
    )
    .with_header("x-auth-api-version", VERSION)
}

impl<P: Ports> Flow<'_, P> {
    /// The public keys, as serialised when the configuration was read.
    fn jwks(&self) -> Answered {
        Ok(Reply {
            status: 200,
            headers: Vec::new(),
            body: ReplyBody::Bytes {
                content_type: Some("application/json".to_owned()),
                bytes: self.config.jwks_body.clone(),
            },
        })
    }

    /// Counts the request in each of the route's scopes that count `who`
    /// (`throttles::checks`). The first refusal answers.
    async fn throttle(&self, who: Counted<'_>) -> Result<(), Problem> {
        for &(scope, _) in self.row.checks.iter().filter(|(_, w)| *w == who.who()) {
            // A scope configured `none` is not throttled: no limiter call.
            let Some(rate) = self.config.rates.get(scope) else {
                continue;
            };
            let identity = match who {
                Counted::Client => client::throttle_identity(self.client.as_deref(), scope)
                    .map_err(|client::UnknownClient| Problem::ClientUnknown)?,
                Counted::User(key) | Counted::Email(key) => Cow::Borrowed(key),
            };
            match self.ports.limiter().check(scope, rate, &identity).await {
                Verdict::Allowed => {}
                Verdict::Throttled(wait) => {
                    if scope.shared_budget() {
                        // Many clients share this budget: spending it is an attack (or a limit
                        // set too low), which the operator must see.
                        self.ports.runtime().log_error(
                            "throttle budget spent",
                            &format!("{} {identity} {rate}", scope.name()),
                        );
                    }
                    return Err(Problem::Throttled {
                        wait_secs: wait.max(1),
                    });
                }
                // The scopes that guard credentials and reset codes fail closed; the others
                // let the request through rather than take the API down with the limiter.
                Verdict::Unavailable if scope.fails_closed() => return Err(Problem::Unavailable),
                Verdict::Unavailable => {}
            }
        }
        Ok(())
    }

    /// Calls the origin and passes its answer on; an unreachable origin is a 503.
    async fn origin(
        &self,
        route: InternalRoute,
        query: Option<&str>,
        identity: Identity,
        body: Option<&[u8]>,
    ) -> Answered {
        match self.ports.origin().call(route, query, identity, body).await {
            Ok(reply) => Ok(relay(reply)),
            Err(e) => {
                self.ports.runtime().log_error("origin unavailable", &e.0);
                Err(Problem::Unavailable)
            }
        }
    }

    /// A failure the client cannot fix: logged with its cause, answered 500 without it.
    fn server_error(&self, message: &str, error: &str) -> Problem {
        self.ports.runtime().log_error(message, error);
        Problem::ServerError
    }
}

/// The origin's answer as it is (its bodies are already in the public shapes).
fn relay(origin: OriginReply) -> Reply {
    let reply = if origin.body.is_empty() {
        Reply::empty(origin.status)
    } else {
        Reply {
            status: origin.status,
            headers: Vec::new(),
            body: ReplyBody::Bytes {
                content_type: Some("application/json".to_owned()),
                bytes: origin.body,
            },
        }
    };
    if reply.status == 401 {
        reply.with_header("WWW-Authenticate", shared::api::WWW_AUTHENTICATE)
    } else {
        reply
    }
}

/// CORS preflight, answered here without touching the origin.
fn preflight(req: &EdgeRequest, config: &Config) -> Reply {
    let allowed = req
        .origin_header
        .as_deref()
        .and_then(|o| config.cors.allow(o));
    let path = req.path.as_str();
    let allow = match resolve("GET", path).or_else(|_| resolve("POST", path)) {
        Ok(_) | Err(Miss::MethodNotAllowed { .. }) => match resolve("OPTIONS", path) {
            Err(Miss::MethodNotAllowed { allow }) => allow,
            _ => "GET, OPTIONS",
        },
        Err(Miss::NotFound) => return Problem::NotFound.into(),
    };
    let reply = Reply::empty(204).with_header("Allow", allow);
    if allowed.is_none() {
        return reply;
    }
    reply
        .with_header("Access-Control-Allow-Methods", allow)
        .with_header("Access-Control-Allow-Headers", cors::ALLOW_HEADERS)
        .with_header("Access-Control-Max-Age", cors::MAX_AGE_SECS)
}

/// The client's `X-Request-Id` when well-formed (1–64 of `[A-Za-z0-9._-]`), else a new one.
pub fn request_id(given: Option<&str>, new: impl FnOnce() -> String) -> String {
    given
        .filter(|id| {
            (1..=64).contains(&id.len())
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        })
        .map_or_else(new, str::to_owned)
}

/// Adds the request id and CORS headers to every answer.
pub fn finish(
    reply: Reply,
    request_id: &str,
    config: Option<&Config>,
    origin_header: Option<&str>,
) -> Reply {
    let reply = reply.with_header("X-Request-Id", request_id);
    let allowed = config
        .zip(origin_header)
        .and_then(|(config, origin)| config.cors.allow(origin));
    match allowed {
        Some(allowed) => reply
            .with_header("Access-Control-Allow-Origin", allowed)
            .with_header("Access-Control-Expose-Headers", cors::EXPOSE_HEADERS)
            .with_header("Vary", "Origin"),
        None => reply,
    }
}
