//! [`Body`]: the body of any message, a request, a reply or a notification: as it is sent
//! (laid out straight into the envelope by [`EnvelopeWriter`](super::EnvelopeWriter), so
//! that `args` or a result is copied once, where it will be sealed) and as it is admitted.

use super::body::{ReplyBody, RequestBody};
use super::notification::NotificationBody;
use super::write::{Encode, Sink, Writer};

/// The body of a message (docs/wire-format.md §4). Its `Debug` is that of the body it
/// holds: the sizes of `args`, `ctx`, `ok` and `payload`, never their bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// Call, cast or fanout.
    Request(RequestBody),
    /// Reply (a result, an error or a heartbeat).
    Reply(ReplyBody),
    /// Notify (see [`crate::notify`]).
    Notification(NotificationBody),
}

impl Body {
    /// The encoded body map: the bytes an envelope carries in `b` (or seals there).
    pub fn encode(&self) -> Vec<u8> {
        self.to_vec()
    }

    /// The length of [`encode`](Self::encode)'s bytes, measured without writing them.
    pub fn encoded_len(&self) -> usize {
        Encode::encoded_len(self)
    }
}

impl Encode for Body {
    fn write_to<S: Sink>(&self, w: &mut Writer<S>) {
        match self {
            Body::Request(b) => b.write_to(w),
            Body::Reply(b) => b.write_to(w),
            Body::Notification(b) => b.write_to(w),
        }
    }
}

impl From<RequestBody> for Body {
    fn from(body: RequestBody) -> Self {
        Body::Request(body)
    }
}

impl From<ReplyBody> for Body {
    fn from(body: ReplyBody) -> Self {
        Body::Reply(body)
    }
}

impl From<NotificationBody> for Body {
    fn from(body: NotificationBody) -> Self {
        Body::Notification(body)
    }
}
