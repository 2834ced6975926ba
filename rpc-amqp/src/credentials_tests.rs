//! Unit tests of `credentials`.
use super::*;

#[test]
fn regexes_are_anchored_and_escaped() {
    let c = GuestCredentials::for_guest("a1b2", &CredentialPolicy::default()).unwrap();
    assert_eq!(c.user, "guest-a1b2");
    assert_eq!(c.password.len(), 64);
    assert_eq!(c.permissions.configure, "^$");
    assert_eq!(c.permissions.write, r"^(conductor_ingress|sealrpc_reply)$");
    assert_eq!(
        c.permissions.read,
        r"^(guestagent\.a1b2|guestagent_fanout\.a1b2)$"
    );
    assert_eq!(c.topic_permissions.len(), 2);
    assert_eq!(c.topic_permissions[0].exchange, "conductor_ingress");
    assert_eq!(c.topic_permissions[0].write, r"^(conductor)(\..+)?$");
    assert_eq!(c.topic_permissions[0].read, "^$");
    assert_eq!(c.topic_permissions[1].exchange, "sealrpc_reply");
    assert_eq!(
        c.topic_permissions[1].write,
        r"^sealrpc\-reply\.[0-9a-f]{24}$"
    );
    assert_eq!(c.topic_permissions[1].read, "^$");
    let names: Vec<_> = c
        .queues
        .iter()
        .map(|q| (&q.name[..], &q.exchange[..], &q.routing_key[..]))
        .collect();
    assert_eq!(
        names,
        vec![
            ("guestagent.a1b2", "sealrpc", "guestagent.a1b2"),
            ("guestagent_fanout.a1b2", "guestagent_fanout", ""),
        ]
    );
    let op = &c.operator_policy;
    assert_eq!(op.pattern, r"^guestagent(_fanout)?\.");
    assert_eq!(
        op.definition,
        r#"{"max-length":1000,"max-length-bytes":67108864,"expires":604800000}"#
    );
    assert!(!format!("{c:?}").contains(&c.password));
    assert_eq!(
        c.url("amqp", "h:1"),
        format!("amqp://guest-a1b2:{}@h:1/%2F", c.password)
    );
    let d = GuestCredentials::for_guest("a1b2", &CredentialPolicy::default()).unwrap();
    assert_ne!(c.password, d.password);
}

#[test]
fn rejects_bad_names() {
    let p = CredentialPolicy::default();
    assert!(GuestCredentials::for_guest("a.b", &p).is_err());
    assert!(GuestCredentials::for_guest("a|.*", &p).is_err());
    assert!(GuestCredentials::for_guest("", &p).is_err());
    assert!(GuestCredentials::for_guest("{username}", &p).is_err());
    let bad = CredentialPolicy {
        call_topics: vec!["guestagent".into()],
        ..CredentialPolicy::default()
    };
    assert!(matches!(
        GuestCredentials::for_guest("x", &bad),
        Err(CredentialError::CallTopicIsGuestTopic(_))
    ));
}

#[test]
fn reply_tokens_are_exact() {
    use crate::topology::is_reply_token;
    assert!(is_reply_token(&format!(
        "sealrpc-reply.{}",
        "0a".repeat(12)
    )));
    for bad in [
        "sealrpc-reply.".to_owned(),
        format!("sealrpc-reply.{}", "0A".repeat(12)),
        format!("sealrpc-reply.{}", "0a".repeat(13)),
        format!("sealrpc-reply.{}x", "0a".repeat(12)),
        format!("amq.rabbitmq.reply-to.{}", "0a".repeat(12)),
        format!("guestagent.{}", "0a".repeat(12)),
    ] {
        assert!(!is_reply_token(&bad), "{bad}");
    }
}

#[test]
fn admin_applies_limits_and_the_operator_policy_without_the_password() {
    let c = GuestCredentials::for_guest("a1b2", &CredentialPolicy::default()).unwrap();
    let cmds = crate::admin::Rabbitmqctl::commands(&c);
    let names: Vec<&str> = cmds.iter().map(|c| c[0].as_str()).collect();
    assert_eq!(
        names,
        [
            "add_user",
            "set_permissions",
            "set_user_limits",
            "set_operator_policy",
            "set_topic_permissions",
            "set_topic_permissions"
        ]
    );
    assert_eq!(
        cmds[2],
        [
            "set_user_limits",
            "guest-a1b2",
            r#"{"max-connections":2,"max-channels":24}"#
        ]
    );
    assert_eq!(
        cmds[3][7..],
        [
            "sealrpc-guests-guestagent".to_owned(),
            r"^guestagent(_fanout)?\.".to_owned(),
            c.operator_policy.definition.clone(),
        ]
    );
    assert!(cmds.iter().flatten().all(|a| !a.contains(&c.password)));
}

#[test]
fn notification_topics_add_a_write_on_the_notification_exchange_only() {
    let p = CredentialPolicy {
        notification_topics: vec!["notifications".into()],
        ..CredentialPolicy::default()
    };
    let c = GuestCredentials::for_guest("a1b2", &p).unwrap();
    assert_eq!(c.permissions.configure, "^$");
    assert_eq!(
        c.permissions.write,
        r"^(conductor_ingress|sealrpc_reply|sealrpc_notify)$"
    );
    assert_eq!(
        c.permissions.read, r"^(guestagent\.a1b2|guestagent_fanout\.a1b2)$",
        "no notification queue is readable"
    );
    let n = c.topic_permissions.last().unwrap();
    assert_eq!(n.exchange, "sealrpc_notify");
    assert_eq!(
        n.write,
        r"^(notifications)\.(audit|debug|info|warn|error|critical|sample)$"
    );
    assert_eq!(n.read, "^$");
    assert!(
        GuestCredentials::for_guest(
            "a1b2",
            &CredentialPolicy {
                notification_topics: vec!["a|.*".into()],
                ..CredentialPolicy::default()
            }
        )
        .is_err()
    );
}
