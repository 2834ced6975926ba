//! Minimal sealrpc: a server and a client on the in-memory transport, typed calls (plain,
//! policy Off, for brevity; `trove_cluster` shows signed and sealed traffic).

use std::sync::Arc;

use sealrpc_core::{
    Client, Context, HandlerError, MemoryTransport, Principal, SecurityConfig, Server, Target,
    Transport,
};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Resize {
    instance_id: String,
    gb: u32,
}

#[derive(Serialize, Deserialize, Debug)]
struct Resized {
    size_gb: u32,
}

async fn resize(ctx: Context, r: Resize) -> Result<Resized, HandlerError> {
    let id = ctx.request_id();
    println!("[server] {id}: resize {} to {} GB", r.instance_id, r.gb);
    match r.gb {
        0 => Err(HandlerError::bad_request("size must be positive")),
        size_gb => Ok(Resized { size_gb }),
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let transport: Arc<dyn Transport> = Arc::new(MemoryTransport::new());
    let node = |p| Principal::parse(p).map(|p| SecurityConfig::insecure(p).build());
    let tm = node("control:taskmanager").ok_or("bad principal")?;
    let server = Server::builder(Arc::clone(&transport), tm)
        .topic("taskmanager")
        .handler("resize_volume", resize)
        .start()
        .await?;
    let api = node("control:api").ok_or("bad principal")?;
    let client = Client::builder(transport, api).build().await?;

    let (ctx, target) = (Context::new(), Target::new("taskmanager"));
    for gb in [20, 0] {
        let args = Resize {
            instance_id: "7f3a".into(),
            gb,
        };
        let reply = client.call::<_, Resized>(&ctx, &target, "resize_volume", &args);
        match reply.await {
            Ok(r) => println!("[client] reply: {r:?}"),
            Err(e) => println!("[client] error: {e}"),
        }
    }

    server.shutdown().await;
    Ok(())
}
