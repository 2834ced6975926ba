//! Broker address lists: several `amqp://` / `amqps://` URLs, or oslo.messaging's
//! `rabbit://user:pass@h1:5672,user:pass@h2:5672/vhost?ssl=1` transport URL; the failover
//! order; and their display with every password redacted.
//!
//! A list is split at `,`, so a `,` inside a user name or password must be written `%2C`.
//! To keep a stray `,` in a password from turning its halves into "hosts" that errors and
//! logs would show, a list either gives credentials (`user:password@`) on every address or
//! on none, and a list that does not parse is never echoed.

use sealrpc_core::transport::{TransportError, TransportErrorKind};

use crate::address::{self, BrokerUrl};

/// Most addresses a list may hold.
pub const MAX_BROKERS: usize = 64;

/// The order in which a transport tries the brokers of its list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum FailoverOrder {
    /// As listed: connect to the first broker that answers; after a lost connection try
    /// the next ones in turn, wrapping around (round robin, like oslo's default).
    #[default]
    InOrder,
    /// Shuffled once per transport, then in turn: clients with the same list spread over
    /// the nodes instead of all landing on the first.
    Shuffle,
}

/// A parsed, non-empty list of brokers, in the order they are tried.
#[derive(Clone)]
pub(crate) struct BrokerList {
    /// The brokers, in try order (shuffled already for [`FailoverOrder::Shuffle`]).
    pub(crate) brokers: Vec<BrokerUrl>,
    /// The list as given, passwords redacted: `url` for one, `[url, url, ..]` for several.
    pub(crate) redacted: String,
}

impl BrokerList {
    /// The broker user of every address (a list shares one: a cluster shares its users).
    pub(crate) fn user(&self) -> &str {
        self.brokers.first().map_or("", BrokerUrl::user)
    }

    /// Positions to try, starting at `start` and wrapping around once.
    pub(crate) fn round_from(&self, start: usize) -> impl Iterator<Item = usize> + use<> {
        let n = self.brokers.len().max(1);
        (0..n).map(move |i| (start + i) % n)
    }

    /// Shuffles the try order (Fisher-Yates with the OS's randomness).
    fn shuffle(&mut self) {
        for i in (1..self.brokers.len()).rev() {
            let mut b = [0u8; 8];
            sealrpc_core::rand::fill(&mut b);
            let j = usize::try_from(u64::from_le_bytes(b) % (i as u64 + 1)).unwrap_or(0);
            self.brokers.swap(i, j);
        }
    }
}

impl std::fmt::Debug for BrokerList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted)
    }
}

fn list_error(n: usize, i: usize, why: &str) -> TransportError {
    TransportError::new(
        TransportErrorKind::Other,
        format!("invalid AMQP address list ({n} addresses; address {i}): {why}"),
    )
}

/// Splits a piece (`[scheme://]userinfo@host:port[/vhost][?query]`) into the part up to
/// the host and port, and the `/vhost?query` tail.
fn split_tail(piece: &str) -> (&str, &str) {
    let host_start = piece
        .rfind('@')
        .map_or_else(|| piece.find("://").map_or(0, |i| i + 3), |i| i + 1);
    match piece[host_start..].find(['/', '?']) {
        Some(i) => piece.split_at(host_start + i),
        None => (piece, ""),
    }
}

/// Maps oslo's `rabbit` scheme to `amqp`, or to `amqps` when the query asks for TLS
/// (`ssl=1|true|yes|on`), and keeps `amqp` / `amqps`.
fn real_scheme(scheme: &str, tail: &str) -> String {
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "rabbit" {
        return scheme;
    }
    let query = tail.split_once('?').map_or("", |(_, q)| q);
    let tls = query.split('&').any(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        k.eq_ignore_ascii_case("ssl")
            && ["1", "true", "yes", "on"]
                .iter()
                .any(|t| v.eq_ignore_ascii_case(t))
    });
    if tls { "amqps" } else { "amqp" }.to_owned()
}

/// Parses one URL, a comma-separated list of URLs, or oslo's `rabbit://h1,h2/vhost` form
/// (hosts after the first without a scheme share the scheme, and the `/vhost?query` of
/// the group's last host). `order` decides the try order.
pub(crate) fn parse_list(s: &str, order: FailoverOrder) -> Result<BrokerList, TransportError> {
    let s = s.trim();
    let pieces: Vec<&str> = s.split(',').map(str::trim).collect();
    let n = pieces.len();
    if n == 1 {
        let url = address::parse(s)?;
        return Ok(BrokerList {
            redacted: url.redacted.clone(),
            brokers: vec![url],
        });
    }
    if n > MAX_BROKERS {
        return Err(list_error(
            n,
            n,
            &format!("at most {MAX_BROKERS} addresses"),
        ));
    }
    if let Some(i) = pieces.iter().position(|p| p.is_empty()) {
        return Err(list_error(n, i + 1, "empty (a stray ',')"));
    }
    let with_creds = pieces.iter().filter(|p| p.contains('@')).count();
    if with_creds != 0 && with_creds != n {
        return Err(list_error(
            n,
            pieces.iter().position(|p| !p.contains('@')).unwrap_or(0) + 1,
            "give user:password@ on every address of a list or on none \
             (a ',' in a user name or password must be written %2C)",
        ));
    }
    // Group the pieces: a piece with a scheme starts a group; the others continue it.
    let mut groups: Vec<Vec<&str>> = Vec::new();
    for (i, p) in pieces.iter().enumerate() {
        if p.contains("://") {
            groups.push(vec![p]);
        } else if let Some(g) = groups.last_mut() {
            g.push(p);
        } else {
            return Err(list_error(
                n,
                i + 1,
                "the first address needs a scheme (amqp://, amqps:// or rabbit://)",
            ));
        }
    }
    let mut urls = Vec::with_capacity(n);
    let mut index = 0;
    for group in groups {
        let last = group.len() - 1;
        let (_, tail) = split_tail(group[last]);
        let scheme_end = group[0].find("://").unwrap_or(0);
        let scheme = real_scheme(&group[0][..scheme_end], tail);
        for (j, piece) in group.iter().enumerate() {
            index += 1;
            let (head, own_tail) = split_tail(piece);
            if j != last && !own_tail.is_empty() {
                return Err(list_error(
                    n,
                    index,
                    "only the last host of a `scheme://h1,h2/vhost` group names the vhost",
                ));
            }
            let hostpart = head.find("://").map_or(head, |i| &head[i + 3..]);
            let full = format!("{scheme}://{hostpart}{tail}");
            let url = address::parse_quiet(&full).map_err(|why| list_error(n, index, &why))?;
            if user_only(hostpart) {
                return Err(list_error(
                    n,
                    index,
                    "a user without a password (a ',' in a password must be written %2C)",
                ));
            }
            urls.push(url);
        }
    }
    if let Some(i) = urls.iter().position(|u| u.user() != urls[0].user()) {
        return Err(list_error(
            n,
            i + 1,
            "every address of a list must use the same broker user (a cluster shares its users)",
        ));
    }
    let redacted = format!(
        "[{}]",
        urls.iter()
            .map(|u| u.redacted.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let mut list = BrokerList {
        brokers: urls,
        redacted,
    };
    if order == FailoverOrder::Shuffle {
        list.shuffle();
    }
    Ok(list)
}

/// `user@host` (credentials without a `:`).
fn user_only(hostpart: &str) -> bool {
    hostpart
        .rfind('@')
        .is_some_and(|at| !hostpart[..at].contains(':'))
}

/// The address or list `s` for display: passwords replaced by `***`. A list that does not
/// parse is not shown at all (its pieces could be halves of a password).
pub(crate) fn redact_list(s: &str) -> String {
    let s = s.trim();
    if !s.contains(',') {
        return address::redact_one(s);
    }
    match parse_list(s, FailoverOrder::InOrder) {
        Ok(list) => list.redacted,
        Err(_) => format!(
            "<invalid AMQP address list of {} parts, not shown>",
            s.split(',').count()
        ),
    }
}

/// Joins URLs into one list string, writing any `,` inside a URL as `%2C`.
pub(crate) fn join<I, S>(urls: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    urls.into_iter()
        .map(|u| u.as_ref().trim().replace(',', "%2C"))
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
#[path = "address_list_tests.rs"]
mod tests;
