//! [`RedisReplayStore`]: the [`ReplayStore`] hook on Redis.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, Client, ErrorKind, RedisError, Script};
use sealrpc_core::security::{ReplayCheck, ReplayStore, ReplayStoreError, ReplayVerdict, now_ms};

use crate::keys::Keys;

/// The check-and-record script (see `check.lua`).
const CHECK: &str = include_str!("check.lua");

/// Builds a [`RedisReplayStore`].
#[derive(Clone)]
pub struct RedisReplayStoreBuilder {
    url: String,
    prefix: String,
    timeout: Duration,
}

impl fmt::Debug for RedisReplayStoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL may hold a password: never printed.
        f.debug_struct("RedisReplayStoreBuilder")
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl RedisReplayStoreBuilder {
    /// Every key starts with `{prefix}:` (default `sealrpc:replay`). Give each service its
    /// own prefix, or one per deployment: the ids are keyed by principal either way.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How long one connection attempt or one answer may take (default 200 ms; keep it
    /// under the receiver's `replay_store_timeout`, 250 ms by default).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Opens the store. It connects lazily and reconnects by itself: a Redis that is down
    /// now makes checks fail (and receivers refuse) until it is back. When Redis answers,
    /// this marks when the store's memory began (kept while Redis keeps its data).
    pub async fn connect(self) -> Result<RedisReplayStore, ReplayStoreError> {
        let client = Client::open(self.url.as_str())
            .map_err(|e| ReplayStoreError::new(format!("bad Redis URL ({:?})", e.kind())))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let conn = ConnectionManager::new_lazy_with_config(client, config).map_err(store_error)?;
        let store = RedisReplayStore {
            conn,
            keys: Keys::new(&self.prefix),
            script: Script::new(CHECK),
        };
        let since = store.keys.global("since");
        let mut conn = store.conn.clone();
        let marked: Result<bool, RedisError> = conn.set_nx(since, now_ms()).await;
        if let Err(e) = marked {
            tracing::warn!(error = %describe(&e), "replay store: Redis not reachable yet");
        }
        Ok(store)
    }
}

/// A replay store shared by every node that opens it with the same Redis and prefix.
#[derive(Clone)]
pub struct RedisReplayStore {
    conn: ConnectionManager,
    keys: Keys,
    script: Script,
}

impl fmt::Debug for RedisReplayStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisReplayStore")
            .field("keys", &self.keys.base)
            .finish_non_exhaustive()
    }
}

impl RedisReplayStore {
    /// A builder for a store at `url` (`redis://host:port/db`, `rediss://` for TLS).
    pub fn builder(url: impl Into<String>) -> RedisReplayStoreBuilder {
        RedisReplayStoreBuilder {
            url: url.into(),
            prefix: "sealrpc:replay".into(),
            timeout: Duration::from_millis(200),
        }
    }

    /// The hash tag every key of this store starts with (`{prefix}`).
    pub fn key_base(&self) -> &str {
        &self.keys.base
    }

    /// Deletes every key of this store's prefix (decommissioning, tests). Afterwards the
    /// store's memory begins anew, with its restart rule. Returns how many keys went.
    pub async fn delete_all(&self) -> Result<usize, ReplayStoreError> {
        let mut conn = self.conn.clone();
        let mut cursor: u64 = 0;
        let mut deleted = 0;
        loop {
            let (next, keys): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(self.keys.pattern())
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn)
                .await
                .map_err(store_error)?;
            if !keys.is_empty() {
                let n: usize = conn.del(keys).await.map_err(store_error)?;
                deleted += n;
            }
            if next == 0 {
                return Ok(deleted);
            }
            cursor = next;
        }
    }
}

#[async_trait]
impl ReplayStore for RedisReplayStore {
    async fn check_and_record(
        &self,
        check: ReplayCheck<'_>,
    ) -> Result<ReplayVerdict, ReplayStoreError> {
        let config = check.config;
        let mut conn = self.conn.clone();
        let answer: String = self
            .script
            .key(self.keys.principal(check.principal))
            .key(self.keys.global("control"))
            .key(self.keys.global("guests"))
            .key(self.keys.global("gmax"))
            .key(self.keys.global("gcount"))
            .key(self.keys.watermark(check.principal))
            .key(self.keys.global("since"))
            .arg(&self.keys.base)
            .arg(check.principal)
            .arg(&check.id.0[..])
            .arg(check.ts)
            .arg(check.now_ms)
            .arg(config.skew_ms)
            .arg(config.capacity)
            .arg(config.control_reserve)
            .arg(config.per_guest)
            .arg(if check.is_guest() { "1" } else { "0" })
            .invoke_async(&mut conn)
            .await
            .map_err(store_error)?;
        match answer.as_str() {
            "ok" => Ok(ReplayVerdict::Recorded),
            "replay" => Ok(ReplayVerdict::Replay),
            "full" => Ok(ReplayVerdict::Full),
            "before_start" => Ok(ReplayVerdict::BeforeStart),
            _ => Err(ReplayStoreError::new("unexpected answer from the script")),
        }
    }
}

/// The kind of a Redis failure, without its detail (which may name the server).
fn describe(e: &RedisError) -> String {
    let kind = e.kind();
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connection_refusal() || e.is_connection_dropped() || e.is_io_error() {
        "connection failed".into()
    } else if matches!(kind, ErrorKind::Server(_)) {
        format!("server error ({:?})", e.code().unwrap_or("?"))
    } else {
        format!("{kind:?}")
    }
}

fn store_error(e: RedisError) -> ReplayStoreError {
    ReplayStoreError::new(describe(&e))
}
