//! The control-plane services: the task manager (provisions instances by calling their
//! guests) and the conductor (receives heartbeats and status updates from guests, with
//! authorization in code: a guest may update only its own instance).

use std::sync::Arc;

use sealrpc_core::security::Security;
use sealrpc_core::transport::Transport;
use sealrpc_core::{Access, Client, Context, Server, ServerHandle, Target};
use tokio::sync::mpsc;

use super::BoxError;
use super::api::{CreateDatabase, CreateInstance, CreateUser, Prepare, Topics, method, rpc};
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
    let state = Arc::new(TaskManager {
        client,
        topics: topics.clone(),
        ledger,
        done,
    });
    Ok(Server::builder(transport, security)
        .topic(topics.taskmanager)
        .server_name("tm-1")
        .default_access(Access::ControlPlane)
        .with_state(state)
        .handler(rpc::CreateInstance, |tm, ctx, a| async move {
            tm.ledger.executed(TASKMANAGER, method::CREATE_INSTANCE);
            let instance_id = a.instance_id.clone();
            let result = provision(&tm.client, &tm.topics, &tm.ledger, &ctx, a).await;
            let result = result.map_err(|e| e.to_string());
            let _ = tm.done.send(Provisioned {
                instance_id,
                result,
            });
            Ok(())
        })
        .start()
        .await?)
}

/// What the task manager's handler shares.
struct TaskManager {
    client: Client,
    topics: Topics,
    ledger: Arc<Ledger>,
    done: mpsc::UnboundedSender<Provisioned>,
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
        .call(&ctx.child(), &guest, rpc::Prepare, &prepare)
        .await;
    ledger.rpc(r.is_ok());
    r?;
    let db = CreateDatabase {
        instance_id: a.instance_id.clone(),
        name: a.database.clone(),
    };
    let r = client
        .call(&ctx.child(), &guest, rpc::CreateDatabase, &db)
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
        .call(&ctx.child(), &guest, rpc::CreateUser, &user)
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
    let denials = Arc::clone(&ledger);
    Ok(Server::builder(transport, security)
        .topic(topics.conductor.clone())
        .server_name("cond-1")
        .with_state(ledger)
        .handler(rpc::Heartbeat, |ledger, _ctx, _h| async move {
            ledger.executed(CONDUCTOR, method::HEARTBEAT);
            Ok(())
        })
        .handler(rpc::UpdateStatus, |ledger, _ctx, u| async move {
            ledger.executed(CONDUCTOR, method::UPDATE_STATUS);
            ledger.set_status(&u.instance_id, &u.status);
            Ok(())
        })
        .authorize(rpc::UpdateStatus, move |c, a| {
            let ok = c.is_control_plane() || c.is_guest(&a.instance_id);
            if !ok {
                denials.denied(CONDUCTOR, method::UPDATE_STATUS);
            }
            ok
        })
        .start()
        .await?)
}
