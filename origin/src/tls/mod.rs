//! TLS: the origin's HTTPS listener (`server`), its connections to PostgreSQL with libpq's
//! `sslmode` (`postgres`), the PEM files both read (`pem`), and the clients that encrypt without
//! checking a certificate (`client`). `pem` and `client` are leaves: nothing in them imports the
//! others.

pub mod client;
pub mod pem;
pub mod postgres;
pub mod server;
