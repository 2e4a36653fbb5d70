//! Throttle scopes and their rates, under bursts, across restarts, per IPv6 /64.

use crate::prelude::*;

pub(crate) async fn fourth_auth_call_in_a_minute_is_throttled(s: &mut Stack) {
    let ip = "198.51.100.7";
    for _ in 0..3 {
        let r = s
            .post(
                "/api/auth/jwt/create/",
                ip,
                json!({"email": "nobody@example.com", "password": PASSWORD}),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    let r = s
        .post(
            "/api/auth/jwt/create/",
            ip,
            json!({"email": "nobody@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    assert_eq!(
        r.body,
        json!({"detail": format!("Request was throttled. Expected available in {wait} seconds.")})
    );
    // Another client is not affected.
    let other = s
        .post(
            "/api/auth/jwt/create/",
            "198.51.100.70",
            json!({"email": "nobody@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(other.status, StatusCode::UNAUTHORIZED);
}

/// 10 logins at once from one address, `auth` = 3/min: exactly 3 reach the origin.
pub(crate) async fn parallel_calls_in_one_scope_allow_exactly_the_rate(s: &mut Stack) {
    let replies = futures::future::join_all((0..10).map(|_| {
        s.post(
            "/api/auth/jwt/create/",
            "198.51.100.180",
            json!({"email": "nobody@example.com", "password": PASSWORD}),
        )
    }))
    .await;
    let statuses: Vec<u16> = replies.iter().map(|r| r.status.as_u16()).collect();
    assert_eq!(
        statuses.iter().filter(|&&c| c == 401).count(),
        3,
        "exactly the rate gets through: {statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|&&c| c == 429).count(),
        7,
        "{statuses:?}"
    );
}

/// The limiter keeps each key's history in memory and writes it through: after workerd
/// restarts on the same Durable Object state, a client that used up `auth` (3/min) is still
/// refused, and another client is not.
pub(crate) async fn throttle_counts_survive_a_worker_restart(s: &mut Stack) {
    let config = prebuilt_worker_config("restart", true);
    let state = tempdir::Dir::new();
    let login = |edge: String, ip: &'static str| {
        let http = s.http.clone();
        async move {
            let r = http
                .post(format!("{edge}/api/auth/jwt/create/"))
                .header("CF-Connecting-IP", ip)
                .json(&json!({"email": "nobody@example.com", "password": PASSWORD}))
                .send()
                .await
                .unwrap();
            read(r).await
        }
    };
    let (mut edge, url) = serve_prebuilt(s, &config, &state.0).await;
    for _ in 0..3 {
        let r = login(url.clone(), "198.51.100.220").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    }
    let fourth = login(url.clone(), "198.51.100.220").await;
    assert_eq!(fourth.status, StatusCode::TOO_MANY_REQUESTS);
    edge.stop();

    let (_edge, url) = serve_prebuilt(s, &config, &state.0).await;
    let after = login(url.clone(), "198.51.100.220").await;
    assert_eq!(
        after.status,
        StatusCode::TOO_MANY_REQUESTS,
        "the history was reloaded from storage: {}",
        after.body
    );
    let wait: u64 = after.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    let other = login(url, "198.51.100.221").await;
    assert_eq!(other.status, StatusCode::UNAUTHORIZED, "{}", other.body);
}

/// Every address of one IPv6 /64 is one client: 10 logins from 10 addresses of one /64 in a
/// minute, `auth` = 3/min → the 4th and later are 429. Another /64 is another client.
pub(crate) async fn ipv6_clients_are_throttled_per_64(s: &mut Stack) {
    let s: &Stack = s;
    let login = |ip: String| async move {
        s.post(
            "/api/auth/jwt/create/",
            &ip,
            json!({"email": "nobody@example.com", "password": PASSWORD}),
        )
        .await
        .status
    };
    let mut statuses = Vec::new();
    for host in 1..=10 {
        // Spellings vary too: upper case, zeros written out.
        let ip = if host % 2 == 0 {
            format!("2001:DB8:0:12::{host:x}")
        } else {
            format!("2001:0db8:0000:0012:{host:x}:0:0:1")
        };
        statuses.push(login(ip).await);
    }
    let allowed = statuses
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    assert_eq!(statuses[..3], [StatusCode::UNAUTHORIZED; 3], "{statuses:?}");
    assert!(
        statuses[3..]
            .iter()
            .all(|s| *s == StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    println!(
        "  one /64, 10 addresses: {allowed} logins let through, {} throttled",
        10 - allowed
    );
    assert_eq!(
        login("2001:db8:0:13::1".into()).await,
        StatusCode::UNAUTHORIZED,
        "another /64 is another client"
    );
}

/// Durable Objects do not keep what cannot matter any more: a `RateLimiter` deletes its
/// storage by alarm once the window of its last allowed request has passed (`anon` = 20/sec
/// here, so about 1.1 s), and an `OtpStore` schedules its alarm at the code's expiry (10 min,
/// too long to wait for: the test reads the alarm workerd stored). Checked in workerd's own
/// storage files under the `--persist-to` directory.
pub(crate) async fn durable_objects_delete_their_storage_when_nothing_in_them_matters(
    s: &mut Stack,
) {
    s.register_and_login("198.51.100.240", "nell@example.com", "nell")
        .await;
    let config = prebuilt_worker_config("cleanup", true);
    let state = tempdir::Dir::new();
    let mut vars = s.edge_vars.clone();
    vars.retain(|v| !v.starts_with("THROTTLE_RATES:"));
    vars.push("THROTTLE_RATES:anon=20/sec".into());
    let (_edge, edge) = serve_prebuilt_with(s, &config, &state.0, &vars).await;

    verify_junk(s, &edge, "198.51.100.241").await;
    let before = s.sink.messages().len();
    let reset = s
        .request_at(
            &edge,
            Method::POST,
            "/api/auth/password/reset/",
            "198.51.100.241",
            None,
            Some(json!({"email": "nell@example.com"})),
        )
        .await;
    assert_eq!(reset.status, StatusCode::OK, "{}", reset.body);
    let issued = now_ms();
    s.sink.wait_for(before + 1, Duration::from_secs(15)).await;

    let limiter = DoStorage::of(&state.0, "RateLimiter");
    let otp = DoStorage::of(&state.0, "OtpStore");
    // `anon:<address>`, and the `password_reset` keys, which keep their default (3/hour).
    let stored = limiter.objects_with_data();
    let anon = "anon:198.51.100.241".to_owned();
    assert!(
        stored.contains(&anon) && stored.len() >= 2,
        "limiters stored: {stored:?}"
    );
    assert_eq!(
        otp.objects_with_data(),
        ["nell@example.com"],
        "otp stored: {otp:?}"
    );
    let alarms = otp.alarms();
    assert_eq!(alarms.len(), 1, "{otp:?}");
    let expiry = issued + 600_000;
    assert!(
        alarms[0].abs_diff(expiry) < 15_000,
        "the OtpStore alarm is at the code's expiry ({expiry}): {alarms:?}"
    );

    // The anon window (1 s) and its slack pass; the alarm deletes the anon object's data and
    // nothing else.
    let mut expected = stored.clone();
    expected.retain(|name| *name != anon);
    let deadline = Instant::now() + Duration::from_secs(20);
    let left = loop {
        let left = limiter.objects_with_data();
        if left == expected || Instant::now() > deadline {
            break left;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(left, expected, "{limiter:?}");
    assert_eq!(
        otp.objects_with_data(),
        ["nell@example.com"],
        "the live code is kept: {otp:?}"
    );
    // The emptied key starts afresh.
    verify_junk(s, &edge, "198.51.100.241").await;
}

/// `/jwt/verify/` of a junk token at `edge` from `ip`: counted in `anon`, answered 401.
async fn verify_junk(s: &Stack, edge: &str, ip: &str) {
    let verify = s
        .request_at(
            edge,
            Method::POST,
            "/api/auth/jwt/verify/",
            ip,
            None,
            Some(json!({"token": "not-a-token"})),
        )
        .await;
    assert_eq!(verify.status, StatusCode::UNAUTHORIZED, "{}", verify.body);
}

/// The leased scopes take permits in batches: with `anon` = 3,200/min, the first request's
/// lease is 32 permits (a 32nd of what is left, at most 32), so ten requests from one address
/// make one Durable Object call and one storage write: its history holds the 32 permits
/// granted, not one entry per request. `auth` stays exact (one entry per request).
pub(crate) async fn leased_scopes_take_permits_in_batches(s: &mut Stack) {
    let config = prebuilt_worker_config("leases", true);
    let state = tempdir::Dir::new();
    let mut vars = s.edge_vars.clone();
    vars.retain(|v| !v.starts_with("THROTTLE_RATES:"));
    vars.push("THROTTLE_RATES:anon=3200/min,auth=50/min".into());
    let (_edge, edge) = serve_prebuilt_with(s, &config, &state.0, &vars).await;
    for _ in 0..10 {
        verify_junk(s, &edge, "198.51.100.242").await;
    }
    for _ in 0..3 {
        let login = s
            .request_at(
                &edge,
                Method::POST,
                "/api/auth/jwt/create/",
                "198.51.100.243",
                None,
                Some(json!({"email": "nobody@example.com", "password": PASSWORD})),
            )
            .await;
        assert_eq!(login.status, StatusCode::UNAUTHORIZED, "{}", login.body);
    }
    let limiter = DoStorage::of(&state.0, "RateLimiter");
    assert_eq!(limiter.history_entries("anon:198.51.100.242"), 32);
    // The login's anon lease is a second object; its auth check is exact: 3 requests, 3 entries.
    assert_eq!(limiter.history_entries("anon:198.51.100.243"), 32);
    assert_eq!(limiter.history_entries("auth:198.51.100.243"), 3);
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// One Durable Object class's local storage as workerd persists it: a SQLite file per object
/// under `<persist-to>/v3/do/<script>-<class>/`, read with the `sqlite3` shell.
#[derive(Debug)]
struct DoStorage {
    dir: PathBuf,
}

impl DoStorage {
    fn of(state: &Path, class: &str) -> Self {
        let root = state.join("v3/do");
        let dir = std::fs::read_dir(&root)
            .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
            .map(|e| e.unwrap().path())
            .find(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .ends_with(&format!("-{class}"))
            })
            .unwrap_or_else(|| panic!("no storage of {class} under {}", root.display()));
        Self { dir }
    }

    fn files(&self) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            // One file per object; workerd's own `metadata.sqlite` (alarms index) is not one.
            .filter(|p| {
                p.extension().is_some_and(|x| x == "sqlite")
                    && p.file_name().is_some_and(|n| n != "metadata.sqlite")
            })
            .collect();
        files.sort();
        files
    }

    fn query(file: &Path, sql: &str) -> String {
        // workerd writes these files while the test reads them (an alarm deleting an object's
        // data holds the write lock for a moment): wait for the lock (up to 10 s) rather than
        // fail with "database is locked".
        let out = Command::new("sqlite3")
            .arg("-readonly")
            .args(["-cmd", ".timeout 10000"])
            .arg(file)
            .arg(sql)
            .output()
            .expect("sqlite3 (Debian package sqlite3; cargo xtask test installs it)");
        assert!(
            out.status.success(),
            "sqlite3 {}: {}",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// The names of the objects whose key-value storage holds at least one key.
    fn objects_with_data(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .files()
            .iter()
            .filter(|f| {
                let tables = Self::query(f, "SELECT name FROM sqlite_master WHERE type='table'");
                tables.lines().any(|t| t == "_cf_KV")
                    && Self::query(f, "SELECT count(*) FROM _cf_KV").trim() != "0"
            })
            .map(|f| {
                Self::query(f, "SELECT name FROM __miniflare_do_name")
                    .trim()
                    .to_owned()
            })
            .collect();
        names.sort();
        names
    }

    /// How many request times the named object's stored history holds (8 bytes each). The
    /// value is V8-serialized: version (FF 0F), ArrayBuffer tag (42), byte length (LEB128),
    /// the bytes, then the Uint8Array view over them.
    fn history_entries(&self, name: &str) -> usize {
        let file = self
            .files()
            .into_iter()
            .find(|f| Self::query(f, "SELECT name FROM __miniflare_do_name").trim() == name)
            .unwrap_or_else(|| panic!("no object {name}: {self:?}"));
        let hex = Self::query(&file, "SELECT hex(value) FROM _cf_KV WHERE key = 'history'");
        let bytes: Vec<u8> = (0..hex.trim().len() / 2)
            .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
            .collect();
        assert_eq!(bytes[..3], [0xFF, 0x0F, 0x42], "{name}'s history: {hex}");
        let (mut length, mut shift) = (0usize, 0);
        for byte in &bytes[3..] {
            length |= usize::from(byte & 0x7F) << shift;
            shift += 7;
            if byte & 0x80 == 0 {
                break;
            }
        }
        length / 8
    }

    /// The alarms stored (ms since the epoch), one per object that has one.
    fn alarms(&self) -> Vec<u64> {
        self.files()
            .iter()
            .flat_map(|f| {
                let tables = Self::query(f, "SELECT name FROM sqlite_master WHERE type='table'");
                if !tables.lines().any(|t| t == "_cf_METADATA") {
                    return Vec::new();
                }
                // workerd's metadata key 1 is the alarm, in nanoseconds.
                Self::query(f, "SELECT value / 1000000 FROM _cf_METADATA WHERE key = 1")
                    .lines()
                    .filter_map(|v| v.trim().parse::<u64>().ok())
                    .collect()
            })
            .collect()
    }
}

/// 50 /64s of one /48 guessing reset codes, each within its own `password_reset` budget (3 an
/// hour): the /48's budget (`password_reset_site`, 30 an hour by default) ends it, through the
/// real Durable Objects with the default rates; another /48 is not affected, and the Worker logs
/// the spent budget.
pub(crate) async fn a_sites_many_64s_share_its_48_budget(s: &mut Stack) {
    let s: &Stack = s;
    let config = prebuilt_worker_config("site-budget", true);
    let state = tempdir::Dir::new();
    let mut vars = s.edge_vars.clone();
    // The default rates, nested budgets included.
    vars.retain(|v| !v.starts_with("THROTTLE_RATES:"));
    let (_edge, edge) = serve_prebuilt_with(s, &config, &state.0, &vars).await;
    let guess = |ip: String| {
        let edge = edge.clone();
        async move {
            s.request_at(
                &edge,
                Method::POST,
                "/api/auth/password/reset/verify-otp/",
                &ip,
                None,
                Some(json!({"email": "nobody@example.com", "otp": "123456"})),
            )
            .await
        }
    };
    let mut statuses = Vec::new();
    for subnet in 0..50 {
        let reply = guess(format!("2001:db8:4848:{subnet:x}::1")).await;
        statuses.push(reply.status.as_u16());
    }
    let wrong_code = statuses.iter().filter(|&&c| c == 400).count();
    assert_eq!(wrong_code, 30, "{statuses:?}");
    assert!(
        statuses[30..].iter().all(|&c| c == 429),
        "refused once the /48's budget is spent: {statuses:?}"
    );
    let other = guess("2001:db8:4849::1".to_owned()).await;
    assert_eq!(other.status, StatusCode::BAD_REQUEST, "{}", other.body);
    let log = std::fs::read_to_string(config.with_file_name("wrangler.log")).unwrap();
    assert!(
        log.contains("throttle budget spent")
            && log.contains("password_reset_site 2001:db8:4848::/48 30/hour"),
        "the spent budget is logged"
    );
}
