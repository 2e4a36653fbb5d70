//! `cargo xtask dev`: the whole system locally, and the [`Stack`] the API fuzzing starts too.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use xtask::cmd::{
    catch_stop_signals, fail, free_port, output, probe, run as run_cmd, step, stop_requested,
    Error, Group, Result,
};
use xtask::{toolchain, worker};

use super::Args;

pub fn run(root: &Path, args: &[String]) -> Result {
    Args::parse(args, &[], &[])?;
    catch_stop_signals();
    toolchain::ensure(root)?;
    let port = |var: &str, default: u16| -> Result<u16> {
        match std::env::var(var) {
            Ok(value) if !value.is_empty() => value
                .parse()
                .or_else(|_| fail(format!("{var} must be a port number, not {value}"))),
            _ => Ok(default),
        }
    };
    let options = StackOptions {
        edge_port: port("EDGE_PORT", 8787)?,
        origin_port: port("ORIGIN_PORT", 8000)?,
        metrics_port: port("METRICS_PORT", 9100)?,
        dir: std::env::var_os("DEV_DIR").map_or_else(|| root.join(".dev"), PathBuf::from),
        database_url: std::env::var("DATABASE_URL").ok().filter(|u| !u.is_empty()),
        origin_bin: None,
        prebuilt_worker: false,
        log: None,
        vars: ["THROTTLE_RATES", "CORS_ALLOWED_ORIGINS"]
            .into_iter()
            .filter_map(|var| Some((var.to_owned(), std::env::var(var).ok()?)))
            .collect(),
    };
    let mut stack = Stack::start(root, &options)?;
    println!(
        "
==> ready
   API        {edge}/api/auth/
   JWKS       {edge}/.well-known/jwks.json
   docs       {edge}/swagger/  {edge}/redoc/  {edge}/api/schema/
   origin     http://127.0.0.1:{origin}/readyz (internal, signed requests only)
   metrics    http://127.0.0.1:{metrics}/metrics
   database   {database}
   Reset codes are printed below by the origin's console email backend. Ctrl-C stops everything.",
        edge = stack.edge_url(),
        origin = options.origin_port,
        metrics = options.metrics_port,
        database = without_query(&stack.database_url),
    );
    let result = loop {
        if stop_requested() {
            break Ok(());
        }
        if let Some(name) = stack.exited() {
            break fail(format!("{name} exited; stopping the rest"));
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    stack.stop();
    result
}

pub struct StackOptions {
    pub edge_port: u16,
    pub origin_port: u16,
    /// The origin's METRICS_BIND port (on loopback).
    pub metrics_port: u16,
    /// Where the private PostgreSQL cluster, the dev keys and wrangler's state live.
    pub dir: PathBuf,
    /// The database to use; `None`: a private cluster in `dir/pg`.
    pub database_url: Option<String>,
    /// An origin binary built already; `None`: `cargo build --release -p origin`.
    pub origin_bin: Option<PathBuf>,
    /// Serve the Worker built already (`worker::ensure_built`) instead of letting wrangler
    /// build it.
    pub prebuilt_worker: bool,
    /// Where the processes' output goes; `None`: this terminal.
    pub log: Option<PathBuf>,
    /// Extra Worker variables (`--var NAME:value`).
    pub vars: Vec<(String, String)>,
}

/// PostgreSQL (when private), the origin and `wrangler dev`, stopped together.
pub struct Stack {
    pub database_url: String,
    edge_port: u16,
    groups: Vec<Group>,
    cluster: Option<Cluster>,
}

impl Stack {
    pub fn start(root: &Path, options: &StackOptions) -> Result<Stack> {
        std::fs::create_dir_all(&options.dir)?;
        let mut stack = Stack {
            database_url: String::new(),
            edge_port: options.edge_port,
            groups: Vec::new(),
            cluster: None,
        };
        // On an error below, dropping `stack` stops what was started.
        stack.database_url = match &options.database_url {
            Some(url) => url.clone(),
            None => {
                step("private PostgreSQL cluster in .dev/pg");
                let cluster = Cluster::start(&options.dir.join("pg"))?;
                let url = cluster.url.clone();
                stack.cluster = Some(cluster);
                url
            }
        };
        println!("database: {}", without_query(&stack.database_url));

        let origin = match &options.origin_bin {
            Some(bin) => bin.clone(),
            None => build_origin(root)?,
        };
        let keys_file = options.dir.join("keys.env");
        if !keys_file.exists() {
            step("generating dev keys and secrets (keys.env)");
            let keys = output(Command::new(&origin).args(["keygen", "--with-secrets"]))?;
            std::fs::write(&keys_file, keys)?;
        }
        let keys = parse_env_file(&std::fs::read_to_string(&keys_file)?);
        let key = |name: &str| -> Result<String> {
            keys.iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .ok_or_else(|| Error(format!("{name} is missing from {}", keys_file.display())))
        };
        let database_url = stack.database_url.clone();
        let origin_cmd = || {
            let mut cmd = Command::new(&origin);
            cmd.env("DATABASE_URL", &database_url).envs(keys.clone());
            cmd
        };

        step("migrating");
        run_cmd(origin_cmd().arg("migrate"))?;

        let log = |name: &str| -> Result<(Stdio, Stdio)> {
            Ok(match &options.log {
                Some(path) => {
                    let file = File::options().create(true).append(true).open(path)?;
                    println!("{name}'s output goes to {}", path.display());
                    (file.try_clone()?.into(), file.into())
                }
                None => (Stdio::inherit(), Stdio::inherit()),
            })
        };
        step(&format!(
            "starting the origin on 127.0.0.1:{} (console email)",
            options.origin_port
        ));
        let (out, err) = log("the origin")?;
        let mut serve = origin_cmd();
        serve
            .arg("serve")
            .env("BIND", format!("127.0.0.1:{}", options.origin_port))
            .env(
                "METRICS_BIND",
                format!("127.0.0.1:{}", options.metrics_port),
            )
            .env("EMAIL_BACKEND", "console")
            .stdout(out)
            .stderr(err);
        stack.groups.push(Group::spawn("the origin", &mut serve)?);

        let mut wrangler = toolchain::command(root, "wrangler");
        wrangler.arg("dev");
        if options.prebuilt_worker {
            worker::ensure_built(root)?;
            let config = worker::prebuilt_config(root, "dev", true)?;
            wrangler.arg("--config").arg(config);
            step(&format!(
                "starting wrangler dev on 127.0.0.1:{} (the Worker built already)",
                options.edge_port
            ));
        } else {
            step(&format!(
                "starting wrangler dev on 127.0.0.1:{} (it builds the Worker first)",
                options.edge_port
            ));
        }
        let mut vars = vec![
            (
                "ORIGIN_URL".to_owned(),
                format!("http://127.0.0.1:{}", options.origin_port),
            ),
            ("JWT_PUBLIC_KEYS".to_owned(), key("JWT_PUBLIC_KEYS")?),
            (
                "ORIGIN_SIGNING_SECRET".to_owned(),
                key("ORIGIN_SIGNING_SECRET")?,
            ),
            ("RESET_TOKEN_SECRET".to_owned(), key("RESET_TOKEN_SECRET")?),
            ("OTP_SECRET".to_owned(), key("OTP_SECRET")?),
        ];
        vars.extend(options.vars.iter().cloned());
        let (out, err) = log("wrangler dev")?;
        wrangler
            .args(["--ip", "127.0.0.1", "--port"])
            .arg(options.edge_port.to_string())
            .arg("--persist-to")
            .arg(options.dir.join("wrangler"));
        for (name, value) in vars {
            wrangler.arg("--var").arg(format!("{name}:{value}"));
        }
        wrangler.stdin(Stdio::null()).stdout(out).stderr(err);
        stack
            .groups
            .push(Group::spawn("wrangler dev", &mut wrangler)?);

        let jwks = format!("{}/.well-known/jwks.json", stack.edge_url());
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            match http_status(&jwks) {
                Some(200) => break,
                Some(500) => return fail("the edge answers 500: see wrangler's output"),
                _ => {}
            }
            if let Some(name) = stack.exited() {
                return fail(format!("{name} exited before the edge was up"));
            }
            if stop_requested() {
                return fail("stopped before the edge was up");
            }
            if Instant::now() > deadline {
                return fail("the edge was not up within 10 minutes");
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        Ok(stack)
    }

    pub fn edge_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.edge_port)
    }

    /// The name of a process that has exited, if one has.
    fn exited(&mut self) -> Option<String> {
        self.groups
            .iter_mut()
            .find_map(|group| group.exit_status().map(|_| group.name.clone()))
    }

    pub fn stop(&mut self) {
        step("stopping");
        while let Some(mut group) = self.groups.pop() {
            group.stop_within(Duration::from_secs(5));
        }
        if let Some(cluster) = self.cluster.take() {
            cluster.stop();
        }
        println!("stopped.");
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        if !self.groups.is_empty() || self.cluster.is_some() {
            self.stop();
        }
    }
}

/// `cargo build --release -p origin`; returns the binary's path.
pub fn build_origin(root: &Path) -> Result<PathBuf> {
    step("building the origin (release)");
    run_cmd(Command::new("cargo").current_dir(root).args([
        "build",
        "--release",
        "--locked",
        "-p",
        "origin",
    ]))?;
    Ok(root.join("target/release/origin"))
}

/// The status code of a GET (curl), or `None` when nothing answers.
pub fn http_status(url: &str) -> Option<u16> {
    probe(Command::new("curl").args(["-s", "-o", "/dev/null", "-w", "%{http_code}", url]))?
        .trim()
        .parse()
        .ok()
        .filter(|code| *code != 0)
}

/// A database URL without its query (which may carry a password or TLS files).
pub fn without_query(url: &str) -> &str {
    url.split('?').next().unwrap_or(url)
}

/// `NAME=value` lines as a shell reads them: comments and blank lines skipped, one pair of
/// surrounding quotes removed (the value is otherwise as written).
pub fn parse_env_file(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .filter_map(|line| {
            let (name, value) = line.split_once('=')?;
            let value = ['"', '\'']
                .into_iter()
                .find_map(|q| value.strip_prefix(q)?.strip_suffix(q))
                .unwrap_or(value);
            Some((name.trim().to_owned(), value.to_owned()))
        })
        .collect()
}

/// A private PostgreSQL cluster (initdb once, started on a free port), as the postgres user
/// when run as root (PostgreSQL refuses to run as root).
struct Cluster {
    dir: PathBuf,
    bin: PathBuf,
    url: String,
}

impl Cluster {
    fn start(dir: &Path) -> Result<Cluster> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()
            .into_iter()
            .flatten()
            .filter_map(|entry| Some(entry.ok()?.path().join("bin")))
            .filter(|bin| bin.join("pg_ctl").exists())
            .max_by_key(|bin| {
                bin.parent()
                    .and_then(|v| v.file_name()?.to_str()?.parse::<u32>().ok())
            })
            .ok_or_else(|| {
                Error(
                    "PostgreSQL's server binaries are not installed (postgresql): install them or set DATABASE_URL"
                        .into(),
                )
            })?;
        // SAFETY: geteuid has no preconditions.
        let root_user = unsafe { libc::geteuid() } == 0;
        let cluster = Cluster {
            dir: dir.to_path_buf(),
            bin,
            url: String::new(),
        };
        if !dir.join("PG_VERSION").exists() {
            std::fs::create_dir_all(dir)?;
            if root_user {
                let parent = dir.parent().unwrap_or(dir);
                run_cmd(Command::new("chown").arg("postgres").arg(parent).arg(dir))?;
            }
            run_cmd(
                cluster
                    .as_owner("initdb")
                    .arg("-D")
                    .arg(dir)
                    .args(["-U", "postgres", "-A", "trust"])
                    .stdout(Stdio::null()),
            )?;
        }
        let port = free_port()?;
        run_cmd(
            cluster
                .as_owner("pg_ctl")
                .arg("-D")
                .arg(dir)
                .arg("-l")
                .arg(dir.join("server.log"))
                .arg("-w")
                .arg("-o")
                .arg(format!(
                    "-p {port} -c listen_addresses=127.0.0.1 -k {}",
                    dir.display()
                ))
                .arg("start")
                .stdout(Stdio::null()),
        )?;
        let _ = cluster
            .as_owner("createdb")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-U",
                "postgres",
                "auth",
            ])
            .stderr(Stdio::null())
            .status();
        Ok(Cluster {
            url: format!("postgres://postgres@127.0.0.1:{port}/auth"),
            ..cluster
        })
    }

    fn as_owner(&self, tool: &str) -> Command {
        let exe = self.bin.join(tool);
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", "postgres", "--"]).arg(exe);
            cmd
        } else {
            Command::new(exe)
        }
    }

    fn stop(&self) {
        let _ = self
            .as_owner("pg_ctl")
            .arg("-D")
            .arg(&self.dir)
            .args(["-m", "fast", "stop"])
            .stdout(Stdio::null())
            .status();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_files_are_read_as_a_shell_reads_them() {
        let keys = parse_env_file(
            "# Ed25519 signing key\nJWT_PRIVATE_KEY=\"-----BEGIN\\nabc\"\nJWT_PUBLIC_KEYS='{\"keys\":[]}'\n\nOTP_SECRET=plain\n",
        );
        assert_eq!(
            keys,
            [
                ("JWT_PRIVATE_KEY".into(), "-----BEGIN\\nabc".into()),
                ("JWT_PUBLIC_KEYS".into(), "{\"keys\":[]}".into()),
                ("OTP_SECRET".into(), "plain".into()),
            ]
        );
    }
}
