//! Hand-built envelopes, made with nothing but one guest's bundle (what an attacker who
//! owns that guest holds), or as a "newer" release would write them (unknown keys at every
//! level: envelope, header, seal, signature item, body, args, ctx).

use sealrpc_core::bytes::Bytes;
use sealrpc_core::payload::encode_value;
use sealrpc_core::security::Signer;
use sealrpc_core::wire::{
    KeyId, Kind, MessageId, ReplyBody, RequestBody, Role, SEAL_ALGORITHM, SignatureItem,
    encode_envelope, signature_input,
};
use sealrpc_core::{Version, security::now_ms};
use sealrpc_signers::xchacha::seal_with;
use sealrpc_signers::{Ed25519Signer, GuestBundle, SecretKey};
use serde::Serialize;

use super::BoxError;
use super::msgpack::Writer;

/// One request to build.
#[derive(Debug, Clone)]
pub struct Forge {
    /// Call, cast or fanout.
    pub kind: Kind,
    /// The claimed sender.
    pub src: String,
    /// The header's `dst`.
    pub dst: String,
    /// The method.
    pub method: String,
    /// The encoded `args` map.
    pub args: Vec<u8>,
    /// Seal the body (with [`Forge::seal_key`]).
    pub seal: bool,
    /// Which of the guest's keys seals: its own k3 (the only one a guest may use towards
    /// the control plane), or the broadcast kb that every guest holds.
    pub seal_key: ForgeSeal,
    /// Sign with the guest's own signing key.
    pub sign: bool,
    /// Attach a signature item of the known algorithm "by" this key id, with random bytes
    /// (a key the attacker does not hold).
    pub garbage_signature_by: Option<String>,
    /// The header's `reply` (calls must carry one).
    pub reply: Option<String>,
    /// Write unknown keys at every level (a newer sender).
    pub future: bool,
    /// Stamp `ts` this far in the future (within the receiver's skew: an id that would
    /// live longest in a replay guard that counted lifetime instead of room).
    pub stamped_ahead_ms: u64,
}

impl Forge {
    /// A cast of `method` with `args` to `dst`, claiming to come from `src`, signed and
    /// sealed.
    pub fn cast<A: Serialize>(
        src: &str,
        dst: &str,
        method: &str,
        args: &A,
    ) -> Result<Self, BoxError> {
        Ok(Self {
            kind: Kind::Cast,
            src: src.to_owned(),
            dst: dst.to_owned(),
            method: method.to_owned(),
            args: encode_value(args, "args")?.into_bytes().to_vec(),
            seal: true,
            seal_key: ForgeSeal::OwnK3,
            sign: true,
            garbage_signature_by: None,
            reply: None,
            future: false,
            stamped_ahead_ms: 0,
        })
    }
}

/// The seal key a forged message uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ForgeSeal {
    /// The guest's own k3.
    #[default]
    OwnK3,
    /// The guests' broadcast key kb (fanout only, by the wire rules).
    Broadcast,
}

/// Builds envelopes with the keys of one guest bundle.
pub struct Forger {
    signer: Ed25519Signer,
    k3: (KeyId, SecretKey),
    kb: (KeyId, SecretKey),
}

impl std::fmt::Debug for Forger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Forger")
            .field("signer", &self.signer.key_id().as_str())
            .field("k3", &self.k3.0.as_str())
            .field("kb", &self.kb.0.as_str())
            .finish()
    }
}

fn header(f: &Forge, seal: Option<(&KeyId, &[u8; 24])>) -> Vec<u8> {
    let mut w = Writer::default();
    w.map(6 + usize::from(seal.is_some()) + usize::from(f.reply.is_some()) + usize::from(f.future));
    w.str("id").bin(&MessageId::random().0);
    w.str("kind").str(f.kind.as_str());
    w.str("ts").uint(now_ms() + f.stamped_ahead_ms);
    w.str("ttl").uint(30_000);
    w.str("src").str(&f.src);
    w.str("dst").str(&f.dst);
    if let Some(reply) = &f.reply {
        w.str("reply").str(reply);
    }
    if let Some((key, nonce)) = seal {
        w.str("seal").map(3 + usize::from(f.future));
        w.str("a").str(SEAL_ALGORITHM);
        w.str("k").str(key.as_str());
        w.str("n").bin(nonce);
        if f.future {
            w.str("x-aad-v").uint(2);
        }
    }
    if f.future {
        w.str("x-priority").array(2).uint(5).nil();
    }
    w.into_bytes()
}

fn body(f: &Forge) -> Vec<u8> {
    if f.kind == Kind::Reply {
        // A well-formed reply body ({ok: nil}): only the header can make it malformed.
        return ReplyBody::Ok(Bytes::from_static(&[0xc0])).encode();
    }
    let mut ctx = Writer::default();
    ctx.map(1 + usize::from(f.future))
        .str("request_id")
        .str("req-forged");
    if f.future {
        ctx.str("x-trace").map(1).str("span").uint(7);
    }
    let ctx = ctx.into_bytes();
    if !f.future {
        return RequestBody::encode(&f.method, Version::new(1, 0), None, &f.args, &ctx);
    }
    // A newer sender: one more argument and one more body key (an ext value).
    let mut args = Writer::default();
    let n = f.args.first().map_or(0, |b| usize::from(b & 0x0f));
    args.map(n + 1)
        .raw(f.args.get(1..).unwrap_or_default())
        .str("x-new-arg")
        .bin(b"\x00\x01");
    let mut w = Writer::default();
    w.map(5).str("method").str(&f.method).str("ver").str("1.0");
    w.str("args").raw(&args.into_bytes()).str("ctx").raw(&ctx);
    w.str("x-body").raw(&[0xd4, 0x01, 0x02]);
    w.into_bytes()
}

impl Forger {
    /// The attacker's kit: the signing key and k3 of the guest whose bundle this is.
    pub fn from_bundle(bundle: &GuestBundle) -> Result<Self, BoxError> {
        let sig_id = bundle.own_key_id(Role::Sig);
        let seed = bundle
            .signing_seed()
            .ok_or("bundle without a signing seed")?;
        let k3_id = bundle.own_key_id(Role::K3);
        let k3 = bundle
            .secret_keys()
            .get(&k3_id)
            .ok_or("bundle without k3")?
            .clone();
        let (kb_id, kb) = bundle
            .secret_keys()
            .iter()
            .find(|(id, _)| id.role() == Role::Kb)
            .map(|(id, key)| (id.clone(), key.clone()))
            .ok_or("bundle without kb")?;
        Ok(Self {
            signer: Ed25519Signer::new(sig_id, seed)?,
            k3: (k3_id, k3),
            kb: (kb_id, kb),
        })
    }

    /// Builds the envelope bytes of `f`.
    pub fn build(&self, f: &Forge) -> Result<Vec<u8>, BoxError> {
        let mut nonce = [0u8; 24];
        sealrpc_core::rand::fill(&mut nonce);
        let plain = body(f);
        let (h, b) = if f.seal {
            let (key_id, key) = match f.seal_key {
                ForgeSeal::OwnK3 => (&self.k3.0, &self.k3.1),
                ForgeSeal::Broadcast => (&self.kb.0, &self.kb.1),
            };
            let h = header(f, Some((key_id, &nonce)));
            let b = seal_with(key, &nonce, &h, &plain)?;
            (h, b)
        } else {
            (header(f, None), plain)
        };
        let mut sigs = Vec::new();
        if f.sign {
            sigs.push(SignatureItem {
                key_id: self.signer.key_id().to_string(),
                algorithm: self.signer.algorithm().to_owned(),
                signature: self.signer.sign(&signature_input(&h, &b))?,
            });
        }
        if let Some(key_id) = &f.garbage_signature_by {
            let mut signature = vec![0u8; 64];
            sealrpc_core::rand::fill(&mut signature);
            sigs.push(SignatureItem {
                key_id: key_id.clone(),
                algorithm: self.signer.algorithm().to_owned(),
                signature,
            });
        }
        if !f.future {
            return Ok(encode_envelope(&h, &b, &sigs));
        }
        // A newer sender: an extra envelope key, an extra key in the signature item, and a
        // signature of an algorithm this release does not know (skipped).
        let mut w = Writer::default();
        w.map(5);
        w.str("v").uint(1).str("h").bin(&h).str("b").bin(&b);
        w.str("sig").array(sigs.len() + 1);
        w.map(3)
            .str("k")
            .str(&self.signer.key_id().to_string())
            .str("a")
            .str("slh-dsa-sha2-128s")
            .str("s")
            .bin(&[0x5a; 96]);
        for s in &sigs {
            w.map(4)
                .str("k")
                .str(&s.key_id)
                .str("a")
                .str(&s.algorithm)
                .str("s")
                .bin(&s.signature)
                .str("x-sig")
                .str("future");
        }
        w.str("x-route").map(1).str("hops").array(2).uint(1).uint(2);
        Ok(w.into_bytes())
    }
}
