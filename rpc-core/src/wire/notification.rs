//! The body of a `notify` message (inside the seal when sealed): who published what.
//!
//! `payload` and `ctx` stay as the encoded MessagePack bytes received; a listener decodes
//! `payload` into the type it expects.

use bytes::Bytes;

use super::error::CodecError;
use super::fields::Fields;
use super::write::{Encode, Sink, Writer};

/// The encoding of `nil`, used for an absent `payload`.
const NIL: &[u8] = &[0xc0];

/// A notification body: `{event_type, publisher_id, payload?, ctx}`. Its `Debug` shows the
/// sizes of `payload` and `ctx`, never their bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct NotificationBody {
    /// What happened, e.g. `trove.instance.usage` (non-empty).
    pub event_type: String,
    /// Who says so, e.g. `trove-guestagent.7f3a` (non-empty; bound to a guest sender, see
    /// [`crate::notify::publisher_fits`]).
    pub publisher_id: String,
    /// The encoded payload (any value; `nil` when absent).
    pub payload: Bytes,
    /// The encoded `ctx` map.
    pub ctx: Bytes,
}

impl std::fmt::Debug for NotificationBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotificationBody")
            .field("event_type", &self.event_type)
            .field("publisher_id", &self.publisher_id)
            .field("payload_len", &self.payload.len())
            .field("ctx_len", &self.ctx.len())
            .finish()
    }
}

impl NotificationBody {
    /// Encodes the body; `payload` must be one encoded value and `ctx` one encoded map.
    pub fn encode(event_type: &str, publisher_id: &str, payload: &[u8], ctx: &[u8]) -> Vec<u8> {
        NotificationParts {
            event_type,
            publisher_id,
            payload,
            ctx,
        }
        .to_vec()
    }

    /// Decodes a notification body from the plaintext. `event_type` and `publisher_id`
    /// are required non-empty strs, `ctx` a map; `payload` may be absent (read as `nil`).
    pub fn decode(plain: &Bytes) -> Result<Self, CodecError> {
        let f = Fields::decode(
            plain,
            "body",
            ["event_type", "publisher_id", "payload", "ctx"],
        )?;
        let event_type = f.str("event_type")?;
        let publisher_id = f.str("publisher_id")?;
        if event_type.is_empty() || publisher_id.is_empty() {
            return Err(CodecError::Malformed("empty event_type or publisher_id"));
        }
        let ctx = f.req("ctx")?;
        if !ctx.is_map() {
            return Err(CodecError::NotAMap("ctx"));
        }
        let payload = match f.opt("payload") {
            Some(raw) => {
                // As in `args`: a typed listener's serde would read an integer key as a
                // field's index.
                raw.check_str_keys("payload")?;
                plain.slice_ref(raw.bytes())
            }
            None => Bytes::from_static(NIL),
        };
        Ok(Self {
            event_type: event_type.to_owned(),
            publisher_id: publisher_id.to_owned(),
            payload,
            ctx: plain.slice_ref(ctx.bytes()),
        })
    }
}

/// `payload` must be one encoded value and `ctx` one encoded map.
impl Encode for NotificationBody {
    fn write_to<S: Sink>(&self, w: &mut Writer<S>) {
        NotificationParts {
            event_type: &self.event_type,
            publisher_id: &self.publisher_id,
            payload: &self.payload,
            ctx: &self.ctx,
        }
        .write_to(w);
    }
}

/// A notification body borrowed from its parts: the one place that lays out its map.
struct NotificationParts<'a> {
    event_type: &'a str,
    publisher_id: &'a str,
    payload: &'a [u8],
    ctx: &'a [u8],
}

impl Encode for NotificationParts<'_> {
    fn write_to<S: Sink>(&self, w: &mut Writer<S>) {
        w.map(4);
        w.str("event_type").str(self.event_type);
        w.str("publisher_id").str(self.publisher_id);
        w.str("payload").raw(self.payload);
        w.str("ctx").raw(self.ctx);
    }
}
