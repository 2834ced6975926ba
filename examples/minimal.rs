//! Minimal sealrpc: a server and a client on the in-memory transport, a method declared
//! once with `rpc!`, handlers sharing application state (plain, policy Off, for brevity;
//! `trove_cluster` shows signed and sealed traffic).

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use sealrpc_core::security::SecurityConfig;
use sealrpc_core::{Context, HandlerError, MemoryTransport, Node, Principal, Target, rpc};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Resize {
    instance_id: String,
    gb: u32,
}

#[derive(Serialize, Deserialize, Debug)]
struct Resized {
    size_gb: u32,
    resizes: u32,
}

rpc! {
    /// API -> task manager: resize an instance's volume.
    struct ResizeVolume = "resize_volume"(Resize) -> Resized;
}

/// What the task manager's handlers share.
#[derive(Default)]
struct TaskManager {
    resizes: AtomicU32,
}

async fn resize(tm: Arc<TaskManager>, ctx: Context, r: Resize) -> Result<Resized, HandlerError> {
    let id = ctx.request_id();
    println!("[server] {id}: resize {} to {} GB", r.instance_id, r.gb);
    match r.gb {
        0 => Err(HandlerError::bad_request("size must be positive")),
        size_gb => Ok(Resized {
            size_gb,
            resizes: tm.resizes.fetch_add(1, Ordering::Relaxed) + 1,
        }),
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let bus = MemoryTransport::new();
    let node = |p| Principal::parse(p).map(|p| Node::new(bus.clone(), SecurityConfig::insecure(p)));
    let server = node("control:taskmanager")
        .ok_or("bad principal")?
        .server()
        .topic("taskmanager")
        .with_state(Arc::new(TaskManager::default()))
        .handler(ResizeVolume, resize)
        .start()
        .await?;
    let client = node("control:api")
        .ok_or("bad principal")?
        .client()
        .build()
        .await?;

    let (ctx, target) = (Context::new(), Target::new("taskmanager"));
    for gb in [20, 0] {
        let args = Resize {
            instance_id: "7f3a".into(),
            gb,
        };
        match client.call(&ctx, &target, ResizeVolume, &args).await {
            Ok(r) => println!("[client] reply: {r:?}"),
            Err(e) => println!("[client] error: {e}"),
        }
    }

    server.shutdown().await;
    Ok(())
}
