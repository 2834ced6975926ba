//! The body map (inside the seal when sealed): a request or a reply.
//!
//! `args`, `ctx`, `ok` and `err.data` stay as the encoded MessagePack bytes received (cheap
//! [`Bytes`] slices of the plaintext); they are decoded into application types only by the
//! handler or caller that knows those types.

use std::io::Write as _;

use bytes::Bytes;

use super::error::CodecError;
use super::fields::Fields;
use super::msgpack::single_value;
use super::write::{Encode, Sink, Writer};
use crate::version::Version;

/// The encoding of an empty map, used for absent `args`.
pub const EMPTY_MAP: &[u8] = &[0x80];

/// The encoding of `true` (a heartbeat's `hb`).
const TRUE: &[u8] = &[0xc3];

/// A request body (call, cast or fanout). Its `Debug` shows the sizes of `args` and `ctx`,
/// never their bytes (they may hold a `Secret`'s value).
#[derive(Clone, PartialEq, Eq)]
pub struct RequestBody {
    /// Method name.
    pub method: String,
    /// Requested interface version.
    pub version: Version,
    /// Namespace; `None` is the default namespace.
    pub namespace: Option<String>,
    /// The encoded `args` map.
    pub args: Bytes,
    /// The encoded `ctx` map.
    pub ctx: Bytes,
    /// The heartbeat interval a call asks for (`monitor`, in ms): the caller monitors the
    /// call and wants a heartbeat about this often while it runs. `None`: no heartbeats.
    pub monitor: Option<u64>,
}

/// A reply's error: `{code, msg, data?}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorBody {
    /// Error name, e.g. `NoSuchMethod` or an application's own.
    pub code: String,
    /// Human-readable message (never secrets).
    pub msg: String,
    /// Optional encoded details.
    pub data: Option<Bytes>,
}

/// A reply body: exactly one of `ok`, `err` or `hb`. Its `Debug` shows the size of `ok`,
/// never its bytes.
#[derive(Clone, PartialEq, Eq)]
pub enum ReplyBody {
    /// The encoded result (may be `nil`).
    Ok(Bytes),
    /// The error.
    Err(ErrorBody),
    /// A heartbeat (`{"hb": true}`): the call is still running. Never a final reply.
    Heartbeat,
}

impl std::fmt::Debug for RequestBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestBody")
            .field("method", &self.method)
            .field("version", &self.version)
            .field("namespace", &self.namespace)
            .field("args_len", &self.args.len())
            .field("ctx_len", &self.ctx.len())
            .field("monitor", &self.monitor)
            .finish()
    }
}

impl std::fmt::Debug for ReplyBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReplyBody::Ok(result) => f.debug_struct("Ok").field("len", &result.len()).finish(),
            ReplyBody::Err(e) => f.debug_tuple("Err").field(e).finish(),
            ReplyBody::Heartbeat => f.write_str("Heartbeat"),
        }
    }
}

impl RequestBody {
    /// Encodes the body; `args` and `ctx` must each be one encoded map.
    pub fn encode(
        method: &str,
        version: Version,
        namespace: Option<&str>,
        args: &[u8],
        ctx: &[u8],
    ) -> Vec<u8> {
        RequestParts {
            method,
            version,
            namespace,
            args,
            ctx,
            monitor: None,
        }
        .to_vec()
    }

    fn parts(&self) -> RequestParts<'_> {
        RequestParts {
            method: &self.method,
            version: self.version,
            namespace: self.namespace.as_deref(),
            args: &self.args,
            ctx: &self.ctx,
            monitor: self.monitor,
        }
    }

    /// Decodes a request body from the plaintext.
    pub fn decode(plain: &Bytes) -> Result<Self, CodecError> {
        let f = Fields::decode(
            plain,
            "body",
            ["method", "ver", "ns", "args", "ctx", "monitor"],
        )?;
        let Some(version) = Version::parse(f.str("ver")?) else {
            return Err(CodecError::Malformed("ver must be \"N.N\""));
        };
        let namespace = match f.opt_str("ns")? {
            Some("") => return Err(CodecError::Malformed("empty namespace")),
            other => other.map(str::to_owned),
        };
        let args = match f.opt("args") {
            None => Bytes::from_static(EMPTY_MAP),
            Some(raw) if raw.is_map() => {
                // Every key inside `args`, at any depth, is a str: a typed handler's serde
                // would read an integer key as a struct field's index, so `{0: v}` could
                // mean what a by-name check does not see.
                raw.check_str_keys("args")?;
                plain.slice_ref(raw.bytes())
            }
            Some(_) => return Err(CodecError::NotAMap("args")),
        };
        let ctx = f.req("ctx")?;
        if !ctx.is_map() {
            return Err(CodecError::NotAMap("ctx"));
        }
        let monitor = match f.opt("monitor") {
            None => None,
            Some(raw) => match raw.as_uint() {
                Some(ms) if ms > 0 => Some(ms),
                _ => return Err(CodecError::Malformed("monitor must be a positive integer")),
            },
        };
        Ok(Self {
            monitor,
            method: f.str("method")?.to_owned(),
            version,
            namespace,
            args,
            ctx: plain.slice_ref(ctx.bytes()),
        })
    }
}

/// `args` and `ctx` must each be one encoded map.
impl Encode for RequestBody {
    fn write_to<S: Sink>(&self, w: &mut Writer<S>) {
        self.parts().write_to(w);
    }
}

/// A request body borrowed from its parts: the one place that lays out its map.
struct RequestParts<'a> {
    method: &'a str,
    version: Version,
    namespace: Option<&'a str>,
    args: &'a [u8],
    ctx: &'a [u8],
    monitor: Option<u64>,
}

impl Encode for RequestParts<'_> {
    fn write_to<S: Sink>(&self, w: &mut Writer<S>) {
        w.map(4 + usize::from(self.namespace.is_some()) + usize::from(self.monitor.is_some()));
        w.str("method").str(self.method);
        w.str("ver");
        write_version(w, self.version);
        if let Some(ns) = self.namespace {
            w.str("ns").str(ns);
        }
        w.str("args").raw(self.args);
        w.str("ctx").raw(self.ctx);
        if let Some(ms) = self.monitor {
            w.str("monitor").uint(ms);
        }
    }
}

/// Writes `version` as the `str` `"N.N"`, formatted on the stack.
fn write_version<S: Sink>(w: &mut Writer<S>, version: Version) {
    // "4294967295.4294967295": the longest two u32s and a dot.
    let mut buf = [0u8; 21];
    let mut text = std::io::Cursor::new(&mut buf[..]);
    // Cannot fail: the buffer holds any two u32s and a dot.
    let _ = write!(text, "{}.{}", version.major, version.minor);
    let len = usize::try_from(text.position()).unwrap_or(0);
    w.str(std::str::from_utf8(buf.get(..len).unwrap_or_default()).unwrap_or_default());
}

impl Encode for ReplyBody {
    fn write_to<S: Sink>(&self, w: &mut Writer<S>) {
        w.map(1);
        match self {
            ReplyBody::Ok(result) => {
                w.str("ok").raw(result);
            }
            ReplyBody::Err(e) => {
                w.str("err").map(if e.data.is_some() { 3 } else { 2 });
                w.str("code").str(&e.code);
                w.str("msg").str(&e.msg);
                if let Some(data) = &e.data {
                    w.str("data").raw(data);
                }
            }
            ReplyBody::Heartbeat => {
                w.str("hb").raw(TRUE);
            }
        }
    }
}

impl ReplyBody {
    /// Encodes the reply body.
    pub fn encode(&self) -> Vec<u8> {
        self.to_vec()
    }

    /// Decodes a reply body from the plaintext.
    pub fn decode(plain: &Bytes) -> Result<Self, CodecError> {
        let map = single_value(plain, "body")?;
        // `ok` may legitimately be nil, so its presence is read from the raw entries (walked
        // without collecting them: a body of millions of unknown keys costs no memory).
        let mut ok = None;
        let mut ok_count = 0usize;
        for entry in map.entries("body")? {
            let (key, value) = entry?;
            if key == "ok" {
                ok_count += 1;
                ok.get_or_insert(value);
            }
        }
        if ok_count > 1 {
            return Err(CodecError::DuplicateKey("ok"));
        }
        let f = Fields::read(map, "body", ["err", "hb"])?;
        if let Some(hb) = f.opt("hb") {
            // A heartbeat is nothing else: a body that is both would be read as a final
            // reply by a receiver that does not know `hb`.
            if ok.is_some() || f.opt("err").is_some() {
                return Err(CodecError::Malformed("heartbeat with ok or err"));
            }
            return match hb.bytes() {
                TRUE => Ok(ReplyBody::Heartbeat),
                _ => Err(CodecError::Malformed("hb must be true")),
            };
        }
        match (ok, f.opt("err")) {
            (Some(ok), None) => Ok(ReplyBody::Ok(plain.slice_ref(ok.bytes()))),
            (None, Some(err)) => {
                let e = Fields::read(err, "err", ["code", "msg", "data"])?;
                Ok(ReplyBody::Err(ErrorBody {
                    code: e.str("code")?.to_owned(),
                    msg: e.str("msg")?.to_owned(),
                    data: e.opt("data").map(|d| plain.slice_ref(d.bytes())),
                }))
            }
            (Some(_), Some(_)) => Err(CodecError::Malformed("reply has both ok and err")),
            (None, None) => Err(CodecError::Malformed("reply has neither ok nor err")),
        }
    }
}
