//! The header map: what routing and security need, never encrypted.

use super::error::CodecError;
use super::fields::Fields;
use super::write::{Encode, Sink, Writer};

/// Now, unix milliseconds UTC (0 before 1970).
fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The only AEAD algorithm id of envelope version 1.
pub const SEAL_ALGORITHM: &str = "xchacha20poly1305";

/// A 16-byte message id (`id`, and `corr` on replies).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId(pub [u8; 16]);

impl MessageId {
    /// A fresh random id.
    pub fn random() -> Self {
        let mut id = [0u8; 16];
        crate::rand::fill(&mut id);
        Self(id)
    }

    /// The id as 32 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl std::fmt::Debug for MessageId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MessageId({})", self.to_hex())
    }
}

impl std::fmt::Display for MessageId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// What a message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A request that expects a reply.
    Call,
    /// A one-way request to one server.
    Cast,
    /// The answer to a call.
    Reply,
    /// A one-way request to every server of a topic.
    Fanout,
    /// A one-way notification to every listener pool of `<topic>.<priority>`
    /// (see [`crate::notify`]); its body is a
    /// [`NotificationBody`](super::NotificationBody).
    Notify,
}

impl Kind {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Call => "call",
            Kind::Cast => "cast",
            Kind::Reply => "reply",
            Kind::Fanout => "fanout",
            Kind::Notify => "notify",
        }
    }

    fn parse(s: &str) -> Result<Self, CodecError> {
        Ok(match s {
            "call" => Kind::Call,
            "cast" => Kind::Cast,
            "reply" => Kind::Reply,
            "fanout" => Kind::Fanout,
            "notify" => Kind::Notify,
            _ => return Err(CodecError::Malformed("unknown kind")),
        })
    }
}

/// The seal descriptor: which AEAD, which key, which nonce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealInfo {
    /// The key id (`k1/...`, `k2/...`, `k3/...`, `kb/...`), parsed later by the pipeline.
    pub key_id: String,
    /// The random 24-byte XChaCha20 nonce.
    pub nonce: [u8; 24],
}

/// The decoded header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Unique message id.
    pub id: MessageId,
    /// Call, cast, reply, fanout or notify.
    pub kind: Kind,
    /// Sender's clock, unix milliseconds UTC.
    pub ts: u64,
    /// Deadline, milliseconds after `ts`.
    pub ttl: Option<u64>,
    /// The sender's claimed principal (checked against the proven one).
    pub src: String,
    /// The target address.
    pub dst: String,
    /// On replies: the id of the call answered.
    pub corr: Option<MessageId>,
    /// On calls: where the reply goes.
    pub reply: Option<String>,
    /// Present when the body is sealed.
    pub seal: Option<SealInfo>,
}

impl Header {
    /// A call `id` to `dst`, worthless `ttl_ms` after now, answered at the caller's `reply`
    /// route. Like every constructor it stamps `ts` now and leaves `src` and `seal` to the
    /// sending [`Security`](crate::security::Security), which writes its own principal and the seal
    /// descriptor as it seals ([`Security::seal_and_sign`](crate::security::Security::seal_and_sign)).
    pub fn call(id: MessageId, dst: String, ttl_ms: u64, reply: String) -> Self {
        Self {
            ttl: Some(ttl_ms),
            reply: Some(reply),
            ..Self::stamped(id, Kind::Call, dst)
        }
    }

    /// A one-way request `id` to one server at `dst`, worthless `ttl_ms` after now if set.
    pub fn cast(id: MessageId, dst: String, ttl_ms: Option<u64>) -> Self {
        Self {
            ttl: ttl_ms,
            ..Self::stamped(id, Kind::Cast, dst)
        }
    }

    /// A one-way request `id` to every server of a topic (`dst` is `<topic>_fanout`),
    /// worthless `ttl_ms` after now if set.
    pub fn fanout(id: MessageId, dst: String, ttl_ms: Option<u64>) -> Self {
        Self {
            ttl: ttl_ms,
            ..Self::stamped(id, Kind::Fanout, dst)
        }
    }

    /// A notification `id` to the pools listening at `dst` (`<topic>.<priority>`),
    /// worthless `ttl_ms` after now if set.
    pub fn notify(id: MessageId, dst: String, ttl_ms: Option<u64>) -> Self {
        Self {
            ttl: ttl_ms,
            ..Self::stamped(id, Kind::Notify, dst)
        }
    }

    /// A reply (or a heartbeat) with a fresh id to the call `corr`, sent to the call's
    /// reply route `dst`.
    pub fn reply(dst: String, corr: MessageId) -> Self {
        Self {
            corr: Some(corr),
            ..Self::stamped(MessageId::random(), Kind::Reply, dst)
        }
    }

    fn stamped(id: MessageId, kind: Kind, dst: String) -> Self {
        Self {
            id,
            kind,
            ts: unix_ms(),
            ttl: None,
            src: String::new(),
            dst,
            corr: None,
            reply: None,
            seal: None,
        }
    }

    /// Encodes the header map (optional fields omitted when absent).
    pub fn encode(&self) -> Vec<u8> {
        self.to_vec()
    }

    /// Decodes header bytes exactly as received (size already checked by the envelope).
    ///
    /// A reply without `corr` and a call without `reply` are malformed.
    pub fn decode(bytes: &[u8]) -> Result<Self, CodecError> {
        let f = Fields::decode(
            bytes,
            "header",
            [
                "id", "kind", "ts", "ttl", "src", "dst", "corr", "reply", "seal",
            ],
        )?;
        let seal = match f.opt("seal") {
            None => None,
            Some(raw) => {
                let s = Fields::read(raw, "seal", ["a", "k", "n"])?;
                if s.str("a")? != SEAL_ALGORITHM {
                    return Err(CodecError::Malformed("unknown seal algorithm"));
                }
                Some(SealInfo {
                    key_id: s.str("k")?.to_owned(),
                    nonce: s.bin_exact::<24>("n")?,
                })
            }
        };
        let kind = Kind::parse(f.str("kind")?)?;
        let corr = f.opt_bin_exact::<16>("corr")?.map(MessageId);
        let reply = f.opt_str("reply")?;
        // Required per kind: a reply names the call it answers, a call where to answer.
        // (On other kinds they are optional and carry no meaning, but keep their types.)
        match kind {
            Kind::Reply if corr.is_none() => return Err(CodecError::MissingKey("corr")),
            Kind::Call if reply.is_none() => return Err(CodecError::MissingKey("reply")),
            _ => {}
        }
        Ok(Self {
            id: MessageId(f.bin_exact::<16>("id")?),
            kind,
            ts: f.uint("ts")?,
            ttl: f.opt_uint("ttl")?,
            src: f.str("src")?.to_owned(),
            dst: f.str("dst")?.to_owned(),
            corr,
            reply: reply.map(str::to_owned),
            seal,
        })
    }
}

/// Optional fields are omitted when absent.
impl Encode for Header {
    fn write_to<S: Sink>(&self, w: &mut Writer<S>) {
        let n = 5 + [
            self.ttl.is_some(),
            self.corr.is_some(),
            self.reply.is_some(),
            self.seal.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        w.map(n);
        w.str("id").bin(&self.id.0);
        w.str("kind").str(self.kind.as_str());
        w.str("ts").uint(self.ts);
        if let Some(ttl) = self.ttl {
            w.str("ttl").uint(ttl);
        }
        w.str("src").str(&self.src);
        w.str("dst").str(&self.dst);
        if let Some(corr) = &self.corr {
            w.str("corr").bin(&corr.0);
        }
        if let Some(reply) = &self.reply {
            w.str("reply").str(reply);
        }
        if let Some(seal) = &self.seal {
            w.str("seal").map(3);
            w.str("a").str(SEAL_ALGORITHM);
            w.str("k").str(&seal.key_id);
            w.str("n").bin(&seal.nonce);
        }
    }
}
