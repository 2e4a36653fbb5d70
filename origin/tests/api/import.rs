//! `origin import-django` against hashes made by Django itself
//! (tests/fixtures/make_django_users.py): imported users log in with their Django passwords and
//! are re-hashed to argon2id; the rest are reported; a second run imports nothing twice.

use reqwest::StatusCode;

use crate::helpers::{origin_cli, spawn_app, TestApp, TestDb};

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/django_users.json"
);

/// The fixture's users: (id, email, password as typed at Django's sign-up).
const ALICE: (i64, &str, &str) = (3, "alice@example.com", "73926481"); // pbkdf2_sha256
const BOB: (i64, &str, &str) = (5, "bob@example.com", "58203941"); // Django's argon2
const ROOT: (i64, &str, &str) = (8, "root@example.com", "97531864"); // pbkdf2_sha256, admin
const DAVE: (i64, &str, &str) = (11, "dave@example.com", "44271903"); // pbkdf2_sha1: unsupported
const ERIN: (i64, &str, &str) = (12, "erin@example.com", "66120487"); // inactive

fn import(db_url: &str, args: &[&str]) -> (bool, String) {
    let args: Vec<&str> = std::iter::once("import-django")
        .chain(args.iter().copied())
        .collect();
    let (ok, stdout, stderr) = origin_cli(db_url, &args);
    (ok, stdout + &stderr)
}

async fn stored_hash(app: &TestApp, id: i64) -> String {
    app.db
        .client()
        .await
        .query_one("SELECT password_hash FROM users WHERE id = $1", &[&id])
        .await
        .unwrap()
        .get(0)
}

async fn logs_in_and_is_rehashed(app: &TestApp, (id, email, password): (i64, &str, &str)) {
    let before = stored_hash(app, id).await;
    assert!(!before.starts_with("$argon2id$v=19$m=19456"), "{before}");
    let wrong = app.login(email, "00000000").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED, "{email}");
    assert_eq!(
        stored_hash(app, id).await,
        before,
        "a failed login keeps the hash"
    );

    let reply = app.login(email, password).await;
    assert_eq!(reply.status, StatusCode::OK, "{email}: {}", reply.body);
    let access = reply.body["access"].as_str().unwrap();
    let me = app.me(access).await;
    assert_eq!(me.body["id"], id, "the Django id is kept");
    assert_eq!(me.body["email"], email);
    let after = stored_hash(app, id).await;
    assert!(
        after.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{after}"
    );
    // The re-hash keeps the password: the same login works again, now against argon2id.
    assert_eq!(app.login(email, password).await.status, StatusCode::OK);
    // …and does not outdate the tokens already issued.
    assert_eq!(app.me(access).await.status, StatusCode::OK);
}

#[tokio::test]
async fn django_users_log_in_with_their_old_passwords_and_are_rehashed() {
    let app = spawn_app().await;
    let (ok, report) = import(&app.db.url, &["--from-json", FIXTURE]);
    assert!(ok, "{report}");
    assert!(
        report.contains("read 6 users; imported 6 (4 can log in"),
        "{report}"
    );
    assert!(
        report.contains("need a password reset: 1 with pbkdf2_sha1 hashes"),
        "{report}"
    );
    assert!(
        report.contains("need a password reset: 1 with unusable hashes"),
        "{report}"
    );

    logs_in_and_is_rehashed(&app, ALICE).await;
    logs_in_and_is_rehashed(&app, BOB).await;
    logs_in_and_is_rehashed(&app, ROOT).await;
    let root_role: String = app
        .db
        .client()
        .await
        .query_one("SELECT role FROM users WHERE id = $1", &[&ROOT.0])
        .await
        .unwrap()
        .get(0);
    assert_eq!(root_role, "admin");
    // Unsupported hasher, unusable password, inactive account: refused like a wrong password.
    for (_, email, password) in [DAVE, ERIN, (9, "carol@example.com", "")] {
        let reply = app
            .login(
                email,
                if password.is_empty() {
                    "12345678"
                } else {
                    password
                },
            )
            .await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{email}");
        assert_eq!(
            reply.body["detail"],
            "No active account found with the given credentials"
        );
    }
    assert_eq!(
        app.count("SELECT count(*) FROM users WHERE password_hash LIKE 'pbkdf2_sha1$%'")
            .await,
        1,
        "a hash that did not verify is left alone"
    );

    // New sign-ups continue after the highest imported id.
    let new = app.register("new@example.com", "newbie", "80417253").await;
    assert_eq!(new.status, StatusCode::CREATED, "{}", new.body);
    assert!(new.body["id"].as_i64().unwrap() > 12, "{}", new.body);

    // Audit: one row per imported user, one per re-hash.
    assert_eq!(
        app.count("SELECT count(*) FROM audit_log WHERE event = 'imported'")
            .await,
        6
    );
    assert_eq!(
        app.count("SELECT count(*) FROM audit_log WHERE event = 'password_rehashed'")
            .await,
        3
    );

    // A second run imports nothing twice.
    let (ok, again) = import(&app.db.url, &["--from-json", FIXTURE]);
    assert!(ok, "{again}");
    assert!(again.contains("imported 0"), "{again}");
    assert!(again.contains("skipped 6 already present"), "{again}");
    assert_eq!(app.count("SELECT count(*) FROM users").await, 7);
}

/// Django's own table layout (accounts/migrations/0001_initial.py of the original).
const DJANGO_TABLE: &str = "CREATE TABLE accounts_user (
    id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    password varchar(128) NOT NULL,
    last_login timestamptz NULL,
    is_superuser boolean NOT NULL,
    username varchar(150) NOT NULL UNIQUE,
    first_name varchar(150) NOT NULL,
    last_name varchar(150) NOT NULL,
    is_staff boolean NOT NULL,
    is_active boolean NOT NULL,
    date_joined timestamptz NOT NULL,
    email varchar(254) NOT NULL UNIQUE,
    role varchar(16) NOT NULL,
    is_email_verified boolean NOT NULL)";

#[tokio::test]
async fn imports_from_the_django_database_and_a_dry_run_writes_nothing() {
    let app = spawn_app().await;
    let django = TestDb::create().await;
    let client = django.client().await;
    client.batch_execute(DJANGO_TABLE).await.unwrap();
    let fixture: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(FIXTURE).unwrap()).unwrap();
    for record in fixture.as_array().unwrap() {
        client
            .execute(
                "INSERT INTO accounts_user SELECT * FROM json_populate_record(NULL::accounts_user, $1::text::json)",
                &[&{
                    let mut fields = record["fields"].clone();
                    fields["id"] = record["pk"].clone();
                    fields.to_string()
                }],
            )
            .await
            .unwrap();
    }
    // One account the Rust service already has under another case: skipped, not duplicated.
    let taken = app.register("Bob@Example.com", "bobby", "64829173").await;
    assert_eq!(taken.status, StatusCode::CREATED);

    let (ok, dry) = import(&app.db.url, &["--from-database", &django.url, "--dry-run"]);
    assert!(ok, "{dry}");
    assert!(dry.contains("imported 5"), "{dry}");
    assert!(dry.contains("dry run: nothing was written"), "{dry}");
    assert_eq!(app.count("SELECT count(*) FROM users").await, 1);

    let (ok, report) = import(&app.db.url, &["--from-database", &django.url]);
    assert!(ok, "{report}");
    assert!(report.contains("read 6 users; imported 5"), "{report}");
    assert!(report.contains("skipped 1 already present"), "{report}");
    assert_eq!(app.count("SELECT count(*) FROM users").await, 6);
    logs_in_and_is_rehashed(&app, ALICE).await;

    // A table name is checked before it reaches SQL.
    let (ok, bad) = import(
        &app.db.url,
        &[
            "--from-database",
            &django.url,
            "--table",
            "accounts_user; DROP TABLE users",
        ],
    );
    assert!(!ok);
    assert!(bad.contains("invalid --table"), "{bad}");
    assert_eq!(app.count("SELECT count(*) FROM users").await, 6);
}

/// A Django-style argon2 hash of `password` whose cost parameters are as given, made by the
/// argon2 crate (a genuine hash: only the caps can make it fail).
fn django_argon2(password: &str, m: u32, t: u32, p: u32) -> String {
    use argon2::password_hash::{rand_core::OsRng, PasswordHasher, SaltString};
    let params = argon2::Params::new(m, t, p, None).unwrap();
    let phc = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
        .hash_password(password.as_bytes(), &SaltString::generate(&mut OsRng))
        .unwrap()
        .to_string();
    format!("argon2{phc}")
}

#[tokio::test]
async fn argon2_hashes_beyond_the_cost_caps_are_reported_and_never_computed() {
    let app = spawn_app().await;
    let user = |pk: i64, email: &str, hash: &str| {
        serde_json::json!({"model": "accounts.user", "pk": pk, "fields": {
            "email": email, "username": email.split('@').next().unwrap(), "password": hash,
            "date_joined": "2025-01-01T12:00:00Z"}})
    };
    // A genuine hash with one pass too many (t=17), a hostile row asking for 4 TiB of memory,
    // and Django's own defaults (m=102400, t=2, p=8), which must keep working.
    let slow = django_argon2("73926481", 64, 17, 1);
    let hostile = "argon2$argon2id$v=19$m=4294967295,t=2,p=1$WVpnNGFsUzRqNndhSFhONnhDNlZFaw$JZAT5+RZknVuxof7sx1JBSLIe4DuefGCSwZPhFxgobo";
    let dump = serde_json::json!([
        user(21, "slow@example.com", &slow),
        user(22, "hostile@example.com", hostile),
        user(23, "bob@example.com", "argon2$argon2id$v=19$m=102400,t=2,p=8$WVpnNGFsUzRqNndhSFhONnhDNlZFaw$JZAT5+RZknVuxof7sx1JBSLIe4DuefGCSwZPhFxgobo"),
    ]);
    let path = std::env::temp_dir().join(format!("capped-{}.json", uuid::Uuid::new_v4()));
    std::fs::write(&path, dump.to_string()).unwrap();
    let (ok, report) = import(&app.db.url, &["--from-json", path.to_str().unwrap()]);
    std::fs::remove_file(&path).unwrap();
    assert!(ok, "{report}");
    assert!(report.contains("imported 3 (1 can log in"), "{report}");
    assert!(
        report.contains(
            "need a password reset: 2 with argon2 (cost parameters over the caps) hashes"
        ),
        "{report}"
    );
    // The right password does not open the over-the-cap account, and the hostile row is
    // refused without the process trying to allocate its memory.
    let reply = app.login("slow@example.com", "73926481").await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.body);
    let reply = app.login("hostile@example.com", "58203941").await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.body);
    // Django's default parameters still verify (and are re-hashed).
    logs_in_and_is_rehashed(&app, (23, "bob@example.com", "58203941")).await;
}

/// Ids are never handed out twice: a dry run leaves the id sequence alone, and a real import
/// moves it only forward, so an id freed by a deleted account is not reused by the next sign-up.
#[tokio::test]
async fn an_import_never_rewinds_the_id_sequence() {
    let app = spawn_app().await;
    // As if 100 accounts had signed up and the newest had deleted itself.
    app.sql("SELECT setval(pg_get_serial_sequence('users', 'id'), 100)")
        .await;
    let (ok, dry) = import(&app.db.url, &["--from-json", FIXTURE, "--dry-run"]);
    assert!(ok, "{dry}");
    let (ok, report) = import(&app.db.url, &["--from-json", FIXTURE]);
    assert!(ok, "{report}");
    let reply = app
        .register("new@example.com", "newcomer", "64829173")
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    assert_eq!(reply.body["id"], 101);
}
