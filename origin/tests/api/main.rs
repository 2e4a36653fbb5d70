//! Integration tests: the origin on a random port, a fresh PostgreSQL database per test, and
//! requests signed the way the edge signs them.

mod activation;
mod admin;
mod audit;
mod backpressure;
mod email;
mod health;
mod helpers;
mod import;
mod janitor;
mod lockout;
mod me;
mod metrics;
mod null_characters;
mod races;
mod reset;
mod sessions;
mod signature;
mod tokens;
mod users;
mod verify;
