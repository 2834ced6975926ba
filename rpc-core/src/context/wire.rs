//! The context on the wire: the body's `ctx` map.
//!
//! `{request_id: str, global_request_id?: str, corr_ids?: [str], custom?: {name: value},
//! secret?: {name: value}}`. A `principal` key, if a sender writes one, is ignored: the
//! receiver fills the principal from what was proven. Decoding is lenient: unknown keys and
//! values of the wrong type are skipped, and it never fails.

use std::time::{Duration, UNIX_EPOCH};

use bytes::Bytes;
use zeroize::Zeroize;

use super::{Context, new_request_id};
use crate::secret::Secret;
use crate::wire::msgpack::{Raw, single_value};
use crate::wire::write::Writer;

/// An encoded context map and whether it carries a secret entry (then the bytes are
/// zeroized on drop).
#[derive(Clone)]
pub struct EncodedContext {
    bytes: Vec<u8>,
    carries_secret: bool,
}

impl EncodedContext {
    /// The `ctx` map bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The map holds a `secret` entry: the message must be sealed.
    pub fn carries_secret(&self) -> bool {
        self.carries_secret
    }
}

impl std::fmt::Debug for EncodedContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncodedContext")
            .field("len", &self.bytes.len())
            .field("carries_secret", &self.carries_secret)
            .finish()
    }
}

impl Drop for EncodedContext {
    fn drop(&mut self) {
        if self.carries_secret {
            self.bytes.zeroize();
        }
    }
}

impl Context {
    /// Encodes the context as the body's `ctx` map (the principal and deadline are not
    /// sent: the receiver takes them from the security pipeline and the header's `ttl`).
    pub fn encode(&self) -> EncodedContext {
        let n = 1
            + usize::from(self.global_request_id.is_some())
            + usize::from(!self.correlation_ids.is_empty())
            + usize::from(!self.custom.is_empty())
            + usize::from(!self.secrets.is_empty());
        let body_len: usize = self.custom.values().map(Bytes::len).sum::<usize>()
            + self
                .secrets
                .values()
                .map(|s| s.expose().len())
                .sum::<usize>();
        let mut w = Writer::with_capacity(64 + body_len);
        w.map(n);
        let request_id = if self.request_id.is_empty() {
            new_request_id()
        } else {
            self.request_id.clone()
        };
        w.str("request_id").str(&request_id);
        if let Some(g) = &self.global_request_id {
            w.str("global_request_id").str(g);
        }
        if !self.correlation_ids.is_empty() {
            w.str("corr_ids").array(self.correlation_ids.len());
            for c in &self.correlation_ids {
                w.str(c);
            }
        }
        if !self.custom.is_empty() {
            w.str("custom").map(self.custom.len());
            for (k, v) in &self.custom {
                w.str(k).raw(v);
            }
        }
        if !self.secrets.is_empty() {
            w.str("secret").map(self.secrets.len());
            for (k, v) in &self.secrets {
                w.str(k).raw(v.expose());
            }
        }
        EncodedContext {
            bytes: w.into_bytes(),
            carries_secret: !self.secrets.is_empty(),
        }
    }

    /// Decodes a received `ctx` map leniently (never fails; a missing request id is
    /// generated). The principal is left empty and the deadline unset: the server fills them.
    pub fn decode(bytes: &[u8]) -> Context {
        let mut ctx = Context::empty();
        if let Ok(map) = single_value(bytes, "ctx") {
            for (key, value) in map.map_entries("ctx").unwrap_or_default() {
                match key {
                    "request_id" => {
                        if let Some(s) = value.as_str() {
                            ctx.request_id = s.to_owned();
                        }
                    }
                    "global_request_id" => {
                        ctx.global_request_id = value.as_str().map(str::to_owned);
                    }
                    "corr_ids" => {
                        ctx.correlation_ids = value
                            .array_items("corr_ids")
                            .unwrap_or_default()
                            .iter()
                            .filter_map(|v| v.as_str().map(str::to_owned))
                            .collect();
                    }
                    "custom" => {
                        for (name, v) in entries(value) {
                            ctx.custom
                                .insert(name.to_owned(), Bytes::copy_from_slice(v.bytes()));
                        }
                    }
                    "secret" => {
                        for (name, v) in entries(value) {
                            ctx.secrets
                                .insert(name.to_owned(), Secret::new(v.bytes().to_vec()));
                        }
                    }
                    _ => {}
                }
            }
        }
        if ctx.request_id.is_empty() {
            ctx.request_id = new_request_id();
        }
        ctx
    }

    /// Sets the deadline from a request header's `ts` and `ttl` (unix milliseconds).
    pub(crate) fn set_deadline_from_header(&mut self, ts: u64, ttl: Option<u64>) {
        self.deadline = ttl
            .and_then(|ttl| UNIX_EPOCH.checked_add(Duration::from_millis(ts.saturating_add(ttl))));
    }
}

fn entries(value: Raw<'_>) -> Vec<(&str, Raw<'_>)> {
    if value.is_map() {
        value.map_entries("ctx entries").unwrap_or_default()
    } else {
        Vec::new()
    }
}
