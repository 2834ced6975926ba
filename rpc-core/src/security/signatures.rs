//! The signatures step of the receive pipeline: every item of a known algorithm verified
//! over the exact bytes received (docs/wire-format.md §5).

use super::Security;
use super::inbound::key_reason;
use super::reject::RejectReason;
use crate::principal::Principal;
use crate::wire::{EnvelopeRef, KeyId, Role, signature_input};

impl Security {
    fn knows_algorithm(&self, algorithm: &str) -> bool {
        self.config
            .verifiers
            .iter()
            .any(|v| v.algorithm() == algorithm)
    }

    /// Verifies every signature item of a known algorithm; all must verify and name one
    /// principal. Items of unknown algorithms are skipped, whatever their other keys hold.
    pub(super) fn verify_signatures(
        &self,
        env: &EnvelopeRef<'_>,
    ) -> Result<Option<Principal>, RejectReason> {
        // Items whose `k` or `s` did not read as a str and a bin: malformed if the algorithm
        // is known, skipped otherwise (a future algorithm may shape them differently).
        for algorithm in &env.opaque_signatures {
            if self.knows_algorithm(algorithm) {
                return Err(RejectReason::BadSignature);
            }
            self.counters.skipped_algorithm();
        }
        let mut input = None;
        let mut signer: Option<Principal> = None;
        for (i, item) in env.signatures.iter().enumerate() {
            // A byte-identical copy of an item already verified proves nothing new: skip it
            // rather than pay for the same verification again (same verdict, less work).
            if env.signatures[..i].contains(item) {
                continue;
            }
            let Some(verifier) = self
                .config
                .verifiers
                .iter()
                .find(|v| v.algorithm() == item.algorithm)
            else {
                self.counters.skipped_algorithm();
                continue;
            };
            let key = KeyId::parse(&item.key_id).map_err(|_| RejectReason::BadSignature)?;
            if key.role() != Role::Sig {
                return Err(RejectReason::BadSignature);
            }
            if let Some(keys) = &self.config.keys {
                keys.check_key(&key).map_err(|e| {
                    let reason = key_reason(e);
                    if reason == RejectReason::UnknownKey && self.log_limit.allow() {
                        tracing::warn!(key_id = %key, "signed by a key that is not pinned here");
                    }
                    reason
                })?;
            }
            let input = input.get_or_insert_with(|| signature_input(env.header, env.body));
            verifier
                .verify(&key, input, &item.signature)
                .map_err(key_reason)?;
            match &signer {
                Some(p) if p != key.principal() => return Err(RejectReason::SignerMismatch),
                Some(_) => {}
                None => signer = Some(key.principal().clone()),
            }
        }
        Ok(signer)
    }
}
