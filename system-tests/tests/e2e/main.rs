//! End-to-end tests through the public API: `wrangler dev` (workerd running the real Wasm and
//! Durable Objects) in front of the `origin` program on a fresh PostgreSQL database, with reset
//! emails captured by a real SMTP listener. Every scenario uses its own client address
//! (`CF-Connecting-IP`), so the real default throttle rates apply to each independently.
//!
//! Run by `cargo xtask test` (which installs and builds what this needs); alone:
//! `cargo test -p system-tests --test e2e [-- name_filter]`. Processes are started in their own
//! process groups and stopped at the end, whatever the outcome. The scenarios are grouped by
//! capability, one module each; the stack they share is in `stack`.

mod accounts;
mod http;
mod logs;
mod reset;
mod resilience;
mod security;
mod stack;
mod throttling;
mod tokens;

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::time::Instant;

use futures::FutureExt;

use accounts::*;
use http::*;
use logs::*;
use reset::*;
use resilience::*;
use security::*;
use stack::Stack;
use throttling::*;
use tokens::*;

/// What every scenario module uses.
mod prelude {
    pub(crate) use std::path::{Path, PathBuf};
    pub(crate) use std::process::{Command, Stdio};
    pub(crate) use std::time::{Duration, Instant};

    pub(crate) use reqwest::{Method, StatusCode};
    pub(crate) use serde_json::{json, Value};
    pub(crate) use shared::keys::Ed25519PrivateKey;
    pub(crate) use testkit::process::{
        prebuilt_worker_config, repo_root, wait_until_serving, wait_until_up, wrangler_dev, Group,
    };
    pub(crate) use testkit::{code_in, free_port, read, Reply, SmtpSink, TestDb};
    pub(crate) use tokio::net::TcpListener;

    pub(crate) use crate::stack::*;
    pub(crate) use crate::*;
}

pub(crate) const SIGNING: &str = "e2e-origin-signing-secret-0123456789abcdef";
pub(crate) const RESET: &str = "e2e-reset-token-secret-0123456789abcdefghij";
pub(crate) const OTP: &str = "e2e-otp-secret-0123456789abcdefghijklmnopq";
pub(crate) const PASSWORD: &str = "73926481";
pub(crate) const NEW_PASSWORD: &str = "58203917";
pub(crate) const ALLOWED_ORIGIN: &str = "http://app.example.test";

type Scenario = for<'a> fn(&'a mut Stack) -> Pin<Box<dyn Future<Output = ()> + 'a>>;

macro_rules! scenarios {
    ($($name:ident),* $(,)?) => {
        [$((stringify!($name), (|s| Box::pin($name(s))) as Scenario)),*]
    };
}

fn main() {
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (passed, failed) = runtime.block_on(async {
        println!("starting origin, PostgreSQL database, SMTP listener and wrangler dev ...");
        let started = Instant::now();
        let mut stack = Stack::start().await;
        println!(
            "stack up in {:.1} s (edge {})",
            started.elapsed().as_secs_f64(),
            stack.edge
        );
        let (mut passed, mut failed) = (0, 0);
        for (name, scenario) in scenarios![
            register_login_me_and_patch,
            djoser_users_me_is_the_same_resource,
            deleting_my_account_needs_its_password_and_frees_the_email,
            set_username_needs_the_password,
            sessions_and_password_change_end_other_logins,
            verify_accepts_access_and_refresh_only,
            kinds_are_not_interchangeable,
            refresh_rotation_and_logout,
            admin_list_is_403_then_200,
            fourth_auth_call_in_a_minute_is_throttled,
            password_reset_end_to_end,
            confirm_with_email_and_otp,
            fourth_reset_in_an_hour_is_throttled,
            cors_preflight_and_headers,
            healthz_names_the_workers_release,
            bad_input_is_json_never_5xx,
            api_docs_are_served_offline_and_render,
            origin_down_is_503_json_then_recovers,
            logs_carry_request_ids_and_no_secrets,
            forged_and_misused_tokens_are_refused,
            parallel_calls_in_one_scope_allow_exactly_the_rate,
            parallel_otp_guesses_are_all_counted,
            durable_objects_down_fail_closed_for_auth_and_open_for_reads,
            throttle_counts_survive_a_worker_restart,
            ipv6_clients_are_throttled_per_64,
            verify_refuses_revoked_refresh_tokens,
            null_characters_are_field_errors,
            confirm_with_a_bad_new_password_keeps_the_code,
            a_signature_mismatch_is_503_and_logged,
            the_reset_channel_cannot_be_taken_from_the_owner,
            durable_objects_delete_their_storage_when_nothing_in_them_matters,
            leased_scopes_take_permits_in_batches,
            long_user_agents_ending_in_a_space_log_in,
            an_ended_sessions_access_token_loses_the_account,
            the_origin_is_never_followed_nor_waited_on,
            a_sites_many_64s_share_its_48_budget,
            // Restarts the origin with SEND_ACTIVATION_EMAIL on and off again: keep it last.
            sign_up_waits_for_the_emailed_link_or_code,
        ] {
            if filter.as_deref().is_some_and(|f| !name.contains(f)) {
                continue;
            }
            match AssertUnwindSafe(scenario(&mut stack)).catch_unwind().await {
                Ok(()) => {
                    println!("test {name} ... ok");
                    passed += 1;
                }
                Err(_) => {
                    println!("test {name} ... FAILED");
                    failed += 1;
                }
            }
        }
        drop(stack);
        (passed, failed)
    });
    println!("\n{passed} passed, {failed} failed");
    std::process::exit(if failed == 0 { 0 } else { 1 });
}
