//! End to end through rpc-core's send and receive pipelines: a control plane and guests
//! built from this crate's keys.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

use std::sync::Arc;

use sealrpc_core::security::{AdmittedBody, KeyResolver, Outbound, Peer, RejectReason, Security};
use sealrpc_core::wire::{Header, Kind, MessageId};
use sealrpc_core::{Principal, Version};
use sealrpc_signers::{ControlPlaneKeys, GuestBundle, GuestKeys, MasterSecret, RotationTable};

const A: &str = "7f3a0c2e";
const B: &str = "0b1cd2e3";

struct World {
    conductor: ControlPlaneKeys,
    api: ControlPlaneKeys,
    table: Arc<RotationTable>,
}

fn world() -> World {
    let master = Arc::new(MasterSecret::generate().unwrap());
    let table = Arc::new(RotationTable::new());
    let conductor = ControlPlaneKeys::new(master, table.clone(), "conductor").unwrap();
    let api = conductor.for_service("api").unwrap();
    World {
        conductor,
        api,
        table,
    }
}

fn guest(w: &World, id: &str) -> (GuestBundle, GuestKeys) {
    let bundle = w.conductor.issue_guest_bundle(id).unwrap();
    let keys = GuestKeys::from_bundle(&bundle).unwrap();
    (bundle, keys)
}

fn call(from: &Arc<Security>, kind: Kind, dst: &str, peer: Peer) -> Vec<u8> {
    let header = Header {
        id: MessageId::random(),
        kind,
        ts: sealrpc_core::security::now_ms(),
        ttl: Some(30_000),
        src: String::new(),
        dst: dst.to_owned(),
        corr: None,
        // A call names where its reply goes (required on calls).
        reply: (kind == Kind::Call).then(|| "reply.test".to_owned()),
        seal: None,
    };
    from.seal_and_sign(Outbound {
        header,
        body: ping_body(),
        peer,
        carries_secret: true,
    })
    .unwrap()
}

/// A `ping` call's body with empty args and context.
fn ping_body() -> sealrpc_core::wire::Body {
    sealrpc_core::wire::RequestBody {
        method: "ping".into(),
        version: Version::new(1, 0),
        namespace: None,
        args: sealrpc_core::bytes::Bytes::from_static(&[0x80]),
        ctx: sealrpc_core::bytes::Bytes::from_static(&[0x80]),
        monitor: None,
    }
    .into()
}

fn admit(to: &Arc<Security>, bytes: &[u8]) -> Result<Option<Principal>, RejectReason> {
    to.admit(sealrpc_core::bytes::Bytes::copy_from_slice(bytes), &|_| {
        true
    })
    .map(|a| {
        assert!(matches!(a.body, AdmittedBody::Request(ref r) if r.method == "ping"));
        a.principal
    })
    .map_err(|r| r.reason)
}

#[test]
fn control_plane_and_guest_talk_both_ways() {
    let w = world();
    let (_, ga) = guest(&w, A);
    let conductor = w.conductor.security().build();
    let api = w.api.security().build();
    let guest_a = ga.security().build();

    // control -> guest (k2, signed by the API)
    let msg = call(&api, Kind::Call, "guest.a", Peer::Guest(A.into()));
    assert_eq!(admit(&guest_a, &msg), Ok(Principal::service("api")));
    // guest -> control (k3, signed by the guest)
    let msg = call(&guest_a, Kind::Call, "conductor", Peer::ControlPlane);
    assert_eq!(admit(&conductor, &msg), Ok(Principal::guest(A)));
    // control -> control (k1)
    let msg = call(&api, Kind::Call, "conductor", Peer::ControlPlane);
    assert_eq!(admit(&conductor, &msg), Ok(Principal::service("api")));
    // fanout (kb, signed by the control plane)
    let msg = call(&api, Kind::Fanout, "guests", Peer::Guests);
    assert_eq!(admit(&guest_a, &msg), Ok(Principal::service("api")));
    // Replay is refused.
    assert_eq!(admit(&guest_a, &msg), Err(RejectReason::Replay));
}

#[test]
fn another_guest_cannot_read_or_impersonate() {
    let w = world();
    let (_, ga) = guest(&w, A);
    let (_, gb) = guest(&w, B);
    let conductor = w.conductor.security().build();
    let guest_a = ga.security().build();
    let guest_b = gb.security().build();
    let api = w.api.security().build();

    // A message for A does not open at B.
    let msg = call(&api, Kind::Call, "guest.a", Peer::Guest(A.into()));
    assert_eq!(admit(&guest_b, &msg), Err(RejectReason::WrongDirection));
    // A guest's message is not accepted by another guest (guests take orders from the
    // control plane only; B cannot even seal for A).
    assert_eq!(gb.seal_key_for(&Peer::Guest(A.into())), None);
    assert_eq!(gb.seal_key_for(&Peer::Guests), None);
    let msg = call(&guest_b, Kind::Call, "guest.a", Peer::ControlPlane);
    assert!(admit(&guest_a, &msg).is_err());
    // B's message reaches the control plane as B, never as A.
    let msg = call(&guest_b, Kind::Call, "conductor", Peer::ControlPlane);
    assert_eq!(admit(&conductor, &msg), Ok(Principal::guest(B)));
}

#[test]
fn revoked_guest_is_refused_and_gets_no_bundle() {
    let w = world();
    let (_, ga) = guest(&w, A);
    let conductor = w.conductor.security().build();
    let guest_a = ga.security().build();
    let msg = call(&guest_a, Kind::Call, "conductor", Peer::ControlPlane);
    w.table.revoke(A).unwrap();
    assert_eq!(admit(&conductor, &msg), Err(RejectReason::RevokedKey));
    assert!(w.conductor.issue_guest_bundle(A).is_err());
    assert_eq!(w.conductor.seal_key_for(&Peer::Guest(A.into())), None);
}

#[test]
fn guest_rotation_with_grace_then_stale() {
    let w = world();
    let (_, ga) = guest(&w, A);
    let conductor = w.conductor.security().build();
    let old = ga.security().build();
    let before = call(&old, Kind::Call, "conductor", Peer::ControlPlane);

    w.table.rotate_guest(A).unwrap();
    // Within grace the control plane keeps sealing to A under the old k2, so the new
    // bundle can travel over the existing channel.
    let api = w.api.security().build();
    let to_a = call(&api, Kind::Call, "guest.a", Peer::Guest(A.into()));
    assert_eq!(admit(&old, &to_a), Ok(Principal::service("api")));
    let bundle2 = w.conductor.issue_guest_bundle(A).unwrap();
    assert_eq!(bundle2.epoch(), 2);
    ga.install_bundle(&bundle2).unwrap();
    assert_eq!(ga.epoch(), 2);
    // The old epoch is still accepted within grace...
    assert_eq!(admit(&conductor, &before), Ok(Principal::guest(A)));
    // ...the new one too, and the guest now seals and signs with it.
    let after = call(&old, Kind::Call, "conductor", Peer::ControlPlane);
    let v: serde_json::Value =
        sealrpc_signers::inspect::describe_envelope(&after, &Default::default()).unwrap();
    assert_eq!(v["header"]["seal"]["k"], format!("k3/guest:{A}/2"));
    assert_eq!(v["signatures"][0]["k"], format!("sig/guest:{A}/2"));
    assert_eq!(admit(&conductor, &after), Ok(Principal::guest(A)));

    // With no grace, the old epoch is stale, and the control plane seals under the new k2.
    w.table.set_grace(std::time::Duration::ZERO);
    let to_a = call(&api, Kind::Call, "guest.a", Peer::Guest(A.into()));
    let v = sealrpc_signers::inspect::describe_envelope(&to_a, &Default::default()).unwrap();
    assert_eq!(v["header"]["seal"]["k"], format!("k2/guest:{A}/2"));
    assert_eq!(admit(&old, &to_a), Ok(Principal::service("api")));
    assert_eq!(admit(&conductor, &before), Err(RejectReason::StaleKey));
}

#[test]
fn control_rotation_needs_no_flag_day() {
    let w = world();
    let (_, ga) = guest(&w, A);
    let guest_a = ga.security().build();
    let api = w.api.security().build();
    // The bundle pins the next control epoch's public keys in advance.
    w.table.rotate_control();
    let msg = call(&api, Kind::Call, "guest.a", Peer::Guest(A.into()));
    let v = sealrpc_signers::inspect::describe_envelope(&msg, &Default::default()).unwrap();
    assert_eq!(v["signatures"][0]["k"], "sig/control:api/2");
    assert_eq!(admit(&guest_a, &msg), Ok(Principal::service("api")));
}

#[test]
fn key_map_receiver_ignores_keys_a_guest_may_not_hold() {
    let w = world();
    let bundle = w.conductor.issue_guest_bundle(A).unwrap();
    let other = w.conductor.issue_guest_bundle(B).unwrap();
    let mut map = std::collections::BTreeMap::new();
    for (id, k) in bundle.secret_keys() {
        if id.role() != sealrpc_core::wire::Role::Sig {
            map.insert(id.to_string(), k.as_bytes().to_vec());
        }
    }
    for (id, k) in bundle.public_keys() {
        map.insert(id.to_string(), k.to_vec());
    }
    // Another guest's k2 and public key: ignored.
    for (id, k) in other.secret_keys() {
        if id.role() == sealrpc_core::wire::Role::K2 {
            map.insert(id.to_string(), k.as_bytes().to_vec());
        }
    }
    let b_sig = GuestKeys::from_bundle(&other)
        .unwrap()
        .signing_public_key()
        .unwrap();
    map.insert(b_sig.0.to_string(), b_sig.1.to_vec());

    let receiver = GuestKeys::from_key_map(Principal::guest(A).unwrap(), map, Vec::new()).unwrap();
    assert!(receiver.signing_public_key().is_none());
    let rx = receiver.security().build();
    let api = w.api.security().build();
    let msg = call(&api, Kind::Call, "guest.a", Peer::Guest(A.into()));
    assert_eq!(admit(&rx, &msg), Ok(Principal::service("api")));
    let to_b = call(&api, Kind::Call, "guest.b", Peer::Guest(B.into()));
    assert_eq!(admit(&rx, &to_b), Err(RejectReason::WrongDirection));
    assert!(format!("{receiver:?}").contains(&format!("k2/guest:{A}/1")));
    assert!(!format!("{receiver:?}").contains(&format!("k2/guest:{B}")));
}

#[test]
fn nothing_is_sent_in_clear_to_a_revoked_or_unknown_guest() {
    use sealrpc_core::security::{ClassPolicy, KeyError, Policy};
    let w = world();
    let _ = guest(&w, A);
    let api = w.api.security().build();
    let outbound = |peer: Peer| Outbound {
        header: Header {
            id: MessageId::random(),
            kind: Kind::Call,
            ts: sealrpc_core::security::now_ms(),
            ttl: Some(30_000),
            src: String::new(),
            dst: "guest.x".to_owned(),
            corr: None,
            reply: None,
            seal: None,
        },
        body: ping_body(),
        peer,
        carries_secret: false,
    };
    // Enforce (the default) requires a seal: with no key for the peer, refuse to send,
    // typed, rather than send the body in clear.
    w.table.revoke(A).unwrap();
    let e = api
        .seal_and_sign(outbound(Peer::Guest(A.into())))
        .unwrap_err();
    assert!(
        matches!(e, sealrpc_core::Error::Security(KeyError::Revoked)),
        "{e:?}"
    );
    let e = api
        .seal_and_sign(outbound(Peer::Guest(B.into())))
        .unwrap_err();
    assert!(
        matches!(e, sealrpc_core::Error::Security(KeyError::UnknownKey)),
        "{e:?}"
    );
    // Permissive (rolling upgrade) still sends unsealed.
    api.set_policy(Policy::uniform(ClassPolicy::permissive()));
    let bytes = api.seal_and_sign(outbound(Peer::Guest(A.into()))).unwrap();
    let v = sealrpc_signers::inspect::describe_envelope(&bytes, &Default::default()).unwrap();
    assert!(v["header"]["seal"].is_null(), "{v}");
}
