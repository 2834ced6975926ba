//! Our own golden envelopes (`docs/vectors/golden.json`): built deterministically (fixed
//! master, ids and nonces; ed25519 is deterministic), so the file pins the exact bytes and
//! the test `golden_vectors_are_current` fails if the encoding ever drifts.
//!
//! Regenerate after a deliberate wire change with
//! `SEALRPC_REGEN_GOLDEN=1 cargo test -p sealrpc-tests --test vectors`.

use serde_json::{Value, json};

mod build;
mod notify;
mod rules;

use build::*;
pub use build::{MASTER_HEX, NOW_MS};
use sealrpc_core::wire::Kind;

fn control_receiver() -> Value {
    json!({"me": "control:conductor", "master": MASTER_HEX})
}

fn guest_receiver(g: &str) -> Value {
    let mut keys = serde_json::Map::new();
    for id in [
        format!("k2/guest:{g}/1"),
        format!("k3/guest:{g}/1"),
        "kb/guests/1".into(),
    ] {
        keys.insert(id.clone(), json!(hex::encode(key(&id).as_bytes())));
    }
    for id in ["sig/control:conductor/1", "sig/control:api/1"] {
        keys.insert(id.into(), json!(public(id)));
    }
    json!({"me": format!("guest:{g}"), "master": null, "keys": keys})
}

fn case(
    name: &str,
    envelope: &[u8],
    receiver: Value,
    auth: &str,
    sealed: bool,
    verdict: Result<Option<&str>, &str>,
) -> Value {
    let mut c = receiver;
    c["name"] = json!(name);
    c["envelope"] = json!(hex::encode(envelope));
    c["auth"] = json!(auth);
    c["require_sealed"] = json!(sealed);
    match verdict {
        Ok(p) => {
            c["verdict"] = json!("accept");
            c["principal"] = json!(p);
        }
        Err(reason) => {
            c["verdict"] = json!("reject");
            c["principal"] = Value::Null;
            c["reason"] = json!(reason);
        }
    }
    c
}

/// Every golden case, in file order.
pub fn generate() -> Value {
    let g = format!("guest:{G}");
    let valid = build(&guest_call(), None);
    let unsigned = build(
        &Msg {
            kind: Kind::Cast,
            reply: None,
            method: "heartbeat",
            args: b"\x80".to_vec(),
            ..msg(&g, "conductor")
        },
        None,
    );
    let control_to_g = Msg {
        seal: Some(format!("k2/guest:{G}/1")),
        signer: Some("sig/control:api/1".into()),
        method: "prepare",
        ..msg("control:api", &format!("guestagent.{G}"))
    };
    let fanout = Msg {
        kind: Kind::Fanout,
        reply: None,
        ttl: None,
        seal: Some("kb/guests/1".into()),
        signer: Some("sig/control:conductor/1".into()),
        method: "refresh_config",
        args: b"\x80".to_vec(),
        ..msg("control:conductor", "guestagent_fanout")
    };
    let mut swapped = build(
        &Msg {
            id: 2,
            ..guest_call()
        },
        None,
    );
    let (good_sig, other_sig) = (last_signature(&valid), last_signature(&swapped));
    let at = swapped.len() - 64;
    assert_eq!(&swapped[at..], other_sig.as_slice());
    swapped[at..].copy_from_slice(&good_sig);
    let mut bad_known = build(
        &Msg {
            unknown_sig: true,
            ..guest_call()
        },
        None,
    );
    let n = bad_known.len();
    bad_known[n - 1] ^= 0x01;
    let mut cases = vec![
        case(
            "valid_signed_sealed",
            &valid,
            control_receiver(),
            "signature",
            true,
            Ok(Some(&g)),
        ),
        case(
            "future_sender_extra_keys_every_level",
            &build(
                &Msg {
                    future: true,
                    ..guest_call()
                },
                None,
            ),
            control_receiver(),
            "signature",
            true,
            Ok(Some(&g)),
        ),
        case(
            "extra_signature_unknown_algorithm_skipped",
            &build(
                &Msg {
                    unknown_sig: true,
                    ..guest_call()
                },
                None,
            ),
            control_receiver(),
            "signature",
            true,
            Ok(Some(&g)),
        ),
        case(
            "known_signature_fails_beside_unknown_one",
            &bad_known,
            control_receiver(),
            "signature",
            true,
            Err("bad_signature"),
        ),
        case(
            "old_style_unsigned_permissive",
            &unsigned,
            control_receiver(),
            "none",
            false,
            Ok(None),
        ),
        case(
            "old_style_unsigned_enforce",
            &unsigned,
            control_receiver(),
            "signature",
            true,
            Err("unauthenticated"),
        ),
        case(
            "tampered_header",
            &tamper(valid.clone(), b"conductor"),
            control_receiver(),
            "signature",
            true,
            Err("bad_signature"),
        ),
        case(
            "tampered_body",
            &tamper(valid.clone(), &valid[valid.len() - 100..valid.len() - 90]),
            control_receiver(),
            "signature",
            true,
            Err("bad_signature"),
        ),
        case(
            "wrong_seal_key",
            &build(&guest_call(), Some(&format!("k3/guest:{H}/1"))),
            control_receiver(),
            "signature",
            true,
            Err("open_failed"),
        ),
        case(
            "swapped_signature",
            &swapped,
            control_receiver(),
            "signature",
            true,
            Err("bad_signature"),
        ),
        {
            let mut c = case(
                "replayed",
                &valid,
                control_receiver(),
                "signature",
                true,
                Err("replay"),
            );
            c["prior"] = json!([hex::encode(&valid)]);
            c
        },
        case(
            "expired",
            &build(
                &Msg {
                    ts: NOW_MS - 5_000,
                    ttl: Some(1_000),
                    ..guest_call()
                },
                None,
            ),
            control_receiver(),
            "signature",
            true,
            Err("expired"),
        ),
        case(
            "outside_skew_window",
            &build(
                &Msg {
                    ts: NOW_MS - 120_000,
                    ttl: None,
                    ..guest_call()
                },
                None,
            ),
            control_receiver(),
            "signature",
            true,
            Err("clock_skew"),
        ),
        {
            let mut c = case(
                "revoked_guest",
                &valid,
                control_receiver(),
                "signature",
                true,
                Err("revoked_key"),
            );
            c["revoked"] = json!([G]);
            c
        },
        {
            let mut c = case(
                "stale_epoch_after_grace",
                &valid,
                control_receiver(),
                "signature",
                true,
                Err("stale_key"),
            );
            c["epochs"] = json!({ G: 3 });
            c
        },
        case(
            "pairwise_k3_seal_unsigned_accepted_when_pairwise",
            &build(
                &Msg {
                    signer: None,
                    ..guest_call()
                },
                None,
            ),
            control_receiver(),
            "pairwise",
            true,
            Ok(Some(&g)),
        ),
        case(
            "pairwise_k3_seal_unsigned_refused_when_signature_required",
            &build(
                &Msg {
                    signer: None,
                    ..guest_call()
                },
                None,
            ),
            control_receiver(),
            "signature",
            true,
            Err("unauthenticated"),
        ),
        case(
            "src_claims_control_while_signed_by_guest",
            &build(
                &Msg {
                    src: "control:api".into(),
                    ..guest_call()
                },
                None,
            ),
            control_receiver(),
            "signature",
            true,
            Err("source_mismatch"),
        ),
        case(
            "reflected_k2_to_control_plane",
            &build(
                &Msg {
                    seal: Some(format!("k2/guest:{G}/1")),
                    ..guest_call()
                },
                None,
            ),
            control_receiver(),
            "signature",
            true,
            Err("wrong_direction"),
        ),
        case(
            "control_call_to_guest",
            &build(&control_to_g, None),
            guest_receiver(G),
            "signature",
            true,
            Ok(Some("control:api")),
        ),
        case(
            "call_to_g_received_by_other_guest",
            &build(&control_to_g, None),
            guest_receiver(H),
            "signature",
            true,
            Err("wrong_direction"),
        ),
        case(
            "fanout_signed_by_conductor",
            &build(&fanout, None),
            guest_receiver(G),
            "signature",
            true,
            Ok(Some("control:conductor")),
        ),
        case(
            "fanout_unsigned_even_in_permissive",
            &build(
                &Msg {
                    signer: None,
                    ..fanout.clone()
                },
                None,
            ),
            guest_receiver(G),
            "none",
            false,
            Err("unauthenticated"),
        ),
        case(
            "garbage_bytes",
            b"\xc1\x00\xff",
            control_receiver(),
            "signature",
            true,
            Err("malformed"),
        ),
        case(
            "truncated",
            &valid[..valid.len() / 2],
            control_receiver(),
            "signature",
            true,
            Err("malformed"),
        ),
        case(
            "envelope_v2",
            &{
                let mut v = valid.clone();
                v[3] = 2;
                v
            },
            control_receiver(),
            "signature",
            true,
            Err("unsupported_envelope"),
        ),
    ];
    cases.extend(rules::cases());
    cases.extend(notify::cases());
    json!({
        "format": "sealrpc v1 golden vectors (see docs/vectors/README.md)",
        "now_ms": NOW_MS,
        "skew_ms": 60_000,
        "master": MASTER_HEX,
        "cases": cases,
    })
}
