//! The measuring walk ([`skip_len`]) against the validating one ([`value_len`]), map
//! entries against an independent decoder (rmpv), on every MessagePack marker, and the
//! one-pass map reader ([`single_map`]) against validating whole then splitting.

use proptest::prelude::*;
use rmpv::Value;

use super::*;

/// Any MessagePack value: every scalar marker, `bin`, `ext`, and nested arrays and maps
/// (keys of any type).
fn any_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Nil),
        any::<bool>().prop_map(Value::Boolean),
        any::<u64>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f32>().prop_map(Value::F32),
        any::<f64>().prop_map(Value::F64),
        ".{0,40}".prop_map(Value::from),
        proptest::collection::vec(any::<u8>(), 0..300).prop_map(Value::Binary),
        (any::<i8>(), proptest::collection::vec(any::<u8>(), 0..20))
            .prop_map(|(t, d)| Value::Ext(t, d)),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::vec((inner.clone(), inner), 0..6).prop_map(Value::Map),
        ]
    })
}

/// A map with `str` keys, values of any kind.
fn str_keyed_map() -> impl Strategy<Value = Value> {
    proptest::collection::vec((".{0,12}", any_value()), 0..8).prop_map(|entries| {
        Value::Map(
            entries
                .into_iter()
                .map(|(k, v)| (Value::from(k), v))
                .collect(),
        )
    })
}

fn encode(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    rmpv::encode::write_value(&mut out, v).expect("encoding into a Vec cannot fail");
    out
}

proptest! {
    #[test]
    fn skip_len_measures_what_value_len_validates(v in any_value(), tail in proptest::collection::vec(any::<u8>(), 0..8)) {
        let mut buf = encode(&v);
        let len = buf.len();
        buf.extend_from_slice(&tail);
        prop_assert_eq!(value_len(&buf, MAX_DEPTH).ok(), Some(len));
        prop_assert_eq!(skip_len(&buf), Some(len));
    }

    #[test]
    fn skip_len_never_overruns_truncated_values(v in any_value(), cut in any::<prop::sample::Index>()) {
        let buf = encode(&v);
        let short = &buf[..cut.index(buf.len())];
        // A cut value is not whole: never a length past the end, never a panic.
        prop_assert!(skip_len(short).is_none_or(|n| n <= short.len()));
        prop_assert!(value_len(short, MAX_DEPTH).is_err());
    }

    #[test]
    fn skip_len_is_total_on_short_garbage(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        prop_assert!(skip_len(&bytes).is_none_or(|n| n <= bytes.len()));
    }

    #[test]
    fn entries_split_a_validated_map_as_rmpv_reads_it(m in str_keyed_map()) {
        let buf = encode(&m);
        let raw = single_value(&buf, "map").expect("a valid map");
        let got: Vec<(String, Value)> = raw
            .entries("map")
            .expect("a map")
            .map(|e| {
                let (k, v) = e.expect("str keys");
                let value = rmpv::decode::read_value(&mut v.bytes()).expect("a whole value");
                (k.to_owned(), value)
            })
            .collect();
        let Value::Map(want) = m else { unreachable!("str_keyed_map makes maps") };
        let want: Vec<(String, Value)> = want
            .into_iter()
            .map(|(k, v)| (k.as_str().unwrap_or_default().to_owned(), v))
            .collect();
        prop_assert_eq!(got, want);
    }

    #[test]
    fn a_non_string_key_is_refused_by_entries_and_check_str_keys(k in any::<u32>(), v in any_value()) {
        let buf = encode(&Value::Map(vec![(Value::from(k), v)]));
        let raw = single_value(&buf, "map").expect("a valid map");
        let first = raw.entries("map").expect("a map").next();
        prop_assert!(matches!(first, Some(Err(CodecError::NonStringKey("map")))));
        prop_assert!(matches!(raw.check_str_keys("map"), Err(CodecError::NonStringKey("map"))));
    }

    #[test]
    fn single_map_accepts_and_reads_exactly_what_validating_then_splitting_does(
        m in prop_oneof![str_keyed_map(), any_value()],
        cut in any::<prop::sample::Index>(),
        flip in any::<(prop::sample::Index, u8)>(),
        tail in proptest::collection::vec(any::<u8>(), 0..3),
    ) {
        let whole = encode(&m);
        let mut flipped = whole.clone();
        if !flipped.is_empty() {
            let at = flip.0.index(flipped.len());
            flipped[at] ^= flip.1;
        }
        let cut = &whole[..cut.index(whole.len() + 1)];
        let tailed = [&whole[..], &tail].concat();
        for buf in [&whole[..], cut, &flipped, &tailed] {
            let two_passes = single_value(buf, "map").and_then(|raw| {
                raw.entries("map")?.collect::<Result<Vec<_>, _>>()
            });
            let one_pass = single_map(buf, "map").and_then(|e| e.collect::<Result<Vec<_>, _>>());
            // The same verdict, and the same entries when accepted; the errors may differ
            // in kind (each is a malformed message to the pipeline), never in acceptance.
            prop_assert_eq!(two_passes.ok(), one_pass.ok());
        }
    }
}
