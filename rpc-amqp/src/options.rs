//! [`AmqpOptions`]: how to reach the broker and how to lay out queues.

use std::time::Duration;

pub use crate::address_list::FailoverOrder;

/// The default broker address (RabbitMQ's stock `guest` user on the default vhost).
pub const DEFAULT_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// The environment variable that [`AmqpOptions::from_env`] reads the broker URL from.
pub const ENV_ADDR: &str = "AMQP_ADDR";

/// Options of an [`AmqpTransport`](crate::AmqpTransport), in the style of lapin's option
/// structs: build from [`Default`] and override fields with struct-update syntax.
///
/// ```
/// use sealrpc_amqp::AmqpOptions;
/// let opts = AmqpOptions { durable: true, prefetch: 16, ..AmqpOptions::from_env() };
/// assert_eq!(opts.control_exchange, "sealrpc");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct AmqpOptions {
    /// Broker address: one URL, `amqp://` or `amqps://` (`user:password@host:port/vhost`,
    /// vhost percent-encoded: `%2f` is `/`); or several, for a cluster, either as URLs
    /// separated by `,` or in oslo's form `rabbit://user:pass@h1:5672,user:pass@h2:5672/vhost`
    /// (`?ssl=1` for TLS). A `,` inside a URL must be written `%2C` ([`AmqpOptions::with_urls`]
    /// does that). Shown in errors and logs with every password redacted.
    pub url: String,
    /// The order in which the brokers of a list are tried (at connect and after a loss).
    pub failover: FailoverOrder,
    /// The control exchange (a topic exchange) that topic and server queues bind to.
    pub control_exchange: String,
    /// Durable exchanges and queues, persistent casts (survive a broker restart). When
    /// false, topic and server queues are transient and auto-deleted with their last
    /// consumer, so calls to a topic nobody serves fail fast with `NoListener`.
    pub durable: bool,
    /// Declare topic and server queues as quorum queues (only with `durable`).
    pub quorum_queues: bool,
    /// Consumer prefetch (`basic.qos`): unacknowledged deliveries per listener.
    pub prefetch: u16,
    /// AMQP heartbeat interval (whole seconds; zero disables heartbeats).
    pub heartbeat: Duration,
    /// How long a send waits for the broker's publisher confirm before `Timeout`.
    pub confirm_timeout: Duration,
    /// How long one connection attempt (TCP + AMQP handshake) to one broker may take; a
    /// URL's `?connection_timeout=<ms>` overrides it for that broker.
    pub connect_timeout: Duration,
    /// First delay between reconnection attempts (doubled on each failure, with jitter).
    pub reconnect_min: Duration,
    /// Largest delay between reconnection attempts.
    pub reconnect_max: Duration,
    /// How long `send`, `listen` and `reply_inbox` wait for a lost connection to come back
    /// before failing with `Unavailable` (retriable).
    pub reconnect_wait: Duration,
    /// Capacity of each [`Subscription`](sealrpc_core::transport::Subscription) channel.
    pub queue_capacity: usize,
    /// Largest payload accepted by `send` (checked before publishing: `TooLarge`).
    pub max_message_size: usize,
    /// Number of channels used to publish (each publishes one message at a time so that
    /// returns and confirms are correlated exactly).
    pub publisher_channels: usize,
    /// Declare exchanges (needs `configure` permission on them). A restricted guest sets
    /// this to false: it then declares and binds nothing (exchanges and its queues, which
    /// the operator provisioned, are only checked by passive declare), and publishes calls
    /// and casts through the callee topic's ingress exchange (see `docs/amqp.md`).
    pub declare_exchanges: bool,
    /// Off by default. With `declare_exchanges` (the control plane): publish calls and
    /// casts to a topic or a named server straight to the queue of that name, through the
    /// default exchange, rather than through the control exchange's topic routing. The
    /// broker then skips a topic-routing step (about 20 µs of its CPU and 28 µs of latency
    /// per call, measured on a 2-vCPU EPYC, `docs/benchmarks.md`). What changes: the
    /// default exchange reaches *any* queue of the vhost by name, not only the queues
    /// bound to the control exchange, and queues bound there besides (an audit tap) no
    /// longer see these messages. Turn it on where every target names the application's
    /// own topics. Guests never publish this way (they may not write the default exchange).
    pub publish_to_queues: bool,
    /// Connection name shown in the RabbitMQ management UI.
    pub connection_name: Option<String>,
    /// The largest AMQP frame to negotiate (at least 4096; `None`: the broker's, 128 KiB
    /// on RabbitMQ). lapin keeps a receive and a send buffer of 32 frames per connection,
    /// which the I/O loop's ring use touches whole over time: 128 KiB frames cost 8 MiB
    /// of RSS per connection, 8 KiB frames 512 KiB. Bigger messages just take more frames.
    pub frame_max: Option<u32>,
    /// For `amqps://`: CA certificates (PEM) to trust besides the platform's roots, e.g.
    /// the private CA that signed the broker's certificate. The broker's name in the URL
    /// must match its certificate.
    pub tls_ca_pem: Option<String>,
    /// For `amqps://`: this client's certificate and key, for brokers that require client
    /// certificates (mutual TLS).
    pub tls_identity: Option<TlsIdentity>,
}

/// A TLS client identity: a certificate chain and its private key, both PEM. The key is
/// zeroized on drop and never printed.
#[derive(Clone)]
pub struct TlsIdentity {
    /// The client certificate, then any intermediates (PEM).
    pub cert_chain_pem: String,
    /// The private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key_pem: sealrpc_core::Secret<String>,
}

impl PartialEq for TlsIdentity {
    fn eq(&self, other: &Self) -> bool {
        self.cert_chain_pem == other.cert_chain_pem && self.key_pem.ct_eq(&other.key_pem)
    }
}

impl Eq for TlsIdentity {}

impl std::fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsIdentity")
            .field("cert_chain_pem_len", &self.cert_chain_pem.len())
            .field("key_pem", &self.key_pem)
            .finish()
    }
}

impl Default for AmqpOptions {
    fn default() -> Self {
        Self {
            url: DEFAULT_URL.to_owned(),
            failover: FailoverOrder::InOrder,
            control_exchange: "sealrpc".to_owned(),
            durable: false,
            quorum_queues: false,
            prefetch: 64,
            heartbeat: Duration::from_secs(10),
            confirm_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            reconnect_min: Duration::from_millis(100),
            reconnect_max: Duration::from_secs(5),
            reconnect_wait: Duration::from_secs(10),
            queue_capacity: 1024,
            max_message_size: 16 * 1024 * 1024,
            publisher_channels: 4,
            declare_exchanges: true,
            publish_to_queues: false,
            connection_name: None,
            frame_max: None,
            tls_ca_pem: None,
            tls_identity: None,
        }
    }
}

/// The frame size of [`AmqpOptions::lean`] (a guest's messages are a few KiB).
pub const LEAN_FRAME_MAX: u32 = 8 * 1024;

impl AmqpOptions {
    /// These options trimmed for one of many idle connections (a guest agent of a large
    /// fleet): [`LEAN_FRAME_MAX`] frames, one publisher channel (one per reply inbox too),
    /// and 64-message subscription channels. About 0.6 MiB of RSS per connection instead
    /// of ~9 MiB (see `docs/reliability.md`, "A fleet of 1,000 guests").
    pub fn lean(mut self) -> Self {
        self.frame_max = Some(LEAN_FRAME_MAX);
        self.publisher_channels = 1;
        self.queue_capacity = 64;
        self
    }

    /// The defaults, with `url` taken from `AMQP_ADDR` when that is set and not empty (one
    /// URL or a list, see [`AmqpOptions::url`]).
    pub fn from_env() -> Self {
        let mut opts = Self::default();
        if let Ok(url) = std::env::var(ENV_ADDR)
            && !url.trim().is_empty()
        {
            opts.url = url.trim().to_owned();
        }
        opts
    }

    /// These options with another broker URL (or list, see [`AmqpOptions::url`]).
    pub fn with_url(mut self, url: impl Into<String>) -> Self {
        self.url = url.into();
        self
    }

    /// These options with a list of broker URLs (the nodes of a cluster), tried in
    /// [`AmqpOptions::failover`] order.
    ///
    /// ```
    /// use sealrpc_amqp::AmqpOptions;
    /// let opts = AmqpOptions::default()
    ///     .with_urls(["amqp://u:p@rabbit1:5672/%2f", "amqp://u:p@rabbit2:5672/%2f"]);
    /// assert_eq!(opts.url, "amqp://u:p@rabbit1:5672/%2f,amqp://u:p@rabbit2:5672/%2f");
    /// assert!(!format!("{opts:?}").contains("u:p@"));
    /// ```
    pub fn with_urls<I, S>(mut self, urls: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.url = crate::address_list::join(urls);
        self
    }
}

impl std::fmt::Debug for AmqpOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AmqpOptions")
            .field("url", &crate::address::redact(&self.url))
            .field("failover", &self.failover)
            .field("control_exchange", &self.control_exchange)
            .field("durable", &self.durable)
            .field("quorum_queues", &self.quorum_queues)
            .field("prefetch", &self.prefetch)
            .field("heartbeat", &self.heartbeat)
            .field("confirm_timeout", &self.confirm_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("reconnect_min", &self.reconnect_min)
            .field("reconnect_max", &self.reconnect_max)
            .field("reconnect_wait", &self.reconnect_wait)
            .field("queue_capacity", &self.queue_capacity)
            .field("max_message_size", &self.max_message_size)
            .field("publisher_channels", &self.publisher_channels)
            .field("declare_exchanges", &self.declare_exchanges)
            .field("publish_to_queues", &self.publish_to_queues)
            .field("connection_name", &self.connection_name)
            .field("frame_max", &self.frame_max)
            .field("tls_ca_pem", &self.tls_ca_pem.as_ref().map(String::len))
            .field("tls_identity", &self.tls_identity)
            .finish()
    }
}
