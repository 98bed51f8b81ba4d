//! The Redis backplane as deployed: publishes and deliveries per second through
//! two nodes in this process, and what a failover looks like to a client.
//!
//! `bench/redis-deployments.sh` starts the servers (one Redis, a three-primary
//! cluster, a primary with a replica under three sentinels) and runs this
//! against each; see BENCHMARKS.md.
//!
//! ```text
//! redis_deployments throughput (--redis URL | --cluster A,B,C | --sentinel A,B,C --master M)
//!                   [--confirm N] [--topics 64] [--publishers 32] [--seconds 5]
//! redis_deployments failover --sentinel A,B,C --master M [--seconds 10]
//! ```
//!
//! `throughput`: node A publishes (`--publishers` tasks, each awaiting its
//! publish, over `--topics` topics), node B follows every topic; it prints the
//! publishes done per second and the events node B delivered per second.
//! `failover`: node A publishes every 5 ms, a client follows through node B;
//! after 2 s the primary is killed (SIGKILL). It prints the
//! longest time between two events the client got, the time publishing failed,
//! and whether the client got a `reset`.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use ssekit::{Decoder, Event, Hub, RedisBackplane, RedisConfig, Resume};

fn usage() -> ! {
    eprintln!(
        "usage: redis_deployments (throughput|failover) (--redis URL | --cluster A,B,C | --sentinel A,B,C --master M) \
         [--confirm N] [--topics N] [--publishers N] [--seconds N]"
    );
    std::process::exit(2)
}

struct Args {
    mode: String,
    config: RedisConfig,
    sentinels: Vec<String>,
    master: String,
    topics: usize,
    publishers: usize,
    seconds: u64,
}

fn args() -> Args {
    let mut it = std::env::args().skip(1);
    let mode = it.next().unwrap_or_else(|| usage());
    let (mut redis, mut cluster, mut sentinels, mut master) = (None, None, Vec::new(), String::new());
    let (mut confirm, mut topics, mut publishers, mut seconds) = (0, 64, 32, 5);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_else(|| usage());
        let list = || value.split(',').map(str::to_owned).collect::<Vec<_>>();
        let number = || value.parse().unwrap_or_else(|_| usage());
        match flag.as_str() {
            "--redis" => redis = Some(value.clone()),
            "--cluster" => cluster = Some(list()),
            "--sentinel" => sentinels = list(),
            "--master" => master = value.clone(),
            "--confirm" => confirm = number(),
            "--topics" => topics = number(),
            "--publishers" => publishers = number(),
            "--seconds" => seconds = number() as u64,
            _ => usage(),
        }
    }
    let config = match (redis, cluster, sentinels.is_empty()) {
        (Some(url), None, true) => RedisConfig::new(url),
        (None, Some(nodes), true) => RedisConfig::cluster(nodes),
        (None, None, false) => RedisConfig::sentinel(sentinels.clone(), master.as_str()),
        _ => usage(),
    };
    Args { mode, config: config.confirm_by_replicas(confirm), sentinels, master, topics, publishers, seconds }
}

async fn node(config: &RedisConfig) -> Hub {
    let redis = RedisBackplane::connect(config.clone()).await.expect("connect to Redis");
    Hub::builder().history(1024).max_topics(100_000).backplane(redis).build()
}

#[tokio::main]
async fn main() {
    let args = args();
    match args.mode.as_str() {
        "throughput" => throughput(&args).await,
        "failover" => failover(&args).await,
        _ => usage(),
    }
}

async fn throughput(args: &Args) {
    let (a, b) = (node(&args.config).await, node(&args.config).await);
    let topics: Arc<Vec<String>> = Arc::new((0..args.topics).map(|t| format!("bench-{t}")).collect());
    let delivered = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut readers = Vec::new();
    for topic in topics.iter() {
        let mut subscription = b.subscribe(topic, Resume::Live).await.expect("subscribe");
        let (delivered, stop) = (delivered.clone(), stop.clone());
        readers.push(tokio::spawn(async move {
            let mut decoder = Decoder::new();
            while !stop.load(Relaxed) {
                match tokio::time::timeout(Duration::from_millis(200), subscription.next()).await {
                    Ok(Some(chunk)) => {
                        let events = decoder.feed(&chunk).expect("well-formed frames").len();
                        delivered.fetch_add(events as u64, Relaxed);
                    }
                    Ok(None) => return,
                    Err(_) => {}
                }
            }
        }));
    }
    let published = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let run = Duration::from_secs(args.seconds);
    let mut publishers = Vec::new();
    for p in 0..args.publishers {
        let (a, topics, published, failed) = (a.clone(), topics.clone(), published.clone(), failed.clone());
        publishers.push(tokio::spawn(async move {
            let mut i = p;
            while started.elapsed() < run {
                let topic = &topics[i % topics.len()];
                match a.publish(topic, Event::new().data(r#"{"price":101.25,"symbol":"ACME"}"#)).await {
                    Ok(_) => published.fetch_add(1, Relaxed),
                    Err(_) => failed.fetch_add(1, Relaxed),
                };
                i += 1;
            }
        }));
    }
    for publisher in publishers {
        publisher.await.unwrap();
    }
    let elapsed = started.elapsed().as_secs_f64();
    // Deliveries still on their way are counted for a moment more.
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Relaxed);
    for reader in readers {
        reader.await.unwrap();
    }
    let (published, delivered) = (published.load(Relaxed), delivered.load(Relaxed));
    println!(
        "publishes/s {:.0}  deliveries/s {:.0}  (published {published}, delivered {delivered}, failed {}, {:.1} s)",
        published as f64 / elapsed,
        delivered as f64 / elapsed,
        failed.load(Relaxed),
        elapsed
    );
}

/// `redis-cli -h host -p port args…`.
fn cli(address: &str, args: &[&str]) -> String {
    let (host, port) = address.rsplit_once(':').expect("host:port");
    let out = Command::new("redis-cli").args(["-h", host, "-p", port]).args(args).output().expect("redis-cli");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

async fn failover(args: &Args) {
    assert!(!args.sentinels.is_empty(), "failover needs --sentinel and --master");
    let (a, b) = (node(&args.config).await, node(&args.config).await);
    let mut subscription = b.subscribe("failover", Resume::Live).await.expect("subscribe");
    let stop = Arc::new(AtomicBool::new(false));
    let failing = Arc::new(std::sync::Mutex::new((None::<Instant>, Duration::ZERO)));
    let publisher = {
        let (stop, failing) = (stop.clone(), failing.clone());
        tokio::spawn(async move {
            let mut i = 0u64;
            while !stop.load(Relaxed) {
                let ok = a.publish("failover", Event::new().data(format!("e{i}"))).await.is_ok();
                {
                    let mut failing = failing.lock().unwrap();
                    match (ok, failing.0) {
                        (false, None) => failing.0 = Some(Instant::now()),
                        (true, Some(since)) => *failing = (None, failing.1 + since.elapsed()),
                        _ => {}
                    }
                }
                i += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    let start = Instant::now();
    let (mut last, mut longest, mut resets, mut events) = (Instant::now(), Duration::ZERO, 0, 0u64);
    let mut decoder = Decoder::new();
    let mut killed = false;
    while start.elapsed() < Duration::from_secs(args.seconds) {
        if !killed && start.elapsed() > Duration::from_secs(2) {
            let primary = cli(&args.sentinels[0], &["SENTINEL", "get-master-addr-by-name", &args.master]);
            let primary = primary.lines().collect::<Vec<_>>().join(":");
            let info = cli(&primary, &["INFO", "server"]);
            let pid = info.lines().find_map(|l| l.strip_prefix("process_id:")).expect("process_id").trim().to_owned();
            Command::new("kill").args(["-KILL", &pid]).status().expect("kill");
            killed = true;
        }
        if let Ok(Some(chunk)) = tokio::time::timeout(Duration::from_millis(100), subscription.next()).await {
            for event in decoder.feed(&chunk).expect("well-formed frames") {
                if event.event == "reset" {
                    resets += 1;
                } else {
                    events += 1;
                    longest = longest.max(last.elapsed());
                    last = Instant::now();
                }
            }
        }
    }
    stop.store(true, Relaxed);
    publisher.await.unwrap();
    let failed = failing.lock().unwrap().1;
    println!(
        "longest wait between two events at the client: {:.2} s; publishing failed for {:.2} s; \
         events {events}, resets {resets}",
        longest.as_secs_f64(),
        failed.as_secs_f64()
    );
}
