//! One timer per call (client) or per admitted request (server): the in-flight gauge while
//! it runs, then its outcome and latency. Dropped unfinished, it counts as [`CANCELLED`].

use std::sync::Arc;
use std::time::Instant;

use metrics::{Gauge, Label, SharedString};

use super::{
    CANCELLED, CLIENT_CALL_DURATION, CLIENT_CALLS, CLIENT_CALLS_IN_FLIGHT, OK,
    SERVER_REQUEST_DURATION, SERVER_REQUESTS, SERVER_REQUESTS_IN_FLIGHT, methods,
};
use crate::error::{Error, ErrorCode};
use crate::server::HandlerError;
use crate::wire::Kind;

/// The three metric names of one side.
#[derive(Debug)]
struct Names {
    total: &'static str,
    duration: &'static str,
    in_flight: &'static str,
}

const CLIENT: Names = Names {
    total: CLIENT_CALLS,
    duration: CLIENT_CALL_DURATION,
    in_flight: CLIENT_CALLS_IN_FLIGHT,
};

const SERVER: Names = Names {
    total: SERVER_REQUESTS,
    duration: SERVER_REQUEST_DURATION,
    in_flight: SERVER_REQUESTS_IN_FLIGHT,
};

/// Measures one call or request from `start` to `finish` (or drop).
#[derive(Debug)]
pub(crate) struct CallTimer {
    names: &'static Names,
    labels: [Label; 2],
    in_flight: Gauge,
    started: Instant,
    finished: bool,
}

impl CallTimer {
    /// A call or cast a client sends (`method` as the application names it).
    pub(crate) fn client(method: &str, kind: Kind) -> Self {
        // Shared: the timer's three metrics clone the label without allocating.
        Self::start(&CLIENT, SharedString::from_shared(Arc::from(method)), kind)
    }

    /// A request a server admitted: `method` is the peer's, so it becomes a label only when
    /// a server of this process registered it.
    pub(crate) fn server(method: &str, kind: Kind) -> Self {
        Self::start(&SERVER, methods::label(method), kind)
    }

    fn start(names: &'static Names, method: SharedString, kind: Kind) -> Self {
        let labels = [
            Label::new("method", method),
            Label::new("kind", kind.as_str()),
        ];
        let in_flight = metrics::gauge!(names.in_flight, labels.iter());
        in_flight.increment(1.0);
        Self {
            names,
            labels,
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
        let [method, kind] = &self.labels;
        metrics::histogram!(self.names.duration, self.labels.iter()).record(self.started.elapsed());
        let labels = [method.clone(), kind.clone(), Label::new("outcome", outcome)];
        metrics::counter!(self.names.total, labels.iter()).increment(1);
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
