//! What the comparison servers share: the flags of the demo contract, the
//! first-line address print, query parsing and the `/bench` publishing loop.
//! The servers only differ in how they fan events out, which is what the load
//! benchmarks compare. (The demo apps in `examples/` have their own copy of the
//! query parsing and the loop; both follow the contract in DESIGN.md, which is
//! what keeps the published events the same.)

use std::future::Future;
use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::MissedTickBehavior;

/// The flags of the demo contract; `--keep-alive` is accepted where a server
/// has no keep-alive.
#[derive(Debug, Clone)]
pub struct Args {
    /// `--port`: 0 picks a free one.
    pub port: u16,
    /// `--history`: events kept per topic (a channel's capacity).
    pub history: usize,
    /// `--keep-alive`: seconds between keep-alive comments.
    pub keep_alive: Duration,
}

impl Args {
    /// The process's flags; prints the problem and exits with code 2 when they are wrong.
    pub fn from_env() -> Self {
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
    pub fn bind(&self) -> std::io::Result<std::net::TcpListener> {
        let listener = std::net::TcpListener::bind(("127.0.0.1", self.port))?;
        listener.set_nonblocking(true)?;
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "listening on http://{}", listener.local_addr()?)?;
        stdout.flush()?;
        Ok(listener)
    }
}

/// Largest `/bench` event accepted.
const MAX_SIZE: usize = 1 << 20;

/// The value of `key` in a raw query string.
fn query_param(query: Option<&str>, key: &str) -> Option<String> {
    form_urlencoded::parse(query.unwrap_or_default().as_bytes()).find(|(k, _)| k == key).map(|(_, v)| v.into_owned())
}

/// The topic a request names, `main` by default.
pub fn topic(query: Option<&str>) -> String {
    query_param(query, "topic").unwrap_or_else(|| "main".to_owned())
}

/// The parameters of `POST /bench?topic=T&count=M&size=P&rate=R`.
#[derive(Debug, Clone)]
pub struct Bench {
    /// The topic to publish to.
    pub topic: String,
    /// How many events.
    pub count: u64,
    /// Bytes of data per event.
    pub size: usize,
    /// Events per second; 0: as fast as possible.
    pub rate: u64,
}

impl Bench {
    /// Reads the parameters from a raw query string.
    ///
    /// # Errors
    ///
    /// A message for the client when a number is invalid or `size` is over 1 MiB.
    pub fn parse(query: Option<&str>) -> Result<Self, String> {
        fn number(query: Option<&str>, key: &str, default: u64) -> Result<u64, String> {
            query_param(query, key)
                .map_or(Ok(default), |v| v.parse().map_err(|_| format!("{key}: invalid number {v:?}")))
        }
        let size = number(query, "size", 0)?;
        if size > MAX_SIZE as u64 {
            return Err(format!("size is over the limit of {MAX_SIZE} bytes"));
        }
        Ok(Self {
            topic: topic(query),
            count: number(query, "count", 1)?,
            size: size as usize,
            rate: number(query, "rate", 0)?,
        })
    }

    /// Publishes `count` payloads `ts=<unix ns> ` padded with `x` to `size`
    /// bytes, `rate` per second (`0`: as fast as possible, yielding every 256
    /// events so the subscribers' tasks run now and then), and returns the JSON
    /// answer. A comparison server's publishing cannot fail.
    pub async fn run<F, Fut>(&self, mut publish: F) -> String
    where
        F: FnMut(String) -> Fut,
        Fut: Future<Output = ()>,
    {
        let mut interval = (self.rate > 0).then(|| {
            let period = Duration::from_secs_f64(1.0 / self.rate as f64).max(Duration::from_nanos(1));
            let mut interval = tokio::time::interval(period);
            interval.set_missed_tick_behavior(MissedTickBehavior::Burst);
            interval
        });
        for published in 0..self.count {
            match &mut interval {
                Some(interval) => {
                    interval.tick().await;
                }
                None if published % 256 == 255 => tokio::task::yield_now().await,
                None => {}
            }
            let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos();
            let mut data = format!("ts={nanos} ");
            if data.len() < self.size {
                data.extend(std::iter::repeat_n('x', self.size - data.len()));
            }
            publish(data).await;
        }
        format!(r#"{{"published":{}}}"#, self.count)
    }
}
