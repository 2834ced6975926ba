//! The bulk path against the real broker's management API (`rabbitmq_management` on
//! 127.0.0.1:15672; `.ci/run` enables it): one definitions import provisions many guests
//! (users, passwords, limits, vhost and topic permissions, capped queues, bindings) and
//! the operator policy once; each guest connects with its own password and no other;
//! removal is bulk and complete; the management password never shows in an error.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

mod guest_setup;

use guest_setup::{policy, uniq};
use sealrpc_amqp::credentials::GuestLimits;
use sealrpc_amqp::fleet::FleetProvisioner;
use sealrpc_amqp::management::{ManagementApi, ManagementError};
use sealrpc_amqp::{AmqpOptions, AmqpTransport, GuestCredentials};
use sealrpc_core::Secret;
use sealrpc_core::transport::TransportErrorKind;

const GUESTS: usize = 12;

fn q(name: &str) -> String {
    format!("/api/queues/%2F/{name}")
}

async fn missing(api: &ManagementApi, path: &str) -> bool {
    matches!(
        api.get(path).await,
        Err(ManagementError::Status { status: 404, .. })
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_import_provisions_many_guests_and_removal_is_complete() {
    let tag = uniq("bulk");
    let limits = GuestLimits {
        max_channels: 7,
        ..GuestLimits::default()
    };
    let pol = policy(&tag, limits);
    let operator = AmqpTransport::connect(AmqpOptions {
        control_exchange: pol.control_exchange.clone(),
        ..AmqpOptions::from_env()
    })
    .await
    .unwrap();
    operator.declare_fanout(&pol.guest_topic).await.unwrap();
    let creds: Vec<GuestCredentials> = (0..GUESTS)
        .map(|i| GuestCredentials::for_guest(&format!("g{i:03}"), &pol).unwrap())
        .collect();
    let fleet = FleetProvisioner::new(ManagementApi::from_env()).batch(5);
    let api = fleet.api().clone();
    fleet.provision(&creds).await.unwrap();

    // A failing check still lets the cleanup below run.
    let (api2, all, pol2) = (api.clone(), creds.clone(), pol.clone());
    let outcome = tokio::spawn(async move {
        let (api, creds, pol) = (api2, all, pol2);
        let c = &creds[GUESTS - 1];
        let user = api.get(&format!("/api/users/{}", c.user)).await.unwrap();
        assert_eq!(user["limits"]["max-channels"], 7, "{user}");
        assert_eq!(user["limits"]["max-connections"], 2);
        let perms = api
            .get(&format!("/api/users/{}/permissions", c.user))
            .await
            .unwrap();
        assert_eq!(perms[0]["configure"], "^$");
        assert_eq!(perms[0]["read"], c.permissions.read.as_str());
        let topic = api
            .get(&format!("/api/users/{}/topic-permissions", c.user))
            .await
            .unwrap();
        assert_eq!(topic.as_array().unwrap().len(), c.topic_permissions.len());
        let queue = api.get(&q(&c.queues[0].name)).await.unwrap();
        assert_eq!(queue["arguments"]["x-overflow"], "reject-publish");
        assert_eq!(queue["arguments"]["x-max-length"], 1000);
        let bindings = api
            .get(&format!("/api/queues/%2F/{}/bindings", c.queues[1].name))
            .await
            .unwrap();
        assert!(
            bindings
                .as_array()
                .unwrap()
                .iter()
                .any(|b| b["source"] == c.queues[1].exchange.as_str()),
            "{bindings}"
        );
        let op = api
            .get(&format!(
                "/api/operator-policies/%2F/{}",
                c.operator_policy.name
            ))
            .await
            .unwrap();
        assert_eq!(op["pattern"], c.operator_policy.pattern.as_str());

        // The guest connects as itself (it declares nothing: its queues are there)...
        let guest_opts = |password_of: &GuestCredentials| AmqpOptions {
            url: GuestCredentials {
                password: password_of.password.clone(),
                ..c.clone()
            }
            .url("amqp", "127.0.0.1:5672"),
            control_exchange: pol.control_exchange.clone(),
            declare_exchanges: false,
            ..AmqpOptions::from_env().lean()
        };
        let guest = AmqpTransport::connect(guest_opts(c)).await.unwrap();
        guest.close().await;
        // ... and not with another guest's password.
        let err = AmqpTransport::connect(guest_opts(&creds[0]))
            .await
            .unwrap_err();
        assert_eq!(err.kind, TransportErrorKind::AccessRefused, "{err}");
    })
    .await;

    fleet.deprovision(&creds).await.unwrap();
    fleet.clear_policies(&creds).await.unwrap();
    operator.close().await;
    // The operator's transport declared the run's control and reply exchanges.
    let ctl = &pol.control_exchange;
    for x in [
        ctl.clone(),
        format!("{ctl}_reply"),
        format!("{}_fanout", pol.guest_topic),
    ] {
        api.delete_exchange("/", &x).await.unwrap();
    }
    outcome.unwrap();
    for c in &creds {
        assert!(!api.user_exists(&c.user).await.unwrap(), "{} left", c.user);
        for queue in &c.queues {
            assert!(missing(&api, &q(&queue.name)).await, "{} left", queue.name);
        }
    }
    assert!(missing(&api, &format!("/api/exchanges/%2F/{ctl}")).await);
    let name = &creds[0].operator_policy.name;
    assert!(missing(&api, &format!("/api/operator-policies/%2F/{name}")).await);
    // Removing again is not an error.
    fleet.deprovision(&creds).await.unwrap();
    fleet.clear_policies(&creds).await.unwrap();
}

#[tokio::test]
async fn a_wrong_management_password_is_refused_and_never_shown() {
    let secret = format!("not-the-password-{}", uniq("pw"));
    let api = ManagementApi::new("127.0.0.1:15672", "guest", Secret::new(secret.clone()));
    assert!(!format!("{api:?}").contains(&secret));
    let err = api.get("/api/overview").await.unwrap_err();
    assert!(
        matches!(err, ManagementError::Refused { status: 401, .. }),
        "{err:?}"
    );
    assert!(!format!("{err} {err:?}").contains(&secret));
}

#[tokio::test]
async fn an_unreachable_api_is_a_typed_error() {
    let api = ManagementApi::new("127.0.0.1:1", "guest", Secret::new("guest".to_owned()));
    let err = api.delete_users(&["nobody".to_owned()]).await.unwrap_err();
    assert!(matches!(err, ManagementError::Http(_)), "{err:?}");
    assert!(err.to_string().contains("rabbitmq_management"), "{err}");
}
