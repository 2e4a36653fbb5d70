//! The edge Worker: routes every public path of docs/api.md, verifies access tokens with the public
//! key only, throttles with the `RateLimiter` Durable Object, runs the reset-code flow with the
//! `OtpStore` Durable Object, and forwards user-store work to the origin as signed requests.

mod body;
mod config;
mod cors;
mod flows;
mod http;
mod limiter;
mod log;
mod origin;
mod otp_store;
mod ports;
mod routes;
mod shell;
mod webcrypto;

pub use limiter::RateLimiter;
pub use otp_store::OtpStore;

use std::cell::RefCell;
use std::rc::Rc;

use shared::problem::Problem;
use worker::worker_sys::web_sys;
use worker::{event, Context, Env, Result};

use crate::config::Config;

/// Milliseconds since the epoch, from `Date.now()` (workers-rs's `Date::now()` allocates a JS
/// `Date` object per call, and this is read on the hot path).
pub(crate) fn now_ms() -> u64 {
    js_sys::Date::now() as u64
}

/// Whole seconds since the epoch (token times, signature timestamps, OTP expiry).
pub(crate) fn now_secs() -> i64 {
    (now_ms() / 1_000) as i64
}

/// A thrown JavaScript value as text: an `Error`'s message, a thrown string, or a placeholder.
pub(crate) fn js_error_text(error: &wasm_bindgen::JsValue) -> String {
    use wasm_bindgen::JsCast;
    error
        .dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| error.as_string())
        .unwrap_or_else(|| "unknown error".to_owned())
}

thread_local! {
    /// Parsed once per isolate (the JWKS, secrets and rates do not change while it lives).
    static CONFIG: RefCell<Option<Rc<Config>>> = const { RefCell::new(None) };
}

fn config(env: &Env) -> std::result::Result<Rc<Config>, config::ConfigError> {
    if let Some(config) = CONFIG.with(|c| c.borrow().clone()) {
        return Ok(config);
    }
    let lookup = |name: &str| {
        env.secret(name)
            .map(|s| s.to_string())
            .or_else(|_| env.var(name).map(|v| v.to_string()))
            .ok()
    };
    let config = Rc::new(Config::load(lookup)?);
    CONFIG.with(|c| *c.borrow_mut() = Some(config.clone()));
    Ok(config)
}

/// The shell: everything the request needs from the runtime is read here, the flows
/// (`flows::handle`) decide the answer, and the answer goes back out with its request id and
/// CORS headers. The runtime's request and response are taken and built as they are (see
/// `shell`).
#[event(fetch)]
async fn fetch(req: web_sys::Request, env: Env, ctx: Context) -> Result<web_sys::Response> {
    let started = now_ms();
    let (request, given_id) = shell::read_request(&req).await;
    let request_id = flows::request_id(given_id.as_deref(), || shell::random_hex(16));
    let origin_header = request.origin_header.as_deref();
    let config = match config(&env) {
        Ok(config) => config,
        Err(e) => {
            log::error(&request_id, "invalid configuration", &e.to_string());
            let problem = Problem::Misconfigured {
                variable: e.variable,
            };
            let reply = flows::finish(problem.into(), &request_id, None, origin_header);
            return shell::response(reply);
        }
    };
    let reply = shell::answer(&request, &env, ctx, &config, &request_id).await;
    let reply = flows::finish(reply, &request_id, Some(&config), origin_header);
    let status = reply.status;
    let response = shell::response(reply);
    if response.is_ok() && config.access_log.logs(status) {
        let took = now_ms().saturating_sub(started);
        log::answered(&request_id, &request, status, took);
    }
    response
}
