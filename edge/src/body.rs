//! Reading a JSON request body: media type, size and syntax are checked before any work.

use futures_util::{Stream, StreamExt};
use serde_json::Value;
use worker::{Request, Response, Result};

use crate::reply;

use shared::api::MAX_BODY_BYTES;

/// The parsed body and its bytes (forwarded as received), or the error response to send.
pub async fn read_json(
    req: &mut Request,
) -> Result<std::result::Result<(Value, Vec<u8>), Response>> {
    let content_type = req.headers().get("Content-Type")?.unwrap_or_default();
    if !shared::form::is_json_media_type(&content_type) {
        let detail = shared::api::unsupported_media_type_message(&content_type);
        return Ok(Err(reply::json(415, &shared::api::detail(&detail))?));
    }
    let declared: Option<usize> = req
        .headers()
        .get("Content-Length")?
        .and_then(|v| v.parse().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES) {
        return Ok(Err(too_large()?));
    }
    // A `Content-Length` can be absent (chunked) or lie: the body is read chunk by chunk and
    // reading stops at the first byte past the limit, so no request makes the isolate buffer
    // more than the limit plus one chunk.
    let bytes = if req.inner().body().is_none() {
        Vec::new()
    } else {
        match read_bounded(req.stream()?, MAX_BODY_BYTES).await? {
            Some(bytes) => bytes,
            None => return Ok(Err(too_large()?)),
        }
    };
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(value) => Ok(Ok((value, bytes))),
        Err(e) => Ok(Err(reply::bad_request(&shared::api::detail(
            &shared::api::json_parse_error_message(&e),
        ))?)),
    }
}

/// The stream's bytes, or `None` as soon as they pass `limit` (the rest is never pulled).
async fn read_bounded<S, E>(mut chunks: S, limit: usize) -> std::result::Result<Option<Vec<u8>>, E>
where
    S: Stream<Item = std::result::Result<Vec<u8>, E>> + Unpin,
{
    let mut body = Vec::new();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk?;
        if body.len() + chunk.len() > limit {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body))
}

fn too_large() -> Result<Response> {
    reply::json(413, &shared::api::detail(shared::api::DETAIL_TOO_LARGE))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};

    /// The streams here are always ready, so one poll completes the read.
    fn ready<F: Future>(future: F) -> F::Output {
        match pin!(future).poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(output) => output,
            Poll::Pending => panic!("the test stream is always ready"),
        }
    }

    #[test]
    fn reading_stops_at_the_first_chunk_past_the_limit() {
        // An endless body of 1 KiB chunks: the read must end by itself.
        let pulled = Cell::new(0usize);
        let endless = futures_util::stream::repeat_with(|| {
            pulled.set(pulled.get() + 1);
            Ok::<_, ()>(vec![b' '; 1024])
        });
        assert_eq!(ready(read_bounded(endless, MAX_BODY_BYTES)), Ok(None));
        assert_eq!(pulled.get(), MAX_BODY_BYTES / 1024 + 1);
    }

    #[test]
    fn a_body_at_the_limit_is_read_whole() {
        let chunks = futures_util::stream::iter(
            [vec![1u8; 60 * 1024], vec![2u8; 4 * 1024]].map(Ok::<_, ()>),
        );
        let body = ready(read_bounded(chunks, MAX_BODY_BYTES))
            .unwrap()
            .unwrap();
        assert_eq!(body.len(), MAX_BODY_BYTES);
        assert_eq!(body[MAX_BODY_BYTES - 1], 2);
        let one_over =
            futures_util::stream::iter([vec![0u8; MAX_BODY_BYTES], vec![0u8; 1]].map(Ok::<_, ()>));
        assert_eq!(ready(read_bounded(one_over, MAX_BODY_BYTES)), Ok(None));
    }

    #[test]
    fn a_stream_error_is_passed_on() {
        let failing = futures_util::stream::iter([Ok(vec![0u8; 10]), Err("reset")]);
        assert_eq!(ready(read_bounded(failing, MAX_BODY_BYTES)), Err("reset"));
    }
}
