//! The `trove_cluster` demo never prints a secret, nor logs one at any level: the whole
//! demo runs under a TRACE subscriber that captures every event and span field (from every
//! thread), and neither its output nor the logs may hold a password.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::sync::{Arc, Mutex};

use sealrpc_examples::trove::bench::BenchConfig;
use sealrpc_examples::trove::net::TransportChoice;
use sealrpc_examples::trove::{DemoOptions, run_demo};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_never_shows_a_secret() {
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let mut opts = DemoOptions::new(3, TransportChoice::Memory);
    opts.bench = BenchConfig {
        rounds: 1,
        batch: 20,
        concurrency: 2,
    };
    let mut out = Vec::new();
    let report = run_demo(&opts, &mut out).await.unwrap();
    assert!(report.success(), "{}", String::from_utf8_lossy(&out));

    let out = String::from_utf8(out).unwrap();
    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.len() > 10_000,
        "TRACE logging captured too little: {} bytes",
        logs.len()
    );
    assert!(out.contains("attacks REJECTED"));
    let passwords = &report.traffic.as_ref().unwrap().passwords;
    assert_eq!(passwords.len(), 3);
    for p in passwords {
        let p = p.expose();
        assert!(
            !out.contains(p.as_str()),
            "a password is in the demo's output"
        );
        assert!(!logs.contains(p.as_str()), "a password is in the logs");
    }
    // Every password of the run (traffic, the attack table's captured call) starts "pw-";
    // the attacker's own is "attacker-chosen".
    for needle in ["pw-", "attacker-chosen"] {
        assert!(!out.contains(needle), "{needle:?} is in the demo's output");
        assert!(!logs.contains(needle), "{needle:?} is in the logs");
    }
}
