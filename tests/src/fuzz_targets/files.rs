//! Fuzz targets of opening a seal, of the key files and of `inspect`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "fuzz targets report a broken invariant by panicking"
)]

use super::*;

// ---------------------------------------------------------------------------------------
// Opening

/// The fixed seal of [`open_sealed`]: key id, nonce, associated data, plaintext, ciphertext.
pub(super) struct FixedSeal {
    pub(super) opener: XChaChaOpener,
    pub(super) key_id: KeyId,
    pub(super) nonce: [u8; 24],
    pub(super) aad: Vec<u8>,
    pub(super) plain: Vec<u8>,
    pub(super) sealed: Vec<u8>,
}

pub(super) fn fixed_seal() -> &'static FixedSeal {
    static SEAL: OnceLock<FixedSeal> = OnceLock::new();
    SEAL.get_or_init(|| {
        let file = vector_file(GOLDEN);
        let master = MasterSecret::from_hex(&file.master_hex).expect("master");
        let key_id = KeyId::parse("k3/guest:5f0e4a1c-1111-4222-8333-444455556666/1").unwrap();
        let nonce = [0x42; 24];
        let aad = b"\x82\xa2id\xc4\x10AAAAAAAAAAAAAAAA\xa4kind\xa4call".to_vec();
        let plain = RequestBody::encode(
            "update_status",
            Version::new(1, 0),
            None,
            b"\x81\xa6status\xa6ACTIVE",
            b"\x81\xaarequest_id\xa3r-1",
        );
        let sealed = seal_with(&derive_key(&master, &key_id), &nonce, &aad, &plain).unwrap();
        let opener = XChaChaOpener::new(Arc::new(DerivedKeys::new(Arc::new(master))));
        FixedSeal {
            opener,
            key_id,
            nonce,
            aad,
            plain,
            sealed,
        }
    })
}

/// Input layout of [`open_sealed`]: nonce (24 bytes), `u16_be(len(aad))`, aad, ciphertext.
pub fn open_sealed_input(nonce: &[u8; 24], aad: &[u8], ciphertext: &[u8]) -> Vec<u8> {
    let mut out = nonce.to_vec();
    out.extend_from_slice(&(aad.len() as u16).to_be_bytes());
    out.extend_from_slice(aad);
    out.extend_from_slice(ciphertext);
    out
}

/// Opens fuzzer-chosen nonce, associated data and ciphertext under a fixed k3 key: only the
/// exact triple that was sealed may open, to the exact plaintext.
pub fn open_sealed(data: &[u8]) {
    let s = fixed_seal();
    let Some((nonce, rest)) = data.split_first_chunk::<24>() else {
        return;
    };
    let Some((len, rest)) = rest.split_first_chunk::<2>() else {
        return;
    };
    let (aad, ciphertext) = rest.split_at(usize::from(u16::from_be_bytes(*len)).min(rest.len()));
    let opened = s.opener.open(&s.key_id, nonce, aad, ciphertext);
    // In place: the same verdict and plaintext; on failure the buffer holds what it was
    // given or zeros, never anything decrypted.
    let mut buf = ciphertext.to_vec();
    match (
        &opened,
        s.opener.open_in_place(&s.key_id, nonce, aad, &mut buf),
    ) {
        (Ok(plain), Ok(len)) => assert_eq!(&buf[..len], plain.as_slice()),
        (Err(a), Err(b)) => {
            assert_eq!(a, &b);
            let body = ciphertext.len().saturating_sub(TAG_LEN);
            assert!(
                buf[..body] == ciphertext[..body] || buf[..body].iter().all(|&b| b == 0),
                "a failed open wrote into the buffer"
            );
            assert_eq!(buf[body..], ciphertext[body..]);
        }
        (a, b) => panic!("open {a:?}, open in place {b:?}"),
    }
    if let Ok(plain) = opened {
        assert_eq!(nonce, &s.nonce, "opened under another nonce");
        assert_eq!(aad, s.aad.as_slice(), "opened with other associated data");
        assert_eq!(ciphertext, s.sealed.as_slice(), "opened another ciphertext");
        assert_eq!(plain, s.plain);
        assert!(RequestBody::decode(&Bytes::from(plain)).is_ok());
    }
}

// ---------------------------------------------------------------------------------------
// Key files and inspection

/// `GuestBundle::from_json` and `RotationTable::from_json` of the input as text: whatever
/// parses round-trips, and a parsed bundle builds a guest's keys without panicking.
pub fn bundle_parse(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(bundle) = GuestBundle::from_json(&text) {
        let again = GuestBundle::from_json(&bundle.to_json()).expect("re-read a written bundle");
        assert_eq!(again, bundle);
        if let Ok(keys) = GuestKeys::from_bundle(&bundle) {
            let _ = keys.security().build();
        }
    }
    if let Ok(table) = RotationTable::from_json(&text) {
        let json = table.to_json();
        let again = RotationTable::from_json(&json).expect("re-read a written rotation table");
        assert_eq!(again.to_json(), json);
    }
}

/// `inspect::describe_envelope` (what `sealrpc-keys inspect` prints of a captured envelope).
pub fn inspect_envelope(data: &[u8]) {
    let _ = inspect::describe_envelope(data, &Limits::default());
}
