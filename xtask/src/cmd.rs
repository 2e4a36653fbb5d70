//! Running commands: step headings with the time since the task started, commands that must
//! succeed, process groups that are always stopped, and Ctrl-C.

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A task's failure: what went wrong, in words for the person who ran it.
#[derive(Debug)]
pub struct Error(pub String);

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl From<std::io::Error> for Error {
    fn from(err: std::io::Error) -> Self {
        Error(err.to_string())
    }
}

pub type Result<T = ()> = std::result::Result<T, Error>;

pub fn fail<T>(message: impl Into<String>) -> Result<T> {
    Err(Error(message.into()))
}

static STARTED: OnceLock<Instant> = OnceLock::new();

/// A step heading with the time since the task started, so a slow step shows in CI logs.
pub fn step(what: &str) {
    let seconds = STARTED.get_or_init(Instant::now).elapsed().as_secs();
    println!("\n==> [{}m{:02}s] {what}", seconds / 60, seconds % 60);
}

/// The seconds since the task started.
pub fn elapsed() -> u64 {
    STARTED.get_or_init(Instant::now).elapsed().as_secs()
}

/// The command as it would be typed (for error messages).
pub fn describe(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|part| part.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs `cmd` with the task's stdout and stderr; an error unless it succeeds.
pub fn run(cmd: &mut Command) -> Result {
    let status = cmd
        .status()
        .map_err(|err| Error(format!("cannot run `{}`: {err}", describe(cmd))))?;
    if status.success() {
        Ok(())
    } else {
        fail(format!("`{}` failed ({status})", describe(cmd)))
    }
}

/// Whether `cmd` runs and succeeds, its output discarded.
pub fn succeeds(cmd: &mut Command) -> bool {
    cmd.stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// The standard output of `cmd`, which must succeed (its stderr goes to the task's).
pub fn output(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .stderr(Stdio::inherit())
        .output()
        .map_err(|err| Error(format!("cannot run `{}`: {err}", describe(cmd))))?;
    if !out.status.success() {
        return fail(format!("`{}` failed ({})", describe(cmd), out.status));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The standard output of `cmd` if it runs and succeeds (for probing a tool's version).
pub fn probe(cmd: &mut Command) -> Option<String> {
    let out = cmd.stderr(Stdio::null()).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A child in its own process group (it and everything it starts), stopped with the group:
/// TERM, then KILL after a grace period; dropped, it is stopped.
pub struct Group {
    pub name: String,
    child: Child,
}

impl Group {
    pub fn spawn(name: &str, cmd: &mut Command) -> Result<Group> {
        let child = cmd
            .process_group(0)
            .spawn()
            .map_err(|err| Error(format!("cannot start {name} (`{}`): {err}", describe(cmd))))?;
        Ok(Group {
            name: name.to_owned(),
            child,
        })
    }

    /// The group's leader (e.g. to take its piped output).
    pub fn child(&mut self) -> &mut Child {
        &mut self.child
    }

    /// The leader's exit status once it has exited.
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// [`Group::stop_within`] 10 s.
    pub fn stop(&mut self) {
        self.stop_within(Duration::from_secs(10));
    }

    /// TERM to the whole group, KILL after `grace`. Only while the leader has not been reaped:
    /// signalling a stale id could reach an unrelated process group.
    pub fn stop_within(&mut self, grace: Duration) {
        if !matches!(self.child.try_wait(), Ok(None)) {
            return;
        }
        let Ok(leader) = libc::pid_t::try_from(self.child.id()) else {
            return;
        };
        if leader <= 1 {
            return;
        }
        // SAFETY: kill(2) with a negative pid signals that process group; no memory is shared.
        unsafe { libc::kill(-leader, libc::SIGTERM) };
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if self.exit_status().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        // SAFETY: as above; the leader is not reaped yet, so the id is still this group's.
        unsafe { libc::kill(-leader, libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.stop();
    }
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_stop_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

/// From now on Ctrl-C (SIGINT) and SIGTERM only set a flag ([`stop_requested`]), so a task can
/// stop what it started before it exits.
pub fn catch_stop_signals() {
    let handler = on_stop_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, handler);
        libc::signal(libc::SIGTERM, handler);
    }
}

pub fn stop_requested() -> bool {
    STOP.load(Ordering::SeqCst)
}

/// A free TCP port on loopback.
pub fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}
