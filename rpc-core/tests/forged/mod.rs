//! Hand-built envelopes for the pipeline tests: any kind, any claimed `src`, sealed under
//! any key, signed (or garbage-"signed") by any key id, with the toy primitives of
//! `common`. What a message proves is then decided by the receiver alone.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod table;

use std::sync::Arc;

use sealrpc_core::bytes::Bytes;
use sealrpc_core::security::{Policy, Sealer, Signer};
use sealrpc_core::security::{Security, SecurityConfig};
use sealrpc_core::wire::{
    Header, KeyId, Kind, MessageId, RequestBody, SealInfo, SignatureItem, encode_envelope,
    signature_input,
};
use sealrpc_core::{Principal, Version};

use crate::common::{ToyKeys, ToySeal, ToySigner};

/// The receiver's clock in these tests (unix ms).
pub const NOW_MS: u64 = 1_763_900_001_000;

/// The receiver's clock as a `SystemTime`.
pub fn now() -> std::time::SystemTime {
    std::time::UNIX_EPOCH + std::time::Duration::from_millis(NOW_MS)
}

/// A key id from its text.
pub fn key(id: &str) -> KeyId {
    KeyId::parse(id).unwrap()
}

/// One message to build.
#[derive(Debug, Clone)]
pub struct Msg {
    /// Call, cast, reply or fanout.
    pub kind: Kind,
    /// The claimed sender.
    pub src: String,
    /// The header's `dst`.
    pub dst: String,
    /// Seal under this key.
    pub seal: Option<KeyId>,
    /// Sign with this key.
    pub signer: Option<KeyId>,
    /// Replace the signature by 64 bytes of garbage.
    pub garbage: bool,
    /// The encoded `args` map.
    pub args: Vec<u8>,
}

impl Msg {
    /// An unsigned, unsealed cast of `src` to `dst`.
    pub fn cast(src: &str, dst: &str) -> Self {
        Self {
            kind: Kind::Cast,
            src: src.into(),
            dst: dst.into(),
            seal: None,
            signer: None,
            garbage: false,
            args: vec![0x80],
        }
    }

    /// Sealed under `k`.
    pub fn sealed(mut self, k: &str) -> Self {
        self.seal = Some(key(k));
        self
    }

    /// Signed by `k`.
    pub fn signed(mut self, k: &str) -> Self {
        self.signer = Some(key(k));
        self
    }

    /// "Signed" by `k` with garbage bytes.
    pub fn garbage_signed(mut self, k: &str) -> Self {
        self.signer = Some(key(k));
        self.garbage = true;
        self
    }

    /// Of `kind`.
    pub fn kind(mut self, kind: Kind) -> Self {
        self.kind = kind;
        self
    }

    /// The header, with a fresh id.
    pub fn header(&self) -> Header {
        Header {
            id: MessageId::random(),
            kind: self.kind,
            ts: NOW_MS - 1_000,
            ttl: Some(30_000),
            src: self.src.clone(),
            dst: self.dst.clone(),
            corr: (self.kind == Kind::Reply).then_some(MessageId([9; 16])),
            reply: (self.kind == Kind::Call).then(|| "reply.x".to_owned()),
            seal: self.seal.as_ref().map(|k| SealInfo {
                key_id: k.to_string(),
                nonce: [5; 24],
            }),
        }
    }

    /// The body bytes (a request, or an `ok` reply).
    pub fn body(&self) -> Vec<u8> {
        if self.kind == Kind::Reply {
            return b"\x81\xa2ok\x01".to_vec();
        }
        RequestBody::encode("heartbeat", Version::new(1, 0), None, &self.args, b"\x80")
    }

    /// The envelope bytes of `header` and `body` as this message says.
    pub fn envelope(&self, header: &Header, body: &[u8]) -> Bytes {
        let h = header.encode();
        let b = match &self.seal {
            Some(k) => ToySeal.seal(k, &[5; 24], &h, body).unwrap(),
            None => body.to_vec(),
        };
        let sigs: Vec<SignatureItem> = self
            .signer
            .iter()
            .map(|k| SignatureItem {
                key_id: k.to_string(),
                algorithm: "toy-sha256".into(),
                signature: if self.garbage {
                    vec![0x5a; 64]
                } else {
                    ToySigner(k.clone()).sign(&signature_input(&h, &b)).unwrap()
                },
            })
            .collect();
        Bytes::from(encode_envelope(&h, &b, &sigs))
    }

    /// The envelope bytes, with a fresh id.
    pub fn build(&self) -> Bytes {
        self.envelope(&self.header(), &self.body())
    }
}

/// A receiver called `principal` with the toy primitives (every key known, epoch 1).
pub fn receiver(principal: &str, policy: Policy) -> Arc<Security> {
    let p = Principal::parse(principal).unwrap();
    let signer = Arc::new(ToySigner(KeyId::new(
        sealrpc_core::wire::Role::Sig,
        p.clone(),
        1,
    )));
    SecurityConfig::new(Arc::new(ToyKeys(p)))
        .signer(signer.clone())
        .verifier(signer)
        .sealer(Arc::new(ToySeal))
        .opener(Arc::new(ToySeal))
        .policy(policy)
        .build()
}
