//! What the comparison servers share: the demo's flags, the first-line address
//! print, query parsing and the `/bench` publishing loop. The servers only
//! differ in how they fan events out, which is what the load benchmarks compare.

use std::future::Future;
use std::io::Write;
use std::time::Duration;

/// The flags of the demo contract; `--keep-alive` is accepted where a server
/// has no keep-alive.
#[derive(Debug, Clone)]
pub(crate) struct Args {
    pub(crate) port: u16,
    pub(crate) history: usize,
    pub(crate) keep_alive: Duration,
}

impl Args {
    /// The process's flags; prints the problem and exits with code 2 when they are wrong.
    pub(crate) fn from_env() -> Self {
        let mut args = Self { port: 8080, history: 1024, keep_alive: Duration::from_secs(15) };
        let mut flags = std::env::args().skip(1);
        while let Some(flag) = flags.next() {
            let value = flags.next();
            let parsed = match (flag.as_str(), value.as_deref().map(str::parse::<u64>)) {
                ("--port", Some(Ok(v))) => u16::try_from(v).map(|v| args.port = v).is_ok(),
                ("--history", Some(Ok(v))) => usize::try_from(v).map(|v| args.history = v.max(1)).is_ok(),
                ("--keep-alive", Some(Ok(v))) => {
                    args.keep_alive = Duration::from_secs(v.max(1));
                    true
                }
                _ => false,
            };
            if !parsed {
                eprintln!("error: bad flag {flag:?} {value:?}\nusage: [--port N] [--history N] [--keep-alive SECS]");
                std::process::exit(2);
            }
        }
        args
    }

    /// Binds `127.0.0.1:port` and prints `listening on http://127.0.0.1:PORT` as
    /// the first line of stdout.
    pub(crate) fn bind(&self) -> std::io::Result<std::net::TcpListener> {
        let listener = std::net::TcpListener::bind(("127.0.0.1", self.port))?;
        listener.set_nonblocking(true)?;
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "listening on http://{}", listener.local_addr()?)?;
        stdout.flush()?;
        Ok(listener)
    }
}

#[path = "../common/contract.rs"]
mod contract;

pub(crate) use contract::{Bench, topic};

impl Bench {
    /// Publishes every event (the comparison servers' publishing cannot fail)
    /// and returns the JSON answer.
    pub(crate) async fn run<F, Fut>(&self, mut publish: F) -> String
    where
        F: FnMut(String) -> Fut,
        Fut: Future<Output = ()>,
    {
        let published = self
            .publish_all(|data| {
                let publishing = publish(data);
                async move {
                    publishing.await;
                    Ok::<(), std::convert::Infallible>(())
                }
            })
            .await;
        if let Err((_, never)) = published {
            match never {}
        }
        format!(r#"{{"published":{}}}"#, self.count)
    }
}
