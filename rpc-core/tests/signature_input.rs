//! The signature input against the independent implementation's known answer.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use sealrpc_core::wire::{KeyId, Role, signature_input};

fn vectors() -> serde_json::Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/vectors/conformance.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn signature_input_matches_known_answer() {
    let v = vectors();
    let h = hex::decode(v["sig_input"]["h"].as_str().unwrap()).unwrap();
    let b = hex::decode(v["sig_input"]["b"].as_str().unwrap()).unwrap();
    let want = v["sig_input"]["input"].as_str().unwrap();
    assert_eq!(hex::encode(signature_input(&h, &b)), want);
}

#[test]
fn key_id_syntax() {
    let k = KeyId::parse("k3/guest:7f3a0c2e-5b1d-4e8a-9c6f-0123456789ab/4").unwrap();
    assert_eq!(k.role(), Role::K3);
    assert_eq!(
        k.principal().guest_id(),
        Some("7f3a0c2e-5b1d-4e8a-9c6f-0123456789ab")
    );
    assert_eq!(k.epoch(), 4);
    for ok in [
        "k1/control/1",
        "kb/guests/10",
        "sig/control:conductor/0",
        "k2/guest:x/1",
    ] {
        assert!(KeyId::parse(ok).is_ok(), "{ok}");
    }
    for bad in [
        "k1/control/01",
        "k1/control/",
        "k1/control/1/2",
        "k4/control/1",
        "K1/control/1",
        "k1/ctl/1",
        "sig/control:/1",
        "k2/guest:/1",
        "k1/control/+1",
        "k1//1",
        "k1/control/1 ",
        "sig/guest:a b/1",
    ] {
        assert!(KeyId::parse(bad).is_err(), "{bad}");
    }
}
