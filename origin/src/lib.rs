//! The origin service: the only component that talks to Postgres. It serves the internal API
//! the edge Worker calls with signed requests, hashes passwords, issues and rotates tokens,
//! and sends email from an outbox.

pub mod cli;
pub mod config;
pub mod db;
pub mod edge_auth;
pub mod email;
pub mod error;
pub mod import;
pub mod metrics;
pub mod openapi;
pub mod password;
pub mod routes;
pub mod services;
pub mod startup;
pub mod state;
pub mod store;
pub mod telemetry;
