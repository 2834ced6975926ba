//! Fuzz targets through the whole receive pipeline, as the conductor and as guests.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "fuzz targets report a broken invariant by panicking"
)]

use super::*;

// ---------------------------------------------------------------------------------------
// The receive pipeline

/// One vector file's world: its master, clock and envelopes.
pub(super) struct VectorFile {
    pub(super) master_hex: String,
    pub(super) now: SystemTime,
    pub(super) envelopes: Vec<Vec<u8>>,
}

pub(super) fn vector_file(text: &str) -> VectorFile {
    let v: serde_json::Value = serde_json::from_str(text).expect("vector file is JSON");
    let envelopes = v["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .flat_map(|c| {
            let mut all = vec![c["envelope"].as_str().expect("envelope").to_owned()];
            if let Some(prior) = c["prior"].as_array() {
                all.extend(prior.iter().filter_map(|p| p.as_str().map(str::to_owned)));
            }
            all
        })
        .map(|h| hex::decode(h).expect("envelope hex"))
        .collect();
    VectorFile {
        master_hex: v["master"].as_str().expect("master").to_owned(),
        now: UNIX_EPOCH + Duration::from_millis(v["now_ms"].as_u64().expect("now_ms")),
        envelopes,
    }
}

/// Guests whose keys an envelope names, with the epoch named.
pub(super) fn guests_named(envelope: &[u8]) -> Vec<(String, u64)> {
    let Ok(env) = EnvelopeRef::decode(envelope, &Limits::default()) else {
        return Vec::new();
    };
    let mut ids: Vec<String> = env.signatures.iter().map(|s| s.key_id.clone()).collect();
    if let Ok(Header {
        seal: Some(seal), ..
    }) = Header::decode(env.header)
    {
        ids.push(seal.key_id);
    }
    ids.iter()
        .filter_map(|id| KeyId::parse(id).ok())
        .filter_map(|id| Some((id.principal().guest_id()?.to_owned(), id.epoch())))
        .collect()
}

/// The receivers every pipeline target runs, the policies they run under, and the signature
/// inputs of every seed envelope (what key holders produced).
pub(super) struct World {
    /// (receiver config without policy, the clock of its vector file)
    pub(super) control: Vec<(SecurityConfig, SystemTime)>,
    pub(super) guests: Vec<(SecurityConfig, SystemTime)>,
    pub(super) policies: Vec<Policy>,
    pub(super) known: HashSet<[u8; 47]>,
    pub(super) bundles: Vec<String>,
    pub(super) rotation_tables: Vec<String>,
    pub(super) seed_envelopes: Vec<Vec<u8>>,
}

pub(super) fn policies() -> Vec<Policy> {
    let enforce = ClassPolicy::enforce();
    vec![
        Policy::uniform(enforce),
        Policy::uniform(ClassPolicy {
            auth: Auth::SignatureOrPairwise,
            ..enforce
        }),
        Policy::uniform(ClassPolicy {
            mode: Mode::Permissive,
            require_sealed: false,
            ..enforce
        }),
        Policy::uniform(ClassPolicy::off()),
    ]
}

pub(super) fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let mut w = World {
            control: Vec::new(),
            guests: Vec::new(),
            policies: policies(),
            known: HashSet::new(),
            bundles: Vec::new(),
            rotation_tables: Vec::new(),
            seed_envelopes: Vec::new(),
        };
        for file in [vector_file(GOLDEN), vector_file(CONFORMANCE)] {
            let table = Arc::new(RotationTable::new());
            let mut guests = BTreeSet::new();
            for (g, epoch) in file.envelopes.iter().flat_map(|e| guests_named(e)) {
                table.set_guest_epoch(&g, epoch).expect("guest epoch");
                guests.insert(g);
            }
            let master = Arc::new(MasterSecret::from_hex(&file.master_hex).expect("master"));
            table.add_service("api").expect("service");
            let conductor =
                ControlPlaneKeys::new(master, Arc::clone(&table), "conductor").expect("keys");
            w.control.push((conductor.security(), file.now));
            for g in &guests {
                let bundle = conductor
                    .issue_guest_bundle_at(g, file.now)
                    .expect("bundle");
                w.bundles.push(bundle.to_json().to_string());
                let keys = GuestKeys::from_bundle(&bundle).expect("guest keys");
                w.guests.push((keys.security(), file.now));
            }
            // A rotation-state seed with every feature in use (on a copy: the receivers'
            // table stays as the vectors expect).
            let copy = RotationTable::from_json(&table.to_json()).expect("table copy");
            copy.revoke("revoked-guest").expect("revoke");
            copy.rotate_control_at(file.now);
            w.rotation_tables.push(copy.to_json());
            for e in &file.envelopes {
                if let Ok(env) = EnvelopeRef::decode(e, &Limits::default()) {
                    w.known.insert(signature_input(env.header, env.body));
                }
            }
            w.seed_envelopes.extend(file.envelopes);
        }
        w
    })
}

/// Runs `data` through every receiver under every policy; returns how many admitted it.
pub(super) fn admit_all(receivers: &[(SecurityConfig, SystemTime)], data: &[u8]) -> usize {
    let w = world();
    let mut admitted_count = 0;
    let bytes = Bytes::copy_from_slice(data);
    for (config, now) in receivers {
        for policy in &w.policies {
            // A fresh runtime per input: no replay state carried from one input to the next.
            let security = config.clone().policy(*policy).build();
            let verdict = security.admit_at(&bytes, &|_| true, *now);
            // The same input owned (a sealed body is then opened where it lies in it), on a
            // runtime of its own: the same verdict.
            let in_place = config.clone().policy(*policy).build();
            let owned = in_place.admit_at(Bytes::copy_from_slice(data), &|_| true, *now);
            assert_eq!(
                owned
                    .as_ref()
                    .map(|a| (&a.header, &a.principal))
                    .map_err(|r| r.reason),
                verdict
                    .as_ref()
                    .map(|a| (&a.header, &a.principal))
                    .map_err(|r| r.reason),
                "opened in place and from shared bytes, the verdicts differ"
            );
            if let Ok(admitted) = verdict {
                check_admitted(&admitted, data, policy, &w.known);
                admitted_count += 1;
            }
            let c = security.counters();
            assert_eq!(c.accepted + c.total_rejected(), 1, "one verdict per input");
            assert!(security.replay_guard().len() <= 1);
        }
    }
    admitted_count
}

pub(super) fn check_admitted(
    a: &Admitted,
    data: &[u8],
    policy: &Policy,
    known: &HashSet<[u8; 47]>,
) {
    let env = EnvelopeRef::decode(data, &Limits::default()).expect("admitted, so it decodes");
    assert_eq!(Header::decode(env.header).as_ref(), Ok(&a.header));
    if a.signed || a.sealed {
        assert!(
            known.contains(&signature_input(env.header, env.body)),
            "admitted a signed or sealed message that no key holder produced: {a:?}"
        );
    }
    if a.signed {
        let p = a
            .principal
            .as_ref()
            .expect("a signed message has a principal");
        assert_eq!(a.header.src, p.as_str(), "signer is not src");
    }
    // The policy that judged it: the class of the proven principal, never of a claim.
    let class = a
        .principal
        .as_ref()
        .map(|p| sealrpc_core::security::PeerClass::of_proven(p, a.header.kind));
    assert_eq!(
        a.applied.class, class,
        "judged by another class than the proven one"
    );
    if let Some(c) = class {
        let p = policy.class(c);
        assert_eq!(
            (a.applied.auth, a.applied.require_sealed),
            (p.auth, p.require_sealed)
        );
    }
    let cp = a.applied;
    if cp.mode == Mode::Enforce {
        assert!(
            a.principal.is_some(),
            "Enforce admitted an anonymous message"
        );
        if cp.require_sealed {
            assert!(a.sealed, "Enforce admitted an unsealed message");
        }
    }
}

/// The whole receive pipeline as the control plane (`control:conductor`, keys derived from
/// each vector file's master), under Enforce (signature), Enforce (pairwise), Permissive and
/// Off.
pub fn admit_control(data: &[u8]) {
    admitted_by_control(data);
}

/// [`admit_control`], returning how many (receiver, policy) pairs admitted `data`.
pub fn admitted_by_control(data: &[u8]) -> usize {
    admit_all(&world().control, data)
}

/// The whole receive pipeline as each guest of the vector files (keys from an issued
/// bundle), under the same four policies.
pub fn admit_guest(data: &[u8]) {
    admitted_by_guests(data);
}

/// [`admit_guest`], returning how many (receiver, policy) pairs admitted `data`.
pub fn admitted_by_guests(data: &[u8]) -> usize {
    admit_all(&world().guests, data)
}
