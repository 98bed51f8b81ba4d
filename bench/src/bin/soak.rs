//! Soak: the axum demo, run as its own process, under steady publishing and
//! connection churn, printing its memory and counters every few seconds.
//!
//! Run with (from the repository's root):
//!
//! ```text
//! cargo build --release --example demo --features axum
//! cargo run --release -p ssekit-bench --bin soak -- --duration 600
//! ```
//!
//! Flags: `--duration SECS` (60), `--rate EVENTS_PER_SEC` (200), `--clients N`
//! (200), `--stuck N` (20 of the clients), `--topics N` (20), `--every SECS` (10),
//! `--demo PATH` (the demo binary; default `examples/demo` in the cargo profile
//! directory the soak was built into, `target/release/examples/demo`),
//! `--history N` (passed on to the demo: events kept per topic; the demo's
//! default is 1 024).
//!
//! - The demo is started with `--port 0 --keep-alive 15` and the address read
//!   from its first line. It has no flag for a byte limit per topic, so its
//!   logs are bounded by `--history` alone: 1 024 events of `hot` hold about
//!   4 MiB, some 10 s of `hot` at the default rate (`--history 256` gives about
//!   the 1 MiB and 2.5 s of the runs in BENCHMARKS.md, but also shortens the
//!   cold topics' logs).
//! - Four publishers post `--rate` events per second to `/publish`, each over
//!   one keep-alive connection: every other one to topic `hot` (4 KiB of data),
//!   the rest round-robin to `cold-0`… (about 100 bytes).
//! - Each client connects to `/events` of its topic (a quarter of them `hot`),
//!   resumes with `Last-Event-ID` from the last id it saw, reads for 0.2–3 s,
//!   drops the connection and reconnects at once. Every id is checked: the
//!   offset after the previous one, or a `reset` (whose id is where the next
//!   event continues). A hole or a repeat is counted as an error.
//! - Stuck clients (all on `hot`) connect with a 4 KiB receive buffer and stop
//!   reading for 5–15 s, then read on: when they fell behind the log of `hot`
//!   they must get a `reset` (reason `lagged`) and go on.
//!
//! Every line shows the demo process's resident memory (VmRSS, the server
//! alone: the clients run in the soak's process), the subscribers, topics and
//! events published from the demo's `GET /health`, and the clients'
//! connections, events, resets and errors. The summary gives the RSS range
//! after the warm-up (the first fifth of the run, at most 60 s), and how long
//! the demo took to exit after SIGTERM (at most 5 s by the contract; longer
//! counts as an error). The hub's own counters (retained bytes, resets sent,
//! exact resumes, disconnects by reason) are not served over HTTP, so only the
//! clients' side of them is shown.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use ssekit::{Decoder, EventId};
use ssekit_bench::server::{Server, profile_dir, rss_bytes};
use tokio::net::{TcpSocket, TcpStream};

/// The soak's flags.
#[derive(Debug, Clone)]
struct Args {
    duration: Duration,
    rate: u64,
    clients: usize,
    stuck: usize,
    topics: usize,
    every: Duration,
    demo: PathBuf,
    history: Option<usize>,
}

impl Args {
    fn parse() -> Result<Self, String> {
        fn value<T: std::str::FromStr>(flag: &str, value: Option<String>) -> Result<T, String> {
            let value = value.ok_or_else(|| format!("{flag} needs a value"))?;
            value.parse().map_err(|_| format!("{flag}: invalid value {value:?}"))
        }
        let mut args = Self {
            duration: Duration::from_secs(60),
            rate: 200,
            clients: 200,
            stuck: 20,
            topics: 20,
            every: Duration::from_secs(10),
            demo: profile_dir().join("examples").join("demo"),
            history: None,
        };
        let mut flags = std::env::args().skip(1);
        while let Some(flag) = flags.next() {
            match flag.as_str() {
                "--duration" => args.duration = Duration::from_secs(value(&flag, flags.next())?),
                "--rate" => args.rate = value::<u64>(&flag, flags.next())?.max(1),
                "--clients" => args.clients = value(&flag, flags.next())?,
                "--stuck" => args.stuck = value(&flag, flags.next())?,
                "--topics" => args.topics = value::<usize>(&flag, flags.next())?.max(1),
                "--every" => args.every = Duration::from_secs(value::<u64>(&flag, flags.next())?.max(1)),
                "--demo" => args.demo = value(&flag, flags.next())?,
                "--history" => args.history = Some(value(&flag, flags.next())?),
                other => return Err(format!("unknown flag {other:?}")),
            }
        }
        Ok(args)
    }
}

/// What the clients and the publisher count.
#[derive(Debug, Default)]
struct Stats {
    connects: AtomicU64,
    events: AtomicU64,
    resets: AtomicU64,
    lagged: AtomicU64,
    errors: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl Stats {
    fn error(&self, what: impl std::fmt::Display) {
        self.errors.fetch_add(1, Relaxed);
        let mut first = self.first_error.lock().unwrap_or_else(|e| e.into_inner());
        if first.is_none() {
            *first = Some(what.to_string());
        }
    }
}

/// A small xorshift generator: enough to spread the clients' timings.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn millis(&mut self, from: u64, to: u64) -> Duration {
        Duration::from_millis(from + self.next() % (to - from))
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1 << 20) as f64
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

async fn connect(addr: std::net::SocketAddr, recv_buffer: Option<u32>) -> Result<Sender, String> {
    let stream = match recv_buffer {
        None => TcpStream::connect(addr).await,
        Some(size) => {
            let socket = TcpSocket::new_v4().map_err(|e| e.to_string())?;
            socket.set_recv_buffer_size(size).map_err(|e| e.to_string())?;
            socket.connect(addr).await
        }
    }
    .map_err(|e| format!("connect: {e}"))?;
    let (sender, conn) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|e| format!("handshake: {e}"))?;
    tokio::spawn(conn);
    Ok(sender)
}

/// Sends `request` once `sender` is ready; the answer's body, or an error
/// unless the status is 200.
async fn exchange(sender: &mut Sender, request: Request<Full<Bytes>>) -> Result<Bytes, String> {
    sender.ready().await.map_err(|e| e.to_string())?;
    let response = sender.send_request(request).await.map_err(|e| e.to_string())?;
    let status = response.status();
    let body = response.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
    if status != 200 {
        return Err(format!("{status} {}", String::from_utf8_lossy(&body)));
    }
    Ok(body)
}

/// The demo's counters from `GET /health`: subscribers, topics, published.
#[derive(Debug, Clone, Copy, Default)]
struct Health {
    subscribers: u64,
    topics: u64,
    published: u64,
}

async fn health(addr: std::net::SocketAddr) -> Result<Health, String> {
    let mut sender = connect(addr, None).await?;
    let request =
        Request::get("/health").header("host", addr.to_string()).body(Full::new(Bytes::new())).expect("request");
    let body = exchange(&mut sender, request).await.map_err(|e| format!("/health: {e}"))?;
    let json: serde_json::Value = serde_json::from_slice(&body).map_err(|e| format!("/health: {e}"))?;
    let count = |key: &str| json[key].as_u64().ok_or_else(|| format!("/health: no {key:?} in {json}"));
    Ok(Health { subscribers: count("subscribers")?, topics: count("topics")?, published: count("published")? })
}

/// Publishers, each on its own connection: one waits for each answer before
/// the next request.
const PUBLISHERS: u64 = 4;

/// Posts its share (`part` of [`PUBLISHERS`]) of `rate` events per second until `until`.
async fn publisher(addr: std::net::SocketAddr, args: Args, part: u64, until: Instant, stats: Arc<Stats>) {
    let mut interval = tokio::time::interval(Duration::from_secs_f64(PUBLISHERS as f64 / args.rate as f64));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let hot = "h".repeat(4096);
    let mut sender: Option<Sender> = None;
    let mut n = part;
    while Instant::now() < until {
        interval.tick().await;
        n += PUBLISHERS;
        let (topic, data) = if n % 2 == 0 {
            ("hot".to_owned(), format!("{n} {hot}"))
        } else {
            (format!("cold-{}", (n / 2) % args.topics as u64), format!("{n} {}", "c".repeat(90)))
        };
        if sender.as_ref().is_none_or(|s| s.is_closed()) {
            match connect(addr, None).await {
                Ok(s) => sender = Some(s),
                Err(err) => {
                    stats.error(format!("publisher {err}"));
                    continue;
                }
            }
        }
        let Some(s) = sender.as_mut() else { continue };
        let body = serde_json::json!({ "data": data }).to_string();
        let request = Request::post(format!("/publish?topic={topic}"))
            .header("host", addr.to_string())
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .expect("request");
        if let Err(err) = exchange(s, request).await {
            stats.error(format!("publish: {err}"));
            sender = None;
        }
    }
}

/// One client: connects, resumes from its last id, reads for a while, drops,
/// again, until `until`.
async fn client(addr: std::net::SocketAddr, topic: String, stuck: bool, seed: u64, until: Instant, stats: Arc<Stats>) {
    let mut rng = Rng(seed | 1);
    let mut last: Option<String> = None;
    while Instant::now() < until {
        let hold = rng.millis(200, 3000);
        let stall = stuck.then(|| rng.millis(5000, 15_000));
        if let Err(err) = session(addr, &topic, &mut last, hold, stall, until, &stats).await {
            stats.error(format!("client of {topic}: {err}"));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

async fn session(
    addr: std::net::SocketAddr,
    topic: &str,
    last: &mut Option<String>,
    hold: Duration,
    stall: Option<Duration>,
    until: Instant,
    stats: &Stats,
) -> Result<(), String> {
    let mut sender = connect(addr, stall.map(|_| 4096)).await?;
    stats.connects.fetch_add(1, Relaxed);
    let mut request = Request::get(format!("/events?topic={topic}")).header("host", addr.to_string());
    if let Some(id) = last.as_deref() {
        request = request.header("last-event-id", id);
    }
    let request = request.body(Full::new(Bytes::new())).map_err(|e| e.to_string())?;
    let response = sender.send_request(request).await.map_err(|e| format!("request: {e}"))?;
    if response.status() != 200 {
        return Err(format!("status {}", response.status()));
    }
    let mut body = response.into_body();
    if let Some(stall) = stall {
        // Hold the connection without reading: the server's buffers fill up and
        // the subscription falls behind the log.
        tokio::time::sleep(stall.min(until.saturating_duration_since(Instant::now()))).await;
    }
    let mut decoder = Decoder::new();
    let end = Instant::now() + hold;
    loop {
        let frame = match tokio::time::timeout_at(end.into(), body.frame()).await {
            Err(_) => return Ok(()),
            Ok(None) => return Ok(()),
            Ok(Some(frame)) => frame.map_err(|e| format!("body: {e}"))?,
        };
        let Ok(data) = frame.into_data() else { continue };
        for event in decoder.feed(&data).map_err(|e| format!("decode: {e}"))? {
            check(last, &event, stats)?;
        }
    }
}

/// Checks that `event` continues after `last` without a hole or a repeat.
fn check(last: &mut Option<String>, event: &ssekit::MessageEvent, stats: &Stats) -> Result<(), String> {
    let id: EventId = event.last_event_id.parse().map_err(|e| format!("id {:?}: {e}", event.last_event_id))?;
    if event.event == "reset" {
        stats.resets.fetch_add(1, Relaxed);
        if event.data.contains("lagged") {
            stats.lagged.fetch_add(1, Relaxed);
        }
    } else {
        stats.events.fetch_add(1, Relaxed);
        if let Some(prev) = last.as_deref().and_then(|prev| prev.parse::<EventId>().ok()) {
            if prev.epoch() == id.epoch() && id.offset() != prev.offset() + 1 {
                *last = Some(event.last_event_id.clone());
                return Err(format!("after {prev} came {id}"));
            }
        }
    }
    *last = Some(event.last_event_id.clone());
    Ok(())
}

#[tokio::main]
async fn main() {
    let args = match Args::parse() {
        Ok(args) => args,
        Err(err) => {
            eprintln!("error: {err}");
            std::process::exit(2);
        }
    };
    let mut demo_args = vec!["--keep-alive".to_owned(), "15".to_owned()];
    if let Some(history) = args.history {
        demo_args.extend(["--history".to_owned(), history.to_string()]);
    }
    let mut server = match Server::start(&args.demo, &demo_args, None) {
        Ok(server) => server,
        Err(err) => {
            eprintln!("error: {err} (build it with `cargo build --release --example demo --features axum`)");
            std::process::exit(1);
        }
    };
    let (addr, pid) = (server.addr(), server.pid());
    println!("soak of the axum demo (pid {pid}) on http://{addr} for {} s: {args:?}", args.duration.as_secs());

    let start = Instant::now();
    let until = start + args.duration;
    let warm_up = (args.duration / 5).min(Duration::from_secs(60));
    let stats = Arc::new(Stats::default());
    let mut tasks = tokio::task::JoinSet::new();
    for part in 0..PUBLISHERS {
        tasks.spawn(publisher(addr, args.clone(), part, until, stats.clone()));
    }
    for k in 0..args.clients {
        let stuck = k < args.stuck;
        let topic = if stuck || k % 4 == 0 { "hot".to_owned() } else { format!("cold-{}", k % args.topics) };
        tasks.spawn(client(addr, topic, stuck, 0x9e37_79b9_7f4a_7c15 ^ (k as u64 + 1) << 20, until, stats.clone()));
    }

    let (mut rss_min, mut rss_max, mut max_subscribers) = (u64::MAX, 0u64, 0u64);
    println!(
        "{:>6} {:>8} {:>6} {:>6} {:>9} {:>8} {:>9} {:>7} {:>7} {:>6}",
        "secs", "rss_mib", "subs", "topics", "published", "connects", "events", "resets", "lagged", "errors"
    );
    let mut tick = tokio::time::interval_at((start + args.every).into(), args.every);
    loop {
        tick.tick().await;
        let elapsed = start.elapsed();
        let rss = rss_bytes(pid);
        let h = health(addr).await.unwrap_or_else(|err| {
            stats.error(err);
            Health::default()
        });
        max_subscribers = max_subscribers.max(h.subscribers);
        if elapsed >= warm_up {
            rss_min = rss_min.min(rss);
            rss_max = rss_max.max(rss);
        }
        println!(
            "{:>6} {:>8.1} {:>6} {:>6} {:>9} {:>8} {:>9} {:>7} {:>7} {:>6}",
            elapsed.as_secs(),
            mib(rss),
            h.subscribers,
            h.topics,
            h.published,
            stats.connects.load(Relaxed),
            stats.events.load(Relaxed),
            stats.resets.load(Relaxed),
            stats.lagged.load(Relaxed),
            stats.errors.load(Relaxed),
        );
        if elapsed >= args.duration {
            break;
        }
    }
    while tokio::time::timeout(Duration::from_secs(20), tasks.join_next()).await.ok().flatten().is_some() {}
    let published = health(addr).await.map(|h| h.published).unwrap_or_else(|err| {
        stats.error(err);
        0
    });
    let stopped = tokio::task::spawn_blocking(move || server.terminate(Duration::from_secs(5)))
        .await
        .unwrap_or_else(|err| Err(err.to_string()));
    let stopped = match stopped {
        Ok(after) => format!("{} ms", after.as_millis()),
        Err(err) => {
            stats.error(format!("demo shutdown: {err}"));
            err
        }
    };

    let first_error = stats.first_error.lock().unwrap_or_else(|e| e.into_inner()).clone();
    println!("summary after {} s (warm-up {} s):", start.elapsed().as_secs(), warm_up.as_secs());
    println!("  demo rss after warm-up: min {:.1} MiB, max {:.1} MiB", mib(rss_min), mib(rss_max));
    println!("  max subscribers: {max_subscribers}; published: {published}; exit after SIGTERM: {stopped}");
    println!(
        "  clients: {} connections, {} events, {} resets ({} lagged)",
        stats.connects.load(Relaxed),
        stats.events.load(Relaxed),
        stats.resets.load(Relaxed),
        stats.lagged.load(Relaxed)
    );
    println!("  errors: {} (first: {})", stats.errors.load(Relaxed), first_error.as_deref().unwrap_or("none"));
}
