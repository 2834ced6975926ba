//! Golden cases of the `notify` kind (docs/wire-format.md §4.3): a guest's usage
//! notification, sealed under its k3 and signed, is accepted as the guest; the same naming
//! another guest as publisher is `source_mismatch`; a guest's bare id and `guest:g` are
//! accepted as publishers; unsigned under Enforce is `unauthenticated`.

use sealrpc_core::wire::Kind;
use serde_json::Value;

use super::build::*;
use super::{case, control_receiver};

/// Guest G's `trove.instance.usage` notification, published as `publisher`.
fn usage(publisher: &str, id: u8) -> Msg {
    Msg {
        id,
        kind: Kind::Notify,
        ttl: None,
        reply: None,
        method: "trove.instance.usage",
        publisher: Some(publisher.to_owned()),
        seal: Some(format!("k3/guest:{G}/1")),
        signer: Some(format!("sig/guest:{G}/1")),
        ..msg(&format!("guest:{G}"), "notifications.info")
    }
}

/// Every case of this module, in file order.
pub(super) fn cases() -> Vec<Value> {
    let g = format!("guest:{G}");
    let unsigned = Msg {
        seal: None,
        signer: None,
        ..usage(&g, 0x74)
    };
    vec![
        case(
            "notify_from_a_guest_as_its_service_host",
            &build(&usage(&format!("trove-guestagent.{G}"), 0x70), None),
            control_receiver(),
            "signature",
            true,
            Ok(Some(&g)),
        ),
        case(
            "notify_from_a_guest_as_its_principal",
            &build(&usage(&g, 0x71), None),
            control_receiver(),
            "signature",
            true,
            Ok(Some(&g)),
        ),
        case(
            "notify_naming_another_guest_as_publisher",
            &build(&usage(&format!("trove-guestagent.{H}"), 0x72), None),
            control_receiver(),
            "signature",
            true,
            Err("source_mismatch"),
        ),
        case(
            "notify_unsigned_unsealed_under_enforce",
            &build(&unsigned, None),
            control_receiver(),
            "signature",
            true,
            Err("unauthenticated"),
        ),
    ]
}
