//! The vector harness: replays a vector file's cases (the independent implementation's
//! `conformance.json`, our own `golden.json`) through the receive pipeline.
//!
//! Schema: see `docs/vectors/conformance-README.md`. Our golden file adds, per case:
//! `prior` (envelopes the same receiver admits first, e.g. for a replay), `epochs`
//! (instance id -> current epoch, for the control plane's rotation table; otherwise the
//! epochs the envelope names are taken as current) and `reason` (the expected rejection
//! reason, pinned for our own vectors only).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sealrpc_core::Principal;
use sealrpc_core::bytes::Bytes;
use sealrpc_core::security::SecurityConfig;
use sealrpc_core::security::{Auth, ClassPolicy, Mode, Policy, RejectReason};
use sealrpc_core::wire::{EnvelopeRef, Header, KeyId, Limits};
use sealrpc_signers::{ControlPlaneKeys, GuestKeys, MasterSecret, RotationTable};
use serde_json::Value;

/// The project's `docs/vectors/` folder.
pub fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/vectors")
}

/// Reads a vector file.
pub fn load(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read vectors {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// The receiver's policy for a case: `auth` none = Permissive; golden cases may set the
/// mode of each class with `modes`.
pub fn policy(case: &Value) -> Policy {
    let require_sealed = case["require_sealed"].as_bool().unwrap();
    let (mode, auth) = match case["auth"].as_str().unwrap() {
        "signature" => (Mode::Enforce, Auth::Signature),
        "pairwise" => (Mode::Enforce, Auth::SignatureOrPairwise),
        "none" => (Mode::Permissive, Auth::Signature),
        other => panic!("unknown auth {other}"),
    };
    let mut policy = Policy::uniform(ClassPolicy {
        mode,
        auth,
        require_sealed,
        ..ClassPolicy::enforce()
    });
    // Golden only: per-class modes, {"control_plane": "off" | "permissive" | "enforce", ...}.
    if let Some(modes) = case["modes"].as_object() {
        for (class, m) in modes {
            let mode = match m.as_str().unwrap() {
                "off" => Mode::Off,
                "permissive" => Mode::Permissive,
                "enforce" => Mode::Enforce,
                other => panic!("unknown mode {other}"),
            };
            match class.as_str() {
                "control_plane" => policy.control_plane.mode = mode,
                "guests" => policy.guests.mode = mode,
                "fanout" => policy.fanout.mode = mode,
                other => panic!("unknown class {other}"),
            }
        }
    }
    policy
}

/// Every key id an envelope names (signatures and seal).
fn key_ids(bytes: &[u8]) -> Vec<KeyId> {
    let Ok(env) = EnvelopeRef::decode(bytes, &Limits::default()) else {
        return Vec::new();
    };
    let mut ids: Vec<KeyId> = env
        .signatures
        .iter()
        .filter_map(|s| KeyId::parse(&s.key_id).ok())
        .collect();
    if let Ok(Header {
        seal: Some(seal), ..
    }) = Header::decode(env.header)
    {
        ids.extend(KeyId::parse(&seal.key_id).ok());
    }
    ids
}

/// A case the harness refuses to replay, because it could not mean what it says.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CaseError {
    /// `revoked` is present but not an array of strings.
    RevokedNotAList,
    /// A `revoked` entry that is not an instance id: a principal such as `guest:<id>`
    /// (the receiver would look for `guest:guest:<id>`, which never matches), or text
    /// that is no valid instance id at all.
    RevokedNotAnInstanceId {
        /// The entry as written.
        value: String,
    },
}

impl std::fmt::Display for CaseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CaseError::RevokedNotAList => write!(f, "`revoked` must be an array of instance ids"),
            CaseError::RevokedNotAnInstanceId { value } => write!(
                f,
                "`revoked` holds instance ids, not {value:?} (write the id without `guest:`)"
            ),
        }
    }
}

impl std::error::Error for CaseError {}

/// The instance ids of a case's `revoked` (absent or null: none), each checked: a value
/// that is a principal, or no valid instance id, is an error rather than a silent no-op.
pub fn revoked_ids(case: &Value) -> Result<Vec<String>, CaseError> {
    let list = match &case["revoked"] {
        Value::Null => return Ok(Vec::new()),
        Value::Array(list) => list,
        _ => return Err(CaseError::RevokedNotAList),
    };
    list.iter()
        .map(|x| {
            let id = x.as_str().ok_or(CaseError::RevokedNotAList)?;
            if Principal::parse(id).is_some() || Principal::guest(id).is_none() {
                return Err(CaseError::RevokedNotAnInstanceId {
                    value: id.chars().take(100).collect(),
                });
            }
            Ok(id.to_owned())
        })
        .collect()
}

/// Builds the receiver a case describes; refuses a case it could not replay faithfully.
pub fn receiver(case: &Value, envelopes: &[Vec<u8>]) -> Result<SecurityConfig, CaseError> {
    let me = Principal::parse(case["me"].as_str().unwrap()).unwrap();
    let revoked = revoked_ids(case)?;
    if let Some(master) = case["master"].as_str() {
        let table = Arc::new(RotationTable::new());
        match case["epochs"].as_object() {
            Some(epochs) => {
                for (g, e) in epochs {
                    table.set_guest_epoch(g, e.as_u64().unwrap()).unwrap();
                }
            }
            None => {
                for id in envelopes.iter().flat_map(|e| key_ids(e)) {
                    if let Some(g) = id.principal().guest_id() {
                        table.set_guest_epoch(g, id.epoch()).unwrap();
                    }
                }
            }
        }
        for g in &revoked {
            table.revoke(g).unwrap();
        }
        let master = Arc::new(MasterSecret::from_hex(master).unwrap());
        let service = me.as_str().strip_prefix("control:").unwrap();
        Ok(ControlPlaneKeys::new(master, table, service)
            .unwrap()
            .security())
    } else {
        let keys: BTreeMap<String, Vec<u8>> = case["keys"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, x)| (k.clone(), hex::decode(x.as_str().unwrap()).unwrap()))
            .collect();
        Ok(GuestKeys::from_key_map(me, keys, revoked)
            .unwrap()
            .security())
    }
}

/// The outcome of one case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Case name.
    pub name: String,
    /// Accepted (with principal) or rejected (with reason).
    pub result: Result<Option<String>, RejectReason>,
}

/// Runs every case of a vector file; returns the outcomes and the failures.
pub fn run(file: &Value) -> (Vec<Outcome>, Vec<String>) {
    let now = UNIX_EPOCH + Duration::from_millis(file["now_ms"].as_u64().unwrap());
    let skew = file["skew_ms"].as_u64().unwrap_or(60_000);
    let mut outcomes = Vec::new();
    let mut failures = Vec::new();
    for case in file["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap().to_owned();
        let bytes = hex::decode(case["envelope"].as_str().unwrap()).unwrap();
        let prior: Vec<Vec<u8>> = case["prior"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|x| hex::decode(x.as_str().unwrap()).unwrap())
                    .collect()
            })
            .unwrap_or_default();
        let mut all = prior.clone();
        all.push(bytes.clone());
        let receiver = match receiver(case, &all) {
            Ok(r) => r,
            Err(e) => {
                failures.push(format!("{name}: bad case: {e}"));
                continue;
            }
        };
        let config = receiver
            .policy(policy(case))
            .replay(sealrpc_core::security::ReplayConfig {
                skew_ms: skew,
                ..Default::default()
            });
        // Each case through both open paths, on receivers of its own: the bytes shared
        // (a sealed body is opened into a buffer of its own) and owned (opened where it
        // lies). The verdicts must agree.
        let [result, in_place] = [false, true].map(|owned| {
            let security = config.clone().build();
            let admit = |bytes: &[u8]| {
                let received = Bytes::copy_from_slice(bytes);
                if owned {
                    security.admit_at(received, &|_| true, now)
                } else {
                    security.admit_at(&received, &|_| true, now)
                }
            };
            for p in &prior {
                if let Err(r) = admit(p) {
                    failures.push(format!("{name}: prior envelope rejected: {}", r.reason));
                }
            }
            admit(&bytes)
                .map(|a| a.principal.map(|p| p.to_string()))
                .map_err(|r| r.reason)
        });
        if result != in_place {
            failures.push(format!(
                "{name}: opened in place, {in_place:?}; from shared bytes, {result:?}"
            ));
        }
        let want_accept = case["verdict"] == "accept";
        let want_principal = case["principal"].as_str().map(str::to_owned);
        let ok = match &result {
            Ok(p) => want_accept && *p == want_principal,
            Err(reason) => {
                !want_accept
                    && case["reason"]
                        .as_str()
                        .is_none_or(|want| want == reason.as_str())
            }
        };
        if !ok {
            failures.push(format!(
                "{name}: expected {} {:?} (reason {:?}), got {result:?}",
                case["verdict"], want_principal, case["reason"]
            ));
        }
        outcomes.push(Outcome { name, result });
    }
    (outcomes, failures)
}

/// The clock the vectors use, as a `SystemTime`.
pub fn vector_now(file: &Value) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(file["now_ms"].as_u64().unwrap())
}
