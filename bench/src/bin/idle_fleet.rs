//! Server memory per idle SSE connection at more connections than one process
//! may hold: a fleet of server processes of the same kind, each with its own
//! hub on its own port, and one client process per server. Where a process may
//! open 20 000 files at most (this sandbox's `ulimit -Hn`), 100 000 idle
//! connections take 6 servers of 16 667 and 6 clients.
//!
//! For each server kind: starts the servers (`--port 0 --history 1024
//! --keep-alive 15` and the kind's flags, pinned to core 0 as in `loadgen`),
//! asks each for `GET /health` and samples its RSS, then runs this binary again
//! once per server in client mode, pinned to core 1. A client opens its share
//! of connections to `GET /events` (128 at a time, spread over loopback source
//! addresses 127.0.0.1…N), reads every response head (`HTTP/1.1 200`), prints
//! one line with what it opened and what failed, and holds the connections
//! idle, reading what comes (keep-alive comments). Once every client has
//! reported and every server counts its connections as subscribers (`GET
//! /health`), 500 ms later, the RSS of every server is sampled again. Printed
//! per kind: connections, processes, total RSS growth, and growth divided by
//! the connections that got their response head (also per process). Then each
//! client is asked (stdin closed) how many of its connections the server
//! closed while they were held, and exits (zero linger: the connections are
//! reset, no `TIME_WAIT` left to take ports from the next kind).
//!
//! Exits with code 1 when a connection failed, a server counted fewer
//! subscribers than connections, or a connection closed while held; every wait
//! is bounded. The servers and clients are killed when the tool exits.
//!
//! ```text
//! nice -n 10 cargo build --release --all-features --example demo
//! nice -n 10 cargo build --release -p ssekit-bench --bin idle_fleet
//! target/release/idle_fleet --servers ssekit-lean --conns 100000
//! idle_fleet [--servers a,b] [--conns N (10 000)] [--procs K (enough for ≤ 17 000 each)]
//!            [--source-addrs N (1 to 254; one per 10 000 connections)] [--bin-dir DIR] [--no-pin]
//! ```
//!
//! Servers (the `loadgen` table): ssekit-axum, ssekit-lean, ssekit-actix,
//! ssekit-hyper, axum-broadcast, actix-broadcaster, raw-tcp. `bench/idle-100k.sh`
//! builds them and runs 10 000 and 100 000 connections.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use ssekit_bench::client::{bound_socket, connect, ok_head, request_events, source_addr, subscribers};
use ssekit_bench::server::{SERVERS, Server, profile_dir, rss_bytes, server_args};
use tokio::io::AsyncReadExt;
use tokio::sync::Semaphore;

/// The most connections one server (and one client) process gets by default.
const PER_PROCESS: usize = 17_000;
/// Connections a client opens at once.
const PARALLEL: usize = 128;
/// How long a client may take to open its connections.
const OPEN_LIMIT: Duration = Duration::from_secs(300);
/// How long the servers may take to count their subscribers.
const COUNT_LIMIT: Duration = Duration::from_secs(60);

#[derive(Debug)]
struct Opts {
    servers: Vec<String>,
    conns: usize,
    procs: Option<usize>,
    sources: Option<usize>,
    bin_dir: PathBuf,
    pin: bool,
}

fn usage() -> ! {
    eprintln!(
        "usage: idle_fleet [--servers a,b] [--conns N] [--procs K] [--source-addrs N] [--bin-dir DIR] [--no-pin]\nservers: {}",
        SERVERS.iter().map(|s| s.0).collect::<Vec<_>>().join(", ")
    );
    std::process::exit(2)
}

fn parse_opts(mut args: impl Iterator<Item = String>) -> Opts {
    let mut opts = Opts {
        servers: vec!["ssekit-lean".to_owned()],
        conns: 10_000,
        procs: None,
        sources: None,
        bin_dir: profile_dir(),
        pin: true,
    };
    while let Some(flag) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| usage());
        match flag.as_str() {
            "--servers" => opts.servers = value().split(',').map(str::to_owned).collect(),
            "--conns" => opts.conns = value().parse().ok().filter(|&n| n > 0).unwrap_or_else(|| usage()),
            "--procs" => opts.procs = Some(value().parse().ok().filter(|&n| n > 0).unwrap_or_else(|| usage())),
            "--source-addrs" => {
                opts.sources = Some(value().parse().ok().filter(|n| (1..=254).contains(n)).unwrap_or_else(|| usage()))
            }
            "--bin-dir" => opts.bin_dir = value().into(),
            "--no-pin" => opts.pin = false,
            _ => usage(),
        }
    }
    if opts.servers.iter().any(|name| !SERVERS.iter().any(|s| s.0 == name)) {
        usage()
    }
    opts
}

fn main() {
    let mut args = std::env::args().skip(1).peekable();
    if args.peek().map(String::as_str) == Some("--client") {
        args.next();
        client_main(args);
        return;
    }
    let opts = parse_opts(args);
    let procs = opts.procs.unwrap_or(opts.conns.div_ceil(PER_PROCESS)).min(opts.conns);
    let sources = opts.sources.unwrap_or(opts.conns.div_ceil(10_000).clamp(1, 254));
    let largest = opts.conns.div_ceil(procs);
    let limit = open_files_limit("self");
    eprintln!(
        "idle_fleet: {} connections over {procs} server and {procs} client processes (at most {largest} each), \
         {sources} source address(es); open files limit {}; ephemeral ports {}",
        opts.conns,
        limit.map_or("unknown".to_owned(), |l| l.to_string()),
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap_or_default().trim().replace('\t', "-"),
    );
    if limit.is_some_and(|limit| largest as u64 + 64 > limit) {
        eprintln!("idle_fleet: {largest} connections per process do not fit the open files limit; use more --procs");
        std::process::exit(2);
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    let mut failed = false;
    for name in &opts.servers {
        let Some(&(_, binary, flags)) = SERVERS.iter().find(|s| s.0 == name) else { usage() };
        let binary = opts.bin_dir.join(binary);
        if !binary.exists() {
            eprintln!("{name}: skipped, {} not built", binary.display());
            failed = true;
            continue;
        }
        match measure(&runtime, &binary, flags, &opts, procs, sources) {
            Ok(report) => {
                failed |= !report.complete();
                println!("{name}: {report}");
            }
            Err(err) => {
                failed = true;
                println!("{name}: failed: {err}");
            }
        }
    }
    if failed {
        std::process::exit(1);
    }
}

/// "Max open files" (soft limit) of a process from `/proc/PID/limits`.
fn open_files_limit(pid: &str) -> Option<u64> {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    limits.lines().find_map(|l| l.strip_prefix("Max open files"))?.split_whitespace().next()?.parse().ok()
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

// ---------------------------------------------------------------------------
// The parent: servers, clients, RSS

/// A client process (this binary with `--client`); killed when dropped.
struct Client {
    child: Child,
    stdin: Option<ChildStdin>,
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a kind of server measured.
#[derive(Debug)]
struct Report {
    conns: usize,
    procs: usize,
    opened: usize,
    failed: usize,
    errors: Vec<String>,
    counted: usize,
    closed_while_held: usize,
    rss_before: Vec<u64>,
    rss_after: Vec<u64>,
    opened_per_proc: Vec<usize>,
    limits: String,
    load: (String, String),
    open_s: f64,
}

impl Report {
    fn complete(&self) -> bool {
        self.opened == self.conns && self.failed == 0 && self.counted == self.opened && self.closed_while_held == 0
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mb = |b: u64| b as f64 / 1e6;
        let (before, after): (u64, u64) = (self.rss_before.iter().sum(), self.rss_after.iter().sum());
        let growth = after as f64 - before as f64;
        let per_proc: Vec<String> = (0..self.procs)
            .map(|i| {
                let growth = self.rss_after[i] as f64 - self.rss_before[i] as f64;
                format!("{:.0}", growth / self.opened_per_proc[i].max(1) as f64)
            })
            .collect();
        write!(
            f,
            "{} connections over {} processes: {} got their response head, {} failed{}; servers count {} subscribers; \
             RSS {:.1} MB -> {:.1} MB, growth {:.1} MB; {:.0} B per connection (per process: {}); \
             closed while held: {}; opened in {:.1} s; open files limit {}; load average {} -> {}",
            self.conns,
            self.procs,
            self.opened,
            self.failed,
            if self.errors.is_empty() { String::new() } else { format!(" ({})", self.errors.join("; ")) },
            self.counted,
            mb(before),
            mb(after),
            growth / 1e6,
            growth / self.opened.max(1) as f64,
            per_proc.join(" / "),
            self.closed_while_held,
            self.open_s,
            self.limits,
            self.load.0,
            self.load.1,
        )
    }
}

/// The next line of client `i` within `until`.
fn line_from(
    lines: &mpsc::Receiver<(usize, String)>,
    pending: &mut Vec<(usize, String)>,
    i: usize,
    until: Instant,
) -> Result<Value, String> {
    loop {
        if let Some(at) = pending.iter().position(|(from, _)| *from == i) {
            let (_, line) = pending.remove(at);
            return serde_json::from_str(&line).map_err(|e| format!("client {i}: {e}: {line:?}"));
        }
        let left = until.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => pending.push(line),
            Err(_) => return Err(format!("client {i}: no report in time")),
        }
    }
}

fn measure(
    runtime: &tokio::runtime::Runtime,
    binary: &Path,
    flags: &[&str],
    opts: &Opts,
    procs: usize,
    sources: usize,
) -> Result<Report, String> {
    let load_before = load_average();
    let servers = (0..procs)
        .map(|_| Server::start(binary, &server_args(flags), opts.pin.then_some(0)))
        .collect::<Result<Vec<_>, _>>()?;
    // Warm up each server (allocator, first request) before the memory baseline.
    for server in &servers {
        runtime.block_on(subscribers(server.addr())).ok_or("no /health answer")?;
    }
    std::thread::sleep(Duration::from_millis(200));
    let rss_before: Vec<u64> = servers.iter().map(|s| rss_bytes(s.pid())).collect();

    // Connection i of the whole fleet goes from source address i % sources.
    let shares: Vec<usize> = (0..procs).map(|i| opts.conns / procs + usize::from(i < opts.conns % procs)).collect();
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let (lines_tx, lines) = mpsc::channel();
    let started = Instant::now();
    let mut clients = Vec::with_capacity(procs);
    for (i, server) in servers.iter().enumerate() {
        let first: usize = shares[..i].iter().sum();
        let mut command = if opts.pin {
            let mut c = Command::new("taskset");
            c.arg("-c").arg("1").arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        command
            .args(["--client", &server.addr().to_string(), &shares[i].to_string(), &first.to_string()])
            .arg(sources.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        let mut child = command.spawn().map_err(|e| format!("spawn client: {e}"))?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().ok_or("no client stdout")?;
        let lines_tx = lines_tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if lines_tx.send((i, line)).is_err() {
                    break;
                }
            }
        });
        clients.push(Client { child, stdin });
    }
    let mut pending = Vec::new();
    let (mut opened_per_proc, mut failed, mut errors) = (Vec::new(), 0, Vec::new());
    let until = Instant::now() + OPEN_LIMIT + Duration::from_secs(10);
    for i in 0..procs {
        let report = line_from(&lines, &mut pending, i, until)?;
        opened_per_proc.push(report["opened"].as_u64().unwrap_or(0) as usize);
        failed += report["failed"].as_u64().unwrap_or(0) as usize;
        for err in report["errors"].as_array().into_iter().flatten().filter_map(Value::as_str) {
            if errors.len() < 5 {
                errors.push(format!("client {i}: {err}"));
            }
        }
    }
    let open_s = started.elapsed().as_secs_f64();
    let opened: usize = opened_per_proc.iter().sum();
    // Every connection has its response head; wait until each server counts its own.
    let count_until = Instant::now() + COUNT_LIMIT;
    for (server, &expected) in servers.iter().zip(&opened_per_proc) {
        while Instant::now() < count_until && runtime.block_on(subscribers(server.addr())).unwrap_or(0) < expected {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    let rss_after: Vec<u64> = servers.iter().map(|s| rss_bytes(s.pid())).collect();
    let counted: usize = servers.iter().map(|s| runtime.block_on(subscribers(s.addr())).unwrap_or(0)).sum();
    let limits = format!(
        "{} (server) / {} (client)",
        open_files_limit(&servers[0].pid().to_string()).unwrap_or(0),
        open_files_limit(&clients[0].child.id().to_string()).unwrap_or(0),
    );
    let load_after = load_average();

    // Ask each client how many connections closed while held; it then exits.
    for client in &mut clients {
        client.stdin.take();
    }
    let mut closed_while_held = 0;
    let until = Instant::now() + Duration::from_secs(30);
    for i in 0..procs {
        let report = line_from(&lines, &mut pending, i, until)?;
        closed_while_held += report["closed_while_held"].as_u64().unwrap_or(0) as usize;
    }
    drop(clients);
    drop(servers);
    Ok(Report {
        conns: opts.conns,
        procs,
        opened,
        failed,
        errors,
        counted,
        closed_while_held,
        rss_before,
        rss_after,
        opened_per_proc,
        limits,
        load: (load_before, load_after),
        open_s,
    })
}

// ---------------------------------------------------------------------------
// Client mode: `--client ADDR COUNT FIRST SOURCES`

/// What the connections of a client share.
#[derive(Default)]
struct Tally {
    opened: AtomicUsize,
    failed: AtomicUsize,
    attempted: AtomicUsize,
    closed: AtomicUsize,
    errors: Mutex<Vec<String>>,
}

fn client_main(mut args: impl Iterator<Item = String>) {
    let mut next = || args.next().unwrap_or_else(|| usage());
    let addr: SocketAddr = next().parse().unwrap_or_else(|_| usage());
    let count: usize = next().parse().unwrap_or_else(|_| usage());
    let first: usize = next().parse().unwrap_or_else(|_| usage());
    let sources: usize = next().parse().unwrap_or_else(|_| usage());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    runtime.block_on(client(addr, count, first, sources));
}

async fn client(addr: SocketAddr, count: usize, first: usize, sources: usize) {
    let tally = Arc::new(Tally::default());
    let permits = Arc::new(Semaphore::new(PARALLEL));
    for i in first..first + count {
        let (tally, permits) = (Arc::clone(&tally), Arc::clone(&permits));
        tokio::spawn(async move {
            let permit = permits.acquire().await;
            let opened = open(addr, source_addr(i, sources)).await;
            drop(permit);
            tally.attempted.fetch_add(1, Ordering::Relaxed);
            match opened {
                Ok(stream) => {
                    tally.opened.fetch_add(1, Ordering::Relaxed);
                    hold(stream).await;
                    tally.closed.fetch_add(1, Ordering::Relaxed);
                }
                Err(err) => {
                    tally.failed.fetch_add(1, Ordering::Relaxed);
                    let mut errors = tally.errors.lock().unwrap_or_else(|e| e.into_inner());
                    if errors.len() < 3 {
                        errors.push(err);
                    }
                }
            }
        });
    }
    let until = Instant::now() + OPEN_LIMIT;
    while tally.attempted.load(Ordering::Relaxed) < count && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut errors = tally.errors.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let attempted = tally.attempted.load(Ordering::Relaxed);
    if attempted < count {
        errors.push(format!("{} not done within {} s", count - attempted, OPEN_LIMIT.as_secs()));
    }
    report(json!({
        "opened": tally.opened.load(Ordering::Relaxed),
        "failed": count - tally.opened.load(Ordering::Relaxed),
        "errors": errors,
    }));
    // Hold the connections until the parent closes stdin (or exits).
    let _ = tokio::task::spawn_blocking(|| std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink())).await;
    report(json!({ "closed_while_held": tally.closed.load(Ordering::Relaxed) }));
}

fn report(line: Value) {
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{line}");
    let _ = stdout.flush();
}

/// Opens an event stream and reads its response head.
async fn open(addr: SocketAddr, source: Option<std::net::Ipv4Addr>) -> Result<tokio::net::TcpStream, String> {
    let socket = bound_socket(source)?;
    // Reset at exit: no TIME_WAIT holding the source ports.
    socket.set_zero_linger().map_err(|e| e.to_string())?;
    let mut stream = connect(socket, addr).await?;
    let (head, body_start) = request_events(&mut stream, addr, "/events?topic=bench").await?;
    ok_head(&head[..body_start])?;
    Ok(stream)
}

/// Reads (and drops) what the server sends until it closes the connection.
async fn hold(mut stream: tokio::net::TcpStream) {
    let mut buf = [0u8; 256];
    while matches!(stream.read(&mut buf).await, Ok(n) if n > 0) {}
}
