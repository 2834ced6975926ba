//! Per-guest broker credentials: a RabbitMQ user per guest whose permissions confine it
//! to its own queues and to the routing keys it may publish.
//!
//! For guest `<id>` with the default [`CredentialPolicy`] (guest topic `guestagent`,
//! control exchange `sealrpc`, call topics `conductor`):
//!
//! | what | regex |
//! |---|---|
//! | configure (declare/delete) | `^(guestagent\.<id>\|guestagent_fanout\.<id>)$` |
//! | write (publish to exchange, bind to queue) | `^(guestagent\.<id>\|guestagent_fanout\.<id>\|sealrpc\|amq\.default)$` |
//! | read (consume queue, bind from exchange) | `^(guestagent\.<id>\|guestagent_fanout\.<id>\|sealrpc\|guestagent_fanout)$` |
//! | topic write on `sealrpc` (routing keys it publishes) | `^(conductor)(\..+)?$` |
//! | topic read on `sealrpc` (routing keys it binds) | `^guestagent\.<id>$` |
//!
//! The guest cannot declare exchanges, so it connects with
//! [`AmqpOptions::declare_exchanges`](crate::AmqpOptions::declare_exchanges) = false and
//! the operator's services create `sealrpc` and `guestagent_fanout` first.
//!
//! Limitation: RabbitMQ cannot restrict routing keys on the default exchange (topic
//! permissions apply to topic exchanges only), and replies by direct reply-to need write
//! on `amq.default`; a guest could therefore publish into another queue by name through
//! the default exchange. Such a message still carries the guest's broker-validated
//! `user-id` (seen as `Delivery::broker_user`) and the guest's signature, so receivers
//! reject it; the broker-level confinement covers consuming, binding and the control
//! exchange.

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
    /// Prefix of guest user names (default `guest-`).
    pub user_prefix: String,
}

impl Default for CredentialPolicy {
    fn default() -> Self {
        Self {
            vhost: "/".to_owned(),
            control_exchange: "sealrpc".to_owned(),
            guest_topic: "guestagent".to_owned(),
            call_topics: vec!["conductor".to_owned()],
            user_prefix: "guest-".to_owned(),
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
        let mut raw = [0u8; 32];
        getrandom::fill(&mut raw).map_err(|e| CredentialError::Random(e.to_string()))?;
        let topic = &policy.guest_topic;
        let own_queue = topology::server_queue(topic, instance_id);
        let own_fanout = topology::fanout_queue(topic, instance_id);
        let own = vec![own_queue.clone(), own_fanout.clone()];
        let write: Vec<String> = own
            .iter()
            .cloned()
            .chain([policy.control_exchange.clone(), "amq.default".to_owned()])
            .collect();
        let read: Vec<String> = own
            .iter()
            .cloned()
            .chain([
                policy.control_exchange.clone(),
                topology::fanout_exchange(topic),
            ])
            .collect();
        let topic_write = if policy.call_topics.is_empty() {
            "^$".to_owned() // nothing
        } else {
            format!(
                "^({})(\\..+)?$",
                policy
                    .call_topics
                    .iter()
                    .map(|t| regex_escape(t))
                    .collect::<Vec<_>>()
                    .join("|")
            )
        };
        Ok(Self {
            user: format!("{}{instance_id}", policy.user_prefix),
            password: hex::encode(raw),
            vhost: policy.vhost.clone(),
            permissions: VhostPermissions {
                configure: alternation(&own),
                write: alternation(&write),
                read: alternation(&read),
            },
            topic_permissions: vec![TopicPermissions {
                exchange: policy.control_exchange.clone(),
                write: topic_write,
                read: format!("^{}$", regex_escape(&own_queue)),
            }],
            listen: ListenSpec {
                topic: topic.clone(),
                server: instance_id.to_owned(),
                shared: false,
                fanout: true,
            },
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
