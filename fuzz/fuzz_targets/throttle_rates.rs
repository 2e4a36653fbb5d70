//! THROTTLE_RATES and single rates: parsed or refused, never a panic; a parsed rate is usable.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shared::lease::grant;
use shared::throttle::{check, Rate, Scope, ThrottleRates};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(rates) = ThrottleRates::parse(text) {
        for scope in [Scope::Anon, Scope::User, Scope::Auth, Scope::PasswordReset] {
            let Some(rate) = rates.get(scope) else {
                continue;
            };
            let mut history = Vec::new();
            let _ = check(&mut history, rate, 1_000);
            let _ = check(&mut history, rate, u64::MAX);
            let mut history = Vec::new();
            let _ = grant(&mut history, rate, 1_000);
            let _ = grant(&mut history, rate, u64::MAX);
        }
    }
    if let Ok(rate) = Rate::parse(text) {
        let mut history = vec![0, u64::MAX];
        let _ = check(&mut history, rate, 5);
        let mut history = vec![0, u64::MAX];
        let _ = grant(&mut history, rate, 5);
    }
});
