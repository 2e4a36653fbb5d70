//! `origin import-django`: users from the Django original, with their Django password hashes,
//! read from its database or from `manage.py dumpdata` JSON.
//!
//! Ids are kept (tokens and client data refer to them), so are the emails, usernames, names,
//! roles, active flags and dates. Hashes are stored as they are: `pbkdf2_sha256` and Django's
//! `argon2` verify at login and are then replaced by an argon2id hash; unusable (`!…`) and other
//! hashers, and hashes whose cost parameters exceed the caps in `password`, cannot log in and
//! need a password reset. Users already present (same id, email or
//! username) are skipped, so a second run imports only what is new.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;
use shared::validate::{Email, Username};
use tokio_postgres::types::Type;

use crate::db::Sql;
use crate::password;
use crate::store::audit::{self, Event};

/// One Django user, as stored in its `accounts_user` (or stock `auth_user`) table.
#[derive(Debug, Clone, Deserialize)]
pub struct DjangoUser {
    #[serde(skip)]
    pub id: i64,
    pub email: String,
    pub username: String,
    pub password: String,
    #[serde(default)]
    pub first_name: String,
    #[serde(default)]
    pub last_name: String,
    #[serde(default = "yes")]
    pub is_active: bool,
    #[serde(default)]
    pub is_superuser: bool,
    #[serde(default)]
    pub role: Option<String>,
    pub date_joined: DateTime<Utc>,
    #[serde(default)]
    pub last_login: Option<DateTime<Utc>>,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
struct DumpRecord {
    model: String,
    pk: serde_json::Value,
    fields: serde_json::Value,
}

/// Users from `manage.py dumpdata accounts.User` (or `auth.User`) output; records of other
/// models are ignored.
pub fn from_dumpdata(json: &str) -> anyhow::Result<Vec<DjangoUser>> {
    let records: Vec<DumpRecord> =
        serde_json::from_str(json).context("not a `manage.py dumpdata` JSON array")?;
    let mut users = Vec::new();
    for record in records.into_iter().filter(|r| r.model.ends_with(".user")) {
        let id = record
            .pk
            .as_i64()
            .with_context(|| format!("{} record with a non-integer pk", record.model))?;
        let mut user: DjangoUser = serde_json::from_value(record.fields)
            .with_context(|| format!("{} record pk {id}", record.model))?;
        user.id = id;
        users.push(user);
    }
    Ok(users)
}

/// A table name as `schema.table` or `table`, checked so it can be quoted into SQL (identifiers
/// cannot be bound as parameters).
fn quoted_table(name: &str) -> anyhow::Result<String> {
    let parts: Vec<&str> = name.split('.').collect();
    let valid = |p: &str| {
        !p.is_empty()
            && p.len() <= 63
            && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !p.starts_with(|c: char| c.is_ascii_digit())
    };
    if parts.len() > 2 || !parts.iter().all(|p| valid(p)) {
        bail!(
            "invalid --table {name:?}: expected `table` or `schema.table` of letters, digits and _"
        );
    }
    Ok(parts
        .iter()
        .map(|p| format!("\"{p}\""))
        .collect::<Vec<_>>()
        .join("."))
}

/// Reads every user of `table` in the Django database at `url`. Works with the original's
/// `accounts_user` (which has `role`) and Django's stock `auth_user` (which has not).
pub async fn from_database(url: &str, table: &str) -> anyhow::Result<Vec<DjangoUser>> {
    let quoted = quoted_table(table)?;
    let target = crate::tls::postgres::parse(url)?;
    let connector = crate::tls::postgres::connector(&target)?;
    let (client, connection) = target
        .config
        .connect(connector)
        .await
        .context("connecting to the Django database")?;
    let connection = tokio::spawn(connection);
    let has_role: bool = client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM information_schema.columns \
             WHERE table_name = $1 AND column_name = 'role' \
               AND ($2::text IS NULL OR table_schema = $2))",
            &[
                &table.rsplit('.').next().unwrap_or(table),
                &table.split_once('.').map(|(schema, _)| schema),
            ],
        )
        .await?
        .get(0);
    let role = if has_role { "role" } else { "NULL::text" };
    let rows = client
        .query(
            &format!(
                "SELECT id, email, username, password, first_name, last_name, is_active, \
                 is_superuser, {role}, date_joined, last_login FROM {quoted} ORDER BY id"
            ),
            &[],
        )
        .await
        .with_context(|| format!("reading users from {table}"))?;
    drop(client);
    let _ = connection.await;
    Ok(rows
        .iter()
        .map(|row| DjangoUser {
            id: row.get(0),
            email: row.get(1),
            username: row.get(2),
            password: row.get(3),
            first_name: row.get(4),
            last_name: row.get(5),
            is_active: row.get(6),
            is_superuser: row.get(7),
            role: row.get(8),
            date_joined: row.get(9),
            last_login: row.get(10),
        })
        .collect())
}

/// What an import did.
#[derive(Debug, Default)]
pub struct Report {
    pub read: usize,
    pub imported: usize,
    /// Imported users whose hash cannot log in (unusable or another hasher), by hash kind.
    pub need_reset: BTreeMap<String, usize>,
    /// Ids skipped because the id, email or username is already taken.
    pub already_present: Vec<i64>,
    /// Ids skipped with the reason (never a password or hash).
    pub invalid: Vec<(i64, String)>,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let need_reset: usize = self.need_reset.values().sum();
        writeln!(
            f,
            "read {} users; imported {} ({} can log in with their Django password and are \
             re-hashed to argon2id at their first login, {} need a password reset)",
            self.read,
            self.imported,
            self.imported - need_reset,
            need_reset
        )?;
        for (kind, n) in &self.need_reset {
            writeln!(f, "  need a password reset: {n} with {kind} hashes")?;
        }
        if !self.already_present.is_empty() {
            writeln!(
                f,
                "skipped {} already present (same id, email or username): ids {:?}",
                self.already_present.len(),
                self.already_present
            )?;
        }
        for (id, reason) in &self.invalid {
            writeln!(f, "skipped id {id}: {reason}")?;
        }
        Ok(())
    }
}

/// The hash kind for the report: the part before the first `$`, `unusable` for Django's `!`.
fn hash_kind(stored: &str) -> String {
    if stored.starts_with('!') || stored.is_empty() {
        return "unusable".into();
    }
    stored.split('$').next().unwrap_or_default().to_owned()
}

fn check(user: &DjangoUser) -> Result<(), String> {
    Email::parse(&user.email).map_err(|m| format!("email: {m}"))?;
    Username::parse(&user.username).map_err(|m| format!("username: {m}"))?;
    for (name, value) in [
        ("first_name", &user.first_name),
        ("last_name", &user.last_name),
    ] {
        if value.chars().count() > 150 {
            return Err(format!("{name} longer than 150 characters"));
        }
    }
    Ok(())
}

/// Inserts `users` in one transaction (nothing is written if any statement fails), prints
/// progress to stderr every 1,000 users, and rolls back when `dry_run`.
pub async fn import(
    client: &mut crate::db::Client,
    users: &[DjangoUser],
    source: &str,
    dry_run: bool,
) -> anyhow::Result<Report> {
    let mut report = Report {
        read: users.len(),
        ..Report::default()
    };
    let tx = client.transaction().await?;
    for (done, user) in users.iter().enumerate() {
        if done > 0 && done % 1_000 == 0 {
            eprintln!("… {done} of {} users", users.len());
        }
        if let Err(reason) = check(user) {
            report.invalid.push((user.id, reason));
            continue;
        }
        let admin = user.is_superuser || user.role.as_deref() == Some("admin");
        let role = if admin { "admin" } else { "user" };
        let inserted = tx
            .query_opt(
                "INSERT INTO users (id, email, username, password_hash, role, first_name, last_name, \
                   is_active, date_joined, last_login) \
                 OVERRIDING SYSTEM VALUE VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                 ON CONFLICT DO NOTHING RETURNING id",
                &[
                    (&user.id, Type::INT8),
                    (&user.email, Type::TEXT),
                    (&user.username, Type::TEXT),
                    (&user.password, Type::TEXT),
                    (&role, Type::TEXT),
                    (&user.first_name, Type::TEXT),
                    (&user.last_name, Type::TEXT),
                    (&user.is_active, Type::BOOL),
                    (&user.date_joined, Type::TIMESTAMPTZ),
                    (&user.last_login, Type::TIMESTAMPTZ),
                ],
            )
            .await
            .with_context(|| format!("inserting user id {}", user.id))?;
        if inserted.is_none() {
            report.already_present.push(user.id);
            continue;
        }
        report.imported += 1;
        let kind = hash_kind(&user.password);
        if !password::is_supported(&user.password) {
            *report.need_reset.entry(kind.clone()).or_default() += 1;
        } else if password::exceeds_caps(&user.password) {
            // A corrupt or hostile row: logins refuse it without computing it.
            *report
                .need_reset
                .entry(format!("{kind} (cost parameters over the caps)"))
                .or_default() += 1;
        }
        audit::record(
            &tx,
            Some(user.id),
            Event::Imported,
            json!({ "from": source, "hash": kind }),
        )
        .await?;
    }
    if dry_run {
        tx.rollback().await?;
        return Ok(report);
    }
    // New registrations continue after the highest imported id. Never backwards: an id that a
    // deleted account had must not be handed out again. (A sequence is not transactional, which
    // is why a dry run does not touch it.)
    tx.execute(
        "SELECT setval(pg_get_serial_sequence('users', 'id'), GREATEST( \
           (SELECT max(id) FROM users), \
           pg_sequence_last_value(pg_get_serial_sequence('users', 'id')::regclass), \
           1))",
        &[],
    )
    .await?;
    tx.commit().await?;
    Ok(report)
}

/// Reads the JSON export at `path`.
pub fn read_dumpdata(path: &Path) -> anyhow::Result<Vec<DjangoUser>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    from_dumpdata(&text).with_context(|| format!("in {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_are_checked_before_quoting() {
        assert_eq!(quoted_table("accounts_user").unwrap(), "\"accounts_user\"");
        assert_eq!(
            quoted_table("public.auth_user").unwrap(),
            "\"public\".\"auth_user\""
        );
        for bad in [
            "",
            "a.b.c",
            "users; DROP TABLE users",
            "\"x\"",
            "1table",
            "a..b",
        ] {
            assert!(quoted_table(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn dumpdata_keeps_user_records_and_their_pk() {
        let users = from_dumpdata(
            r#"[{"model": "accounts.user", "pk": 7, "fields": {"email": "a@b.co", "username": "a",
                 "password": "!x", "date_joined": "2025-01-01T12:00:00Z", "role": "admin"}},
                {"model": "accounts.passwordresetotp", "pk": 1, "fields": {}}]"#,
        )
        .unwrap();
        assert_eq!(users.len(), 1);
        assert_eq!(users[0].id, 7);
        assert_eq!(users[0].role.as_deref(), Some("admin"));
        assert!(users[0].is_active);
        assert!(from_dumpdata("{}").is_err());
        assert!(from_dumpdata(r#"[{"model": "auth.user", "pk": "x", "fields": {}}]"#).is_err());
    }

    #[test]
    fn hash_kinds_for_the_report() {
        assert_eq!(hash_kind("!abc"), "unusable");
        assert_eq!(hash_kind(""), "unusable");
        assert_eq!(hash_kind("pbkdf2_sha1$1$a$b"), "pbkdf2_sha1");
        assert_eq!(hash_kind("argon2$argon2id$v=19$..."), "argon2");
    }
}
