//! Connection churn: a demo app as its own process, and rounds of clients that
//! open `GET /events`, read the response head and leave at once, with one
//! publish to their topic after each round. Prints, after each round and again
//! once it settled, the demo's resident memory and the subscribers it still
//! counts (a framework that sees departed clients late counts them for a while).
//!
//! ```text
//! cargo build --release --all-features --example demo_actix
//! cargo run --release -p ssekit-bench --bin churn -- --demo demo_actix --rounds 3 --clients 20000
//! ```
//!
//! Flags: `--demo NAME` (an example of the root package: `demo`, `demo_actix`,
//! `demo_hyper`; `demo_actix` by default; or the path of another server of the
//! demo contract, such as `target/release/peer_actix_broadcaster`), `--rounds N` (3), `--clients N` per
//! round (20 000), `--parallel N` connections at once (200), `--settle SECS` (5).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ssekit_bench::client::request_events;
use ssekit_bench::server::{Server, profile_dir, rss_bytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

struct Opts {
    demo: String,
    rounds: usize,
    clients: usize,
    parallel: usize,
    settle: Duration,
}

fn opts() -> Opts {
    let mut opts =
        Opts { demo: "demo_actix".into(), rounds: 3, clients: 20_000, parallel: 200, settle: Duration::from_secs(5) };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--demo" => opts.demo = value(),
            "--rounds" => opts.rounds = value().parse().expect("--rounds N"),
            "--clients" => opts.clients = value().parse().expect("--clients N"),
            "--parallel" => opts.parallel = value().parse().expect("--parallel N"),
            "--settle" => opts.settle = Duration::from_secs(value().parse().expect("--settle SECS")),
            other => panic!("unknown flag {other:?}"),
        }
    }
    opts
}

/// One client: the request, the response head, then gone.
async fn visit(addr: SocketAddr) -> Result<(), String> {
    let mut stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    request_events(&mut stream, addr, "/events?topic=churn").await.map(drop)
}

/// A request whose answer is read to the end (`Connection: close`).
async fn request(addr: SocketAddr, method: &str, target: &str) -> String {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let body = r#"{"data": "x"}"#;
    let head = format!(
        "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.expect("request");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.expect("answer");
    answer
}

async fn subscribers(addr: SocketAddr) -> u64 {
    // The JSON body, whatever the framing.
    let answer = request(addr, "GET", "/health").await;
    let json = answer.find('{').zip(answer.rfind('}')).map_or("", |(start, end)| &answer[start..=end]);
    serde_json::from_str::<serde_json::Value>(json)
        .ok()
        .and_then(|health| health["subscribers"].as_u64())
        .unwrap_or(u64::MAX)
}

fn main() {
    let opts = opts();
    // A demo by name, or any server of the demo contract by path.
    let binary = if opts.demo.contains('/') {
        std::path::PathBuf::from(&opts.demo)
    } else {
        profile_dir().join("examples").join(&opts.demo)
    };
    let args = ["--keep-alive".to_owned(), "15".to_owned()];
    let server = Server::start(&binary, &args, None).unwrap_or_else(|err| panic!("{}: {err}", binary.display()));
    let (addr, pid) = (server.addr(), server.pid());
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        println!("{}: start, RSS {} MB", opts.demo, rss_bytes(pid) / 1_000_000);
        for round in 1..=opts.rounds {
            let started = Instant::now();
            let permits = Arc::new(Semaphore::new(opts.parallel));
            let mut tasks = Vec::with_capacity(opts.clients);
            for _ in 0..opts.clients {
                let permit = Arc::clone(&permits).acquire_owned().await.expect("permit");
                tasks.push(tokio::spawn(async move {
                    let result = visit(addr).await;
                    drop(permit);
                    result
                }));
            }
            let mut failed = 0;
            for task in tasks {
                failed += usize::from(task.await.expect("client task").is_err());
            }
            let _ = request(addr, "POST", "/publish?topic=churn").await;
            let counted = subscribers(addr).await;
            let rss = rss_bytes(pid);
            tokio::time::sleep(opts.settle).await;
            println!(
                "round {round}: {} clients in {:.1} s ({failed} failed); then RSS {} MB, {counted} subscribers; \
                 {:?} later RSS {} MB, {} subscribers",
                opts.clients,
                started.elapsed().as_secs_f64(),
                rss / 1_000_000,
                opts.settle,
                rss_bytes(pid) / 1_000_000,
                subscribers(addr).await
            );
        }
    });
    drop(server);
}
