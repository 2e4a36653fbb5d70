//! The origin's Docker image, built as Docker would build it where no Docker engine runs: the
//! build context is exactly what `.dockerignore` lets through, laid out by the Dockerfile's
//! `COPY` lines under its `WORKDIR`, and the build stage's `RUN` command runs in it (offline,
//! from the local cargo cache; `/out` is a directory of the test). Then the binary it built
//! does what the image does: `migrate`, `serve` with the image's `ENV`, and its `HEALTHCHECK`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use testkit::process::{repo_root, spawn};
use testkit::{free_port, TestDb};

/// One `.dockerignore` rule: a path pattern, and whether it lets paths back in (`!`).
struct Rule {
    pattern: Vec<String>,
    include: bool,
}

fn rules(dockerignore: &str) -> Vec<Rule> {
    dockerignore
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            let (include, pattern) = match line.strip_prefix('!') {
                Some(rest) => (true, rest),
                None => (false, line),
            };
            Rule {
                pattern: pattern
                    .trim_matches('/')
                    .split('/')
                    .filter(|s| !s.is_empty() && *s != ".")
                    .map(str::to_owned)
                    .collect(),
                include,
            }
        })
        .collect()
}

/// `*` and `?` within a path segment.
fn segment_matches(pattern: &[u8], name: &[u8]) -> bool {
    match (pattern.first(), name.first()) {
        (None, None) => true,
        (Some(b'*'), _) => {
            segment_matches(&pattern[1..], name)
                || (!name.is_empty() && segment_matches(pattern, &name[1..]))
        }
        (Some(b'?'), Some(_)) => segment_matches(&pattern[1..], &name[1..]),
        (Some(p), Some(n)) if p == n => segment_matches(&pattern[1..], &name[1..]),
        _ => false,
    }
}

/// Segments against segments, `**` standing for any number of directories.
fn path_matches(pattern: &[String], path: &[&str]) -> bool {
    match pattern.first() {
        None => path.is_empty(),
        Some(first) if first == "**" => {
            path_matches(&pattern[1..], path)
                || (!path.is_empty() && path_matches(pattern, &path[1..]))
        }
        Some(first) => {
            !path.is_empty()
                && segment_matches(first.as_bytes(), path[0].as_bytes())
                && path_matches(&pattern[1..], &path[1..])
        }
    }
}

/// Docker's rule: the last rule that matches the path or one of its parent directories
/// decides; a path no rule matches is in the context.
fn in_context(rules: &[Rule], path: &str) -> bool {
    let segments: Vec<&str> = path.split('/').collect();
    let mut included = true;
    for rule in rules {
        if (1..=segments.len()).any(|n| path_matches(&rule.pattern, &segments[..n])) {
            included = rule.include;
        }
    }
    included
}

/// Every file of the repository that the build context holds (`.git`, `target` and
/// `node_modules` are not walked; the test checks that the rules keep them out).
fn context_files(root: &Path, rules: &[Rule]) -> Vec<String> {
    let mut files = Vec::new();
    let mut dirs = vec![String::new()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(root.join(&dir)).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().into_string().unwrap();
            let path = if dir.is_empty() {
                name.clone()
            } else {
                format!("{dir}/{name}")
            };
            if entry.file_type().unwrap().is_dir() {
                if ![".git", "target", "node_modules"].contains(&name.as_str()) {
                    dirs.push(path);
                }
            } else if in_context(rules, &path) {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// The Dockerfile's build stage: (WORKDIR, COPY (sources, destination) pairs, the RUN command
/// without its `--mount` options), and the final stage's `ENV` pairs.
struct Dockerfile {
    workdir: String,
    copies: Vec<(Vec<String>, String)>,
    run: String,
    env: Vec<(String, String)>,
}

fn parse_dockerfile(text: &str) -> Dockerfile {
    // Continuation lines joined; comments dropped.
    let mut instructions = Vec::new();
    let mut current = String::new();
    for line in text.lines().filter(|l| !l.trim_start().starts_with('#')) {
        match line.strip_suffix('\\') {
            Some(head) => current.push_str(head),
            None => {
                current.push_str(line);
                if !current.trim().is_empty() {
                    instructions.push(current.trim().to_owned());
                }
                current.clear();
            }
        }
    }
    let mut stage = 0;
    let mut parsed = Dockerfile {
        workdir: "/".into(),
        copies: Vec::new(),
        run: String::new(),
        env: Vec::new(),
    };
    for instruction in instructions {
        let (keyword, rest) = instruction.split_once(' ').unwrap_or((&instruction, ""));
        match keyword {
            "FROM" => stage += 1,
            "WORKDIR" if stage == 1 => parsed.workdir = rest.trim().to_owned(),
            "COPY" if stage == 1 => {
                let mut parts: Vec<String> = rest.split_whitespace().map(str::to_owned).collect();
                let destination = parts.pop().unwrap();
                parsed.copies.push((parts, destination));
            }
            "RUN" if stage == 1 => {
                parsed.run = rest
                    .split_whitespace()
                    .filter(|word| !word.starts_with("--mount="))
                    .collect::<Vec<_>>()
                    .join(" ");
            }
            "ENV" if stage == 2 => parsed
                .env
                .extend(rest.split_whitespace().filter_map(|pair| {
                    let (name, value) = pair.split_once('=')?;
                    Some((name.to_owned(), value.to_owned()))
                })),
            _ => {}
        }
    }
    parsed
}

fn copy_file(from: &Path, to: &Path) {
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    std::fs::copy(from, to).unwrap();
}

#[test]
fn dockerignore_rules_match_as_docker_matches_them() {
    let ours = rules("*\n!Cargo.toml\n!shared/\n**/target\nedge/build\n!bench/micro/\n");
    assert!(in_context(&ours, "Cargo.toml"));
    assert!(in_context(&ours, "shared/src/lib.rs"));
    assert!(!in_context(&ours, "shared/target/debug/x"));
    assert!(!in_context(&ours, "README.md"));
    assert!(!in_context(&ours, "origin/src/main.rs"));
    assert!(in_context(&ours, "bench/micro/Cargo.toml"));
    assert!(!in_context(&ours, "bench/results/bench.md"));
    assert!(!in_context(&rules("*.md\n"), "README.md"));
    assert!(
        in_context(&rules("*.md\n"), "docs/api.md"),
        "* stays in one directory"
    );
    assert!(!in_context(&rules("**/*.md\n"), "docs/api.md"));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_image_builds_from_its_context_and_its_binary_migrates_serves_and_is_healthy() {
    let root = repo_root();
    let rules = rules(&std::fs::read_to_string(root.join(".dockerignore")).unwrap());
    for never in [
        ".git/config",
        "target/debug/origin",
        "node_modules/.bin/wrangler",
        ".env",
    ] {
        assert!(
            !in_context(&rules, never),
            "{never} would be sent to Docker"
        );
    }
    let context = context_files(&root, &rules);
    let dockerfile = parse_dockerfile(&std::fs::read_to_string(root.join("Dockerfile")).unwrap());

    // The image's filesystem root is a directory of this test.
    let image = std::env::temp_dir().join(format!("origin-image-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&image);
    let at = |path: &str| -> PathBuf { image.join(path.trim_start_matches('/')) };
    let workdir = at(&dockerfile.workdir);
    std::fs::create_dir_all(&workdir).unwrap();
    let mut copied = 0;
    for (sources, destination) in &dockerfile.copies {
        for source in sources {
            let source = source.trim_end_matches('/');
            let files: Vec<&String> = context
                .iter()
                .filter(|f| *f == source || f.starts_with(&format!("{source}/")))
                .collect();
            assert!(
                !files.is_empty(),
                "COPY {source}: nothing of it is in the build context (.dockerignore)"
            );
            for file in files {
                // `COPY a b/` (or `./`) puts a file into b; a directory's contents go under b.
                let target = if file == source {
                    workdir
                        .join(destination)
                        .join(Path::new(file).file_name().unwrap())
                } else {
                    workdir.join(destination).join(&file[source.len() + 1..])
                };
                copy_file(&root.join(file), &target);
                copied += 1;
            }
        }
    }
    println!(
        "build context: {} files let through by .dockerignore, {copied} copied by the Dockerfile",
        context.len()
    );

    // The build stage's command, as the image runs it (its cache mount is the WORKDIR's target).
    let run = dockerfile
        .run
        .replace(" /out/", &format!(" {}/", at("/out").display()));
    println!("RUN {run}");
    let started = Instant::now();
    let status = Command::new("sh")
        .arg("-c")
        .arg(&run)
        .current_dir(&workdir)
        .env("CARGO_NET_OFFLINE", "true")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .status()
        .unwrap();
    assert!(
        status.success(),
        "the image's build command failed ({status})"
    );
    let binary = at("/out/origin");
    let size = std::fs::metadata(&binary).unwrap().len();
    println!(
        "built {} in {:.0} s: {:.1} MB (the distroless cc base adds about 24 MB)",
        binary.display(),
        started.elapsed().as_secs_f64(),
        size as f64 / 1e6
    );

    // The image's binary as compose runs it: `migrate`, then `serve` with the image's ENV.
    let db = TestDb::create().await;
    let keys = Command::new(&binary)
        .args(["keygen", "--with-secrets"])
        .output()
        .unwrap();
    assert!(keys.status.success());
    let keys: Vec<(String, String)> = String::from_utf8(keys.stdout)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.trim_matches(['"', '\'']).to_owned()))
        .collect();
    let migrate = Command::new(&binary)
        .arg("migrate")
        .env_clear()
        .env("DATABASE_URL", &db.url)
        .output()
        .unwrap();
    assert!(migrate.status.success(), "{migrate:?}");
    let migrations = std::fs::read_dir(repo_root().join("migrations"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".sql"))
        })
        .count();
    assert!(String::from_utf8_lossy(&migrate.stdout)
        .contains(&format!("migrations applied: {migrations}")));

    let port = free_port();
    let env: Vec<(String, String)> = dockerfile
        .env
        .iter()
        .map(|(name, value)| match name.as_str() {
            // The image listens on all interfaces at 8000; here on a free port.
            "BIND" => (name.clone(), format!("0.0.0.0:{port}")),
            _ => (name.clone(), value.clone()),
        })
        .collect();
    assert!(
        env.iter().any(|(name, _)| name == "BIND"),
        "the image sets BIND"
    );
    let mut serve = Command::new(&binary);
    serve
        .arg("serve")
        .env_clear()
        .envs(env.iter().cloned())
        .envs(
            keys.iter()
                .filter(|(k, _)| {
                    [
                        "JWT_PRIVATE_KEY",
                        "ORIGIN_SIGNING_SECRET",
                        "RESET_TOKEN_SECRET",
                    ]
                    .contains(&k.as_str())
                })
                .cloned(),
        )
        .env("DATABASE_URL", &db.url)
        .env("METRICS_BIND", "127.0.0.1:0")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let _origin = spawn(&mut serve);
    // The image's HEALTHCHECK: `origin healthcheck`, with the image's ENV.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let check = Command::new(&binary)
            .arg("healthcheck")
            .env_clear()
            .envs(env.iter().cloned())
            .output()
            .unwrap();
        if check.status.success() {
            assert_eq!(String::from_utf8_lossy(&check.stdout).trim(), "healthy");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the HEALTHCHECK did not pass in 30 s: {}",
            String::from_utf8_lossy(&check.stderr)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    std::fs::remove_dir_all(&image).unwrap();
}

/// `docker …` in the repository root; its output, or the failure with what it printed.
fn docker(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .current_dir(repo_root())
        .stdin(Stdio::null())
        .output()
        .expect("docker runs");
    assert!(
        out.status.success(),
        "docker {}: {}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Where a Docker engine answers (`docker info`), the real image: built from the repository,
/// non-root, its own `keygen` output passed back in with `--env-file`, `migrate` and `serve`
/// against the test PostgreSQL (host network), and its HEALTHCHECK command run in the container.
/// Where none answers (this project's CI machine), the staged build above stands in for it.
#[tokio::test(flavor = "multi_thread")]
async fn where_a_docker_engine_answers_the_image_itself_builds_runs_and_is_healthy() {
    let engine = Command::new("docker")
        .arg("info")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !engine {
        println!(
            "no Docker engine answers `docker info`: the staged build stands in for `docker build`"
        );
        return;
    }
    let tag = format!("auth-api-origin-test:{}", std::process::id());
    docker(&["build", "-t", &tag, "."]);
    let inspected = docker(&[
        "image",
        "inspect",
        "--format",
        "{{.Size}} {{.Config.User}}",
        &tag,
    ]);
    println!("image {tag}: size and user {inspected}");
    let user = inspected.split_whitespace().nth(1).unwrap_or_default();
    assert!(
        !user.is_empty() && !user.starts_with("root") && !user.starts_with('0'),
        "the image runs as a non-root user: {inspected}"
    );

    let dir = std::env::temp_dir().join(format!("image-docker-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let env_file = dir.join(".env");
    let keys = docker(&["run", "--rm", &tag, "keygen", "--with-secrets"]);
    std::fs::write(&env_file, format!("{keys}\n")).unwrap();
    let env_file = env_file.to_string_lossy().into_owned();

    let db = TestDb::create().await;
    let database = format!("DATABASE_URL={}", db.url);
    let migrated = docker(&[
        "run",
        "--rm",
        "--network",
        "host",
        "-e",
        &database,
        &tag,
        "migrate",
    ]);
    assert!(migrated.contains("migrations applied"), "{migrated}");

    let port = free_port();
    let bind = format!("BIND=127.0.0.1:{port}");
    let container = docker(&[
        "run",
        "-d",
        "--network",
        "host",
        "--env-file",
        &env_file,
        "-e",
        &database,
        "-e",
        &bind,
        "-e",
        "METRICS_BIND=off",
        &tag,
        "serve",
    ]);
    // The image's HEALTHCHECK command, run in the container until it passes.
    let check = docker(&[
        "inspect",
        "--format",
        "{{range .Config.Healthcheck.Test}}{{.}} {{end}}",
        &tag,
    ]);
    let command: Vec<&str> = check
        .split_whitespace()
        .skip_while(|word| *word == "CMD" || *word == "CMD-SHELL")
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    let healthy = loop {
        let mut args = vec!["exec", container.as_str()];
        args.extend(&command);
        let out = Command::new("docker").args(&args).output().unwrap();
        if out.status.success() {
            break true;
        }
        if Instant::now() > deadline {
            break false;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let logs = Command::new("docker")
        .args(["logs", &container])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
        .unwrap_or_default();
    let _ = Command::new("docker")
        .args(["rm", "-f", &container])
        .output();
    let _ = Command::new("docker").args(["rmi", &tag]).output();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(healthy, "the HEALTHCHECK ({check}) never passed: {logs}");
}
