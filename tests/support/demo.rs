//! The demo apps (`examples/demo*.rs`) run as they ship: each a child process
//! on loopback that the tests speak to over HTTP only, publishing with
//! `POST /publish` and reading counts from `GET /health`.
//!
//! `cargo test` builds the examples before it runs the tests; a test run alone
//! (`cargo test --test NAME`) does not, and then says which command does.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

use super::client::{self, TIMEOUT};

/// Longest a demo may take to print the address it listens on (a debug build
/// on a busy machine).
const START: Duration = Duration::from_secs(20);

/// What a demo prints when open connections held its shutdown until its 4 s bound.
const FORCED_EXIT: &str = "connections still open after 4 s; exiting";

/// The framework a demo app runs on (or, `Progress`, the progress example,
/// which takes `--port` and prints its address the same way).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DemoApp {
    Axum,
    Actix,
    Hyper,
    /// The axum demo with `--lean`: SSE through ssekit's lean front.
    Lean,
    Progress,
}

impl DemoApp {
    /// The framework's name, for messages.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Axum => "axum",
            Self::Actix => "actix",
            Self::Hyper => "hyper",
            Self::Lean => "lean",
            Self::Progress => "progress",
        }
    }

    /// The example's name and the feature it needs.
    fn example(self) -> (&'static str, &'static str) {
        match self {
            Self::Axum => ("demo", "axum"),
            Self::Actix => ("demo_actix", "actix"),
            Self::Hyper => ("demo_hyper", "hyper"),
            Self::Lean => ("demo", "axum,lean"),
            Self::Progress => ("progress", "axum"),
        }
    }

    /// `<target>/<profile>/examples/<example>`, beside the `deps` folder that
    /// holds this test binary; panics, saying how to build it, when it is missing.
    /// (`cargo test --test NAME` alone does not rebuild the examples: run the
    /// whole `cargo test --all-features` after changing one.)
    fn binary(self) -> PathBuf {
        let (example, feature) = self.example();
        let test = std::env::current_exe().expect("the test binary's path");
        let profile = test.parent().and_then(Path::parent).expect("the test binary is in <target>/<profile>/deps");
        let binary = profile.join("examples").join(format!("{example}{}", std::env::consts::EXE_SUFFIX));
        assert!(
            binary.is_file(),
            "{} is missing: build it with `cargo build --example {example} --features {feature}` \
             (`cargo test --all-features` builds it before running the tests)",
            binary.display()
        );
        binary
    }
}

/// A demo app running as a child process on `127.0.0.1`; killed on drop.
pub(crate) struct Demo {
    pub(crate) addr: SocketAddr,
    pub(crate) app: DemoApp,
    child: Child,
    /// All the demo wrote to stderr, once it closed it (exited).
    stderr: mpsc::Receiver<String>,
}

impl Demo {
    /// Starts `app` with `--port 0` and `flags` (e.g. `["--history", "4"]`).
    pub(crate) fn start(app: DemoApp, flags: &[&str]) -> Self {
        Self::try_start(app, 0, flags).unwrap_or_else(|err| panic!("{err}"))
    }

    /// Starts `app` on `port` (0: one the system picks) with `flags`; the error
    /// says why it did not come up (e.g. the port is still taken).
    pub(crate) fn try_start(app: DemoApp, port: u16, flags: &[&str]) -> Result<Self, String> {
        let binary = app.binary();
        let mut child = Command::new(&binary)
            .args(["--port", &port.to_string()])
            .args(if app == DemoApp::Lean { &["--lean"][..] } else { &[] })
            .args(flags)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start {}: {err}", binary.display()));
        // Both pipes are read to the end on threads of their own, so that the
        // demo never blocks writing to them.
        let stdout = child.stdout.take().expect("piped stdout");
        let (first_line, listening) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let _ = first_line.send(lines.next().and_then(Result::ok));
            lines.for_each(drop);
        });
        let pipe = child.stderr.take().expect("piped stderr");
        let (all, stderr) = mpsc::channel();
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = BufReader::new(pipe).read_to_string(&mut text);
            let _ = all.send(text);
        });
        let mut demo = Self { addr: SocketAddr::from(([127, 0, 0, 1], port)), app, child, stderr };

        let line = match listening.recv_timeout(START) {
            Ok(Some(line)) => line,
            Ok(None) => {
                let _ = demo.child.wait();
                return Err(format!("{} exited before it listened; stderr:\n{}", app.name(), demo.stderr_text()));
            }
            Err(_) => return Err(format!("{} did not print its address within {START:?}", app.name())),
        };
        demo.addr = line
            .strip_prefix("listening on http://")
            .and_then(|addr| addr.parse().ok())
            .ok_or_else(|| format!("{}: the first line is not `listening on http://ADDR`: {line:?}", app.name()))?;
        Ok(demo)
    }

    /// What the demo wrote to stderr (bounded wait: it is complete once the demo exited).
    fn stderr_text(&self) -> String {
        self.stderr.recv_timeout(TIMEOUT).unwrap_or_else(|_| "(stderr still open)".to_owned())
    }

    /// `POST /publish?topic=T` with `{"data": data}`; the id the demo assigned.
    pub(crate) async fn publish(&self, topic: &str, data: &str) -> String {
        let body = serde_json::json!({ "data": data }).to_string();
        let (status, reply) = client::post(self.addr, &format!("/publish?topic={topic}"), &body).await;
        assert_eq!(status, 200, "publish on {topic}: {reply}");
        reply["id"].as_str().unwrap_or_else(|| panic!("publish answered {reply}")).to_owned()
    }

    /// `GET /health`: the hub's counts.
    pub(crate) async fn health(&self) -> Value {
        let (status, health) = client::get_json(self.addr, "/health").await;
        assert_eq!(status, 200, "GET /health: {health}");
        health
    }

    /// The count `name` of `GET /health` (e.g. `published`, `disconnects_client`).
    pub(crate) async fn metric(&self, name: &str) -> u64 {
        let health = self.health().await;
        health[name].as_u64().unwrap_or_else(|| panic!("no count {name:?} in /health: {health}"))
    }

    /// Subscriptions open now, over all topics.
    pub(crate) async fn subscribers(&self) -> u64 {
        self.metric("subscribers").await
    }

    /// Waits (bounded) until the demo counts `expected` subscriptions, over all topics.
    pub(crate) async fn wait_subscribers(&self, expected: u64) {
        client::wait_for("subscribers", expected, async || self.subscribers().await).await;
    }

    /// The demo's process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM: the demo closes its hub, so every stream ends, and shuts down.
    pub(crate) fn terminate(&self) {
        let status =
            Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().expect("run kill -TERM");
        assert!(status.success(), "kill -TERM {} failed: {status}", self.child.id());
    }

    /// Waits (bounded) until the demo has exited after [`Demo::terminate`], and
    /// asserts that it exited on its own: successfully, with its graceful shutdown
    /// complete rather than cut short by its 4 s bound.
    pub(crate) async fn wait_exit(mut self) {
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("the demo's status") {
                break status;
            }
            assert!(tokio::time::Instant::now() < deadline, "{} still runs {TIMEOUT:?} after SIGTERM", self.app.name());
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        let stderr = self.stderr_text();
        assert!(status.success(), "{} exited with {status}; stderr:\n{stderr}", self.app.name());
        assert!(stderr.contains("shutting down"), "{} did not see the signal; stderr:\n{stderr}", self.app.name());
        assert!(
            !stderr.contains(FORCED_EXIT),
            "{}: connections held the graceful shutdown until the forced exit; stderr:\n{stderr}",
            self.app.name()
        );
    }

    /// [`Demo::terminate`], then [`Demo::wait_exit`].
    pub(crate) async fn shutdown(self) {
        self.terminate();
        self.wait_exit().await;
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
