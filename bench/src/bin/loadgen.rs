//! Load generator for the SSE benchmarks (BENCHMARKS.md): starts each server of
//! the demo contract as its own process pinned to core 0, pins itself to core 1,
//! opens raw TCP connections to `GET /events`, parses the streams with
//! `ssekit::Decoder`, triggers `POST /bench` and measures deliveries/s,
//! publish-to-receive latency, missing events, server CPU per delivery and
//! server RSS per idle connection.
//!
//! Run with `scripts/bench.sh`, or after building the servers (the demos from
//! the root package, the comparison servers from this one; see the script):
//! `cargo run --release -p ssekit-bench --bin loadgen -- --quick`
//!
//! The servers are looked up in the cargo profile directory loadgen was built
//! into (`target/release`): the comparison servers there, the demos in its
//! `examples/`. `--bin-dir DIR` names another profile directory.
//!
//! ```text
//! loadgen [--servers a,b] [--scenarios a,b,c,d,e,f] [--scale F] [--runs N] [--quick]
//!         [--out FILE] [--bin-dir DIR] [--no-pin] [--source-addrs N (1 to 254)]
//! loadgen --chart RESULTS.json OUT_DIR     SVG charts of a results file
//! loadgen --report RESULTS.json            Markdown tables of a results file
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::BytesMut;
use serde_json::{Value, json};
use ssekit::Decoder;
use ssekit_bench::client::{bound_socket, connect, ok_head, request, request_events, source_addr, subscribers};
use ssekit_bench::server::{SERVERS, Server, profile_dir, rss_bytes, server_args};
use tokio::io::AsyncReadExt;
use tokio::sync::{Semaphore, watch};

/// Clients that stop reading in scenario (e) have this receive buffer.
const STALLED_RCVBUF: u32 = 8 * 1024;

#[derive(Debug, Clone, Copy)]
struct Scenario {
    name: char,
    what: &'static str,
    conns: usize,
    events: u64,
    size: usize,
    rate: u64,
    stalled: usize,
    /// Topics each connection follows: `bench`, where the events go, and
    /// `topics - 1` quiet ones (one stream of several topics).
    topics: usize,
}

const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: 'a',
        what: "1 000 connections x 2 000 events of 128 B, as fast as possible",
        conns: 1000,
        events: 2000,
        size: 128,
        rate: 0,
        stalled: 0,
        topics: 1,
    },
    Scenario {
        name: 'b',
        what: "1 000 connections, 100 events/s of 128 B for 10 s (latency)",
        conns: 1000,
        events: 1000,
        size: 128,
        rate: 100,
        stalled: 0,
        topics: 1,
    },
    Scenario {
        name: 'c',
        what: "10 000 idle connections (memory)",
        conns: 10_000,
        events: 0,
        size: 0,
        rate: 0,
        stalled: 0,
        topics: 1,
    },
    Scenario {
        name: 'd',
        what: "10 000 connections x 200 events of 128 B, as fast as possible",
        conns: 10_000,
        events: 200,
        size: 128,
        rate: 0,
        stalled: 0,
        topics: 1,
    },
    Scenario {
        name: 'e',
        what: "100 connections x 10 000 events of 1 KiB, 10 of them stop reading",
        conns: 100,
        events: 10_000,
        size: 1024,
        rate: 0,
        stalled: 10,
        topics: 1,
    },
    Scenario {
        name: 'f',
        what: "10 000 connections x 200 events of 128 B, each following 4 topics (events on one)",
        conns: 10_000,
        events: 200,
        size: 128,
        rate: 0,
        stalled: 0,
        topics: 4,
    },
];

impl Scenario {
    fn scaled(self, scale: f64) -> Self {
        let scale_n = |n: usize, min: usize| ((n as f64 * scale).round() as usize).max(min);
        Self {
            conns: scale_n(self.conns, 10),
            events: if self.events == 0 { 0 } else { scale_n(self.events as usize, 20) as u64 },
            stalled: if self.stalled == 0 { 0 } else { scale_n(self.stalled, 1) },
            ..self
        }
    }
}

#[derive(Debug)]
struct Opts {
    servers: Vec<String>,
    scenarios: Vec<char>,
    scale: f64,
    runs: usize,
    out: PathBuf,
    bin_dir: PathBuf,
    pin: bool,
    /// Loopback source addresses the connections are spread over
    /// (127.0.0.1, .2, …): past ~28 000 connections one address runs out of ports.
    sources: usize,
}

fn usage() -> ! {
    eprintln!(
        "usage: loadgen [--servers a,b] [--scenarios a,b,c,d,e,f] [--scale F] [--runs N] [--quick] [--out FILE] [--bin-dir DIR] [--no-pin] [--source-addrs N]\n       loadgen --chart RESULTS.json OUT_DIR\n       loadgen --report RESULTS.json\nservers: {}",
        SERVERS.iter().map(|s| s.0).collect::<Vec<_>>().join(", ")
    );
    std::process::exit(2)
}

fn parse_opts() -> Opts {
    let mut opts = Opts {
        servers: SERVERS.iter().map(|s| s.0.to_owned()).collect(),
        scenarios: SCENARIOS.iter().map(|s| s.name).collect(),
        scale: 1.0,
        runs: 1,
        out: PathBuf::from("target/bench/results.json"),
        bin_dir: profile_dir(),
        pin: true,
        sources: 1,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| usage());
        match flag.as_str() {
            "--servers" => opts.servers = value().split(',').map(str::to_owned).collect(),
            "--scenarios" => opts.scenarios = value().split(',').filter_map(|s| s.chars().next()).collect(),
            "--scale" => opts.scale = value().parse().unwrap_or_else(|_| usage()),
            "--runs" => opts.runs = value().parse().unwrap_or_else(|_| usage()),
            "--out" => opts.out = value().into(),
            "--bin-dir" => opts.bin_dir = value().into(),
            "--no-pin" => opts.pin = false,
            "--source-addrs" => {
                opts.sources = value().parse().ok().filter(|n| (1..=254).contains(n)).unwrap_or_else(|| usage())
            }
            "--quick" => opts.scale = 0.05,
            "--chart" => {
                let (results, dir) = (value(), value());
                chart(Path::new(&results), Path::new(&dir));
                std::process::exit(0)
            }
            "--report" => {
                report(Path::new(&value()));
                std::process::exit(0)
            }
            _ => usage(),
        }
    }
    for server in &opts.servers {
        if !SERVERS.iter().any(|s| s.0 == server) {
            usage()
        }
    }
    opts
}

fn main() {
    let opts = parse_opts();
    // Pin to core 1 by running again under `taskset -c 1`; the servers get core 0.
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    if opts.pin && std::env::var_os("LOADGEN_PINNED").is_none() && cores >= 2 {
        use std::os::unix::process::CommandExt;
        let err =
            Command::new("taskset").arg("-c").arg("1").args(std::env::args_os()).env("LOADGEN_PINNED", "1").exec();
        eprintln!("loadgen: cannot re-run under taskset ({err}); running unpinned");
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    let mut results = Vec::new();
    for run in 1..=opts.runs {
        for &name in &opts.scenarios {
            let Some(scenario) = SCENARIOS.iter().find(|s| s.name == name) else { usage() };
            let scenario = scenario.scaled(opts.scale);
            for server in &opts.servers {
                let Some(&(_, binary, flags)) = SERVERS.iter().find(|s| s.0 == server) else { usage() };
                let binary = opts.bin_dir.join(binary);
                if !binary.exists() {
                    eprintln!("skip {server}: {} not built", binary.display());
                    continue;
                }
                eprintln!(
                    "run {run} scenario {} ({} conns, {} events x {} B, rate {}, {} stalled) on {server}",
                    scenario.name, scenario.conns, scenario.events, scenario.size, scenario.rate, scenario.stalled
                );
                let result = match runtime.block_on(measure(server, &binary, flags, scenario, &opts)) {
                    Ok(mut result) => {
                        result["run"] = json!(run);
                        result
                    }
                    Err(err) => json!({ "server": server, "scenario": name.to_string(), "run": run, "error": err }),
                };
                eprintln!("  {}", summary(&result));
                results.push(result);
            }
        }
    }
    let doc = json!({
        "machine": machine(),
        "scale": opts.scale,
        "runs": opts.runs,
        "scenarios": SCENARIOS.iter().map(|s| {
            let scaled = s.scaled(opts.scale);
            json!({ "name": s.name.to_string(), "what": s.what, "conns": scaled.conns, "events": scaled.events,
                    "size": scaled.size, "rate": scaled.rate, "stalled": scaled.stalled })
        }).collect::<Vec<_>>(),
        "results": results,
    });
    if let Some(dir) = opts.out.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    std::fs::write(&opts.out, serde_json::to_string_pretty(&doc).unwrap_or_default()).expect("write results");
    eprintln!("wrote {}", opts.out.display());
    let failed = doc["results"].as_array().map_or(0, |r| r.iter().filter(|r| r.get("error").is_some()).count());
    if failed > 0 {
        eprintln!("{failed} measurement(s) failed");
        std::process::exit(1);
    }
}

fn machine() -> Value {
    let cpu = std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|s| {
        s.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
    });
    json!({ "cores": std::thread::available_parallelism().map_or(0, usize::from), "cpu": cpu })
}

fn summary(r: &Value) -> String {
    if let Some(err) = r.get("error") {
        return format!("error: {err}");
    }
    format!(
        "deliveries/s {:.0}  p50 {} us  p99 {} us  max {} us  missing {}  cpu/delivery {:.0} ns  rss/conn {:.0} B  publish {:.3} s  loadgen cpu {:.0}%{}",
        r["deliveries_per_s"].as_f64().unwrap_or(0.0),
        r["latency_us"]["p50"],
        r["latency_us"]["p99"],
        r["latency_us"]["max"],
        r["missing"],
        r["cpu_ns_per_delivery"].as_f64().unwrap_or(0.0),
        r["rss_bytes_per_conn"].as_f64().unwrap_or(0.0),
        r["publish_s"].as_f64().unwrap_or(0.0),
        r["loadgen_cpu_ratio"].as_f64().unwrap_or(0.0) * 100.0,
        if r["stalled"].is_null() { String::new() } else { format!("  stalled {}", r["stalled"]) },
    )
}

// ---------------------------------------------------------------------------
// CPU time from /proc (the servers are `ssekit_bench::server::Server`s)

/// CPU time of a process in seconds: the sum of its threads' run time from
/// `/proc/PID/task/*/schedstat` (nanoseconds), or utime + stime from
/// `/proc/PID/stat` (10 ms ticks) where schedstat is missing.
fn cpu_seconds(pid: &str) -> f64 {
    let mut ns = 0u64;
    let mut threads = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).into_iter().flatten().flatten() {
        let schedstat = std::fs::read_to_string(task.path().join("schedstat")).unwrap_or_default();
        if let Some(run) = schedstat.split_whitespace().next().and_then(|v| v.parse::<u64>().ok()) {
            ns += run;
            threads += 1;
        }
    }
    if threads > 0 {
        return ns as f64 / 1e9;
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit_once(')').map_or("", |(_, rest)| rest).split_whitespace().collect();
    // After the command name: utime and stime are the 12th and 13th fields.
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

fn now_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

// ---------------------------------------------------------------------------
// SSE connections

/// The body of an HTTP/1.1 response: as is, or chunked.
enum Body {
    Plain,
    ChunkSize(Vec<u8>),
    ChunkData(usize),
    ChunkEnd(usize),
    Done,
}

impl Body {
    /// Appends the payload bytes of `input` to `out`; false once the body ended.
    fn feed(&mut self, mut input: &[u8], out: &mut BytesMut) -> bool {
        while !input.is_empty() {
            match self {
                Self::Plain => {
                    out.extend_from_slice(input);
                    return true;
                }
                Self::ChunkSize(line) => match input.iter().position(|&b| b == b'\n') {
                    Some(at) => {
                        line.extend_from_slice(&input[..at]);
                        input = &input[at + 1..];
                        let hex = String::from_utf8_lossy(line);
                        let hex = hex.split(';').next().unwrap_or("").trim();
                        match usize::from_str_radix(hex, 16) {
                            Ok(0) | Err(_) => *self = Self::Done,
                            Ok(n) => *self = Self::ChunkData(n),
                        }
                    }
                    None => {
                        line.extend_from_slice(input);
                        return true;
                    }
                },
                Self::ChunkData(n) => {
                    let take = (*n).min(input.len());
                    out.extend_from_slice(&input[..take]);
                    input = &input[take..];
                    *n -= take;
                    if *n == 0 {
                        *self = Self::ChunkEnd(2);
                    }
                }
                Self::ChunkEnd(n) => {
                    let take = (*n).min(input.len());
                    input = &input[take..];
                    *n -= take;
                    if *n == 0 {
                        *self = Self::ChunkSize(Vec::new());
                    }
                }
                Self::Done => return false,
            }
        }
        !matches!(self, Self::Done)
    }
}

/// What the connections share with the conductor.
struct Shared {
    connected: AtomicUsize,
    delivered: AtomicU64,
    last_rx_ns: AtomicU64,
    stop: watch::Receiver<bool>,
    drain: watch::Receiver<bool>,
    connect_permits: Semaphore,
}

#[derive(Debug, Default)]
struct ConnStats {
    connected: bool,
    events: u64,
    resets: u64,
    eof: bool,
    error: Option<String>,
    latencies_us: Vec<u32>,
}

/// One connection to `GET /events`: reads until stopped (or, when `stalled`,
/// reads nothing until told to drain, then reads until 2 s of silence).
async fn subscriber(
    addr: SocketAddr,
    source: Option<std::net::Ipv4Addr>,
    path: Arc<str>,
    stalled: bool,
    expected: u64,
    shared: Arc<Shared>,
) -> ConnStats {
    let mut stats = ConnStats::default();
    if let Err(err) = subscribe(addr, source, &path, stalled, expected, &shared, &mut stats).await {
        stats.error = Some(err);
    }
    stats
}

async fn subscribe(
    addr: SocketAddr,
    source: Option<std::net::Ipv4Addr>,
    path: &str,
    stalled: bool,
    expected: u64,
    shared: &Shared,
    stats: &mut ConnStats,
) -> Result<(), String> {
    let permit = shared.connect_permits.acquire().await.map_err(|e| e.to_string())?;
    let socket = bound_socket(source)?;
    if stalled {
        let _ = socket.set_recv_buffer_size(STALLED_RCVBUF);
    }
    let mut stream = connect(socket, addr).await?;
    let _ = stream.set_nodelay(true);
    let (head, body_start) = request_events(&mut stream, addr, path).await?;
    let mut buf = vec![0u8; 16 * 1024];
    let text = ok_head(&head[..body_start])?;
    let mut body = if text.contains("transfer-encoding: chunked") { Body::ChunkSize(Vec::new()) } else { Body::Plain };
    drop(permit);
    stats.connected = true;
    shared.connected.fetch_add(1, Ordering::Relaxed);

    let mut sse = BytesMut::with_capacity(4096);
    let mut decoder = Decoder::new();
    let mut open = body.feed(&head[body_start..], &mut sse);
    let mut stop = shared.stop.clone();
    if stalled {
        let mut drain = shared.drain.clone();
        let _ = drain.wait_for(|d| *d).await;
    }
    let mut received_ns = now_ns();
    loop {
        while let Some(event) = decoder.decode(&mut sse).map_err(|e| e.to_string())? {
            if event.event == "reset" {
                stats.resets += 1;
            } else if let Some(ts) = event.data.strip_prefix("ts=") {
                stats.events += 1;
                if !stalled {
                    let sent: u64 = ts.split(' ').next().and_then(|t| t.parse().ok()).unwrap_or(received_ns);
                    stats.latencies_us.push((received_ns.saturating_sub(sent) / 1000).min(u64::from(u32::MAX)) as u32);
                    shared.delivered.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        if !open || (!stalled && stats.events >= expected && expected > 0) {
            break;
        }
        let read = if stalled {
            match tokio::time::timeout(Duration::from_secs(2), stream.read(&mut buf)).await {
                Ok(read) => read,
                Err(_) => break,
            }
        } else {
            tokio::select! {
                biased;
                read = stream.read(&mut buf) => read,
                _ = stop.wait_for(|s| *s) => break,
            }
        };
        match read {
            Ok(0) => {
                stats.eof = true;
                break;
            }
            Ok(n) => {
                received_ns = now_ns();
                if !stalled {
                    shared.last_rx_ns.fetch_max(received_ns, Ordering::Relaxed);
                }
                open = body.feed(&buf[..n], &mut sse);
            }
            Err(err) => {
                stats.error = Some(format!("read: {err}"));
                stats.eof = true;
                break;
            }
        }
    }
    if !stalled {
        // Hold the connection until every connection is done, as a client would.
        let _ = stop.wait_for(|s| *s).await;
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// One measurement

fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

async fn measure(
    server_name: &str,
    binary: &Path,
    flags: &[&str],
    scenario: Scenario,
    opts: &Opts,
) -> Result<Value, String> {
    let server = Server::start(binary, &server_args(flags), opts.pin.then_some(0))?;
    let addr = server.addr();
    let pid = server.pid();
    let total = scenario.conns;
    // Warm up the server (allocator, first request) before the memory baseline.
    subscribers(addr).await.ok_or("no /health answer")?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rss_before = rss_bytes(pid);

    let (stop_tx, stop) = watch::channel(false);
    let (drain_tx, drain) = watch::channel(false);
    let shared = Arc::new(Shared {
        connected: AtomicUsize::new(0),
        delivered: AtomicU64::new(0),
        last_rx_ns: AtomicU64::new(0),
        stop,
        drain,
        connect_permits: Semaphore::new(128),
    });
    let connect_started = Instant::now();
    let mut tasks = Vec::with_capacity(total);
    let path: Arc<str> = (1..scenario.topics)
        .fold("/events?topic=bench".to_owned(), |path, i| path + &format!("&topic=quiet-{i}"))
        .into();
    for i in 0..total {
        let stalled = i < scenario.stalled;
        let source = source_addr(i, opts.sources);
        let subscriber = subscriber(addr, source, Arc::clone(&path), stalled, scenario.events, Arc::clone(&shared));
        tasks.push((stalled, tokio::spawn(subscriber)));
    }
    // Every connection has its response head; then wait until the server counts them all.
    let connect_deadline = Instant::now() + Duration::from_secs(60);
    while shared.connected.load(Ordering::Relaxed) < total
        && Instant::now() < connect_deadline
        && tasks.iter().any(|(_, t)| !t.is_finished())
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let connected = shared.connected.load(Ordering::Relaxed);
    while Instant::now() < connect_deadline && subscribers(addr).await.unwrap_or(0) < connected {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let connect_s = connect_started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_after = rss_bytes(pid);
    let server_subscribers = subscribers(addr).await.unwrap_or(0);

    let mut result = json!({
        "server": server_name,
        "scenario": scenario.name.to_string(),
        "conns": total,
        "connected": connected,
        "server_subscribers": server_subscribers,
        "connect_s": connect_s,
        "events": scenario.events,
        "size": scenario.size,
        "rate": scenario.rate,
        "rss_before": rss_before,
        "rss_after": rss_after,
        "rss_bytes_per_conn": (rss_after as f64 - rss_before as f64) / connected.max(1) as f64,
    });

    if scenario.events > 0 {
        let readers = (connected.saturating_sub(scenario.stalled)) as u64;
        let expected = readers * scenario.events;
        let pid_s = pid.to_string();
        let cpu_before = cpu_seconds(&pid_s);
        let self_before = cpu_seconds("self");
        let start_ns = now_ns();
        let started = Instant::now();
        let target =
            format!("/bench?topic=bench&count={}&size={}&rate={}", scenario.events, scenario.size, scenario.rate);
        let run_limit = Duration::from_secs(180);
        let mut publish = tokio::spawn(async move { request(addr, "POST", &target, run_limit).await });
        // Clients that stop reading resume when publishing is done, or after 10 s at most.
        let stall_limit = Duration::from_secs(10);
        let mut publish_answer = None;
        if scenario.stalled > 0 {
            if let Ok(answer) = tokio::time::timeout(stall_limit, &mut publish).await {
                publish_answer = Some(answer);
            }
        } else {
            publish_answer = Some((&mut publish).await);
        }
        let publish_held = publish_answer.is_none();
        let _ = drain_tx.send(true);
        let answer = match publish_answer {
            Some(answer) => answer,
            None => publish.await,
        };
        let publish_s = started.elapsed().as_secs_f64();
        match answer {
            Ok(Ok((200, _))) => {}
            Ok(Ok((status, body))) => return Err(format!("POST /bench: {status} {body}")),
            Ok(Err(err)) => return Err(format!("POST /bench: {err}")),
            Err(err) => return Err(format!("POST /bench task: {err}")),
        }
        // Wait for every delivery, or 2 s without progress.
        let deadline = Instant::now() + run_limit;
        let mut last = (shared.delivered.load(Ordering::Relaxed), Instant::now());
        loop {
            let delivered = shared.delivered.load(Ordering::Relaxed);
            if delivered >= expected || Instant::now() > deadline {
                break;
            }
            if delivered != last.0 {
                last = (delivered, Instant::now());
            } else if last.1.elapsed() > Duration::from_secs(2) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let cpu_after = cpu_seconds(&pid_s);
        let self_after = cpu_seconds("self");
        let wall_s = started.elapsed().as_secs_f64();
        let delivered = shared.delivered.load(Ordering::Relaxed);
        let last_rx = shared.last_rx_ns.load(Ordering::Relaxed);
        let delivery_s = (last_rx.saturating_sub(start_ns)) as f64 / 1e9;
        let cpu_s = cpu_after - cpu_before;
        let self_ratio = (self_after - self_before) / wall_s.max(1e-9);
        result["publish_s"] = json!(publish_s);
        result["publish_held_by_stalled"] = json!(publish_held);
        result["delivery_s"] = json!(delivery_s);
        result["expected"] = json!(expected);
        result["delivered"] = json!(delivered);
        result["deliveries_per_s"] = json!(delivered as f64 / delivery_s.max(1e-9));
        result["server_cpu_s"] = json!(cpu_s);
        result["cpu_ns_per_delivery"] = json!(cpu_s * 1e9 / delivered.max(1) as f64);
        result["loadgen_cpu_ratio"] = json!(self_ratio);
        result["loadgen_saturated"] = json!(self_ratio > 0.9);
    }
    let _ = stop_tx.send(true);
    let _ = drain_tx.send(true);

    let mut latencies = Vec::new();
    let (mut missing, mut conns_missing, mut errors, mut resets) = (0u64, 0usize, Vec::new(), 0u64);
    let mut stalled_stats = Vec::new();
    for (stalled, task) in tasks {
        let stats = task.await.unwrap_or_default();
        if let Some(err) = &stats.error {
            if errors.len() < 5 {
                errors.push(err.clone());
            }
        }
        if stalled {
            stalled_stats.push(stats);
            continue;
        }
        let miss = scenario.events.saturating_sub(stats.events);
        missing += miss;
        conns_missing += usize::from(miss > 0 && stats.connected);
        resets += stats.resets;
        latencies.extend_from_slice(&stats.latencies_us);
    }
    drop(server);
    if scenario.events > 0 {
        latencies.sort_unstable();
        result["latency_us"] = json!({
            "p50": percentile(&latencies, 50.0),
            "p99": percentile(&latencies, 99.0),
            "p999": percentile(&latencies, 99.9),
            "max": latencies.last().copied().unwrap_or(0),
        });
        result["missing"] = json!(missing);
        result["conns_missing"] = json!(conns_missing);
        result["resets"] = json!(resets);
    }
    if scenario.stalled > 0 {
        let got: Vec<u64> = stalled_stats.iter().map(|s| s.events).collect();
        result["stalled"] = json!({
            "clients": stalled_stats.len(),
            "events_min": got.iter().min(),
            "events_max": got.iter().max(),
            "missing": got.iter().map(|g| scenario.events.saturating_sub(*g)).sum::<u64>(),
            "with_reset": stalled_stats.iter().filter(|s| s.resets > 0).count(),
            "disconnected": stalled_stats.iter().filter(|s| s.eof).count(),
        });
    }
    result["errors"] = json!(errors);
    Ok(result)
}

// ---------------------------------------------------------------------------
// Reports and charts

/// Per (scenario, server): the values of `key` over the runs.
fn by_server(doc: &Value, key: &str) -> BTreeMap<(String, String), Vec<f64>> {
    let mut out: BTreeMap<(String, String), Vec<f64>> = BTreeMap::new();
    for r in doc["results"].as_array().into_iter().flatten() {
        let pointer = format!("/{}", key.replace('.', "/"));
        if let Some(v) = r.pointer(&pointer).and_then(Value::as_f64) {
            let id = (r["scenario"].as_str().unwrap_or("").to_owned(), r["server"].as_str().unwrap_or("").to_owned());
            out.entry(id).or_default().push(v);
        }
    }
    out
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len().max(1) as f64
}

fn read_results(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| {
        eprintln!("{}: {e}", path.display());
        std::process::exit(1)
    });
    serde_json::from_str(&text).unwrap_or_else(|e| {
        eprintln!("{}: {e}", path.display());
        std::process::exit(1)
    })
}

fn report(path: &Path) {
    let doc = read_results(path);
    let metrics: &[(&str, &str, bool)] = &[
        ("deliveries_per_s", "deliveries/s", true),
        ("cpu_ns_per_delivery", "CPU ns/delivery", false),
        ("latency_us.p50", "p50 us", false),
        ("latency_us.p99", "p99 us", false),
        ("latency_us.p999", "p99.9 us", false),
        ("latency_us.max", "max us", false),
        ("missing", "missing", false),
        ("rss_bytes_per_conn", "RSS B/conn", false),
        ("publish_s", "publish s", false),
        ("loadgen_cpu_ratio", "loadgen CPU/wall", false),
    ];
    let servers: Vec<&str> = SERVERS.iter().map(|s| s.0).collect();
    for scenario in doc["scenarios"].as_array().into_iter().flatten() {
        let name = scenario["name"].as_str().unwrap_or("");
        let rows: Vec<&Value> =
            doc["results"].as_array().into_iter().flatten().filter(|r| r["scenario"].as_str() == Some(name)).collect();
        if rows.is_empty() {
            continue;
        }
        println!(
            "\n### ({name}) {} — measured: {} conns, {} events x {} B, rate {}, {} stalled\n",
            scenario["what"].as_str().unwrap_or(""),
            scenario["conns"],
            scenario["events"],
            scenario["size"],
            scenario["rate"],
            scenario["stalled"]
        );
        let shown: Vec<_> = metrics
            .iter()
            .filter(|m| rows.iter().any(|r| r.pointer(&format!("/{}", m.0.replace('.', "/"))).is_some()))
            .collect();
        print!("| server | run |");
        for m in &shown {
            print!(" {} |", m.1);
        }
        println!();
        println!("|---|---|{}", "---:|".repeat(shown.len()));
        for server in &servers {
            for r in rows.iter().filter(|r| r["server"].as_str() == Some(server)) {
                print!("| {server} | {} |", r["run"]);
                if let Some(err) = r.get("error") {
                    println!(" error: {err} |");
                    continue;
                }
                for m in &shown {
                    let v =
                        r.pointer(&format!("/{}", m.0.replace('.', "/"))).and_then(Value::as_f64).unwrap_or(f64::NAN);
                    if m.0 == "loadgen_cpu_ratio" || m.0 == "publish_s" {
                        print!(" {v:.2} |");
                    } else {
                        print!(" {v:.0} |");
                    }
                }
                println!();
                if !r["stalled"].is_null() {
                    println!("|  ↳ stalled clients | | {} |", r["stalled"]);
                }
            }
        }
        let shown: Vec<_> = shown
            .into_iter()
            .filter(|m| {
                ["deliveries_per_s", "cpu_ns_per_delivery", "latency_us.p99", "rss_bytes_per_conn", "publish_s"]
                    .contains(&m.0)
            })
            .collect();
        println!("\nRatios of the means over the runs (server / raw-tcp, server / axum-broadcast):\n");
        println!("| server | {} |", shown.iter().map(|m| m.1).collect::<Vec<_>>().join(" | "));
        println!("|---|{}", "---:|".repeat(shown.len()));
        for server in &servers {
            let mut line = format!("| {server} |");
            let mut any = false;
            for m in &shown {
                let values = by_server(&doc, m.0);
                let get = |s: &str| values.get(&(name.to_owned(), s.to_owned())).map(|v| mean(v));
                match (get(server), get("raw-tcp"), get("axum-broadcast")) {
                    (Some(v), floor, axum) => {
                        any = true;
                        let ratio = |base: Option<f64>| {
                            base.filter(|b| *b != 0.0).map_or("–".to_owned(), |b| format!("{:.2}", v / b))
                        };
                        line.push_str(&format!(" {} / {} |", ratio(floor), ratio(axum)));
                    }
                    _ => line.push_str(" |"),
                }
            }
            if any {
                println!("{line}");
            }
        }
    }
}

fn chart(results: &Path, dir: &Path) {
    use plotters::prelude::*;
    let doc = read_results(results);
    let _ = std::fs::create_dir_all(dir);
    let charts = [
        ("deliveries.svg", "deliveries_per_s", "deliveries per second (mean of runs; higher is better)"),
        ("cpu_per_delivery.svg", "cpu_ns_per_delivery", "server CPU ns per delivery (mean of runs; lower is better)"),
    ];
    let colors = [
        RGBColor(31, 119, 180),
        RGBColor(44, 160, 44),
        RGBColor(23, 190, 207),
        RGBColor(255, 127, 14),
        RGBColor(214, 39, 40),
        RGBColor(127, 127, 127),
    ];
    for (file, key, title) in charts {
        let values = by_server(&doc, key);
        let scenarios: Vec<String> = {
            let mut s: Vec<String> = values.keys().map(|k| k.0.clone()).collect();
            s.dedup();
            s
        };
        if scenarios.is_empty() {
            continue;
        }
        let row_h = 18;
        let rows_per_scenario = SERVERS.len() + 1;
        let height = 60 + (scenarios.len() * rows_per_scenario * row_h) as u32;
        let width = 900u32;
        let path = dir.join(file);
        let area = SVGBackend::new(&path, (width, height)).into_drawing_area();
        let _ = area.fill(&WHITE);
        let _ = area.draw(&Text::new(title.to_owned(), (10, 10), ("sans-serif", 16).into_font()));
        let label_w = 170;
        let bar_w = width as i32 - label_w - 130;
        let mut y = 40;
        for scenario in &scenarios {
            let _ = area.draw(&Text::new(
                format!("scenario ({scenario})"),
                (10, y),
                ("sans-serif", 13).into_font().style(FontStyle::Bold),
            ));
            y += row_h as i32;
            let max = SERVERS
                .iter()
                .filter_map(|s| values.get(&(scenario.clone(), s.0.to_owned())).map(|v| mean(v)))
                .fold(0.0f64, f64::max);
            for (i, (server, _, _)) in SERVERS.iter().enumerate() {
                let Some(v) = values.get(&(scenario.clone(), (*server).to_owned())).map(|v| mean(v)) else {
                    continue;
                };
                let w = if max > 0.0 { (v / max * bar_w as f64) as i32 } else { 0 };
                let _ = area.draw(&Text::new((*server).to_owned(), (20, y + 2), ("sans-serif", 12).into_font()));
                let _ = area.draw(&Rectangle::new(
                    [(label_w, y), (label_w + w.max(1), y + row_h as i32 - 4)],
                    colors[i].filled(),
                ));
                let label = if v >= 1000.0 { format!("{:.0}k", v / 1000.0) } else { format!("{v:.0}") };
                let _ = area.draw(&Text::new(label, (label_w + w + 6, y + 2), ("sans-serif", 12).into_font()));
                y += row_h as i32;
            }
        }
        let _ = area.present();
        eprintln!("wrote {}", path.display());
    }
}
