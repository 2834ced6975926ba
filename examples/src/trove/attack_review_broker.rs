//! Review rows against the broker itself (issue 11, 6a and 6b), run with guest A's own
//! generated broker user: a dead-letter route into B's queue, and parking unbounded
//! persistent messages. On the in-memory transport, which has no broker to configure,
//! each row runs its nearest equivalent and shows the defence that remains.

use std::time::Duration;

use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Connection, ConnectionProperties};
use sealrpc_amqp::error::{ACCESS_REFUSED, amqp_reply};
use sealrpc_core::bytes::Bytes;
use sealrpc_core::security::RejectReason;
use sealrpc_core::transport::{Address, Outgoing, TransportErrorKind};

use super::BoxError;
use super::api::{CreateUser, method};
use super::attack_kit::Attack;
use super::attacks::{Probe, Reason};
use super::forge::Forge;
use super::net::GuestBrokerUser;

/// True when `r` failed with the broker's 403 ACCESS_REFUSED.
fn refused<T>(r: &lapin::Result<T>) -> bool {
    matches!(r, Err(e) if amqp_reply(e).is_some_and(|(code, _)| code == ACCESS_REFUSED))
}

/// Queue arguments that dead-letter every message at once to `exchange` with `key`.
fn dead_letter_args(exchange: &str, key: &str) -> FieldTable {
    let mut args = FieldTable::default();
    args.insert(
        "x-dead-letter-exchange".into(),
        AMQPValue::LongString(exchange.into()),
    );
    args.insert(
        "x-dead-letter-routing-key".into(),
        AMQPValue::LongString(key.into()),
    );
    args.insert("x-message-ttl".into(), AMQPValue::LongLongInt(0));
    args
}

/// Every step of a broker attack, each on a fresh channel: (re)declare `queue` with
/// `args` (deleting it first when `replace`), then publish `messages` persistent copies
/// of `payload` into it by name. True when every step was refused.
async fn all_refused(
    user: &GuestBrokerUser,
    queue: &str,
    (args, replace): (FieldTable, bool),
    payload: &[u8],
    messages: usize,
) -> Result<bool, BoxError> {
    let conn = Connection::connect(&user.url, ConnectionProperties::default()).await?;
    let mut deleted_refused = true;
    if replace {
        let ch = conn.create_channel().await?;
        let deleted = ch
            .queue_delete(queue.into(), QueueDeleteOptions::default())
            .await;
        deleted_refused = refused(&deleted);
    }
    let declare = QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    };
    let ch = conn.create_channel().await?;
    let declared = ch.queue_declare(queue.into(), declare, args).await;
    // Whatever the declare did, publishing into a queue by name goes through the default
    // exchange: the other half of both attacks.
    let ch = conn.create_channel().await?;
    ch.confirm_select(ConfirmSelectOptions::default()).await?;
    let mut published = Ok(());
    for _ in 0..messages {
        let sent = async {
            ch.basic_publish(
                "".into(),
                queue.into(),
                BasicPublishOptions::default(),
                payload,
                BasicProperties::default().with_delivery_mode(2),
            )
            .await?
            .await
        }
        .await;
        if let Err(e) = sent {
            published = Err(e);
            break;
        }
    }
    let _ = conn.close(200, "done".into()).await;
    Ok(deleted_refused && refused(&declared) && refused(&published))
}

/// 6a: A declares a queue that dead-letters at once into B's queue, then publishes a
/// forged call to B into it. Without a broker: the same envelope straight to B.
pub(crate) async fn dead_letter_route_to_b(t: &mut Attack<'_>) -> Result<(), BoxError> {
    let cluster = t.cluster;
    let a = &cluster.guests[0];
    let forged = Forge::cast(
        "control:taskmanager",
        &t.b_queue().dst(),
        method::CREATE_USER,
        &CreateUser {
            instance_id: t.b.id.clone(),
            user: "backdoor".into(),
            password: sealrpc_core::Secret::new("attacker-chosen".into()),
            databases: vec!["orders".into()],
        },
    )?;
    let bytes = t.forger.build(&forged)?;
    let Some(user) = &a.link.broker_user else {
        return t
            .raw_row(
                "deliver to B as a dead-letter route would",
                false,
                bytes,
                RejectReason::UnknownKey,
                "no broker routes here; B pins control keys",
            )
            .await;
    };
    let probe = Probe::new(&t.b.security, &cluster.ledger);
    // A's own fanout queue: the one queue an older broker user could delete and declare.
    let topic = &cluster.net.topics.guestagent;
    let queue = sealrpc_amqp::topology::fanout_queue(topic, &a.id);
    let b_key = sealrpc_amqp::topology::server_queue(topic, &t.b.id);
    let args = dead_letter_args(&user.credentials.control_exchange, &b_key);
    let blocked = all_refused(user, &queue, (args, true), &bytes, 1).await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (seen, executed) = probe.outcome(Some(&Ok(()))).await;
    let observed = (blocked && seen.is_none()).then_some(Reason::BrokerAccessRefused);
    t.record(
        "dead-letter route to B (own queue, TTL 0)",
        Reason::BrokerAccessRefused,
        (observed, executed),
        "-".into(),
        "guests configure nothing; no write on amq.default",
    );
    Ok(())
}

/// 6b: A parks persistent messages in a durable queue of its own, to outlive its
/// connection and fill the broker. Without a broker: messages for an address nobody
/// serves, which the transport refuses instead of storing.
pub(crate) async fn park_unbounded(t: &mut Attack<'_>) -> Result<(), BoxError> {
    let cluster = t.cluster;
    let a = &cluster.guests[0];
    let payload = vec![0x5au8; 4096];
    let Some(user) = &a.link.broker_user else {
        let sent = cluster
            .net
            .attacker
            .send(Outgoing {
                to: Address::Topic(format!("parking-{}", super::keys::new_tag())),
                payload: Bytes::from(payload),
                reply_to: None,
                expiration: None,
                confirm: true,
            })
            .await;
        let stored_nothing = matches!(&sent, Err(e) if e.kind == TransportErrorKind::NoListener);
        t.record(
            "park messages where nobody listens",
            Reason::NoListener,
            (stored_nothing.then_some(Reason::NoListener), false),
            "-".into(),
            "nothing is stored for an address nobody serves",
        );
        return Ok(());
    };
    // A's own queue: the one queue an older broker user could declare durable.
    let queue = sealrpc_amqp::topology::server_queue(&cluster.net.topics.guestagent, &a.id);
    let parking = (FieldTable::default(), false);
    let blocked = all_refused(user, &queue, parking, &payload, 3000).await?;
    t.record(
        "park 3,000 x 4 KiB in its own durable queue",
        Reason::BrokerAccessRefused,
        (blocked.then_some(Reason::BrokerAccessRefused), false),
        "-".into(),
        "no configure, no write on amq.default; queued: 0",
    );
    Ok(())
}
