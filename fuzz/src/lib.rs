//! The fuzz targets' bodies live in `tests/src/fuzz_targets/`, shared with the smoke run
//! of the normal test suite (`tests/tests/fuzz_smoke.rs`): one copy, included here.

#[path = "../../tests/src/fuzz_targets/mod.rs"]
pub mod targets;
