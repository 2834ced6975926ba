//! Unit tests of `credentials`.
use super::*;

#[test]
fn regexes_are_anchored_and_escaped() {
    let c = GuestCredentials::for_guest("a1b2", &CredentialPolicy::default()).unwrap();
    assert_eq!(c.user, "guest-a1b2");
    assert_eq!(c.password.len(), 64);
    assert_eq!(
        c.permissions.configure,
        r"^(guestagent\.a1b2|guestagent_fanout\.a1b2)$"
    );
    assert_eq!(
        c.permissions.write,
        r"^(guestagent\.a1b2|guestagent_fanout\.a1b2|sealrpc|amq\.default)$"
    );
    assert_eq!(
        c.permissions.read,
        r"^(guestagent\.a1b2|guestagent_fanout\.a1b2|sealrpc|guestagent_fanout)$"
    );
    assert_eq!(c.topic_permissions[0].write, r"^(conductor)(\..+)?$");
    assert_eq!(c.topic_permissions[0].read, r"^guestagent\.a1b2$");
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
