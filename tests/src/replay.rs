//! Helpers of the shared replay-store suites: the two transports, a Redis store with a
//! unique key prefix, captured envelopes (a cast to the conductor, a control-plane fanout
//! to the guests) re-sent as a broker reader would, and bounded waits.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sealrpc_amqp::{AmqpOptions, AmqpTransport};
use sealrpc_core::bytes::Bytes;
use sealrpc_core::security::{Outbound, Peer, Security, now_ms};
use sealrpc_core::transport::Transport;
use sealrpc_core::transport::{Address, Outgoing};
use sealrpc_core::wire::{Header, Kind, MessageId, RequestBody};
use sealrpc_core::{MemoryTransport, Version};
use sealrpc_examples::trove::msgpack::Writer;
use sealrpc_replay_redis::RedisReplayStore;

use crate::cluster::uniq;

/// Which transport a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    /// The in-memory transport (one "broker" per test).
    Memory,
    /// The local RabbitMQ (`AMQP_ADDR` or the default URL).
    Amqp,
}

/// Connections to one broker: `connect()` gives each node its own (one per process).
#[derive(Debug, Clone)]
pub enum Broker {
    /// One in-memory broker shared by every node.
    Memory(MemoryTransport),
    /// RabbitMQ: a new connection per node.
    Amqp(Box<AmqpOptions>),
}

impl Broker {
    /// A broker of kind `wire` (waits up to 30 s for RabbitMQ).
    pub async fn new(wire: Wire) -> Self {
        match wire {
            Wire::Memory => Broker::Memory(MemoryTransport::new()),
            Wire::Amqp => {
                let opts = AmqpOptions::from_env();
                sealrpc_amqp::wait_for_broker(&opts.url, Duration::from_secs(30))
                    .await
                    .expect("RabbitMQ is up");
                Broker::Amqp(Box::new(opts))
            }
        }
    }

    /// A node's transport.
    pub async fn connect(&self) -> Arc<dyn Transport> {
        match self {
            Broker::Memory(m) => Arc::new(m.clone()),
            Broker::Amqp(opts) => Arc::new(
                AmqpTransport::connect((**opts).clone())
                    .await
                    .expect("connect"),
            ),
        }
    }
}

/// The Redis URL of the shared server (`REDIS_URL` overrides it).
pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".into())
}

/// A Redis replay store at `url` with a unique prefix (and the client's own `timeout`
/// per connection attempt and answer), whose keys are deleted when the
/// returned [`Cleanup`] drops (also when the test fails).
pub async fn redis_store(
    url: &str,
    test: &str,
    timeout: Duration,
) -> (Arc<RedisReplayStore>, Cleanup) {
    let store = RedisReplayStore::builder(url)
        .prefix(uniq(&format!("sealrpc-test:{test}")))
        .timeout(timeout)
        .connect()
        .await
        .expect("store");
    let cleanup = Cleanup {
        url: url.to_owned(),
        base: store.key_base().to_owned(),
    };
    (Arc::new(store), cleanup)
}

/// Deletes a test store's keys on drop (a synchronous connection, so that it also runs
/// while a failed test unwinds).
#[derive(Debug)]
pub struct Cleanup {
    url: String,
    base: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let Ok(client) = redis::Client::open(self.url.as_str()) else {
            return;
        };
        let Ok(mut conn) = client.get_connection_with_timeout(Duration::from_secs(1)) else {
            return;
        };
        let pattern = format!("{}:*", self.base);
        let keys: Vec<Vec<u8>> = match redis::cmd("KEYS").arg(&pattern).query(&mut conn) {
            Ok(keys) => keys,
            Err(_) => return,
        };
        if !keys.is_empty() {
            let _: Result<usize, _> = redis::cmd("DEL").arg(keys).query(&mut conn);
        }
    }
}

/// `record {from, seq}` as a signed and sealed cast from `sender` to `topic` (what a
/// broker reader captures).
pub fn record_cast(sender: &Security, topic: &str, from: &str, seq: u64) -> Bytes {
    envelope(
        sender,
        Kind::Cast,
        topic.to_owned(),
        Peer::ControlPlane,
        "record",
        from,
        seq,
    )
}

/// `notice {from, seq}` as a control-plane fanout to `topic`'s guests, signed and sealed
/// under kb.
pub fn notice_fanout(sender: &Security, topic: &str, from: &str, seq: u64) -> Bytes {
    envelope(
        sender,
        Kind::Fanout,
        format!("{topic}_fanout"),
        Peer::Guests,
        "notice",
        from,
        seq,
    )
}

fn envelope(
    sender: &Security,
    kind: Kind,
    dst: String,
    peer: Peer,
    method: &str,
    from: &str,
    seq: u64,
) -> Bytes {
    let header = Header {
        id: MessageId::random(),
        kind,
        ts: now_ms(),
        ttl: None,
        src: String::new(),
        dst,
        corr: None,
        reply: None,
        seal: None,
    };
    let mut args = Writer::default();
    args.map(2).str("from").str(from).str("seq").uint(seq);
    let body = RequestBody {
        method: method.into(),
        version: Version::new(1, 0),
        namespace: None,
        args: args.into_bytes().into(),
        ctx: Bytes::from_static(b"\x80"),
        monitor: None,
    };
    Bytes::from(
        sender
            .seal_and_sign(Outbound {
                header,
                body: body.into(),
                peer,
                carries_secret: false,
            })
            .expect("seal and sign"),
    )
}

/// Publishes `payload` as it is to `to` (a replay needs no key).
pub async fn publish(transport: &Arc<dyn Transport>, to: Address, payload: Bytes) {
    transport
        .send(Outgoing {
            to,
            payload,
            reply_to: None,
            expiration: None,
            confirm: true,
        })
        .await
        .expect("published");
}

/// Waits until `done` holds (at most 10 s, polling every 10 ms); false if it never did.
pub async fn eventually(mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    done()
}
