//! The security pipeline without a transport: build a call the way the client does (the body
//! as parts, written straight into the envelope), seal and sign it, admit it at the server
//! from the bytes as a transport hands them over (owned, so the body opens in place),
//! answer it, seal and sign the reply, admit the reply at the client. This is the crypto
//! floor of one call.

use bytes::Bytes;
use sealrpc_core::Version;
use sealrpc_core::security::{AdmittedBody, Outbound, Peer, now_ms};
use sealrpc_core::wire::{Header, Kind, MessageId, ReplyBody, RequestBody};

use crate::BoxError;
use crate::modes::Pair;

/// The topic the guest agent serves.
pub const TOPIC: &str = "guestagent";

/// A MessagePack map `{"data": bin(payload)}`: the echo call's argument (and result), as
/// a client holds its encoded arguments.
pub fn echo_args(payload: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(payload.len() + 16);
    out.push(0x81);
    out.push(0xa4);
    out.extend_from_slice(b"data");
    let n = payload.len();
    if n <= 0xff {
        out.extend_from_slice(&[0xc4, n as u8]);
    } else if n <= 0xffff {
        out.push(0xc5);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(0xc6);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    }
    out.extend_from_slice(payload);
    Bytes::from(out)
}

/// A payload of `size` bytes (not all zero, so nothing compresses it away by accident).
pub fn payload(size: usize) -> Vec<u8> {
    (0..size).map(|i| (i % 251) as u8).collect()
}

/// The encoded empty context map.
pub const EMPTY_CTX: &[u8] = &[0x80];

/// One request as the client builds it for the guest's server address: the body's parts
/// share `args` (the client's encoded arguments) until the envelope is written.
pub fn request_outbound(guest_id: &str, args: Bytes) -> Outbound {
    let header = Header {
        id: MessageId::random(),
        kind: Kind::Call,
        ts: now_ms(),
        ttl: Some(30_000),
        src: String::new(),
        dst: format!("{TOPIC}.{guest_id}"),
        corr: None,
        reply: Some("mem-reply.bench".to_owned()),
        seal: None,
    };
    Outbound {
        header,
        body: RequestBody {
            method: "echo".to_owned(),
            version: Version::new(1, 0),
            namespace: None,
            args,
            ctx: Bytes::from_static(EMPTY_CTX),
            monitor: None,
        }
        .into(),
        peer: Peer::Guest(guest_id.to_owned()),
        carries_secret: false,
    }
}

/// The reply the server sends to request `corr`, with `result` as the encoded `ok` value.
pub fn reply_outbound(corr: MessageId, result: Bytes) -> Outbound {
    let header = Header {
        id: MessageId::random(),
        kind: Kind::Reply,
        ts: now_ms(),
        ttl: None,
        src: String::new(),
        dst: "mem-reply.bench".to_owned(),
        corr: Some(corr),
        reply: None,
        seal: None,
    };
    Outbound {
        header,
        body: ReplyBody::Ok(result).into(),
        peer: Peer::ControlPlane,
        carries_secret: false,
    }
}

/// One full call through both pipelines (no transport): request out, in, reply out, in.
/// Each side admits the envelope as a transport delivers it, owned. Returns the length of
/// the echoed result, checked against the request's args by length and by its first and
/// last bytes, as the transport workload checks its length: a full comparison would time
/// the bench, not the pipeline (the tests below compare every byte).
pub fn round_trip(pair: &Pair, guest_id: &str, args: &Bytes) -> Result<usize, BoxError> {
    let echoed = echo(pair, guest_id, args)?;
    if same_ends(&echoed, args) {
        Ok(echoed.len())
    } else {
        Err("bad reply".into())
    }
}

/// [`round_trip`]'s call, returning the echoed result as the client admitted it.
pub fn echo(pair: &Pair, guest_id: &str, args: &Bytes) -> Result<Bytes, BoxError> {
    let served = format!("{TOPIC}.{guest_id}");
    let req = pair
        .client
        .seal_and_sign(request_outbound(guest_id, args.clone()))?;
    let admitted = pair
        .server
        .admit(Bytes::from(req), &|dst| dst == served)
        .map_err(|r| format!("request rejected: {}", r.reason))?;
    let AdmittedBody::Request(body) = admitted.body else {
        return Err("not a request".into());
    };
    let rep = pair
        .server
        .seal_and_sign(reply_outbound(admitted.header.id, body.args))?;
    let admitted = pair
        .client
        .admit(Bytes::from(rep), &|dst| dst == "mem-reply.bench")
        .map_err(|r| format!("reply rejected: {}", r.reason))?;
    match admitted.body {
        AdmittedBody::Reply(ReplyBody::Ok(r)) => Ok(r),
        _ => Err("bad reply".into()),
    }
}

/// Whether `a` and `b` have the same length and the same first and last 16 bytes.
fn same_ends(a: &[u8], b: &[u8]) -> bool {
    let n = a.len().min(16);
    a.len() == b.len() && a[..n] == b[..n] && a[a.len() - n..] == b[b.len() - n..]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modes::{BenchKeys, SecMode};

    #[test]
    fn round_trip_echoes_the_args_in_every_mode() -> Result<(), BoxError> {
        let keys = BenchKeys::new("0123456789abcdef")?;
        for mode in SecMode::ALL {
            let pair = keys.pair(mode);
            for size in [0, 100, 64 * 1024] {
                let args = echo_args(&payload(size));
                assert_eq!(
                    echo(&pair, keys.guest_id(), &args)?,
                    args,
                    "{}",
                    mode.name()
                );
                assert_eq!(round_trip(&pair, keys.guest_id(), &args)?, args.len());
            }
        }
        Ok(())
    }

    #[test]
    fn the_cheap_check_sees_a_wrong_length_or_end() {
        let a = payload(1000);
        let mut b = a.clone();
        assert!(same_ends(&a, &b));
        b[999] ^= 1;
        assert!(!same_ends(&a, &b));
        assert!(!same_ends(&a, &a[..999]));
        assert!(same_ends(&[], &[]));
    }
}
