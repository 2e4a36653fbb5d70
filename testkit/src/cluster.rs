//! A PostgreSQL cluster of a test's own: initdb, start, stop, as the postgres user when the tests
//! run as root (PostgreSQL refuses to run as root).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::free_port;

/// A PostgreSQL cluster of its own (initdb in a temporary directory), so it can be stopped and
/// started, or run with server settings of its own (TLS).
pub struct PrivateCluster {
    dir: PathBuf,
    pg_ctl: PathBuf,
    pub port: u16,
    /// ` -c name=value` for each extra server setting.
    settings: String,
}

pub fn as_postgres(program: &Path) -> Command {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    if root {
        // PostgreSQL refuses to run as root.
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--"]).arg(program);
        cmd
    } else {
        Command::new(program)
    }
}

impl PrivateCluster {
    pub fn create() -> Self {
        Self::create_with(&[])
    }

    /// With extra server settings (`-c name=value` each), e.g. `ssl=on`.
    pub fn create_with(settings: &[&str]) -> Self {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL server binaries under /usr/lib/postgresql")
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|p| p.join("initdb").exists())
            .max()
            .expect("initdb");
        let dir = std::env::temp_dir().join(format!("pg-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let _ = Command::new("chown").arg("postgres").arg(&dir).status();
        let status = as_postgres(&bin.join("initdb"))
            .arg("-D")
            .arg(&dir)
            .args(["-U", "postgres", "-A", "trust"])
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "initdb");
        let cluster = Self {
            pg_ctl: bin.join("pg_ctl"),
            port: free_port(),
            dir,
            settings: settings.iter().map(|s| format!(" -c {s}")).collect(),
        };
        cluster.start();
        cluster
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn pg_ctl(&self, args: &[&str]) {
        let status = as_postgres(&self.pg_ctl)
            .arg("-D")
            .arg(&self.dir)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "pg_ctl {args:?}");
    }

    pub fn start(&self) {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {}{}",
            self.port,
            self.dir.display(),
            self.settings
        );
        let log = self.dir.join("server.log");
        self.pg_ctl(&["-w", "-l", log.to_str().unwrap(), "-o", &options, "start"]);
    }

    pub fn stop(&self) {
        self.pg_ctl(&["-w", "-m", "fast", "stop"]);
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        let _ = as_postgres(&self.pg_ctl)
            .arg("-D")
            .arg(&self.dir)
            .args(["-m", "immediate", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
