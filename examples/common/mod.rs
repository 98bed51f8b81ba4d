//! What the three demo apps share: flags, the page, request validation, the
//! `/bench` loop, `/health`, and shutdown. Each `demo*.rs` only routes requests
//! here and converts the answers to its framework's types.
//!
//! The contract (one for every framework):
//!
//! | request | answer |
//! |---|---|
//! | `GET /` | the live feed page |
//! | `GET /events?topic=T` | the SSE stream of topic `T` (default `main`), resuming from `Last-Event-ID` or `lastEventId` |
//! | `GET /events?topic=A&topic=B…&history=N` | one stream of several topics (at most 8, else `400`), one id resumes each; a new client first gets the last `N` events of each |
//! | `POST /publish?topic=T[&key=K]` `{"event"?: "name", "data": "text"}` | `200 {"id": "..."}`, or `400 {"error": "..."}` and nothing published, or `503 {"error": "...", "outcome_unknown": bool}` when the shared log failed; with `key`, a retry within 5 minutes appends nothing and answers the first id |
//! | `POST /bench?topic=T&count=M&size=P&rate=R` | publishes `M` events of `P` bytes, `R` per second (`0`: at once); `200 {"published": M}` |
//! | `GET /health` | `200 {"subscribers": ..., "topics": ..., "published": ..., ...}`: every count of `HubMetrics` |

mod contract;

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use ssekit::{Event, Hub, PublishError, Resume, Sse, SseConfig, SubscribeError, Subscription, TopicError};

/// Largest `/publish` body accepted.
pub(crate) const MAX_BODY: usize = 1 << 20;

/// Command-line flags of the demo apps.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Args {
    pub(crate) port: u16,
    pub(crate) history: usize,
    pub(crate) keep_alive: Duration,
    pub(crate) retry: Option<Duration>,
    pub(crate) max_lifetime: Option<Duration>,
    pub(crate) redis: Option<String>,
    /// Sentinels (`host:port` each) that name the primary of `redis_master`.
    pub(crate) redis_sentinel: Vec<String>,
    pub(crate) redis_master: Option<String>,
    /// Nodes (`host:port` each) of a Redis Cluster.
    pub(crate) redis_cluster: Vec<String>,
    /// How long a request head may take to arrive.
    pub(crate) header_timeout: Duration,
    /// How long a client may take nothing while data waits (`None`: forever).
    pub(crate) stall_timeout: Option<Duration>,
    /// Topics held at most (the least recently used without subscribers
    /// gives its place to a new one).
    pub(crate) max_topics: usize,
    /// Serve `/events` through ssekit's lean front, the rest through the
    /// framework on the same port (the axum demo, with the `lean` feature).
    pub(crate) lean: bool,
}

impl Default for Args {
    fn default() -> Self {
        Self {
            port: 8080,
            history: 1024,
            keep_alive: Duration::from_secs(15),
            retry: None,
            max_lifetime: None,
            redis: None,
            redis_sentinel: Vec::new(),
            redis_master: None,
            redis_cluster: Vec::new(),
            header_timeout: Duration::from_secs(10),
            stall_timeout: Some(Duration::from_secs(30)),
            max_topics: 10_000,
            lean: false,
        }
    }
}

const USAGE: &str = "usage: [--port N] [--history N] [--keep-alive SECS] [--retry MS] [--max-lifetime SECS] \
                     [--redis URL | --redis-sentinel HOST:PORT[,HOST:PORT…] --redis-master NAME \
                     | --redis-cluster HOST:PORT[,HOST:PORT…]] [--header-timeout SECS] [--stall-timeout SECS (0: never)] [--max-topics N] [--lean]";

impl Args {
    /// The process's flags; prints the problem and exits with code 2 when they are wrong.
    pub(crate) fn from_env() -> Self {
        match Self::parse(std::env::args().skip(1)) {
            Ok(args) => args,
            Err(err) => {
                eprintln!("error: {err}\n{USAGE}");
                std::process::exit(2);
            }
        }
    }

    pub(crate) fn parse(mut flags: impl Iterator<Item = String>) -> Result<Self, String> {
        fn value<T: std::str::FromStr>(flag: &str, value: Option<String>) -> Result<T, String> {
            let value = value.ok_or_else(|| format!("{flag} needs a value"))?;
            value.parse().map_err(|_| format!("{flag}: invalid value {value:?}"))
        }
        fn list(flag: &str, value: Option<String>) -> Result<Vec<String>, String> {
            let value = value.ok_or_else(|| format!("{flag} needs a value"))?;
            let items: Vec<String> =
                value.split(',').map(str::trim).filter(|a| !a.is_empty()).map(Into::into).collect();
            if items.is_empty() { Err(format!("{flag}: no address in {value:?}")) } else { Ok(items) }
        }
        let mut args = Self::default();
        while let Some(flag) = flags.next() {
            match flag.as_str() {
                "--port" => args.port = value(&flag, flags.next())?,
                "--history" => args.history = value(&flag, flags.next())?,
                "--keep-alive" => args.keep_alive = Duration::from_secs(value(&flag, flags.next())?),
                "--retry" => args.retry = Some(Duration::from_millis(value(&flag, flags.next())?)),
                "--max-lifetime" => args.max_lifetime = Some(Duration::from_secs(value(&flag, flags.next())?)),
                "--redis" => args.redis = Some(value(&flag, flags.next())?),
                "--redis-sentinel" => args.redis_sentinel = list(&flag, flags.next())?,
                "--redis-master" => args.redis_master = Some(value(&flag, flags.next())?),
                "--redis-cluster" => args.redis_cluster = list(&flag, flags.next())?,
                "--header-timeout" => args.header_timeout = Duration::from_secs(value(&flag, flags.next())?),
                "--max-topics" => args.max_topics = value(&flag, flags.next())?,
                "--lean" => args.lean = true,
                "--stall-timeout" => {
                    args.stall_timeout =
                        Some(Duration::from_secs(value(&flag, flags.next())?)).filter(|t| !t.is_zero());
                }
                "-h" | "--help" => {
                    println!("{USAGE}");
                    std::process::exit(0);
                }
                other => return Err(format!("unknown flag {other:?}")),
            }
        }
        let deployments = [args.redis.is_some(), !args.redis_sentinel.is_empty(), !args.redis_cluster.is_empty()];
        if deployments.into_iter().filter(|given| *given).count() > 1 {
            return Err("give one of --redis, --redis-sentinel and --redis-cluster".into());
        }
        if args.redis_sentinel.is_empty() != args.redis_master.is_none() {
            return Err("--redis-sentinel and --redis-master go together".into());
        }
        Ok(args)
    }

    /// Exits with code 2 when `--lean` was given to a demo that has no lean
    /// path (only the axum demo serves through it).
    #[allow(dead_code)] // Not called by the axum demo.
    pub(crate) fn refuse_lean(&self) {
        if self.lean {
            eprintln!("error: --lean: only the axum demo (examples/demo.rs) serves through the lean front\n{USAGE}");
            std::process::exit(2);
        }
    }

    /// The Redis backplane's settings, if a flag asks for one.
    #[cfg(feature = "redis")]
    fn redis_config(&self) -> Option<ssekit::RedisConfig> {
        if let Some(url) = &self.redis {
            Some(ssekit::RedisConfig::new(url.as_str()))
        } else if let Some(master) = &self.redis_master {
            Some(ssekit::RedisConfig::sentinel(self.redis_sentinel.clone(), master.as_str()))
        } else if !self.redis_cluster.is_empty() {
            Some(ssekit::RedisConfig::cluster(self.redis_cluster.clone()))
        } else {
            None
        }
    }

    /// The app these flags describe: a hub in memory, or shared through Redis
    /// with `--redis`, and the settings of its streams.
    pub(crate) async fn app(&self) -> std::io::Result<App> {
        let mut stream = SseConfig::new().keep_alive(Some(self.keep_alive)).stall_timeout(self.stall_timeout);
        if let Some(retry) = self.retry {
            stream = stream.retry(retry);
        }
        if let Some(lifetime) = self.max_lifetime {
            stream = stream.max_lifetime(lifetime, Duration::ZERO);
        }
        let mut builder = Hub::builder();
        builder.history(self.history).max_topics(self.max_topics);
        #[cfg(feature = "redis")]
        if let Some(config) = self.redis_config() {
            let redis = ssekit::RedisBackplane::connect(config).await.map_err(std::io::Error::other)?;
            builder.backplane(redis);
        }
        #[cfg(not(feature = "redis"))]
        if self.redis.is_some() || self.redis_master.is_some() || !self.redis_cluster.is_empty() {
            return Err(std::io::Error::other("--redis… needs the demo built with the redis feature"));
        }
        Ok(App { hub: builder.build(), stream })
    }

    /// Binds `127.0.0.1:port` and prints `listening on http://127.0.0.1:PORT` as
    /// the first line of stdout.
    pub(crate) fn bind(&self) -> std::io::Result<std::net::TcpListener> {
        let listener = std::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], self.port)))?;
        listener.set_nonblocking(true)?;
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "listening on http://{}", listener.local_addr()?)?;
        stdout.flush()?;
        Ok(listener)
    }
}

/// What the demo's routes share: the hub (in memory, or shared through Redis
/// with `--redis URL`) and the settings of its streams.
#[derive(Debug, Clone)]
pub(crate) struct App {
    pub(crate) hub: Hub,
    pub(crate) stream: SseConfig,
}

impl App {
    /// `GET /events?topic=A&topic=B…&history=N`: the stream of the topics
    /// (`main` by default), from where `resume` says or, for a new client, after
    /// the last `N` events of each.
    pub(crate) async fn sse(&self, query: Option<&str>, resume: Resume) -> Result<Sse<Subscription>, Refused> {
        let history = contract::history(query).map_err(|err| Refused::Now(Reply::error(400, err)))?;
        match self.hub.sse_many(&contract::topics(query), resume, history).await {
            Ok(sse) => Ok(sse.with_config(self.stream.clone())),
            Err(err) if err.is_temporary() => Err(Refused::Later),
            Err(err) => Err(Refused::Now(subscribe_error(&err))),
        }
    }
}

/// Why `GET /events` gets no stream.
#[derive(Debug)]
pub(crate) enum Refused {
    /// For now (a closing server, the topic limit): answer [`try_later`].
    Later,
    /// For good: this JSON error.
    Now(Reply),
}

/// `/events` refused for now (a closing server, or the topic limit): a 200
/// stream that asks the client to come back in 2 s (any other status stops
/// `EventSource` for good).
pub(crate) fn try_later() -> Sse<ssekit::Events<ssekit::NoEvents>> {
    Sse::try_later(Duration::from_secs(2))
}

/// A JSON answer: its status and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) body: String,
}

impl Reply {
    fn ok(body: serde_json::Value) -> Self {
        Self { status: 200, body: body.to_string() }
    }

    fn error(status: u16, error: impl std::fmt::Display) -> Self {
        Self { status, body: serde_json::json!({ "error": error.to_string() }).to_string() }
    }
}

pub(crate) use contract::topic;

/// The answer to a `/events` request the hub refused for good (see
/// [`try_later`] for the others).
pub(crate) fn subscribe_error(err: &SubscribeError) -> Reply {
    Reply::error(400, err)
}

/// Reads a request body of at most [`MAX_BODY`] bytes.
pub(crate) async fn read_body<S, E>(body: S) -> Result<Bytes, Reply>
where
    S: Stream<Item = Result<Bytes, E>>,
    E: std::fmt::Display,
{
    let mut body = std::pin::pin!(body);
    let mut buf = BytesMut::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|err| Reply::error(400, format!("reading the body: {err}")))?;
        if buf.len() + chunk.len() > MAX_BODY {
            return Err(Reply::error(400, format!("body is over the limit of {MAX_BODY} bytes")));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

/// `POST /publish`: validates the JSON body and publishes it.
pub(crate) async fn publish<S, E>(hub: &Hub, query: Option<&str>, body: S) -> Reply
where
    S: Stream<Item = Result<Bytes, E>>,
    E: std::fmt::Display,
{
    let body = match read_body(body).await {
        Ok(body) => body,
        Err(reply) => return reply,
    };
    let event = match parse_publish(&body) {
        Ok(event) => event,
        Err(error) => return Reply::error(400, error),
    };
    let published = match contract::publish_key(query) {
        Some(key) => hub.publish_once(&topic(query), &key, event).await,
        None => hub.publish(&topic(query), event).await,
    };
    match published {
        Ok(id) => Reply::ok(serde_json::json!({ "id": id.to_string() })),
        // Not the client's fault: the server is closing, or holds as many topics
        // as it may until idle ones expire.
        Err(err @ (PublishError::Closed | PublishError::Topic(TopicError::Limit { .. }))) => Reply::error(503, err),
        // The shared log could not be reached or refused: the server's trouble,
        // worth a retry. When the outcome is unknown (the event may have been
        // appended), the answer says so.
        Err(err @ PublishError::Backplane(_)) => {
            let body = serde_json::json!({ "error": err.to_string(), "outcome_unknown": err.is_outcome_unknown() });
            Reply { status: 503, body: body.to_string() }
        }
        Err(err) => Reply::error(400, err),
    }
}

fn parse_publish(body: &[u8]) -> Result<Event, String> {
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|err| format!("invalid JSON: {err}"))?;
    let object = value.as_object().ok_or("expected a JSON object")?;
    let data = match object.get("data") {
        Some(serde_json::Value::String(data)) => data,
        Some(_) => return Err("\"data\" must be a string".to_owned()),
        None => return Err("missing \"data\"".to_owned()),
    };
    let mut event = Event::new().data(data.as_str());
    match object.get("event") {
        None | Some(serde_json::Value::Null) => {}
        Some(serde_json::Value::String(name)) => event = event.event(name.as_str()),
        Some(_) => return Err("\"event\" must be a string".to_owned()),
    }
    // The hub refuses names with CR or LF itself; checking first gives a clearer message.
    event.validate().map_err(|err| err.to_string())?;
    Ok(event)
}

/// `POST /bench`: publishes `count` events of `size` bytes, `rate` per second.
pub(crate) async fn bench(hub: &Hub, query: Option<&str>) -> Reply {
    let bench = match contract::Bench::parse(query) {
        Ok(bench) => bench,
        Err(err) => return Reply::error(400, err),
    };
    match bench.publish_all(|data| hub.publish(&bench.topic, Event::new().data(data))).await {
        Ok(()) => Reply::ok(serde_json::json!({ "published": bench.count })),
        Err((published, err)) => {
            let body = serde_json::json!({ "error": err.to_string(), "published": published });
            Reply { status: 503, body: body.to_string() }
        }
    }
}

/// `GET /health`: the hub's metrics, every count of `HubMetrics` under its own
/// name (the tests read them here, since they run the demo as a process).
pub(crate) fn health(hub: &Hub) -> Reply {
    let metrics = hub.metrics();
    let mut health = serde_json::json!({
        "subscribers": metrics.subscribers,
        "topics": metrics.topics,
        "published": metrics.published,
        "retained_bytes": metrics.retained_bytes,
        "resumes_exact": metrics.resumes_exact,
        "resets_evicted": metrics.resets_evicted,
        "resets_epoch": metrics.resets_epoch,
        "resets_malformed": metrics.resets_malformed,
        "resets_future": metrics.resets_future,
        "resets_lagged": metrics.resets_lagged,
        "disconnects_client": metrics.disconnects_client,
        "disconnects_closed": metrics.disconnects_closed,
        "disconnects_lifetime": metrics.disconnects_lifetime,
        "disconnects_lagged": metrics.disconnects_lagged,
        "disconnects_stalled": metrics.disconnects_stalled,
    });
    if let Some(status) = hub.backplane_status() {
        health["redis"] = serde_json::json!({
            "connected": status.connected,
            "connects": status.connects,
            "pending_topics": status.pending_topics,
            "last_error": status.last_error,
            // When (Unix milliseconds): an error from before the link came back is history.
            "last_error_at": unix_ms(status.last_error_at),
            // Each connection: the one server, the primary found through the
            // sentinels, or each listed Cluster node.
            "links": status.links.iter().map(|link| serde_json::json!({
                "name": link.name,
                "connected": link.connected,
                "last_error": link.last_error,
                "last_error_at": unix_ms(link.last_error_at),
            })).collect::<Vec<_>>(),
        });
    }
    Reply::ok(health)
}

/// Unix milliseconds: an error from before the link came back is history.
fn unix_ms(at: Option<std::time::SystemTime>) -> Option<u64> {
    at.and_then(|at| at.duration_since(std::time::UNIX_EPOCH).ok()).map(|since| since.as_millis() as u64)
}

/// Waits for SIGINT or SIGTERM, then closes the hub so every SSE stream ends
/// and the server's graceful shutdown can complete. Should a connection still
/// hold on, the process exits 4 s later anyway.
pub(crate) async fn shutdown_signal(hub: Hub) {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    eprintln!("shutting down");
    hub.close();
    std::thread::spawn(|| {
        std::thread::sleep(Duration::from_secs(4));
        eprintln!("connections still open after 4 s; exiting");
        std::process::exit(0);
    });
}

/// `GET /`: the live feed page.
pub(crate) const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>ssekit live feed</title>
<style>
  body { font: 15px/1.5 system-ui, sans-serif; max-width: 42rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
  h1 { font-size: 1.3rem; }
  #state { display: inline-block; padding: 0 .5rem; border-radius: .6rem; font-size: .85rem; background: #ddd; }
  #state.open { background: #c8f0c8; } #state.connecting { background: #f6e7b0; } #state.closed { background: #f3c0c0; }
  #notice { display: none; margin: 1rem 0; padding: .5rem .75rem; background: #fff3cd; border: 1px solid #e6d08a; border-radius: .3rem; }
  form { display: flex; gap: .5rem; margin: 1rem 0; }
  input, textarea { flex: 1; padding: .4rem; font: inherit; }
  button { padding: .4rem .9rem; font: inherit; }
  ol { list-style: none; padding: 0; }
  li { padding: .3rem 0; border-bottom: 1px solid #eee; overflow-wrap: anywhere; }
  li code { color: #888; font-size: .8rem; margin-right: .5rem; }
  li .name { font-size: .8rem; background: #e8eefc; border-radius: .3rem; padding: 0 .3rem; margin-right: .5rem; }
  li .text { white-space: pre-wrap; }
  #name { flex: 0 0 7rem; }
  #topic { flex: 0 0 auto; }
  li .topic { font-size: .8rem; background: #e6f4e6; border-radius: .3rem; padding: 0 .3rem; margin-right: .5rem; }
</style>
</head>
<body>
<h1>ssekit live feed <span id="state" class="connecting">connecting</span></h1>
<div id="notice" role="status"></div>
<form id="send">
  <select id="topic" title="the topic to publish to"></select>
  <input id="name" placeholder="event name" autocomplete="off" title="optional: the event's name (type)">
  <textarea id="text" placeholder="Say something (several lines are fine)" rows="1" required></textarea>
  <button>Publish</button>
</form>
<p id="hint" style="font-size:.85rem;color:#666">Named events show here when this page listens to their name: add
<code>?event=NAME</code> to its address, or publish one with that name from this page.
Follow several topics with <code>?topic=A&amp;topic=B</code>.</p>
<ol id="feed"></ol>
<script>
  // The topics to follow: ?topic=A&topic=B… (default main), on one stream.
  const params = new URLSearchParams(location.search);
  const topics = [...new Set(params.getAll('topic'))];
  if (topics.length === 0) topics.push('main');
  const several = topics.length > 1;
  const streamQuery = '?' + topics.map((t) => 'topic=' + encodeURIComponent(t)).join('&');
  // In a stream of several topics, an id starts with its topic's index: "2.…".
  const topicOf = (id) => several ? topics[parseInt(id.split('.')[0], 10)] : topics[0];
  const select = document.getElementById('topic');
  for (const t of topics) select.append(new Option(t, t));
  if (!several) select.style.display = 'none';
  const state = document.getElementById('state');
  const notice = document.getElementById('notice');
  const feed = document.getElementById('feed');
  window.ssekit = { events: [], resets: [], opens: 0, state: 'connecting', topics };

  function setState(name) {
    window.ssekit.state = name;
    state.textContent = name;
    state.className = name;
  }
  // An event's lines stay lines (the text keeps its line breaks); a named event
  // shows its name.
  function show(id, type, data) {
    const item = document.createElement('li');
    const code = document.createElement('code');
    code.textContent = id;
    item.append(code);
    if (several) {
      const topic = document.createElement('span');
      topic.className = 'topic';
      topic.textContent = topicOf(id);
      item.append(topic);
    }
    if (type !== 'message') {
      const name = document.createElement('span');
      name.className = 'name';
      name.textContent = type;
      item.append(name);
    }
    const text = document.createElement('span');
    text.className = 'text';
    text.textContent = data;
    item.append(text);
    feed.prepend(item);
  }

  // A new page gets the recent events first (a reload shows the feed); a
  // reconnect sends its Last-Event-ID instead, which the server prefers.
  const source = new EventSource('/events' + streamQuery + '&history=20');
  source.onopen = () => { window.ssekit.opens += 1; setState('open'); };
  source.onerror = () => setState(source.readyState === EventSource.CLOSED ? 'closed' : 'connecting');
  // EventSource delivers a named event only to listeners of that name: the page
  // listens to unnamed events, to the names in its address (?event=NAME, repeated)
  // and to every name published from it.
  const listening = new Set();
  function listen(type) {
    if (!type || type === 'reset' || listening.has(type)) return;
    listening.add(type);
    source.addEventListener(type, (e) => {
      const event = { id: e.lastEventId, data: e.data, type: e.type };
      if (several) event.topic = topicOf(e.lastEventId);
      window.ssekit.events.push(event);
      show(e.lastEventId, e.type, e.data);
    });
  }
  listen('message');
  params.getAll('event').forEach(listen);
  source.addEventListener('reset', (e) => {
    window.ssekit.resets.push({ id: e.lastEventId, data: e.data });
    window.ssekit.events.push({ id: e.lastEventId, data: e.data, type: e.type });
    let reason = e.data;
    let where = '';
    try {
      const reset = JSON.parse(e.data);
      reason = reset.reason || e.data;
      if (reset.topic) where = ' of ' + reset.topic;
    } catch (_) {}
    notice.textContent = 'Some messages' + where + ' could not be replayed (' + reason + '); the feed continues from here.';
    notice.style.display = 'block';
  });

  document.getElementById('send').addEventListener('submit', async (e) => {
    e.preventDefault();
    const text = document.getElementById('text');
    const name = document.getElementById('name').value.trim();
    listen(name);
    const response = await fetch('/publish?topic=' + encodeURIComponent(select.value), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(name ? { event: name, data: text.value } : { data: text.value }),
    });
    if (response.ok) { text.value = ''; } else { notice.textContent = (await response.json()).error; notice.style.display = 'block'; }
  });
</script>
</body>
</html>
"#;
