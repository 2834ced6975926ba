#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The replay quota holds in the shared store: two conductor replicas (each its own
//! `Security`, one Redis store) run the full receive pipeline (`admit_async`) on signed and
//! sealed calls. A hostile guest flooding both replicas fills its own per-guest quota and
//! is refused (`ReplayGuardFull`) while another guest and the control plane are admitted
//! by either replica.

use std::time::Duration;

use sealrpc_core::security::{RejectReason, ReplayConfig};
use sealrpc_tests::cluster::ControlKeys;
use sealrpc_tests::flood::call;
use sealrpc_tests::replay::{redis_store, redis_url};

fn served(dst: &str) -> bool {
    dst == "conductor"
}

#[tokio::test]
async fn a_hostile_guest_fills_only_its_quota_in_the_shared_store() {
    let keys = ControlKeys::new();
    let (store, _cleanup) = redis_store(&redis_url(), "quota", Duration::from_millis(200)).await;
    let config = ReplayConfig {
        capacity: 400,
        control_reserve: 100,
        per_guest: 40,
        ..ReplayConfig::default()
    };
    let replica = || {
        keys.conductor
            .security()
            .replay(config)
            .replay_store(store.clone())
            .build()
    };
    let (a, b) = (replica(), replica());
    let hostile = keys.guest("hostile").security().build();
    let honest = keys.guest("honest").security().build();
    let api = keys.api.security().build();
    let now = sealrpc_core::security::now_ms();

    let mut refused = 0;
    for i in 0..60u64 {
        let replica = if i % 2 == 0 { &a } else { &b };
        match replica.admit_async(&call(&hostile, now + i), &served).await {
            Ok(m) => assert_eq!(m.principal.unwrap().as_str(), "guest:hostile"),
            Err(r) => {
                assert_eq!(r.reason, RejectReason::ReplayGuardFull);
                refused += 1;
            }
        }
    }
    assert_eq!(
        refused, 20,
        "40 admitted across both replicas, then refused"
    );
    for replica in [&a, &b] {
        for sender in [&honest, &api] {
            replica
                .admit_async(&call(sender, now), &served)
                .await
                .unwrap();
        }
    }
    // A replay of an admitted call is refused by the other replica.
    let m = call(&honest, now);
    a.admit_async(&m, &served).await.unwrap();
    let r = b.admit_async(&m, &served).await.unwrap_err();
    assert_eq!(r.reason, RejectReason::Replay);
    // The synchronous pipeline cannot await the store: it refuses (fail closed).
    let r = a.admit(call(&honest, now), &served).unwrap_err();
    assert_eq!(r.reason, RejectReason::ReplayStoreUnavailable);
}
