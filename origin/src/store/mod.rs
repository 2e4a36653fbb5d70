//! All SQL lives here, parameterised, each parameter with its PostgreSQL type, run through
//! `db::Sql` (prepared and cached per connection, or unnamed: DATABASE_STATEMENTS).

pub mod activations;
pub mod attempts;
pub mod audit;
pub mod outbox;
pub mod resets;
pub mod tokens;
pub mod users;
