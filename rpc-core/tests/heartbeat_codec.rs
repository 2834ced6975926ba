//! The wire of the call monitor: `monitor` in a call's body and the heartbeat reply body
//! (`{hb: true}`), docs/wire-format.md §4.2.
#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use proptest::prelude::*;
use sealrpc_core::Version;
use sealrpc_core::wire::{Body, ReplyBody, RequestBody};

fn request(monitor: Option<u64>) -> Bytes {
    let body = Body::Request(RequestBody {
        method: "m".into(),
        version: Version::new(1, 0),
        namespace: None,
        args: Bytes::from_static(b"\x80"),
        ctx: Bytes::from_static(b"\x80"),
        monitor,
    });
    Bytes::from(body.encode())
}

#[test]
fn a_heartbeat_round_trips_and_is_never_ok_or_err() {
    let hb = Bytes::from(ReplyBody::Heartbeat.encode());
    assert_eq!(&hb[..], b"\x81\xa2hb\xc3");
    assert_eq!(ReplyBody::decode(&hb).unwrap(), ReplyBody::Heartbeat);
}

#[test]
fn a_heartbeat_with_anything_else_is_malformed() {
    for bad in [
        &b"\x82\xa2hb\xc3\xa2ok\x01"[..],
        b"\x82\xa2hb\xc3\xa2ok\xc0",
        b"\x82\xa2hb\xc3\xa3err\x82\xa4code\xa1x\xa3msg\xa1y",
        b"\x81\xa2hb\xc2",
        b"\x81\xa2hb\x01",
        b"\x82\xa2hb\xc3\xa2hb\xc3",
    ] {
        let bad = Bytes::copy_from_slice(bad);
        assert!(ReplyBody::decode(&bad).is_err(), "{bad:?}");
    }
    // `hb: nil` is absent (the mixed-version rule for nil): an ordinary reply.
    let nil = Bytes::from_static(b"\x82\xa2hb\xc0\xa2ok\x01");
    assert!(matches!(ReplyBody::decode(&nil), Ok(ReplyBody::Ok(_))));
}

#[test]
fn monitor_is_optional_and_positive() {
    assert_eq!(RequestBody::decode(&request(None)).unwrap().monitor, None);
    assert_eq!(
        RequestBody::decode(&request(Some(500))).unwrap().monitor,
        Some(500)
    );
    assert!(RequestBody::decode(&request(Some(0))).is_err());
    // A plain encode never carries it: the bytes of an unmonitored call are unchanged.
    let v = Version::new(1, 0);
    let plain = RequestBody::encode("m", v, None, b"\x80", b"\x80");
    assert_eq!(&plain[..], &request(None)[..]);
}

proptest! {
    #[test]
    fn monitor_round_trips(ms in 1u64..) {
        prop_assert_eq!(RequestBody::decode(&request(Some(ms))).unwrap().monitor, Some(ms));
    }
}
