//! A replay store on Redis for sealrpc: one replay guard shared by every replica of a
//! service (competing consumers on one topic) that survives their restarts.
//!
//! ```no_run
//! # async fn demo(config: sealrpc_core::security::SecurityConfig) -> Result<(), sealrpc_core::security::ReplayStoreError> {
//! use std::sync::Arc;
//! use sealrpc_replay_redis::RedisReplayStore;
//!
//! let store = RedisReplayStore::builder("redis://127.0.0.1:6379/")
//!     .prefix("sealrpc:replay:conductor")
//!     .connect()
//!     .await?;
//! let security = config.replay_store(Arc::new(store)).build();
//! # let _ = security; Ok(()) }
//! ```
//!
//! Each check is one Lua script (`EVALSHA`), atomic on the server: it forgets ids that
//! left the window, refuses a replay, applies rpc-core's quota (control-plane reserve,
//! per-guest quota, fair share with eviction of the largest guest's oldest id and its
//! watermark) and records the id until `ts + skew`. Concurrent checks share one
//! multiplexed connection, so they are pipelined on the wire without waiting for each
//! other. All keys of one prefix carry the hash tag `{prefix}`: one slot of a Redis
//! Cluster, as a script needs.
//!
//! Run Redis with `maxmemory-policy noeviction`: an evicted id would let its replay in,
//! while a refused write makes the script fail and the receiver refuse (fail closed). A
//! Redis that loses its memory (a restart without persistence, a flush) restarts the
//! store's clock: messages stamped before that are refused for one window
//! (`StampedBeforeStart`), as the in-process store does after a restart.
//!
//! Measured (docs/reliability.md, "Replay store"): about 200 bytes of Redis memory per
//! remembered id (so 200,000 ids, the default capacity, take about 40 MB), and one round
//! trip per check (about 170 us one at a time, about 60 us each with 32 in flight, on a
//! busy 2-core machine, debug build).

#![forbid(unsafe_code)]

mod keys;
mod store;

pub use store::{RedisReplayStore, RedisReplayStoreBuilder};
