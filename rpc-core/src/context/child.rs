//! Contexts for the calls a handler makes: [`Context::child`], and secrets forwarded by
//! name with [`Context::forward_secret`].

use std::sync::Arc;

use super::{Context, SecretEntry, fresh_request_id};

impl Context {
    /// A context for a call made while serving `self`.
    ///
    /// It carries a fresh request id, the same global request id (this request's id if
    /// there was none), the correlation ids with this request id appended, the same deadline
    /// and the plain custom entries. It carries **no secret entry** (forward one by name with
    /// [`Context::forward_secret`]) and no principal (the receiver fills it from what it
    /// proves).
    ///
    /// ```
    /// use sealrpc_core::{Context, Secret};
    ///
    /// let mut incoming = Context::new().with("tenant", "acme")?;
    /// incoming.insert_secret("db_password", &Secret::new("hunter2".to_owned()))?;
    /// incoming.insert_secret("admin_token", &Secret::new("t0k3n".to_owned()))?;
    ///
    /// // Only the secret the callee needs, by name.
    /// let outgoing = incoming.child().forward_secret(&incoming, "db_password");
    /// assert_eq!(outgoing.sent_secret_names().collect::<Vec<_>>(), ["db_password"]);
    /// assert_eq!(outgoing.get::<String>("tenant")?.as_deref(), Some("acme"));
    /// assert!(incoming.child().secret_names().next().is_none());
    /// # Ok::<(), sealrpc_core::Error>(())
    /// ```
    pub fn child(&self) -> Self {
        let mut correlation_ids = self.correlation_ids.clone();
        correlation_ids.push(self.request_id.as_ref().to_owned());
        Self {
            request_id: fresh_request_id(),
            global_request_id: Some(Arc::clone(self.chain_id())),
            correlation_ids,
            deadline: self.deadline,
            principal: None,
            custom: self.custom.clone(),
            secrets: Default::default(),
        }
    }

    /// Forwards the secret entry `name` of `from` (a secret this side received or inserted)
    /// in this context: it is sent, sealed, with the calls made with `self`. An entry `from`
    /// does not hold is not forwarded, and this context keeps what it had under that name;
    /// check with [`Context::sent_secret_names`] when the callee requires it.
    ///
    /// This is the one way a received secret crosses to another peer: name each secret a
    /// callee needs, and never forward a control-plane secret to a guest that has no use
    /// for it.
    pub fn forward_secret(mut self, from: &Context, name: &str) -> Self {
        if let Some(entry) = from.secrets.get(name) {
            self.custom.remove(name);
            self.secrets.insert(
                name.to_owned(),
                SecretEntry::outgoing(entry.value.expose().clone()),
            );
        }
        self
    }
}
