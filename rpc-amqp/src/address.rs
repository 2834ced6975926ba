//! Broker URLs: parsing into lapin's [`AMQPUri`] and redacting passwords for display.

use lapin::uri::{AMQPAuthority, AMQPQueryString, AMQPScheme, AMQPUri, AMQPUserInfo};
use sealrpc_core::transport::{TransportError, TransportErrorKind};

/// A parsed broker URL.
#[derive(Clone)]
pub(crate) struct BrokerUrl {
    /// What lapin connects to.
    pub(crate) uri: AMQPUri,
    /// The URL with its password replaced by `***` (safe for errors and logs).
    pub(crate) redacted: String,
}

impl BrokerUrl {
    /// The user name the connection authenticates as (also the `user-id` it publishes with).
    pub(crate) fn user(&self) -> &str {
        &self.uri.authority.userinfo.username
    }
}

impl std::fmt::Debug for BrokerUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted)
    }
}

/// `url` with the password (if any) replaced by `***`, for messages and logs.
///
/// ```
/// assert_eq!(
///     sealrpc_amqp::redact_url("amqp://bob:s3cret@host:5672/%2f"),
///     "amqp://bob:***@host:5672/%2f"
/// );
/// ```
pub fn redact_url(url: &str) -> String {
    redact(url)
}

pub(crate) fn redact(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let rest_start = scheme_end + 3;
    let rest = &url[rest_start..];
    let auth_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..auth_end];
    let Some(at) = authority.rfind('@') else {
        return url.to_owned();
    };
    let userinfo = &authority[..at];
    match userinfo.find(':') {
        Some(colon) => format!(
            "{}{}:***{}",
            &url[..rest_start],
            &userinfo[..colon],
            &rest[at..]
        ),
        None => url.to_owned(),
    }
}

fn invalid(url: &str, why: &str) -> TransportError {
    TransportError::new(
        TransportErrorKind::Other,
        format!("invalid AMQP URL {}: {why}", redact(url)),
    )
}

fn percent_decode(url: &str, s: &str) -> Result<String, TransportError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .ok_or_else(|| invalid(url, "truncated percent-escape"))?;
            let b = u8::from_str_radix(hex, 16).map_err(|_| invalid(url, "bad percent-escape"))?;
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| invalid(url, "percent-escape is not UTF-8"))
}

/// Parses `amqp[s]://[user[:password]@]host[:port][/vhost][?heartbeat=..&frame_max=..&channel_max=..]`.
///
/// Without a path the vhost is `/`; `/%2f` is also `/`. Host may be a name, an IPv4
/// address or a bracketed IPv6 address.
pub(crate) fn parse(url: &str) -> Result<BrokerUrl, TransportError> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| invalid(url, "expected amqp:// or amqps://"))?;
    let scheme = match scheme.to_ascii_lowercase().as_str() {
        "amqp" => AMQPScheme::AMQP,
        "amqps" => AMQPScheme::AMQPS,
        other => return Err(invalid(url, &format!("unsupported scheme {other:?}"))),
    };
    let (before_query, query) = match rest.split_once('?') {
        Some((a, q)) => (a, Some(q)),
        None => (rest, None),
    };
    let (authority, path) = match before_query.find('/') {
        Some(i) => (&before_query[..i], Some(&before_query[i + 1..])),
        None => (before_query, None),
    };
    let (userinfo, hostport) = match authority.rfind('@') {
        Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
        None => (None, authority),
    };
    let (username, password) = match userinfo {
        Some(ui) => match ui.split_once(':') {
            Some((u, p)) => (percent_decode(url, u)?, percent_decode(url, p)?),
            None => (percent_decode(url, ui)?, String::new()),
        },
        None => ("guest".to_owned(), "guest".to_owned()),
    };
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (h, after) = v6
            .split_once(']')
            .ok_or_else(|| invalid(url, "unterminated IPv6 address"))?;
        (h.to_owned(), after.strip_prefix(':'))
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h.to_owned(), Some(p)),
            None => (hostport.to_owned(), None),
        }
    };
    if host.is_empty() {
        return Err(invalid(url, "missing host"));
    }
    let port = match port {
        Some(p) => p.parse::<u16>().map_err(|_| invalid(url, "bad port"))?,
        None => scheme.default_port(),
    };
    let vhost = match path {
        None => "/".to_owned(),
        Some(p) => percent_decode(url, p)?,
    };
    let mut q = AMQPQueryString::default();
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let bad = || invalid(url, &format!("bad query parameter {k}"));
        match k {
            "heartbeat" => q.heartbeat = Some(v.parse().map_err(|_| bad())?),
            "frame_max" => q.frame_max = Some(v.parse().map_err(|_| bad())?),
            "channel_max" => q.channel_max = Some(v.parse().map_err(|_| bad())?),
            "connection_timeout" => q.connection_timeout = Some(v.parse().map_err(|_| bad())?),
            _ => {}
        }
    }
    Ok(BrokerUrl {
        uri: AMQPUri {
            scheme,
            authority: AMQPAuthority {
                userinfo: AMQPUserInfo { username, password },
                host,
                port,
            },
            vhost,
            query: q,
        },
        redacted: redact(url),
    })
}

#[cfg(test)]
#[path = "address_tests.rs"]
mod tests;
