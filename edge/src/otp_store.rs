//! The `OtpStore` Durable Object (one per normalised email) and the Worker's client for it.
//! It holds only the code's keyed hash; the rules live in `shared::otp::OtpRecord`. An alarm at
//! the code's expiry deletes the object's storage (`OtpRecord::expired`): one object per email
//! ever asked about would otherwise be kept, and billed, forever.

use serde::{Deserialize, Serialize};
use shared::otp::{Attempt, OtpCode, OtpRecord, OTP_TTL_SECS};
use worker::{
    durable_object, DurableObject, Env, Method, Request, RequestInit, Response, Result, State,
};

use crate::ports::{self, Unreachable};

#[derive(Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum Op {
    /// Store a new code asked for from `network`, replacing the previous one unless that one
    /// is live and was asked for from another network (`OtpRecord::replaceable_by`).
    Issue { code: String, network: String },
    /// Present a code from `network`.
    Attempt { code: String, network: String },
    /// Give back a code accepted by `Attempt` whose use failed (`OtpRecord::reinstate`).
    Reinstate { code: String },
}

#[derive(Serialize, Deserialize)]
struct Outcome {
    accepted: bool,
}

#[durable_object]
pub struct OtpStore {
    state: State,
    env: Env,
}

fn now() -> i64 {
    crate::now_secs()
}

impl DurableObject for OtpStore {
    fn new(state: State, env: Env) -> Self {
        Self { state, env }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let op: Op = req.json().await?;
        let email_key = bound_email(self.state.id().name())?;
        // A list during a rotation: the first hashes new codes, every one checks them.
        let secret = self.env.secret("OTP_SECRET")?.to_string();
        let secrets = shared::settings::secrets(Some(&secret), "OTP_SECRET")
            .map_err(|e| worker::Error::RustError(e.to_string()))?;
        let storage = self.state.storage();
        let parse = |code: &str| {
            OtpCode::parse(code).ok_or_else(|| worker::Error::RustError("malformed code".into()))
        };
        match op {
            Op::Issue { code, network } => {
                let stored = storage.get::<OtpRecord>("otp").await?;
                if stored.is_some_and(|r| !r.replaceable_by(&network, now())) {
                    return Response::from_json(&Outcome { accepted: false });
                }
                let record =
                    OtpRecord::issue(secrets[0].as_bytes(), &email_key, &parse(&code)?, now())
                        .requested_from(&network);
                storage.put("otp", &record).await?;
                storage.set_alarm(OTP_TTL_SECS * 1_000).await?;
                Response::from_json(&Outcome { accepted: true })
            }
            Op::Attempt { code, network } => {
                let Some(mut record) = storage.get::<OtpRecord>("otp").await? else {
                    return Response::from_json(&Outcome { accepted: false });
                };
                let outcome = record.attempt(&secrets, &email_key, &parse(&code)?, now(), &network);
                if outcome != Attempt::NoLiveCode {
                    storage.put("otp", &record).await?;
                }
                Response::from_json(&Outcome {
                    accepted: outcome == Attempt::Accepted,
                })
            }
            Op::Reinstate { code } => {
                let Some(mut record) = storage.get::<OtpRecord>("otp").await? else {
                    return Response::from_json(&Outcome { accepted: false });
                };
                let live = record.reinstate(&secrets, &email_key, &parse(&code)?, now());
                if live {
                    storage.put("otp", &record).await?;
                }
                Response::from_json(&Outcome { accepted: live })
            }
        }
    }

    /// Set at the expiry of each code issued. A record still live (the alarm fired early, or a
    /// new code replaced the one it was set for) moves it to its own expiry; otherwise nothing
    /// in the object can matter any more and its storage goes.
    async fn alarm(&self) -> Result<Response> {
        let storage = self.state.storage();
        match storage.get::<OtpRecord>("otp").await? {
            Some(record) if !record.expired(now()) => {
                storage
                    .set_alarm((record.expires_at - now()) * 1_000)
                    .await?
            }
            _ => storage.delete_all().await?,
        }
        Response::empty()
    }
}

/// The email this object's codes are bound to: its name (the Worker addresses it with
/// `get_by_name(email)`). An object without one (addressed by a raw id) refuses to work rather
/// than hash codes with an empty email, which would make a code valid for any address whose
/// object was reached that way.
fn bound_email(name: Option<String>) -> Result<String> {
    name.filter(|n| !n.is_empty()).ok_or_else(|| {
        worker::Error::RustError("OtpStore reached without an email name; refused".into())
    })
}

async fn call(env: &Env, email_key: &str, op: &Op) -> Result<bool> {
    let stub = env.durable_object("OTP_STORE")?.get_by_name(email_key)?;
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_body(Some(serde_json::to_string(op)?.into()));
    let mut response = stub
        .fetch_with_request(Request::new_with_init("https://otp-store/", &init)?)
        .await?;
    if response.status_code() != 200 {
        return Err(worker::Error::RustError(format!(
            "otp store answered {}",
            response.status_code()
        )));
    }
    Ok(response.json::<Outcome>().await?.accepted)
}

/// The Worker's client of the `OtpStore` objects.
pub struct OtpStoreClient<'a> {
    pub env: &'a Env,
}

impl OtpStoreClient<'_> {
    async fn ask(&self, email_key: &str, op: &Op) -> std::result::Result<bool, Unreachable> {
        call(self.env, email_key, op)
            .await
            .map_err(|e| Unreachable(e.to_string()))
    }
}

impl ports::OtpStore for OtpStoreClient<'_> {
    async fn issue(
        &self,
        email_key: &str,
        code: &OtpCode,
        network: &str,
    ) -> std::result::Result<bool, Unreachable> {
        let op = Op::Issue {
            code: code.expose().to_owned(),
            network: network.to_owned(),
        };
        self.ask(email_key, &op).await
    }

    async fn accept(
        &self,
        email_key: &str,
        code: &OtpCode,
        network: &str,
    ) -> std::result::Result<bool, Unreachable> {
        let op = Op::Attempt {
            code: code.expose().to_owned(),
            network: network.to_owned(),
        };
        self.ask(email_key, &op).await
    }

    async fn reinstate(
        &self,
        email_key: &str,
        code: &OtpCode,
    ) -> std::result::Result<bool, Unreachable> {
        let op = Op::Reinstate {
            code: code.expose().to_owned(),
        };
        self.ask(email_key, &op).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_object_without_an_email_name_refuses() {
        assert!(bound_email(None).is_err());
        assert!(bound_email(Some(String::new())).is_err());
        assert_eq!(
            bound_email(Some("ada@example.com".into())).unwrap(),
            "ada@example.com"
        );
    }
}
