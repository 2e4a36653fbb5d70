//! What a handler asks of a request, as extractors: the JSON body, and the caller the edge
//! vouched for (`CurrentUser`, `CurrentAdmin`, `Caller`), their network and agent. The
//! signature middleware (`signature.rs`) puts the signed identity, network and agent in the
//! request's extensions; these read them and, for a user, load the account, so a handler's
//! signature says who may call it.

use axum::body::Bytes;
use axum::extract::{FromRef, FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use serde_json::Value;
use shared::problem::Problem;
use shared::signing::{Identity, SessionId};
use uuid::Uuid;

use super::error::ApiError;
use crate::services::{account, Bearer};
use crate::state::AppState;
use crate::store::users::User;

/// The client's network as the edge signed it (`""` when the edge did not know it); the login
/// back-off is keyed on it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClientNetwork(pub String);

/// The client's `User-Agent` as the edge signed it (`""` when unknown); a new session keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClientAgent(pub String);

/// What the signature middleware vouched for; missing only on a route outside `/internal`,
/// which is a wiring bug, not the client's fault.
fn signed<T: Clone + Send + Sync + 'static>(parts: &Parts) -> Result<T, ApiError> {
    parts.extensions.get::<T>().cloned().ok_or_else(|| {
        ApiError::Internal(anyhow::anyhow!(
            "a handler that needs the edge's signature is routed outside /internal"
        ))
    })
}

impl<S: Send + Sync> FromRequestParts<S> for ClientNetwork {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        signed(parts)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ClientAgent {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        signed(parts)
    }
}

/// The caller must be a user the edge authenticated, with an access token that names its
/// session. One without (minted before sessions were named, so long expired) is refused as
/// not valid: a token bound to no session could outlive its account's id.
fn bearer(parts: &Parts) -> Result<Bearer, ApiError> {
    match signed::<Identity>(parts)? {
        Identity::User {
            id,
            token_version,
            session: Some(session),
        } => Ok(Bearer {
            id,
            token_version,
            session: family_of(session),
        }),
        Identity::User { session: None, .. } => Err(Problem::BearerNotValid.into()),
        Identity::Anonymous => Err(Problem::NotAuthenticated.into()),
    }
}

/// The refresh family a session id names.
pub fn family_of(session: SessionId) -> Uuid {
    Uuid::from_bytes(*session.as_bytes())
}

/// The caller's account, loaded and checked against the token (`account::current`), and
/// with `admin` also its role (`account::current_admin`).
async fn account_of<S>(caller: Bearer, state: &S, admin: bool) -> Result<User, ApiError>
where
    AppState: FromRef<S>,
{
    let pool = &AppState::from_ref(state).pool;
    let user = if admin {
        account::current_admin(pool, caller).await?
    } else {
        account::current(pool, caller).await?
    };
    Ok(user)
}

/// The authenticated user: still active, with the token version the edge verified, in a
/// session that is still live (`account::current`). 401 otherwise.
pub struct CurrentUser(pub User);

impl<S> FromRequestParts<S> for CurrentUser
where
    S: Send + Sync,
    AppState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        account_of(bearer(parts)?, state, false).await.map(Self)
    }
}

/// [`CurrentUser`], who must also be an admin: 403 otherwise.
pub struct CurrentAdmin(pub User);

impl<S> FromRequestParts<S> for CurrentAdmin
where
    S: Send + Sync,
    AppState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        account_of(bearer(parts)?, state, true).await.map(Self)
    }
}

/// [`CurrentUser`] with the session their access token was issued in and the network they
/// call from: what a change to the account needs (to keep their session, to key a back-off).
pub struct Caller {
    pub user: User,
    pub session: Uuid,
    pub network: String,
}

impl<S> FromRequestParts<S> for Caller
where
    S: Send + Sync,
    AppState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let caller = bearer(parts)?;
        let ClientNetwork(network) = signed(parts)?;
        Ok(Self {
            user: account_of(caller, state, false).await?,
            session: caller.session,
            network,
        })
    }
}

/// A JSON body read the DRF way: `application/json` required, parse errors as 400 `detail`.
pub struct JsonBody(pub Value);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap_or("").to_owned())
            .unwrap_or_default();
        if !shared::form::is_json_media_type(&content_type) {
            return Err(Problem::UnsupportedMediaType(content_type).into());
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|_| ApiError::from(Problem::TooLarge))?;
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|e| ApiError::from(Problem::malformed_json(&e)))
    }
}
