//! Which implementation of each primitive this build runs on this CPU.
//!
//! The primitive crates pick a backend at compile time (`--cfg` flags) and, among the
//! compiled ones, at run time (CPU feature detection). What they pick decides most of
//! what signing and sealing cost: on an AVX-512 IFMA CPU, curve25519-dalek's IFMA backend
//! verifies a signature in about two thirds of the AVX2 backend's time. The runtime-
//! detected AVX-512 backends are compiled in only with these flags (the workspace's
//! `.cargo/config.toml` sets them; `docs/benchmarks.md` says how a deployment sets them):
//!
//! ```text
//! --cfg curve25519_dalek_backend="avx512" --cfg chacha20_avx512
//! ```
//!
//! Both keep a run-time fallback (AVX2, then portable code), so such a binary still runs
//! on a CPU without AVX-512. [`CryptoBackends::detect`] reports the outcome, for a
//! service's startup log and for benchmark reports.

use std::fmt;

/// The backend each primitive runs on, as this build selects it on this CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CryptoBackends {
    /// curve25519-dalek's variable-base arithmetic (what signature verification spends its
    /// time in): `avx512ifma`, `avx2`, `serial` or `fiat`.
    pub curve25519: &'static str,
    /// The ChaCha20 stream cipher: `avx512`, `avx2`, `sse2`, `neon` or `soft`.
    pub chacha20: &'static str,
    /// The Poly1305 authenticator: `avx2` or `soft`.
    pub poly1305: &'static str,
    /// SHA-256 (the signature input): `sha-ni`, `armv8` or `soft`.
    pub sha256: &'static str,
}

impl CryptoBackends {
    /// The backends this build runs on this CPU.
    pub fn detect() -> Self {
        Self {
            curve25519: curve25519(),
            chacha20: chacha20(),
            poly1305: poly1305(),
            sha256: sha256(),
        }
    }
}

impl fmt::Display for CryptoBackends {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "curve25519 {}, chacha20 {}, poly1305 {}, sha256 {}",
            self.curve25519, self.chacha20, self.poly1305, self.sha256
        )
    }
}

#[cfg(target_arch = "x86_64")]
fn has(feature: Feature) -> bool {
    match feature {
        Feature::Avx512Ifma => {
            std::arch::is_x86_feature_detected!("avx512ifma")
                && std::arch::is_x86_feature_detected!("avx512vl")
        }
        Feature::Avx512 => {
            std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512vl")
        }
        Feature::Avx2 => std::arch::is_x86_feature_detected!("avx2"),
        Feature::ShaNi => {
            std::arch::is_x86_feature_detected!("sha")
                && std::arch::is_x86_feature_detected!("sse4.1")
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
enum Feature {
    Avx512Ifma,
    Avx512,
    Avx2,
    ShaNi,
}

#[cfg(target_arch = "x86_64")]
fn curve25519() -> &'static str {
    if cfg!(curve25519_dalek_backend = "serial") {
        return "serial";
    }
    if cfg!(curve25519_dalek_backend = "fiat") {
        return "fiat";
    }
    // The IFMA backend is compiled in by the `avx512` override, or chosen at build time
    // when the target itself has the features (`-C target-feature=+avx512ifma,+avx512vl`).
    let ifma_built = cfg!(curve25519_dalek_backend = "avx512")
        || cfg!(all(
            target_feature = "avx512ifma",
            target_feature = "avx512vl"
        ));
    if ifma_built && has(Feature::Avx512Ifma) {
        "avx512ifma"
    } else if has(Feature::Avx2) {
        "avx2"
    } else {
        "serial"
    }
}

#[cfg(target_arch = "x86_64")]
fn chacha20() -> &'static str {
    if cfg!(chacha20_backend = "soft") {
        "soft"
    } else if cfg!(chacha20_backend = "avx512") {
        "avx512"
    } else if cfg!(chacha20_backend = "avx2") {
        "avx2"
    } else if cfg!(chacha20_backend = "sse2") {
        "sse2"
    } else if cfg!(chacha20_avx512) && has(Feature::Avx512) {
        "avx512"
    } else if has(Feature::Avx2) {
        "avx2"
    } else {
        "sse2"
    }
}

#[cfg(target_arch = "x86_64")]
fn poly1305() -> &'static str {
    if !cfg!(poly1305_backend = "soft") && has(Feature::Avx2) {
        "avx2"
    } else {
        "soft"
    }
}

#[cfg(target_arch = "x86_64")]
fn sha256() -> &'static str {
    if !cfg!(sha2_backend = "soft") && has(Feature::ShaNi) {
        "sha-ni"
    } else {
        "soft"
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn curve25519() -> &'static str {
    if cfg!(curve25519_dalek_backend = "fiat") {
        "fiat"
    } else {
        "serial"
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn chacha20() -> &'static str {
    if cfg!(all(target_arch = "aarch64", not(chacha20_backend = "soft"))) {
        "neon"
    } else {
        "soft"
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn poly1305() -> &'static str {
    "soft"
}

#[cfg(not(target_arch = "x86_64"))]
fn sha256() -> &'static str {
    if cfg!(all(target_arch = "aarch64", not(sha2_backend = "soft")))
        && std::arch::is_aarch64_feature_detected!("sha2")
    {
        "armv8"
    } else {
        "soft"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_only_known_backends() {
        let b = CryptoBackends::detect();
        assert!(["avx512ifma", "avx2", "serial", "fiat"].contains(&b.curve25519));
        assert!(["avx512", "avx2", "sse2", "neon", "soft"].contains(&b.chacha20));
        assert!(["avx2", "soft"].contains(&b.poly1305));
        assert!(["sha-ni", "armv8", "soft"].contains(&b.sha256));
        let shown = b.to_string();
        assert!(shown.contains(b.curve25519) && shown.contains(b.sha256));
    }
}
