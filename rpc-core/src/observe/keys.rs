//! The metric keys of calls and requests, built once per method and kind.
//!
//! A key is plain data (a name and its labels), independent of any recorder: caching it is
//! always correct. What is *not* cached is the registration: each call still registers its
//! metrics with the recorder in force at that moment (a global one installed at any time,
//! or a thread's local one), so a call only skips building, allocating and hashing keys.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};

use metrics::{Key, Label, SharedString};

use super::{
    CLIENT_CALL_DURATION, CLIENT_CALLS, CLIENT_CALLS_IN_FLIGHT, OK, SERVER_REQUEST_DURATION,
    SERVER_REQUESTS, SERVER_REQUESTS_IN_FLIGHT,
};
use crate::wire::Kind;

/// The three metric names of one side.
#[derive(Debug)]
pub(crate) struct Names {
    total: &'static str,
    duration: &'static str,
    in_flight: &'static str,
}

/// A client's calls and casts.
pub(crate) const CLIENT: Names = Names {
    total: CLIENT_CALLS,
    duration: CLIENT_CALL_DURATION,
    in_flight: CLIENT_CALLS_IN_FLIGHT,
};

/// A server's admitted requests.
pub(crate) const SERVER: Names = Names {
    total: SERVER_REQUESTS,
    duration: SERVER_REQUEST_DURATION,
    in_flight: SERVER_REQUESTS_IN_FLIGHT,
};

/// The keys of one method and kind on one side.
#[derive(Debug)]
pub(crate) struct TimerKeys {
    /// The in-flight gauge.
    pub(crate) in_flight: Key,
    /// The latency histogram.
    pub(crate) duration: Key,
    /// The total of successes (the outcome of nearly every call).
    ok: Key,
    total: &'static str,
    method: Label,
    kind: Label,
}

impl TimerKeys {
    fn new(names: &'static Names, method: &SharedString, kind: Kind) -> Self {
        let method = Label::new("method", method.clone());
        let kind = Label::new("kind", kind.as_str());
        let pair = || vec![method.clone(), kind.clone()];
        let total = |outcome: &'static str| {
            let mut labels = pair();
            labels.push(Label::new("outcome", outcome));
            Key::from_parts(names.total, labels)
        };
        Self {
            in_flight: Key::from_parts(names.in_flight, pair()),
            duration: Key::from_parts(names.duration, pair()),
            ok: total(OK),
            total: names.total,
            method,
            kind,
        }
    }

    /// Runs `f` with the key of the total for `outcome` (built only for an outcome other
    /// than [`OK`]).
    pub(crate) fn with_total<R>(&self, outcome: &'static str, f: impl FnOnce(&Key) -> R) -> R {
        if outcome == OK {
            return f(&self.ok);
        }
        let labels = vec![
            self.method.clone(),
            self.kind.clone(),
            Label::new("outcome", outcome),
        ];
        f(&Key::from_parts(self.total, labels))
    }
}

/// The keys of one method on one side, per kind, each built on first use.
#[derive(Debug)]
pub(crate) struct MethodKeys {
    names: &'static Names,
    method: SharedString,
    kinds: [OnceLock<TimerKeys>; 5],
}

impl MethodKeys {
    /// The keys of `method` (already a label value: shared, so building costs no copy).
    pub(crate) fn new(names: &'static Names, method: SharedString) -> Self {
        Self {
            names,
            method,
            kinds: Default::default(),
        }
    }

    /// The keys for messages of `kind`.
    pub(crate) fn of(&self, kind: Kind) -> &TimerKeys {
        let slot = match kind {
            Kind::Call => 0,
            Kind::Cast => 1,
            Kind::Fanout => 2,
            Kind::Reply => 3,
            Kind::Notify => 4,
        };
        self.kinds[slot].get_or_init(|| TimerKeys::new(self.names, &self.method, kind))
    }
}

/// The keys of the methods this process's clients called (named by the application).
static CLIENT_METHODS: RwLock<Option<HashMap<Arc<str>, Arc<MethodKeys>>>> = RwLock::new(None);

/// The keys of a client's calls of `method`, built on its first call.
pub(crate) fn client(method: &str) -> Arc<MethodKeys> {
    {
        let known = CLIENT_METHODS.read().unwrap_or_else(|p| p.into_inner());
        if let Some(keys) = known.as_ref().and_then(|m| m.get(method)) {
            return Arc::clone(keys);
        }
    }
    let mut known = CLIENT_METHODS.write().unwrap_or_else(|p| p.into_inner());
    let map = known.get_or_insert_with(HashMap::new);
    let keys = map.entry(Arc::from(method)).or_insert_with_key(|name| {
        let label = SharedString::from_shared(Arc::clone(name));
        Arc::new(MethodKeys::new(&CLIENT, label))
    });
    Arc::clone(keys)
}
