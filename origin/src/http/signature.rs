//! Only the edge may call the internal API: every `/internal` request must carry a valid
//! signature (see `shared::signing`). The body is read once here (bounded), checked, and put
//! back for the handler, together with the identity, network and agent the edge vouched for
//! (read by the extractors in `extract.rs`).

use axum::body::{to_bytes, Body, Bytes};
use axum::extract::{OriginalUri, Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;
use shared::api::MAX_BODY_BYTES;
use shared::problem::Problem;
use shared::signing::{
    is_valid_client_agent, is_valid_client_network, Identity, SignatureVersion, SignedParts,
    HEADER_CLIENT_AGENT, HEADER_CLIENT_NETWORK, HEADER_IDENTITY, HEADER_SIGNATURE,
    HEADER_SIGNATURE_VERSION, HEADER_TIMESTAMP,
};

use super::error::render;
use super::extract::{ClientAgent, ClientNetwork};
use crate::state::AppState;

/// Route middleware of every `/internal` route: 401 (`Problem::SignatureRefused`) unless the
/// edge signed the request.
pub async fn require_edge_signature(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let (parts, body) = request.into_parts();
    let bytes = match to_bytes(body, MAX_BODY_BYTES).await {
        Ok(bytes) => bytes,
        Err(_) => return render(&Problem::TooLarge),
    };
    // `nest` strips `/internal` from the URI; the signature covers the path as sent.
    let uri = parts
        .extensions
        .get::<OriginalUri>()
        .map_or(&parts.uri, |original| &original.0);
    let path_and_query = uri
        .path_and_query()
        .map_or("/", |pq| pq.as_str())
        .to_owned();
    match check(
        &state,
        &parts.headers,
        parts.method.as_str(),
        &path_and_query,
        &bytes,
    ) {
        Ok((identity, network, agent)) => {
            let mut request = Request::from_parts(parts, Body::from(bytes));
            request.extensions_mut().insert(identity);
            request.extensions_mut().insert(network);
            request.extensions_mut().insert(agent);
            next.run(request).await
        }
        Err(reason) => {
            tracing::warn!(method = %parts.method, path = %path_and_query.split('?').next().unwrap_or(""), %reason, "refused unsigned or badly signed internal request");
            render(&Problem::SignatureRefused)
        }
    }
}

fn check(
    state: &AppState,
    headers: &HeaderMap,
    method: &str,
    path_and_query: &str,
    body: &Bytes,
) -> Result<(Identity, ClientNetwork, ClientAgent), String> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .ok_or(format!("missing {name}"))
    };
    let timestamp: i64 = header(HEADER_TIMESTAMP)?
        .parse()
        .map_err(|_| "malformed timestamp".to_owned())?;
    let identity = Identity::parse(header(HEADER_IDENTITY)?).ok_or("malformed identity")?;
    let signature = header(HEADER_SIGNATURE)?;
    // The version the edge signed; absent, any accepted one (edges of earlier releases send
    // none). See `SignatureVersion` for the rollout rule.
    let named;
    let versions: &[SignatureVersion] = match headers.get(HEADER_SIGNATURE_VERSION) {
        None => &SignatureVersion::ACCEPTED,
        Some(v) => {
            named = [v
                .to_str()
                .ok()
                .and_then(SignatureVersion::parse)
                .ok_or("unknown signature version")?];
            &named
        }
    };
    // Absent means unknown, signed as "". A malformed value is refused outright (before the
    // MAC), so nothing unbounded or with a newline reaches the canonical string or the database.
    let client_network = match headers.get(HEADER_CLIENT_NETWORK) {
        None => "",
        Some(v) => v
            .to_str()
            .ok()
            .filter(|n| is_valid_client_network(n))
            .ok_or("malformed client network")?,
    };
    let client_agent = match headers.get(HEADER_CLIENT_AGENT) {
        None => "",
        Some(v) => v
            .to_str()
            .ok()
            .filter(|a| is_valid_client_agent(a))
            .ok_or("malformed client agent")?,
    };
    let parts = SignedParts {
        method,
        path_and_query,
        timestamp,
        identity,
        body,
        client_network,
        client_agent,
    };
    let version = state
        .signer
        .verify_versions(&parts, signature, versions, chrono::Utc::now().timestamp())
        .map_err(|e| e.to_string())?;
    // A v2 signature does not cover the agent: an unsigned header is not believed.
    let client_agent = if version.signs_agent() {
        client_agent
    } else {
        ""
    };
    Ok((
        identity,
        ClientNetwork(client_network.to_owned()),
        ClientAgent(client_agent.to_owned()),
    ))
}
