//! Reading the known keys of a wire map: each at most once, nil read as absent,
//! unknown keys skipped.

#![allow(
    clippy::unnecessary_lazy_evaluations,
    reason = "an eager CodecError is built and dropped on every success (~65 times a call)"
)]

use super::error::CodecError;
use super::msgpack::Raw;

/// Collects the known keys of one map; unknown keys are ignored (mixed-version rule).
pub struct Fields<'a, const N: usize> {
    names: [&'static str; N],
    values: [Option<Raw<'a>>; N],
}

impl<'a, const N: usize> Fields<'a, N> {
    /// Reads `map` (which must be a map with string keys), keeping the keys in `names`.
    pub fn read(
        map: Raw<'a>,
        what: &'static str,
        names: [&'static str; N],
    ) -> Result<Self, CodecError> {
        let mut values = [None; N];
        for entry in map.entries(what)? {
            let (key, value) = entry?;
            if let Some(i) = names.iter().position(|n| *n == key) {
                if values[i].is_some() {
                    return Err(CodecError::DuplicateKey(names[i]));
                }
                // A duplicate is refused even when the first occurrence was nil.
                values[i] = Some(value);
            }
        }
        Ok(Self { names, values })
    }

    fn slot(&self, name: &'static str) -> Option<Raw<'a>> {
        let i = self.names.iter().position(|n| *n == name)?;
        self.values[i].filter(|v| !v.is_nil())
    }

    /// An optional value (absent or nil gives `None`).
    pub fn opt(&self, name: &'static str) -> Option<Raw<'a>> {
        self.slot(name)
    }

    /// A required value.
    pub fn req(&self, name: &'static str) -> Result<Raw<'a>, CodecError> {
        self.slot(name).ok_or_else(|| CodecError::MissingKey(name))
    }

    /// A required `str`.
    pub fn str(&self, name: &'static str) -> Result<&'a str, CodecError> {
        self.req(name)?
            .as_str()
            .ok_or_else(|| CodecError::WrongType(name))
    }

    /// An optional `str`.
    pub fn opt_str(&self, name: &'static str) -> Result<Option<&'a str>, CodecError> {
        self.opt(name)
            .map(|v| v.as_str().ok_or_else(|| CodecError::WrongType(name)))
            .transpose()
    }

    /// A required non-negative integer.
    pub fn uint(&self, name: &'static str) -> Result<u64, CodecError> {
        self.req(name)?
            .as_uint()
            .ok_or_else(|| CodecError::WrongType(name))
    }

    /// An optional non-negative integer.
    pub fn opt_uint(&self, name: &'static str) -> Result<Option<u64>, CodecError> {
        self.opt(name)
            .map(|v| v.as_uint().ok_or_else(|| CodecError::WrongType(name)))
            .transpose()
    }

    /// A required `bin`.
    pub fn bin(&self, name: &'static str) -> Result<&'a [u8], CodecError> {
        self.req(name)?
            .as_bin()
            .ok_or_else(|| CodecError::WrongType(name))
    }

    /// A required `bin` of exactly `N2` bytes.
    pub fn bin_exact<const M: usize>(&self, name: &'static str) -> Result<[u8; M], CodecError> {
        self.bin(name)?
            .try_into()
            .map_err(|_| CodecError::WrongType(name))
    }

    /// An optional `bin` of exactly `M` bytes.
    pub fn opt_bin_exact<const M: usize>(
        &self,
        name: &'static str,
    ) -> Result<Option<[u8; M]>, CodecError> {
        match self.opt(name) {
            None => Ok(None),
            Some(v) => {
                let b = v.as_bin().ok_or_else(|| CodecError::WrongType(name))?;
                b.try_into()
                    .map(Some)
                    .map_err(|_| CodecError::WrongType(name))
            }
        }
    }
}
