//! The application context every handler, middleware and service reads: built once by
//! `startup`, which is the only module that wires the parts together. Nothing here imports
//! the routes or `startup`, so they can both import this without a cycle.

use std::ops::Deref;
use std::sync::Arc;

use crate::db::Pool;
use shared::signing::RequestSigner;
use shared::validate::PasswordPolicy;
use tokio::sync::Notify;

use crate::config::TokenConfig;
use crate::email::Templates;
use crate::metrics::Metrics;
use crate::password::PasswordHasher;
use crate::store::attempts::Limits;

pub struct Inner {
    pub pool: Pool,
    pub signer: RequestSigner,
    pub tokens: TokenConfig,
    pub hasher: PasswordHasher,
    pub password_policy: PasswordPolicy,
    pub lockout: Limits,
    pub templates: Templates,
    pub email_wake: Arc<Notify>,
    pub metrics: Arc<Metrics>,
    /// When set, `/metrics` wants `Authorization: Bearer <token>`.
    pub metrics_token: Option<secrecy::SecretString>,
    /// SEND_ACTIVATION_EMAIL on: new accounts wait for activation.
    pub activation: Option<crate::config::Activation>,
    /// Set at a stop signal: `/readyz` answers 503 while requests are still served.
    pub stopping: std::sync::atomic::AtomicBool,
}

/// Shared by every handler; cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

impl AppState {
    pub fn new(inner: Inner) -> Self {
        Self(Arc::new(inner))
    }
}

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}
