//! A clean `close()` is quiet: closing a transport that listens (server, shared and fanout
//! queues), has a reply inbox and has made a call logs nothing at WARN or above, from any
//! target (lapin's `Connection error ... invalid channel state: Closing` included); nor
//! does dropping such a transport without `close()`.
//!
//! Its own test binary, because it installs the process-wide tracing subscriber.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{connect, msg, opts, recv, spec, uniq};
use sealrpc_core::transport::{Address, Transport};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

/// Records every event at WARN or above: its level, target and fields.
#[derive(Clone, Default)]
struct Loud(Arc<Mutex<Vec<String>>>);

struct Fields(String);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!(" {}={value:?}", field.name()));
    }
}

impl<S: Subscriber> Layer<S> for Loud {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let meta = event.metadata();
        if *meta.level() <= Level::WARN {
            let mut f = Fields(String::new());
            event.record(&mut f);
            let line = format!("{} {}:{}", meta.level(), meta.target(), f.0);
            self.0.lock().unwrap().push(line);
        }
    }
}

/// Rounds: the race with the connection close is not hit every time.
const ROUNDS: usize = 5;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_close_logs_nothing_at_warn_or_above() {
    let loud = Loud::default();
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(loud.clone()))
        .expect("the only subscriber of this binary");
    let topic = uniq("t-quiet");
    for round in 0..ROUNDS {
        let t = connect(opts()).await;
        let server = format!("s{round}");
        let mut sub = t.listen(&spec(&topic, &server, true, true)).await.unwrap();
        let mut inbox = t.reply_inbox().await.unwrap();
        let mut call = msg(Address::Topic(topic.clone()), "ping");
        call.reply_to = Some(inbox.route.clone());
        t.send(call).await.unwrap();
        let mut d = recv(&mut sub, 5).await.expect("call delivered");
        let to = Address::Reply(d.reply_to.clone().expect("reply_to"));
        d.ack().await;
        t.send(msg(to, "pong")).await.unwrap();
        let r = recv(&mut inbox.deliveries, 5).await.expect("reply");
        assert_eq!(&r.payload[..], b"pong");
        if round + 1 < ROUNDS {
            t.close().await;
        }
        // The last round only drops the transport: the same ordered close, in the
        // background (the settling wait below lets it finish).
        drop((sub, inbox, t));
    }
    // Let lapin's background tasks finish what the close started (they log late).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let events = loud.0.lock().unwrap().clone();
    let mut queues = vec![topic.clone()];
    let mut exchanges = vec![format!("{topic}_fanout")];
    for round in 0..ROUNDS {
        queues.push(format!("{topic}.s{round}"));
        queues.push(format!("{topic}_fanout.s{round}"));
    }
    exchanges.push(format!("{topic}_ingress"));
    common::cleanup(&queues, &exchanges).await;
    assert!(events.is_empty(), "a clean close logged: {events:#?}");
}
