//! The Workers runtime side of a request: `worker::Request` in, [`EdgeRequest`] to the flows,
//! [`Reply`] back out as a `worker::Response`, and the ports the flows use made of the Durable
//! Object stubs, the origin's fetch client, the clock, `crypto.getRandomValues` and
//! `ctx.wait_until`. The docs pages are read from the static assets here.

use std::future::Future;
use std::rc::Rc;

use rand_core::{OsRng, RngCore};
use shared::problem::Problem;
use worker::{Context, Date, Env, Request, Response, Result, Url};

use crate::config::Config;
use crate::flows::{self, Answer};
use crate::http::{EdgeRequest, Reply, ReplyBody};
use crate::limiter::LimiterClient;
use crate::origin::OriginClient;
use crate::otp_store::OtpStoreClient;
use crate::ports::{Ports, Runtime};

pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    OsRng.fill_bytes(&mut buf);
    shared::hex::encode(&buf)
}

/// The answer to `req`; a failure of the runtime's glue is a JSON 500, never a Worker
/// exception page.
pub async fn answer(
    req: &mut Request,
    env: &Env,
    ctx: Context,
    config: &Rc<Config>,
    request_id: &str,
) -> Reply {
    match try_answer(req, env, ctx, config, request_id).await {
        Ok(reply) => reply,
        Err(e) => {
            crate::log::error(request_id, "handler failed", &e.to_string());
            Problem::ServerError.into()
        }
    }
}

async fn try_answer(
    req: &mut Request,
    env: &Env,
    ctx: Context,
    config: &Rc<Config>,
    request_id: &str,
) -> Result<Reply> {
    let url = req.url()?;
    let header = |name: &str| req.headers().get(name).ok().flatten();
    let edge_request = EdgeRequest {
        method: req.method().as_ref().to_owned(),
        path: url.path().to_owned(),
        query: url.query().map(str::to_owned),
        public_base: url.origin().ascii_serialization(),
        origin_header: header("Origin"),
        authorization: header("Authorization"),
        cf_connecting_ip: header("CF-Connecting-IP"),
        content_type: header("Content-Type"),
        body: crate::body::read(req).await,
    };
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
            client_network: flows::client_network(&edge_request, config).map(Rc::from),
        },
        runtime: WorkerRuntime {
            ctx: Rc::new(ctx),
            request_id: Rc::clone(&request_id),
        },
    };
    match flows::handle(&edge_request, config, &ports).await {
        Answer::Reply(reply) => Ok(reply),
        Answer::Asset(path) => asset(env, &url, &path).await,
    }
}

/// The reply as the runtime sends it.
pub fn response(reply: Reply) -> Result<Response> {
    let response = match reply.body {
        ReplyBody::Empty => Response::empty()?,
        ReplyBody::Json(value) => Response::from_json(&value)?,
        ReplyBody::Bytes {
            content_type,
            bytes,
        } => {
            let response = Response::from_bytes(bytes)?;
            if let Some(content_type) = content_type {
                response.headers().set("Content-Type", &content_type)?;
            }
            response
        }
    }
    .with_status(reply.status);
    let headers = response.headers();
    for (name, value) in &reply.headers {
        headers.append(name, value)?;
    }
    Ok(response)
}

/// A file from the Workers static assets (the API docs). The assets binding answers with
/// immutable headers, so the file is copied into a reply of our own (request id, CORS).
async fn asset(env: &Env, url: &Url, path: &str) -> Result<Reply> {
    let mut url = url.clone();
    url.set_path(path);
    url.set_query(None);
    let mut found = env.assets("ASSETS")?.fetch(url.to_string(), None).await?;
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
        (Date::now().as_millis() / 1_000) as i64
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
