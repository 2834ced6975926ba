//! Test helpers: transports, security configs (insecure, and a toy signed+sealed one whose
//! "crypto" is SHA-256 based — for exercising the pipeline, not for security), servers.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use sealrpc_core::security::{KeyError, KeyResolver, Opener, Peer, Sealer, Signer, Verifier};
use sealrpc_core::security::{Security, SecurityConfig};
use sealrpc_core::transport::Transport;
use sealrpc_core::wire::{KeyId, Role};
use sealrpc_core::{
    Client, Context, HandlerError, MemoryTransport, Principal, Server, ServerBuilder,
};

pub fn transport() -> Arc<dyn Transport> {
    Arc::new(MemoryTransport::new())
}

pub fn insecure(principal: &str) -> Arc<Security> {
    SecurityConfig::insecure(Principal::parse(principal).unwrap()).build()
}

/// A toy key resolver: every key exists, epoch 1.
#[derive(Debug)]
pub struct ToyKeys(pub Principal);

impl KeyResolver for ToyKeys {
    fn me(&self) -> Principal {
        self.0.clone()
    }
    fn seal_key_for(&self, peer: &Peer) -> Option<KeyId> {
        let control = self.0.is_control_plane();
        Some(match (peer, control) {
            (Peer::ControlPlane, true) => KeyId::new(Role::K1, Principal::control(), 1),
            (Peer::ControlPlane, false) => KeyId::new(Role::K3, self.0.clone(), 1),
            (Peer::Guest(g), true) => KeyId::new(Role::K2, Principal::guest(g)?, 1),
            (Peer::Guests, true) => KeyId::new(Role::Kb, Principal::guests(), 1),
            _ => return None,
        })
    }
    fn check_key(&self, _key_id: &KeyId) -> Result<(), KeyError> {
        Ok(())
    }
}

fn mac(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p);
    }
    h.finalize().into()
}

/// Toy signer: "signature" = SHA-256(key id, input) twice. Anyone can forge it; fine here.
#[derive(Debug)]
pub struct ToySigner(pub KeyId);

impl Signer for ToySigner {
    fn key_id(&self) -> KeyId {
        self.0.clone()
    }
    fn algorithm(&self) -> &'static str {
        "toy-sha256"
    }
    fn sign(&self, input: &[u8]) -> Result<Vec<u8>, KeyError> {
        let m = mac(&[self.0.as_str().as_bytes(), input]);
        Ok([m, m].concat())
    }
}

impl Verifier for ToySigner {
    fn algorithm(&self) -> &'static str {
        "toy-sha256"
    }
    fn verify(&self, key_id: &KeyId, input: &[u8], signature: &[u8]) -> Result<(), KeyError> {
        let m = mac(&[key_id.as_str().as_bytes(), input]);
        if signature == [m, m].concat() {
            Ok(())
        } else {
            Err(KeyError::BadSignature)
        }
    }
}

/// Toy AEAD: XOR with a SHA-256 keystream, 16-byte tag.
#[derive(Debug)]
pub struct ToySeal;

fn keystream_xor(key: &KeyId, nonce: &[u8; 24], data: &[u8]) -> Vec<u8> {
    data.chunks(32)
        .enumerate()
        .flat_map(|(i, chunk)| {
            let ks = mac(&[key.as_str().as_bytes(), nonce, &(i as u64).to_be_bytes()]);
            chunk.iter().zip(ks).map(|(a, b)| a ^ b).collect::<Vec<_>>()
        })
        .collect()
}

impl Sealer for ToySeal {
    fn seal(
        &self,
        key: &KeyId,
        nonce: &[u8; 24],
        aad: &[u8],
        pt: &[u8],
    ) -> Result<Vec<u8>, KeyError> {
        let mut ct = keystream_xor(key, nonce, pt);
        let tag = mac(&[key.as_str().as_bytes(), nonce, aad, &ct]);
        ct.extend_from_slice(&tag[..16]);
        Ok(ct)
    }
}

impl Opener for ToySeal {
    fn open(
        &self,
        key: &KeyId,
        nonce: &[u8; 24],
        aad: &[u8],
        ct: &[u8],
    ) -> Result<Vec<u8>, KeyError> {
        let split = ct.len().checked_sub(16).ok_or(KeyError::OpenFailed)?;
        let (body, tag) = ct.split_at(split);
        let want = mac(&[key.as_str().as_bytes(), nonce, aad, body]);
        if tag != &want[..16] {
            return Err(KeyError::OpenFailed);
        }
        Ok(keystream_xor(key, nonce, body))
    }
}

/// Signed and sealed, enforced (the default policy), with toy primitives.
pub fn secure(principal: &str) -> Arc<Security> {
    secure_config(principal).build()
}

/// The config of [`secure`], to adjust before building.
pub fn secure_config(principal: &str) -> SecurityConfig {
    let p = Principal::parse(principal).unwrap();
    let signer = Arc::new(ToySigner(KeyId::new(Role::Sig, p.clone(), 1)));
    SecurityConfig::new(Arc::new(ToyKeys(p)))
        .signer(signer.clone())
        .verifier(signer)
        .sealer(Arc::new(ToySeal))
        .opener(Arc::new(ToySeal))
}

pub async fn client(t: &Arc<dyn Transport>, sec: Arc<Security>) -> Client {
    Client::builder(Arc::clone(t), sec).build().await.unwrap()
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct Add {
    pub a: i64,
    pub b: i64,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct Echo {
    pub text: String,
}

/// A counter shared with handlers.
#[derive(Debug, Default, Clone)]
pub struct Count(pub Arc<AtomicUsize>);

impl Count {
    pub fn hit(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
    pub fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// A server builder on `topic` with `add` and `echo` handlers counting into `count`.
pub fn basic_server(
    t: &Arc<dyn Transport>,
    sec: Arc<Security>,
    topic: &str,
    count: &Count,
) -> ServerBuilder {
    let (c1, c2) = (count.clone(), count.clone());
    Server::builder(Arc::clone(t), sec)
        .topic(topic)
        .handler("add", move |_ctx: Context, a: Add| {
            c1.hit();
            async move { Ok::<_, HandlerError>(a.a + a.b) }
        })
        .handler("echo", move |_ctx: Context, e: Echo| {
            c2.hit();
            async move { Ok::<_, HandlerError>(e.text) }
        })
}

/// A `tracing` writer that keeps everything written, for asserting on log output.
#[derive(Clone, Default)]
pub struct Captured(pub Arc<std::sync::Mutex<Vec<u8>>>);

impl Captured {
    /// Everything written so far, as text.
    pub fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A `heartbeat` cast to `conductor`, to seal as whoever sends it.
pub fn heartbeat_request() -> sealrpc_core::layer::SealRequest {
    use sealrpc_core::Version;
    use sealrpc_core::security::Outbound;
    use sealrpc_core::transport::{Address, Outgoing};
    use sealrpc_core::wire::{Header, MessageId, RequestBody};
    let header = Header::cast(MessageId::random(), "conductor".into(), None);
    sealrpc_core::layer::SealRequest {
        message: Outbound {
            header,
            body: RequestBody {
                method: "heartbeat".into(),
                version: Version::new(1, 0),
                namespace: None,
                args: bytes::Bytes::from_static(b"\x80"),
                ctx: bytes::Bytes::from_static(b"\x80"),
                monitor: None,
            }
            .into(),
            peer: Peer::ControlPlane,
            carries_secret: false,
        },
        outgoing: Outgoing {
            to: Address::Topic("conductor".into()),
            payload: bytes::Bytes::new(),
            reply_to: None,
            expiration: None,
            confirm: true,
        },
    }
}

/// A `heartbeat` cast from `sender` to `conductor`, secured as `sender`'s policy says.
pub fn heartbeat_cast(sender: &Security) -> bytes::Bytes {
    bytes::Bytes::from(sender.seal_and_sign(heartbeat_request().message).unwrap())
}
