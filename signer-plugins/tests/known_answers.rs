//! Known-answer tests: RFC 8032 (Ed25519), RFC 5869 (HKDF-SHA256),
//! draft-irtf-cfrg-xchacha A.3.1 (XChaCha20-Poly1305), and our `derive` against the
//! conformance vectors.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

use std::sync::Arc;

use hkdf::Hkdf;
use sealrpc_core::Principal;
use sealrpc_core::security::{KeyError, KeyResolver, Peer, Signer, Verifier};
use sealrpc_core::wire::KeyId;
use sealrpc_signers::xchacha::{open_with, seal_with};
use sealrpc_signers::{
    Ed25519Signer, Ed25519Verifier, MasterSecret, PinnedPublicKeys, SecretKey, derive_key,
};
use sha2::Sha256;

fn h(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}

/// Accepts every key id (the RFC vectors have no rotation state).
#[derive(Debug)]
struct AcceptAll;

impl KeyResolver for AcceptAll {
    fn me(&self) -> Principal {
        Principal::control()
    }
    fn seal_key_for(&self, _: &Peer) -> Option<KeyId> {
        None
    }
    fn check_key(&self, _: &KeyId) -> Result<(), KeyError> {
        Ok(())
    }
}

/// (secret key, public key, message, signature) from RFC 8032 section 7.1.
const RFC8032: &[(&str, &str, &str, &str)] = &[
    // TEST 1
    (
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "",
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    ),
    // TEST 2
    (
        "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        "72",
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
    ),
    // TEST 3
    (
        "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
        "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
        "af82",
        "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
    ),
    // TEST SHA(abc)
    (
        "833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42",
        "ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf",
        "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
        "dc2a4459e7369633a52b1bf277839a00201009a3efbf3ecb69bea2186c26b58909351fc9ac90b3ecfdfbc7c66431e0303dca179c138ac17ad9bef1177331a704",
    ),
];

#[test]
fn rfc8032_ed25519_vectors_sign_and_verify() {
    for (i, (sk, pk, msg, sig)) in RFC8032.iter().enumerate() {
        let key_id = KeyId::parse(&format!("sig/control:rfc{i}/1")).unwrap();
        let seed = SecretKey::from_slice(&h(sk)).unwrap();
        let signer = Ed25519Signer::new(key_id.clone(), &seed).unwrap();
        assert_eq!(
            hex::encode(signer.public_key()),
            *pk,
            "public key, vector {i}"
        );
        let signature = signer.sign(&h(msg)).unwrap();
        assert_eq!(hex::encode(&signature), *sig, "signature, vector {i}");
        assert_eq!(signer.algorithm(), "ed25519-sha256");

        let pinned = PinnedPublicKeys::new();
        pinned.pin(key_id.clone(), &h(pk)).unwrap();
        let verifier = Ed25519Verifier::new(Arc::new(pinned), Arc::new(AcceptAll));
        verifier.verify(&key_id, &h(msg), &signature).unwrap();

        let mut bad = signature.clone();
        bad[0] ^= 1;
        assert_eq!(
            verifier.verify(&key_id, &h(msg), &bad),
            Err(KeyError::BadSignature)
        );
        let mut other = h(msg);
        other.push(0);
        assert_eq!(
            verifier.verify(&key_id, &other, &signature),
            Err(KeyError::BadSignature)
        );
        assert_eq!(
            verifier.verify(&key_id, &h(msg), &signature[..63]),
            Err(KeyError::BadSignature)
        );
        let mut long = signature.clone();
        long.push(0);
        assert_eq!(
            verifier.verify(&key_id, &h(msg), &long),
            Err(KeyError::BadSignature)
        );
    }
}

#[test]
fn verifier_refuses_unpinned_and_non_sig_ids() {
    let pinned = Arc::new(PinnedPublicKeys::new());
    let verifier = Ed25519Verifier::new(pinned.clone(), Arc::new(AcceptAll));
    let id = KeyId::parse("sig/control:api/1").unwrap();
    assert_eq!(
        verifier.verify(&id, b"x", &[0u8; 64]),
        Err(KeyError::UnknownKey)
    );
    let k1 = KeyId::parse("k1/control/1").unwrap();
    assert_eq!(
        verifier.verify(&k1, b"x", &[0u8; 64]),
        Err(KeyError::UnknownKey)
    );
    // Small-order (weak) public keys are refused at pinning time.
    let identity = h("0100000000000000000000000000000000000000000000000000000000000000");
    assert!(pinned.pin(id.clone(), &identity).is_err());
    assert!(pinned.pin(id, &[1u8; 31]).is_err());
}

#[test]
fn rfc5869_hkdf_sha256_cases_1_to_3() {
    type Case = (Vec<u8>, Vec<u8>, Vec<u8>, &'static str);
    let cases: [Case; 3] = [
        (
            vec![0x0b; 22],
            (0x00..=0x0c).collect(),
            (0xf0..=0xf9).collect(),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865",
        ),
        (
            (0x00..=0x4f).collect(),
            (0x60..=0xaf).collect(),
            (0xb0..=0xff).collect(),
            "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71cc30c58179ec3e87c14c01d5c1f3434f1d87",
        ),
        (
            vec![0x0b; 22],
            vec![],
            vec![],
            "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8",
        ),
    ];
    for (ikm, salt, info, okm) in cases {
        let salt = (!salt.is_empty()).then_some(salt.as_slice());
        let hk = Hkdf::<Sha256>::new(salt, &ikm);
        let mut out = vec![0u8; okm.len() / 2];
        hk.expand(&info, &mut out).unwrap();
        assert_eq!(hex::encode(out), okm);
    }
}

#[test]
fn xchacha20poly1305_draft_a31_vector() {
    let key = SecretKey::from_bytes(std::array::from_fn(|i| 0x80 + i as u8));
    let nonce: [u8; 24] = std::array::from_fn(|i| 0x40 + i as u8);
    let aad = h("50515253c0c1c2c3c4c5c6c7");
    let plaintext = b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.";
    let expected = "bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb\
                    731c7f1b0b4aa6440bf3a82f4eda7e39ae64c6708c54c216cb96b72e1213b452\
                    2f8c9ba40db5d945b11b69b982c1bb9e3f3fac2bc369488f76b2383565d3fff9\
                    21f9664c97637da9768812f615c68b13b52e\
                    c0875924c1c7987947deafd8780acf49";
    let sealed = seal_with(&key, &nonce, &aad, plaintext).unwrap();
    assert_eq!(sealed.len(), plaintext.len() + 16);
    assert_eq!(hex::encode(&sealed), expected);
    assert_eq!(open_with(&key, &nonce, &aad, &sealed).unwrap(), plaintext);

    // Any change is the same opaque failure.
    let mut tampered = sealed.clone();
    tampered[5] ^= 1;
    assert_eq!(
        open_with(&key, &nonce, &aad, &tampered),
        Err(KeyError::OpenFailed)
    );
    assert_eq!(
        open_with(&key, &nonce, b"other aad", &sealed),
        Err(KeyError::OpenFailed)
    );
    assert_eq!(
        open_with(&key, &nonce, &aad, &sealed[..15]),
        Err(KeyError::OpenFailed)
    );
    let other = SecretKey::from_bytes([7u8; 32]);
    assert_eq!(
        open_with(&other, &nonce, &aad, &sealed),
        Err(KeyError::OpenFailed)
    );
}

const MASTER: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

/// `derive` known answers from conformance/vectors.json.
const DERIVE: &[(&str, &str)] = &[
    (
        "k1/control/1",
        "c443869f7ef55b65499958ba6e14a178bf9a9e5ccc3f542a1a52168a86bf2d54",
    ),
    (
        "k2/guest:7f3a0c2e-5b1d-4e8a-9c6f-0123456789ab/4",
        "16774fee235c7bc39096b1a7050c5267e0cff5428ea324fc04c8ad4de2f623c6",
    ),
    (
        "k3/guest:7f3a0c2e-5b1d-4e8a-9c6f-0123456789ab/4",
        "e84b3306bbdba95c16a92e30282f5a9cc21002e3605e208a53195000041d9242",
    ),
    (
        "kb/guests/1",
        "117c64ccb00cb2f2691b625ad25c967f1d8ede67576556ac739bec3769b8b277",
    ),
    (
        "sig/guest:7f3a0c2e-5b1d-4e8a-9c6f-0123456789ab/4",
        "4658e0b591a8bb734dcb7901553120e02873c3192fbe7aeea27dbb7ddb40550a",
    ),
];

/// `sig_public` known answers from conformance/vectors.json.
const SIG_PUBLIC: &[(&str, &str)] = &[
    (
        "sig/guest:7f3a0c2e-5b1d-4e8a-9c6f-0123456789ab/4",
        "1965105311346ad204e70aea6953bcfa7062f2c58cdd475b0436fb27ead2c821",
    ),
    (
        "sig/control:conductor/1",
        "85c0ccd8c6fc6f35b49aae9ed3d87adf7f4f9d96626741f18b120345d244a62a",
    ),
    (
        "sig/control:api/1",
        "2ce9bdae8ea80a7a8a3255d40e90f9a8e96df658adabc5e90ab2344452dcf904",
    ),
];

fn check_derive(master: &MasterSecret, derive: &[(String, String)], public: &[(String, String)]) {
    for (id, want) in derive {
        let key = derive_key(master, &KeyId::parse(id).unwrap());
        assert_eq!(*key.to_hex(), *want, "derive({id})");
    }
    for (id, want) in public {
        let key_id = KeyId::parse(id).unwrap();
        let seed = derive_key(master, &key_id);
        let signer = Ed25519Signer::new(key_id, &seed).unwrap();
        assert_eq!(hex::encode(signer.public_key()), *want, "sig_public({id})");
    }
}

fn owned(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn derive_matches_conformance_known_answers() {
    let master = MasterSecret::from_hex(MASTER).unwrap();
    check_derive(&master, &owned(DERIVE), &owned(SIG_PUBLIC));
}

/// When the lead has copied vectors.json to docs/vectors/conformance.json, check every
/// `derive` and `sig_public` entry there too.
#[test]
fn derive_matches_conformance_file_when_present() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/vectors/conformance.json");
    let Ok(text) = std::fs::read_to_string(&path) else {
        eprintln!("{} absent; hard-coded vectors only", path.display());
        return;
    };
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let master = MasterSecret::from_hex(v["master"].as_str().unwrap()).unwrap();
    let map = |k: &str| -> Vec<(String, String)> {
        v[k].as_object()
            .unwrap()
            .iter()
            .map(|(a, b)| (a.clone(), b.as_str().unwrap().to_owned()))
            .collect()
    };
    check_derive(&master, &map("derive"), &map("sig_public"));
}

/// One fixed AEAD key under any key id (for the sealer's in-place path).
#[derive(Debug)]
struct OneKey(Arc<SecretKey>);

impl sealrpc_signers::AeadKeys for OneKey {
    fn sealing_key(&self, _: &KeyId) -> Result<Arc<SecretKey>, KeyError> {
        Ok(self.0.clone())
    }
    fn opening_key(&self, _: &KeyId) -> Result<Arc<SecretKey>, KeyError> {
        Ok(self.0.clone())
    }
}

#[test]
fn xchacha_seal_in_place_gives_the_draft_a31_vector_too() {
    use sealrpc_core::security::Sealer;
    let key = SecretKey::from_bytes(std::array::from_fn(|i| 0x80 + i as u8));
    let nonce: [u8; 24] = std::array::from_fn(|i| 0x40 + i as u8);
    let aad = h("50515253c0c1c2c3c4c5c6c7");
    let plaintext = b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.";
    let sealer = sealrpc_signers::XChaChaSealer::new(Arc::new(OneKey(Arc::new(key))));
    let id = KeyId::parse("k2/guest:g/1").unwrap();
    let whole = sealer.seal(&id, &nonce, &aad, plaintext).unwrap();
    let mut buf = plaintext.to_vec();
    let tag = sealer.seal_in_place(&id, &nonce, &aad, &mut buf).unwrap();
    assert_eq!(tag.len(), sealer.tag_len());
    buf.extend_from_slice(&tag);
    assert_eq!(buf, whole);
    assert!(hex::encode(&buf).ends_with("c0875924c1c7987947deafd8780acf49"));

    // And the vector opens in place, through the opener the pipeline uses.
    use sealrpc_core::security::Opener;
    let opener = sealrpc_signers::XChaChaOpener::new(Arc::new(OneKey(Arc::new(
        SecretKey::from_bytes(std::array::from_fn(|i| 0x80 + i as u8)),
    ))));
    assert_eq!(
        opener.open_in_place(&id, &nonce, &aad, &mut buf),
        Ok(plaintext.len())
    );
    assert_eq!(&buf[..plaintext.len()], plaintext);
}
