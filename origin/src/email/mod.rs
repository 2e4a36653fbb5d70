//! Email: templates rendered at the origin, an outbox written in the event's transaction, and
//! a background sender (SMTP through lettre, or the console in development).

pub mod sender;

use anyhow::Context;
use lettre::message::{header::ContentType, Mailbox, MultiPart, SinglePart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use minijinja::{context, Environment};
use secrecy::ExposeSecret;
use shared::otp::{OtpCode, OTP_TTL_SECS};

use crate::config::{EmailBackend, EmailSettings};
use crate::store::outbox::OutgoingEmail;

pub const RESET_SUBJECT: &str = "Your password reset code";
pub const ACTIVATION_SUBJECT: &str = "Activate your account";

/// How long a reset-code email may wait in the outbox: the code's own lifetime (the email says
/// so). Delivered later it is useless, and kept it is a live secret in the table.
pub const RESET_CODE_LIFETIME: std::time::Duration =
    std::time::Duration::from_secs(OTP_TTL_SECS as u64);

/// The templates, compiled into the binary (no template directory to deploy).
pub struct Templates {
    env: Environment<'static>,
}

impl Templates {
    pub fn new() -> anyhow::Result<Self> {
        let mut env = Environment::new();
        // `.html` templates are auto-escaped by minijinja's default rule; `.txt` are not.
        env.add_template(
            "password_reset.txt",
            include_str!("../../templates/password_reset.txt"),
        )?;
        env.add_template(
            "password_reset.html",
            include_str!("../../templates/password_reset.html"),
        )?;
        env.add_template(
            "activation.txt",
            include_str!("../../templates/activation.txt"),
        )?;
        env.add_template(
            "activation.html",
            include_str!("../../templates/activation.html"),
        )?;
        Ok(Self { env })
    }

    pub fn password_reset(
        &self,
        to: &str,
        username: &str,
        code: &OtpCode,
    ) -> anyhow::Result<OutgoingEmail> {
        let ctx = context! { username => username, code => code.expose(), ttl_minutes => OTP_TTL_SECS / 60 };
        Ok(OutgoingEmail {
            kind: "password_reset",
            to: to.to_owned(),
            subject: RESET_SUBJECT.to_owned(),
            text: self.env.get_template("password_reset.txt")?.render(&ctx)?,
            html: self.env.get_template("password_reset.html")?.render(&ctx)?,
            lifetime: Some(RESET_CODE_LIFETIME),
        })
    }

    /// The activation email: the link and the code, and what they do: they activate the account
    /// with the password chosen at sign-up, which whoever signed up knows. An owner who did not
    /// sign up is told not to use them, and how to claim the address instead (a password reset
    /// sets their own password). It may wait in the outbox as long as the link works.
    pub fn activation(
        &self,
        to: &str,
        username: &str,
        link: &str,
        code: &OtpCode,
        pending_days: u32,
    ) -> anyhow::Result<OutgoingEmail> {
        use shared::activation::ACTIVATION_TOKEN_TTL_SECS;
        let ctx = context! {
            username => username,
            link => link,
            code => code.expose(),
            code_minutes => OTP_TTL_SECS / 60,
            link_days => ACTIVATION_TOKEN_TTL_SECS / 86_400,
            pending_days => pending_days,
        };
        Ok(OutgoingEmail {
            kind: "activation",
            to: to.to_owned(),
            subject: ACTIVATION_SUBJECT.to_owned(),
            text: self.env.get_template("activation.txt")?.render(&ctx)?,
            html: self.env.get_template("activation.html")?.render(&ctx)?,
            lifetime: Some(std::time::Duration::from_secs(
                ACTIVATION_TOKEN_TTL_SECS as u64,
            )),
        })
    }
}

/// Where a rendered email goes.
pub enum Mailer {
    Smtp {
        transport: AsyncSmtpTransport<Tokio1Executor>,
        from: Mailbox,
    },
    Console {
        from: Mailbox,
    },
}

impl Mailer {
    pub fn new(settings: &EmailSettings) -> anyhow::Result<Self> {
        let from: Mailbox = settings.from.parse().context("invalid EMAIL_FROM")?;
        Ok(match settings.backend {
            EmailBackend::Console => Self::Console { from },
            EmailBackend::Smtp => {
                let url = settings
                    .smtp_url
                    .as_ref()
                    .context("SMTP_URL is required when EMAIL_BACKEND=smtp")?;
                let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose_secret())
                    .context("invalid SMTP_URL")?
                    .timeout(Some(std::time::Duration::from_secs(10)))
                    .build();
                Self::Smtp { transport, from }
            }
        })
    }

    /// Sends one email; `message_id` is the outbox row's, the same on every retry.
    pub async fn send(
        &self,
        message_id: uuid::Uuid,
        to: &str,
        subject: &str,
        text: &str,
        html: &str,
    ) -> anyhow::Result<()> {
        match self {
            Self::Smtp { transport, from } => {
                let message = Message::builder()
                    .message_id(Some(format!("<{message_id}@{}>", from.email.domain())))
                    .from(from.clone())
                    .to(to.parse().context("invalid recipient address")?)
                    .subject(subject)
                    .multipart(
                        MultiPart::alternative()
                            .singlepart(
                                SinglePart::builder()
                                    .header(ContentType::TEXT_PLAIN)
                                    .body(text.to_owned()),
                            )
                            .singlepart(
                                SinglePart::builder()
                                    .header(ContentType::TEXT_HTML)
                                    .body(html.to_owned()),
                            ),
                    )
                    .context("building the message")?;
                transport
                    .send(message)
                    .await
                    .context("SMTP delivery failed")?;
                Ok(())
            }
            Self::Console { from } => {
                // Development only: printed to stdout, not logged, so log shipping never sees it.
                println!("──── email (console backend) ────\nFrom: {from}\nTo: {to}\nSubject: {subject}\n\n{text}\n─────────────────────────────────");
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_email_has_code_lifetime_and_ignore_note_and_escapes_html() {
        let templates = Templates::new().unwrap();
        let code = OtpCode::parse("042917").unwrap();
        let email = templates
            .password_reset("a@example.com", "<b>bob</b>", &code)
            .unwrap();
        assert_eq!(email.subject, "Your password reset code");
        for body in [&email.text, &email.html] {
            assert!(body.contains("042917"));
            assert!(body.contains("10 minutes"));
            assert!(body.contains("If you did not ask to reset your password, ignore this email"));
        }
        assert!(
            email.html.contains("&lt;b&gt;bob&lt;&#x2f;b&gt;")
                || email.html.contains("&lt;b&gt;bob&lt;/b&gt;"),
            "{}",
            email.html
        );
        assert!(email.text.contains("Hello <b>bob</b>,"));
    }
}
