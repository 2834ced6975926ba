#![allow(clippy::unwrap_used, reason = "test code")]

use super::{definitions, operator_policies, queue_arguments};
use crate::credentials::{CredentialPolicy, GuestCredentials, GuestLimits};

fn fleet(n: usize) -> Vec<GuestCredentials> {
    let policy = CredentialPolicy::default();
    (0..n)
        .map(|i| GuestCredentials::for_guest(&format!("g{i}"), &policy).unwrap())
        .collect()
}

#[test]
fn every_guest_is_rendered_with_its_own_user_password_and_queues() {
    let guests = fleet(3);
    let d = definitions(&guests, false);
    assert_eq!(d["users"].as_array().unwrap().len(), 3);
    assert_eq!(d["permissions"].as_array().unwrap().len(), 3);
    assert_eq!(d["queues"].as_array().unwrap().len(), 6);
    assert_eq!(d["bindings"].as_array().unwrap().len(), 6);
    assert_eq!(
        d["topic_permissions"].as_array().unwrap().len(),
        3 * guests[0].topic_permissions.len()
    );
    for (u, g) in d["users"].as_array().unwrap().iter().zip(&guests) {
        assert_eq!(u["name"], g.user.as_str());
        assert_eq!(u["password"], g.password.as_str());
        assert_eq!(u["tags"], "", "no management or administrator tag");
        assert_eq!(u["limits"]["max-connections"], g.limits.max_connections);
    }
    let p = &d["permissions"][0];
    assert_eq!(p["configure"], "^$");
    assert_eq!(p["read"], guests[0].permissions.read.as_str());
    let q = &d["queues"][1];
    assert_eq!(q["name"], guests[0].queues[1].name.as_str());
    assert_eq!(q["durable"], true);
    assert_eq!(q["arguments"]["x-overflow"], "reject-publish");
    let b = &d["bindings"][0];
    assert_eq!(b["source"], guests[0].queues[0].exchange.as_str());
    assert_eq!(b["routing_key"], guests[0].queues[0].routing_key.as_str());
}

#[test]
fn queue_arguments_match_the_amqp_path() {
    let limits = GuestLimits::default();
    let json = queue_arguments(&limits, false);
    let table = crate::provision::guest_queue_args(&limits);
    assert_eq!(json.as_object().unwrap().len(), table.inner().len());
    assert!(json.get("x-queue-type").is_none());
    assert_eq!(queue_arguments(&limits, true)["x-queue-type"], "quorum");
    let never = GuestLimits {
        queue_expires: None,
        ..limits
    };
    assert!(queue_arguments(&never, false).get("x-expires").is_none());
}

#[test]
fn one_operator_policy_per_fleet() {
    let guests = fleet(50);
    let policies = operator_policies(&guests);
    assert_eq!(policies.len(), 1);
    assert_eq!(policies[0].1, guests[0].operator_policy);
}
