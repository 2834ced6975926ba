//! [`HandlerError`]: what a handler (or a server layer) returns when a call fails; it
//! becomes the reply's `err = {code, msg, data}`.

use std::fmt;

use bytes::Bytes;
use serde::Serialize;

use super::caller::Caller;
use crate::error::{Error, ErrorCode};
use crate::payload::encode_value;
use crate::wire::ErrorBody;

/// A failed call, as the caller will see it: an error name, a message and optional data.
/// Messages and data must never carry secrets (data holding a [`Secret`](crate::Secret) is
/// dropped).
#[derive(Clone, PartialEq, Eq)]
pub struct HandlerError {
    code: String,
    msg: String,
    data: Option<Bytes>,
}

impl HandlerError {
    /// An error named `code` (an application's own name, or an [`ErrorCode`] name).
    pub fn new(code: impl Into<String>, msg: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            msg: msg.into(),
            data: None,
        }
    }

    /// An error with one of the framework's codes.
    pub fn from_code(code: ErrorCode, msg: impl Into<String>) -> Self {
        Self::new(code.as_str(), msg)
    }

    /// The caller may not call this (code `Forbidden`).
    pub fn forbidden() -> Self {
        Self::from_code(ErrorCode::Forbidden, "forbidden")
    }

    /// `Forbidden`, naming the method, the rule that refused and the caller (never an
    /// argument value): e.g. `forbidden: update_status: authorize check #1 refused caller
    /// guest:abc`.
    pub(crate) fn forbidden_by(method: &str, rule: &str, caller: &Caller) -> Self {
        let who = caller
            .principal()
            .map_or_else(|| "unauthenticated".to_owned(), ToString::to_string);
        Self::from_code(
            ErrorCode::Forbidden,
            format!("forbidden: {method}: {rule} refused caller {who}"),
        )
    }

    /// The request is invalid (code `BadRequest`).
    pub fn bad_request(msg: impl Into<String>) -> Self {
        Self::from_code(ErrorCode::BadRequest, msg)
    }

    /// A generic handler failure (code `Remote`).
    pub fn remote(msg: impl Into<String>) -> Self {
        Self::from_code(ErrorCode::Remote, msg)
    }

    /// Attaches details (any serde value). Data that cannot be encoded, or that holds a
    /// `Secret`, is dropped.
    pub fn with_data<T: Serialize + ?Sized>(mut self, data: &T) -> Self {
        self.data = match encode_value(data, "error data") {
            Ok(enc) if !enc.carries_secret() => Some(enc.into_bytes()),
            _ => {
                tracing::warn!(code = %self.code, "error data dropped: not encodable or holds a secret");
                None
            }
        };
        self
    }

    /// Attaches already-encoded (MessagePack) details.
    pub fn with_raw_data(mut self, data: Bytes) -> Self {
        self.data = Some(data);
        self
    }

    /// The error name.
    pub fn code(&self) -> &str {
        &self.code
    }

    /// The message.
    pub fn msg(&self) -> &str {
        &self.msg
    }

    /// The encoded details.
    pub fn data(&self) -> Option<&Bytes> {
        self.data.as_ref()
    }

    pub(crate) fn into_body(self) -> ErrorBody {
        ErrorBody {
            code: self.code,
            msg: self.msg,
            data: self.data,
        }
    }
}

impl fmt::Debug for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HandlerError")
            .field("code", &self.code)
            .field("msg", &self.msg)
            .field("data_len", &self.data.as_ref().map(Bytes::len))
            .finish()
    }
}

impl fmt::Display for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.msg)
    }
}

impl std::error::Error for HandlerError {}

/// A failed nested call becomes this handler's failure (its code, its message).
impl From<Error> for HandlerError {
    fn from(e: Error) -> Self {
        match e {
            Error::Remote { code, msg, data } => Self { code, msg, data },
            other => Self::new(other.code().as_str(), other.to_string()),
        }
    }
}
