//! The pieces-bench ratio inside the overhead run: the transport-less
//! `pipeline/signed+sealed/64KiB` round trip against the sum of its primitives (4 AEAD
//! seals + 4 SHA-256 passes over the body, 2 ed25519 signs, 2 strict verifications),
//! timed in this process, interleaved. What copies, encoding and allocation add.

use std::time::Instant;

use ed25519_dalek::{Signer as _, SigningKey};
use sealrpc_core::wire::signature_input;
use sealrpc_signers::SecretKey;
use sealrpc_signers::xchacha::{TAG_LEN, open_in_place_with, seal_in_place_with};
use serde::Serialize;

use crate::BoxError;
use crate::modes::{BenchKeys, SecMode};
use crate::pipeline::{echo_args, payload, round_trip};

/// Medians of one measurement.
#[derive(Debug, Clone, Serialize)]
pub struct PiecesRatio {
    /// Payload bytes.
    pub bytes: usize,
    /// Median of one `signed+sealed` round trip, microseconds.
    pub pipeline_us: f64,
    /// Median of the primitives' sum, microseconds.
    pub primitives_us: f64,
    /// Median of the per-sample ratios (each pipeline sample over the primitives sample
    /// right after it): robust to drift and to bursts that land on a few samples.
    pub median_ratio: f64,
}

impl PiecesRatio {
    /// pipeline / primitives: the median of the per-sample ratios.
    pub fn ratio(&self) -> f64 {
        self.median_ratio
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// Measures `reps` alternating samples of `per` round trips and `per` primitive sums.
pub fn measure(bytes: usize, reps: usize, per: u32) -> Result<PiecesRatio, BoxError> {
    let keys = BenchKeys::new("0123456789abcdef")?;
    let pair = keys.pair(SecMode::SignedSealed);
    let args = echo_args(&payload(bytes));
    let aead = SecretKey::from_bytes([3; 32]);
    let signing = SigningKey::from_bytes(&[9; 32]);
    let verifying = signing.verifying_key();
    let nonce = [5u8; 24];
    let h = [0x80u8; 200];
    // The primitives alone: in place on one buffer, allocating and copying nothing (the
    // pipeline's copies and allocations are what the ratio is meant to show).
    let mut buf = args.to_vec();
    buf.resize(args.len() + TAG_LEN, 0);
    let mut primitives = || -> Result<(), BoxError> {
        for _ in 0..2 {
            // Each direction: seal + open (2 AEAD passes), hash at both ends, sign, verify.
            let (body, tag) = buf.split_at_mut(args.len());
            tag.copy_from_slice(&seal_in_place_with(&aead, &nonce, &h, body)?);
            let input = signature_input(&h, &buf);
            let _again = signature_input(&h, &buf);
            let sig = signing.sign(&input);
            verifying.verify_strict(&input, &sig)?;
            open_in_place_with(&aead, &nonce, &h, &mut buf)?;
        }
        Ok(())
    };
    round_trip(&pair, keys.guest_id(), &args)?;
    primitives()?;
    let (mut pipe, mut prim) = (Vec::new(), Vec::new());
    for _ in 0..reps.max(1) {
        let t = Instant::now();
        for _ in 0..per {
            round_trip(&pair, keys.guest_id(), &args)?;
        }
        pipe.push(t.elapsed().as_secs_f64() * 1e6 / f64::from(per.max(1)));
        let t = Instant::now();
        for _ in 0..per {
            primitives()?;
        }
        prim.push(t.elapsed().as_secs_f64() * 1e6 / f64::from(per.max(1)));
    }
    let ratios = pipe
        .iter()
        .zip(&prim)
        .filter(|(_, p)| **p > 0.0)
        .map(|(a, p)| a / p)
        .collect();
    Ok(PiecesRatio {
        bytes,
        pipeline_us: median(pipe),
        primitives_us: median(prim),
        median_ratio: median(ratios),
    })
}
