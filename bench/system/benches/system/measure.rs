//! Measuring: the load loop, latency percentiles, CPU and memory of the process under load, the rows of the table.

use crate::prelude::*;

/// One measured HTTP workload.
#[derive(Default, Clone)]
pub(crate) struct Row {
    pub(crate) section: &'static str,
    pub(crate) system: String,
    pub(crate) workload: String,
    pub(crate) requests: u64,
    pub(crate) errors: u64,
    pub(crate) per_sec: f64,
    pub(crate) p50_ms: f64,
    pub(crate) p99_ms: f64,
    /// CPU time of the serving process(es) per request, ms.
    pub(crate) cpu_ms: Option<f64>,
    /// Peak RSS of the serving process(es), MiB.
    pub(crate) rss_mib: Option<f64>,
    /// For edge workloads that reach the origin: its CPU per request and peak RSS.
    pub(crate) origin_cpu_ms: Option<f64>,
    pub(crate) origin_rss_mib: Option<f64>,
    pub(crate) note: String,
}

impl Row {
    pub(crate) fn json(&self) -> Value {
        json!({
            "section": self.section, "system": self.system, "workload": self.workload,
            "requests": self.requests, "errors": self.errors,
            "per_sec": round(self.per_sec, 1), "p50_ms": round(self.p50_ms, 3),
            "p99_ms": round(self.p99_ms, 3),
            "cpu_ms_per_request": self.cpu_ms.map(|v| round(v, 4)),
            "rss_mib": self.rss_mib.map(|v| round(v, 1)),
            "origin_cpu_ms_per_request": self.origin_cpu_ms.map(|v| round(v, 4)),
            "origin_rss_mib": self.origin_rss_mib.map(|v| round(v, 1)),
            "note": self.note,
        })
    }
}

pub(crate) fn round(v: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (v * f).round() / f
}

pub(crate) fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// The processes whose cost a row reports: either given pids or a whole process group.
#[derive(Clone)]
pub(crate) enum Watch {
    Pids(Vec<i32>),
    Group(i32),
}

impl Watch {
    pub(crate) fn pids(&self) -> Vec<i32> {
        match self {
            Self::Pids(p) => p.clone(),
            Self::Group(g) => std::fs::read_dir("/proc")
                .into_iter()
                .flatten()
                .flatten()
                .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
                .filter(|pid| stat_fields(*pid).is_some_and(|f| f.get(2) == Some(&g.to_string())))
                .collect(),
        }
    }

    /// utime + stime of all the processes (all their threads), in seconds.
    pub(crate) fn cpu_seconds(&self, ticks: f64) -> f64 {
        self.pids()
            .into_iter()
            .filter_map(stat_fields)
            .map(|f| {
                let t = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
                // Fields after the command: state is [0]; utime and stime are the 14th and 15th
                // fields of the line, [11] and [12] here.
                t(11) + t(12)
            })
            .sum::<f64>()
            / ticks
    }

    /// Sum of the processes' peak RSS (VmHWM), MiB.
    pub(crate) fn peak_rss_mib(&self) -> f64 {
        self.pids()
            .into_iter()
            .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/status")).ok())
            .filter_map(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmHWM:"))?
                    .split_whitespace()
                    .nth(1)?
                    .parse::<f64>()
                    .ok()
            })
            .sum::<f64>()
            / 1024.0
    }
}

/// The fields of /proc/<pid>/stat after `(comm)`.
pub(crate) fn stat_fields(pid: i32) -> Option<Vec<String>> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    Some(rest.split_whitespace().map(str::to_owned).collect())
}

// ---------------------------------------------------------------------------------------------
// Load

pub(crate) struct Figures {
    pub(crate) requests: u64,
    pub(crate) errors: u64,
    pub(crate) per_sec: f64,
    pub(crate) p50_ms: f64,
    pub(crate) p99_ms: f64,
}

pub(crate) fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1_000.0
}

/// `concurrency` loops of `one(worker)` for `seconds`; `one` says whether the answer was the
/// expected one.
pub(crate) async fn load<F, Fut>(seconds: f64, concurrency: usize, one: F) -> Figures
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = bool> + Send,
{
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(seconds);
    let workers: Vec<_> = (0..concurrency)
        .map(|w| {
            let one = one.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut errors = 0;
                while Instant::now() < deadline {
                    let t = Instant::now();
                    if !one(w).await {
                        errors += 1;
                    }
                    latencies.push(t.elapsed());
                }
                (latencies, errors)
            })
        })
        .collect();
    let mut all = Vec::new();
    let mut errors = 0;
    for w in workers {
        let (l, e) = w.await.expect("load worker");
        all.extend(l);
        errors += e;
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort();
    Figures {
        requests: all.len() as u64,
        errors,
        per_sec: all.len() as f64 / elapsed,
        p50_ms: percentile(&all, 0.50),
        p99_ms: percentile(&all, 0.99),
    }
}

/// Runs a workload and reads the watched processes' CPU time and peak RSS around it.
pub(crate) struct Bench {
    pub(crate) opts: Opts,
    pub(crate) ticks: f64,
    pub(crate) rows: Vec<Row>,
    /// Load loops per workload (CONCURRENCY unless a row says otherwise).
    pub(crate) concurrency: usize,
}

impl Bench {
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn run<F, Fut>(
        &mut self,
        section: &'static str,
        system: &str,
        workload: &str,
        server: Option<&Watch>,
        origin: Option<&Watch>,
        one: F,
    ) -> Row
    where
        F: Fn(usize) -> Fut + Clone + Send + 'static,
        Fut: Future<Output = bool> + Send,
    {
        print!("  {system:<22} {workload:<34} ");
        // A quarter of the time first, unmeasured, for every system alike: JIT tiers, connection
        // pools, and on our Worker the throttled keys' Durable Objects (created, their storage
        // opened) reach their steady state before the measured run.
        load(self.opts.seconds / 4.0, self.concurrency, one.clone()).await;
        let cpu = |w: Option<&Watch>| w.map(|w| w.cpu_seconds(self.ticks));
        let (server0, origin0) = (cpu(server), cpu(origin));
        let f = load(self.opts.seconds, self.concurrency, one).await;
        let (server1, origin1) = (cpu(server), cpu(origin));
        let per_request =
            |a: Option<f64>, b: Option<f64>| Some((b? - a?) * 1_000.0 / f.requests.max(1) as f64);
        let row = Row {
            section,
            system: system.to_owned(),
            workload: workload.to_owned(),
            requests: f.requests,
            errors: f.errors,
            per_sec: f.per_sec,
            p50_ms: f.p50_ms,
            p99_ms: f.p99_ms,
            cpu_ms: per_request(server0, server1),
            rss_mib: server.map(Watch::peak_rss_mib),
            origin_cpu_ms: per_request(origin0, origin1),
            origin_rss_mib: origin.map(Watch::peak_rss_mib),
            note: String::new(),
        };
        println!(
            "{:>9.1}/s  p50 {:>7.2} ms  p99 {:>7.2} ms  errors {}",
            row.per_sec, row.p50_ms, row.p99_ms, row.errors
        );
        self.rows.push(row.clone());
        row
    }

    /// `BENCH_ONLY=origin,workerd,wrangler,django` runs only those sections (default: all).
    pub(crate) fn wants(&self, section: &str) -> bool {
        std::env::var("BENCH_ONLY")
            .map(|only| only.split(',').any(|s| s.trim() == section))
            .unwrap_or(true)
    }

    pub(crate) fn find(&self, system: &str, workload: &str) -> Option<&Row> {
        self.rows
            .iter()
            .find(|r| r.system == system && r.workload == workload)
    }
}
