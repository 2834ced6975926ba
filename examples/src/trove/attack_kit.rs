//! The attacker's kit: raw injection through the attacker's broker access, a capture of
//! legitimate traffic from the wiretap, and tampering with captured envelopes.

use sealrpc_core::bytes::Bytes;
use sealrpc_core::transport::{Address, Outgoing};
use sealrpc_core::wire::{EnvelopeRef, Header, encode_envelope};
use sealrpc_core::{Client, Context, Secret, Target};

use super::BoxError;
use super::api::{CreateUser, GuestReply, UpdateStatus, method};
use super::attacks::{Probe, Reason, Row};
use super::cluster::Cluster;
use super::forge::Forger;
use super::guest::Guest;
use sealrpc_core::security::RejectReason;

/// One attack session of guest A against a running cluster.
pub(crate) struct Attack<'a> {
    pub(crate) cluster: &'a Cluster,
    pub(crate) b: &'a Guest,
    pub(crate) forger: Forger,
    /// A's keys over the attacker's broker access.
    pub(crate) client: Client,
    pub(crate) rows: Vec<Row>,
}

pub(crate) fn status(instance_id: &str, status: &str) -> UpdateStatus {
    UpdateStatus {
        instance_id: instance_id.to_owned(),
        status: status.to_owned(),
    }
}

impl Attack<'_> {
    pub(crate) fn b_queue(&self) -> Address {
        Address::Server {
            topic: self.cluster.net.topics.guestagent.clone(),
            server: self.b.id.clone(),
        }
    }

    pub(crate) fn conductor(&self) -> Address {
        Address::Topic(self.cluster.net.topics.conductor.clone())
    }

    pub(crate) async fn inject(&self, to: Address, bytes: Vec<u8>) -> Result<(), BoxError> {
        self.cluster
            .net
            .attacker
            .send(Outgoing {
                to,
                payload: Bytes::from(bytes),
                reply_to: None,
                expiration: None,
                confirm: false,
            })
            .await?;
        Ok(())
    }

    pub(crate) fn record(
        &mut self,
        attack: &str,
        expected: Reason,
        probe: (Option<Reason>, bool),
        reply: String,
        note: &str,
    ) {
        self.rows.push(Row {
            attack: attack.to_owned(),
            expected,
            observed: probe.0,
            reply,
            executed: probe.1,
            note: note.to_owned(),
        });
    }

    /// Sends raw bytes to `to` and records how `receiver` reacted.
    pub(crate) async fn raw_row(
        &mut self,
        attack: &str,
        to_conductor: bool,
        bytes: Vec<u8>,
        expected: RejectReason,
        note: &str,
    ) -> Result<(), BoxError> {
        let (receiver, to) = if to_conductor {
            (&self.cluster.conductor.security, self.conductor())
        } else {
            (&self.b.security, self.b_queue())
        };
        let probe = Probe::new(receiver, &self.cluster.ledger);
        self.inject(to, bytes).await?;
        let outcome = probe.outcome(None).await;
        self.record(
            attack,
            Reason::Pipeline(expected),
            outcome,
            "-".into(),
            note,
        );
        Ok(())
    }

    /// The task manager makes a legitimate `create_user` call to B; A captures it.
    pub(crate) async fn capture_call_to_b(
        &self,
        password: &Secret<String>,
    ) -> Result<Bytes, BoxError> {
        let mut tap = self.cluster.net.wiretap();
        let args = CreateUser {
            instance_id: self.b.id.clone(),
            user: "reporting".into(),
            password: password.clone(),
            databases: vec!["orders".into()],
        };
        let target = Target::guest(
            self.cluster.net.topics.guestagent.clone(),
            self.b.id.clone(),
        );
        let tm = &self.cluster.taskmanager.client;
        let r = tm
            .call::<_, GuestReply>(&Context::new(), &target, method::CREATE_USER, &args)
            .await;
        self.cluster.ledger.rpc(r.is_ok());
        r?;
        let want = self.b_queue();
        while let Ok((to, bytes)) = tap.try_recv() {
            if to == want {
                return Ok(bytes);
            }
        }
        Err("the wiretap saw no call to B".into())
    }
}

/// Rebuilds `bytes` with its header's deadline extended (signatures kept as they were).
pub(crate) fn tamper_header(bytes: &[u8]) -> Result<Vec<u8>, BoxError> {
    let env = EnvelopeRef::decode(bytes, &Default::default())?;
    let mut h = Header::decode(env.header)?;
    h.ttl = Some(h.ttl.unwrap_or(0).saturating_mul(100));
    Ok(encode_envelope(&h.encode(), env.body, &env.signatures))
}

/// Flips one bit of the sealed body (signatures kept as they were).
pub(crate) fn tamper_body(bytes: &[u8]) -> Result<Vec<u8>, BoxError> {
    let env = EnvelopeRef::decode(bytes, &Default::default())?;
    let mut b = env.body.to_vec();
    let mid = b.len() / 2;
    b[mid] ^= 0x01;
    Ok(encode_envelope(env.header, &b, &env.signatures))
}

/// True when `needle` occurs in `hay`.
pub(crate) fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}
