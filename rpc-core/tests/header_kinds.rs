//! One header constructor per message kind: each sets what its kind requires (a call's
//! `ttl` and `reply`, a reply's `corr`), stamps `ts` now, leaves `src` and `seal` to the
//! sending `Security`, and decodes back to itself.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use sealrpc_core::security::now_ms;
use sealrpc_core::wire::{Header, Kind, MessageId};

fn kinds(id: [u8; 16], dst: String, ttl: Option<u64>, reply: String) -> Vec<Header> {
    let id = MessageId(id);
    vec![
        Header::call(id, dst.clone(), ttl.unwrap_or(1), reply),
        Header::cast(id, dst.clone(), ttl),
        Header::fanout(id, format!("{dst}_fanout"), ttl),
        Header::notify(id, format!("{dst}.info"), ttl),
        Header::reply(dst, id),
    ]
}

proptest! {
    #[test]
    fn every_kind_is_complete_and_round_trips(
        id in any::<[u8; 16]>(),
        dst in "[a-z][a-z0-9._-]{0,40}",
        ttl in proptest::option::of(1u64..u64::MAX),
        reply in "[a-z0-9.-]{1,40}",
    ) {
        let before = now_ms();
        for h in kinds(id, dst.clone(), ttl, reply.clone()) {
            prop_assert!(h.ts >= before && h.ts <= now_ms());
            prop_assert!(h.src.is_empty() && h.seal.is_none());
            match h.kind {
                Kind::Call => {
                    prop_assert_eq!(h.ttl, Some(ttl.unwrap_or(1)));
                    prop_assert_eq!(h.reply.as_deref(), Some(reply.as_str()));
                    prop_assert_eq!(h.corr, None);
                }
                Kind::Cast | Kind::Fanout | Kind::Notify => {
                    prop_assert_eq!(h.ttl, ttl);
                    prop_assert_eq!((h.reply.as_ref(), h.corr), (None, None));
                }
                Kind::Reply => {
                    prop_assert_eq!(h.corr, Some(MessageId(id)));
                    prop_assert_ne!(h.id, MessageId(id));
                    prop_assert_eq!((h.ttl, h.reply.as_ref()), (None, None));
                }
            }
            prop_assert_eq!(Header::decode(&h.encode()).unwrap(), h);
        }
    }
}
