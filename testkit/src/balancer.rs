//! HAProxy (Debian's package) in front of origin replicas, as the deploy guide's load balancer:
//! round robin, `/readyz` checks every [`CHECK_INTERVAL`], a request retried on another server
//! only when its connection was refused (it never reached one), a new server connection per
//! request, and the runtime API on a Unix socket to take a server out and put it back.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::free_port;
use crate::process::{spawn, wait_until_up, Group};

/// HAProxy checks every server this often; down after 2 failures, up after 1 success.
pub const CHECK_INTERVAL: Duration = Duration::from_millis(500);

pub struct Balancer {
    pub port: u16,
    socket: PathBuf,
    _process: Group,
}

impl Balancer {
    /// HAProxy on a free port before `servers` (their ports), its files in `dir`; returns once
    /// it answers `/readyz` through one of them.
    pub async fn start(dir: &Path, servers: &[u16]) -> Self {
        let haproxy = xtask::toolchain::on_path("haproxy")
            .expect("haproxy is missing: apt-get install haproxy (cargo xtask test installs it)");
        let port = free_port();
        let socket = dir.join("haproxy.sock");
        let config = dir.join("haproxy.cfg");
        std::fs::write(&config, config_text(port, servers, &socket)).unwrap();
        let log = std::fs::File::create(dir.join("haproxy.log")).unwrap();
        let process = spawn(
            Command::new(haproxy)
                .args(["-db", "-f"])
                .arg(&config)
                .stdout(Stdio::from(log.try_clone().unwrap()))
                .stderr(Stdio::from(log)),
        );
        let url = format!("http://127.0.0.1:{port}/readyz");
        wait_until_up(&reqwest::Client::new(), &url, Duration::from_secs(30)).await;
        Self {
            port,
            socket,
            _process: process,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Server `index` taken out (`maint`: no new request; those in flight finish) or put back
    /// (`ready`: in again once its check passes).
    pub fn set_state(&self, index: usize, state: &str) {
        let mut stream = UnixStream::connect(&self.socket).expect("HAProxy's runtime API");
        writeln!(stream, "set server origins/r{index} state {state}").unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        assert!(answer.trim().is_empty(), "HAProxy: {answer}");
    }
}

fn config_text(listen: u16, servers: &[u16], socket: &Path) -> String {
    let mut config = format!(
        "global\n  maxconn 256\n  stats socket {} mode 600 level admin\n\
         defaults\n  mode http\n  timeout connect 1s\n  timeout client 30s\n  timeout server 30s\n  \
         retries 3\n  option redispatch 1\n  retry-on conn-failure\n  http-reuse never\n\
         frontend lb\n  bind 127.0.0.1:{listen}\n  default_backend origins\n\
         backend origins\n  balance roundrobin\n  option httpchk GET /readyz\n",
        socket.display()
    );
    for (i, port) in servers.iter().enumerate() {
        config.push_str(&format!(
            "  server r{i} 127.0.0.1:{port} check inter {}ms fall 2 rise 1\n",
            CHECK_INTERVAL.as_millis()
        ));
    }
    config
}
