//! Reading the request body in the shell, bounded: the flows only ever see at most the limit.

use futures_util::{Stream, StreamExt};
use shared::api::MAX_BODY_BYTES;
use worker::wasm_bindgen::JsValue;
use worker::wasm_bindgen_futures::JsFuture;
use worker::worker_sys::web_sys;
use worker::ByteStream;

use crate::http::RequestBody;

/// The body, or why there is none to parse. A declared `Content-Length` over the limit is
/// refused unread.
pub async fn read(req: &web_sys::Request, content_length: Option<String>) -> RequestBody {
    let declared: Option<usize> = content_length.and_then(|v| v.parse().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES) {
        return RequestBody::TooLarge;
    }
    let Some(stream) = req.body() else {
        return RequestBody::Read(Vec::new());
    };
    // A declared length within the limit is the message's framing (HTTP/1.1 and HTTP/2 end the
    // body there), so the body is taken in one piece, without the per-chunk stream machinery.
    // The length is checked again in case a runtime ever let the two differ.
    if declared.is_some() {
        return match whole(req.array_buffer()).await {
            Ok(bytes) => {
                if bytes.length() as usize > MAX_BODY_BYTES {
                    RequestBody::TooLarge
                } else {
                    RequestBody::Read(bytes.to_vec())
                }
            }
            Err(e) => RequestBody::Failed(crate::js_error_text(&e)),
        };
    }
    // A `Content-Length` can be absent (chunked) or lie: the body is read chunk by chunk and
    // reading stops at the first byte past the limit, so no request makes the isolate buffer
    // more than the limit plus one chunk.
    match read_bounded(ByteStream::from(stream), MAX_BODY_BYTES).await {
        Ok(Some(bytes)) => RequestBody::Read(bytes),
        Ok(None) => RequestBody::TooLarge,
        Err(e) => RequestBody::Failed(e.to_string()),
    }
}

/// A body taken in one piece (`Request` or `Response` `arrayBuffer()`), still on the JS side, so
/// the caller can check its length before copying it into Wasm memory.
pub async fn whole(
    array_buffer: Result<js_sys::Promise, JsValue>,
) -> Result<js_sys::Uint8Array, JsValue> {
    Ok(js_sys::Uint8Array::new(
        &JsFuture::from(array_buffer?).await?,
    ))
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
