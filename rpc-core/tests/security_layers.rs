//! The security steps as tower layers, used on their own: a guest's `SealLayer` in front of
//! a capturing "transport", and a conductor's `AdmitLayer` with a user layer stacked
//! between it and the service. Only admitted messages reach the layers inside; rejected
//! ones come back as `Admission::Rejected` with their typed reason.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use sealrpc_core::Principal;
use sealrpc_core::layer::{
    Admission, AdmitLayer, AdmittedMessage, Inbound, SealLayer, SealRequest,
};
use sealrpc_core::security::Security;
use sealrpc_core::security::{AdmittedBody, RejectReason};
use sealrpc_core::transport::Outgoing;
use tower::{Service, ServiceBuilder, ServiceExt, service_fn};

use common::{Count, heartbeat_request, secure};

/// Seals `req` as `sender` through a `SealLayer`, returning what reached the "transport".
async fn seal(sender: &Arc<Security>, req: SealRequest) -> Outgoing {
    let sent = Arc::new(Mutex::new(Vec::new()));
    let wire = {
        let sent = Arc::clone(&sent);
        service_fn(move |out: Outgoing| {
            sent.lock().unwrap().push(out);
            std::future::ready(Ok::<(), Infallible>(()))
        })
    };
    let mut stack = ServiceBuilder::new()
        .layer(SealLayer::new(Arc::clone(sender)))
        .service(wire);
    stack.ready().await.unwrap().call(req).await.unwrap();
    let mut sent = sent.lock().unwrap();
    assert_eq!(sent.len(), 1);
    sent.pop().unwrap()
}

fn inbound(out: &Outgoing, broker_user: Option<&str>) -> Inbound {
    Inbound {
        payload: out.payload.clone(),
        reply_to: out.reply_to.clone(),
        broker_user: broker_user.map(str::to_owned),
    }
}

/// A user layer that counts the requests it sees.
fn counting(count: Count) -> tower::layer::LayerFn<impl Fn(Svc) -> Counted> {
    tower::layer::layer_fn(move |inner: Svc| Counted {
        count: count.clone(),
        inner,
    })
}

type Svc = tower::util::BoxCloneSyncService<AdmittedMessage, String, Infallible>;

#[derive(Clone)]
struct Counted {
    count: Count,
    inner: Svc,
}

impl Service<AdmittedMessage> for Counted {
    type Response = String;
    type Error = Infallible;
    type Future = <Svc as Service<AdmittedMessage>>::Future;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, msg: AdmittedMessage) -> Self::Future {
        self.count.hit();
        self.inner.call(msg)
    }
}

/// The conductor's stack: admit → count → a service naming the method and the principal.
fn conductor_stack(
    conductor: &Arc<Security>,
    count: &Count,
) -> impl Service<Inbound, Response = Admission<String>, Error = Infallible> + Clone {
    let describe = service_fn(|msg: AdmittedMessage| {
        let method = match &msg.message.body {
            AdmittedBody::Request(r) => r.method.clone(),
            AdmittedBody::Reply(_) => "reply".to_owned(),
            AdmittedBody::Notification(n) => n.event_type.clone(),
        };
        let who = msg.message.principal.map(|p| p.to_string());
        std::future::ready(Ok::<_, Infallible>(format!("{method} from {who:?}")))
    });
    let admit = AdmitLayer::new(Arc::clone(conductor), ["conductor".to_owned()]).bind_broker_user(
        Arc::new(|principal: &Principal, user: &str| {
            principal.guest_id() == user.strip_prefix("guest-")
        }),
    );
    ServiceBuilder::new()
        .layer(admit)
        .layer(counting(count.clone()))
        .service(Svc::new(describe))
}

async fn admit(
    stack: &(impl Service<Inbound, Response = Admission<String>, Error = Infallible> + Clone),
    msg: Inbound,
) -> Admission<String> {
    let Ok(admission) = stack.clone().oneshot(msg).await;
    admission
}

fn rejected(a: Admission<String>) -> RejectReason {
    match a {
        Admission::Rejected(r) => r.reason,
        Admission::Admitted(what) => panic!("admitted: {what}"),
    }
}

#[tokio::test]
async fn a_sealed_message_is_admitted_once_with_its_principal() {
    let guest = secure("guest:g1");
    let conductor = secure("control:conductor");
    let count = Count::default();
    let stack = conductor_stack(&conductor, &count);

    let out = seal(&guest, heartbeat_request()).await;
    assert!(out.confirm);
    // Sealed: the method name is not in the clear.
    assert!(!out.payload.windows(9).any(|w| w == b"heartbeat"));

    match admit(&stack, inbound(&out, Some("guest-g1"))).await {
        Admission::Admitted(what) => {
            assert_eq!(what, r#"heartbeat from Some("guest:g1")"#);
        }
        Admission::Rejected(r) => panic!("rejected: {}", r.reason),
    }
    assert_eq!(count.get(), 1);

    // The same bytes again: a replay, refused before the user layer.
    let again = admit(&stack, inbound(&out, Some("guest-g1"))).await;
    assert_eq!(rejected(again), RejectReason::Replay);
    assert_eq!(count.get(), 1);
    assert_eq!(conductor.counters().rejected_for(RejectReason::Replay), 1);
}

#[tokio::test]
async fn tampered_misaddressed_and_wrong_publisher_never_reach_the_service() {
    let guest = secure("guest:g1");
    let conductor = secure("control:conductor");
    let count = Count::default();
    let stack = conductor_stack(&conductor, &count);

    let mut out = seal(&guest, heartbeat_request()).await;
    let mut bytes = out.payload.to_vec();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    out.payload = bytes.into();
    let tampered = admit(&stack, inbound(&out, None)).await;
    assert!(
        matches!(
            rejected(tampered),
            RejectReason::BadSignature | RejectReason::OpenFailed
        ),
        "a flipped bit must fail the signature or the seal"
    );

    let mut elsewhere = heartbeat_request();
    elsewhere.message.header.dst = "taskmanager".into();
    let out = seal(&guest, elsewhere).await;
    let misaddressed = admit(&stack, inbound(&out, None)).await;
    assert_eq!(rejected(misaddressed), RejectReason::Misdirected);

    let out = seal(&guest, heartbeat_request()).await;
    let impostor = admit(&stack, inbound(&out, Some("guest-g2"))).await;
    assert_eq!(rejected(impostor), RejectReason::BrokerUserMismatch);

    assert_eq!(count.get(), 0, "a rejected message reached the user layer");
}

#[tokio::test]
async fn seal_layer_refuses_a_secret_over_an_unsealed_channel() {
    let insecure = common::insecure("guest:g1");
    let mut req = heartbeat_request();
    req.message.carries_secret = true;
    let sent = Count::default();
    let wire = {
        let sent = sent.clone();
        service_fn(move |_out: Outgoing| {
            sent.hit();
            std::future::ready(Ok::<(), Infallible>(()))
        })
    };
    let mut stack = tower::Layer::layer(&SealLayer::new(insecure), wire);
    let err = stack.ready().await.unwrap().call(req).await.unwrap_err();
    assert!(matches!(
        err,
        sealrpc_core::Error::SecretOverUnsealedChannel
    ));
    assert_eq!(sent.get(), 0, "a Secret reached the transport unsealed");
}
