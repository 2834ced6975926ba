//! Large replies while many calls are in flight: the client admits them in tasks of their
//! own (see `ClientBuilder::offload_replies_from`); every call still gets its own result,
//! once, and the security pipeline refuses nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use futures_util::StreamExt;
use sealrpc_core::{Client, Context, HandlerError, Server, Target};

/// A payload that names its call in every byte.
fn payload(call: usize, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (call.wrapping_mul(31) ^ i) as u8)
        .collect()
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Blob {
    #[serde(with = "serde_bytes")]
    data: Vec<u8>,
}

async fn echo_calls(client: &Client, calls: usize, len: usize) {
    let (ctx, target) = (Context::new(), Target::new("blobs"));
    futures_util::stream::iter(0..calls)
        .map(|call| {
            let (ctx, target) = (&ctx, &target);
            async move {
                let sent = payload(call, len);
                let back: Blob = client
                    .call(ctx, target, "echo", &Blob { data: sent.clone() })
                    .await
                    .unwrap();
                assert!(back.data == sent, "call {call} got another call's result");
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<()>>()
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_large_replies_in_flight_each_reach_their_call() {
    let t = transport();
    let server = Server::builder(t.clone(), secure("control:conductor"))
        .topic("blobs")
        .handler("echo", |_ctx: Context, b: Blob| async move {
            Ok::<_, HandlerError>(b)
        })
        .start()
        .await
        .unwrap();
    let client = Client::builder(t.clone(), secure("control:api"))
        .build()
        .await
        .unwrap();
    // Large replies (admitted in tasks while others are in flight), then small ones.
    echo_calls(&client, 96, 64 * 1024).await;
    echo_calls(&client, 96, 512).await;
    // Every call admitted in the loop too: the same results.
    let inline = Client::builder(t.clone(), secure("control:api"))
        .offload_replies_from(usize::MAX)
        .build()
        .await
        .unwrap();
    echo_calls(&inline, 48, 64 * 1024).await;

    assert_eq!(client.in_flight(), 0);
    for security in [client.security(), inline.security()] {
        assert_eq!(security.counters().total_rejected(), 0);
    }
    server.shutdown().await;
}
