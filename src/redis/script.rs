//! The keys of a topic in Redis and the one script that appends to its log.

use redis::Script;

/// Appends a frame body to a topic's stream and returns `{epoch, offset, 0}`
/// (`1` last: a publish key already seen, nothing appended).
///
/// Atomic in Redis, so concurrent publishers on any number of nodes get one
/// total order per topic. The epoch lives in the meta hash; when the hash is
/// gone (first publish, flushed or restarted Redis) a new epoch is taken from
/// the caller and the stream is emptied, so ids of the old log can never be
/// confused with the new one.
///
/// The hash also names the history of the data set the last append went
/// into (`writer`: the server's `master_replid`, which Redis changes at every
/// restart and every promotion; a replica takes its primary's). When another appends next — a replica promoted by a
/// failover, a server restarted from its files, a demoted primary promoted
/// again — the entries the last writer appended may not all have reached this
/// one, and nodes may have delivered some of those: so the topic moves to a
/// new epoch (never the current one) before anything is appended at an offset
/// that could have been given out already. The new epoch
/// `continues` the old one `through` the last offset this server holds: those
/// entries stay, and ids up to there resume as they are (see the module docs
/// of `redis`). The stream entry id is `<offset>-0`, so `XRANGE`
/// reads by offset; the entry holds the epoch (`e`) and the body (`b`): the
/// encoded event without its id and final blank line. Each node's hub finishes
/// the frame with the id (the wire format is written in Rust only).
///
/// With a publish key (`ARGV[7]`, the window in ms, not `0`): when the key's
/// entry (`KEYS[3]`, in the topic's slot) holds `<epoch>:<offset>`, that id is
/// the answer and nothing is appended; otherwise the append's id is stored
/// there for the window.
///
/// KEYS: stream, meta, publish key (the meta again when none). ARGV: body,
/// candidate epoch, MAXLEN, wake channel, topic, ttl in ms (0: none), window of
/// the publish key in ms (0: no key).
const PUBLISH: &str = r"
if ARGV[7] ~= '0' then
  local seen = redis.call('GET', KEYS[3])
  if seen then
    local at = string.find(seen, ':', 1, true)
    return {string.sub(seen, 1, at - 1), tonumber(string.sub(seen, at + 1)), 1}
  end
end
local writer = string.match(redis.call('INFO', 'replication'), 'master_replid:(%x+)')
if not writer then
  return redis.error_reply('ssekit: INFO replication names no master_replid: a server that is not Redis')
end
local meta = redis.call('HMGET', KEYS[2], 'epoch', 'writer', 'offset')
local epoch = meta[1]
if not epoch then
  epoch = ARGV[2]
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[2], 'epoch', epoch, 'offset', 0, 'writer', writer)
elseif meta[2] ~= writer then
  local fresh = ARGV[2]
  if fresh == epoch then
    fresh = string.format('%x', tonumber(epoch, 16) + 1)
  end
  redis.call('HSET', KEYS[2], 'epoch', fresh, 'writer', writer, 'continues', epoch, 'through', meta[3])
  epoch = fresh
end
local offset = redis.call('HINCRBY', KEYS[2], 'offset', 1)
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[3], offset .. '-0', 'e', epoch, 'b', ARGV[1])
if ARGV[6] ~= '0' then
  redis.call('PEXPIRE', KEYS[1], ARGV[6])
  redis.call('PEXPIRE', KEYS[2], ARGV[6])
end
if ARGV[7] ~= '0' then
  redis.call('SET', KEYS[3], epoch .. ':' .. offset, 'PX', ARGV[7])
end
redis.call('PUBLISH', ARGV[4], epoch .. ':' .. ARGV[5])
return {epoch, offset, 0}
";

pub(crate) fn publish() -> Script {
    Script::new(PUBLISH)
}

/// Key names under a prefix.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    prefix: String,
}

impl Keys {
    pub(crate) fn new(prefix: &str) -> Self {
        Self { prefix: prefix.to_owned() }
    }

    /// The stream holding the topic's frames.
    pub(crate) fn log(&self, topic: &str) -> String {
        format!("{}{{{topic}}}:log", self.prefix)
    }

    /// The hash holding the topic's epoch and last offset.
    pub(crate) fn meta(&self, topic: &str) -> String {
        format!("{}{{{topic}}}:meta", self.prefix)
    }

    /// The entry of a publish key of the topic (in the topic's slot).
    pub(crate) fn once(&self, topic: &str, key: &str) -> String {
        format!("{}{{{topic}}}:once:{key}", self.prefix)
    }

    /// The pub/sub channel that wakes nodes (payload: `<epoch>:<topic>`).
    pub(crate) fn wake(&self) -> String {
        format!("{}wake", self.prefix)
    }
}
