//! All SQL lives here, parameterised and prepared (cached per connection).

pub mod attempts;
pub mod audit;
pub mod outbox;
pub mod resets;
pub mod tokens;
pub mod users;
