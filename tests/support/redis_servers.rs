//! Redis processes that the tests start themselves, on free loopback ports,
//! each in its own temporary directory: one server, a primary with a replica
//! and three sentinels, a three-primary cluster. Every wait is bounded; every
//! process is killed on drop.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Waits (bounded) until `done` holds.
pub(crate) fn wait_until(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// `redis-cli -p port args…`: what it printed, or its error.
pub(crate) fn cli(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|err| panic!("cannot run redis-cli ({err}); install it (Debian package redis-tools)"));
    String::from_utf8_lossy(&out.stdout).trim().to_owned() + &String::from_utf8_lossy(&out.stderr)
}

/// A `redis-server` child process on 127.0.0.1, killed on drop.
pub(crate) struct RedisServer {
    pub(crate) port: u16,
    dir: PathBuf,
    args: Vec<String>,
    child: Option<Child>,
}

impl RedisServer {
    /// A server that keeps its data in an append-only file (`persistent`) or
    /// in memory only.
    pub(crate) fn start(persistent: bool) -> Self {
        Self::start_with(&["--appendonly", if persistent { "yes" } else { "no" }, "--appendfsync", "always"])
    }

    /// A server with these arguments besides its port and directory.
    pub(crate) fn start_with(args: &[impl AsRef<str>]) -> Self {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("ssekit-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut server = Self { port, dir, args: args.iter().map(|a| a.as_ref().to_owned()).collect(), child: None };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string(), "--save", ""])
            // A replica syncs at once (the default waits 5 s for more replicas).
            .args(["--repl-diskless-sync-delay", "0"])
            .args(&self.args)
            .arg("--dir")
            .arg(&self.dir)
            .arg("--logfile")
            .arg(self.dir.join("log"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|err| {
                panic!("cannot start redis-server ({err}); install it (Debian package redis-server) — .ci/run does")
            });
        self.child = Some(child);
        // Ready when it answers; bounded.
        let (port, log) = (self.port, self.dir.join("log"));
        let deadline = Instant::now() + Duration::from_secs(10);
        while cli(port, &["PING"]) != "PONG" {
            let tail = || {
                std::fs::read_to_string(&log).unwrap_or_default().lines().rev().take(5).collect::<Vec<_>>().join(" | ")
            };
            assert!(Instant::now() < deadline, "redis-server did not start on port {port}; its log ends: {}", tail());
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    pub(crate) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub(crate) fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Stops the process (SIGSTOP) or lets it go on (SIGCONT): a stall, not an outage.
    pub(crate) fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("running").id().to_string();
        assert!(Command::new("kill").args([signal, &pid]).status().unwrap().success());
    }

    pub(crate) fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Starts it again (it was killed) with `args` instead of those it had.
    pub(crate) fn restart_with(&mut self, args: &[&str]) {
        self.kill();
        self.args = args.iter().map(|a| (*a).to_owned()).collect();
        self.spawn();
    }

    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    pub(crate) fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The name the sentinels watch the primary under.
pub(crate) const MASTER: &str = "ssekit-test";

/// A primary, a replica and three sentinels that fail over to the replica
/// half a second after the primary stops answering.
pub(crate) struct Sentinels {
    /// The two data servers; which one is primary changes with failovers.
    pub(crate) servers: [RedisServer; 2],
    sentinels: Vec<(u16, PathBuf, Child)>,
}

impl Sentinels {
    pub(crate) fn start() -> Self {
        let primary = RedisServer::start(false);
        let replica = RedisServer::start_with(&["--replicaof", "127.0.0.1", &primary.port.to_string()]);
        let replica_port = replica.port;
        wait_until("the replica to sync", Duration::from_secs(10), || {
            cli(replica_port, &["INFO", "replication"]).contains("master_link_status:up")
        });
        let sentinels = (0..3)
            .map(|_| {
                let port = free_port();
                let dir = std::env::temp_dir().join(format!("ssekit-sentinel-{}-{port}", std::process::id()));
                std::fs::create_dir_all(&dir).unwrap();
                let config = dir.join("sentinel.conf");
                std::fs::write(
                    &config,
                    format!(
                        "port {port}\nbind 127.0.0.1\ndir {dir}\nsentinel monitor {MASTER} 127.0.0.1 {primary} 2\n\
                         sentinel down-after-milliseconds {MASTER} 500\nsentinel failover-timeout {MASTER} 1000\n\
                         sentinel parallel-syncs {MASTER} 1\n",
                        dir = dir.display(),
                        primary = primary.port,
                    ),
                )
                .unwrap();
                let child = Command::new("redis-sentinel")
                    .arg(&config)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap_or_else(|err| {
                        panic!("cannot start redis-sentinel ({err}); install it (Debian package redis-sentinel)")
                    });
                (port, dir, child)
            })
            .collect::<Vec<_>>();
        let this = Self { servers: [primary, replica], sentinels };
        for (port, ..) in &this.sentinels {
            let port = *port;
            wait_until("a sentinel to see the replica", Duration::from_secs(10), || {
                cli(port, &["SENTINEL", "replicas", MASTER]).contains(&replica_port.to_string())
            });
        }
        this
    }

    /// `host:port` of each sentinel.
    pub(crate) fn addresses(&self) -> Vec<String> {
        self.sentinels.iter().map(|(port, ..)| format!("127.0.0.1:{port}")).collect()
    }

    /// The port of the primary the first sentinel names now.
    pub(crate) fn primary_port(&self) -> u16 {
        let answer = cli(self.sentinels[0].0, &["SENTINEL", "get-master-addr-by-name", MASTER]);
        answer.lines().nth(1).and_then(|p| p.trim().parse().ok()).unwrap_or(0)
    }

    /// As [`Sentinels::fail_over`], but the primary first cuts its replica off
    /// (`CLIENT KILL TYPE replica`; a replica reconnects on its next one-second
    /// tick) and takes writes for 100 ms without it: those are lost for sure.
    pub(crate) fn fail_over_losing(&mut self) {
        let old = self.primary_port();
        cli(old, &["CLIENT", "KILL", "TYPE", "replica"]);
        std::thread::sleep(Duration::from_millis(100));
        self.fail_over();
    }

    /// Kills the primary (SIGKILL), waits until every sentinel names the other
    /// server, then starts the killed one again, empty, as the new primary's
    /// replica and waits until it has synced: ready for the next failover.
    pub(crate) fn fail_over(&mut self) {
        let old = self.primary_port();
        let (dead, alive) = if self.servers[0].port == old { (0, 1) } else { (1, 0) };
        self.servers[dead].kill();
        let new = self.servers[alive].port;
        for (port, ..) in &self.sentinels {
            let port = *port;
            wait_until("the sentinels to fail over", Duration::from_secs(20), || {
                cli(port, &["SENTINEL", "get-master-addr-by-name", MASTER]).contains(&new.to_string())
            });
        }
        wait_until("the new primary to take writes", Duration::from_secs(10), || {
            cli(new, &["ROLE"]).starts_with("master")
        });
        self.servers[dead].restart_with(&["--appendonly", "no", "--replicaof", "127.0.0.1", &new.to_string()]);
        let port = self.servers[dead].port;
        wait_until("the old primary to sync as a replica", Duration::from_secs(20), || {
            cli(port, &["INFO", "replication"]).contains("master_link_status:up")
        });
    }
}

impl Drop for Sentinels {
    fn drop(&mut self) {
        for (_, dir, child) in &mut self.sentinels {
            let _ = child.kill();
            let _ = child.wait();
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// A Redis Cluster of three primaries (no replicas) that keeps serving the
/// slots of the primaries that are up when one is down.
pub(crate) struct Cluster {
    pub(crate) nodes: Vec<RedisServer>,
}

/// The arguments of a cluster node whose cluster bus listens on `bus` (by
/// default it is the port + 10 000, which may be taken).
fn cluster_node(bus: u16) -> Vec<String> {
    let args = ["--cluster-enabled", "yes", "--cluster-node-timeout", "1000", "--cluster-require-full-coverage", "no"];
    let persistence = ["--appendonly", "yes", "--appendfsync", "always"];
    let bus = ["--cluster-port".to_owned(), bus.to_string()];
    args.iter().chain(&persistence).map(|a| (*a).to_owned()).chain(bus).collect()
}

impl Cluster {
    pub(crate) fn start() -> Self {
        let nodes: Vec<RedisServer> = (0..3).map(|_| RedisServer::start_with(&cluster_node(free_port()))).collect();
        let mut args: Vec<String> = vec!["--cluster".into(), "create".into()];
        args.extend(nodes.iter().map(RedisServer::address));
        args.extend(["--cluster-replicas".into(), "0".into(), "--cluster-yes".into()]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let created = cli(nodes[0].port, &args);
        assert!(created.contains("All 16384 slots covered"), "cluster create: {created}");
        for node in &nodes {
            let port = node.port;
            wait_until("the cluster to be ready", Duration::from_secs(20), || {
                cli(port, &["CLUSTER", "INFO"]).contains("cluster_state:ok")
            });
        }
        Self { nodes }
    }

    /// `host:port` of each node.
    pub(crate) fn addresses(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::address).collect()
    }

    /// The index of the node that holds `key`'s slot.
    pub(crate) fn owner(&self, key: &str) -> usize {
        (0..self.nodes.len())
            .find(|&n| {
                let port = self.nodes[n].port;
                // A node answers for its own slots only (without -c, no redirect).
                !cli(port, &["GET", key]).contains("MOVED")
            })
            .expect("a node holds every slot")
    }

    /// Kills node `n` and starts it again on the same port from its files
    /// (its data and cluster state), waiting until the cluster is whole.
    pub(crate) fn restart(&mut self, n: usize) {
        let args = self.nodes[n].args.clone();
        self.nodes[n].restart_with(&args.iter().map(String::as_str).collect::<Vec<_>>());
        let ports: Vec<u16> = self.nodes.iter().map(|node| node.port).collect();
        for port in ports {
            wait_until("the cluster to be whole again", Duration::from_secs(20), || {
                cli(port, &["CLUSTER", "INFO"]).contains("cluster_state:ok")
            });
        }
    }
}
