//! The control-plane services: the task manager (provisions instances by calling their
//! guests) and the conductor (receives heartbeats and status updates from guests, with
//! authorization in code: a guest may update only its own instance).

use std::sync::Arc;

use sealrpc_core::{
    Access, Caller, Client, Context, HandlerError, Security, Server, ServerHandle, Target,
    Transport,
};
use tokio::sync::mpsc;

use super::BoxError;
use super::api::{
    CreateDatabase, CreateInstance, CreateUser, GuestReply, Heartbeat, Prepare, Topics,
    UpdateStatus, method,
};
use super::ledger::Ledger;

/// The task manager's principal, as the ledger names it.
pub const TASKMANAGER: &str = "control:taskmanager";
/// The conductor's principal, as the ledger names it.
pub const CONDUCTOR: &str = "control:conductor";

/// One instance provisioned (or not) by the task manager.
#[derive(Debug, Clone)]
pub struct Provisioned {
    /// The instance.
    pub instance_id: String,
    /// Calls made to its guest, or why provisioning failed.
    pub result: Result<u32, String>,
}

/// Starts the task manager's server; `client` is its own client (to call guests).
pub async fn start_taskmanager(
    transport: Arc<dyn Transport>,
    security: Arc<Security>,
    client: Client,
    topics: Topics,
    ledger: Arc<Ledger>,
    done: mpsc::UnboundedSender<Provisioned>,
) -> Result<ServerHandle, BoxError> {
    let topic = topics.taskmanager.clone();
    let handler = move |ctx: Context, a: CreateInstance| {
        let (client, topics, ledger, done) =
            (client.clone(), topics.clone(), ledger.clone(), done.clone());
        async move {
            ledger.executed(TASKMANAGER, method::CREATE_INSTANCE);
            let instance_id = a.instance_id.clone();
            let result = provision(&client, &topics, &ledger, &ctx, a).await;
            let _ = done.send(Provisioned {
                instance_id,
                result: result.map_err(|e| e.to_string()),
            });
            Ok::<_, HandlerError>(())
        }
    };
    Ok(Server::builder(transport, security)
        .topic(topic)
        .server_name("tm-1")
        .default_access(Access::ControlPlane)
        .handler(method::CREATE_INSTANCE, handler)
        .start()
        .await?)
}

/// What the task manager does for `create_instance`: three calls to the new guest.
async fn provision(
    client: &Client,
    topics: &Topics,
    ledger: &Ledger,
    ctx: &Context,
    a: CreateInstance,
) -> Result<u32, sealrpc_core::Error> {
    let guest = Target::guest(topics.guestagent.clone(), a.instance_id.clone());
    let prepare = Prepare {
        instance_id: a.instance_id.clone(),
        datastore: a.datastore,
        memory_mb: 2048,
    };
    let r = client
        .call::<_, GuestReply>(&ctx.child(), &guest, method::PREPARE, &prepare)
        .await;
    ledger.rpc(r.is_ok());
    r?;
    let db = CreateDatabase {
        instance_id: a.instance_id.clone(),
        name: a.database.clone(),
    };
    let r = client
        .call::<_, GuestReply>(&ctx.child(), &guest, method::CREATE_DATABASE, &db)
        .await;
    ledger.rpc(r.is_ok());
    r?;
    let user = CreateUser {
        instance_id: a.instance_id,
        user: a.user,
        password: a.password,
        databases: vec![a.database],
    };
    let r = client
        .call::<_, GuestReply>(&ctx.child(), &guest, method::CREATE_USER, &user)
        .await;
    ledger.rpc(r.is_ok());
    r?;
    Ok(3)
}

/// Starts the conductor's server. `update_status` is authorized in code for the control
/// plane and for the guest of that very instance; refusals are counted in the ledger.
pub async fn start_conductor(
    transport: Arc<dyn Transport>,
    security: Arc<Security>,
    topics: &Topics,
    ledger: Arc<Ledger>,
) -> Result<ServerHandle, BoxError> {
    let (l1, l2, l3) = (ledger.clone(), ledger.clone(), ledger);
    let heartbeat = move |_ctx: Context, _h: Heartbeat| {
        let ledger = l1.clone();
        async move {
            ledger.executed(CONDUCTOR, method::HEARTBEAT);
            Ok::<_, HandlerError>(())
        }
    };
    let update_status = move |_ctx: Context, u: UpdateStatus| {
        let ledger = l2.clone();
        async move {
            ledger.executed(CONDUCTOR, method::UPDATE_STATUS);
            ledger.set_status(&u.instance_id, &u.status);
            Ok::<_, HandlerError>(())
        }
    };
    let authorize = move |c: &Caller, a: &UpdateStatus| {
        let ok = c.is_control_plane() || c.is_guest(&a.instance_id);
        if !ok {
            l3.denied(CONDUCTOR, method::UPDATE_STATUS);
        }
        ok
    };
    Ok(Server::builder(transport, security)
        .topic(topics.conductor.clone())
        .server_name("cond-1")
        .handler(method::HEARTBEAT, heartbeat)
        .handler(method::UPDATE_STATUS, update_status)
        .authorize(method::UPDATE_STATUS, authorize)
        .start()
        .await?)
}
