//! The wire format (normative text: docs/wire-format.md).
//!
//! Everything on the wire is a MessagePack map with string keys; receivers skip keys they do
//! not know, so newer senders interoperate with older receivers.

pub(crate) mod body;
mod digest;
mod envelope;
mod error;
mod fields;
mod header;
mod keyid;
mod limits;
mod message_body;
pub(crate) mod msgpack;
mod notification;
pub(crate) mod write;

pub use body::{ErrorBody, ReplyBody, RequestBody};
pub use digest::{SIGNATURE_DOMAIN, signature_input};
pub use envelope::{ENVELOPE_VERSION, EnvelopeRef, EnvelopeWriter, SignatureItem, encode_envelope};
pub use error::CodecError;
pub use header::{Header, Kind, MessageId, SEAL_ALGORITHM, SealInfo};
pub use keyid::{KeyId, Role};
pub use limits::Limits;
pub use message_body::Body;
pub use notification::NotificationBody;
