//! Calls to the origin: signed (see `shared::signing`), bounded in time, and any failure or
//! 3xx or 5xx turned into one `Unreachable` the flow answers with 503.

use std::pin::pin;
use std::rc::Rc;

use futures_util::future::{select, Either};
use shared::internal::{InternalMethod, InternalRoute};
use shared::signing::{
    client_agent, is_valid_client_network, Identity, SignedParts, HEADER_CLIENT_AGENT,
    HEADER_CLIENT_NETWORK, HEADER_IDENTITY, HEADER_SIGNATURE, HEADER_SIGNATURE_REFUSED,
    HEADER_SIGNATURE_VERSION, HEADER_TIMESTAMP,
};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use worker::worker_sys::web_sys;
use worker::Delay;

use crate::config::Config;
use crate::ports::{Origin, OriginReply, Unreachable};

/// The Worker's client of the origin, for one public request: its request id and client
/// network travel with every call, its agent with a login (`InternalRoute::keeps_client_agent`).
#[derive(Clone)]
pub struct OriginClient {
    pub config: Rc<Config>,
    pub request_id: Rc<str>,
    pub client_network: Option<Rc<str>>,
    /// The `User-Agent` as received; made fit (`shared::signing::client_agent`) only for a
    /// route that keeps it.
    pub user_agent: Option<Rc<str>>,
}

impl Origin for OriginClient {
    async fn call(
        &self,
        route: InternalRoute,
        query: Option<&str>,
        identity: Identity,
        body: Option<&[u8]>,
    ) -> Result<OriginReply, Unreachable> {
        call(
            &self.config,
            route,
            query,
            identity,
            body,
            &self.request_id,
            Client {
                network: self.client_network.as_deref(),
                agent: self.user_agent.as_deref(),
            },
        )
        .await
    }
}

/// Who the public request came from, as the edge saw it.
struct Client<'a> {
    /// The caller's network as the edge keys it (the origin's login back-off is per network).
    network: Option<&'a str>,
    /// Its `User-Agent` as received (a new session keeps it).
    agent: Option<&'a str>,
}

/// The client's network and agent are signed with the rest. A value the origin would refuse
/// (e.g. no `CF-Connecting-IP`) travels as `""`, "unknown", rather than failing the request.
async fn call(
    config: &Config,
    route: InternalRoute,
    query: Option<&str>,
    identity: Identity,
    body: Option<&[u8]>,
    request_id: &str,
    client: Client<'_>,
) -> Result<OriginReply, Unreachable> {
    let method = match route.method() {
        InternalMethod::Get => "GET",
        InternalMethod::Post => "POST",
        InternalMethod::Patch => "PATCH",
        InternalMethod::Delete => "DELETE",
    };
    let path_and_query = route.path_and_query(query);
    let path_and_query = path_and_query.as_str();
    let timestamp = crate::now_secs();
    let bytes = body.unwrap_or_default();
    let client_network = client
        .network
        .filter(|n| is_valid_client_network(n))
        .unwrap_or("");
    let client_agent = match client.agent {
        Some(agent) if route.keeps_client_agent() => client_agent(agent),
        _ => String::new(),
    };
    let signature = config.signer.sign(&SignedParts {
        method,
        path_and_query,
        timestamp,
        identity,
        body: bytes,
        client_network,
        client_agent: &client_agent,
    });
    // The path only: a query string can carry what a client typed, and logs keep no input.
    let path = route.path_and_query(None);
    let fail = |what: &str| Unreachable(format!("origin {method} {path}: {what}"));
    let js_fail = |e: JsValue| fail(&crate::js_error_text(&e));
    // The runtime's own request, response and fetch (no workers-rs wrappers): the wrappers read
    // `cf` and copy the response body chunk by chunk through a stream, per call.
    let headers = web_sys::Headers::new().map_err(js_fail)?;
    let set = |name: &str, value: &str| headers.set(name, value).map_err(js_fail);
    set(HEADER_TIMESTAMP, &timestamp.to_string())?;
    set(HEADER_IDENTITY, &identity.to_header())?;
    set(HEADER_SIGNATURE, &signature)?;
    set(HEADER_SIGNATURE_VERSION, config.signer.version().as_str())?;
    set(HEADER_CLIENT_NETWORK, client_network)?;
    if !client_agent.is_empty() {
        set(HEADER_CLIENT_AGENT, &client_agent)?;
    }
    set("X-Request-Id", request_id)?;
    let init = web_sys::RequestInit::new();
    init.set_method(method);
    if body.is_some() {
        set("Content-Type", "application/json")?;
        init.set_body(&js_sys::Uint8Array::from(bytes));
    }
    init.set_headers(&headers);
    // Never follow a redirect: it would resend the signed headers, and the passwords in the
    // body, to wherever the answer points. The origin never redirects; a 3xx is a fault.
    init.set_redirect(web_sys::RequestRedirect::Manual);
    let controller = web_sys::AbortController::new().map_err(js_fail)?;
    init.set_signal(Some(&controller.signal()));
    let url = format!("{}{path_and_query}", config.origin_url);
    let global: web_sys::WorkerGlobalScope = js_sys::global().unchecked_into();
    // The answer's body is read within the same timeout as its headers: an origin (or a proxy
    // before it) that sends headers and then stalls must not hold the request.
    let exchange = async {
        let response: web_sys::Response =
            JsFuture::from(global.fetch_with_str_and_init(&url, &init))
                .await?
                .unchecked_into();
        let refused = response
            .headers()
            .has(HEADER_SIGNATURE_REFUSED)
            .unwrap_or(false);
        let body = crate::body::whole(response.array_buffer()).await?;
        Ok::<_, JsValue>((response.status(), refused, body))
    };
    let timeout = Delay::from(std::time::Duration::from_millis(config.origin_timeout_ms));
    let (status, refused, body) = match select(pin!(exchange), timeout).await {
        Either::Left((Ok(answer), _)) => answer,
        Either::Left((Err(e), _)) => return Err(js_fail(e)),
        Either::Right(((), _)) => {
            controller.abort();
            return Err(fail("timed out"));
        }
    };
    if refused {
        // Not the client's fault: the two sides disagree on ORIGIN_SIGNING_SECRET, or a clock
        // is off by more than the allowed skew. 503 for the client, the cause in the log.
        return Err(fail(
            "refused the edge's signature (check that ORIGIN_SIGNING_SECRET is the same on both sides and both clocks are right)",
        ));
    }
    if (300..400).contains(&status) {
        return Err(fail(&format!(
            "answered {status}, a redirect (not followed)"
        )));
    }
    if status >= 500 {
        return Err(fail(&format!("answered {status}")));
    }
    let body = body.to_vec();
    Ok(OriginReply { status, body })
}
