//! A small deterministic mutator for the fuzz smoke run (no libFuzzer needed): bit flips,
//! interesting bytes, MessagePack length markers, truncations, insertions, deletions,
//! duplications and splices with another input.

/// splitmix64: tiny, deterministic, good enough to pick mutations.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// A random byte.
    pub fn byte(&mut self) -> u8 {
        self.next_u64() as u8
    }

    /// `n` random bytes.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.byte()).collect()
    }
}

/// Bytes that tend to matter to a MessagePack reader: markers of every family, and the
/// boundaries of the length fields.
const INTERESTING: &[u8] = &[
    0x00, 0x01, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6,
    0xc7, 0xca, 0xcb, 0xcc, 0xcf, 0xd0, 0xd3, 0xd4, 0xd9, 0xda, 0xdb, 0xdc, 0xdd, 0xde, 0xdf, 0xe0,
    0xff,
];

/// Headers announcing a huge value (a length the input cannot hold).
const HUGE: &[&[u8]] = &[
    &[0xc6, 0xff, 0xff, 0xff, 0xff],
    &[0xdb, 0x7f, 0xff, 0xff, 0xff],
    &[0xdd, 0xff, 0xff, 0xff, 0xff],
    &[0xdf, 0xff, 0xff, 0xff, 0xff],
    &[0xdc, 0xff, 0xff],
    &[0xde, 0xff, 0xff],
    &[0xc5, 0xff, 0xff],
];

/// One to four mutations of `input`; `other` is a second input to splice from.
pub fn mutate(rng: &mut Rng, input: &[u8], other: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..=rng.below(4) {
        mutate_once(rng, &mut out, other);
    }
    out
}

fn mutate_once(rng: &mut Rng, out: &mut Vec<u8>, other: &[u8]) {
    let len = out.len();
    let at = if len == 0 { 0 } else { rng.below(len) };
    match rng.below(11) {
        0 if len > 0 => out[at] ^= 1 << rng.below(8),
        1 if len > 0 => out[at] = INTERESTING[rng.below(INTERESTING.len())],
        2 if len > 0 => out[at] = rng.byte(),
        3 => out.truncate(at),
        4 => {
            let n = 1 + rng.below(8);
            let ins = rng.bytes(n);
            out.splice(at..at, ins);
        }
        5 if len > 0 => {
            let end = (at + 1 + rng.below(16)).min(len);
            out.drain(at..end);
        }
        6 if len > 0 => {
            let end = (at + 1 + rng.below(32)).min(len);
            let chunk = out[at..end].to_vec();
            out.splice(at..at, chunk);
        }
        7 if !other.is_empty() => {
            // Splice: our prefix, then the other input's suffix.
            let from = rng.below(other.len());
            out.truncate(at);
            out.extend_from_slice(&other[from..]);
        }
        8 => {
            let huge = HUGE[rng.below(HUGE.len())];
            let end = (at + huge.len()).min(len);
            out.splice(at..end, huge.iter().copied());
        }
        9 if len > 1 => {
            // Swap two bytes.
            let b = rng.below(len);
            out.swap(at, b);
        }
        _ => {
            let b = INTERESTING[rng.below(INTERESTING.len())];
            out.insert(at, b);
        }
    }
}
