//! The send pipeline: encode the header and the body straight into the envelope, seal the
//! body where it lies there (associated data = the exact header bytes), then sign the
//! header and body bytes as they will be sent.

use super::Security;
use super::hooks::Peer;
use super::policy::{Mode, PeerClass};
use crate::error::Error;
use crate::wire::{
    Body, EnvelopeWriter, Header, Kind, SealInfo, SignatureItem, encode_envelope, signature_input,
};

/// One message on its way out. Its `Debug` shows the body's size, never the plaintext.
pub struct Outbound {
    /// The header; `src` is set to this node's principal, and `seal` by the pipeline.
    pub header: Header,
    /// The body, encoded straight into the envelope (where it is sealed): its values are
    /// copied once. When it holds a `Secret`, the `Bytes` it carries are the secret's
    /// zeroizing ones ([`Encoded`](crate::payload::Encoded)), and the envelope buffer is
    /// wiped unless the sealed envelope is returned.
    pub body: Body,
    /// Whom it is for (decides the seal key and the peer class).
    pub peer: Peer,
    /// The body holds a `Secret`: refuse to send it unsealed.
    pub carries_secret: bool,
}

impl std::fmt::Debug for Outbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbound")
            .field("header", &self.header)
            .field("body_len", &self.body.encoded_len())
            .field("peer", &self.peer)
            .field("carries_secret", &self.carries_secret)
            .finish()
    }
}

impl Security {
    /// Seals and signs `out` as the policy for its peer says and returns the envelope bytes.
    pub fn seal_and_sign(&self, out: Outbound) -> Result<Vec<u8>, Error> {
        let Outbound {
            mut header,
            body,
            peer,
            carries_secret,
        } = out;
        let class = match peer {
            Peer::ControlPlane => PeerClass::ControlPlane,
            Peer::Guest(_) => PeerClass::Guests,
            Peer::Guests => PeerClass::Fanout,
        };
        let policy = *self.policy().class(class);
        let mode = policy.effective_mode(std::time::SystemTime::now());
        let secure = mode != Mode::Off;
        header.src = self.config.principal.as_str().to_owned();
        header.seal = None;

        let seal = match (&self.config.sealer, &self.config.keys) {
            (Some(sealer), Some(keys)) if secure && policy.seal => match keys.seal_key_for(&peer) {
                Some(key) => Some((sealer, key)),
                // Enforce requires a seal and this node seals, but it holds no key for the
                // peer (revoked, never issued keys): refuse rather than send the body in
                // clear. Permissive still sends unsealed (rolling upgrades).
                None if mode == Mode::Enforce => {
                    return Err(Error::Security(keys.no_seal_key(&peer)));
                }
                None => None,
            },
            _ => None,
        };
        if seal.is_none() && carries_secret {
            return Err(Error::SecretOverUnsealedChannel);
        }
        let signer = self
            .config
            .signer
            .as_ref()
            .filter(|_| secure && (policy.sign || header.kind == Kind::Fanout));
        if let Some((_, key)) = &seal {
            let mut nonce = [0u8; 24];
            crate::rand::fill(&mut nonce);
            header.seal = Some(SealInfo {
                key_id: key.as_str().to_owned(),
                nonce,
            });
        }
        // The body is written once, into the envelope, and sealed where it lies there.
        let tag_len = seal.as_ref().map_or(0, |(sealer, _)| sealer.tag_len());
        let mut env = EnvelopeWriter::new(&header, &body, tag_len, signer.is_some());
        drop(body);
        if let (Some((sealer, key)), Some(info)) = (&seal, &header.seal) {
            let (aad, plaintext) = env.body_mut();
            let tag = sealer.seal_in_place(key, &info.nonce, aad, plaintext)?;
            env.push_tag(&tag);
        }

        let mut signatures = Vec::new();
        if let Some(signer) = signer {
            let (key_id, signature) =
                signer.sign_with_id(&signature_input(env.header(), env.body()))?;
            signatures.push(SignatureItem {
                key_id: key_id.as_str().to_owned(),
                algorithm: signer.algorithm().to_owned(),
                signature,
            });
        }
        // Only a sealer whose tag is not `tag_len` long misses the one-buffer path.
        Ok(env
            .finish(&signatures)
            .unwrap_or_else(|env| encode_envelope(env.header(), env.body(), &signatures)))
    }
}
