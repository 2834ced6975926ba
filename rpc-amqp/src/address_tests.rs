//! Unit tests of `address`.
use super::*;

#[test]
fn redacts_password() {
    assert_eq!(
        redact("amqp://u:p@h:1/%2f"),
        "amqp://u:***@h:1/%2f".to_owned()
    );
    assert_eq!(redact("amqp://h:1/"), "amqp://h:1/");
    assert_eq!(redact("amqps://u@h"), "amqps://u@h");
    assert_eq!(redact("amqp://u:p@ss@h/x"), "amqp://u:***@h/x");
}

#[test]
fn parses_default() {
    let b = parse(crate::options::DEFAULT_URL).unwrap();
    assert_eq!(b.uri.authority.host, "127.0.0.1");
    assert_eq!(b.uri.authority.port, 5672);
    assert_eq!(b.uri.vhost, "/");
    assert_eq!(b.user(), "guest");
    assert_eq!(b.uri.authority.userinfo.password, "guest");
}

#[test]
fn parses_variants() {
    let b = parse("amqps://a%40b:p%3Aw@[::1]:5999/vh?heartbeat=3").unwrap();
    assert_eq!(b.uri.scheme, AMQPScheme::AMQPS);
    assert_eq!(b.user(), "a@b");
    assert_eq!(b.uri.authority.userinfo.password, "p:w");
    assert_eq!(b.uri.authority.host, "::1");
    assert_eq!(b.uri.authority.port, 5999);
    assert_eq!(b.uri.vhost, "vh");
    assert_eq!(b.uri.query.heartbeat, Some(3));
    assert_eq!(parse("amqp://h").unwrap().uri.vhost, "/");
    assert!(parse("http://h").is_err());
    assert!(
        parse("amqp://u:secret@h:notaport")
            .unwrap_err()
            .message
            .contains("***")
    );
}

#[test]
fn a_password_with_slash_or_query_chars_is_never_shown() {
    // The user info ends at the last `@`, not at the first `/` or `?`.
    for url in [
        "amqp://u:sec/ret@h:1/x",
        "amqp://u:sec?ret@h:1/x",
        "amqp://u:s/e?c@h:bad",
    ] {
        let shown = redact(url);
        assert!(!shown.contains("sec") && !shown.contains("ret"), "{shown}");
        if let Err(e) = parse(url) {
            assert!(
                !e.message.contains("sec") && !e.message.contains("e?c"),
                "{e}"
            );
        }
    }
    let b = parse("amqp://u:sec/ret@h:1/x").unwrap();
    assert_eq!(b.uri.authority.userinfo.password, "sec/ret");
    assert_eq!(b.uri.authority.host, "h");
    assert_eq!(b.uri.vhost, "x");
}
