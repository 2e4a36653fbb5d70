//! Email, username, both password policies, OTP codes and the DRF form reader on any input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shared::form::Form;
use shared::otp::OtpCode;
use shared::validate::{Email, PasswordPolicy, UserAttributes, Username};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(email) = Email::parse(text) {
        let _ = email.lookup_key();
        // A parsed email parses again to the same value.
        assert_eq!(
            Email::parse(email.as_str()).map(|e| e.as_str().to_owned()),
            Ok(email.as_str().to_owned())
        );
    }
    let _ = Username::parse(text);
    let (head, tail) = text.split_at(
        text.char_indices()
            .nth(text.chars().count() / 2)
            .map_or(0, |(i, _)| i),
    );
    let user = UserAttributes {
        username: head,
        email: tail,
    };
    for policy in [PasswordPolicy::Seed, PasswordPolicy::Strong] {
        let _ = policy.check(text, &user);
    }
    if let Some(code) = OtpCode::parse(text) {
        assert_eq!(code.expose().len(), 6);
    }
    if let Ok(value) = serde_json::from_str::<serde_json::Value>(text) {
        if let Ok(mut form) = Form::new(&value) {
            let _ = form.required("email", 254);
            let _ = form.optional("username", 150, false);
            let _ = form.finish();
        }
    }
});
