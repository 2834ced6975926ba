//! A small guest fleet on the real broker for the isolation and limit tests: an operator
//! transport, guests provisioned with `GuestCredentials` + `admin` + `provision_guest`,
//! and cleanup of every user, queue, exchange and policy made.
//!
//! `SEALRPC_ORIGINAL_CREDENTIALS=1` gives the guests the permissions the original
//! credential generation made (configure on their own queues, write on the control and
//! default exchanges, read on the exchanges they bind from), to check that the tests fail
//! against it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests
#![allow(dead_code)]

use std::time::Duration;

use lapin::{Connection, ConnectionProperties};
use sealrpc_amqp::admin::Rabbitmqctl;
use sealrpc_amqp::credentials::{
    CredentialPolicy, GuestCredentials, GuestLimits, TopicPermissions, regex_escape,
};
use sealrpc_amqp::{AmqpOptions, AmqpTransport, topology};

/// The broker URL of the default (operator) user.
pub fn admin_url() -> String {
    AmqpOptions::from_env().url
}

/// A unique tag.
pub fn uniq(prefix: &str) -> String {
    let mut b = [0u8; 5];
    getrandom::fill(&mut b).unwrap();
    format!("{prefix}-{}", hex::encode(b))
}

/// A credential policy with unique names: guest topic `<tag>-ga`, call topic `<tag>-cond`.
pub fn policy(tag: &str, limits: GuestLimits) -> CredentialPolicy {
    CredentialPolicy {
        control_exchange: format!("{tag}-ctl"),
        guest_topic: format!("{tag}-ga"),
        call_topics: vec![format!("{tag}-cond")],
        user_prefix: format!("{tag}-guest-"),
        limits,
        ..CredentialPolicy::default()
    }
}

/// True when the tests run against the original credential generation.
pub fn original() -> bool {
    std::env::var("SEALRPC_ORIGINAL_CREDENTIALS").is_ok_and(|v| v == "1")
}

/// `c` with the original generation's permissions.
fn with_original_permissions(mut c: GuestCredentials, p: &CredentialPolicy) -> GuestCredentials {
    let own = [c.queues[0].name.clone(), c.queues[1].name.clone()];
    let alt = |v: &[String]| {
        format!(
            "^({})$",
            v.iter()
                .map(|n| regex_escape(n))
                .collect::<Vec<_>>()
                .join("|")
        )
    };
    let mut write = own.to_vec();
    write.extend([p.control_exchange.clone(), "amq.default".into()]);
    let mut read = own.to_vec();
    read.extend([
        p.control_exchange.clone(),
        topology::fanout_exchange(&p.guest_topic),
    ]);
    c.permissions.configure = alt(&own);
    c.permissions.write = alt(&write);
    c.permissions.read = alt(&read);
    c.topic_permissions = vec![TopicPermissions {
        exchange: p.control_exchange.clone(),
        write: format!(
            "^({})(\\..+)?$",
            p.call_topics
                .iter()
                .map(|t| regex_escape(t))
                .collect::<Vec<_>>()
                .join("|")
        ),
        read: format!("^{}$", regex_escape(&own[0])),
    }];
    c
}

/// The operator's side and the guests it provisioned.
pub struct Fleet {
    /// The policy.
    pub policy: CredentialPolicy,
    /// The operator's transport (the broker's admin user).
    pub operator: AmqpTransport,
    /// The guests' credentials.
    pub guests: Vec<GuestCredentials>,
}

impl Fleet {
    /// Provisions guests `ids` under `policy`: user, permissions, limits, operator policy
    /// (rabbitmqctl) and queues (the operator's transport).
    pub async fn start(policy: CredentialPolicy, ids: &[&str]) -> Self {
        sealrpc_amqp::wait_for_broker(&admin_url(), Duration::from_secs(30))
            .await
            .unwrap();
        let operator = AmqpTransport::connect(AmqpOptions {
            control_exchange: policy.control_exchange.clone(),
            ..AmqpOptions::from_env()
        })
        .await
        .unwrap();
        let ctl = Rabbitmqctl::default();
        let mut guests = Vec::new();
        for id in ids {
            let mut c = GuestCredentials::for_guest(id, &policy).unwrap();
            if original() {
                c = with_original_permissions(c, &policy);
            }
            let applied = ctl.apply_async(&c).await;
            guests.push(c.clone());
            let provisioned = match &applied {
                Err(e) => Err(e.to_string()),
                Ok(()) if original() => {
                    original_side(&c).await;
                    Ok(())
                }
                Ok(()) => operator
                    .provision_guest(&c)
                    .await
                    .map_err(|e| e.to_string()),
            };
            if let Err(e) = provisioned {
                let fleet = Self {
                    policy,
                    operator,
                    guests,
                };
                fleet.cleanup(&[], &[]).await;
                panic!("provisioning failed: {e}");
            }
        }
        Self {
            policy,
            operator,
            guests,
        }
    }

    /// Options of guest `i`'s own transport.
    pub fn guest_opts(&self, i: usize) -> AmqpOptions {
        AmqpOptions {
            url: self.guests[i].url("amqp", "127.0.0.1:5672"),
            control_exchange: self.policy.control_exchange.clone(),
            declare_exchanges: false,
            publisher_channels: 2,
            ..AmqpOptions::from_env()
        }
    }

    /// A raw AMQP connection as guest `i`.
    pub async fn raw(&self, i: usize) -> Connection {
        Connection::connect(
            &self.guests[i].url("amqp", "127.0.0.1:5672"),
            ConnectionProperties::default(),
        )
        .await
        .unwrap()
    }

    /// Deletes every user, queue, exchange and the operator policy (also `extra_queues`
    /// and `extra_exchanges`).
    pub async fn cleanup(&self, extra_queues: &[String], extra_exchanges: &[String]) {
        let ctl = Rabbitmqctl::default();
        for c in &self.guests {
            let _ = self.operator.deprovision_guest(c).await;
        }
        // Closed first: its listeners would re-declare what is deleted below.
        self.operator.close().await;
        for c in &self.guests {
            ctl.delete_user_async(&c.user).await.unwrap();
        }
        let op = self.policy.operator_policy();
        ctl.clear_operator_policy_async(&self.policy.vhost, &op.name)
            .await
            .unwrap();
        let mut exchanges = vec![
            self.policy.control_exchange.clone(),
            topology::reply_exchange(&self.policy.control_exchange),
            topology::fanout_exchange(&self.policy.guest_topic),
        ];
        exchanges.extend(
            self.policy
                .call_topics
                .iter()
                .map(|t| topology::ingress_exchange(t)),
        );
        exchanges.extend(extra_exchanges.iter().cloned());
        let mut queues: Vec<String> = self
            .guests
            .iter()
            .flat_map(|c| c.queues.iter().map(|q| q.name.clone()))
            .collect();
        queues.extend(extra_queues.iter().cloned());
        delete(&queues, &exchanges).await;
    }
}

/// What the original generation left: no user limits, no operator policy, and the
/// guest's queues as it declared them itself (no arguments), bound the same way.
async fn original_side(c: &GuestCredentials) {
    use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
    use lapin::types::FieldTable;
    let ctl = std::process::Command::new("rabbitmqctl")
        .args(["-q", "clear_user_limits", &c.user, "all"])
        .output()
        .unwrap();
    assert!(ctl.status.success());
    let _ = Rabbitmqctl::default().clear_operator_policy(&c.vhost, &c.operator_policy.name);
    let conn = Connection::connect(&admin_url(), ConnectionProperties::default())
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    ch.exchange_declare(
        c.queues[1].exchange.as_str().into(),
        lapin::ExchangeKind::Fanout,
        ExchangeDeclareOptions {
            auto_delete: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await
    .unwrap();
    for q in &c.queues {
        ch.queue_declare(
            q.name.as_str().into(),
            QueueDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
        ch.queue_bind(
            q.name.as_str().into(),
            q.exchange.as_str().into(),
            q.routing_key.as_str().into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    }
    let _ = conn.close(200, "original".into()).await;
}

/// The scenario task's result, to take after cleanup: re-raises its panic then.
pub fn unwind_after<T: Send + 'static>(r: Result<T, tokio::task::JoinError>) -> impl FnOnce() -> T {
    move || match r {
        Ok(v) => v,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => panic!("scenario task failed: {e}"),
    }
}

/// Deletes queues and exchanges as the admin user.
pub async fn delete(queues: &[String], exchanges: &[String]) {
    use lapin::options::{ExchangeDeleteOptions, QueueDeleteOptions};
    let conn = Connection::connect(&admin_url(), ConnectionProperties::default())
        .await
        .unwrap();
    for q in queues {
        let ch = conn.create_channel().await.unwrap();
        let _ = ch
            .queue_delete(q.as_str().into(), QueueDeleteOptions::default())
            .await;
    }
    for x in exchanges {
        let ch = conn.create_channel().await.unwrap();
        let _ = ch
            .exchange_delete(x.as_str().into(), ExchangeDeleteOptions::default())
            .await;
    }
    let _ = conn.close(200, "cleanup".into()).await;
}

/// Messages in `queue` (passive declare as the admin user).
pub async fn depth(queue: &str) -> u32 {
    let conn = Connection::connect(&admin_url(), ConnectionProperties::default())
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    let n = ch
        .queue_declare(
            queue.into(),
            lapin::options::QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            lapin::types::FieldTable::default(),
        )
        .await
        .unwrap()
        .message_count();
    let _ = conn.close(200, "depth".into()).await;
    n
}
