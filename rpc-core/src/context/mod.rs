//! The request [`Context`]: request and correlation ids, deadline, the caller's
//! authenticated principal, and custom entries (plain or secret) that travel with a call.
//!
//! # What crosses to the next peer
//!
//! A secret entry never crosses a hop by itself. The secrets a context *sends* are only
//! those inserted on this side ([`Context::insert_secret`]) or forwarded by name
//! ([`Context::forward_secret`]). The secrets a handler *receives* are readable
//! ([`Context::secret`]) but are never sent on: not when the received context is passed to
//! a call as it is, nor when it is cloned, nor through a [`Context::child`]. So a secret
//! the API gives the task manager reaches a guest only if the task manager names it.
//!
//! | carried to a [`Context::child`] | |
//! |---|---|
//! | request id | a fresh one |
//! | global request id | the parent's (the parent's request id if it had none) |
//! | correlation ids | the parent's, then the parent's request id |
//! | deadline | the parent's |
//! | plain custom entries | all of them (they travel unsealed when policy allows: put nothing confidential there) |
//! | secret entries | **none**, unless forwarded by name |
//! | caller principal | never (the receiver fills it from what it proves) |

mod child;
mod wire;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;
use zeroize::Zeroize;

use crate::error::Error;
use crate::payload::{decode_value, encode_value};
use crate::principal::Principal;
use crate::secret::Secret;

pub(crate) use wire::{MAX_CORRELATION_IDS, MAX_ENTRIES};

/// What travels with a request besides its arguments.
///
/// The `principal` is never taken from the wire: the receiver fills it from what the
/// security pipeline proved, overwriting anything a sender wrote. Custom entries are stored
/// encoded; secret entries are stored in [`Secret`] buffers (zeroized on drop), are shown
/// as `[REDACTED]` by `Debug`, and make the message refuse to travel unsealed.
///
/// Secrets received from a caller are never sent on implicitly: a handler that calls
/// another service with its own context, a clone of it or a [`Context::child`] sends none
/// of them; [`Context::forward_secret`] sends one by name.
#[derive(Clone)]
pub struct Context {
    /// Shared: every call made with the context carries it without copying it.
    pub(crate) request_id: Arc<str>,
    pub(crate) global_request_id: Option<Arc<str>>,
    pub(crate) correlation_ids: Vec<String>,
    pub(crate) deadline: Option<SystemTime>,
    pub(crate) principal: Option<Principal>,
    pub(crate) custom: BTreeMap<String, Bytes>,
    pub(crate) secrets: BTreeMap<String, SecretEntry>,
}

/// One secret entry: its encoded value, and whether this context sends it.
#[derive(Clone)]
pub(crate) struct SecretEntry {
    pub(crate) value: Secret<Vec<u8>>,
    /// True for an entry inserted or forwarded on this side; false for one received from a
    /// caller, which is readable here and never sent on.
    pub(crate) sent: bool,
}

impl SecretEntry {
    /// An entry this context sends.
    pub(crate) fn outgoing(value: Vec<u8>) -> Self {
        Self {
            value: Secret::new(value),
            sent: true,
        }
    }

    /// An entry received from a caller: readable, never sent on.
    pub(crate) fn received(value: Vec<u8>) -> Self {
        Self {
            value: Secret::new(value),
            sent: false,
        }
    }
}

/// A fresh request id, `req-` and 32 hex digits.
pub fn new_request_id() -> String {
    format!("req-{}", crate::wire::MessageId::random().to_hex())
}

/// A fresh request id, shared.
pub(crate) fn fresh_request_id() -> Arc<str> {
    Arc::from(new_request_id())
}

impl Context {
    /// Most correlation ids a received context keeps (more are skipped).
    pub const MAX_CORRELATION_IDS: usize = MAX_CORRELATION_IDS;
    /// Most custom and secret entries, together, that a received context keeps (more are
    /// skipped).
    pub const MAX_ENTRIES: usize = MAX_ENTRIES;

    /// An empty context with a fresh request id.
    pub fn new() -> Self {
        Self::with_id(fresh_request_id())
    }

    /// An empty context with request id `request_id`.
    pub(crate) fn with_id(request_id: Arc<str>) -> Self {
        Self {
            request_id,
            global_request_id: None,
            correlation_ids: Vec::new(),
            deadline: None,
            principal: None,
            custom: BTreeMap::new(),
            secrets: BTreeMap::new(),
        }
    }

    /// Sets the request id.
    pub fn with_request_id(mut self, id: impl Into<String>) -> Self {
        self.request_id = Arc::from(id.into());
        self
    }

    /// The request id (generated when none was given).
    pub fn request_id(&self) -> &str {
        &self.request_id
    }

    /// Sets the global request id (the id of the whole user request across services).
    pub fn with_global_request_id(mut self, id: impl Into<String>) -> Self {
        self.global_request_id = Some(Arc::from(id.into()));
        self
    }

    /// The global request id.
    pub fn global_request_id(&self) -> Option<&str> {
        self.global_request_id.as_deref()
    }

    /// The id of the chain this request belongs to, shared: the global request id, or the
    /// request id when there is none (the request is then the chain's first).
    pub(crate) fn chain_id(&self) -> &Arc<str> {
        self.global_request_id.as_ref().unwrap_or(&self.request_id)
    }

    /// Appends a correlation id.
    pub fn with_correlation_id(mut self, id: impl Into<String>) -> Self {
        self.correlation_ids.push(id.into());
        self
    }

    /// The correlation ids, oldest first.
    pub fn correlation_ids(&self) -> &[String] {
        &self.correlation_ids
    }

    /// Sets a deadline: calls made with this context time out by then at the latest.
    pub fn with_deadline(mut self, deadline: SystemTime) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// Sets a deadline `after` from now.
    pub fn with_timeout(self, after: Duration) -> Self {
        self.with_deadline(SystemTime::now() + after)
    }

    /// The deadline: set by the caller, or on the receiving side the request's `ts + ttl`.
    pub fn deadline(&self) -> Option<SystemTime> {
        self.deadline
    }

    /// The time left before the deadline (`Some(ZERO)` once it has passed).
    pub fn remaining(&self) -> Option<Duration> {
        self.deadline.map(|d| {
            d.duration_since(SystemTime::now())
                .unwrap_or(Duration::ZERO)
        })
    }

    /// True when a deadline is set and has passed.
    pub fn is_expired(&self) -> bool {
        self.deadline.is_some_and(|d| SystemTime::now() > d)
    }

    /// The caller's authenticated principal, on the receiving side; `None` when the message
    /// was not authenticated (as policy allowed) and always `None` on the sending side.
    pub fn principal(&self) -> Option<&Principal> {
        self.principal.as_ref()
    }

    pub(crate) fn set_principal(&mut self, principal: Option<Principal>) {
        self.principal = principal;
    }

    /// Adds a custom entry (any serde value). A value that holds a [`Secret`] is stored as
    /// a secret entry.
    pub fn insert<T: Serialize + ?Sized>(
        &mut self,
        name: impl Into<String>,
        value: &T,
    ) -> Result<(), Error> {
        let name = name.into();
        let enc = encode_value(value, "context entry")?;
        if enc.carries_secret() {
            self.custom.remove(&name);
            self.secrets
                .insert(name, SecretEntry::outgoing(enc.bytes().to_vec()));
        } else {
            self.secrets.remove(&name);
            self.custom.insert(name, enc.into_bytes());
        }
        Ok(())
    }

    /// Builder form of [`Context::insert`].
    pub fn with<T: Serialize + ?Sized>(
        mut self,
        name: impl Into<String>,
        value: &T,
    ) -> Result<Self, Error> {
        self.insert(name, value)?;
        Ok(self)
    }

    /// Reads a custom entry as `T`: `Ok(None)` when absent.
    pub fn get<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>, Error> {
        match self.custom.get(name) {
            None => Ok(None),
            Some(raw) => Ok(Some(decode_value(raw, "context entry")?)),
        }
    }

    /// Adds a secret entry that this context sends: it travels only sealed, is never
    /// printed, and is not carried to a [`Context::child`] (forward it by name).
    pub fn insert_secret<T: Serialize + Zeroize>(
        &mut self,
        name: impl Into<String>,
        value: &Secret<T>,
    ) -> Result<(), Error> {
        let name = name.into();
        let enc = encode_value(value.expose(), "secret context entry")?;
        self.custom.remove(&name);
        self.secrets
            .insert(name, SecretEntry::outgoing(enc.bytes().to_vec()));
        Ok(())
    }

    /// Reads a secret entry as `Secret<T>` (one inserted here or received from the caller):
    /// `Ok(None)` when absent.
    pub fn secret<T: DeserializeOwned + Zeroize>(
        &self,
        name: &str,
    ) -> Result<Option<Secret<T>>, Error> {
        match self.secrets.get(name) {
            None => Ok(None),
            Some(raw) => Ok(Some(Secret::new(decode_value(
                raw.value.expose(),
                "secret context entry",
            )?))),
        }
    }

    /// Removes an entry (plain or secret); true when there was one.
    pub fn remove(&mut self, name: &str) -> bool {
        self.custom.remove(name).is_some() | self.secrets.remove(name).is_some()
    }

    /// The names of the plain custom entries.
    pub fn entry_names(&self) -> impl Iterator<Item = &str> {
        self.custom.keys().map(String::as_str)
    }

    /// The names of the secret entries, received and sent alike.
    pub fn secret_names(&self) -> impl Iterator<Item = &str> {
        self.secrets.keys().map(String::as_str)
    }

    /// The names of the secret entries this context sends (inserted or forwarded here).
    pub fn sent_secret_names(&self) -> impl Iterator<Item = &str> {
        self.secrets
            .iter()
            .filter(|(_, e)| e.sent)
            .map(|(k, _)| k.as_str())
    }

    /// True when this context sends a secret entry (a call made with it must then travel
    /// sealed). Secrets received from a caller are not sent on, and do not count.
    pub fn carries_secret(&self) -> bool {
        self.secrets.values().any(|e| e.sent)
    }
}

impl Default for Context {
    /// Same as [`Context::new`]: a fresh request id.
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Plain(&'static str);
        impl fmt::Debug for Plain {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.0)
            }
        }
        struct Names<'a, V>(&'a BTreeMap<String, V>, &'static str);
        impl<V> fmt::Debug for Names<'_, V> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_map()
                    .entries(self.0.keys().map(|k| (k, Plain(self.1))))
                    .finish()
            }
        }
        f.debug_struct("Context")
            .field("request_id", &self.request_id)
            .field("global_request_id", &self.global_request_id)
            .field("correlation_ids", &self.correlation_ids)
            .field("deadline", &self.deadline)
            .field("principal", &self.principal)
            .field("custom", &Names(&self.custom, "<encoded>"))
            .field("secret", &Names(&self.secrets, "[REDACTED]"))
            .finish()
    }
}
