//! The report: the micro-benchmark results folded in, the physical ceilings, the table as JSON and Markdown.

use crate::prelude::*;

pub(crate) struct Micro {
    pub(crate) name: String,
    pub(crate) native_ns: Option<f64>,
    pub(crate) wasm_ns: Option<f64>,
}

pub(crate) struct Target {
    pub(crate) what: &'static str,
    pub(crate) wanted: String,
    pub(crate) measured: String,
    pub(crate) met: Option<bool>,
}

// ---------------------------------------------------------------------------------------------
// Processes: CPU time and RSS from /proc

/// Criterion's estimate (mean, ns) for `id`, and the Wasm run's figures.
pub(crate) fn read_micro(opts: &Opts) -> Vec<Micro> {
    let criterion = |id: &str| -> Option<f64> {
        let path = opts
            .target
            .join("criterion")
            .join(id)
            .join("new/estimates.json");
        let v: Value = serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
        v["mean"]["point_estimate"].as_f64()
    };
    let wasm: Value = std::fs::read_to_string(opts.target.join("bench/micro-wasm.json"))
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or(Value::Null);
    let wasm_ns = |name: &str| {
        wasm["cases"]
            .as_array()?
            .iter()
            .find(|c| c["name"] == name)?["ns_per_op"]
            .as_f64()
    };
    let mut out: Vec<Micro> = micro_cases::CASES
        .iter()
        .map(|c| Micro {
            name: c.name.to_owned(),
            native_ns: criterion(c.name),
            wasm_ns: wasm_ns(c.name),
        })
        .collect();
    for (id, name) in [
        ("argon2id/hash", "argon2id_hash"),
        ("argon2id/verify", "argon2id_verify"),
    ] {
        out.push(Micro {
            name: name.to_owned(),
            native_ns: criterion(id),
            wasm_ns: None,
        });
    }
    out
}

/// (raw bytes, gzip -9 bytes) of the built Worker.
pub(crate) fn worker_size() -> Option<(u64, u64)> {
    let path = repo_root().join("edge/build/index_bg.wasm");
    let raw = std::fs::metadata(&path).ok()?.len();
    let out = Command::new("sh")
        .arg("-c")
        .arg("gzip -9 -c \"$1\" | wc -c")
        .arg("sh")
        .arg(&path)
        .output()
        .ok()?;
    let gz = String::from_utf8_lossy(&out.stdout).trim().parse().ok()?;
    Some((raw, gz))
}

pub(crate) fn targets(
    bench: &Bench,
    [tps, tps8]: [Option<f64>; 2],
    ceiling: f64,
    origin_rss: f64,
    wasm: Option<(u64, u64)>,
    micro: &[Micro],
    timing: Option<[f64; 3]>,
) -> Vec<Target> {
    let rate = |s: &str, w: &str| bench.find(s, w).map(|r| r.per_sec);
    let ratio = |a: Option<f64>, b: Option<f64>| Some(a? / b?);
    let mut t = Vec::new();
    let mut at_least = |what: &'static str, wanted: f64, got: Option<f64>, unit: &str| {
        t.push(Target {
            what,
            wanted: format!("≥ {wanted}{unit}"),
            measured: got.map_or("not measured".into(), |g| format!("{g:.2}{unit}")),
            met: got.map(|g| g >= wanted),
        });
    };
    let ours = "ours (workerd)";
    let django = "django (gunicorn)";
    at_least(
        "/jwt/verify/ through the edge vs Django (req/s ratio)",
        10.0,
        ratio(
            rate(ours, "POST /jwt/verify/"),
            rate(django, "POST /jwt/verify/"),
        ),
        "×",
    );
    at_least(
        "/jwt/verify/ EdDSA vs the jose Worker (req/s ratio)",
        1.0,
        ratio(
            rate(ours, "POST /jwt/verify/"),
            rate("jose (workerd)", "POST /verify/eddsa"),
        ),
        "×",
    );
    at_least(
        "/jwt/verify/ EdDSA, throttled, vs the jose Worker with a Durable Object limiter (req/s ratio)",
        1.5,
        ratio(
            rate(ours, "POST /jwt/verify/"),
            rate(JOSE_LIMITED, "POST /verify/eddsa"),
        ),
        "×",
    );
    at_least(
        "/jwt/verify/ HS256 vs the jose Worker, key imported once (req/s ratio)",
        1.0,
        ratio(
            rate(ours, "POST /jwt/verify/ HS256"),
            rate("jose (workerd)", "POST /verify/hs256key"),
        ),
        "×",
    );
    at_least(
        "/me through edge → origin → PostgreSQL vs Django (req/s ratio)",
        5.0,
        ratio(rate(ours, "GET /me/"), rate(django, "GET /me/")),
        "×",
    );
    at_least(
        "origin internal me vs pgbench -S, both at concurrency 16 (fraction)",
        0.5,
        ratio(rate("origin", "me (internal)"), tps),
        "",
    );
    at_least(
        "origin internal me vs pgbench -S, both at concurrency 8 (fraction)",
        0.5,
        ratio(rate("origin", "me (internal, concurrency 8)"), tps8),
        "",
    );
    at_least(
        "origin login vs the argon2 ceiling (fraction)",
        0.9,
        rate("origin", "login (internal)").map(|r| r / ceiling),
        "",
    );
    let mut at_most = |what: &'static str, wanted: f64, got: Option<f64>, unit: &str| {
        t.push(Target {
            what,
            wanted: format!("≤ {wanted}{unit}"),
            measured: got.map_or("not measured".into(), |g| format!("{g:.3}{unit}")),
            met: got.map(|g| g <= wanted),
        });
    };
    at_most(
        "EdDSA verify, CPU per token in Wasm (micro, V8)",
        0.15,
        micro
            .iter()
            .find(|m| m.name == "token_verify_eddsa")
            .and_then(|m| m.wasm_ns)
            .map(|ns| ns / 1e6),
        " ms",
    );
    at_most(
        "EdDSA /jwt/verify/, workerd CPU per request (HTTP, glue, throttle DO call and verify)",
        0.15,
        bench.find(ours, "POST /jwt/verify/").and_then(|r| r.cpu_ms),
        " ms",
    );
    let cpu = |s: &str, w: &str| bench.find(s, w).and_then(|r| r.cpu_ms);
    at_most(
        "workerd CPU per EdDSA /jwt/verify/ (throttled) vs the jose Worker's per verify (ratio)",
        0.9,
        ratio(
            cpu(ours, "POST /jwt/verify/"),
            cpu("jose (workerd)", "POST /verify/eddsa"),
        ),
        "×",
    );
    at_most(
        "workerd CPU of our floor (JWKS) vs the JS floor (/hello) (ratio)",
        1.2,
        ratio(
            cpu(ours, "GET /.well-known/jwks.json (floor)"),
            cpu("jose (workerd)", "GET /hello (floor)"),
        ),
        "×",
    );
    at_most(
        "Worker Wasm, gzip",
        500.0,
        wasm.map(|(_, gz)| gz as f64 / 1024.0),
        " KiB",
    );
    at_most(
        "login timing: widest gap between unknown email, wrong and right password (medians)",
        5.0,
        timing.map(timing_spread_percent),
        " %",
    );
    at_most(
        "origin peak RSS during the run",
        50.0,
        Some(origin_rss),
        " MiB",
    );
    t
}

/// The widest gap between the three login timings, as a percentage of the smaller: how much
/// the time of a login answer tells about the email and the password.
pub(crate) fn timing_spread_percent(medians: [f64; 3]) -> f64 {
    let (low, high) = medians
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), &m| (lo.min(m), hi.max(m)));
    100.0 * (high - low) / low
}

pub(crate) struct Report<'a> {
    pub(crate) bench: &'a Bench,
    pub(crate) cores: usize,
    pub(crate) tps: Option<f64>,
    pub(crate) tps8: Option<f64>,
    pub(crate) argon2_ms: f64,
    pub(crate) ceiling: f64,
    pub(crate) origin_rss: f64,
    pub(crate) micro: &'a [Micro],
    pub(crate) wasm: Option<(u64, u64)>,
    pub(crate) targets: &'a [Target],
    pub(crate) timing: Option<[f64; 3]>,
}

pub(crate) fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or("–".into(), |v| format!("{v:.digits$}"))
}

impl Report<'_> {
    pub(crate) fn markdown(&self) -> String {
        let b = self.bench;
        let mut m = String::new();
        let _ = writeln!(
            m,
            "# Benchmark results\n\n{} cores, concurrency {CONCURRENCY}, {} s per workload{}, loopback; load generator, servers and PostgreSQL share the cores.\n",
            self.cores,
            b.opts.seconds,
            if b.opts.smoke { " (smoke run: figures are not meaningful)" } else { "" }
        );
        m.push_str("## HTTP workloads\n\n| section | system | workload | req/s | p50 ms | p99 ms | errors | server CPU ms/req | server peak RSS MiB | origin CPU ms/req | origin peak RSS MiB |\n|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        for r in &b.rows {
            let _ = writeln!(
                m,
                "| {} | {} | {} | {:.1} | {:.2} | {:.2} | {} | {} | {} | {} | {} |",
                r.section,
                r.system,
                r.workload,
                r.per_sec,
                r.p50_ms,
                r.p99_ms,
                r.errors,
                opt(r.cpu_ms, 3),
                opt(r.rss_mib, 1),
                opt(r.origin_cpu_ms, 3),
                opt(r.origin_rss_mib, 1),
            );
        }
        let _ = writeln!(
            m,
            "\nCeilings in the same run: `pgbench -S -c {CONCURRENCY}` {} tps, `-c 8` {} tps; argon2id hash median {:.1} ms → {} cores ÷ argon2 = {:.1} logins/s.\n",
            opt(self.tps, 0),
            opt(self.tps8, 0),
            self.argon2_ms,
            self.cores,
            self.ceiling
        );
        m.push_str("## Ours vs the others (req/s ratio)\n\n| workload | ours (workerd) | other | ratio |\n|---|---:|---:|---:|\n");
        for (ours_w, other_s, other_w) in [
            (
                "POST /jwt/verify/",
                "django (gunicorn)",
                "POST /jwt/verify/",
            ),
            ("GET /me/", "django (gunicorn)", "GET /me/"),
            (
                "POST /jwt/create/ (login)",
                "django (gunicorn)",
                "POST /jwt/create/ (login)",
            ),
            ("POST /jwt/verify/", "jose (workerd)", "POST /verify/eddsa"),
            ("POST /jwt/verify/", JOSE_LIMITED, "POST /verify/eddsa"),
            (
                "POST /jwt/verify/ (anon=none)",
                "jose (workerd)",
                "POST /verify/eddsa",
            ),
            (
                "POST /jwt/verify/ (anon=none)",
                "django (gunicorn)",
                "POST /jwt/verify/",
            ),
            ("GET /me/ (user=none)", "django (gunicorn)", "GET /me/"),
            (
                "POST /jwt/verify/ HS256",
                "jose (workerd)",
                "POST /verify/hs256key",
            ),
            (
                "POST /jwt/verify/ HS256",
                "jose (workerd)",
                "POST /verify/hs256",
            ),
        ] {
            // "(anon=none)" / "(user=none)" name the diagnostic rows of the unthrottled Worker.
            let a = match ours_w.split_once(" (") {
                Some((w, off)) if off.ends_with("=none)") => b.find(UNTHROTTLED, w),
                _ => b.find("ours (workerd)", ours_w),
            }
            .map(|r| r.per_sec);
            let o = b.find(other_s, other_w).map(|r| r.per_sec);
            let _ = writeln!(
                m,
                "| {ours_w} vs {other_s} {other_w} | {} | {} | {} |",
                opt(a, 1),
                opt(o, 1),
                opt(a.zip(o).map(|(a, o)| a / o), 2)
            );
        }
        m.push_str("\n## Micro (ns per operation; native: criterion mean; Wasm: wasm32 under Node's V8, median batch)\n\n| case | native ns | Wasm ns | Wasm ÷ native |\n|---|---:|---:|---:|\n");
        for c in self.micro {
            let _ = writeln!(
                m,
                "| {} | {} | {} | {} |",
                c.name,
                opt(c.native_ns, 0),
                opt(c.wasm_ns, 0),
                opt(c.native_ns.zip(c.wasm_ns).map(|(n, w)| w / n), 1)
            );
        }
        if let Some((raw, gz)) = self.wasm {
            let _ = writeln!(m, "\nWorker Wasm: {raw} bytes raw, {gz} bytes gzip ({:.1} KiB). Origin peak RSS over the whole run: {:.1} MiB.", gz as f64 / 1024.0, self.origin_rss);
        }
        if let Some([unknown, wrong, right]) = self.timing {
            let _ = writeln!(
                m,
                "\nLogin timing (sequential, {TIMING_ROUNDS} interleaved rounds, medians): unknown email {unknown:.1} ms, known email + wrong password {wrong:.1} ms, right password {right:.1} ms; unknown vs wrong differ by {:.1} %, unknown vs right by {:.1} %, wrong vs right by {:.1} %: all three within {:.1} % (no user enumeration by time).",
                100.0 * (unknown - wrong).abs() / wrong.min(unknown),
                100.0 * (unknown - right).abs() / right.min(unknown),
                100.0 * (wrong - right).abs() / right.min(wrong),
                timing_spread_percent([unknown, wrong, right])
            );
        }
        m.push_str("\n## Targets\n\n| target | wanted | measured | met |\n|---|---|---|---|\n");
        for t in self.targets {
            let met = match t.met {
                Some(true) => "yes",
                Some(false) => "**no**",
                None => "not measured",
            };
            let _ = writeln!(m, "| {} | {} | {} | {met} |", t.what, t.wanted, t.measured);
        }
        m
    }

    pub(crate) fn json(&self) -> Value {
        let b = self.bench;
        json!({
            "cores": self.cores,
            "concurrency": CONCURRENCY,
            "seconds_per_workload": b.opts.seconds,
            "smoke": b.opts.smoke,
            "workloads": b.rows.iter().map(Row::json).collect::<Vec<_>>(),
            "pgbench_select_tps": self.tps.map(|t| round(t, 0)),
            "pgbench_select_tps_concurrency_8": self.tps8.map(|t| round(t, 0)),
            "argon2id_hash_median_ms": round(self.argon2_ms, 2),
            "login_ceiling_per_sec": round(self.ceiling, 1),
            "origin_peak_rss_mib": round(self.origin_rss, 1),
            "worker_wasm": self.wasm.map(|(raw, gz)| json!({"raw_bytes": raw, "gzip_bytes": gz})),
            "micro_ns": self.micro.iter().map(|c| json!({
                "case": c.name, "native": c.native_ns.map(|v| round(v, 1)), "wasm": c.wasm_ns.map(|v| round(v, 1)),
            })).collect::<Vec<_>>(),
            "login_timing_medians_ms": self.timing.map(|[u, w, r]| json!({
                "unknown_email": round(u, 2), "wrong_password": round(w, 2), "right_password": round(r, 2),
            })),
            "targets": self.targets.iter().map(|t| json!({
                "target": t.what, "wanted": t.wanted, "measured": t.measured, "met": t.met,
            })).collect::<Vec<_>>(),
        })
    }
}
