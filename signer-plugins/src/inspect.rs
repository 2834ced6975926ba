//! Human-readable views of envelopes and of the receive pipeline's verdict, as JSON (used
//! by `sealrpc-keys inspect`). Never prints key material: only what is on the wire, and
//! the body only once it has been opened.

use rmpv::Value;
use sealrpc_core::security::{Admitted, AdmittedBody, Rejection};
use sealrpc_core::wire::{CodecError, EnvelopeRef, Header, Limits, ReplyBody};
use serde_json::{Map, Value as Json, json};

/// Converts one MessagePack value to JSON: `bin` becomes `{"$bin": hex}`, `ext`
/// `{"$ext": type, "data": hex}`, non-string map keys their JSON text.
pub fn value_to_json(v: &Value) -> Json {
    match v {
        Value::Nil => Json::Null,
        Value::Boolean(b) => Json::Bool(*b),
        Value::Integer(i) => i
            .as_u64()
            .map(Json::from)
            .or_else(|| i.as_i64().map(Json::from))
            .unwrap_or(Json::Null),
        Value::F32(f) => json!(f),
        Value::F64(f) => json!(f),
        Value::String(s) => match s.as_str() {
            Some(s) => Json::String(s.to_owned()),
            None => json!({ "$invalid_utf8": hex::encode(s.as_bytes()) }),
        },
        Value::Binary(b) => json!({ "$bin": hex::encode(b) }),
        Value::Array(items) => Json::Array(items.iter().map(value_to_json).collect()),
        Value::Map(entries) => {
            let mut m = Map::new();
            for (k, v) in entries {
                let key = match k {
                    Value::String(s) if s.as_str().is_some() => {
                        s.as_str().unwrap_or_default().to_owned()
                    }
                    other => value_to_json(other).to_string(),
                };
                m.insert(key, value_to_json(v));
            }
            Json::Object(m)
        }
        Value::Ext(t, data) => json!({ "$ext": t, "data": hex::encode(data) }),
    }
}

/// Decodes MessagePack bytes (one value) to JSON, or an error note.
pub fn msgpack_to_json(bytes: &[u8]) -> Json {
    let mut rd = bytes;
    match rmpv::decode::read_value(&mut rd) {
        Ok(v) if rd.is_empty() => value_to_json(&v),
        Ok(_) => json!({ "$error": "trailing bytes after the value" }),
        Err(e) => json!({ "$error": e.to_string() }),
    }
}

/// The decoded header as JSON.
pub fn header_to_json(h: &Header) -> Json {
    let mut m = Map::new();
    m.insert("id".into(), json!(h.id.to_hex()));
    m.insert("kind".into(), json!(h.kind.as_str()));
    m.insert("ts".into(), json!(h.ts));
    if let Some(ttl) = h.ttl {
        m.insert("ttl".into(), json!(ttl));
    }
    m.insert("src".into(), json!(h.src));
    m.insert("dst".into(), json!(h.dst));
    if let Some(corr) = &h.corr {
        m.insert("corr".into(), json!(corr.to_hex()));
    }
    if let Some(reply) = &h.reply {
        m.insert("reply".into(), json!(reply));
    }
    if let Some(seal) = &h.seal {
        m.insert(
            "seal".into(),
            json!({ "a": sealrpc_core::wire::SEAL_ALGORITHM, "k": seal.key_id, "n": hex::encode(seal.nonce) }),
        );
    }
    Json::Object(m)
}

/// The envelope's structure: version, header (decoded, plus every key as received),
/// signature items, and the body when it is not sealed.
pub fn describe_envelope(bytes: &[u8], limits: &Limits) -> Result<Json, CodecError> {
    let env = EnvelopeRef::decode(bytes, limits)?;
    let header = Header::decode(env.header);
    let sealed = header.as_ref().map(|h| h.seal.is_some()).unwrap_or(true);
    let signatures: Vec<Json> = env
        .signatures
        .iter()
        .map(|s| json!({ "k": s.key_id, "a": s.algorithm, "s": hex::encode(&s.signature) }))
        .collect();
    Ok(json!({
        "v": sealrpc_core::wire::ENVELOPE_VERSION,
        "size": bytes.len(),
        "header": match &header {
            Ok(h) => header_to_json(h),
            Err(e) => json!({ "$error": e.to_string() }),
        },
        "header_raw": msgpack_to_json(env.header),
        "signatures": signatures,
        "body": if sealed {
            json!({ "$sealed": env.body.len() })
        } else {
            msgpack_to_json(env.body)
        },
    }))
}

/// The verdict of the receive pipeline as JSON.
pub fn verdict_to_json(result: &Result<Admitted, Rejection>) -> Json {
    match result {
        Ok(a) => {
            let body = match &a.body {
                AdmittedBody::Request(r) => json!({
                    "method": r.method,
                    "ver": r.version.to_string(),
                    "ns": r.namespace,
                    "args": msgpack_to_json(&r.args),
                    "ctx": msgpack_to_json(&r.ctx),
                }),
                AdmittedBody::Reply(ReplyBody::Ok(v)) => json!({ "ok": msgpack_to_json(v) }),
                AdmittedBody::Reply(ReplyBody::Err(e)) => json!({ "err": {
                    "code": e.code,
                    "msg": e.msg,
                    "data": e.data.as_ref().map(|d| msgpack_to_json(d)),
                }}),
                AdmittedBody::Reply(ReplyBody::Heartbeat) => json!({ "hb": true }),
                AdmittedBody::Notification(n) => json!({
                    "event_type": n.event_type,
                    "publisher_id": n.publisher_id,
                    "payload": msgpack_to_json(&n.payload),
                    "ctx": msgpack_to_json(&n.ctx),
                }),
            };
            json!({
                "verdict": "accept",
                "principal": a.principal.as_ref().map(|p| p.to_string()),
                "signed": a.signed,
                "sealed": a.sealed,
                "header": header_to_json(&a.header),
                "body": body,
            })
        }
        Err(r) => json!({
            "verdict": "reject",
            "reason": format!("{:?}", r.reason),
            "detail": r.reason.to_string(),
        }),
    }
}
