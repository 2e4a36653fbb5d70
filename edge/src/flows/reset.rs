//! The reset-code flow: `password/reset/` issues a code (emailed by the origin after the
//! response), `verify-otp/` exchanges it for a reset token, `confirm/` sets the password with
//! a reset token, or with the code directly.

use serde_json::Value;
use shared::api::{self, SendResetCode};
use shared::internal::InternalRoute;
use shared::otp::OtpCode;
use shared::problem::Problem;
use shared::signing::Identity;
use shared::validate::Email;

use super::input::{email_and_code, email_field, new_passwords, otp_invalid};
use super::{Answered, Counted, Flow};
use crate::http::Reply;
use crate::ports::{Origin, OtpStore, Ports, Runtime};

/// Reset tokens live 15 minutes.
const RESET_TOKEN_TTL_SECS: i64 = 900;

impl<P: Ports> Flow<'_, P> {
    pub(super) async fn reset_request(&self) -> Answered {
        self.throttle(Counted::Client).await?;
        let (body, _) = self.json_body()?;
        let email = email_field(&body)?;
        self.throttle_email(&email).await?;
        let key = email.lookup_key();
        let requested = Reply::json(200, api::detail(api::DETAIL_RESET_REQUESTED));
        let runtime = self.ports.runtime();
        let code = OtpCode::generate(&mut runtime.rng());
        let network = self.client.as_deref().unwrap_or_default();
        match self.ports.otp_store().issue(&key, &code, network).await {
            Ok(true) => {}
            // The live code asked for from another network stays, and nothing is sent: the
            // same answer, so the request reveals nothing either.
            Ok(false) => return Ok(requested),
            Err(e) => {
                runtime.log_error("otp store unavailable", &e.0);
                return Err(Problem::Unavailable);
            }
        }
        // The origin emails the code only if the account exists; the client gets the same
        // answer at the same time either way, so that call runs after the response.
        let payload = serde_json::to_vec(&SendResetCode {
            email: email.to_string(),
            code: code.expose().to_owned(),
        })
        .map_err(|e| self.server_error("reset email not serialized", &e.to_string()))?;
        self.call_after_response(
            InternalRoute::SendResetCode,
            payload,
            "reset email not queued",
        );
        Ok(requested)
    }

    /// Djoser's `users/resend_activation/`: 204 at once, whether or not an account waits for
    /// activation; the origin queues the email (only then) after the response, so neither the
    /// answer nor its timing tells.
    pub(super) async fn resend_activation(&self) -> Answered {
        self.throttle(Counted::Client).await?;
        let (body, _) = self.json_body()?;
        let email = email_field(&body)?;
        self.throttle_email(&email).await?;
        let payload = serde_json::to_vec(&serde_json::json!({ "email": email.to_string() }))
            .map_err(|e| self.server_error("resend not serialized", &e.to_string()))?;
        self.call_after_response(
            InternalRoute::ResendActivation,
            payload,
            "activation email not queued",
        );
        Ok(Reply::empty(204))
    }

    /// Counts the request against the per-email budget of `email` (one key for resets and
    /// activation resends: one bound on mails to one inbox).
    async fn throttle_email(&self, email: &Email) -> Result<(), Problem> {
        self.throttle(Counted::Email(&format!("email:{}", email.lookup_key())))
            .await
    }

    /// Asks the origin, anonymously, once the response has gone: the client's answer and its
    /// timing are the same whatever the origin does. A failure is logged as `failure`.
    fn call_after_response(&self, route: InternalRoute, payload: Vec<u8>, failure: &'static str) {
        let runtime = self.ports.runtime();
        let (origin, log) = (self.ports.origin().clone(), runtime.clone());
        runtime.after_response(async move {
            let sent = origin
                .call(route, None, Identity::Anonymous, Some(&payload))
                .await;
            if let Err(e) = sent {
                log.log_error(failure, &e.0);
            }
        });
    }

    pub(super) async fn reset_verify_otp(&self) -> Answered {
        self.throttle(Counted::Client).await?;
        let (body, _) = self.json_body()?;
        let (email, code) = email_and_code(&body)?;
        let reset_token = self.exchange_code(&email, code).await?;
        let issued = serde_json::to_value(api::ResetTokenIssued { reset_token })
            .map_err(|e| self.server_error("reset token not serialized", &e.to_string()))?;
        Ok(Reply::json(200, issued))
    }

    pub(super) async fn reset_confirm(&self) -> Answered {
        self.throttle(Counted::Client).await?;
        let (mut body, bytes) = self.json_body()?;
        let has_token = body
            .get("reset_token")
            .is_some_and(|t| t.as_str().is_some_and(|s| !s.is_empty()));
        if has_token {
            return self
                .origin(
                    InternalRoute::ResetConfirm,
                    None,
                    Identity::Anonymous,
                    Some(bytes),
                )
                .await;
        }
        if body.get("email").is_none() || body.get("otp").is_none() {
            return Err(Problem::field(
                "non_field_errors",
                "Provide reset_token, or email and otp.",
            ));
        }
        let (email, code) = email_and_code(&body)?;
        // The new passwords are checked before the code is spent: a typo in
        // `re_new_password` must not cost the user their code.
        new_passwords(&body)?;
        let Some(code) = code else {
            return Err(otp_invalid());
        };
        let token = self.exchange_code(&email, Some(code.clone())).await?;
        if let Some(fields) = body.as_object_mut() {
            fields.remove("email");
            fields.remove("otp");
            fields.insert("reset_token".into(), Value::String(token));
        }
        let bytes = body.to_string().into_bytes();
        let reply = self
            .origin(
                InternalRoute::ResetConfirm,
                None,
                Identity::Anonymous,
                Some(&bytes),
            )
            .await?;
        // The origin refused the new password (policy, similarity to the account): the code
        // was only spent for a reset that did not happen, so it is given back.
        if reply.status == 400 {
            let reinstated = self
                .ports
                .otp_store()
                .reinstate(&email.lookup_key(), &code)
                .await;
            if let Err(e) = reinstated {
                self.ports.runtime().log_error("otp not reinstated", &e.0);
            }
        }
        Ok(reply)
    }

    /// A correct live code is exchanged (once) for a reset token; anything else is one 400.
    async fn exchange_code(&self, email: &Email, code: Option<OtpCode>) -> Result<String, Problem> {
        let code = code.ok_or_else(otp_invalid)?;
        let network = self.client.as_deref().unwrap_or_default();
        let key = email.lookup_key();
        let runtime = self.ports.runtime();
        match self.ports.otp_store().accept(&key, &code, network).await {
            Ok(true) => {}
            Ok(false) => return Err(otp_invalid()),
            Err(e) => {
                runtime.log_error("otp store unavailable", &e.0);
                return Err(Problem::Unavailable);
            }
        }
        let mut jti = [0u8; 16];
        rand_core::RngCore::fill_bytes(&mut runtime.rng(), &mut jti);
        self.config
            .resets
            .issue(
                &key,
                shared::hex::encode(&jti),
                runtime.now(),
                RESET_TOKEN_TTL_SECS,
            )
            .map_err(|e| self.server_error("reset token not issued", &e.to_string()))
    }
}
