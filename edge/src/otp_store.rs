//! The `OtpStore` Durable Object (one per normalised email) and the Worker's client for it.
//! It holds only the code's keyed hash; the rules live in `shared::otp::OtpRecord`.

use serde::{Deserialize, Serialize};
use shared::otp::{Attempt, OtpCode, OtpRecord};
use worker::{
    durable_object, Date, DurableObject, Env, Method, Request, RequestInit, Response, Result, State,
};

#[derive(Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum Op {
    /// Store a new code, replacing the previous one.
    Issue { code: String },
    /// Present a code.
    Attempt { code: String },
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
    (Date::now().as_millis() / 1_000) as i64
}

impl DurableObject for OtpStore {
    fn new(state: State, env: Env) -> Self {
        Self { state, env }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let op: Op = req.json().await?;
        let email_key = self.state.id().name().unwrap_or_default();
        let secret = self.env.secret("OTP_SECRET")?.to_string();
        let storage = self.state.storage();
        let parse = |code: &str| {
            OtpCode::parse(code).ok_or_else(|| worker::Error::RustError("malformed code".into()))
        };
        match op {
            Op::Issue { code } => {
                let record = OtpRecord::issue(secret.as_bytes(), &email_key, &parse(&code)?, now());
                storage.put("otp", &record).await?;
                Response::from_json(&Outcome { accepted: true })
            }
            Op::Attempt { code } => {
                let Some(mut record) = storage.get::<OtpRecord>("otp").await? else {
                    return Response::from_json(&Outcome { accepted: false });
                };
                let outcome = record.attempt(secret.as_bytes(), &email_key, &parse(&code)?, now());
                if outcome != Attempt::NoLiveCode {
                    storage.put("otp", &record).await?;
                }
                Response::from_json(&Outcome {
                    accepted: outcome == Attempt::Accepted,
                })
            }
        }
    }
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

/// Stores a fresh code for the email.
pub async fn issue(env: &Env, email_key: &str, code: &OtpCode) -> Result<()> {
    call(
        env,
        email_key,
        &Op::Issue {
            code: code.expose().to_owned(),
        },
    )
    .await
    .map(|_| ())
}

/// Whether `code` is the email's live code (consuming it when it is).
pub async fn accept(env: &Env, email_key: &str, code: &OtpCode) -> Result<bool> {
    call(
        env,
        email_key,
        &Op::Attempt {
            code: code.expose().to_owned(),
        },
    )
    .await
}
