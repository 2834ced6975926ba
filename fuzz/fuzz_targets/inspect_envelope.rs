#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sealrpc_fuzz::targets::inspect_envelope(data));
