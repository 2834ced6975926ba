//! One timer per call (client) or per admitted request (server): the in-flight gauge while
//! it runs, then its outcome and latency. Dropped unfinished, it counts as [`CANCELLED`].

use std::sync::Arc;
use std::time::Instant;

use metrics::{Gauge, Key, Level, Metadata};

use super::keys::{self, MethodKeys, TimerKeys};
use super::{CANCELLED, OK, methods};
use crate::error::{Error, ErrorCode};
use crate::server::HandlerError;
use crate::wire::Kind;

/// What the `counter!`-style macros would record as the metrics' origin.
static METADATA: Metadata<'static> =
    Metadata::new(module_path!(), Level::INFO, Some(module_path!()));

/// Measures one call or request from `start` to `finish` (or drop).
#[derive(Debug)]
pub(crate) struct CallTimer {
    keys: Arc<MethodKeys>,
    kind: Kind,
    in_flight: Gauge,
    started: Instant,
    finished: bool,
}

impl CallTimer {
    /// A call or cast a client sends (`method` as the application names it).
    pub(crate) fn client(method: &str, kind: Kind) -> Self {
        Self::start(keys::client(method), kind)
    }

    /// A request a server admitted: `method` is the peer's, so it becomes a label only when
    /// a server of this process registered it.
    pub(crate) fn server(method: &str, kind: Kind) -> Self {
        Self::start(methods::keys(method), kind)
    }

    fn start(keys: Arc<MethodKeys>, kind: Kind) -> Self {
        // Registered with the recorder in force now (global or local): keys are cached,
        // registrations are not.
        let in_flight =
            metrics::with_recorder(|r| r.register_gauge(&keys.of(kind).in_flight, &METADATA));
        in_flight.increment(1.0);
        Self {
            keys,
            kind,
            in_flight,
            started: Instant::now(),
            finished: false,
        }
    }

    /// Records a client call's result.
    pub(crate) fn finish_call<T>(self, result: &Result<T, Error>) {
        let outcome = match result {
            Ok(_) => OK,
            Err(e) => e.code().as_str(),
        };
        self.finish(outcome);
    }

    /// Records a served request's result (an application's own error name as `Remote`).
    pub(crate) fn finish_served<T>(self, result: &Result<T, HandlerError>) {
        let outcome = match result {
            Ok(_) => OK,
            Err(e) => ErrorCode::parse(e.code())
                .unwrap_or(ErrorCode::Remote)
                .as_str(),
        };
        self.finish(outcome);
    }

    fn finish(mut self, outcome: &'static str) {
        self.record(outcome);
    }

    fn record(&mut self, outcome: &'static str) {
        self.finished = true;
        let keys: &TimerKeys = self.keys.of(self.kind);
        let elapsed = self.started.elapsed();
        let total = |key: &Key| {
            metrics::with_recorder(|r| r.register_counter(key, &METADATA)).increment(1);
        };
        metrics::with_recorder(|r| r.register_histogram(&keys.duration, &METADATA)).record(elapsed);
        keys.with_total(outcome, total);
    }
}

impl Drop for CallTimer {
    fn drop(&mut self) {
        if !self.finished {
            self.record(CANCELLED);
        }
        self.in_flight.decrement(1.0);
    }
}
