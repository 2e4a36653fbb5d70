//! The Workers runtime side of a request: the runtime's own `Request` in (no workers-rs
//! conversion: it would read `cf` and parse the path on every request), [`EdgeRequest`] to the
//! flows, [`Reply`] back out as the runtime's `Response` built in one constructor call, and the
//! ports the flows use made of the Durable
//! Object stubs, the origin's fetch client, the clock, `crypto.getRandomValues` and
//! `ctx.wait_until`. The docs pages are read from the static assets here.

use std::future::Future;
use std::rc::Rc;

use rand_core::{OsRng, RngCore};
use shared::keys::VerifyingKeys;
use shared::problem::Problem;
use shared::token::{TokenError, Unverified, Verified};
use worker::worker_sys::web_sys;
use worker::{Context, Env, Result};

use crate::config::Config;
use crate::flows::{self, Answer};
use crate::http::{EdgeRequest, Reply, ReplyBody, RequestBody};
use crate::limiter::LimiterClient;
use crate::origin::OriginClient;
use crate::otp_store::OtpStoreClient;
use crate::ports::{Ports, Runtime};

pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    OsRng.fill_bytes(&mut buf);
    shared::hex::encode(&buf)
}

/// What the flows read of `req`, from one read of its URL and headers, and the client's
/// `X-Request-Id` if it sent one.
pub async fn read_request(req: &web_sys::Request) -> (EdgeRequest, Option<String>) {
    let url = req.url();
    let (public_base, path, query) = split_url(&url);
    let headers = req.headers();
    let header = |name: &str| headers.get(name).ok().flatten();
    let request = EdgeRequest {
        method: req.method(),
        path: path.to_owned(),
        query: query.map(str::to_owned),
        public_base: public_base.to_owned(),
        origin_header: header("Origin"),
        authorization: header("Authorization"),
        cf_connecting_ip: header("CF-Connecting-IP"),
        user_agent: header("User-Agent"),
        content_type: header("Content-Type"),
        body: RequestBody::Read(Vec::new()),
    };
    let given_id = header("X-Request-Id");
    let body = crate::body::read(req, header("Content-Length")).await;
    (EdgeRequest { body, ..request }, given_id)
}

/// Origin, path and query of a URL the runtime serialized (WHATWG, so already normalised: the
/// same parts the `url` crate would give, without parsing it again).
fn split_url(url: &str) -> (&str, &str, Option<&str>) {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    let path_start = url[after_scheme..]
        .find('/')
        .map_or(url.len(), |i| after_scheme + i);
    let (origin, rest) = url.split_at(path_start);
    let rest = rest.split_once('#').map_or(rest, |(before, _)| before);
    let (path, query) = match rest.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (rest, None),
    };
    (origin, if path.is_empty() { "/" } else { path }, query)
}

/// The answer to `request`; a failure of the runtime's glue is a JSON 500, never a Worker
/// exception page.
pub async fn answer(
    request: &EdgeRequest,
    env: &Env,
    ctx: Context,
    config: &Rc<Config>,
    request_id: &str,
) -> Reply {
    match try_answer(request, env, ctx, config, request_id).await {
        Ok(reply) => reply,
        Err(e) => {
            crate::log::error(request_id, "handler failed", &e.to_string());
            Problem::ServerError.into()
        }
    }
}

async fn try_answer(
    edge_request: &EdgeRequest,
    env: &Env,
    ctx: Context,
    config: &Rc<Config>,
    request_id: &str,
) -> Result<Reply> {
    let request_id: Rc<str> = request_id.into();
    let ports = WorkerPorts {
        limiter: LimiterClient {
            env,
            request_id: &request_id,
        },
        otp_store: OtpStoreClient { env },
        origin: OriginClient {
            config: Rc::clone(config),
            request_id: Rc::clone(&request_id),
            client_network: flows::client_network(edge_request, config).map(Rc::from),
            user_agent: edge_request.user_agent.as_deref().map(Rc::from),
        },
        runtime: WorkerRuntime {
            ctx: Rc::new(ctx),
            request_id: Rc::clone(&request_id),
        },
    };
    match flows::handle(edge_request, config, &ports).await {
        Answer::Reply(reply) => Ok(reply),
        Answer::Asset(path) => asset(env, &edge_request.public_base, &path).await,
    }
}

/// The reply as the runtime sends it: one `Headers`, one `ResponseInit`, one constructor call.
pub fn response(reply: Reply) -> Result<web_sys::Response> {
    let headers = web_sys::Headers::new()?;
    let mut body = match reply.body {
        ReplyBody::Empty => None,
        ReplyBody::Json(value) => {
            headers.set("Content-Type", "application/json")?;
            Some(serde_json::to_vec(&value)?)
        }
        ReplyBody::Bytes {
            content_type,
            bytes,
        } => {
            if let Some(content_type) = content_type {
                headers.set("Content-Type", &content_type)?;
            }
            Some(bytes)
        }
    };
    for (name, value) in &reply.headers {
        headers.append(name, value)?;
    }
    let init = web_sys::ResponseInit::new();
    init.set_status(reply.status);
    init.set_headers_headers(&headers);
    Ok(web_sys::Response::new_with_opt_u8_array_and_init(
        body.as_deref_mut(),
        &init,
    )?)
}

/// A file from the Workers static assets (the API docs). The assets binding answers with
/// immutable headers, so the file is copied into a reply of our own (request id, CORS).
async fn asset(env: &Env, public_base: &str, path: &str) -> Result<Reply> {
    let url = format!("{public_base}{path}");
    let mut found = env.assets("ASSETS")?.fetch(url, None).await?;
    if found.status_code() != 200 {
        return Ok(Problem::NotFound.into());
    }
    let content_type = found.headers().get("Content-Type")?;
    Ok(Reply {
        status: 200,
        headers: Vec::new(),
        body: ReplyBody::Bytes {
            content_type,
            bytes: found.bytes().await?,
        },
    })
}

/// Clock, randomness, log and `wait_until` of one request.
#[derive(Clone)]
struct WorkerRuntime {
    ctx: Rc<Context>,
    request_id: Rc<str>,
}

impl Runtime for WorkerRuntime {
    fn now(&self) -> i64 {
        crate::now_secs()
    }

    fn rng(&self) -> impl RngCore {
        OsRng
    }

    fn after_response(&self, task: impl Future<Output = ()> + 'static) {
        self.ctx.wait_until(task);
    }

    fn log_error(&self, message: &str, error: &str) {
        crate::log::error(&self.request_id, message, error);
    }

    async fn check_signature<'t>(
        &self,
        keys: &VerifyingKeys,
        token: Unverified<'t>,
    ) -> std::result::Result<Verified<'t>, TokenError> {
        crate::webcrypto::check(keys, token, &self.request_id).await
    }
}

struct WorkerPorts<'a> {
    limiter: LimiterClient<'a>,
    otp_store: OtpStoreClient<'a>,
    origin: OriginClient,
    runtime: WorkerRuntime,
}

impl<'a> Ports for WorkerPorts<'a> {
    type Limiter = LimiterClient<'a>;
    type OtpStore = OtpStoreClient<'a>;
    type Origin = OriginClient;
    type Runtime = WorkerRuntime;

    fn limiter(&self) -> &Self::Limiter {
        &self.limiter
    }

    fn otp_store(&self) -> &Self::OtpStore {
        &self.otp_store
    }

    fn origin(&self) -> &Self::Origin {
        &self.origin
    }

    fn runtime(&self) -> &Self::Runtime {
        &self.runtime
    }
}

#[cfg(test)]
mod tests {
    use super::split_url;

    #[test]
    fn urls_split_as_the_url_crate_splits_them() {
        for url in [
            "https://api.example.com/api/auth/me/",
            "http://127.0.0.1:8787/api/auth/users/?page=2&x=%20y",
            "https://api.example.com",
            "https://api.example.com/?",
            "https://api.example.com/a?b#frag",
            "http://[::1]:8787/docs/",
        ] {
            let parsed = worker::Url::parse(url).unwrap();
            let expected_base = parsed.origin().ascii_serialization();
            assert_eq!(
                split_url(parsed.as_str()),
                (expected_base.as_str(), parsed.path(), parsed.query()),
                "{url}"
            );
        }
    }
}
