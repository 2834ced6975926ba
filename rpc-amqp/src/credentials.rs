//! Per-guest broker credentials: a RabbitMQ user per guest that can deliver only to the
//! queues of the services it may call and to the reply inbox of a call it answers, and
//! can configure nothing.
//!
//! For guest `<id>` with the default [`CredentialPolicy`] (guest topic `guestagent`,
//! control exchange `sealrpc`, call topics `conductor`):
//!
//! | what | regex |
//! |---|---|
//! | configure (declare/delete anything) | `^$` (nothing) |
//! | write (publish to exchange, bind to queue) | `^(conductor_ingress\|sealrpc_reply)$` |
//! | read (consume queue, bind from exchange) | `^(guestagent\.<id>\|guestagent_fanout\.<id>)$` |
//! | topic write on `conductor_ingress` | `^(conductor)(\..+)?$` |
//! | topic write on `sealrpc_reply` | `^sealrpc-reply\.[0-9a-f]{24}$` |
//! | topic read on both | `^$` (binds nothing) |
//!
//! With [`CredentialPolicy::notification_topics`] (e.g. `notifications`), write also
//! covers the notification exchange `sealrpc_notify`, with topic write
//! `^(notifications)\.(audit|debug|info|warn|error|critical|sample)$` there and topic read
//! `^$`; read is unchanged (no notification queue).
//!
//! The guest's two queues are declared and bound by the operator
//! ([`AmqpTransport::provision_guest`](crate::AmqpTransport::provision_guest)) with fixed
//! arguments (durable, capped, no dead-lettering); the guest connects with
//! [`AmqpOptions::declare_exchanges`](crate::AmqpOptions::declare_exchanges) = false and
//! only checks them. [`crate::admin`] applies the user, its permissions, its connection
//! and channel limits and the guest topic's operator policy.
//!
//! Why these and not fewer: an exchange the guest may write to must lead only to queues
//! it may reach, whatever it puts in the routing key or the `CC`/`BCC` headers (RabbitMQ
//! checks topic permissions on the routing key only, and not on dead-lettering or
//! alternate exchanges). `<topic>_ingress` has only that topic's queues bound, and
//! `<control>_reply` only the control plane's reply queues, each bound with an
//! unguessable route token that the guest learns only from a call it receives.

use std::fmt;

use sealrpc_core::transport::ListenSpec;

use crate::topology;

/// Which names a guest's permissions are built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialPolicy {
    /// The RabbitMQ virtual host (default `/`).
    pub vhost: String,
    /// The control exchange (default `sealrpc`).
    pub control_exchange: String,
    /// The topic guests serve (default `guestagent`): guest `<id>` consumes
    /// `guestagent.<id>` and `guestagent_fanout.<id>`.
    pub guest_topic: String,
    /// Topics a guest may call or cast to (default `conductor`), as `topic` or `topic.<server>`.
    pub call_topics: Vec<String>,
    /// Notification topics a guest may publish to, at any priority (default none; Trove's
    /// guests use `notifications`): write on the notification exchange `<control>_notify`
    /// with routing keys `<topic>.<priority>` only, and no read of any notification queue.
    pub notification_topics: Vec<String>,
    /// Prefix of guest user names (default `guest-`).
    pub user_prefix: String,
    /// The resource limits each guest gets.
    pub limits: GuestLimits,
}

/// Per-guest resource limits, applied by the operator side ([`crate::admin`] and
/// [`AmqpTransport::provision_guest`](crate::AmqpTransport::provision_guest)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestLimits {
    /// Connections the guest's user may hold at once (`set_user_limits max-connections`).
    pub max_connections: u32,
    /// Channels the guest's user may hold at once, over all its connections
    /// (`max-channels`). A transport opens one per listener, up to `publisher_channels`
    /// to publish and `publisher_channels` per reply inbox, and one briefly to declare.
    pub max_channels: u32,
    /// Messages each guest queue holds at most (further publishes are refused).
    pub max_queue_length: u32,
    /// Bytes of message bodies each guest queue holds at most.
    pub max_queue_bytes: u64,
    /// A guest queue unused (no consumer, no re-check) this long is deleted by the broker;
    /// the guest is then re-provisioned (provisioning is idempotent). `None`: never.
    pub queue_expires: Option<std::time::Duration>,
}

impl Default for GuestLimits {
    fn default() -> Self {
        Self {
            max_connections: 2,
            max_channels: 24,
            max_queue_length: 1000,
            max_queue_bytes: 64 * 1024 * 1024,
            queue_expires: Some(std::time::Duration::from_secs(7 * 24 * 3600)),
        }
    }
}

/// A RabbitMQ operator policy (`rabbitmqctl set_operator_policy`) over the guest topic's
/// queues: the broker applies the stricter of it and a queue's own arguments, so it caps
/// also queues that old-style guest users declared themselves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorPolicy {
    /// The policy's name.
    pub name: String,
    /// The queue-name regex it applies to.
    pub pattern: String,
    /// Its definition (JSON object).
    pub definition: String,
    /// Its priority (the highest matching operator policy applies).
    pub priority: u32,
}

/// A queue the operator declares for a guest, and where it is bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestQueue {
    /// The queue.
    pub name: String,
    /// The exchange it is bound to.
    pub exchange: String,
    /// The binding's routing key.
    pub routing_key: String,
}

impl Default for CredentialPolicy {
    fn default() -> Self {
        Self {
            vhost: "/".to_owned(),
            control_exchange: "sealrpc".to_owned(),
            guest_topic: "guestagent".to_owned(),
            call_topics: vec!["conductor".to_owned()],
            notification_topics: Vec::new(),
            user_prefix: "guest-".to_owned(),
            limits: GuestLimits::default(),
        }
    }
}

impl CredentialPolicy {
    /// The operator policy capping every guest queue of this policy's guest topic (one for
    /// the whole fleet: set it once, e.g. by [`crate::admin::Rabbitmqctl::apply`]).
    pub fn operator_policy(&self) -> OperatorPolicy {
        let l = &self.limits;
        let mut def = format!(
            "{{\"max-length\":{},\"max-length-bytes\":{}",
            l.max_queue_length, l.max_queue_bytes
        );
        if let Some(e) = l.queue_expires {
            def.push_str(&format!(",\"expires\":{}", e.as_millis().max(1)));
        }
        def.push('}');
        OperatorPolicy {
            name: format!("sealrpc-guests-{}", self.guest_topic),
            pattern: format!("^{}(_fanout)?\\.", regex_escape(&self.guest_topic)),
            definition: def,
            priority: 100,
        }
    }
}

/// vhost permissions: three regexes over exchange and queue names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VhostPermissions {
    /// Resources the user may declare and delete.
    pub configure: String,
    /// Exchanges it may publish to; queues it may bind.
    pub write: String,
    /// Queues it may consume; exchanges it may bind from.
    pub read: String,
}

/// Topic permissions on one topic exchange: regexes over routing keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicPermissions {
    /// The topic exchange.
    pub exchange: String,
    /// Routing keys the user may publish with.
    pub write: String,
    /// Routing keys the user may bind with.
    pub read: String,
}

/// Why credentials could not be generated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    /// A name contains characters outside `[A-Za-z0-9_-]` (and `.` for topics), or is empty.
    #[error("invalid {what}: {value:?} (allowed: letters, digits, '_', '-'{extra})")]
    InvalidName {
        /// Which name.
        what: &'static str,
        /// The value.
        value: String,
        /// Extra allowed characters, for the message.
        extra: &'static str,
    },
    /// A call topic equals the guest topic (it would open other guests' queues).
    #[error("call topic {0:?} is the guest topic")]
    CallTopicIsGuestTopic(String),
    /// The OS random source failed.
    #[error("random source failed: {0}")]
    Random(String),
}

/// A guest's broker user, password and permissions. `Debug` redacts the password.
#[derive(Clone, PartialEq, Eq)]
pub struct GuestCredentials {
    /// The user name (`<prefix><instance id>`).
    pub user: String,
    /// The generated password (64 hex characters from the OS random source).
    pub password: String,
    /// The virtual host.
    pub vhost: String,
    /// vhost permissions.
    pub permissions: VhostPermissions,
    /// Topic permissions (on the control exchange).
    pub topic_permissions: Vec<TopicPermissions>,
    /// What the guest listens to: its own `topic.server` queue and its fanout, not the
    /// shared topic queue.
    pub listen: ListenSpec,
    /// The control exchange its server queue is bound to.
    pub control_exchange: String,
    /// The queues the operator declares for it (server queue, fanout queue).
    pub queues: Vec<GuestQueue>,
    /// Its resource limits.
    pub limits: GuestLimits,
    /// The guest topic's operator policy (the same for every guest of the policy).
    pub operator_policy: OperatorPolicy,
}

impl fmt::Debug for GuestCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GuestCredentials")
            .field("user", &self.user)
            .field("password", &"***")
            .field("vhost", &self.vhost)
            .field("permissions", &self.permissions)
            .field("topic_permissions", &self.topic_permissions)
            .field("listen", &self.listen)
            .field("control_exchange", &self.control_exchange)
            .field("queues", &self.queues)
            .field("limits", &self.limits)
            .field("operator_policy", &self.operator_policy)
            .finish()
    }
}

fn check(what: &'static str, v: &str, dots: bool) -> Result<(), CredentialError> {
    let ok = !v.is_empty()
        && v.len() <= 128
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || (dots && c == '.'));
    if ok {
        Ok(())
    } else {
        Err(CredentialError::InvalidName {
            what,
            value: v.to_owned(),
            extra: if dots { ", '.'" } else { "" },
        })
    }
}

/// Escapes a (validated) name for use inside a regex.
pub fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 4);
    for c in s.chars() {
        if !(c.is_ascii_alphanumeric() || c == '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn alternation(names: &[String]) -> String {
    format!(
        "^({})$",
        names
            .iter()
            .map(|n| regex_escape(n))
            .collect::<Vec<_>>()
            .join("|")
    )
}

impl GuestCredentials {
    /// Credentials for guest `instance_id` under `policy`, with a fresh random password.
    pub fn for_guest(
        instance_id: &str,
        policy: &CredentialPolicy,
    ) -> Result<Self, CredentialError> {
        check("instance id", instance_id, false)?;
        check("guest topic", &policy.guest_topic, true)?;
        check("control exchange", &policy.control_exchange, true)?;
        check(
            "user prefix",
            policy.user_prefix.trim_end_matches('-'),
            false,
        )?;
        for t in &policy.call_topics {
            check("call topic", t, true)?;
            if *t == policy.guest_topic {
                return Err(CredentialError::CallTopicIsGuestTopic(t.clone()));
            }
        }
        for t in &policy.notification_topics {
            check("notification topic", t, true)?;
        }
        let mut raw = [0u8; 32];
        getrandom::fill(&mut raw).map_err(|e| CredentialError::Random(e.to_string()))?;
        let topic = &policy.guest_topic;
        let own_queue = topology::server_queue(topic, instance_id);
        let own_fanout = topology::fanout_queue(topic, instance_id);
        let reply_exchange = topology::reply_exchange(&policy.control_exchange);
        let notify_exchange = topology::notify_exchange(&policy.control_exchange);
        let notifies = !policy.notification_topics.is_empty();
        let write: Vec<String> = policy
            .call_topics
            .iter()
            .map(|t| topology::ingress_exchange(t))
            .chain([reply_exchange.clone()])
            .chain(notifies.then(|| notify_exchange.clone()))
            .collect();
        let mut topic_permissions: Vec<TopicPermissions> = policy
            .call_topics
            .iter()
            .map(|t| TopicPermissions {
                exchange: topology::ingress_exchange(t),
                write: format!("^({})(\\..+)?$", regex_escape(t)),
                read: "^$".to_owned(),
            })
            .collect();
        topic_permissions.push(TopicPermissions {
            exchange: reply_exchange,
            write: format!(
                "^{}[0-9a-f]{{{}}}$",
                regex_escape(topology::REPLY_TOKEN_PREFIX),
                topology::REPLY_TOKEN_HEX
            ),
            read: "^$".to_owned(),
        });
        if notifies {
            // Only pool queues are bound there: a guest reaches the pools of its topics,
            // at any priority, and reads none of them.
            let priorities: Vec<&str> = sealrpc_core::notify::Priority::ALL
                .iter()
                .map(|p| p.as_str())
                .collect();
            topic_permissions.push(TopicPermissions {
                exchange: notify_exchange,
                write: format!(
                    "{}\\.({})$",
                    alternation(&policy.notification_topics).trim_end_matches('$'),
                    priorities.join("|")
                ),
                read: "^$".to_owned(),
            });
        }
        Ok(Self {
            user: format!("{}{instance_id}", policy.user_prefix),
            password: hex::encode(raw),
            vhost: policy.vhost.clone(),
            permissions: VhostPermissions {
                configure: "^$".to_owned(),
                write: alternation(&write),
                read: alternation(&[own_queue.clone(), own_fanout.clone()]),
            },
            topic_permissions,
            listen: ListenSpec {
                topic: topic.clone(),
                server: instance_id.to_owned(),
                shared: false,
                fanout: true,
            },
            control_exchange: policy.control_exchange.clone(),
            queues: vec![
                GuestQueue {
                    name: own_queue.clone(),
                    exchange: policy.control_exchange.clone(),
                    routing_key: own_queue,
                },
                GuestQueue {
                    name: own_fanout,
                    exchange: topology::fanout_exchange(topic),
                    routing_key: String::new(),
                },
            ],
            limits: policy.limits.clone(),
            operator_policy: policy.operator_policy(),
        })
    }

    /// An `amqp[s]://` URL for this user at `host:port` (user, password and vhost
    /// percent-encoded), to put in the guest's configuration.
    pub fn url(&self, scheme: &str, host_port: &str) -> String {
        format!(
            "{scheme}://{}:{}@{host_port}/{}",
            pct(&self.user),
            pct(&self.password),
            pct(&self.vhost)
        )
    }
}

fn pct(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
#[path = "credentials_tests.rs"]
mod tests;
