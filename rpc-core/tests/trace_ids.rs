//! The `rpc.call` and `rpc.serve` spans carry `request_id` and `global_request_id`, so one
//! user request is followed across hops: API -> task manager -> guest shows one
//! `global_request_id` in every span, and each hop's own `request_id`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use common::*;
use sealrpc_core::{Client, Context, HandlerError, Server, Target};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing_subscriber::layer::{Context as LayerContext, SubscriberExt};
use tracing_subscriber::{Layer, Registry};

/// Every span created: its name and fields.
type Spans = Arc<Mutex<Vec<(String, BTreeMap<String, String>)>>>;

struct SpanFields(Spans);

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

impl<S: tracing::Subscriber> Layer<S> for SpanFields {
    fn on_new_span(&self, attrs: &Attributes<'_>, _id: &Id, _ctx: LayerContext<'_, S>) {
        let mut fields = BTreeMap::new();
        attrs.record(&mut Fields(&mut fields));
        let name = attrs.metadata().name().to_owned();
        self.0.lock().unwrap().push((name, fields));
    }
}

fn spans_of<'a>(
    spans: &'a [(String, BTreeMap<String, String>)],
    name: &str,
    method: &str,
) -> Vec<&'a BTreeMap<String, String>> {
    spans
        .iter()
        .filter(|(n, f)| n == name && f.get("method").map(String::as_str) == Some(method))
        .map(|(_, f)| f)
        .collect()
}

// A current-thread runtime: every spawned task (servers, reply loops) runs on this thread,
// under the scoped subscriber.
#[tokio::test(flavor = "current_thread")]
async fn global_request_id_follows_a_two_hop_chain() {
    let spans = Spans::default();
    let subscriber = Registry::default().with(SpanFields(Arc::clone(&spans)));
    let _guard = tracing::subscriber::set_default(subscriber);

    let t = transport();
    let _guest = Server::builder(Arc::clone(&t), secure("control:guestagent"))
        .topic("guest")
        .handler("prepare", |_ctx: Context, e: Echo| async move {
            Ok::<_, HandlerError>(e.text)
        })
        .start()
        .await
        .unwrap();
    let tm_client: Client = client(&t, secure("control:taskmanager")).await;
    let _tm = Server::builder(Arc::clone(&t), secure("control:taskmanager"))
        .topic("taskmanager")
        .handler("create", move |ctx: Context, e: Echo| {
            let c = tm_client.clone();
            async move {
                // The next hop gets a child context: a fresh request id, the same global id.
                let out: String = c
                    .call(&ctx.child(), &Target::new("guest"), "prepare", &e)
                    .await
                    .map_err(|e| HandlerError::new("Downstream", e.to_string()))?;
                Ok::<_, HandlerError>(out)
            }
        })
        .start()
        .await
        .unwrap();
    let api = client(&t, secure("control:api")).await;

    // Without a global id the API's request id is the chain's id; with one, it is that.
    let plain = Context::new();
    let tagged = Context::new().with_global_request_id("req-user-7");
    for ctx in [&plain, &tagged] {
        let echo = Echo { text: "hi".into() };
        let out: String = api
            .call(ctx, &Target::new("taskmanager"), "create", &echo)
            .await
            .unwrap();
        assert_eq!(out, "hi");
    }

    let spans = spans.lock().unwrap().clone();
    let first = spans_of(&spans, "rpc.call", "create");
    let served = spans_of(&spans, "rpc.serve", "create");
    let second = spans_of(&spans, "rpc.call", "prepare");
    let guest = spans_of(&spans, "rpc.serve", "prepare");
    assert_eq!(
        [first.len(), served.len(), second.len(), guest.len()],
        [2; 4],
        "{spans:?}"
    );
    for (i, (ctx, global)) in [(&plain, plain.request_id()), (&tagged, "req-user-7")]
        .into_iter()
        .enumerate()
    {
        let hops = [first[i], served[i], second[i], guest[i]];
        for hop in hops {
            assert_eq!(hop["global_request_id"], global, "{hop:?}");
        }
        // The first hop is the API's request; the second hop has its own request id.
        assert_eq!(first[i]["request_id"], ctx.request_id());
        assert_eq!(served[i]["request_id"], ctx.request_id());
        assert_eq!(second[i]["request_id"], guest[i]["request_id"]);
        assert_ne!(second[i]["request_id"], ctx.request_id());
        assert!(
            second[i]["request_id"].starts_with("req-"),
            "{:?}",
            second[i]
        );
    }
}
