//! Size limits, checked before any decoding.

/// Bounds on what a receiver accepts; all checked before the bytes are decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest envelope accepted, in bytes (default 16 MiB).
    pub max_envelope: usize,
    /// Largest header accepted, in bytes (default 4 KiB).
    pub max_header: usize,
    /// Most signature items accepted (default 8).
    pub max_signatures: usize,
    /// Longest key id accepted, in bytes (default 256).
    pub max_key_id: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_envelope: 16 * 1024 * 1024,
            max_header: 4 * 1024,
            max_signatures: 8,
            max_key_id: 256,
        }
    }
}
