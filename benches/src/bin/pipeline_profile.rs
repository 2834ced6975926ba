//! Runs the transport-less security pipeline in a loop, for profilers (callgrind, perf):
//! `pipeline_profile [MODE] [SIZE] [N]`, e.g. `pipeline_profile signed+sealed 1KiB 2000`.
//! Prints the mean time per round trip (meaningless under a profiler).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use sealrpc_benches::modes::{BenchKeys, SecMode};
use sealrpc_benches::overhead::parse_size;
use sealrpc_benches::pipeline::{echo_args, payload, round_trip};

fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args
        .next()
        .map_or(SecMode::SignedSealed, |m| SecMode::parse(&m).expect("mode"));
    let (label, size) = args
        .next()
        .map_or(("1KiB".to_owned(), 1024), |s| parse_size(&s).expect("size"));
    let n: u32 = args.next().map_or(2000, |n| n.parse().expect("count"));
    let keys = BenchKeys::new("0123456789abcdef").expect("keys");
    let pair = keys.pair(mode);
    let body = echo_args(&payload(size));
    round_trip(&pair, keys.guest_id(), &body).expect("round trip");
    let t = Instant::now();
    for _ in 0..n {
        round_trip(&pair, keys.guest_id(), &body).expect("round trip");
    }
    let per = t.elapsed().as_secs_f64() * 1e6 / f64::from(n);
    println!(
        "{} {label}: {per:.1} us per round trip ({n} round trips)",
        mode.name()
    );
}
