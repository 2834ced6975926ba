//! Every vector case, ours and the independent implementation's, reaches the expected
//! verdict and principal (and, for ours, the expected reason).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

use sealrpc_tests::{golden, vectors};

#[test]
fn conformance_vectors_reach_the_expected_verdicts() {
    // $SEALRPC_CONFORMANCE points at another vector file (e.g. the kept-back cases).
    let path = std::env::var_os("SEALRPC_CONFORMANCE")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| vectors::vectors_dir().join("conformance.json"));
    let file = vectors::load(&path);
    let (outcomes, failures) = vectors::run(&file);
    for o in &outcomes {
        eprintln!("{}: {:?}", o.name, o.result);
    }
    assert!(outcomes.len() >= 14);
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn golden_vectors_reach_the_expected_verdicts_and_reasons() {
    let file = vectors::load(&vectors::vectors_dir().join("golden.json"));
    let (outcomes, failures) = vectors::run(&file);
    for o in &outcomes {
        eprintln!("{}: {:?}", o.name, o.result);
    }
    assert!(outcomes.len() >= 20);
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn golden_vectors_are_current() {
    let path = vectors::vectors_dir().join("golden.json");
    let fresh = golden::generate();
    if std::env::var_os("SEALRPC_REGEN_GOLDEN").is_some() {
        std::fs::write(&path, serde_json::to_string_pretty(&fresh).unwrap() + "\n").unwrap();
    }
    let on_disk = vectors::load(&path);
    assert_eq!(
        on_disk, fresh,
        "golden.json differs from what the code generates"
    );
}
