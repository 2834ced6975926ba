#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sealrpc_fuzz::targets::key_id_parse(data));
