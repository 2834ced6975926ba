//! The whole security pipeline over the real broker: a control plane and a guest with its
//! own generated broker credentials, every message signed and sealed, principals proven,
//! policy in code enforced, and the broker-validated `user-id` bound to the principal.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use sealrpc_amqp::admin::Rabbitmqctl;
use sealrpc_amqp::{AmqpOptions, AmqpTransport, CredentialPolicy, GuestCredentials, topology};
use sealrpc_core::security::RejectReason;
use sealrpc_core::{
    Access, Client, Context, Error, ErrorCode, HandlerError, Principal, Secret, Server, Target,
};
use sealrpc_signers::{ControlPlaneKeys, GuestKeys, MasterSecret, RotationTable};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Prepare {
    password: Secret<String>,
}

#[derive(Serialize, Deserialize)]
struct Status {
    instance_id: String,
    status: String,
}

fn uniq(prefix: &str) -> String {
    let mut b = [0u8; 4];
    sealrpc_core::rand::fill(&mut b);
    format!("{prefix}{}", hex::encode(b))
}

type Seen = Arc<Mutex<Vec<(String, String)>>>;

async fn delete_exchanges(url: &str, names: &[String]) {
    use lapin::options::ExchangeDeleteOptions;
    let conn = lapin::Connection::connect(url, lapin::ConnectionProperties::default())
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    for x in names {
        let _ = ch
            .exchange_delete(x.as_str().into(), ExchangeDeleteOptions::default())
            .await;
    }
    let _ = conn.close(200, "cleanup".into()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_and_sealed_rpc_over_rabbitmq_with_per_guest_credentials() {
    let tag = uniq("sec");
    let policy = CredentialPolicy {
        control_exchange: format!("{tag}-ctl"),
        guest_topic: format!("{tag}-ga"),
        call_topics: vec![format!("{tag}-cond"), format!("{tag}-strict")],
        ..CredentialPolicy::default()
    };
    let guest_id = uniq("g");
    let creds = GuestCredentials::for_guest(&guest_id, &policy).unwrap();
    let ctl = Rabbitmqctl::default();
    ctl.apply_async(&creds).await.unwrap();
    let admin_opts = AmqpOptions {
        control_exchange: policy.control_exchange.clone(),
        ..AmqpOptions::from_env()
    };
    // The scenario runs in its own task so that a failed assertion still lets the broker
    // user and exchanges below be cleaned up; its panic is re-raised afterwards.
    let task = {
        let (policy, guest_id, creds, opts) = (
            policy.clone(),
            guest_id.clone(),
            creds.clone(),
            admin_opts.clone(),
        );
        tokio::spawn(async move {
            tokio::time::timeout(
                Duration::from_secs(60),
                scenario(&policy, &guest_id, &creds, &opts),
            )
            .await
        })
    };
    let result = task.await;
    ctl.delete_user_async(&creds.user).await.unwrap();
    ctl.clear_operator_policy_async(&policy.vhost, &creds.operator_policy.name)
        .await
        .unwrap();
    let operator = AmqpTransport::connect(admin_opts.clone()).await.unwrap();
    operator.deprovision_guest(&creds).await.unwrap();
    operator.close().await;
    let mut exchanges = vec![
        policy.control_exchange.clone(),
        topology::reply_exchange(&policy.control_exchange),
        format!("{}_fanout", policy.guest_topic),
    ];
    exchanges.extend(
        policy
            .call_topics
            .iter()
            .map(|t| topology::ingress_exchange(t)),
    );
    delete_exchanges(&admin_opts.url, &exchanges).await;
    match result {
        Ok(outcome) => outcome.expect("scenario timed out"),
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => panic!("scenario task failed: {e}"),
    }
}

async fn scenario(
    policy: &CredentialPolicy,
    guest_id: &str,
    creds: &GuestCredentials,
    admin_opts: &AmqpOptions,
) {
    // Keys, as the operator issues them.
    let table = Arc::new(RotationTable::new());
    let conductor_keys = ControlPlaneKeys::new(
        Arc::new(MasterSecret::generate().unwrap()),
        table,
        "conductor",
    )
    .unwrap();
    let api_keys = conductor_keys.for_service("api").unwrap();
    // Registered before the bundle is issued, so that the guest pins its public key.
    let strict_keys = conductor_keys.for_service("strict").unwrap();
    let guest_keys =
        GuestKeys::from_bundle(&conductor_keys.issue_guest_bundle(guest_id).unwrap()).unwrap();
    let conductor_sec = conductor_keys.security().build();
    let api_sec = api_keys.security().build();
    let guest_sec = guest_keys.security().build();

    // Transports: the control plane as the broker's admin user, the guest with its own user.
    let control = Arc::new(AmqpTransport::connect(admin_opts.clone()).await.unwrap());
    // The operator provisions the guest's queues (the guest declares nothing).
    control.provision_guest(creds).await.unwrap();
    let guest_transport = Arc::new(
        AmqpTransport::connect(AmqpOptions {
            url: creds.url("amqp", "127.0.0.1:5672"),
            control_exchange: policy.control_exchange.clone(),
            declare_exchanges: false,
            ..AmqpOptions::from_env()
        })
        .await
        .unwrap(),
    );

    // The conductor: update_status only for the caller's own instance; publisher bound.
    let statuses: Seen = Arc::default();
    let bindings: Seen = Arc::default();
    let (s, b) = (statuses.clone(), bindings.clone());
    let guest_user = creds.user.clone();
    let admin_user = control.user().to_owned();
    let conductor = Server::builder(control.clone(), conductor_sec.clone())
        .topic(&policy.call_topics[0])
        .server_name("c1")
        .default_access(Access::Authenticated)
        .handler("update_status", move |ctx: Context, a: Status| {
            let s = s.clone();
            async move {
                let who = ctx
                    .principal()
                    .map(Principal::to_string)
                    .unwrap_or_default();
                s.lock().unwrap().push((who, a.instance_id));
                Ok::<_, HandlerError>(())
            }
        })
        .authorize("update_status", |c, a: &Status| {
            c.is_control_plane() || c.is_guest(&a.instance_id)
        })
        .bind_broker_user(move |p, user| {
            b.lock().unwrap().push((p.to_string(), user.to_owned()));
            if p.guest_id().is_some() {
                user == guest_user
            } else {
                user == admin_user
            }
        })
        .start()
        .await
        .unwrap();

    // The guest agent: serves only its own queue and the fanout.
    let prepared: Seen = Arc::default();
    let p = prepared.clone();
    // The preset its credentials hand out: its own queue and the fanout.
    assert_eq!(
        creds.listen,
        sealrpc_core::transport::ListenSpec::guest_agent(&policy.guest_topic, guest_id)
    );
    let (refreshed_tx, mut refreshed) = tokio::sync::mpsc::unbounded_channel::<String>();
    let agent = Server::builder(guest_transport.clone(), guest_sec.clone())
        .listen(creds.listen.clone())
        .default_access(Access::ControlPlane)
        .handler("prepare", move |ctx: Context, a: Prepare| {
            let p = p.clone();
            async move {
                let who = ctx
                    .principal()
                    .map(Principal::to_string)
                    .unwrap_or_default();
                p.lock().unwrap().push((who, a.password.expose().clone()));
                Ok::<_, HandlerError>("ready")
            }
        })
        .handler("refresh_config", move |ctx: Context, _a: ()| {
            let who = ctx
                .principal()
                .map(Principal::to_string)
                .unwrap_or_default();
            let _ = refreshed_tx.send(who);
            async { Ok::<_, HandlerError>(()) }
        })
        .start()
        .await
        .unwrap();

    // API -> guest: a call carrying a Secret, sealed with K2(g), signed by control:api.
    let api = Client::builder(control.clone(), api_sec.clone())
        .build()
        .await
        .unwrap();
    let ready: String = api
        .call(
            &Context::new(),
            &Target::guest(&policy.guest_topic, guest_id),
            "prepare",
            &Prepare {
                password: Secret::new("s3cr3t-pw".into()),
            },
        )
        .await
        .unwrap();
    assert_eq!(ready, "ready");
    assert_eq!(
        *prepared.lock().unwrap(),
        vec![("control:api".to_owned(), "s3cr3t-pw".to_owned())]
    );

    // The fanout reaches the agent; the shared guest topic queue is not served.
    api.cast(
        &Context::new(),
        &Target::new(&policy.guest_topic).fanout(true),
        "refresh_config",
        &(),
    )
    .await
    .unwrap();
    let who = tokio::time::timeout(Duration::from_secs(20), refreshed.recv())
        .await
        .expect("the fanout never reached the guest agent");
    assert_eq!(who.as_deref(), Some("control:api"));
    let shared = api
        .prepare(Target::new(&policy.guest_topic))
        .timeout(Duration::from_secs(5))
        .call::<_, String>(
            &Context::new(),
            "prepare",
            &Prepare {
                password: Secret::new("x".into()),
            },
        )
        .await;
    assert!(matches!(shared, Err(Error::NoListener(_))), "{shared:?}");

    // Guest -> conductor: its own instance is allowed, another one is Forbidden.
    let guest = Client::builder(guest_transport.clone(), guest_sec.clone())
        .build()
        .await
        .unwrap();
    let conductor_target = Target::new(&policy.call_topics[0]);
    let own = Status {
        instance_id: guest_id.into(),
        status: "ACTIVE".into(),
    };
    guest
        .call::<_, ()>(&Context::new(), &conductor_target, "update_status", &own)
        .await
        .unwrap();
    let other = Status {
        instance_id: "someone-else".into(),
        status: "ERROR".into(),
    };
    match guest
        .call::<_, ()>(&Context::new(), &conductor_target, "update_status", &other)
        .await
    {
        Err(Error::Rejected {
            code: ErrorCode::Forbidden,
            ..
        }) => {}
        r => panic!("expected Forbidden, got {r:?}"),
    }
    let g = format!("guest:{guest_id}");
    assert_eq!(
        *statuses.lock().unwrap(),
        vec![(g.clone(), guest_id.to_owned())]
    );
    // The broker-validated publisher was bound to the proven principal on every message.
    assert!(
        bindings
            .lock()
            .unwrap()
            .iter()
            .all(|(p, u)| *p != g || *u == creds.user)
    );
    assert!(bindings.lock().unwrap().iter().any(|(p, _)| *p == g));

    // Everything crossed the broker sealed and signed: nothing was accepted without them.
    for sec in [&conductor_sec, &guest_sec, &api_sec] {
        let c = sec.counters();
        assert_eq!(c.accepted_unauthenticated, 0, "{c:?}");
        assert_eq!(c.accepted_unsealed, 0, "{c:?}");
        assert_eq!(c.rejected_for(RejectReason::BrokerUserMismatch), 0);
    }
    assert!(guest_sec.counters().accepted >= 1 && conductor_sec.counters().accepted >= 2);

    // A server whose binding refuses the publisher rejects the call before executing it.
    let executed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let e = executed.clone();
    let strict_sec = strict_keys.security().build();
    let strict = Server::builder(control.clone(), strict_sec.clone())
        .topic(&policy.call_topics[1])
        .server_name("s1")
        .handler("update_status", move |_ctx: Context, _a: Status| {
            e.store(true, std::sync::atomic::Ordering::SeqCst);
            async { Ok::<_, HandlerError>(()) }
        })
        .bind_broker_user(|_p, _user| false)
        .start()
        .await
        .unwrap();
    let r = guest
        .prepare(Target::new(&policy.call_topics[1]))
        .timeout(Duration::from_secs(5))
        .call::<_, ()>(&Context::new(), "update_status", &own)
        .await;
    assert!(
        matches!(
            r,
            Err(Error::Rejected {
                code: ErrorCode::Unauthenticated,
                ..
            })
        ),
        "{r:?}"
    );
    assert!(!executed.load(std::sync::atomic::Ordering::SeqCst));
    assert_eq!(
        strict_sec
            .counters()
            .rejected_for(RejectReason::BrokerUserMismatch),
        1
    );

    strict.shutdown().await;
    agent.shutdown().await;
    conductor.shutdown().await;
}
