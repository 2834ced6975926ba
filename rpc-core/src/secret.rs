//! [`Secret<T>`]: a value that is zeroized on drop, never printed, and allowed on the wire
//! only inside a sealed body.
//!
//! A `Secret` serializes as its inner value (so that it can travel at all), but serializing
//! one raises a thread-local marker. The RPC layer encodes arguments, results and contexts
//! through [`encode_tracked`], which reads the marker and sets
//! [`Outbound::carries_secret`](crate::security::Outbound::carries_secret): the security
//! pipeline then refuses to send the message unless it is sealed
//! ([`Error::SecretOverUnsealedChannel`](crate::Error::SecretOverUnsealedChannel)).

use std::cell::{Cell, RefCell};
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use subtle::ConstantTimeEq;
use zeroize::Zeroize;

thread_local! {
    static SECRET_SERIALIZED: Cell<bool> = const { Cell::new(false) };
}

/// A secret value: zeroized on drop, redacted in `Debug` and `Display`, sent only sealed.
///
/// ```
/// use sealrpc_core::Secret;
/// let password = Secret::new(String::from("hunter2"));
/// assert_eq!(format!("{password:?}"), "Secret([REDACTED])");
/// assert_eq!(password.expose(), "hunter2");
/// ```
pub struct Secret<T: Zeroize>(T);

impl<T: Zeroize> Secret<T> {
    /// Wraps `value`.
    pub fn new(value: T) -> Self {
        Self(value)
    }

    /// The secret value. Keep the borrow short and never log it.
    pub fn expose(&self) -> &T {
        &self.0
    }

    /// The secret value, mutably.
    pub fn expose_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

impl<T: Zeroize + AsRef<[u8]>> Secret<T> {
    /// Compares the bytes of two secrets in constant time (for equal lengths).
    pub fn ct_eq(&self, other: &Self) -> bool {
        self.0.as_ref().ct_eq(other.0.as_ref()).into()
    }
}

impl<T: Zeroize> From<T> for Secret<T> {
    fn from(value: T) -> Self {
        Self(value)
    }
}

impl<T: Zeroize> Drop for Secret<T> {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl<T: Zeroize + Clone> Clone for Secret<T> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<T: Zeroize + Default> Default for Secret<T> {
    fn default() -> Self {
        Self(T::default())
    }
}

impl<T: Zeroize> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([REDACTED])")
    }
}

impl<T: Zeroize> fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([REDACTED])")
    }
}

impl<T: Zeroize + Serialize> Serialize for Secret<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        SECRET_SERIALIZED.with(|m| m.set(true));
        self.0.serialize(serializer)
    }
}

impl<'de, T: Zeroize + Deserialize<'de>> Deserialize<'de> for Secret<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        T::deserialize(deserializer).map(Self)
    }
}

/// Runs `f` (which serializes something) and reports whether it serialized a [`Secret`].
///
/// Nested uses are fine: an outer tracker also sees what an inner one saw.
pub fn track<R>(f: impl FnOnce() -> R) -> (R, bool) {
    let outer = SECRET_SERIALIZED.with(|m| m.replace(false));
    let out = f();
    let seen = SECRET_SERIALIZED.with(|m| m.get());
    SECRET_SERIALIZED.with(|m| m.set(outer || seen));
    (out, seen)
}

thread_local! {
    /// Where values are encoded before being copied out at their exact size: a warm buffer
    /// instead of a new one grown several times per value, and bytes whose length is their
    /// capacity, which a [`Bytes`](bytes::Bytes) takes without allocating.
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// The most a thread's scratch buffer keeps between values; a larger value's buffer is
/// released after use.
const SCRATCH_KEPT: usize = 256 * 1024;

/// Encodes `value` as MessagePack (maps with string keys) into a buffer of exactly its size
/// (through a thread's warm scratch buffer), and reports whether it holds a [`Secret`].
pub fn encode_tracked<T: Serialize + ?Sized>(
    value: &T,
) -> (Result<Vec<u8>, rmp_serde::encode::Error>, bool) {
    SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
        Ok(mut buf) => {
            buf.clear();
            let (written, carries_secret) =
                track(|| rmp_serde::encode::write_named(&mut *buf, value));
            let exact = written.map(|()| buf.to_vec());
            if carries_secret {
                // The copy is the caller's to wipe; what the scratch holds is wiped here.
                buf.as_mut_slice().zeroize();
            }
            buf.clear();
            if buf.capacity() > SCRATCH_KEPT {
                *buf = Vec::new();
            }
            (exact, carries_secret)
        }
        // A value whose serialization encodes another value: that one gets its own buffer.
        Err(_) => track(|| rmp_serde::to_vec_named(value)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Login {
        user: String,
        password: Secret<String>,
    }

    /// Serializes its inner value through `encode_tracked` itself (a nested encoding).
    struct Nested(u32);

    impl Serialize for Nested {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            let (inner, _) = encode_tracked(&self.0);
            serializer.serialize_bytes(&inner.map_err(serde::ser::Error::custom)?)
        }
    }

    #[test]
    fn encodes_the_bytes_of_to_vec_named_at_their_exact_size() {
        let big = vec![7u8; 100_000];
        for value in [vec![1u8, 2, 3], big] {
            let (bytes, secret) = encode_tracked(&serde_bytes::ByteBuf::from(value.clone()));
            let bytes = bytes.unwrap();
            assert_eq!(
                bytes,
                rmp_serde::to_vec_named(&serde_bytes::ByteBuf::from(value)).unwrap()
            );
            assert_eq!(bytes.capacity(), bytes.len());
            assert!(!secret);
        }
        let login = Login {
            user: "admin".into(),
            password: Secret::new("hunter2".into()),
        };
        let (bytes, secret) = encode_tracked(&login);
        assert_eq!(bytes.unwrap(), rmp_serde::to_vec_named(&login).unwrap());
        assert!(secret);
        // The marker is per value: the next one is clean.
        assert!(!encode_tracked(&1u8).1);
    }

    #[test]
    fn a_value_that_encodes_another_while_serializing_gets_both_right() {
        let (bytes, _) = encode_tracked(&[Nested(1), Nested(300)]);
        let expected = rmp_serde::to_vec_named(&[
            serde_bytes::ByteBuf::from(rmp_serde::to_vec_named(&1u32).unwrap()),
            serde_bytes::ByteBuf::from(rmp_serde::to_vec_named(&300u32).unwrap()),
        ])
        .unwrap();
        assert_eq!(bytes.unwrap(), expected);
    }
}
