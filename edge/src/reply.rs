//! Building responses: JSON bodies in DRF shapes, one helper per kind of answer.

use serde_json::Value;
use shared::api;
use worker::{Response, Result};

pub fn json(status: u16, body: &Value) -> Result<Response> {
    Ok(Response::from_json(body)?.with_status(status))
}

/// 401 with the `WWW-Authenticate` header DRF sends.
pub fn unauthorized(body: &Value) -> Result<Response> {
    let response = json(401, body)?;
    response
        .headers()
        .set("WWW-Authenticate", api::WWW_AUTHENTICATE)?;
    Ok(response)
}

pub fn throttled(retry_after_secs: u64) -> Result<Response> {
    let response = json(429, &api::throttled(retry_after_secs))?;
    response
        .headers()
        .set("Retry-After", &retry_after_secs.to_string())?;
    Ok(response)
}

pub fn unavailable() -> Result<Response> {
    json(503, &api::detail(api::DETAIL_UNAVAILABLE))
}

pub fn client_unknown() -> Result<Response> {
    json(403, &api::detail(api::DETAIL_CLIENT_UNKNOWN))
}

pub fn bad_request(body: &Value) -> Result<Response> {
    json(400, body)
}

pub fn not_found() -> Result<Response> {
    json(404, &api::detail(api::DETAIL_NOT_FOUND))
}

pub fn method_not_allowed(method: &str, allow: &str) -> Result<Response> {
    let response = json(
        405,
        &api::detail(&format!("Method \"{method}\" not allowed.")),
    )?;
    response.headers().set("Allow", allow)?;
    Ok(response)
}
