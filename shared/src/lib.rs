//! Logic shared by the edge Worker (wasm32) and the origin (native): token claims and their
//! verification per kind, input validation and password policies, OTP codes, edge→origin
//! request signing, throttle arithmetic, and the wire types of the public and internal APIs.
//!
//! Nothing here performs I/O or reads a clock: callers pass `now` (Unix seconds) and a random
//! source, so every rule is a pure function that `cargo test` exercises natively.

pub mod activation;
pub mod api;
pub mod client;
pub mod form;
pub mod hex;
pub mod internal;
pub mod keys;
pub mod lease;
pub mod otp;
pub mod problem;
pub mod settings;
pub mod signing;
pub mod throttle;
pub mod token;
pub mod validate;

mod common_passwords;
mod jwt_crypto;
