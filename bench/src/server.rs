//! A server of the demo contract run as a child process, as the load generator
//! and the soak drive them: started with `--port 0`, its address read from the
//! first line of its stdout, measured through `/proc`, stopped at the end.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The servers of the demo contract the load tools know: name, binary in the
/// profile directory (the demos are examples of the root package, the others
/// binaries of this one), and flags of its own.
pub const SERVERS: &[(&str, &str, &[&str])] = &[
    ("ssekit-axum", "examples/demo", &[]),
    // The axum demo with SSE through ssekit's lean front (feature `lean`).
    ("ssekit-lean", "examples/demo", &["--lean"]),
    ("ssekit-actix", "examples/demo_actix", &[]),
    ("ssekit-hyper", "examples/demo_hyper", &[]),
    ("axum-broadcast", "peer_axum_broadcast", &[]),
    ("actix-broadcaster", "peer_actix_broadcaster", &[]),
    ("raw-tcp", "peer_raw_tcp", &[]),
];

/// Events kept per topic by every server (`--history`).
pub const HISTORY: usize = 1024;

/// The arguments the load tools start server `flags` with (after `--port 0`):
/// `--history` [`HISTORY`], `--keep-alive 15`, then `flags`.
pub fn server_args(flags: &[&str]) -> Vec<String> {
    let mut args = vec!["--history".to_owned(), HISTORY.to_string(), "--keep-alive".to_owned(), "15".to_owned()];
    args.extend(flags.iter().map(|flag| (*flag).to_owned()));
    args
}

/// A server process; killed (SIGKILL) when dropped.
#[derive(Debug)]
pub struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Server {
    /// Runs `binary --port 0 ARGS…` (under `taskset -c CORE` when `core` is
    /// given), with stderr passed through, and waits for its first line of
    /// stdout, `listening on http://ADDR`.
    ///
    /// # Errors
    ///
    /// When the process cannot be started, or its first line is not the address
    /// (then the process is killed).
    pub fn start(binary: &Path, args: &[String], core: Option<u32>) -> Result<Self, String> {
        let mut command = match core {
            Some(core) => {
                let mut c = Command::new("taskset");
                c.arg("-c").arg(core.to_string()).arg(binary);
                c
            }
            None => Command::new(binary),
        };
        command.args(["--port", "0"]).args(args).stdin(Stdio::null()).stdout(Stdio::piped());
        let mut child = command.spawn().map_err(|e| format!("spawn {}: {e}", binary.display()))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut line = String::new();
        let read = BufReader::new(stdout).read_line(&mut line);
        let addr = line.trim().strip_prefix("listening on http://").and_then(|a| a.parse().ok());
        match (read, addr) {
            (Ok(_), Some(addr)) => Ok(Self { child, addr }),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                Err(format!("{}: unexpected first line {line:?}", binary.display()))
            }
        }
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM (through `kill`) and waits until the process exits, at
    /// most `within`.
    ///
    /// # Errors
    ///
    /// When the signal cannot be sent or the process still runs after `within`
    /// (it is then killed when dropped).
    pub fn terminate(&mut self, within: Duration) -> Result<Duration, String> {
        let sent = Instant::now();
        let status = Command::new("kill").arg("-TERM").arg(self.pid().to_string()).status();
        if !status.is_ok_and(|s| s.success()) {
            return Err(format!("kill -TERM {} failed", self.pid()));
        }
        while sent.elapsed() < within {
            if self.child.try_wait().map_err(|e| e.to_string())?.is_some() {
                return Ok(sent.elapsed());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(format!("still running {} ms after SIGTERM", within.as_millis()))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// VmRSS of a process in bytes, from `/proc/PID/status` (0 where it cannot be read).
pub fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// The cargo profile directory this tool was built into (`target/release` for
/// a release build): the comparison servers are next to it, the demos in its
/// `examples/`. `target/release` when the executable's path is unknown.
pub fn profile_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("target/release"))
}
