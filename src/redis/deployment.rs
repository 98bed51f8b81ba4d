//! How Redis is deployed — one server, a primary found through Sentinel, or a
//! Cluster — and the connections a node keeps to it: one multiplexed command
//! connection ([`Commands`]; per Cluster node, inside the `redis` crate's
//! cluster connection) and the wake-up links ([`WakeSource`]): one, or one per
//! listed Cluster node.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::sentinel::{SentinelClient, SentinelServerType};
use redis::{AsyncConnectionConfig, Client, Cmd, Pipeline, RedisError, RedisFuture, RedisResult, Value};
use tokio::time::Instant;

/// Where the Redis of a backplane is, as given to `RedisConfig`.
#[derive(Debug, Clone)]
pub(super) enum Deployment {
    /// One server (or a managed primary behind one address).
    One(String),
    /// A primary found through these sentinels, under this master name.
    Sentinel { sentinels: Vec<String>, master: String },
    /// A Redis Cluster reached through these nodes.
    Cluster(Vec<String>),
}

/// Wait before looking up the primary again after a lookup failed: doubles
/// from the first to the last.
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const LAST_BACKOFF: Duration = Duration::from_secs(1);

/// `host:port` or a URL: a URL.
fn url(address: &str) -> String {
    if address.contains("://") { address.to_owned() } else { format!("redis://{address}") }
}

impl Deployment {
    /// The command connection and the wake-up links.
    pub(super) async fn connect(&self, timeout: Duration) -> RedisResult<(Commands, Vec<WakeSource>)> {
        match self {
            Self::One(address) => {
                let client = Client::open(url(address))?;
                let manager = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(timeout))
                    .set_response_timeout(Some(timeout))
                    .set_number_of_retries(2)
                    .set_max_delay(Duration::from_secs(1));
                let conn = ConnectionManager::new_with_config(client.clone(), manager).await?;
                Ok((Commands::One(conn), vec![WakeSource::Server { name: address.clone(), client }]))
            }
            Self::Sentinel { sentinels, master } => {
                let urls: Vec<String> = sentinels.iter().map(|s| url(s)).collect();
                let sentinel = SentinelClient::build(urls, master.clone(), None, SentinelServerType::Master)?;
                let primary = Arc::new(Primary {
                    name: format!("primary {master:?} via sentinel"),
                    sentinel: tokio::sync::Mutex::new(sentinel),
                    current: Mutex::new(Current { generation: 0, conn: None, retry_at: None, backoff: FIRST_BACKOFF }),
                    config: AsyncConnectionConfig::new()
                        .set_connection_timeout(Some(timeout))
                        .set_response_timeout(Some(timeout)),
                    timeout,
                });
                primary.connection().await?;
                Ok((Commands::Primary(primary.clone()), vec![WakeSource::Primary(primary)]))
            }
            Self::Cluster(nodes) => {
                let urls: Vec<String> = nodes.iter().map(|n| url(n)).collect();
                let client = ClusterClientBuilder::new(urls.clone())
                    .connection_timeout(timeout)
                    .response_timeout(timeout)
                    .retries(2)
                    .min_retry_wait(10)
                    .max_retry_wait(200)
                    .build()?;
                let conn = client.get_async_connection().await?;
                let wakes = nodes
                    .iter()
                    .zip(urls)
                    .map(|(name, url)| Ok(WakeSource::Server { name: name.clone(), client: Client::open(url)? }))
                    .collect::<RedisResult<_>>()?;
                Ok((Commands::Cluster(conn), wakes))
            }
        }
    }
}

/// The command connection, whatever the deployment: the script and reads go
/// through it. Cloning is cheap; clones share the connection.
#[derive(Clone)]
pub(super) enum Commands {
    /// Reconnects to its one address by itself.
    One(ConnectionManager),
    /// Looks the primary up again when its connection fails.
    Primary(Arc<Primary>),
    /// Routes each command to its slot's primary; follows the Cluster's changes.
    Cluster(ClusterConnection),
}

impl ConnectionLike for Commands {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::One(conn) => conn.req_packed_command(cmd),
            Self::Cluster(conn) => conn.req_packed_command(cmd),
            Self::Primary(primary) => Box::pin(async move {
                let (generation, mut conn) = primary.connection().await?;
                let answer = conn.req_packed_command(cmd).await;
                primary.check(generation, answer)
            }),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::One(conn) => conn.req_packed_commands(pipeline, offset, count),
            Self::Cluster(conn) => conn.req_packed_commands(pipeline, offset, count),
            Self::Primary(primary) => Box::pin(async move {
                let (generation, mut conn) = primary.connection().await?;
                let answer = conn.req_packed_commands(pipeline, offset, count).await;
                primary.check(generation, answer)
            }),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::One(conn) => conn.get_db(),
            Self::Cluster(conn) => conn.get_db(),
            Self::Primary(_) => 0,
        }
    }
}

/// The primary of a Sentinel-watched master: its connection, looked up again
/// through the sentinels once it fails or the server says it is a replica now
/// (a failover), with a bounded backoff between lookups.
pub(super) struct Primary {
    name: String,
    /// Held while looking up, so that one lookup runs at a time.
    sentinel: tokio::sync::Mutex<SentinelClient>,
    current: Mutex<Current>,
    config: AsyncConnectionConfig,
    timeout: Duration,
}

struct Current {
    /// Counts connections, so that an old one's failure does not drop a new one.
    generation: u64,
    conn: Option<MultiplexedConnection>,
    /// No lookup before this (after a failed one).
    retry_at: Option<Instant>,
    backoff: Duration,
}

impl Primary {
    fn current(&self) -> std::sync::MutexGuard<'_, Current> {
        self.current.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The connection to the primary, looked up first when there is none.
    async fn connection(&self) -> RedisResult<(u64, MultiplexedConnection)> {
        let held = |current: &Current| current.conn.clone().map(|conn| (current.generation, conn));
        if let Some(found) = held(&self.current()) {
            return Ok(found);
        }
        let mut sentinel = self.sentinel.lock().await;
        {
            let current = self.current();
            if let Some(found) = held(&current) {
                return Ok(found);
            }
            if current.retry_at.is_some_and(|at| Instant::now() < at) {
                return Err(no_primary("the last lookup through the sentinels failed; retrying after a backoff"));
            }
        }
        let found = tokio::time::timeout(self.timeout, async {
            let client = sentinel.async_get_client().await?;
            client.get_multiplexed_async_connection_with_config(&self.config).await
        })
        .await
        .unwrap_or_else(|_| Err(no_primary("looking the primary up through the sentinels timed out")));
        let mut current = self.current();
        match found {
            Ok(conn) => {
                current.generation += 1;
                current.conn = Some(conn.clone());
                current.retry_at = None;
                current.backoff = FIRST_BACKOFF;
                Ok((current.generation, conn))
            }
            Err(err) => {
                current.retry_at = Some(Instant::now() + current.backoff);
                current.backoff = (current.backoff * 2).min(LAST_BACKOFF);
                Err(err)
            }
        }
    }

    /// Forgets connection `generation` when `answer` shows it lost or no longer
    /// to the primary.
    fn check<T>(&self, generation: u64, answer: RedisResult<T>) -> RedisResult<T> {
        if let Err(err) = &answer {
            let demoted = matches!(err.kind(), redis::ErrorKind::Server(redis::ServerErrorKind::ReadOnly));
            if demoted || err.is_io_error() || err.is_connection_dropped() || err.is_timeout() {
                let mut current = self.current();
                if current.generation == generation {
                    current.conn = None;
                }
            }
        }
        answer
    }

    /// A client of the primary as the sentinels name it now.
    async fn client(&self) -> RedisResult<Client> {
        let mut sentinel = self.sentinel.lock().await;
        tokio::time::timeout(self.timeout, sentinel.async_get_client())
            .await
            .unwrap_or_else(|_| Err(no_primary("looking the primary up through the sentinels timed out")))
    }
}

/// An error that says nothing was sent: no primary is known now.
fn no_primary(why: &'static str) -> RedisError {
    RedisError::from(std::io::Error::new(std::io::ErrorKind::ConnectionRefused, why))
}

/// Where a node subscribes to wake-ups.
#[derive(Clone)]
pub(super) enum WakeSource {
    /// A server at a fixed address (the one server, or one Cluster node: a
    /// Cluster passes every `PUBLISH` to all its nodes).
    Server { name: String, client: Client },
    /// Whichever server the sentinels name primary at each (re)connection.
    Primary(Arc<Primary>),
}

impl WakeSource {
    /// How `/health` names the link.
    pub(super) fn name(&self) -> &str {
        match self {
            Self::Server { name, .. } => name,
            Self::Primary(primary) => &primary.name,
        }
    }

    pub(super) async fn client(&self) -> RedisResult<Client> {
        match self {
            Self::Server { client, .. } => Ok(client.clone()),
            Self::Primary(primary) => primary.client().await,
        }
    }
}
