//! The context on the wire: the body's `ctx` map.
//!
//! `{request_id: str, global_request_id?: str, corr_ids?: [str], custom?: {name: value},
//! secret?: {name: value}}`. A `principal` key, if a sender writes one, is ignored: the
//! receiver fills the principal from what was proven. Decoding is lenient: unknown keys and
//! values of the wrong type are skipped, and it never fails.
//!
//! Decoding is also bounded: maps and arrays are walked one item at a time (never collected),
//! a known key is read at its first occurrence only, and at most [`MAX_CORRELATION_IDS`]
//! correlation ids and [`MAX_ENTRIES`] custom and secret entries (together) are kept; the
//! rest is skipped. So a hostile `ctx` of millions of tiny entries costs the receiver a few
//! kilobytes, not a copy per entry.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use crate::payload::Encoded;
use bytes::Bytes;

use super::{Context, SecretEntry, fresh_request_id, new_request_id};
use crate::wire::msgpack::{MAX_DEPTH, Raw, single_value, split_value};
use crate::wire::write::Writer;

/// Most correlation ids a received context keeps (the oldest first; more are skipped).
pub const MAX_CORRELATION_IDS: usize = 64;

/// Most custom and secret entries, together, that a received context keeps (more are
/// skipped).
pub const MAX_ENTRIES: usize = 256;

impl Context {
    /// Encodes the context as the body's `ctx` map (the principal and deadline are not
    /// sent: the receiver takes them from the security pipeline and the header's `ttl`).
    ///
    /// Only the secret entries this context sends are written (those inserted or forwarded
    /// here): secrets received from a caller are never sent on.
    pub fn encode(&self) -> Encoded {
        let sent = || self.secrets.iter().filter(|(_, e)| e.sent);
        let sent_count = sent().count();
        // An empty request id (set so by the application) is replaced by a fresh one.
        let fresh;
        let request_id = if self.request_id.is_empty() {
            fresh = new_request_id();
            &fresh
        } else {
            &*self.request_id
        };
        let n = 1
            + usize::from(self.global_request_id.is_some())
            + usize::from(!self.correlation_ids.is_empty())
            + usize::from(!self.custom.is_empty())
            + usize::from(sent_count > 0);
        // The exact size, so that the bytes are shared without another allocation.
        let mut len = map_header_len(n) + str_len("request_id") + str_len(request_id);
        if let Some(g) = &self.global_request_id {
            len += str_len("global_request_id") + str_len(g);
        }
        if !self.correlation_ids.is_empty() {
            len += str_len("corr_ids") + map_header_len(self.correlation_ids.len());
            len += self
                .correlation_ids
                .iter()
                .map(|c| str_len(c))
                .sum::<usize>();
        }
        if !self.custom.is_empty() {
            len += str_len("custom") + map_header_len(self.custom.len());
            len += (self.custom.iter())
                .map(|(k, v)| str_len(k) + v.len())
                .sum::<usize>();
        }
        if sent_count > 0 {
            len += str_len("secret") + map_header_len(sent_count);
            len += sent()
                .map(|(k, e)| str_len(k) + e.value.expose().len())
                .sum::<usize>();
        }
        let mut w = Writer::with_capacity(len);
        w.map(n);
        w.str("request_id").str(request_id);
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
        if sent_count > 0 {
            w.str("secret").map(sent_count);
            for (k, e) in sent() {
                w.str(k).raw(e.value.expose());
            }
        }
        let bytes = w.into_bytes();
        debug_assert_eq!((bytes.len(), bytes.capacity()), (len, len), "ctx size");
        Encoded::new(bytes, sent_count > 0)
    }

    /// Decodes a received `ctx` map leniently (never fails; a missing request id is
    /// generated) and within bounds (see the module documentation). The principal is left
    /// empty and the deadline unset: the server fills them. The secret entries are the
    /// caller's: readable here, never sent on.
    pub fn decode(bytes: &[u8]) -> Context {
        let mut request_id = None;
        let mut global_request_id = None;
        let mut correlation_ids = Vec::new();
        let mut custom = BTreeMap::new();
        let mut secrets = BTreeMap::new();
        if let Ok(map) = single_value(bytes, "ctx")
            && let Ok(entries) = map.entries("ctx")
        {
            let mut seen = Seen::default();
            let mut budget = MAX_ENTRIES;
            for (key, value) in entries.map_while(Result::ok) {
                if !seen.first(key) {
                    continue;
                }
                match key {
                    "request_id" => request_id = value.as_str().filter(|s| !s.is_empty()),
                    "global_request_id" => global_request_id = value.as_str().map(Arc::from),
                    "corr_ids" => correlation_ids = strings(value, MAX_CORRELATION_IDS),
                    "custom" => {
                        for (name, v) in entries_within(value, &mut budget) {
                            custom.insert(name.to_owned(), Bytes::copy_from_slice(v.bytes()));
                        }
                    }
                    "secret" => {
                        for (name, v) in entries_within(value, &mut budget) {
                            secrets
                                .insert(name.to_owned(), SecretEntry::received(v.bytes().to_vec()));
                        }
                    }
                    _ => {}
                }
            }
        }
        Context {
            global_request_id,
            correlation_ids,
            custom,
            secrets,
            ..Context::with_id(request_id.map_or_else(fresh_request_id, Arc::from))
        }
    }

    /// Sets the deadline from a request header's `ts` and `ttl` (unix milliseconds).
    pub(crate) fn set_deadline_from_header(&mut self, ts: u64, ttl: Option<u64>) {
        self.deadline = ttl
            .and_then(|ttl| UNIX_EPOCH.checked_add(Duration::from_millis(ts.saturating_add(ttl))));
    }
}

/// The encoded size of a map or array header for `len` items.
fn map_header_len(len: usize) -> usize {
    match len {
        0..=15 => 1,
        16..=0xffff => 3,
        _ => 5,
    }
}

/// The encoded size of `s` as a `str`.
fn str_len(s: &str) -> usize {
    let header = match s.len() {
        0..=31 => 1,
        32..=0xff => 2,
        0x100..=0xffff => 3,
        _ => 5,
    };
    header + s.len()
}

/// The known keys of `ctx` already read: a duplicate is skipped (the first one wins), so
/// that repeating a key cannot make the receiver allocate once per repetition.
#[derive(Default)]
struct Seen(u8);

impl Seen {
    fn first(&mut self, key: &str) -> bool {
        let bit = match key {
            "request_id" => 1,
            "global_request_id" => 2,
            "corr_ids" => 4,
            "custom" => 8,
            "secret" => 16,
            _ => return true,
        };
        let first = self.0 & bit == 0;
        self.0 |= bit;
        first
    }
}

/// The entries of a map value, walked one at a time, at most `budget` of them (the budget
/// is spent on every entry walked, kept or not); nothing for a value that is not a map.
fn entries_within<'a>(
    value: Raw<'a>,
    budget: &'a mut usize,
) -> impl Iterator<Item = (&'a str, Raw<'a>)> + 'a {
    value
        .entries("ctx entries")
        .into_iter()
        .flatten()
        .map_while(Result::ok)
        .take_while(move |_| {
            let left = *budget > 0;
            *budget = budget.saturating_sub(1);
            left
        })
}

/// The `str` items of an array value, walked one at a time, at most `max` of them (items
/// of another type are skipped but count); empty for a value that is not an array.
fn strings(value: Raw<'_>, max: usize) -> Vec<String> {
    let Some(len) = value.array_len() else {
        return Vec::new();
    };
    let header = match value.bytes().first() {
        Some(0x90..=0x9f) => 1,
        Some(0xdc) => 3,
        _ => 5,
    };
    let mut rest = value.bytes().get(header..).unwrap_or_default();
    let mut out = Vec::new();
    for _ in 0..len.min(max) {
        let Ok((item, after)) = split_value(rest, MAX_DEPTH) else {
            break;
        };
        if let Some(s) = item.as_str() {
            out.push(s.to_owned());
        }
        rest = after;
    }
    out
}
