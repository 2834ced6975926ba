//! Errors that say what happened (issue 14, item 7): a rejected call's message survives
//! `Display`; `Forbidden` names the method, the rule and the caller (never an argument
//! value) and is counted; an argument-decoding error names the missing field; and a call
//! signed by a key that is not pinned gets a coarse `Unauthenticated` reply instead of a
//! timeout.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use sealrpc_core::security::Security;
use sealrpc_core::security::{KeyError, KeyResolver, Peer, RejectReason};
use sealrpc_core::wire::{KeyId, Role};
use sealrpc_core::{
    Access, Context, Error, ErrorCode, Method, Principal, Server, ServerHandle, Target, rpc,
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
struct Status {
    instance_id: String,
    status: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct NotStatus {
    status: String,
}

rpc!(struct UpdateStatus = "update_status"(Status) -> bool);
rpc!(struct Restart = "restart"(Status) -> bool);

async fn conductor(
    t: &Arc<dyn sealrpc_core::transport::Transport>,
    sec: Arc<Security>,
) -> ServerHandle {
    Server::builder(Arc::clone(t), sec)
        .topic("conductor")
        .method(
            Method::new(UpdateStatus, |_ctx, _s| async move { Ok(true) })
                .authorize(|caller, s| caller.is_guest(&s.instance_id)),
        )
        .method(
            Method::new(Restart, |_ctx, _s| async move { Ok(true) }).access(Access::ControlPlane),
        )
        .start()
        .await
        .unwrap()
}

fn status(instance_id: &str) -> Status {
    Status {
        instance_id: instance_id.into(),
        status: "secret-looking-value".into(),
    }
}

#[tokio::test]
async fn forbidden_names_method_rule_and_caller_is_shown_and_counted() {
    let t = transport();
    let server_sec = secure("control:conductor");
    let _s = conductor(&t, Arc::clone(&server_sec)).await;
    let guest = client(&t, secure("guest:abc")).await;

    let err = guest
        .call(
            &Context::new(),
            &Target::new("conductor"),
            UpdateStatus,
            &status("other"),
        )
        .await
        .unwrap_err();
    let Error::Rejected { code, msg } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(*code, ErrorCode::Forbidden);
    assert_eq!(
        msg,
        "forbidden: update_status: authorize check #1 refused caller guest:abc"
    );
    let shown = err.to_string();
    assert!(
        shown.contains(msg.as_str()),
        "Display drops the message: {shown}"
    );
    assert!(
        !shown.contains("other") && !shown.contains("secret-looking"),
        "{shown}"
    );

    let err = guest
        .call(
            &Context::new(),
            &Target::new("conductor"),
            Restart,
            &status("abc"),
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "rejected by peer: Forbidden: forbidden: restart: access ControlPlane refused caller guest:abc"
    );

    let counters = server_sec.counters();
    assert_eq!(counters.forbidden, 2, "{counters:?}");
    assert_eq!(counters.total_rejected(), 0, "{counters:?}");
}

#[tokio::test]
async fn bad_arguments_name_the_missing_field() {
    let t = transport();
    let _s = conductor(&t, secure("control:conductor")).await;
    let guest = client(&t, secure("guest:abc")).await;
    let err = guest
        .call::<_, bool>(
            &Context::new(),
            &Target::new("conductor"),
            "update_status",
            &NotStatus {
                status: "hidden".into(),
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            &err,
            Error::Rejected {
                code: ErrorCode::BadRequest,
                ..
            }
        ),
        "{err:?}"
    );
    let shown = err.to_string();
    assert!(shown.contains("missing field `instance_id`"), "{shown}");
    assert!(!shown.contains("hidden"), "{shown}");
}

/// Keys as [`ToyKeys`], except that the signing keys of `unpinned` are unknown here.
#[derive(Debug)]
struct PinnedKeys {
    inner: ToyKeys,
    unpinned: Principal,
}

impl KeyResolver for PinnedKeys {
    fn me(&self) -> Principal {
        self.inner.me()
    }
    fn seal_key_for(&self, peer: &Peer) -> Option<KeyId> {
        self.inner.seal_key_for(peer)
    }
    fn check_key(&self, key_id: &KeyId) -> Result<(), KeyError> {
        if key_id.role() == Role::Sig && key_id.principal() == &self.unpinned {
            return Err(KeyError::UnknownKey);
        }
        self.inner.check_key(key_id)
    }
}

#[tokio::test]
async fn an_unpinned_signing_key_gets_a_coarse_unauthenticated_reply_not_a_timeout() {
    let t = transport();
    let me = Principal::parse("control:conductor").unwrap();
    let signer = Arc::new(ToySigner(KeyId::new(Role::Sig, me.clone(), 1)));
    let server_sec = sealrpc_core::security::SecurityConfig::new(Arc::new(PinnedKeys {
        inner: ToyKeys(me),
        unpinned: Principal::parse("guest:rogue").unwrap(),
    }))
    .signer(signer.clone())
    .verifier(signer)
    .sealer(Arc::new(ToySeal))
    .opener(Arc::new(ToySeal))
    .build();
    let _s = conductor(&t, Arc::clone(&server_sec)).await;
    let rogue = client(&t, secure("guest:rogue")).await;

    let err = rogue
        .prepare(Target::new("conductor"))
        .timeout(Duration::from_secs(3))
        .call::<_, bool>(&Context::new(), "update_status", &status("rogue"))
        .await
        .unwrap_err();
    // Coarse: the code only, no detail on which key or why.
    assert!(
        matches!(&err, Error::Rejected { code: ErrorCode::Unauthenticated, msg } if msg == "request rejected"),
        "{err:?}"
    );
    assert_eq!(
        server_sec.counters().rejected_for(RejectReason::UnknownKey),
        1
    );
    assert_eq!(server_sec.counters().forbidden, 0);
}
