//! The operator's side of a restricted guest's topology: its queues, declared and bound
//! with fixed arguments, so that the guest itself needs no configure permission.

use lapin::Channel;
use lapin::options::{QueueDeclareOptions, QueueDeleteOptions};
use lapin::types::{AMQPValue, FieldTable};
use sealrpc_core::transport::TransportError;

use crate::credentials::{GuestCredentials, GuestLimits};
use crate::error;
use crate::options::AmqpOptions;
use crate::topology;

/// The fixed arguments of a guest queue: capped (publishes beyond the cap are refused,
/// so nothing is dropped silently and nothing is dead-lettered), maybe expiring.
pub fn guest_queue_args(limits: &GuestLimits) -> FieldTable {
    let mut args = FieldTable::default();
    args.insert(
        "x-max-length".into(),
        AMQPValue::LongLongInt(i64::from(limits.max_queue_length)),
    );
    args.insert(
        "x-max-length-bytes".into(),
        AMQPValue::LongLongInt(i64::try_from(limits.max_queue_bytes).unwrap_or(i64::MAX)),
    );
    args.insert(
        "x-overflow".into(),
        AMQPValue::LongString("reject-publish".into()),
    );
    if let Some(e) = limits.queue_expires {
        let ms = i64::try_from(e.as_millis()).unwrap_or(i64::MAX).max(1);
        args.insert("x-expires".into(), AMQPValue::LongLongInt(ms));
    }
    args
}

/// Declares (durable) and binds `creds`' queues; declares the guest topic's fanout
/// exchange first (the control exchange exists: the transport declared it).
pub(crate) async fn declare_guest_queues(
    ch: &Channel,
    opts: &AmqpOptions,
    creds: &GuestCredentials,
) -> Result<(), TransportError> {
    topology::declare_fanout(ch, opts, &creds.listen.topic).await?;
    let mut args = guest_queue_args(&creds.limits);
    if opts.durable && opts.quorum_queues {
        // On a cluster a guest's queues are replicated like the topic queues: a classic
        // queue lives on one node, and calls to the guest would find no route while that
        // node is down.
        args.insert(
            "x-queue-type".into(),
            AMQPValue::LongString("quorum".into()),
        );
    }
    for q in &creds.queues {
        let o = QueueDeclareOptions {
            durable: true,
            ..QueueDeclareOptions::default()
        };
        ch.queue_declare(q.name.as_str().into(), o, args.clone())
            .await
            .map_err(|e| error::from_lapin(&e, &format!("declare guest queue {:?}", q.name)))?;
        topology::bind(ch, &q.name, &q.exchange, &q.routing_key).await?;
    }
    Ok(())
}

/// Deletes `creds`' queues (a missing one is not an error).
pub(crate) async fn delete_guest_queues(
    ch: &Channel,
    creds: &GuestCredentials,
) -> Result<(), TransportError> {
    for q in &creds.queues {
        ch.queue_delete(q.name.as_str().into(), QueueDeleteOptions::default())
            .await
            .map_err(|e| error::from_lapin(&e, &format!("delete guest queue {:?}", q.name)))?;
    }
    Ok(())
}
