#![allow(clippy::unwrap_used, reason = "test code")]

use proptest::prelude::*;

use super::{base64, parse, segment};

#[test]
fn base64_matches_rfc4648_vectors() {
    for (input, want) in [
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg=="),
        ("fooba", "Zm9vYmE="),
        ("foobar", "Zm9vYmFy"),
        ("guest:guest", "Z3Vlc3Q6Z3Vlc3Q="),
    ] {
        assert_eq!(base64(input.as_bytes()), want, "{input:?}");
    }
}

#[test]
fn parses_content_length_and_chunked_bodies() {
    let plain = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}trailing";
    assert_eq!(parse(plain).unwrap(), (200, b"{}".to_vec()));
    let chunked = b"HTTP/1.1 201 Created\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n";
    assert_eq!(parse(chunked).unwrap(), (201, b"abcde".to_vec()));
    let empty = b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n";
    assert_eq!(parse(empty).unwrap(), (204, Vec::new()));
}

#[test]
fn refuses_what_is_not_http() {
    assert!(parse(b"SSH-2.0-OpenSSH\r\n\r\n").is_err());
    assert!(parse(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort").is_err());
    assert!(parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n").is_err());
    assert!(parse(b"HTTP/1.1 200 OK").is_err());
}

#[test]
fn encodes_the_default_vhost() {
    assert_eq!(segment("/"), "%2F");
    assert_eq!(segment("guest-ab_1.x"), "guest-ab_1.x");
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(raw in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse(&raw);
    }

    #[test]
    fn any_chunking_round_trips(
        body in proptest::collection::vec(any::<u8>(), 0..2048),
        cuts in proptest::collection::vec(1usize..300, 0..16),
    ) {
        let mut raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        let mut rest = body.as_slice();
        for c in cuts {
            if rest.is_empty() { break; }
            let (a, b) = rest.split_at(c.min(rest.len()));
            raw.extend_from_slice(format!("{:x}\r\n", a.len()).as_bytes());
            raw.extend_from_slice(a);
            raw.extend_from_slice(b"\r\n");
            rest = b;
        }
        if !rest.is_empty() {
            raw.extend_from_slice(format!("{:X}\r\n", rest.len()).as_bytes());
            raw.extend_from_slice(rest);
            raw.extend_from_slice(b"\r\n");
        }
        raw.extend_from_slice(b"0\r\n\r\n");
        prop_assert_eq!(parse(&raw).unwrap(), (200, body));
    }
}
