//! The bulk path for many guests: [`GuestCredentials`] (plain data) rendered into one
//! RabbitMQ definitions document per batch: users (with their generated passwords and
//! their connection and channel limits), vhost and topic permissions, the guests' queues
//! (with the fixed arguments of [`crate::provision::guest_queue_args`]) and their
//! bindings; imported through the management API, with the guest topic's operator policy
//! set once per fleet. Removal is bulk too.
//!
//! The exchanges the bindings start from must exist first: the control exchange (the
//! operator's transport declares it) and the guest topic's fanout exchange
//! ([`AmqpTransport::declare_fanout`](crate::AmqpTransport::declare_fanout)).

use std::collections::BTreeMap;

use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::credentials::{GuestCredentials, GuestLimits, OperatorPolicy};
use crate::management::{ManagementApi, ManagementError};

/// Guests per definitions import by default (one request of ~1 MB of JSON).
pub const DEFAULT_BATCH: usize = 250;

/// Queue deletions in flight at once during removal.
const DELETE_CONCURRENCY: usize = 8;

/// The JSON arguments of a guest queue (the same as
/// [`guest_queue_args`](crate::provision::guest_queue_args)), quorum when `quorum`.
pub fn queue_arguments(limits: &GuestLimits, quorum: bool) -> Value {
    let mut args = serde_json::Map::new();
    args.insert("x-max-length".into(), json!(limits.max_queue_length));
    args.insert("x-max-length-bytes".into(), json!(limits.max_queue_bytes));
    args.insert("x-overflow".into(), json!("reject-publish"));
    if let Some(e) = limits.queue_expires {
        let ms = u64::try_from(e.as_millis()).unwrap_or(u64::MAX).max(1);
        args.insert("x-expires".into(), json!(ms));
    }
    if quorum {
        args.insert("x-queue-type".into(), json!("quorum"));
    }
    Value::Object(args)
}

/// One definitions document for `guests`: users, permissions, topic permissions, queues
/// (durable; quorum when `quorum`, as on a cluster) and bindings. It holds the guests'
/// passwords: send it, never log it.
pub fn definitions(guests: &[GuestCredentials], quorum: bool) -> Value {
    let mut users = Vec::with_capacity(guests.len());
    let mut permissions = Vec::with_capacity(guests.len());
    let mut topic_permissions = Vec::new();
    let mut queues = Vec::new();
    let mut bindings = Vec::new();
    for g in guests {
        users.push(json!({
            "name": g.user,
            "password": g.password,
            "tags": "",
            "limits": {
                "max-connections": g.limits.max_connections,
                "max-channels": g.limits.max_channels,
            },
        }));
        permissions.push(json!({
            "user": g.user,
            "vhost": g.vhost,
            "configure": g.permissions.configure,
            "write": g.permissions.write,
            "read": g.permissions.read,
        }));
        for t in &g.topic_permissions {
            topic_permissions.push(json!({
                "user": g.user,
                "vhost": g.vhost,
                "exchange": t.exchange,
                "write": t.write,
                "read": t.read,
            }));
        }
        let arguments = queue_arguments(&g.limits, quorum);
        for q in &g.queues {
            queues.push(json!({
                "name": q.name,
                "vhost": g.vhost,
                "durable": true,
                "auto_delete": false,
                "arguments": arguments,
            }));
            bindings.push(json!({
                "source": q.exchange,
                "vhost": g.vhost,
                "destination": q.name,
                "destination_type": "queue",
                "routing_key": q.routing_key,
                "arguments": {},
            }));
        }
    }
    json!({
        "users": users,
        "permissions": permissions,
        "topic_permissions": topic_permissions,
        "queues": queues,
        "bindings": bindings,
    })
}

/// The distinct operator policies of `guests`, by vhost (one per guest topic: a fleet of
/// one topic has one).
pub fn operator_policies(guests: &[GuestCredentials]) -> Vec<(String, OperatorPolicy)> {
    let mut seen = BTreeMap::new();
    for g in guests {
        seen.entry((g.vhost.clone(), g.operator_policy.name.clone()))
            .or_insert_with(|| g.operator_policy.clone());
    }
    seen.into_iter().map(|((v, _), p)| (v, p)).collect()
}

/// Provisions and removes guests in bulk through a [`ManagementApi`].
#[derive(Debug, Clone)]
pub struct FleetProvisioner {
    api: ManagementApi,
    batch: usize,
    quorum: bool,
}

impl FleetProvisioner {
    /// Through `api`, [`DEFAULT_BATCH`] guests per import, classic queues.
    pub fn new(api: ManagementApi) -> Self {
        Self {
            api,
            batch: DEFAULT_BATCH,
            quorum: false,
        }
    }

    /// Guests per definitions import (at least 1).
    pub fn batch(mut self, batch: usize) -> Self {
        self.batch = batch.max(1);
        self
    }

    /// Quorum guest queues (on a cluster, as with `AmqpOptions::quorum_queues`).
    pub fn quorum(mut self, quorum: bool) -> Self {
        self.quorum = quorum;
        self
    }

    /// The management API.
    pub fn api(&self) -> &ManagementApi {
        &self.api
    }

    /// Sets the guests' operator policy (once per guest topic), then imports the users,
    /// permissions, limits, queues and bindings, one request per batch. Idempotent: an
    /// existing user gets the new password and permissions.
    pub async fn provision(&self, guests: &[GuestCredentials]) -> Result<(), ManagementError> {
        for (vhost, policy) in operator_policies(guests) {
            self.api.put_operator_policy(&vhost, &policy).await?;
        }
        for chunk in guests.chunks(self.batch) {
            self.api
                .import_definitions(&definitions(chunk, self.quorum))
                .await?;
        }
        Ok(())
    }

    /// Deletes the guests' users (one request per batch; their permissions and limits go
    /// with them) and their queues (a few at a time; missing ones are skipped).
    pub async fn deprovision(&self, guests: &[GuestCredentials]) -> Result<(), ManagementError> {
        let users: Vec<String> = guests.iter().map(|g| g.user.clone()).collect();
        for chunk in users.chunks(self.batch) {
            self.api.delete_users(chunk).await?;
        }
        let queues = guests.iter().flat_map(|g| {
            g.queues
                .iter()
                .map(move |q| (g.vhost.as_str(), q.name.as_str()))
        });
        let mut deletes = futures_util::stream::iter(queues)
            .map(|(v, q)| self.api.delete_queue(v, q))
            .buffer_unordered(DELETE_CONCURRENCY);
        let mut first_error = None;
        while let Some(r) = deletes.next().await {
            if let Err(e) = r {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Removes the guests' operator policies: call it when these were the guest topic's
    /// last guests.
    pub async fn clear_policies(&self, guests: &[GuestCredentials]) -> Result<(), ManagementError> {
        for (vhost, policy) in operator_policies(guests) {
            self.api
                .delete_operator_policy(&vhost, &policy.name)
                .await?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "fleet_tests.rs"]
mod tests;
