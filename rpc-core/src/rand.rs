//! Random bytes from the operating system.

/// Fills `buf` with random bytes from the OS.
///
/// A machine without a working random source cannot run sealrpc safely, so this aborts the
/// process (as `getrandom` failures are not recoverable) rather than send predictable ids.
pub fn fill(buf: &mut [u8]) {
    if getrandom::fill(buf).is_err() {
        tracing::error!("the operating system's random source failed; aborting");
        std::process::abort();
    }
}
