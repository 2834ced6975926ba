//! CI smoke run of the overhead report: quick mode on the memory transport must complete
//! and print a row for every mode and size. No timing is asserted. Tests build the binary
//! unoptimized, where 1 MiB of crypto takes ~0.1 s a call, so the smoke run keeps 4 calls
//! in flight instead of 32.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::process::Command;

use sealrpc_benches::SIZES;
use sealrpc_benches::modes::SecMode;

#[test]
fn quick_memory_run_prints_every_row() {
    let out = Command::new(env!("CARGO_BIN_EXE_overhead"))
        .args(["--quick", "--in-flight", "4"])
        .output()
        .expect("run the overhead binary");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "overhead --quick failed:\n{stderr}\n{stdout}"
    );
    for (size, _) in SIZES {
        let header = format!("== memory {size} ==");
        let start = stdout
            .find(&header)
            .unwrap_or_else(|| panic!("no block {header:?} in:\n{stdout}"));
        let block = &stdout[start + header.len()..];
        let block = &block[..block.find("\n== ").unwrap_or(block.len())];
        for mode in SecMode::ALL {
            let row = block
                .lines()
                .find(|l| l.split_whitespace().next() == Some(mode.name()))
                .unwrap_or_else(|| panic!("no row {} in {header}:\n{stdout}", mode.name()));
            assert!(!row.contains("errors"), "calls failed: {row}");
        }
    }
}

#[test]
fn quick_memory_run_json_has_every_row() {
    let out = Command::new(env!("CARGO_BIN_EXE_overhead"))
        .args([
            "--quick",
            "--json",
            "--sizes",
            "100B,1KiB",
            "--in-flight",
            "4",
        ])
        .output()
        .expect("run the overhead binary");
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    let rows = v["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 2 * SecMode::ALL.len());
    for r in rows {
        assert_eq!(r["transport"], "memory");
        assert_eq!(r["errors"], 0);
        assert!(r["calls_seq"].as_u64().unwrap() > 0);
    }
}
