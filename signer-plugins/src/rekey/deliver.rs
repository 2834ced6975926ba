//! The control-plane side of rekeying: deliver one guest's bundle with bounded retries,
//! or every guest's with bounded concurrency and progress.

use std::time::Duration;

use ed25519_dalek::{Signature, VerifyingKey};
use futures_util::StreamExt;
use sealrpc_core::wire::{KeyId, Role};
use sealrpc_core::{Client, Context, Principal, Target};

use super::wrap;
use super::{
    DEFAULT_AGENT_TOPIC, INSTALL, InstallAck, InstallArgs, NAMESPACE, PREPARE, PrepareArgs,
    PrepareReply, array,
};
use crate::control::ControlPlaneKeys;
use crate::error::Error;

/// How often and how patiently a delivery is retried while the guest is unreachable
/// (no listener, timeout, transport failure). Other failures are not retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Attempts in all (at least 1).
    pub attempts: u32,
    /// Pause after the first failed attempt; doubled after each, up to `max_backoff`.
    pub first_backoff: Duration,
    /// Longest pause.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    /// 8 attempts, 200 ms doubling to 10 s: about 40 s in all.
    fn default() -> Self {
        Self {
            attempts: 8,
            first_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// `attempts` in all, `first_backoff` doubling up to `max_backoff`.
    pub fn new(attempts: u32, first_backoff: Duration, max_backoff: Duration) -> Self {
        Self {
            attempts: attempts.max(1),
            first_backoff,
            max_backoff,
        }
    }
}

/// What a delivery achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Delivered {
    /// The guest installed the bundle of this epoch and proved it with its new key.
    Installed {
        /// The epoch installed.
        epoch: u64,
    },
    /// The guest already holds this epoch (say, an earlier attempt's answer was lost).
    AlreadyCurrent {
        /// The guest's epoch.
        epoch: u64,
    },
}

/// Where a bulk rotation stands, given to the progress callback after each guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Progress {
    /// Guests finished (delivered or failed).
    pub done: usize,
    /// Guests in all.
    pub total: usize,
    /// Guests whose delivery failed.
    pub failed: usize,
}

/// The outcome of [`Rekey::deliver_all`].
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct BulkReport {
    /// Guests that installed their new bundle.
    pub installed: usize,
    /// Guests that already held it.
    pub already_current: usize,
    /// Guests whose delivery failed, with the last error (retry them later: the grace
    /// window keeps their previous epoch valid meanwhile).
    pub failed: Vec<(String, Error)>,
}

/// Delivers guests' current bundles over the bus (see the module docs).
#[derive(Debug, Clone)]
pub struct Rekey {
    keys: ControlPlaneKeys,
    topic: String,
    call_timeout: Duration,
    retry: RetryPolicy,
}

impl Rekey {
    /// Deliveries of bundles issued by `keys` (the state they hold decides the epoch), to
    /// agents on [`DEFAULT_AGENT_TOPIC`], 5 s per call, [`RetryPolicy::default`].
    pub fn new(keys: ControlPlaneKeys) -> Self {
        Self {
            keys,
            topic: DEFAULT_AGENT_TOPIC.to_owned(),
            call_timeout: Duration::from_secs(5),
            retry: RetryPolicy::default(),
        }
    }

    /// The guest agents' topic.
    pub fn topic(mut self, topic: impl Into<String>) -> Self {
        self.topic = topic.into();
        self
    }

    /// The timeout of each call.
    pub fn call_timeout(mut self, timeout: Duration) -> Self {
        self.call_timeout = timeout;
        self
    }

    /// The retry policy.
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Delivers `guest_id`'s bundle at its current epoch in the rotation state, retrying
    /// (bounded backoff) while the guest is unreachable. `client` must be this control
    /// plane's (it signs as a control-plane service).
    pub async fn deliver(&self, client: &Client, guest_id: &str) -> Result<Delivered, Error> {
        let mut pause = self.retry.first_backoff;
        let mut attempt = 1;
        loop {
            match self.attempt(client, guest_id).await {
                Err(Attempt::Unreachable(e)) if attempt < self.retry.attempts => {
                    tracing::debug!(guest = guest_id, attempt, error = %e, "rekey: guest unreachable, retrying");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(self.retry.max_backoff);
                    attempt += 1;
                }
                Err(Attempt::Unreachable(e) | Attempt::Failed(e)) => return Err(e),
                Ok(d) => return Ok(d),
            }
        }
    }

    /// Delivers every guest in `guest_ids`, at most `concurrency` at once, calling
    /// `progress` after each one finishes.
    pub async fn deliver_all(
        &self,
        client: &Client,
        guest_ids: Vec<String>,
        concurrency: usize,
        mut progress: impl FnMut(Progress),
    ) -> BulkReport {
        let total = guest_ids.len();
        let mut report = BulkReport::default();
        let mut results = futures_util::stream::iter(guest_ids)
            .map(|id| async move {
                let r = self.deliver(client, &id).await;
                (id, r)
            })
            .buffer_unordered(concurrency.max(1));
        let mut done = 0;
        while let Some((id, r)) = results.next().await {
            done += 1;
            match r {
                Ok(Delivered::Installed { .. }) => report.installed += 1,
                Ok(Delivered::AlreadyCurrent { .. }) => report.already_current += 1,
                Err(e) => report.failed.push((id, e)),
            }
            progress(Progress {
                done,
                total,
                failed: report.failed.len(),
            });
        }
        report
    }

    async fn attempt(&self, client: &Client, guest_id: &str) -> Result<Delivered, Attempt> {
        let guest = Principal::guest(guest_id)
            .ok_or_else(|| Attempt::Failed(Error::invalid("instance id", guest_id)))?;
        let fail = |reason: String| {
            Attempt::Failed(Error::Rekey {
                guest: guest.to_string(),
                reason,
            })
        };
        let epoch = self
            .keys
            .rotation()
            .guest_epoch(guest_id)
            .ok_or_else(|| fail("unknown guest (issue its keys first)".into()))?;
        let target = Target::guest(&self.topic, guest_id).namespace(NAMESPACE);
        let ctx = Context::new();
        let call = |e: sealrpc_core::Error| classify(&guest, e);

        let prepared: PrepareReply = client
            .prepare(target.clone())
            .timeout(self.call_timeout)
            .call(&ctx, PREPARE, &PrepareArgs {})
            .await
            .map_err(call)?;
        if prepared.epoch >= epoch {
            return Ok(Delivered::AlreadyCurrent {
                epoch: prepared.epoch,
            });
        }
        let guest_eph = array::<32>(&prepared.eph)
            .ok_or_else(|| fail("the guest's wrap key is not 32 bytes".into()))?;
        let bundle = self
            .keys
            .issue_guest_bundle(guest_id)
            .map_err(Attempt::Failed)?;
        if bundle.epoch() != epoch {
            return Err(fail(
                "the rotation state changed during the delivery".into(),
            ));
        }
        let wrapped = wrap::wrap(&guest_eph, &guest, epoch, bundle.to_json().as_bytes())
            .map_err(|why| fail(why.into()))?;
        let args = InstallArgs {
            epoch,
            guest_eph: guest_eph.to_vec(),
            cp_eph: wrapped.cp_eph.to_vec(),
            n: wrapped.nonce.to_vec(),
            ct: wrapped.ciphertext,
        };
        let ack: InstallAck = client
            .prepare(target)
            .timeout(self.call_timeout)
            .call(&ctx, INSTALL, &args)
            .await
            .map_err(call)?;
        // The proof: a signature by the guest's *new* key, which only the new bundle holds.
        let sig_id = KeyId::new(Role::Sig, guest.clone(), epoch);
        let public = self
            .keys
            .public_key(&sig_id)
            .map_err(|e| fail(e.to_string()))?;
        let proof = array::<64>(&ack.proof)
            .map(|b| Signature::from_bytes(&b))
            .ok_or_else(|| fail("the acknowledgement's proof is not 64 bytes".into()))?;
        let verified = VerifyingKey::from_bytes(&public).ok().is_some_and(|vk| {
            vk.verify_strict(&wrap::ack_message(&guest, epoch, &wrapped.cp_eph), &proof)
                .is_ok()
        });
        if ack.epoch != epoch || !verified {
            return Err(fail(
                "the acknowledgement is not signed by the new key".into(),
            ));
        }
        Ok(Delivered::Installed { epoch })
    }
}

/// A failed attempt: worth retrying (the guest may be down) or not.
enum Attempt {
    Unreachable(Error),
    Failed(Error),
}

fn classify(guest: &Principal, e: sealrpc_core::Error) -> Attempt {
    let retry = matches!(
        e,
        sealrpc_core::Error::Timeout(_)
            | sealrpc_core::Error::NoListener(_)
            | sealrpc_core::Error::Transport(_)
    );
    let e = Error::Rekey {
        guest: guest.to_string(),
        reason: e.to_string(),
    };
    if retry {
        Attempt::Unreachable(e)
    } else {
        Attempt::Failed(e)
    }
}
