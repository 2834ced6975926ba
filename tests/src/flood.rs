//! The fixture of the hostile-flood suite: a conductor (signed and sealed, enforced, with a
//! small envelope limit and a configurable replay guard), a guest and an API service of
//! the same control plane (and more guests on demand), two senders of another one, and
//! envelope surgery helpers.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use sealrpc_core::Version;
use sealrpc_core::bytes::Bytes;
use sealrpc_core::security::{Outbound, Peer, ReplayConfig, Security};
use sealrpc_core::wire::{EnvelopeRef, Header, Kind, Limits, MessageId, RequestBody};
use sealrpc_examples::trove::msgpack::Writer;
use sealrpc_signers::{ControlPlaneKeys, GuestKeys, MasterSecret, RotationTable};

/// The guest's instance id.
pub const GUEST: &str = "7f3a0c2e-5b1d-4e8a-9c6f-0123456789ab";
/// The conductor's envelope size limit.
pub const MAX_ENVELOPE: usize = 64 * 1024;

/// The receiver and two legitimate senders sharing one control plane.
pub struct Net {
    /// The conductor (the receiver under attack).
    pub receiver: Arc<Security>,
    /// The guest [`GUEST`], a legitimate sender.
    pub guest: Arc<Security>,
    /// The control plane's `api` service, a legitimate sender.
    pub api: Arc<Security>,
    /// A guest of another control plane (another master): its keys are unknown here.
    pub intruder: Arc<Security>,
    /// The guest's own key id under another master: a forgery of the guest's signature.
    pub forger: Arc<Security>,
    /// The time the fixture was made.
    pub now: SystemTime,
}

/// A conductor whose replay guard holds `capacity` ids (a quarter of them reserved for the
/// control plane), with its senders and forgers.
pub fn net(capacity: usize) -> Net {
    net_with_guests(
        ReplayConfig {
            skew_ms: 60_000,
            capacity,
            // A quarter reserved for the control plane, as by default; no per-guest quota
            // below the guests' share, so that the guest's valid calls of a flood all fit.
            control_reserve: capacity / 4,
            per_guest: capacity,
            ..ReplayConfig::default()
        },
        &[],
    )
    .0
}

/// A conductor with the replay guard `replay`, its senders and forgers, and one more
/// legitimate guest sender per id of `guests` (in that order).
pub fn net_with_guests(replay: ReplayConfig, guests: &[String]) -> (Net, Vec<Arc<Security>>) {
    let master = Arc::new(MasterSecret::from_bytes([0x11; 32]));
    let conductor =
        ControlPlaneKeys::new(master, Arc::new(RotationTable::new()), "conductor").unwrap();
    let api = conductor.for_service("api").unwrap();
    let sender = |id: &str| {
        let bundle = conductor.issue_guest_bundle(id).unwrap();
        GuestKeys::from_bundle(&bundle).unwrap().security().build()
    };
    let others = guests.iter().map(|id| sender(id)).collect();
    let other = ControlPlaneKeys::new(
        Arc::new(MasterSecret::from_bytes([0x22; 32])),
        Arc::new(RotationTable::new()),
        "conductor",
    )
    .unwrap();
    let intruder = GuestKeys::from_bundle(&other.issue_guest_bundle("intruder").unwrap()).unwrap();
    let forger = GuestKeys::from_bundle(&other.issue_guest_bundle(GUEST).unwrap()).unwrap();
    let net = Net {
        receiver: conductor
            .security()
            .limits(Limits {
                max_envelope: MAX_ENVELOPE,
                ..Limits::default()
            })
            .replay(replay)
            .build(),
        guest: sender(GUEST),
        api: api.security().build(),
        intruder: intruder.security().build(),
        forger: forger.security().build(),
        now: SystemTime::now(),
    };
    (net, others)
}

/// `t` in milliseconds since the epoch.
pub fn ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

/// A signed and sealed call from `sender` to the conductor, sent at `ts`.
pub fn call(sender: &Security, ts: u64) -> Bytes {
    let header = Header {
        id: MessageId::random(),
        kind: Kind::Call,
        ts,
        ttl: Some(30_000),
        src: String::new(),
        dst: "conductor".into(),
        corr: None,
        reply: Some("reply.flood".into()),
        seal: None,
    };
    let mut args = Writer::default();
    args.map(2)
        .str("instance_id")
        .str(GUEST)
        .str("status")
        .str("ACTIVE");
    let body = RequestBody {
        method: "update_status".into(),
        version: Version::new(1, 0),
        namespace: None,
        args: args.into_bytes().into(),
        ctx: Bytes::from_static(b"\x81\xaarequest_id\xa3r-1"),
        monitor: None,
    };
    Bytes::from(
        sender
            .seal_and_sign(Outbound {
                header,
                body: body.into(),
                peer: Peer::ControlPlane,
                carries_secret: false,
            })
            .unwrap(),
    )
}

/// The addresses the conductor serves.
pub fn served(dst: &str) -> bool {
    dst == "conductor"
}

/// Flips one bit of the byte at `at`.
pub fn flip(bytes: &Bytes, at: usize) -> Bytes {
    let mut v = bytes.to_vec();
    v[at] ^= 0x01;
    Bytes::from(v)
}

/// Where the body (`b`) starts inside an envelope.
pub fn body_offset(bytes: &[u8]) -> (usize, usize) {
    let env = EnvelopeRef::decode(bytes, &Limits::default()).unwrap();
    (
        env.body.as_ptr() as usize - bytes.as_ptr() as usize,
        env.body.len(),
    )
}
