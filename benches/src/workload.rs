//! The echo workload through the real path users take: a [`Client`] of the control plane
//! (`control:api`) calling a guest agent [`Server`] (`guest:<id>`) on a transport, in one
//! security mode.

use std::sync::Arc;

use sealrpc_core::transport::Transport;
use sealrpc_core::{Client, Context, HandlerError, Server, ServerHandle, Target};
use serde::{Deserialize, Serialize};

use crate::BoxError;
use crate::modes::{BenchKeys, SecMode};
use crate::runner::{CallFuture, EchoCall};

/// The echo call's argument and result: `{"data": bin}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Echo {
    /// The payload, sent as MessagePack `bin`.
    #[serde(with = "serde_bytes")]
    pub data: Vec<u8>,
}

/// A running client/server pair in one mode, calling `echo` with a fixed payload.
pub struct EchoRpc {
    client: Client,
    server: Option<ServerHandle>,
    target: Target,
    ctx: Context,
    args: Echo,
}

impl std::fmt::Debug for EchoRpc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EchoRpc")
            .field("target", &self.target)
            .field("payload", &self.args.data.len())
            .finish_non_exhaustive()
    }
}

impl EchoRpc {
    /// Starts a guest server on `server_transport` (topic `topic`, server name = the guest's
    /// instance id) and a client on `client_transport`, secured as `mode` says.
    pub async fn start(
        keys: &BenchKeys,
        mode: SecMode,
        client_transport: Arc<dyn Transport>,
        server_transport: Arc<dyn Transport>,
        topic: &str,
        payload_len: usize,
    ) -> Result<Self, BoxError> {
        let pair = keys.pair(mode);
        let server = Server::builder(server_transport, pair.server)
            .topic(topic)
            .server_name(keys.guest_id())
            .shared(false)
            .fanout(false)
            .handler("echo", |_ctx: Context, args: Echo| async move {
                Ok::<_, HandlerError>(args)
            })
            .start()
            .await?;
        let client = Client::builder(client_transport, pair.client)
            .build()
            .await?;
        Ok(Self {
            client,
            server: Some(server),
            target: Target::guest(topic, keys.guest_id()),
            ctx: Context::new(),
            args: Echo {
                data: crate::pipeline::payload(payload_len),
            },
        })
    }

    /// One echo call; checks the result's size.
    pub async fn round_trip(&self) -> Result<(), BoxError> {
        let r: Echo = self
            .client
            .call(&self.ctx, &self.target, "echo", &self.args)
            .await?;
        if r.data.len() != self.args.data.len() {
            return Err("echo: result of the wrong size".into());
        }
        Ok(())
    }

    /// The client (for its security counters).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Stops the server (waiting for requests in flight).
    pub async fn shutdown(&mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown().await;
        }
    }
}

impl EchoCall for EchoRpc {
    fn call(&self) -> CallFuture<'_> {
        Box::pin(self.round_trip())
    }
}
