//! The key names of one store: `{prefix}:<what>`, one Redis Cluster slot per prefix.

/// The keys of a store with one prefix.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    /// `{prefix}`: the hash tag every key starts with.
    pub(crate) base: String,
}

impl Keys {
    pub(crate) fn new(prefix: &str) -> Self {
        Self {
            base: format!("{{{prefix}}}"),
        }
    }

    /// The ids of one principal (a sorted set: id -> ts).
    pub(crate) fn principal(&self, principal: &str) -> Vec<u8> {
        self.join(":p:", principal)
    }

    /// The watermark of one principal (the `ts` of the newest id it gave up).
    pub(crate) fn watermark(&self, principal: &str) -> Vec<u8> {
        self.join(":w:", principal)
    }

    /// A key of the whole store (`control`, `guests`, `gmax`, `gcount`, `since`).
    pub(crate) fn global(&self, name: &str) -> String {
        format!("{}:{name}", self.base)
    }

    /// A glob matching every key of the store (for [`delete_all`]).
    ///
    /// [`delete_all`]: crate::RedisReplayStore::delete_all
    pub(crate) fn pattern(&self) -> String {
        let mut glob = String::new();
        for c in self.base.chars() {
            if matches!(c, '*' | '?' | '[' | ']' | '\\') {
                glob.push('\\');
            }
            glob.push(c);
        }
        glob.push_str(":*");
        glob
    }

    fn join(&self, sep: &str, principal: &str) -> Vec<u8> {
        let mut key = Vec::with_capacity(self.base.len() + sep.len() + principal.len());
        key.extend_from_slice(self.base.as_bytes());
        key.extend_from_slice(sep.as_bytes());
        key.extend_from_slice(principal.as_bytes());
        key
    }
}
