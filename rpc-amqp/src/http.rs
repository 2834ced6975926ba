//! A minimal HTTP/1.1 client for RabbitMQ's management API on a trusted local port: one
//! request per TCP connection (`Connection: close`), a bounded response, a deadline on
//! the whole exchange. Why not hyper or reqwest: the operator talks to one local
//! endpoint a handful of times per fleet (a definitions import carries hundreds of guests),
//! so keep-alive and pooling buy nothing, and this is ~150 lines instead of a dozen new
//! crates. Plain HTTP only: reach a remote broker's API through a tunnel or a local proxy.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The largest response body read (the API's answers here are small; a definitions
/// export of a big broker is not what this client is for).
pub const MAX_RESPONSE: usize = 8 * 1024 * 1024;

/// A failed HTTP exchange (never holds the `Authorization` header).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    /// The TCP connection or the exchange failed.
    #[error("HTTP {method} {path} to {addr}: {reason}")]
    Io {
        /// The method.
        method: String,
        /// The path.
        path: String,
        /// `host:port`.
        addr: String,
        /// What failed.
        reason: String,
    },
    /// No complete answer within the deadline.
    #[error("HTTP {method} {path} to {addr}: no answer within {timeout:?}")]
    Timeout {
        /// The method.
        method: String,
        /// The path.
        path: String,
        /// `host:port`.
        addr: String,
        /// The deadline.
        timeout: Duration,
    },
    /// The answer is not HTTP/1.x as this client reads it, or is too big.
    #[error("HTTP {method} {path} to {addr}: malformed response: {reason}")]
    Malformed {
        /// The method.
        method: String,
        /// The path.
        path: String,
        /// `host:port`.
        addr: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// One HTTP request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Request<'a> {
    pub addr: &'a str,
    pub method: &'a str,
    pub path: &'a str,
    /// The value of the `Authorization` header (kept out of every error).
    pub authorization: &'a str,
    pub body: Option<&'a [u8]>,
    pub timeout: Duration,
}

/// Sends `req` and returns the status code and the (de-chunked) body.
pub(crate) async fn send(req: Request<'_>) -> Result<(u16, Vec<u8>), HttpError> {
    match tokio::time::timeout(req.timeout, exchange(&req)).await {
        Ok(r) => r,
        Err(_) => Err(HttpError::Timeout {
            method: req.method.to_owned(),
            path: req.path.to_owned(),
            addr: req.addr.to_owned(),
            timeout: req.timeout,
        }),
    }
}

async fn exchange(req: &Request<'_>) -> Result<(u16, Vec<u8>), HttpError> {
    let io = |e: std::io::Error| HttpError::Io {
        method: req.method.to_owned(),
        path: req.path.to_owned(),
        addr: req.addr.to_owned(),
        reason: e.to_string(),
    };
    let mut stream = TcpStream::connect(req.addr).await.map_err(io)?;
    let body = req.body.unwrap_or_default();
    let head = format!(
        "{} {} HTTP/1.1\r\nHost: {}\r\nAuthorization: {}\r\nAccept: application/json\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        req.method,
        req.path,
        req.addr,
        req.authorization,
        body.len()
    );
    stream.write_all(head.as_bytes()).await.map_err(io)?;
    stream.write_all(body).await.map_err(io)?;
    stream.flush().await.map_err(io)?;
    let mut raw = Vec::new();
    (&mut stream)
        .take(MAX_RESPONSE as u64 + 64 * 1024)
        .read_to_end(&mut raw)
        .await
        .map_err(io)?;
    parse(&raw).map_err(|reason| HttpError::Malformed {
        method: req.method.to_owned(),
        path: req.path.to_owned(),
        addr: req.addr.to_owned(),
        reason,
    })
}

/// Parses a whole HTTP/1.x response (the connection was closed after it).
pub(crate) fn parse(raw: &[u8]) -> Result<(u16, Vec<u8>), String> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no end of headers")?;
    let head = std::str::from_utf8(raw.get(..end).unwrap_or_default())
        .map_err(|_| "headers are not UTF-8")?;
    let rest = raw.get(end + 4..).unwrap_or_default();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        return Err(format!("not an HTTP/1.x status line: {status_line:?}"));
    }
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no status code in {status_line:?}"))?;
    let mut chunked = false;
    let mut length = None;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let (name, value) = (name.trim(), value.trim());
        if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.eq_ignore_ascii_case("chunked");
        } else if name.eq_ignore_ascii_case("content-length") {
            length = Some(value.parse::<usize>().map_err(|_| "bad Content-Length")?);
        }
    }
    let body = if chunked {
        dechunk(rest)?
    } else if let Some(n) = length {
        rest.get(..n)
            .ok_or("body shorter than Content-Length")?
            .to_vec()
    } else {
        rest.to_vec()
    };
    if body.len() > MAX_RESPONSE {
        return Err(format!("body larger than {MAX_RESPONSE} bytes"));
    }
    Ok((status, body))
}

fn dechunk(mut rest: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let eol = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("chunk size line not terminated")?;
        let line = std::str::from_utf8(rest.get(..eol).unwrap_or_default())
            .map_err(|_| "chunk size is not UTF-8")?;
        let hex = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(hex, 16).map_err(|_| "bad chunk size")?;
        if size == 0 {
            return Ok(out);
        }
        let data = rest
            .get(eol + 2..eol + 2 + size)
            .ok_or("chunk shorter than its size")?;
        if out.len() + data.len() > MAX_RESPONSE {
            return Err(format!("body larger than {MAX_RESPONSE} bytes"));
        }
        out.extend_from_slice(data);
        rest = rest
            .get(eol + 2 + size + 2..)
            .ok_or("chunk not terminated")?;
    }
}

/// Standard base64 (RFC 4648, padded), for the `Basic` credentials.
pub(crate) fn base64(input: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18u32, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                let idx = usize::try_from((n >> shift) & 63).unwrap_or(0);
                out.push(char::from(A.get(idx).copied().unwrap_or(b'A')));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Percent-encodes one path segment (e.g. the vhost `/` as `%2F`).
pub(crate) fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
#[path = "http_tests.rs"]
mod tests;
