//! A guest agent: loads its bundle, serves its own `guestagent.<id>` queue and the guests'
//! fanout (control plane only), and reports to the conductor with heartbeats and status
//! updates.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sealrpc_core::security::Policy;
use sealrpc_core::wire::Limits;
use sealrpc_core::{
    Access, Client, Context, HandlerError, Method, Security, Server, ServerHandle, Target,
};

use super::BoxError;
use super::api::{
    CreateDatabase, CreateUser, GetStatus, GuestReply, Heartbeat, Prepare, RefreshConfig, Topics,
    UpdateStatus, method,
};
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

/// What a guest handler needs.
#[derive(Clone)]
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

    async fn cast<A: serde::Serialize>(&self, ctx: &Context, method: &str, args: &A) {
        let r = self
            .client
            .cast(&ctx.child(), &self.conductor, method, args)
            .await;
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
        self.cast(ctx, method::HEARTBEAT, &h).await;
    }

    async fn status(&self, ctx: &Context, status: &str) {
        let u = UpdateStatus {
            instance_id: self.id.clone(),
            status: status.to_owned(),
        };
        self.cast(ctx, method::UPDATE_STATUS, &u).await;
    }

    fn ran(&self, method: &str) {
        self.ledger.executed(&self.principal, method);
    }
}

/// Registers `name` on the guest's server with a handler of the agent.
macro_rules! on {
    ($builder:expr, $agent:expr, $name:expr, |$a:ident, $ctx:ident, $args:ident: $ty:ty| $body:block) => {{
        let agent = $agent.clone();
        $builder.handler($name, move |$ctx: Context, $args: $ty| {
            let $a = agent.clone();
            async move { $body }
        })
    }};
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
        let security = keys.security().policy(policy).limits(limits).build();
        let client = Client::builder(Arc::clone(&link.transport), Arc::clone(&security))
            .build()
            .await?;
        let principal = format!("guest:{id}");
        let agent = Agent {
            id: id.to_owned(),
            principal: principal.clone(),
            client: client.clone(),
            conductor: Target::new(topics.conductor.clone()),
            ledger,
            seq: Arc::new(AtomicU64::new(0)),
        };
        let b = Server::builder(Arc::clone(&link.transport), Arc::clone(&security))
            .topic(topics.guestagent.clone())
            .server_name(id)
            .shared(false)
            .fanout(true)
            .default_access(Access::ControlPlane);
        let b = on!(b, agent, method::PREPARE, |a, ctx, _p: Prepare| {
            a.ran(method::PREPARE);
            // Only a heartbeat here: casts are handled concurrently, so a BUILD status cast
            // now could overtake the ACTIVE one that create_user sends.
            a.heartbeat(&ctx).await;
            Ok::<_, HandlerError>(a.reply("BUILD"))
        });
        let b = on!(
            b,
            agent,
            method::CREATE_DATABASE,
            |a, ctx, _d: CreateDatabase| {
                a.ran(method::CREATE_DATABASE);
                let _ = ctx;
                Ok::<_, HandlerError>(a.reply("BUILD"))
            }
        );
        let b = on!(b, agent, method::CREATE_USER, |a, ctx, u: CreateUser| {
            a.ran(method::CREATE_USER);
            // The password is used here (it would be handed to the datastore), never logged.
            if u.password.expose().is_empty() {
                return Err(HandlerError::bad_request("empty password"));
            }
            a.status(&ctx, "ACTIVE").await;
            Ok::<_, HandlerError>(a.reply("ACTIVE"))
        });
        // A read-only probe: whoever the policy admits may ask (in mode Off, that is
        // everyone: nothing is authenticated there).
        let probe = agent.clone();
        let b = b.method(
            Method::new(method::GET_STATUS, move |_ctx: Context, _s: GetStatus| {
                let a = probe.clone();
                async move {
                    a.ran(method::GET_STATUS);
                    Ok::<_, HandlerError>(a.reply("ACTIVE"))
                }
            })
            .access(Access::AllowAny),
        );
        let b = on!(
            b,
            agent,
            method::REFRESH_CONFIG,
            |a, ctx, _r: RefreshConfig| {
                a.ran(method::REFRESH_CONFIG);
                a.heartbeat(&ctx).await;
                Ok::<_, HandlerError>(())
            }
        );
        let server = b.start().await?;
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
            .cast(&Context::new(), &target, method::HEARTBEAT, &h)
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
