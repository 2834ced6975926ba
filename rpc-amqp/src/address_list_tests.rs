//! Unit tests of `address_list`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests
use super::*;
use lapin::uri::AMQPScheme;
use proptest::prelude::*;

fn hosts(l: &BrokerList) -> Vec<(String, u16, String)> {
    l.brokers
        .iter()
        .map(|b| {
            let a = &b.uri.authority;
            (a.host.clone(), a.port, b.uri.vhost.clone())
        })
        .collect()
}

#[test]
fn one_url_is_a_list_of_one() {
    let l = parse_list("amqp://u:p@h:1/v", FailoverOrder::InOrder).unwrap();
    assert_eq!(hosts(&l), [("h".into(), 1, "v".into())]);
    assert_eq!(l.redacted, "amqp://u:***@h:1/v");
    assert_eq!(l.user(), "u");
}

#[test]
fn parses_a_list_of_amqp_urls() {
    let l = parse_list(
        "amqp://u:p1@h1:5681/%2f, amqps://u:p2@h2:5682/vh?heartbeat=3,amqp://u:p3@[::1]",
        FailoverOrder::InOrder,
    )
    .unwrap();
    assert_eq!(
        hosts(&l),
        [
            ("h1".into(), 5681, "/".into()),
            ("h2".into(), 5682, "vh".into()),
            ("::1".into(), 5672, "/".into())
        ]
    );
    assert_eq!(l.brokers[1].uri.scheme, AMQPScheme::AMQPS);
    assert_eq!(l.brokers[1].uri.query.heartbeat, Some(3));
    assert_eq!(l.brokers[0].uri.query.heartbeat, None);
    assert_eq!(
        l.redacted,
        "[amqp://u:***@h1:5681/%2f, amqps://u:***@h2:5682/vh?heartbeat=3, amqp://u:***@[::1]]"
    );
}

#[test]
fn parses_the_oslo_rabbit_form() {
    let l = parse_list(
        "rabbit://nova:s1@ctl1:5672,nova:s2@ctl2:5673,nova:s3@ctl3/openstack?heartbeat=5",
        FailoverOrder::InOrder,
    )
    .unwrap();
    assert_eq!(
        hosts(&l),
        [
            ("ctl1".into(), 5672, "openstack".into()),
            ("ctl2".into(), 5673, "openstack".into()),
            ("ctl3".into(), 5672, "openstack".into())
        ]
    );
    for b in &l.brokers {
        assert_eq!(b.uri.scheme, AMQPScheme::AMQP);
        assert_eq!(b.uri.query.heartbeat, Some(5));
        assert_eq!(b.user(), "nova");
    }
    assert_eq!(l.brokers[1].uri.authority.userinfo.password, "s2");
    let tls = parse_list(
        "rabbit://u:p@a:5671,u:p@b:5671/?ssl=1",
        FailoverOrder::InOrder,
    )
    .unwrap();
    assert!(
        tls.brokers
            .iter()
            .all(|b| b.uri.scheme == AMQPScheme::AMQPS)
    );
    assert_eq!(tls.brokers[0].uri.vhost, "");
    assert!(!tls.redacted.contains(":p@"));
}

#[test]
fn shuffle_keeps_every_broker() {
    let urls = (1..=8)
        .map(|i| format!("amqp://u:p@h{i}:1/"))
        .collect::<Vec<_>>()
        .join(",");
    let mut seen_other_first = false;
    for _ in 0..64 {
        let l = parse_list(&urls, FailoverOrder::Shuffle).unwrap();
        let mut names: Vec<_> = hosts(&l).into_iter().map(|h| h.0).collect();
        seen_other_first |= names[0] != "h1";
        names.sort();
        assert_eq!(names, (1..=8).map(|i| format!("h{i}")).collect::<Vec<_>>());
    }
    assert!(seen_other_first, "64 shuffles of 8 all started with h1");
    let l = parse_list(&urls, FailoverOrder::InOrder).unwrap();
    assert_eq!(
        l.round_from(6).collect::<Vec<_>>(),
        [6, 7, 0, 1, 2, 3, 4, 5]
    );
}

#[test]
fn rejects_bad_lists_without_echoing_them() {
    let cases = [
        ("amqp://u:pw1@h1,,amqp://u:pw2@h2", "stray"),
        ("u:pw1@h1,amqp://u:pw2@h2", "scheme"),
        ("amqp://u:pw1@h1/v,u:pw2@h2/v", "vhost"),
        ("amqp://u:pw1@h1,amqp://other:pw2@h2", "same broker user"),
        ("amqp://u:pw1@h1,amqp://u:pw2@h2:port", "bad port"),
        ("amqp://u:pw1@h1,http://u:pw2@h2", "unsupported scheme"),
        // A raw ',' in a password: the halves do not parse as addresses.
        ("amqp://u:pw1,pw2@h1", "%2C"),
        ("amqp://u:pw1@h1,amqp://u:pw2,pw3@h2", "%2C"),
        ("amqp://u:pw1@h1,u@h2", "without a password"),
    ];
    for (input, why) in cases {
        let e = parse_list(input, FailoverOrder::InOrder).unwrap_err();
        assert!(e.message.contains(why), "{input}: {}", e.message);
        assert!(!e.message.contains("pw"), "{input}: {}", e.message);
        assert!(!redact_list(input).contains("pw"), "{input}");
    }
}

#[test]
fn join_escapes_commas() {
    let s = join(["amqp://u:a,b@h1/", "amqp://u:c@h2/"]);
    assert_eq!(s, "amqp://u:a%2Cb@h1/,amqp://u:c@h2/");
    let l = parse_list(&s, FailoverOrder::InOrder).unwrap();
    assert_eq!(l.brokers[0].uri.authority.userinfo.password, "a,b");
    assert!(!l.redacted.contains("a%2Cb"));
}

/// Password characters that appear nowhere else in the generated URLs.
fn password() -> impl Strategy<Value = String> {
    proptest::string::string_regex("[JKY,/?@:#%]{1,12}").unwrap()
}

proptest! {
    /// Whatever a password holds, neither the redacted form nor a parse error shows a
    /// letter of it, for one URL, a list of URLs and the oslo form.
    #[test]
    fn no_password_letter_is_ever_shown(p1 in password(), p2 in password(), oslo: bool) {
        let input = if oslo {
            format!("rabbit://user:{p1}@host1:5681,user:{p2}@host2:5682/vh")
        } else {
            format!("amqp://user:{p1}@host1:5681/vh,amqps://user:{p2}@host2:5682/vh")
        };
        let single = format!("amqp://user:{p1}@host1:5681/vh");
        for s in [input.as_str(), single.as_str()] {
            let shown = redact_list(s);
            prop_assert!(!shown.contains(['J', 'K', 'Y']), "{s} shown as {shown}");
            if let Err(e) = parse_list(s, FailoverOrder::InOrder) {
                prop_assert!(!e.message.contains(['J', 'K', 'Y']), "{s}: {}", e.message);
            }
        }
    }
}
