//! Signature items: byte-identical copies are verified once (same verdict, no extra cost);
//! a differing bad copy still rejects the message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use common::{ToyKeys, ToySeal, ToySigner};
use sealrpc_core::Principal;
use sealrpc_core::security::SecurityConfig;
use sealrpc_core::security::{KeyError, RejectReason, Verifier};
use sealrpc_core::wire::{EnvelopeRef, KeyId, Limits, Role, encode_envelope};

#[derive(Debug)]
struct Counting(ToySigner, Arc<AtomicUsize>);

impl Verifier for Counting {
    fn algorithm(&self) -> &'static str {
        self.0.algorithm()
    }
    fn verify(&self, key_id: &KeyId, input: &[u8], signature: &[u8]) -> Result<(), KeyError> {
        self.1.fetch_add(1, Ordering::SeqCst);
        Verifier::verify(&self.0, key_id, input, signature)
    }
}

fn node(principal: &str, count: Arc<AtomicUsize>) -> Arc<sealrpc_core::security::Security> {
    let p = Principal::parse(principal).unwrap();
    let signer = ToySigner(KeyId::new(Role::Sig, p.clone(), 1));
    SecurityConfig::new(Arc::new(ToyKeys(p.clone())))
        .signer(Arc::new(ToySigner(KeyId::new(Role::Sig, p, 1))))
        .verifier(Arc::new(Counting(signer, count)))
        .sealer(Arc::new(ToySeal))
        .opener(Arc::new(ToySeal))
        .build()
}

/// The envelope with its signature items replaced by `items(original)`.
fn with_items(
    bytes: &[u8],
    items: impl Fn(&[sealrpc_core::wire::SignatureItem]) -> Vec<sealrpc_core::wire::SignatureItem>,
) -> Bytes {
    let env = EnvelopeRef::decode(bytes, &Limits::default()).unwrap();
    Bytes::from(encode_envelope(
        env.header,
        env.body,
        &items(&env.signatures),
    ))
}

#[test]
fn identical_copies_are_verified_once_and_accepted() {
    let sender = node("guest:g1", Arc::default());
    let count = Arc::new(AtomicUsize::new(0));
    let receiver = node("control:conductor", count.clone());
    let bytes = with_items(&common::heartbeat_cast(&sender), |s| vec![s[0].clone(); 8]);
    let admitted = receiver.admit(&bytes, &|_| true).unwrap();
    assert_eq!(admitted.principal, Principal::parse("guest:g1"));
    assert_eq!(count.load(Ordering::SeqCst), 1);
}

#[test]
fn a_differing_bad_copy_still_rejects() {
    let sender = node("guest:g1", Arc::default());
    let receiver = node("control:conductor", Arc::default());
    let bytes = with_items(&common::heartbeat_cast(&sender), |s| {
        let mut bad = s[0].clone();
        bad.signature[0] ^= 1;
        vec![s[0].clone(), s[0].clone(), bad]
    });
    let r = receiver.admit(&bytes, &|_| true).unwrap_err();
    assert_eq!(r.reason, RejectReason::BadSignature);
}
