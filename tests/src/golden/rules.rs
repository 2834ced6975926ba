//! Golden cases pinning the rules of docs/wire-format.md that issue 11 made explicit: the
//! policy class follows from what is proven (§7.1, with per-class `modes`), `corr` and
//! `reply` per kind (§3), `kb` only on fanout (§7), `str` keys throughout `args` (§1), and
//! signature items of unknown algorithms skipped whatever their `k` and `s` (§5).

use sealrpc_core::wire::Kind;
use sealrpc_examples::trove::msgpack::Writer;
use serde_json::{Value, json};

use super::build::*;
use super::{case, control_receiver, guest_receiver};

/// `c` with per-class modes (`control_plane`, `guests`, `fanout`).
fn with_modes(mut c: Value, control_plane: &str, guests: &str, fanout: &str) -> Value {
    c["modes"] = json!({"control_plane": control_plane, "guests": guests, "fanout": fanout});
    c
}

/// A cast from the API to the conductor: unsigned and unsealed unless changed.
fn api_cast() -> Msg {
    Msg {
        kind: Kind::Cast,
        reply: None,
        id: 3,
        method: "heartbeat",
        args: b"\x80".to_vec(),
        ..msg("control:api", "conductor")
    }
}

fn policy_cases() -> Vec<Value> {
    let signed_api = Msg {
        signer: Some("sig/control:api/1".into()),
        ..api_cast()
    };
    let mut garbage = build(&signed_api, None);
    let n = garbage.len();
    garbage[n - 64..].fill(0x5a);
    vec![
        with_modes(
            case(
                "unsigned_claiming_control_when_only_the_control_class_is_permissive",
                &build(&api_cast(), None),
                control_receiver(),
                "signature",
                true,
                Err("unauthenticated"),
            ),
            "permissive",
            "enforce",
            "enforce",
        ),
        with_modes(
            case(
                "signed_by_control_unsealed_when_the_control_class_is_permissive",
                &build(&signed_api, None),
                control_receiver(),
                "signature",
                true,
                Ok(Some("control:api")),
            ),
            "permissive",
            "enforce",
            "enforce",
        ),
        with_modes(
            case(
                "garbage_control_signature_when_the_control_class_is_off",
                &garbage,
                control_receiver(),
                "signature",
                true,
                Err("bad_signature"),
            ),
            "off",
            "enforce",
            "enforce",
        ),
        with_modes(
            case(
                "garbage_control_signature_unchecked_only_when_every_class_is_off",
                &garbage,
                control_receiver(),
                "signature",
                true,
                Ok(None),
            ),
            "off",
            "off",
            "off",
        ),
    ]
}

fn header_cases() -> Vec<Value> {
    let g = format!("guest:{G}");
    let reply = Msg {
        kind: Kind::Reply,
        reply: None,
        corr: Some([0x11; 16]),
        id: 4,
        ..guest_call()
    };
    vec![
        case(
            "guest_reply_with_corr",
            &build(&reply, None),
            control_receiver(),
            "signature",
            true,
            Ok(Some(&g)),
        ),
        case(
            "reply_without_corr",
            &build(
                &Msg {
                    corr: None,
                    ..reply
                },
                None,
            ),
            control_receiver(),
            "signature",
            true,
            Err("malformed"),
        ),
        case(
            "call_without_reply",
            &build(
                &Msg {
                    reply: None,
                    id: 5,
                    ..guest_call()
                },
                None,
            ),
            control_receiver(),
            "signature",
            true,
            Err("malformed"),
        ),
    ]
}

fn kb_cases() -> Vec<Value> {
    let kb_unicast = |kind: Kind, id: u8| Msg {
        kind,
        id,
        reply: (kind == Kind::Call).then(|| "reply.control:conductor".into()),
        seal: Some("kb/guests/1".into()),
        signer: Some("sig/control:conductor/1".into()),
        method: "prepare",
        ..msg("control:conductor", &format!("guestagent.{G}"))
    };
    vec![
        case(
            "kb_sealed_cast_to_a_guest",
            &build(&kb_unicast(Kind::Cast, 6), None),
            guest_receiver(G),
            "signature",
            true,
            Err("wrong_direction"),
        ),
        case(
            "kb_sealed_call_to_a_guest",
            &build(&kb_unicast(Kind::Call, 7), None),
            guest_receiver(G),
            "signature",
            true,
            Err("wrong_direction"),
        ),
    ]
}

fn args_cases() -> Vec<Value> {
    let with_args = |args: Vec<u8>, id: u8| Msg {
        args,
        id,
        ..guest_call()
    };
    // {"instance_id": G, "spec": {"n": [{0: 1}]}}
    let mut nested = Writer::default();
    nested.map(2).str("instance_id").str(G).str("spec");
    nested.map(1).str("n").array(1).map(1).uint(0).uint(1);
    vec![
        case(
            "args_with_an_integer_key",
            &build(&with_args(b"\x81\x01\xa1x".to_vec(), 8), None),
            control_receiver(),
            "signature",
            true,
            Err("malformed"),
        ),
        case(
            "args_with_a_nested_integer_key",
            &build(&with_args(nested.into_bytes(), 9), None),
            control_receiver(),
            "signature",
            true,
            Err("malformed"),
        ),
    ]
}

fn item(k: u64, a: &str, s: Option<&[u8]>) -> Vec<u8> {
    let mut w = Writer::default();
    w.map(2 + usize::from(s.is_some()));
    w.str("k").uint(k).str("a").str(a);
    if let Some(s) = s {
        w.str("s").bin(s);
    }
    w.into_bytes()
}

fn signature_item_cases() -> Vec<Value> {
    let g = format!("guest:{G}");
    let with_item = |item: Vec<u8>, id: u8| Msg {
        extra_item: Some(item),
        id,
        ..guest_call()
    };
    vec![
        case(
            "unknown_algorithm_item_with_an_integer_k_and_no_s_skipped",
            &build(&with_item(item(7, "slh-dsa-sha2-128s", None), 10), None),
            control_receiver(),
            "signature",
            true,
            Ok(Some(&g)),
        ),
        case(
            "known_algorithm_item_with_an_integer_k",
            &build(
                &with_item(item(7, "ed25519-sha256", Some(&[0x5a; 64])), 11),
                None,
            ),
            control_receiver(),
            "signature",
            true,
            Err("bad_signature"),
        ),
    ]
}

/// Every case of this module, in file order.
pub(super) fn cases() -> Vec<Value> {
    [
        policy_cases(),
        header_cases(),
        kb_cases(),
        args_cases(),
        signature_item_cases(),
    ]
    .concat()
}
