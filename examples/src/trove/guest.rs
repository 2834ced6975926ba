//! A guest agent: loads its bundle, serves its own `guestagent.<id>` queue and the guests'
//! fanout (control plane only), and reports to the conductor with heartbeats and status
//! updates.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sealrpc_core::security::Policy;
use sealrpc_core::security::Security;
use sealrpc_core::transport::ListenSpec;
use sealrpc_core::wire::Limits;
use sealrpc_core::{Access, Client, Context, HandlerError, Node, Rpc, ServerHandle, Target};

use super::BoxError;
use super::api::{GuestReply, Heartbeat, Topics, UpdateStatus, method, rpc};
use super::keys::load_guest_keys;
use super::ledger::Ledger;
use super::net::GuestLink;

/// A running guest agent.
#[derive(Debug)]
pub struct Guest {
    /// The instance id.
    pub id: String,
    /// Its principal, `guest:<id>`.
    pub principal: String,
    /// Its security runtime (policy, counters), shared by its server and client.
    pub security: Arc<Security>,
    /// Its client (casts to the conductor).
    pub client: Client,
    /// Its network link.
    pub link: GuestLink,
    /// Its bundle file (all a compromised guest's attacker holds).
    pub bundle_path: PathBuf,
    server: ServerHandle,
}

/// What a guest handler needs (the server's shared state).
struct Agent {
    id: String,
    principal: String,
    client: Client,
    conductor: Target,
    ledger: Arc<Ledger>,
    seq: Arc<AtomicU64>,
}

impl Agent {
    fn reply(&self, status: &str) -> GuestReply {
        GuestReply {
            instance_id: self.id.clone(),
            status: status.to_owned(),
        }
    }

    async fn cast<D: Rpc>(&self, ctx: &Context, rpc: D, args: &D::Args) {
        let r = self
            .client
            .cast(&ctx.child(), &self.conductor, rpc, args)
            .await;
        let method = D::METHOD;
        if let Err(e) = &r {
            tracing::warn!(instance = %self.id, method, error = %e, "cast to the conductor failed");
        }
        if r.is_ok() && method == method::HEARTBEAT {
            self.ledger.heartbeat_sent();
        }
        self.ledger.rpc(r.is_ok());
    }

    async fn heartbeat(&self, ctx: &Context) {
        let h = Heartbeat {
            instance_id: self.id.clone(),
            seq: self.seq.fetch_add(1, Ordering::Relaxed),
        };
        self.cast(ctx, rpc::Heartbeat, &h).await;
    }

    async fn status(&self, ctx: &Context, status: &str) {
        let u = UpdateStatus {
            instance_id: self.id.clone(),
            status: status.to_owned(),
        };
        self.cast(ctx, rpc::UpdateStatus, &u).await;
    }

    fn ran(&self, method: &str) {
        self.ledger.executed(&self.principal, method);
    }
}

impl Guest {
    /// Boots guest `id`: loads its bundle file, builds its security with `policy`, connects,
    /// and starts serving.
    pub async fn start(
        id: &str,
        bundle_path: PathBuf,
        link: GuestLink,
        topics: &Topics,
        policy: Policy,
        limits: Limits,
        ledger: Arc<Ledger>,
    ) -> Result<Self, BoxError> {
        let (_bundle, keys) = load_guest_keys(&bundle_path)?;
        let config = keys.security().policy(policy).limits(limits);
        // One security runtime for the guest's client and server.
        let node = Node::new(Arc::clone(&link.transport), config);
        let client = node.client().build().await?;
        let principal = format!("guest:{id}");
        let agent = Arc::new(Agent {
            id: id.to_owned(),
            principal: principal.clone(),
            client: client.clone(),
            conductor: Target::new(topics.conductor.clone()),
            ledger,
            seq: Arc::new(AtomicU64::new(0)),
        });
        let server = node
            .server()
            .listen(ListenSpec::guest_agent(topics.guestagent.clone(), id))
            .default_access(Access::ControlPlane)
            .with_state(agent)
            .handler(rpc::Prepare, |a, ctx, _p| async move {
                a.ran(method::PREPARE);
                // Only a heartbeat here: casts are handled concurrently, so a BUILD status
                // cast now could overtake the ACTIVE one that create_user sends.
                a.heartbeat(&ctx).await;
                Ok(a.reply("BUILD"))
            })
            .handler(rpc::CreateDatabase, |a, _ctx, _d| async move {
                a.ran(method::CREATE_DATABASE);
                Ok(a.reply("BUILD"))
            })
            .handler(rpc::CreateUser, |a, ctx, u| async move {
                a.ran(method::CREATE_USER);
                // The password is used here (it would be handed to the datastore), never logged.
                if u.password.expose().is_empty() {
                    return Err(HandlerError::bad_request("empty password"));
                }
                a.status(&ctx, "ACTIVE").await;
                Ok(a.reply("ACTIVE"))
            })
            .handler(rpc::GetStatus, |a, _ctx, _s| async move {
                a.ran(method::GET_STATUS);
                Ok(a.reply("ACTIVE"))
            })
            // A read-only probe: whoever the policy admits may ask (in mode Off, that is
            // everyone: nothing is authenticated there).
            .access(rpc::GetStatus, Access::AllowAny)
            .handler(rpc::RefreshConfig, |a, ctx, _r| async move {
                a.ran(method::REFRESH_CONFIG);
                a.heartbeat(&ctx).await;
                Ok(())
            })
            .start()
            .await?;
        let security = Arc::clone(node.security());
        Ok(Self {
            id: id.to_owned(),
            principal,
            security,
            client,
            link,
            bundle_path,
            server,
        })
    }

    /// Sends a heartbeat to the conductor now (the upgrade phase's guest-side traffic).
    pub async fn heartbeat(&self, topics: &Topics, ledger: &Ledger, seq: u64) {
        let h = Heartbeat {
            instance_id: self.id.clone(),
            seq,
        };
        let target = Target::new(topics.conductor.clone());
        let r = self
            .client
            .cast(&Context::new(), &target, rpc::Heartbeat, &h)
            .await;
        if r.is_ok() {
            ledger.heartbeat_sent();
        }
        ledger.rpc(r.is_ok());
    }

    /// Stops serving.
    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }
}
