//! One guest of the fleet phase: its own bundle file, its own broker user and its own
//! lean connection ([`AmqpOptions::lean`]), serving a ping, a fanout and the rekey
//! methods. No client: a guest that only answers needs no reply inbox (two channels fewer).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use sealrpc_amqp::{AmqpOptions, AmqpTransport, GuestCredentials};
use sealrpc_core::transport::Transport;
use sealrpc_core::{Access, Context, HandlerError, Server, ServerHandle};
use sealrpc_signers::GuestKeys;
use sealrpc_signers::rekey::{RekeyAgent, RekeyServerExt};

use super::BoxError;

/// Guests connecting at once.
pub const CONNECT_CONCURRENCY: usize = 16;
use super::keys::load_guest_keys;

/// The ping's argument and answer.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub struct Ping {
    /// Echoed back.
    pub n: u64,
}

/// The ping method.
pub const PING: &str = "fleet_ping";
/// The fanout method (a cast to every guest).
pub const REFRESH: &str = "fleet_refresh";

/// A running fleet guest.
#[derive(Debug)]
pub struct FleetGuest {
    /// The instance id.
    pub id: String,
    /// Its keys (the rekey agent installs new ones here).
    pub keys: GuestKeys,
    /// Its rekey endpoint.
    pub agent: RekeyAgent,
    transport: AmqpTransport,
    server: ServerHandle,
}

/// Where and how a guest connects.
#[derive(Debug, Clone)]
pub struct GuestConnect {
    /// `host:port` of the broker.
    pub host_port: String,
    /// The options every guest starts from (cluster mode, timeouts).
    pub base: AmqpOptions,
    /// Trim each connection ([`AmqpOptions::lean`]); false: the defaults, to compare.
    pub lean: bool,
    /// The guest topic.
    pub topic: String,
}

impl FleetGuest {
    /// Boots guest `id` from its bundle file with its broker user `creds`; counts each
    /// fanout it receives in `fanouts`.
    pub async fn start(
        id: &str,
        bundle: &Path,
        creds: &GuestCredentials,
        how: &GuestConnect,
        fanouts: Arc<AtomicUsize>,
    ) -> Result<Self, BoxError> {
        let (_bundle, keys) = load_guest_keys(bundle)?;
        let agent = RekeyAgent::new(keys.clone()).bundle_file(bundle);
        let mut opts = AmqpOptions {
            url: creds.url("amqp", &how.host_port),
            declare_exchanges: false,
            connection_name: Some(creds.user.clone()),
            ..how.base.clone()
        };
        if how.lean {
            opts = opts.lean();
        }
        let transport = AmqpTransport::connect(opts).await?;
        let security = keys.security().build();
        let t: Arc<dyn Transport> = Arc::new(transport.clone());
        let server = Server::builder(t, security)
            .topic(how.topic.clone())
            .server_name(id)
            .shared(false)
            .fanout(true)
            .default_access(Access::ControlPlane)
            .rekey_agent(&agent)
            .handler(PING, |_c: Context, p: Ping| async move {
                Ok::<_, HandlerError>(p)
            })
            .handler(REFRESH, move |_c: Context, _p: Ping| {
                let f = Arc::clone(&fanouts);
                async move {
                    f.fetch_add(1, Ordering::Relaxed);
                    Ok::<_, HandlerError>(())
                }
            })
            .start()
            .await?;
        Ok(Self {
            id: id.to_owned(),
            keys,
            agent,
            transport,
            server,
        })
    }

    /// Stops serving and closes the connection.
    pub async fn shutdown(self) {
        self.server.shutdown().await;
        self.transport.close().await;
    }
}

/// Starts a guest for each id (its bundle, its broker user), [`CONNECT_CONCURRENCY`] at
/// once; on any failure closes those that started and returns the first error.
pub async fn connect_guests(
    ids: &[String],
    bundles: &[PathBuf],
    creds: &[GuestCredentials],
    how: &GuestConnect,
    fanouts: &Arc<AtomicUsize>,
) -> Result<Vec<FleetGuest>, BoxError> {
    use futures_util::StreamExt;
    let starts = ids
        .iter()
        .zip(bundles)
        .zip(creds)
        .map(|((id, b), c)| FleetGuest::start(id, b, c, how, Arc::clone(fanouts)));
    let results: Vec<_> = futures_util::stream::iter(starts)
        .buffer_unordered(CONNECT_CONCURRENCY)
        .collect()
        .await;
    let mut guests = Vec::with_capacity(results.len());
    let mut first_error = None;
    for r in results {
        match r {
            Ok(g) => guests.push(g),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        // Keep the ones that started, for the cleanup, and fail.
        Some(e) => {
            for g in guests {
                g.shutdown().await;
            }
            Err(e)
        }
        None => Ok(guests),
    }
}

/// This process's resident set size in KiB (`VmRSS` of `/proc/self/status`), 0 where
/// there is no procfs.
pub fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}
