//! The `users` table.

use chrono::{DateTime, Utc};
use tokio_postgres::types::Type;
use tokio_postgres::Row;

use crate::db::{is_unique_violation, Sql};

const COLUMNS: &str = "id, email, username, password_hash, role, first_name, last_name, is_active, \
                       date_joined, password_changed_at, token_version, failed_logins, failed_logins_since, \
                       pending_activation";

#[derive(Debug, Clone)]
pub struct User {
    pub id: i64,
    pub email: String,
    pub username: String,
    pub password_hash: String,
    pub role: String,
    pub first_name: String,
    pub last_name: String,
    pub is_active: bool,
    pub date_joined: DateTime<Utc>,
    pub password_changed_at: DateTime<Utc>,
    pub token_version: i32,
    pub failed_logins: i32,
    pub failed_logins_since: Option<DateTime<Utc>>,
    /// Signed up with SEND_ACTIVATION_EMAIL on and not activated yet (inactive until then).
    pub pending_activation: bool,
}

impl User {
    fn from_row(row: &Row) -> Self {
        Self {
            id: row.get(0),
            email: row.get(1),
            username: row.get(2),
            password_hash: row.get(3),
            role: row.get(4),
            first_name: row.get(5),
            last_name: row.get(6),
            is_active: row.get(7),
            date_joined: row.get(8),
            password_changed_at: row.get(9),
            token_version: row.get(10),
            failed_logins: row.get(11),
            failed_logins_since: row.get(12),
            pending_activation: row.get(13),
        }
    }

    pub fn is_admin(&self) -> bool {
        self.role == "admin"
    }
}

/// Which unique field a write collided with.
#[derive(Debug, PartialEq, Eq)]
pub enum Taken {
    Email,
    Username,
}

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("already taken: {0:?}")]
    Taken(Taken),
    #[error(transparent)]
    Db(#[from] tokio_postgres::Error),
}

fn classify(e: tokio_postgres::Error) -> WriteError {
    if is_unique_violation(&e, "users_email_lower_key") {
        WriteError::Taken(Taken::Email)
    } else if is_unique_violation(&e, "users_username_key") {
        WriteError::Taken(Taken::Username)
    } else {
        WriteError::Db(e)
    }
}

/// A new account; `pending_activation` makes it inactive until activated.
pub async fn insert(
    client: &impl Sql,
    email: &str,
    username: &str,
    password_hash: &str,
    role: &str,
    pending_activation: bool,
) -> Result<User, WriteError> {
    let sql = format!(
        "INSERT INTO users (email, username, password_hash, role, is_active, pending_activation) \
         VALUES ($1, $2, $3, $4, NOT $5, $5) RETURNING {COLUMNS}"
    );
    client
        .query_one(
            &sql,
            &[
                (&email, Type::TEXT),
                (&username, Type::TEXT),
                (&password_hash, Type::TEXT),
                (&role, Type::TEXT),
                (&pending_activation, Type::BOOL),
            ],
        )
        .await
        .map(|row| User::from_row(&row))
        .map_err(classify)
}

/// Which of `email` (case-insensitively) and `username` already belong to an account.
pub async fn taken(
    client: &impl Sql,
    email: &str,
    username: &str,
) -> Result<Vec<Taken>, tokio_postgres::Error> {
    let row = client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM users WHERE lower(email) = lower($1)), \
                    EXISTS (SELECT 1 FROM users WHERE username = $2)",
            &[(&email, Type::TEXT), (&username, Type::TEXT)],
        )
        .await?;
    let mut taken = Vec::new();
    if row.get::<_, bool>(0) {
        taken.push(Taken::Email);
    }
    if row.get::<_, bool>(1) {
        taken.push(Taken::Username);
    }
    Ok(taken)
}

pub async fn by_email(
    client: &impl Sql,
    email: &str,
) -> Result<Option<User>, tokio_postgres::Error> {
    let sql = format!("SELECT {COLUMNS} FROM users WHERE lower(email) = lower($1)");
    Ok(client
        .query_opt(&sql, &[(&email, Type::TEXT)])
        .await?
        .as_ref()
        .map(User::from_row))
}

pub async fn by_id(client: &impl Sql, id: i64) -> Result<Option<User>, tokio_postgres::Error> {
    let sql = format!("SELECT {COLUMNS} FROM users WHERE id = $1");
    Ok(client
        .query_opt(&sql, &[(&id, Type::INT8)])
        .await?
        .as_ref()
        .map(User::from_row))
}

/// The account `id` and whether `session` is one of its live sessions (a refresh family of
/// this account, not revoked), in one primary-key lookup each: what every request made with an
/// access token needs. A family that is gone (purged, or deleted with an earlier account that
/// had the same id) is not live.
pub async fn by_id_in_session(
    client: &impl Sql,
    id: i64,
    session: uuid::Uuid,
) -> Result<Option<(User, bool)>, tokio_postgres::Error> {
    let sql = format!(
        "SELECT {COLUMNS}, EXISTS (SELECT 1 FROM refresh_families f \
         WHERE f.id = $2 AND f.user_id = users.id AND f.revoked_at IS NULL) \
         FROM users WHERE id = $1"
    );
    Ok(client
        .query_opt(&sql, &[(&id, Type::INT8), (&session, Type::UUID)])
        .await?
        .map(|row| (User::from_row(&row), row.get(14))))
}

/// Sets the role of the account with this email; returns its id and the previous role.
pub async fn set_role(
    client: &impl Sql,
    email: &str,
    role: &str,
) -> Result<Option<(i64, String)>, tokio_postgres::Error> {
    Ok(client
        .query_opt("UPDATE users u SET role = $2 FROM (SELECT id, role FROM users WHERE lower(email) = lower($1) FOR UPDATE) old \
             WHERE u.id = old.id RETURNING u.id, old.role", &[(&email, Type::TEXT), (&role, Type::TEXT)])
        .await?
        .map(|row| (row.get(0), row.get(1))))
}

/// Same password, stronger hash (a Django import's first login): the password is unchanged, so
/// tokens stay valid. Only replaces the hash that was verified (a concurrent change wins).
pub async fn upgrade_hash(
    client: &impl Sql,
    id: i64,
    verified_hash: &str,
    new_hash: &str,
) -> Result<bool, tokio_postgres::Error> {
    Ok(client
        .execute(
            "UPDATE users SET password_hash = $3 WHERE id = $1 AND password_hash = $2",
            &[
                (&id, Type::INT8),
                (&verified_hash, Type::TEXT),
                (&new_hash, Type::TEXT),
            ],
        )
        .await?
        == 1)
}

/// Profile fields only: role, email and flags are never written here.
pub async fn update_profile(
    client: &impl Sql,
    id: i64,
    username: Option<&str>,
    first_name: Option<&str>,
    last_name: Option<&str>,
) -> Result<Option<User>, WriteError> {
    let sql = format!(
        "UPDATE users SET username = COALESCE($2, username), first_name = COALESCE($3, first_name), \
         last_name = COALESCE($4, last_name) WHERE id = $1 RETURNING {COLUMNS}"
    );
    client
        .query_opt(
            &sql,
            &[
                (&id, Type::INT8),
                (&username, Type::TEXT),
                (&first_name, Type::TEXT),
                (&last_name, Type::TEXT),
            ],
        )
        .await
        .map(|row| row.as_ref().map(User::from_row))
        .map_err(classify)
}

pub async fn count(client: &impl Sql) -> Result<i64, tokio_postgres::Error> {
    Ok(client
        .query_one("SELECT count(*) FROM users", &[])
        .await?
        .get(0))
}

pub async fn page(
    client: &impl Sql,
    offset: i64,
    limit: i64,
) -> Result<Vec<User>, tokio_postgres::Error> {
    let sql = format!("SELECT {COLUMNS} FROM users ORDER BY id LIMIT $1 OFFSET $2");
    Ok(client
        .query(&sql, &[(&limit, Type::INT8), (&offset, Type::INT8)])
        .await?
        .iter()
        .map(User::from_row)
        .collect())
}

/// New password: clears the lockout, the account-wide count and every network's back-off (the
/// guesses were against the old password), and outdates every reset token (`password_changed_at`).
/// Known networks stay known. With `Tokens::Outdate` (a reset) every token of the account stops
/// working (`token_version` bumped); with `Tokens::Keep` (a change by the logged-in owner) they
/// stay valid, and the caller revokes the sessions it ends.
pub async fn set_password(
    client: &impl Sql,
    id: i64,
    password_hash: &str,
    tokens: Tokens,
) -> Result<(), tokio_postgres::Error> {
    let bump: i32 = match tokens {
        Tokens::Outdate => 1,
        Tokens::Keep => 0,
    };
    client.execute("WITH cleared AS ( \
                 UPDATE login_attempts SET failures = 0, last_failure_at = NULL WHERE user_id = $1 \
             ) \
             UPDATE users SET password_hash = $2, password_changed_at = now(), token_version = token_version + $3, \
             failed_logins = 0, failed_logins_since = NULL WHERE id = $1", &[(&id, Type::INT8), (&password_hash, Type::TEXT), (&bump, Type::INT4)]).await?;
    Ok(())
}

/// What a new password does to the account's tokens (see [`set_password`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tokens {
    Outdate,
    Keep,
}

/// `create-superuser`: creates the admin, or updates the password and role of an existing
/// account with that email (the seed command's behaviour).
pub async fn upsert_superuser(
    client: &impl Sql,
    email: &str,
    username: &str,
    password_hash: &str,
) -> Result<(i64, bool), WriteError> {
    let row = client
        .query_one("INSERT INTO users (email, username, password_hash, role) VALUES ($1, $2, $3, 'admin') \
             ON CONFLICT (lower(email)) DO UPDATE SET password_hash = EXCLUDED.password_hash, role = 'admin', \
               is_active = true, pending_activation = false, password_changed_at = now(), token_version = users.token_version + 1 \
             RETURNING id, (xmax = 0)", &[(&email, Type::TEXT), (&username, Type::TEXT), (&password_hash, Type::TEXT)])
        .await
        .map_err(classify)?;
    Ok((row.get(0), row.get(1)))
}

/// Deletes the account `id` (its refresh families and tokens, reset records and login
/// attempts go with it: `ON DELETE CASCADE`; its audit rows stay, detached: `SET NULL`) and
/// strips its address from the email outbox: unsent messages are dropped, sent ones keep no
/// address. Returns false when there was no such account.
pub async fn delete(
    client: &impl Sql,
    id: i64,
    email: &str,
) -> Result<bool, tokio_postgres::Error> {
    super::outbox::forget_addresses(client, &[email.to_owned()]).await?;
    Ok(client
        .execute("DELETE FROM users WHERE id = $1", &[(&id, Type::INT8)])
        .await?
        == 1)
}

/// Sets `is_active` of the account with this email (an operator's decision: an account waiting
/// for activation waits no more); returns its id and the previous value.
pub async fn set_active(
    client: &impl Sql,
    email: &str,
    active: bool,
) -> Result<Option<(i64, bool)>, tokio_postgres::Error> {
    Ok(client
        .query_opt(
            "UPDATE users u SET is_active = $2, pending_activation = false FROM (SELECT id, is_active FROM users \
             WHERE lower(email) = lower($1) FOR UPDATE) old \
             WHERE u.id = old.id RETURNING u.id, old.is_active",
            &[(&email, Type::TEXT), (&active, Type::BOOL)],
        )
        .await?
        .map(|row| (row.get(0), row.get(1))))
}

/// Outdates every access token of the account: the origin refuses them from now on.
pub async fn bump_token_version(client: &impl Sql, id: i64) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "UPDATE users SET token_version = token_version + 1 WHERE id = $1",
            &[(&id, Type::INT8)],
        )
        .await?;
    Ok(())
}

/// Activates the account `id` if it is waiting for activation; whether it did.
pub async fn activate(client: &impl Sql, id: i64) -> Result<bool, tokio_postgres::Error> {
    Ok(client
        .execute(
            "UPDATE users SET is_active = true, pending_activation = false \
             WHERE id = $1 AND pending_activation",
            &[(&id, Type::INT8)],
        )
        .await?
        == 1)
}
