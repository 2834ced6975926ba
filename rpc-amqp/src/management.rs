//! RabbitMQ's HTTP management API (`rabbitmq-plugins enable rabbitmq_management`, port
//! 15672), for the operator's bulk path: one definitions import creates hundreds of guest
//! users with their permissions, limits, queues and bindings, where `rabbitmqctl` runs
//! one process (most of a second) per command. See [`crate::fleet`] for what is imported.

use std::fmt;
use std::time::Duration;

use sealrpc_core::Secret;

use crate::credentials::OperatorPolicy;
use crate::http::{self, HttpError, Request};

/// The management API's default address.
pub const DEFAULT_MANAGEMENT_ADDR: &str = "127.0.0.1:15672";

/// A failed management API call. Never holds the management password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManagementError {
    /// The API could not be reached or did not answer (is the plugin enabled?).
    #[error("RabbitMQ management API unreachable (is rabbitmq_management enabled?): {0}")]
    Http(#[from] HttpError),
    /// The API refused the management credentials (401) or the user is no administrator.
    #[error("RabbitMQ management API refused user {user:?} ({status}) on {path}")]
    Refused {
        /// The management user.
        user: String,
        /// 401 or 403.
        status: u16,
        /// The request path.
        path: String,
    },
    /// Any other non-success status, with the API's reason.
    #[error("RabbitMQ management API {method} {path}: {status}: {reason}")]
    Status {
        /// The method.
        method: String,
        /// The path.
        path: String,
        /// The status code.
        status: u16,
        /// The body the API sent (its JSON `reason`), truncated.
        reason: String,
    },
    /// A request body could not be encoded, or an answer decoded.
    #[error("RabbitMQ management API {path}: bad JSON: {reason}")]
    Json {
        /// The request path.
        path: String,
        /// What failed.
        reason: String,
    },
}

/// A client of one broker's management API: its `host:port` and an administrator's
/// credentials. `Debug` redacts the password; it is zeroized on drop.
#[derive(Clone)]
pub struct ManagementApi {
    addr: String,
    user: String,
    authorization: Secret<String>,
    timeout: Duration,
}

impl fmt::Debug for ManagementApi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManagementApi")
            .field("addr", &self.addr)
            .field("user", &self.user)
            .field("password", &"***")
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl ManagementApi {
    /// The API at `addr` (`host:port`) as `user`, 60 s per request (an import of a few
    /// hundred users takes well under a second on a local broker).
    pub fn new(addr: impl Into<String>, user: impl Into<String>, password: Secret<String>) -> Self {
        let user = user.into();
        let pair = Secret::new(format!("{user}:{}", password.expose()));
        let authorization =
            Secret::new(format!("Basic {}", http::base64(pair.expose().as_bytes())));
        Self {
            addr: addr.into(),
            user,
            authorization,
            timeout: Duration::from_secs(60),
        }
    }

    /// The API at [`DEFAULT_MANAGEMENT_ADDR`] as RabbitMQ's stock `guest` user, or as
    /// `$SEALRPC_MGMT_USER` / `$SEALRPC_MGMT_PASSWORD` at `$SEALRPC_MGMT_ADDR` when set.
    pub fn from_env() -> Self {
        let var = |k: &str, d: &str| {
            std::env::var(k)
                .ok()
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| d.to_owned())
        };
        Self::new(
            var("SEALRPC_MGMT_ADDR", DEFAULT_MANAGEMENT_ADDR),
            var("SEALRPC_MGMT_USER", "guest"),
            Secret::new(var("SEALRPC_MGMT_PASSWORD", "guest")),
        )
    }

    /// The same API with another per-request deadline.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The `host:port` this client talks to.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<(u16, Vec<u8>), ManagementError> {
        let encoded =
            body.map(serde_json::to_vec)
                .transpose()
                .map_err(|e| ManagementError::Json {
                    path: path.to_owned(),
                    reason: e.to_string(),
                })?;
        let (status, out) = http::send(Request {
            addr: &self.addr,
            method,
            path,
            authorization: self.authorization.expose(),
            body: encoded.as_deref(),
            timeout: self.timeout,
        })
        .await?;
        match status {
            200..=299 => Ok((status, out)),
            401 | 403 => Err(ManagementError::Refused {
                user: self.user.clone(),
                status,
                path: path.to_owned(),
            }),
            _ => Err(ManagementError::Status {
                method: method.to_owned(),
                path: path.to_owned(),
                status,
                reason: String::from_utf8_lossy(&out).chars().take(500).collect(),
            }),
        }
    }

    /// `GET path`, decoded as JSON.
    pub async fn get(&self, path: &str) -> Result<serde_json::Value, ManagementError> {
        let (_, body) = self.call("GET", path, None).await?;
        serde_json::from_slice(&body).map_err(|e| ManagementError::Json {
            path: path.to_owned(),
            reason: e.to_string(),
        })
    }

    /// `POST /api/definitions`: imports users, permissions, topic permissions, queues and
    /// bindings in one request (see [`crate::fleet::definitions`]).
    pub async fn import_definitions(
        &self,
        defs: &serde_json::Value,
    ) -> Result<(), ManagementError> {
        self.call("POST", "/api/definitions", Some(defs))
            .await
            .map(drop)
    }

    /// Sets (creates or replaces) an operator policy on `vhost`, applied to queues.
    pub async fn put_operator_policy(
        &self,
        vhost: &str,
        policy: &OperatorPolicy,
    ) -> Result<(), ManagementError> {
        let path = format!(
            "/api/operator-policies/{}/{}",
            http::segment(vhost),
            http::segment(&policy.name)
        );
        let definition: serde_json::Value =
            serde_json::from_str(&policy.definition).map_err(|e| ManagementError::Json {
                path: path.clone(),
                reason: e.to_string(),
            })?;
        let body = serde_json::json!({
            "pattern": policy.pattern,
            "definition": definition,
            "priority": policy.priority,
            "apply-to": "queues",
        });
        self.call("PUT", &path, Some(&body)).await.map(drop)
    }

    /// Removes operator policy `name` from `vhost`; a missing one is not an error.
    pub async fn delete_operator_policy(
        &self,
        vhost: &str,
        name: &str,
    ) -> Result<(), ManagementError> {
        let path = format!(
            "/api/operator-policies/{}/{}",
            http::segment(vhost),
            http::segment(name)
        );
        not_found_is_ok(self.call("DELETE", &path, None).await)
    }

    /// Deletes every user in `users` in one request (`/api/users/bulk-delete`). The
    /// broker refuses the whole batch when one is missing: then each is deleted alone,
    /// and missing ones are skipped.
    pub async fn delete_users(&self, users: &[String]) -> Result<(), ManagementError> {
        if users.is_empty() {
            return Ok(());
        }
        let body = serde_json::json!({ "users": users });
        match self
            .call("POST", "/api/users/bulk-delete", Some(&body))
            .await
        {
            Ok(_) => Ok(()),
            Err(ManagementError::Status {
                status: 400,
                reason,
                ..
            }) if reason.contains("no_such_user") => {
                for user in users {
                    let path = format!("/api/users/{}", http::segment(user));
                    not_found_is_ok(self.call("DELETE", &path, None).await)?;
                }
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Deletes queue `name` on `vhost`; a missing one is not an error.
    pub async fn delete_queue(&self, vhost: &str, name: &str) -> Result<(), ManagementError> {
        let path = format!(
            "/api/queues/{}/{}",
            http::segment(vhost),
            http::segment(name)
        );
        not_found_is_ok(self.call("DELETE", &path, None).await)
    }

    /// Deletes exchange `name` on `vhost`; a missing one is not an error.
    pub async fn delete_exchange(&self, vhost: &str, name: &str) -> Result<(), ManagementError> {
        let path = format!(
            "/api/exchanges/{}/{}",
            http::segment(vhost),
            http::segment(name)
        );
        not_found_is_ok(self.call("DELETE", &path, None).await)
    }

    /// Whether user `name` exists.
    pub async fn user_exists(&self, name: &str) -> Result<bool, ManagementError> {
        let path = format!("/api/users/{}", http::segment(name));
        match self.call("GET", &path, None).await {
            Ok(_) => Ok(true),
            Err(ManagementError::Status { status: 404, .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The sockets the broker's nodes use and may use at most, summed (the broker's file
    /// descriptor limit caps how many guest connections fit).
    pub async fn sockets(&self) -> Result<(u64, u64), ManagementError> {
        let nodes = self.get("/api/nodes").await?;
        let (mut used, mut total) = (0, 0);
        for n in nodes.as_array().into_iter().flatten() {
            used += n
                .get("sockets_used")
                .and_then(serde_json::Value::as_u64)
                .unwrap_or(0);
            total += n
                .get("sockets_total")
                .and_then(serde_json::Value::as_u64)
                .unwrap_or(0);
        }
        Ok((used, total))
    }
}

fn not_found_is_ok(r: Result<(u16, Vec<u8>), ManagementError>) -> Result<(), ManagementError> {
    match r {
        Ok(_) | Err(ManagementError::Status { status: 404, .. }) => Ok(()),
        Err(e) => Err(e),
    }
}
