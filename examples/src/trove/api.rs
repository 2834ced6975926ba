//! The Trove-shaped RPC interfaces: topics, method names and argument types.

use sealrpc_core::Secret;
use serde::{Deserialize, Serialize};

/// The methods, declared once: name, arguments and reply. The client's call, the handler and
/// its `authorize` all take these, so they cannot disagree.
pub mod rpc {
    sealrpc_core::rpc! {
        /// API -> task manager (cast): provision an instance.
        pub struct CreateInstance = "create_instance"(super::CreateInstance) -> ();
        /// Task manager -> guest (call): install the datastore.
        pub struct Prepare = "prepare"(super::Prepare) -> super::GuestReply;
        /// Task manager -> guest (call): create a database.
        pub struct CreateDatabase = "create_database"(super::CreateDatabase) -> super::GuestReply;
        /// Task manager -> guest (call): create a database user (a `Secret` password).
        pub struct CreateUser = "create_user"(super::CreateUser) -> super::GuestReply;
        /// Task manager -> guest (call): a cheap status probe (upgrade and latency phases).
        pub struct GetStatus = "get_status"(super::GetStatus) -> super::GuestReply;
        /// Task manager -> all guests (fanout cast): reload the configuration.
        pub struct RefreshConfig = "refresh_config"(super::RefreshConfig) -> ();
        /// Guest -> conductor (cast): I am alive.
        pub struct Heartbeat = "heartbeat"(super::Heartbeat) -> ();
        /// Guest -> conductor (cast): my instance's status changed.
        pub struct UpdateStatus = "update_status"(super::UpdateStatus) -> ();
    }
}

/// Method names, for the attack kit, which writes raw envelopes, and the ledger.
pub mod method {
    use super::rpc;
    use sealrpc_core::Rpc;

    /// API -> task manager (cast): provision an instance.
    pub const CREATE_INSTANCE: &str = rpc::CreateInstance::METHOD;
    /// Task manager -> guest (call): install the datastore.
    pub const PREPARE: &str = rpc::Prepare::METHOD;
    /// Task manager -> guest (call): create a database.
    pub const CREATE_DATABASE: &str = rpc::CreateDatabase::METHOD;
    /// Task manager -> guest (call): create a database user (a `Secret` password).
    pub const CREATE_USER: &str = rpc::CreateUser::METHOD;
    /// Task manager -> guest (call): a cheap status probe (upgrade and latency phases).
    pub const GET_STATUS: &str = rpc::GetStatus::METHOD;
    /// Task manager -> all guests (fanout cast): reload the configuration.
    pub const REFRESH_CONFIG: &str = rpc::RefreshConfig::METHOD;
    /// Guest -> conductor (cast): I am alive.
    pub const HEARTBEAT: &str = rpc::Heartbeat::METHOD;
    /// Guest -> conductor (cast): my instance's status changed.
    pub const UPDATE_STATUS: &str = rpc::UpdateStatus::METHOD;
}

/// The topics of one cluster. On a shared RabbitMQ each run gets its own names, so that two
/// runs (or a run and a test) never see each other's fanout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics {
    /// The task manager's topic.
    pub taskmanager: String,
    /// The conductor's topic.
    pub conductor: String,
    /// The guest agents' topic (server = instance id).
    pub guestagent: String,
    /// The notification topic (guests' usage reports).
    pub notifications: String,
}

impl Topics {
    /// The plain names (`taskmanager`, `conductor`, `guestagent`, `notifications`).
    pub fn plain() -> Self {
        Self::prefixed("")
    }

    /// Names prefixed with `tag-` (an empty tag gives the plain names).
    pub fn prefixed(tag: &str) -> Self {
        let name = |t: &str| {
            if tag.is_empty() {
                t.to_owned()
            } else {
                format!("{tag}-{t}")
            }
        };
        Self {
            taskmanager: name("taskmanager"),
            conductor: name("conductor"),
            guestagent: name("guestagent"),
            notifications: name("notifications"),
        }
    }
}

/// `create_instance` (API -> task manager).
#[derive(Debug, Serialize, Deserialize)]
pub struct CreateInstance {
    /// The instance (and guest) id.
    pub instance_id: String,
    /// The datastore, e.g. `mysql`.
    pub datastore: String,
    /// The first database.
    pub database: String,
    /// The first user.
    pub user: String,
    /// Its password: travels only sealed, never printed.
    pub password: Secret<String>,
}

/// `prepare` (task manager -> guest).
#[derive(Debug, Serialize, Deserialize)]
pub struct Prepare {
    /// The instance being prepared.
    pub instance_id: String,
    /// The datastore to install.
    pub datastore: String,
    /// Memory, in MiB.
    pub memory_mb: u32,
}

/// `create_database` (task manager -> guest).
#[derive(Debug, Serialize, Deserialize)]
pub struct CreateDatabase {
    /// The instance.
    pub instance_id: String,
    /// The database name.
    pub name: String,
}

/// `create_user` (task manager -> guest).
#[derive(Debug, Serialize, Deserialize)]
pub struct CreateUser {
    /// The instance.
    pub instance_id: String,
    /// The user name.
    pub user: String,
    /// The password: travels only sealed, never printed.
    pub password: Secret<String>,
    /// Databases the user may use.
    pub databases: Vec<String>,
}

/// `get_status` (task manager -> guest); `payload` pads the request for latency runs.
#[derive(Debug, Serialize, Deserialize)]
pub struct GetStatus {
    /// The instance.
    pub instance_id: String,
    /// Opaque padding.
    #[serde(with = "serde_bytes")]
    pub payload: Vec<u8>,
}

/// A guest's answer to a task-manager call.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct GuestReply {
    /// The instance that answered.
    pub instance_id: String,
    /// Its status.
    pub status: String,
}

/// `refresh_config` (fanout to every guest).
#[derive(Debug, Serialize, Deserialize)]
pub struct RefreshConfig {
    /// The configuration revision.
    pub revision: u32,
}

/// `heartbeat` (guest -> conductor).
#[derive(Debug, Serialize, Deserialize)]
pub struct Heartbeat {
    /// The sending instance.
    pub instance_id: String,
    /// Sequence number.
    pub seq: u64,
}

/// `update_status` (guest -> conductor): authorized only for the caller's own instance.
#[derive(Debug, Serialize, Deserialize)]
pub struct UpdateStatus {
    /// The instance whose status changes.
    pub instance_id: String,
    /// The new status, e.g. `ACTIVE`.
    pub status: String,
}
