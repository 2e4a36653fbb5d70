//! `jwt/verify/`: access tokens are answered here; refresh tokens also need the origin.

use serde_json::json;
use shared::internal::InternalRoute;
use shared::problem::Problem;
use shared::signing::Identity;
use shared::token::{self, TokenKind};

use super::input::required_token;
use super::{Answered, Counted, Flow};
use crate::http::Reply;
use crate::ports::Ports;

impl<P: Ports> Flow<'_, P> {
    pub(super) async fn verify(&self) -> Answered {
        self.throttle(Counted::Client).await?;
        let (body, _) = self.json_body()?;
        let token = required_token(&body)?;
        let claims = self
            .claims(&token, token::SESSION)
            .await
            .map_err(|_| Problem::TokenNotValid)?;
        if claims.token_type != TokenKind::Refresh {
            return Ok(Reply::json(200, json!({})));
        }
        // A refresh token can be revoked (rotated out, logged out, reset) long before it
        // expires, and only the origin knows its family: it answers 400 "Token is blacklisted"
        // for those, as SimpleJWT's blacklist does. Access tokens are short-lived and answered
        // here alone.
        let bytes = json!({ "token": token }).to_string().into_bytes();
        self.origin(
            InternalRoute::VerifyRefresh,
            None,
            Identity::Anonymous,
            Some(&bytes),
        )
        .await
    }
}
