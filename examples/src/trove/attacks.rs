//! The compromised-guest attack table: its rows, and how each outcome is observed (the
//! receiver's rejection counters, the error reply, and the cluster's execution ledger).
//! The attacks themselves are in [`super::attack_rows`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use sealrpc_core::security::Security;
use sealrpc_core::security::{CounterSnapshot, RejectReason};
use sealrpc_core::{Error, ErrorCode};

use super::ledger::Ledger;
use super::wait_until;

/// Why an attack failed, as the system reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// The receiver's security pipeline rejected the message (counted by reason).
    Pipeline(RejectReason),
    /// Admitted (authenticated), then refused by authorization in code.
    Forbidden,
    /// The broker refused the publish (per-guest broker credentials).
    BrokerAccessRefused,
    /// A context secret stopped at the hop it was given to: what reached the attacker
    /// carried none.
    SecretWithheld,
    /// The transport refused to store messages for an address nobody serves.
    NoListener,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Pipeline(r) => write!(f, "{r}"),
            Reason::Forbidden => f.write_str("forbidden"),
            Reason::BrokerAccessRefused => f.write_str("broker ACCESS_REFUSED"),
            Reason::SecretWithheld => f.write_str("secret_withheld"),
            Reason::NoListener => f.write_str("no_listener"),
        }
    }
}

/// One row of the table.
#[derive(Debug, Clone)]
pub struct Row {
    /// What the attacker tried.
    pub attack: String,
    /// The reason expected.
    pub expected: Reason,
    /// The reason observed, if any.
    pub observed: Option<Reason>,
    /// The error reply the attacker got, if any (`-` for none: casts, or replies it
    /// cannot read).
    pub reply: String,
    /// Whether any handler anywhere in the cluster ran meanwhile.
    pub executed: bool,
    /// Extra detail for the reader.
    pub note: String,
}

impl Row {
    /// The attack was rejected: a typed reason was observed and nothing executed.
    pub fn rejected(&self) -> bool {
        self.observed.is_some() && !self.executed
    }

    /// Rejected for the expected reason.
    pub fn as_expected(&self) -> bool {
        self.rejected() && self.observed.as_ref() == Some(&self.expected)
    }
}

/// A snapshot of what the receiver and the cluster had counted before an attack.
#[derive(Debug)]
pub struct Probe {
    receiver: Arc<Security>,
    ledger: Arc<Ledger>,
    before: CounterSnapshot,
    executed: u64,
    denied: u64,
}

impl Probe {
    /// Starts watching `receiver` (and the whole cluster's ledger).
    pub fn new(receiver: &Arc<Security>, ledger: &Arc<Ledger>) -> Self {
        Self {
            receiver: Arc::clone(receiver),
            ledger: Arc::clone(ledger),
            before: receiver.counters(),
            executed: ledger.total_executed(),
            denied: ledger.total_denied(),
        }
    }

    fn rejected_delta(&self) -> Option<RejectReason> {
        let now = self.receiver.counters();
        RejectReason::ALL
            .into_iter()
            .find(|r| now.rejected_for(*r) > self.before.rejected_for(*r))
    }

    /// Waits for the receiver to react, then reads the outcome: a pipeline rejection, a
    /// refusal by authorization in code, or a forbidden/rejected error reply.
    pub async fn outcome(&self, reply: Option<&Result<(), Error>>) -> (Option<Reason>, bool) {
        let reacted = || {
            self.rejected_delta().is_some()
                || self.ledger.total_denied() > self.denied
                || self.ledger.total_executed() > self.executed
        };
        if reply.is_none() {
            wait_until(Duration::from_secs(5), reacted).await;
        }
        // Anything the message could still trigger (an execution) has a moment to show.
        tokio::time::sleep(Duration::from_millis(30)).await;
        let executed = self.ledger.total_executed() > self.executed;
        let reason = match self.rejected_delta() {
            Some(r) => Some(Reason::Pipeline(r)),
            None if self.ledger.total_denied() > self.denied => Some(Reason::Forbidden),
            None => match reply {
                Some(Err(Error::Rejected {
                    code: ErrorCode::Forbidden,
                    ..
                })) => Some(Reason::Forbidden),
                _ => None,
            },
        };
        (reason, executed)
    }
}

/// How an error reply reads in the table.
pub fn reply_text(r: &Result<(), Error>) -> String {
    match r {
        Ok(()) => "ok (!)".into(),
        Err(Error::Rejected { code, .. }) => format!("{code}"),
        Err(e) => format!("{}", e.code()),
    }
}
