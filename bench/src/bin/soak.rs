//! Soak: the axum demo in-process under steady publishing and connection churn,
//! printing memory and the hub's counters every few seconds.
//!
//! Run with: cargo run --release --example soak --features axum -- --duration 600
//!
//! Flags: `--duration SECS` (60), `--rate EVENTS_PER_SEC` (200), `--clients N`
//! (200), `--stuck N` (20 of the clients), `--topics N` (20), `--every SECS` (10).
//!
//! - Four publishers post `--rate` events per second to `/publish`, each over
//!   one keep-alive connection: every other one to topic `hot` (4 KiB of data),
//!   the rest round-robin to `cold-0`… (about 100 bytes).
//! - Each client connects to `/events` of its topic (a quarter of them `hot`),
//!   resumes with `Last-Event-ID` from the last id it saw, reads for 0.2–3 s,
//!   drops the connection and reconnects at once. Every id is checked: the
//!   offset after the previous one, or a `reset` (whose id is where the next
//!   event continues). A hole or a repeat is counted as an error.
//! - Stuck clients (all on `hot`) connect with a 4 KiB receive buffer and stop
//!   reading for 5–15 s, far longer than the 1 MiB log of `hot` lasts (about
//!   2.5 s), then read on: they must get a `reset` (reason `lagged`) and go on.
//!
//! Every line shows the process's resident memory (VmRSS), the hub's
//! subscribers, topics, retained bytes, events published and resets sent, and
//! the clients' connections, events, resets and errors. The summary gives the
//! RSS range after the warm-up (the first fifth of the run, at most 60 s).

#[allow(dead_code)] // `main` and whatever the soak does not use.
#[path = "demo.rs"]
mod demo;

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use ssekit::{Decoder, EventId, Hub, HubMetrics, SseConfig};
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

/// The process's resident set size in bytes, from `/proc/self/status` (0 elsewhere).
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok());
    kib.unwrap_or(0) * 1024
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
        let result = async {
            s.ready().await.map_err(|e| e.to_string())?;
            let response = s.send_request(request).await.map_err(|e| e.to_string())?;
            let status = response.status();
            let body = response.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
            if status != 200 {
                return Err(format!("{status} {}", String::from_utf8_lossy(&body)));
            }
            Ok(())
        }
        .await;
        if let Err(err) = result {
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
async fn main() -> std::io::Result<()> {
    let args = match Args::parse() {
        Ok(args) => args,
        Err(err) => {
            eprintln!("error: {err}");
            std::process::exit(2);
        }
    };
    let hub =
        Hub::builder().max_bytes(1 << 20).stream(SseConfig::new().keep_alive(Some(Duration::from_secs(15)))).build();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(demo::serve(listener, hub.clone(), async move {
        let _ = stopped.await;
    }));
    println!("soak of the axum demo on http://{addr} for {} s: {args:?}", args.duration.as_secs());

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
        "{:>6} {:>8} {:>6} {:>6} {:>9} {:>9} {:>7} {:>8} {:>9} {:>7} {:>6}",
        "secs",
        "rss_mib",
        "subs",
        "topics",
        "kept_kib",
        "published",
        "resets",
        "connects",
        "events",
        "lagged",
        "errors"
    );
    let mut tick = tokio::time::interval_at((start + args.every).into(), args.every);
    loop {
        tick.tick().await;
        let elapsed = start.elapsed();
        let (rss, m): (u64, HubMetrics) = (rss(), hub.metrics());
        max_subscribers = max_subscribers.max(m.subscribers);
        if elapsed >= warm_up {
            rss_min = rss_min.min(rss);
            rss_max = rss_max.max(rss);
        }
        let resets = m.resets_evicted + m.resets_epoch + m.resets_malformed + m.resets_future + m.resets_lagged;
        println!(
            "{:>6} {:>8.1} {:>6} {:>6} {:>9} {:>9} {:>7} {:>8} {:>9} {:>7} {:>6}",
            elapsed.as_secs(),
            mib(rss),
            m.subscribers,
            m.topics,
            m.retained_bytes / 1024,
            m.published,
            resets,
            stats.connects.load(Relaxed),
            stats.events.load(Relaxed),
            stats.lagged.load(Relaxed),
            stats.errors.load(Relaxed),
        );
        if elapsed >= args.duration {
            break;
        }
    }
    while tokio::time::timeout(Duration::from_secs(20), tasks.join_next()).await.ok().flatten().is_some() {}
    hub.close();
    let _ = stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(5), server).await;

    let m = hub.metrics();
    let first_error = stats.first_error.lock().unwrap_or_else(|e| e.into_inner()).clone();
    println!("summary after {} s (warm-up {} s):", start.elapsed().as_secs(), warm_up.as_secs());
    println!("  rss after warm-up: min {:.1} MiB, max {:.1} MiB", mib(rss_min), mib(rss_max));
    println!(
        "  max subscribers: {max_subscribers}; published: {}; lagged resets: {}; exact resumes: {}",
        m.published, m.resets_lagged, m.resumes_exact
    );
    println!(
        "  disconnects: {} clients left, {} at close, {} at their lifetime, {} lagged",
        m.disconnects_client, m.disconnects_closed, m.disconnects_lifetime, m.disconnects_lagged
    );
    println!(
        "  clients: {} connections, {} events, {} resets ({} lagged)",
        stats.connects.load(Relaxed),
        stats.events.load(Relaxed),
        stats.resets.load(Relaxed),
        stats.lagged.load(Relaxed)
    );
    println!("  errors: {} (first: {})", stats.errors.load(Relaxed), first_error.as_deref().unwrap_or("none"));
    Ok(())
}
