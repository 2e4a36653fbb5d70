//! The rules every new file of `migrations/` keeps (docs/deploy.md, "Upgrades"), checked on
//! its text:
//! - additive: no `DROP TABLE`, `DROP COLUMN` or `RENAME` (the previous release, which a
//!   rollback runs on this schema, still reads them);
//! - online-safe: nothing that holds a table lock for a scan or a rewrite while traffic
//!   waits behind it. A constraint on an existing table is added `NOT VALID` and validated by a
//!   later migration (`VALIDATE CONSTRAINT` only blocks schema changes); no index on an existing
//!   table (refinery runs each migration in a transaction, where `CREATE INDEX CONCURRENTLY`
//!   cannot run); no column type change, `SET NOT NULL` or `LOCK TABLE`; a new column has no
//!   volatile default (a rewrite) and no inline `CHECK` or `REFERENCES` (a scan).
//!
//! A statement that breaks a rule on purpose says why in a comment line right above it:
//! `-- online-safe: <reason>` (e.g. a table known to stay small). The migrations released
//! before these rules are listed with what each breaks, so the checker is shown to catch them.

use std::collections::BTreeSet;
use std::path::Path;

/// Migrations up to this version were released before the rules.
const RELEASED_BEFORE_RULES: u32 = 9;

/// One statement of a migration: its text (upper case, comments out, spaces collapsed) and
/// whether the comment lines right above it justify breaking a rule.
struct Statement {
    text: String,
    justified: bool,
}

fn statements(sql: &str) -> Vec<Statement> {
    let mut out = Vec::new();
    let (mut text, mut justified) = (String::new(), false);
    for line in sql.lines() {
        let line = line.trim();
        if let Some(comment) = line.strip_prefix("--") {
            if text.trim().is_empty() {
                let reason = comment.trim().strip_prefix("online-safe:").map(str::trim);
                justified |= reason.is_some_and(|r| !r.is_empty());
            }
            continue;
        }
        let code = line.split("--").next().unwrap_or_default();
        for (i, part) in code.split(';').enumerate() {
            if i > 0 {
                push(&mut out, &mut text, &mut justified);
            }
            text.push(' ');
            text.push_str(part);
        }
    }
    push(&mut out, &mut text, &mut justified);
    out
}

fn push(out: &mut Vec<Statement>, text: &mut String, justified: &mut bool) {
    let collapsed = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if !collapsed.is_empty() {
        out.push(Statement {
            text: collapsed.to_uppercase(),
            justified: *justified,
        });
    }
    text.clear();
    *justified = false;
}

/// The table a `CREATE TABLE` makes.
fn created_table(text: &str) -> Option<String> {
    let rest = text.strip_prefix("CREATE TABLE ")?;
    let rest = rest.strip_prefix("IF NOT EXISTS ").unwrap_or(rest);
    Some(rest.split([' ', '(']).next()?.to_owned())
}

/// The table a `CREATE INDEX` is on.
fn indexed_table(text: &str) -> Option<String> {
    if !(text.starts_with("CREATE INDEX") || text.starts_with("CREATE UNIQUE INDEX")) {
        return None;
    }
    let (_, rest) = text.split_once(" ON ")?;
    let rest = rest.strip_prefix("ONLY ").unwrap_or(rest);
    Some(rest.split([' ', '(']).next()?.to_owned())
}

const VOLATILE: [&str; 5] = [
    "GEN_RANDOM_UUID(",
    "RANDOM(",
    "CLOCK_TIMESTAMP(",
    "NEXTVAL(",
    "UUID_GENERATE_V4(",
];

/// The rules `sql` breaks, one line each.
fn violations(sql: &str) -> Vec<String> {
    let statements = statements(sql);
    let created: BTreeSet<String> = statements
        .iter()
        .filter_map(|s| created_table(&s.text))
        .collect();
    let mut found = Vec::new();
    for s in statements.iter().filter(|s| !s.justified) {
        let t = &s.text;
        let mut broken = |rule: &str| found.push(format!("{rule}: {t}"));
        if t.contains("DROP TABLE") || t.contains("DROP COLUMN") || t.contains(" RENAME ") {
            broken("not additive");
        }
        if t.contains("ADD CONSTRAINT")
            && (t.contains("CHECK") || t.contains("FOREIGN KEY"))
            && !t.contains("NOT VALID")
        {
            broken("a constraint added without NOT VALID");
        }
        if indexed_table(t).is_some_and(|table| !created.contains(&table)) {
            broken("an index on an existing table");
        }
        if t.contains(" TYPE ") && t.contains("ALTER COLUMN") || t.contains("SET NOT NULL") {
            broken("a rewrite or a scan under lock");
        }
        if t.starts_with("LOCK ") {
            broken("an explicit table lock");
        }
        if t.starts_with("ALTER TABLE") {
            for column in t.split("ADD COLUMN").skip(1) {
                if VOLATILE.iter().any(|f| column.contains(f)) {
                    broken("a new column with a volatile default");
                }
                if column.contains(" CHECK") || column.contains(" REFERENCES ") {
                    broken("a new column with an inline constraint");
                }
            }
        }
    }
    found
}

/// `V12__name.sql` → 12.
fn version(file: &str) -> Option<u32> {
    file.strip_prefix('V')?.split("__").next()?.parse().ok()
}

#[test]
fn new_migrations_are_additive_and_online_safe() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations");
    let mut checked = 0;
    let mut released = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let number = version(&file).unwrap_or_else(|| panic!("{file}: not V<n>__<name>.sql"));
        let found = violations(&std::fs::read_to_string(&path).unwrap());
        if number <= RELEASED_BEFORE_RULES {
            released.push((number, found.len()));
            continue;
        }
        checked += 1;
        assert!(
            found.is_empty(),
            "migrations/{file} breaks the online-safe rules (docs/deploy.md; a statement that \
             must, says why in `-- online-safe: <reason>` above it):\n{}",
            found.join("\n")
        );
    }
    released.sort();
    // What the released ones break: the rules catch the patterns that are in the history.
    let breaking: Vec<u32> = released
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(v, _)| *v)
        .collect();
    assert_eq!(breaking, [2, 4, 5, 6, 9], "{released:?}");
    println!("{checked} migrations after V{RELEASED_BEFORE_RULES} checked");
}

#[test]
fn each_rule_refuses_its_pattern_and_accepts_the_safe_form() {
    let refused = [
        "ALTER TABLE users DROP COLUMN role;",
        "DROP TABLE sessions;",
        "ALTER TABLE users RENAME COLUMN email TO mail;",
        "ALTER TABLE users ADD CONSTRAINT c CHECK (id > 0);",
        "alter table a add constraint f foreign key (u) references users (id);",
        "CREATE INDEX users_role ON users (role);",
        "CREATE UNIQUE INDEX IF NOT EXISTS x ON ONLY users (lower(email));",
        "ALTER TABLE users ALTER COLUMN role TYPE text;",
        "ALTER TABLE users ALTER COLUMN role SET NOT NULL;",
        "LOCK TABLE users;",
        "ALTER TABLE users ADD COLUMN token uuid NOT NULL DEFAULT gen_random_uuid();",
        "ALTER TABLE users ADD COLUMN n int NOT NULL DEFAULT 0 CHECK (n >= 0);",
        "-- a plain comment is no reason\nDROP TABLE sessions;",
        "-- online-safe:\nDROP TABLE sessions;",
    ];
    for sql in refused {
        assert!(!violations(sql).is_empty(), "not refused: {sql}");
    }
    let accepted = [
        "CREATE TABLE t (id bigint PRIMARY KEY, u bigint REFERENCES users (id));\n\
         CREATE INDEX t_u ON t (u);",
        "ALTER TABLE users ADD COLUMN seen timestamptz;",
        "ALTER TABLE users ADD COLUMN n int NOT NULL DEFAULT 0, ADD COLUMN m text;",
        "ALTER TABLE users ADD CONSTRAINT c CHECK (id > 0) NOT VALID;",
        "ALTER TABLE users VALIDATE CONSTRAINT c;",
        "-- online-safe: the table holds one row per deployment\n\
         CREATE INDEX settings_k ON settings (k);",
        "ALTER TABLE users ADD COLUMN note text; -- DROP TABLE users in a comment",
    ];
    for sql in accepted {
        assert_eq!(violations(sql), Vec::<String>::new(), "refused: {sql}");
    }
}
