//! Reading what the client sent: the JSON body (media type, size, syntax, in DRF's words), the
//! few fields the edge itself checks, and the Bearer token.

use serde_json::Value;
use shared::api::{self, FieldErrors, ResetRequest, VerifyRequest};
use shared::form::{Form, FromForm};
use shared::otp::OtpCode;
use shared::problem::Problem;
use shared::signing::Identity;
use shared::token::{self, Claims, TokenError, TokenKind};
use shared::validate::Email;

use super::Flow;
use crate::http::RequestBody;
use crate::ports::{Ports, Runtime};

impl<P: Ports> Flow<'_, P> {
    /// The parsed body and its bytes (forwarded as received). The media type is checked before
    /// the size, as DRF does.
    pub(super) fn json_body(&self) -> Result<(Value, &[u8]), Problem> {
        let content_type = self.req.content_type.as_deref().unwrap_or_default();
        if !shared::form::is_json_media_type(content_type) {
            return Err(Problem::UnsupportedMediaType(content_type.to_owned()));
        }
        let bytes = match &self.req.body {
            RequestBody::Read(bytes) => bytes.as_slice(),
            RequestBody::TooLarge => return Err(Problem::TooLarge),
            // The client's fault (a body cut short of its Content-Length, a stream the client
            // reset): a 400 like any other body that does not parse, never a 5xx.
            RequestBody::Failed(_) => {
                return Err(Problem::MalformedJson(api::MSG_BODY_NOT_WHOLE.to_owned()))
            }
        };
        let value = serde_json::from_slice(bytes).map_err(|e| Problem::malformed_json(&e))?;
        Ok((value, bytes))
    }

    /// SimpleJWT's `JWTAuthentication`: no `Authorization: Bearer` header is "not provided"; a
    /// Bearer token that is not a valid access token is "not valid for any token type".
    pub(super) async fn bearer(&self) -> Result<(i64, Identity), Problem> {
        let header = self.req.authorization.as_deref().unwrap_or_default();
        let mut parts = header.split_whitespace();
        if parts.next() != Some("Bearer") {
            return Err(Problem::NotAuthenticated);
        }
        let (Some(token), None) = (parts.next(), parts.next()) else {
            return Err(Problem::BadAuthorizationHeader);
        };
        let claims = self
            .claims(token, token::ACCESS)
            .await
            .map_err(|_| Problem::BearerNotValid)?;
        Ok((claims.user_id, Identity::from(&claims)))
    }

    /// The claims of `token` if it is one of `kinds`: parsed and read here, its signature
    /// checked by the runtime (WebCrypto in the Worker).
    pub(super) async fn claims(
        &self,
        token: &str,
        kinds: &[TokenKind],
    ) -> Result<Claims, TokenError> {
        let verifier = &self.config.verifier;
        let unverified = verifier.keys().parse(token)?;
        let runtime = self.ports.runtime();
        let verified = runtime.check_signature(verifier.keys(), unverified).await?;
        verifier.accept(verified, runtime.now(), kinds)
    }
}

/// The token of `jwt/verify/`.
pub(super) fn required_token(body: &Value) -> Result<String, Problem> {
    Ok(VerifyRequest::parse(body)?.token)
}

/// `new_password` and `re_new_password` as the origin will judge the pair's agreement.
pub(super) fn new_passwords(body: &Value) -> Result<(), Problem> {
    let mut form = Form::new(body)?;
    shared::form::new_password_pair(&mut form);
    Ok(form.finish()?)
}

/// The `email` of a reset request or code check, valid.
pub(super) fn email_field(body: &Value) -> Result<Email, Problem> {
    Ok(ResetRequest::parse(body)?.email)
}

/// `email` must be valid; a malformed `otp` is not a field error but simply a wrong code
/// (`None`), so the answer does not reveal anything about the format rules being hit.
pub(super) fn email_and_code(body: &Value) -> Result<(Email, Option<OtpCode>), Problem> {
    let email = email_field(body)?;
    let code = match body.get("otp") {
        None => return Err(Problem::field("otp", shared::form::MSG_REQUIRED)),
        Some(Value::String(s)) => OtpCode::parse(s),
        Some(Value::Number(n)) => OtpCode::parse(&n.to_string()),
        Some(_) => None,
    };
    Ok((email, code))
}

/// The one answer to any code that is not the email's live code.
pub(super) fn otp_invalid() -> Problem {
    Problem::Validation(FieldErrors::single("otp", api::MSG_OTP_INVALID))
}
