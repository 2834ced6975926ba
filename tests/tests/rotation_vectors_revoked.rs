//! The vector harness's `revoked` field holds instance ids (docs/vectors/conformance-README.md).
//! A principal there (`guest:<id>`) can never match; the harness reports it as a bad case
//! instead of silently replaying the case with nothing revoked.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

use sealrpc_tests::vectors;
use serde_json::{Value, json};

/// The conformance file with only the named case, its `revoked` set to `revoked`.
fn one_case(name: &str, revoked: Value) -> Value {
    let mut file = vectors::load(&vectors::vectors_dir().join("conformance.json"));
    let cases = file["cases"].as_array_mut().unwrap();
    cases.retain(|c| c["name"] == name);
    assert_eq!(cases.len(), 1, "case {name} is in conformance.json");
    cases[0]["revoked"] = revoked;
    file
}

/// The instance id of a case's receiver or sender, as the vectors spell it.
const SENDER: &str = "7f3a0c2e-5b1d-4e8a-9c6f-0123456789ab";
const RECEIVER: &str = "0b1cd2e3-f405-4617-8899-aabbccddeeff";

#[test]
fn a_principal_in_revoked_is_a_bad_case_not_a_silent_no_op() {
    for (case, who) in [
        ("guest_call_signed_sealed", SENDER),
        ("fanout_kb_signed_by_control", RECEIVER),
    ] {
        for bad in [format!("guest:{who}"), "control:conductor".to_owned()] {
            let (_, failures) = vectors::run(&one_case(case, json!([bad])));
            assert_eq!(
                failures.len(),
                1,
                "{case} with revoked [{bad}]: {failures:?}"
            );
            assert!(
                failures[0].contains("bad case") && failures[0].contains("instance ids"),
                "{failures:?}"
            );
        }
    }
}

#[test]
fn revoked_must_be_a_list_of_valid_instance_ids() {
    for bad in [json!("abc"), json!([1]), json!(["a/b"]), json!([""])] {
        let (_, failures) = vectors::run(&one_case("guest_call_signed_sealed", bad.clone()));
        assert_eq!(failures.len(), 1, "{bad}: {failures:?}");
        assert!(failures[0].contains("bad case"), "{failures:?}");
    }
    assert_eq!(
        vectors::revoked_ids(&json!({"revoked": ["guest:x"]})),
        Err(vectors::CaseError::RevokedNotAnInstanceId {
            value: "guest:x".into()
        })
    );
    assert_eq!(vectors::revoked_ids(&json!({})), Ok(vec![]));
}

#[test]
fn an_instance_id_in_revoked_does_revoke() {
    // The sender's instance id revoked: its signed call is refused (and not a bad case).
    let (outcomes, failures) = vectors::run(&one_case("guest_call_signed_sealed", json!([SENDER])));
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert!(!failures[0].contains("bad case"), "{failures:?}");
    assert_eq!(
        outcomes[0].result,
        Err(sealrpc_core::security::RejectReason::RevokedKey)
    );
}
