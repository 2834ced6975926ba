//! Security: the hooks (traits), the policy, the replay guard, and the send and receive
//! pipelines that call them in the order docs/wire-format.md fixes.

mod applied;
mod counters;
mod evidence;
mod hooks;
mod inbound;
mod open;
mod outbound;
mod policy;
mod ratelimit;
mod record;
mod reject;
mod replay;
mod signatures;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use applied::AppliedPolicy;
pub use counters::CounterSnapshot;
pub(crate) use counters::Counters;
pub use hooks::{KeyError, KeyResolver, Opener, Peer, Sealer, Signer, Verifier};
pub use inbound::{Admitted, AdmittedBody, Rejection};
pub use open::ReceivedBytes;
pub use outbound::Outbound;
pub use policy::{Auth, ClassPolicy, Mode, PeerClass, Policy};
pub use reject::RejectReason;
pub use replay::{
    ReplayCheck, ReplayConfig, ReplayGuard, ReplayStore, ReplayStoreError, ReplayUsage,
    ReplayVerdict, RestartRule, quota_rule,
};

use crate::principal::Principal;
use crate::wire::Limits;
use ratelimit::RateLimit;

/// What a node registers: its identity, its hooks and its policy (builder style).
#[derive(Debug, Clone)]
pub struct SecurityConfig {
    principal: Principal,
    signer: Option<Arc<dyn Signer>>,
    verifiers: Vec<Arc<dyn Verifier>>,
    sealer: Option<Arc<dyn Sealer>>,
    opener: Option<Arc<dyn Opener>>,
    keys: Option<Arc<dyn KeyResolver>>,
    policy: Policy,
    limits: Limits,
    replay: ReplayConfig,
    replay_store: Option<Arc<dyn ReplayStore>>,
    replay_store_timeout: Duration,
    restart_rule: RestartRule,
}

/// How long the receive pipeline waits for a shared replay store by default.
pub const DEFAULT_REPLAY_STORE_TIMEOUT: Duration = Duration::from_millis(250);

impl SecurityConfig {
    /// A node called `principal` with no hooks: everything it sends is plain, and it accepts
    /// only unauthenticated traffic, so its policy defaults to [`Mode::Off`].
    pub fn insecure(principal: Principal) -> Self {
        Self {
            principal,
            signer: None,
            verifiers: Vec::new(),
            sealer: None,
            opener: None,
            keys: None,
            policy: Policy::uniform(ClassPolicy::off()),
            limits: Limits::default(),
            replay: ReplayConfig::default(),
            replay_store: None,
            replay_store_timeout: DEFAULT_REPLAY_STORE_TIMEOUT,
            restart_rule: RestartRule::default(),
        }
    }

    /// A node whose identity and seal keys come from `keys`, enforcing signatures and
    /// seals by default. Register the primitives with the other builder methods.
    pub fn new(keys: Arc<dyn KeyResolver>) -> Self {
        Self {
            principal: keys.me(),
            keys: Some(keys),
            policy: Policy::default(),
            ..Self::insecure(Principal::control())
        }
    }

    /// Registers the signer.
    pub fn signer(mut self, signer: Arc<dyn Signer>) -> Self {
        self.signer = Some(signer);
        self
    }

    /// Registers a verifier (one per algorithm).
    pub fn verifier(mut self, verifier: Arc<dyn Verifier>) -> Self {
        self.verifiers.push(verifier);
        self
    }

    /// Registers the sealer.
    pub fn sealer(mut self, sealer: Arc<dyn Sealer>) -> Self {
        self.sealer = Some(sealer);
        self
    }

    /// Registers the opener.
    pub fn opener(mut self, opener: Arc<dyn Opener>) -> Self {
        self.opener = Some(opener);
        self
    }

    /// Sets the policy.
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// Sets the size limits.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Sets the replay guard's window and capacity.
    pub fn replay(mut self, replay: ReplayConfig) -> Self {
        self.replay = replay;
        self
    }

    /// Records admitted ids in `store` instead of this process's memory: one store shared
    /// by every replica of a service, that survives restarts (e.g. `sealrpc-replay-redis`).
    /// The window and the quota of [`replay`](Self::replay) still apply (the store enforces
    /// them). Receivers then await the store: servers and clients do, through
    /// [`AdmitLayer`](crate::layer::AdmitLayer); [`Security::admit`] cannot and refuses
    /// (`ReplayStoreUnavailable`), use [`Security::admit_async`].
    pub fn replay_store(mut self, store: Arc<dyn ReplayStore>) -> Self {
        self.replay_store = Some(store);
        self
    }

    /// How long a receiver waits for the shared replay store before refusing the message
    /// (`ReplayStoreUnavailable`, fail closed); default 250 ms.
    pub fn replay_store_timeout(mut self, timeout: Duration) -> Self {
        self.replay_store_timeout = timeout;
        self
    }

    /// What the in-process replay store does with messages stamped before it started
    /// (default [`RestartRule::RefuseBeforeStart`]). Not used with a shared store.
    pub fn restart_rule(mut self, rule: RestartRule) -> Self {
        self.restart_rule = rule;
        self
    }

    /// This node's principal.
    pub fn principal(&self) -> &Principal {
        &self.principal
    }

    /// The policy.
    pub fn current_policy(&self) -> &Policy {
        &self.policy
    }

    /// The limits.
    pub fn current_limits(&self) -> &Limits {
        &self.limits
    }

    /// Builds the runtime state (replay guard, counters) shared by a node's clients and servers.
    pub fn build(self) -> Arc<Security> {
        Arc::new(Security {
            guard: ReplayGuard::with_restart_rule(self.replay, self.restart_rule, now_ms()),
            counters: Counters::default(),
            policy: std::sync::RwLock::new(self.policy),
            log_limit: RateLimit::new(20),
            reply_limit: RateLimit::new(100),
            store_log_limit: RateLimit::new(5),
            config: self,
        })
    }
}

/// A node's security runtime: config, replay guard and counters. Share it (it is an `Arc`)
/// between the node's clients and servers so that replay state and counters are common.
#[derive(Debug)]
pub struct Security {
    config: SecurityConfig,
    policy: std::sync::RwLock<Policy>,
    guard: ReplayGuard,
    counters: Counters,
    log_limit: RateLimit,
    reply_limit: RateLimit,
    store_log_limit: RateLimit,
}

impl Security {
    /// This node's principal.
    pub fn principal(&self) -> &Principal {
        &self.config.principal
    }

    /// The policy in force.
    pub fn policy(&self) -> Policy {
        *self.policy.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Replaces the policy at run time (e.g. flip Permissive to Enforce after an upgrade).
    pub fn set_policy(&self, policy: Policy) {
        *self.policy.write().unwrap_or_else(|p| p.into_inner()) = policy;
    }

    /// The limits.
    pub fn limits(&self) -> &Limits {
        &self.config.limits
    }

    /// The counters.
    pub fn counters(&self) -> CounterSnapshot {
        self.counters.snapshot()
    }

    /// The in-process replay guard (for inspection; unused when a shared store is set).
    pub fn replay_guard(&self) -> &ReplayGuard {
        &self.guard
    }

    /// The shared replay store, if one is registered.
    pub fn replay_store(&self) -> Option<&Arc<dyn ReplayStore>> {
        self.config.replay_store.as_ref()
    }

    /// The key resolver, if one is registered.
    pub fn keys(&self) -> Option<&Arc<dyn KeyResolver>> {
        self.config.keys.as_ref()
    }

    /// True when one more error reply to a rejected message may be sent this second.
    pub fn allow_error_reply(&self) -> bool {
        self.reply_limit.allow()
    }

    /// Counts an authorization refusal (a call answered `Forbidden`).
    pub(crate) fn count_forbidden(&self) {
        self.counters.forbid();
    }

    /// Counts a rejection decided outside the pipeline (e.g. an unexpected reply).
    pub fn count_rejection(&self, reason: RejectReason) {
        self.counters.reject(reason);
    }
}

/// Milliseconds since the Unix epoch, UTC.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
