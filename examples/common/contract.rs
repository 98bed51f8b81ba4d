//! The request parameters of the demo contract and its `/bench` publishing loop,
//! shared by the demo apps (`common/mod.rs`). The comparison servers of the load
//! benchmarks (`bench/src/peer.rs`) publish the same events the same way.

use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::MissedTickBehavior;

/// Largest `/bench` event accepted.
const MAX_SIZE: usize = 1 << 20;

/// The value of `key` in a raw query string.
pub(crate) fn query_param(query: Option<&str>, key: &str) -> Option<String> {
    form_urlencoded::parse(query.unwrap_or_default().as_bytes()).find(|(k, _)| k == key).map(|(_, v)| v.into_owned())
}

/// The topic a request names, `main` by default.
pub(crate) fn topic(query: Option<&str>) -> String {
    query_param(query, "topic").unwrap_or_else(|| "main".to_owned())
}

/// The `key=K` of a `POST /publish`: a publish key, so that a retry of the same
/// publish appends nothing ([`ssekit::Hub::publish_once`]).
pub(crate) fn publish_key(query: Option<&str>) -> Option<String> {
    query_param(query, "key")
}

/// The topics a `GET /events` names (`topic`, repeated), `main` by default.
pub(crate) fn topics(query: Option<&str>) -> Vec<String> {
    let topics: Vec<String> = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .filter(|(key, _)| key == "topic")
        .map(|(_, topic)| topic.into_owned())
        .collect();
    if topics.is_empty() { vec!["main".to_owned()] } else { topics }
}

/// The `history=N` of a `GET /events`: how many recent events of each topic a
/// new client gets first (0 by default).
pub(crate) fn history(query: Option<&str>) -> Result<usize, String> {
    match query_param(query, "history") {
        None => Ok(0),
        Some(n) => n.parse().map_err(|_| format!("history: not a number of events: {n:?}")),
    }
}

/// The parameters of `POST /bench?topic=T&count=M&size=P&rate=R`.
#[derive(Debug, Clone)]
pub(crate) struct Bench {
    pub(crate) topic: String,
    pub(crate) count: u64,
    pub(crate) size: usize,
    pub(crate) rate: u64,
}

impl Bench {
    pub(crate) fn parse(query: Option<&str>) -> Result<Self, String> {
        fn number(query: Option<&str>, key: &str, default: u64) -> Result<u64, String> {
            query_param(query, key)
                .map_or(Ok(default), |v| v.parse().map_err(|_| format!("{key}: invalid number {v:?}")))
        }
        let size = number(query, "size", 0)?;
        if size > MAX_SIZE as u64 {
            return Err(format!("size is over the limit of {MAX_SIZE} bytes"));
        }
        Ok(Self {
            topic: topic(query),
            count: number(query, "count", 1)?,
            size: size as usize,
            rate: number(query, "rate", 0)?,
        })
    }

    /// Publishes `count` payloads `ts=<unix ns> ` padded with `x` to `size`
    /// bytes, `rate` per second (`0`: as fast as possible, yielding every 256
    /// events so the subscribers' tasks run now and then). On the first failed
    /// publish, returns how many were published and the error.
    pub(crate) async fn publish_all<F, Fut, T, E>(&self, mut publish: F) -> Result<(), (u64, E)>
    where
        F: FnMut(String) -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let mut interval = (self.rate > 0).then(|| {
            let period = Duration::from_secs_f64(1.0 / self.rate as f64).max(Duration::from_nanos(1));
            let mut interval = tokio::time::interval(period);
            interval.set_missed_tick_behavior(MissedTickBehavior::Burst);
            interval
        });
        for published in 0..self.count {
            match &mut interval {
                Some(interval) => {
                    interval.tick().await;
                }
                None if published % 256 == 255 => tokio::task::yield_now().await,
                None => {}
            }
            let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos();
            let mut data = format!("ts={nanos} ");
            if data.len() < self.size {
                data.extend(std::iter::repeat_n('x', self.size - data.len()));
            }
            publish(data).await.map_err(|err| (published, err))?;
        }
        Ok(())
    }
}
