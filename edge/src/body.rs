//! Reading a JSON request body: media type, size and syntax are checked before any work.

use serde_json::Value;
use worker::{Request, Response, Result};

use crate::reply;

pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The parsed body and its bytes (forwarded as received), or the error response to send.
pub async fn read_json(
    req: &mut Request,
) -> Result<std::result::Result<(Value, Vec<u8>), Response>> {
    let content_type = req.headers().get("Content-Type")?.unwrap_or_default();
    if !shared::form::is_json_media_type(&content_type) {
        let detail = format!("Unsupported media type \"{content_type}\" in request.");
        return Ok(Err(reply::json(415, &shared::api::detail(&detail))?));
    }
    let declared: Option<usize> = req
        .headers()
        .get("Content-Length")?
        .and_then(|v| v.parse().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES) {
        return Ok(Err(too_large()?));
    }
    let bytes = req.bytes().await?;
    if bytes.len() > MAX_BODY_BYTES {
        return Ok(Err(too_large()?));
    }
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(value) => Ok(Ok((value, bytes))),
        Err(e) => Ok(Err(reply::bad_request(&shared::api::detail(&format!(
            "JSON parse error - {e}"
        )))?)),
    }
}

fn too_large() -> Result<Response> {
    reply::json(413, &shared::api::detail("Request body too large."))
}
