//! Codec errors: what is wrong with bytes received, never with the secrets behind them.

/// Why bytes could not be decoded as a sealrpc wire value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The input ended inside a value.
    #[error("truncated input")]
    Truncated,
    /// Bytes follow the one value expected.
    #[error("trailing bytes after the {0}")]
    TrailingBytes(&'static str),
    /// Nesting deeper than the reader accepts.
    #[error("value nested too deeply")]
    TooDeep,
    /// A `str` that is not UTF-8.
    #[error("string is not valid UTF-8")]
    InvalidUtf8,
    /// Something other than a map where a map belongs.
    #[error("{0} is not a map")]
    NotAMap(&'static str),
    /// A map key that is not a `str`.
    #[error("{0} has a non-string key")]
    NonStringKey(&'static str),
    /// A known key appears twice.
    #[error("duplicate key {0:?}")]
    DuplicateKey(&'static str),
    /// A required key is absent (or nil).
    #[error("missing key {0:?}")]
    MissingKey(&'static str),
    /// A known key holds a value of the wrong type or size.
    #[error("{0} has the wrong type or size")]
    WrongType(&'static str),
    /// A value outside what the spec allows.
    #[error("malformed: {0}")]
    Malformed(&'static str),
    /// A size limit was exceeded (checked before decoding).
    #[error("{what} is {size} bytes, over the limit of {limit}")]
    TooLarge {
        /// Which part was too large.
        what: &'static str,
        /// Its size in bytes (or item count).
        size: usize,
        /// The configured limit.
        limit: usize,
    },
    /// The envelope's major version is newer than this implementation.
    #[error("unsupported envelope version {0} (this node speaks 1)")]
    UnsupportedEnvelope(u64),
    /// A value could not be serialized (application types).
    #[error("cannot encode {0}")]
    Encode(String),
    /// Application arguments or results did not decode into the requested type.
    #[error("cannot decode {what}: {detail}")]
    Decode {
        /// What was being decoded.
        what: &'static str,
        /// The decoder's message (never a value).
        detail: String,
    },
}
