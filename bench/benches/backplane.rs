//! End-to-end delivery through the Redis backplane with two nodes, next to the
//! in-memory hub, in one run: deliveries per second, publish-to-receive latency,
//! and Redis commands per published event (from `INFO commandstats`).
//!
//! Run with: `cargo bench -p ssekit-bench --bench backplane --features redis` (needs `redis-server`
//! on the PATH; it is started on a free loopback port and stopped at the end).
//! Optional arguments after `--`: `SUBSCRIBERS EVENTS` (default 1000 2000).

use std::collections::HashMap;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use ssekit::{Decoder, Event, Hub, RedisBackplane, RedisConfig, Resume, Subscription};

struct Redis(Child, u16);

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_redis() -> Redis {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = Command::new("redis-server")
        .args(["--bind", "127.0.0.1", "--port", &port.to_string(), "--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server on the PATH (Debian package redis-server)");
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Redis(child, port);
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("redis-server did not start");
}

fn now_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64
}

/// Reads `events` events from each subscription; returns latencies in µs.
async fn receive_all(subscriptions: Vec<Subscription>, events: usize) -> Vec<u64> {
    let tasks: Vec<_> = subscriptions
        .into_iter()
        .map(|mut subscription| {
            tokio::spawn(async move {
                let mut decoder = Decoder::new();
                let mut latencies = Vec::with_capacity(events);
                while latencies.len() < events {
                    let chunk = tokio::time::timeout(Duration::from_secs(60), subscription.next())
                        .await
                        .expect("delivery stalled")
                        .expect("subscription ended");
                    let received = now_ns();
                    for event in decoder.feed(&chunk).unwrap() {
                        let sent: u64 = event.data.parse().unwrap();
                        latencies.push(received.saturating_sub(sent) / 1000);
                    }
                }
                latencies
            })
        })
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    all
}

struct Report {
    name: &'static str,
    deliveries_per_s: f64,
    p50: u64,
    p99: u64,
    max: u64,
}

fn report(name: &'static str, mut latencies: Vec<u64>, elapsed: Duration) -> Report {
    latencies.sort_unstable();
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
    Report {
        name,
        deliveries_per_s: latencies.len() as f64 / elapsed.as_secs_f64(),
        p50: at(0.5),
        p99: at(0.99),
        max: *latencies.last().unwrap(),
    }
}

/// Publishes `events` events, `rate` per second (0: one after another, as fast
/// as each publish returns).
async fn paced<F, Fut>(events: usize, rate: u64, mut publish: F)
where
    F: FnMut(Event) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut interval = (rate > 0).then(|| tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64)));
    for _ in 0..events {
        if let Some(interval) = &mut interval {
            interval.tick().await;
        }
        publish(Event::new().data(now_ns().to_string())).await;
    }
}

async fn commandstats(port: u16) -> HashMap<String, u64> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let info: String = redis::cmd("INFO").arg("commandstats").query_async(&mut conn).await.unwrap();
    info.lines()
        .filter_map(|line| {
            let (name, rest) = line.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = rest.strip_prefix("calls=")?.split(',').next()?.parse().ok()?;
            Some((name.to_owned(), calls))
        })
        .collect()
}

/// One run of `events` events to `subscribers` subscribers, in memory and through
/// Redis, at `rate` events per second (0: as fast as publishing goes).
async fn run(builder: &ssekit::HubBuilder, port: u16, subscribers: usize, events: usize, rate: u64) -> [Report; 2] {
    let hub = builder.build();
    let subscriptions = (0..subscribers).map(|_| hub.try_subscribe("bench", Resume::Live).unwrap()).collect();
    let receiving = tokio::spawn(receive_all(subscriptions, events));
    let start = Instant::now();
    paced(events, rate, |event| {
        hub.try_publish("bench", event).unwrap();
        tokio::task::yield_now()
    })
    .await;
    let memory = report("in-memory hub", receiving.await.unwrap(), start.elapsed());

    let config = RedisConfig::new(format!("redis://127.0.0.1:{port}/"));
    let node = |config: RedisConfig| async move {
        let redis = RedisBackplane::connect(config).await.unwrap();
        builder.clone().backplane(redis).build()
    };
    let node_a = Arc::new(node(config.clone()).await);
    let node_b = node(config).await;
    let topic = format!("bench-{rate}");
    let mut subscriptions = Vec::new();
    for _ in 0..subscribers {
        subscriptions.push(node_b.subscribe(&topic, Resume::Live).await.unwrap());
    }
    let receiving = tokio::spawn(receive_all(subscriptions, events));
    let start = Instant::now();
    paced(events, rate, |event| {
        let (node_a, topic) = (node_a.clone(), topic.clone());
        async move {
            node_a.publish(&topic, event).await.unwrap();
        }
    })
    .await;
    let redis = report("redis, 2 nodes", receiving.await.unwrap(), start.elapsed());
    [memory, redis]
}

fn table(title: &str, reports: &[Report; 2]) {
    println!("\n{title}\n");
    println!("| path | deliveries/s | p50 µs | p99 µs | max µs |");
    println!("|---|---:|---:|---:|---:|");
    for r in reports {
        println!("| {} | {:.0} | {} | {} | {} |", r.name, r.deliveries_per_s, r.p50, r.p99, r.max);
    }
    println!("\nredis / in-memory deliveries/s: {:.2}", reports[1].deliveries_per_s / reports[0].deliveries_per_s);
}

#[tokio::main]
async fn main() {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let subscribers = args.first().copied().unwrap_or(1000);
    let events = args.get(1).copied().unwrap_or(2000);
    let builder = Hub::builder().history(events + 1).clone();
    let redis = start_redis();
    println!("{subscribers} subscribers on one node, events of ~20 B published on another");

    let before = commandstats(redis.1).await;
    let flat_out = run(&builder, redis.1, subscribers, events, 0).await;
    let after = commandstats(redis.1).await;
    table(&format!("Throughput: {events} events published one after another"), &flat_out);
    let paced_events = events / 2;
    let paced = run(&builder, redis.1, subscribers, paced_events, 500).await;
    table(&format!("Latency: {paced_events} events at 500 per second"), &paced);

    println!("\nRedis commands per published event in the throughput run (INFO commandstats, both nodes):");
    let mut names: Vec<_> = after.keys().collect();
    names.sort();
    let mut total = 0.0;
    for name in names {
        let calls = after[name] - before.get(name).copied().unwrap_or(0);
        if calls > 0 {
            let per_event = calls as f64 / events as f64;
            total += per_event;
            println!("- {name}: {per_event:.3}");
        }
    }
    println!("- total: {total:.3} (commands inside the publish script count one each)");
}
