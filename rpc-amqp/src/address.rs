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
    crate::address_list::redact_list(url)
}

/// One address with the password (everything between the user's `:` and the last `@`)
/// replaced by `***`. The last `@` is taken, so a password holding `@`, `/` or `?` is
/// never shown in part.
pub(crate) fn redact_one(url: &str) -> String {
    let rest_start = url.find("://").map_or(0, |i| i + 3);
    let rest = &url[rest_start..];
    let Some(at) = rest.rfind('@') else {
        return url.to_owned();
    };
    let userinfo = &rest[..at];
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

fn percent_decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .ok_or_else(|| "truncated percent-escape".to_owned())?;
            let b = u8::from_str_radix(hex, 16).map_err(|_| "bad percent-escape".to_owned())?;
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "percent-escape is not UTF-8".to_owned())
}

/// [`parse_quiet`], with errors that name the URL (password redacted).
pub(crate) fn parse(url: &str) -> Result<BrokerUrl, TransportError> {
    parse_quiet(url).map_err(|why| {
        TransportError::new(
            TransportErrorKind::Other,
            format!("invalid AMQP URL {}: {why}", redact_one(url)),
        )
    })
}

/// Parses `amqp[s]://[user[:password]@]host[:port][/vhost][?heartbeat=..&frame_max=..&channel_max=..]`.
///
/// Without a path the vhost is `/`; `/%2f` is also `/`. Host may be a name, an IPv4
/// address or a bracketed IPv6 address.
/// Errors say what is wrong without repeating the URL.
pub(crate) fn parse_quiet(url: &str) -> Result<BrokerUrl, String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| "expected amqp:// or amqps://".to_owned())?;
    let scheme = match scheme.to_ascii_lowercase().as_str() {
        "amqp" => AMQPScheme::AMQP,
        "amqps" => AMQPScheme::AMQPS,
        other => return Err(format!("unsupported scheme {other:?}")),
    };
    // The user info ends at the last `@` (a password may hold `@`, `/` or `?`; `%40`,
    // `%2F` and `%3F` are the portable spellings), the host at the next `/`.
    let (userinfo, after_at) = match rest.rfind('@') {
        Some(i) => (Some(&rest[..i]), &rest[i + 1..]),
        None => (None, rest),
    };
    let (before_query, query) = match after_at.split_once('?') {
        Some((a, q)) => (a, Some(q)),
        None => (after_at, None),
    };
    let (hostport, path) = match before_query.find('/') {
        Some(i) => (&before_query[..i], Some(&before_query[i + 1..])),
        None => (before_query, None),
    };
    let (username, password) = match userinfo {
        Some(ui) => match ui.split_once(':') {
            Some((u, p)) => (percent_decode(u)?, percent_decode(p)?),
            None => (percent_decode(ui)?, String::new()),
        },
        None => ("guest".to_owned(), "guest".to_owned()),
    };
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (h, after) = v6
            .split_once(']')
            .ok_or_else(|| "unterminated IPv6 address".to_owned())?;
        (h.to_owned(), after.strip_prefix(':'))
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h.to_owned(), Some(p)),
            None => (hostport.to_owned(), None),
        }
    };
    if host.is_empty() {
        return Err("missing host".to_owned());
    }
    let port = match port {
        Some(p) => p.parse::<u16>().map_err(|_| "bad port".to_owned())?,
        None => scheme.default_port(),
    };
    let vhost = match path {
        None => "/".to_owned(),
        Some(p) => percent_decode(p)?,
    };
    let mut q = AMQPQueryString::default();
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let bad = || format!("bad query parameter {k}");
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
        redacted: redact_one(url),
    })
}

#[cfg(test)]
#[path = "address_tests.rs"]
mod tests;
