//! The line protocol between the overhead run and `benches/oslo/bench.py --driver`: one
//! JSON command per line on the driver's stdin, one JSON reply per line on its stdout
//! (`benches/oslo/driver.py` documents the same protocol from the Python side).

use serde::{Deserialize, Serialize};

use crate::oslo::error::DriverError;
use crate::runner::Budget;

/// A command to the driver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Command {
    /// Untimed: `calls` sequential calls, then `2 x in_flight` calls with `in_flight` in
    /// flight (opens oslo.messaging's connections and starts the driver's threads). Any
    /// failed call makes it an error.
    Warmup {
        /// Sequential calls.
        calls: u64,
        /// Calls in flight afterwards (0: none).
        in_flight: usize,
    },
    /// One sequential batch.
    Sequential {
        /// The time slice, nanoseconds (used when `calls` is `None`).
        slice_ns: u64,
        /// A fixed count of calls instead of the slice.
        calls: Option<u64>,
        /// Fewest calls a time-bounded batch makes.
        min_calls: u64,
    },
    /// One batch with `in_flight` calls in flight.
    Concurrent {
        /// Calls in flight (threads of the driver, started before the batch's clock).
        in_flight: usize,
        /// The time slice, nanoseconds (used when `calls` is `None`).
        slice_ns: u64,
        /// A fixed count of calls instead of the slice.
        calls: Option<u64>,
        /// Fewest calls a time-bounded batch makes.
        min_calls: u64,
    },
    /// Stop the echo server and exit (closing the driver's stdin does the same).
    Quit,
}

impl Command {
    /// The sequential batch `budget` asks for.
    pub fn sequential(budget: &Budget) -> Self {
        Self::Sequential {
            slice_ns: duration_ns(budget),
            calls: budget.calls,
            min_calls: budget.min_calls,
        }
    }

    /// The in-flight batch `budget` asks for.
    pub fn concurrent(budget: &Budget) -> Self {
        Self::Concurrent {
            in_flight: budget.in_flight,
            slice_ns: duration_ns(budget),
            calls: budget.calls,
            min_calls: budget.min_calls,
        }
    }

    /// The command as one line of the protocol (newline included).
    pub fn to_line(&self) -> Result<String, DriverError> {
        let mut line = serde_json::to_string(self).map_err(|e| DriverError::Protocol {
            line: format!("{self:?}"),
            why: e.to_string(),
        })?;
        line.push('\n');
        Ok(line)
    }
}

fn duration_ns(budget: &Budget) -> u64 {
    u64::try_from(budget.slice.as_nanos()).unwrap_or(u64::MAX)
}

/// A reply from the driver.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum Reply {
    /// Sent once, unasked, when the echo server and the client are up.
    Ready {
        /// The driver's (client's) process id.
        pid: u32,
        /// The echo server's process id.
        server_pid: u32,
        /// oslo.messaging's version (may be empty).
        version: String,
    },
    /// Answers [`Command::Warmup`].
    Warmup {
        /// Calls made.
        calls: u64,
    },
    /// Answers [`Command::Sequential`].
    Sequential {
        /// Latency of every call that succeeded, nanoseconds.
        latencies_ns: Vec<u64>,
        /// Wall time of the batch, nanoseconds.
        wall_ns: u64,
        /// Calls that failed.
        errors: u64,
    },
    /// Answers [`Command::Concurrent`].
    Concurrent {
        /// Calls that succeeded.
        calls: u64,
        /// Wall time of the batch, nanoseconds.
        wall_ns: u64,
        /// Calls that failed.
        errors: u64,
    },
    /// The command failed (details on the driver's stderr).
    Error {
        /// What went wrong.
        message: String,
    },
}

impl Reply {
    /// Parses one line of the driver's stdout; an `error` reply becomes
    /// [`DriverError::Driver`].
    pub fn from_line(line: &str) -> Result<Self, DriverError> {
        let reply: Reply =
            serde_json::from_str(line.trim()).map_err(|e| DriverError::Protocol {
                line: line.trim().chars().take(200).collect(),
                why: e.to_string(),
            })?;
        match reply {
            Reply::Error { message } => Err(DriverError::Driver(message)),
            other => Ok(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn budget(calls: Option<u64>) -> Budget {
        Budget {
            rounds: 1,
            slice: Duration::from_millis(150),
            calls,
            in_flight: 32,
            min_calls: 5,
            warmup: 3,
        }
    }

    #[test]
    fn commands_are_one_json_line() {
        let line = Command::sequential(&budget(None)).to_line().unwrap();
        assert_eq!(
            line,
            "{\"cmd\":\"sequential\",\"slice_ns\":150000000,\"calls\":null,\"min_calls\":5}\n"
        );
        let line = Command::concurrent(&budget(Some(100))).to_line().unwrap();
        assert_eq!(
            line,
            "{\"cmd\":\"concurrent\",\"in_flight\":32,\"slice_ns\":150000000,\"calls\":100,\
             \"min_calls\":5}\n"
        );
        let warm = Command::Warmup {
            calls: 3,
            in_flight: 32,
        };
        assert_eq!(
            warm.to_line().unwrap(),
            "{\"cmd\":\"warmup\",\"calls\":3,\"in_flight\":32}\n"
        );
        assert_eq!(Command::Quit.to_line().unwrap(), "{\"cmd\":\"quit\"}\n");
    }

    #[test]
    fn replies_parse() {
        let ready = r#"{"reply": "ready", "pid": 10, "server_pid": 11, "version": "18.3.1"}"#;
        assert_eq!(
            Reply::from_line(ready).unwrap(),
            Reply::Ready {
                pid: 10,
                server_pid: 11,
                version: "18.3.1".into()
            }
        );
        let seq = r#"{"reply": "sequential", "latencies_ns": [5, 7], "wall_ns": 20, "errors": 1}"#;
        assert_eq!(
            Reply::from_line(seq).unwrap(),
            Reply::Sequential {
                latencies_ns: vec![5, 7],
                wall_ns: 20,
                errors: 1
            }
        );
        let conc = "{\"reply\": \"concurrent\", \"calls\": 9, \"wall_ns\": 30, \"errors\": 0}\n";
        assert_eq!(
            Reply::from_line(conc).unwrap(),
            Reply::Concurrent {
                calls: 9,
                wall_ns: 30,
                errors: 0
            }
        );
    }

    #[test]
    fn errors_and_garbage_are_typed_errors() {
        let err = Reply::from_line(r#"{"reply": "error", "message": "boom"}"#);
        assert!(matches!(err, Err(DriverError::Driver(m)) if m == "boom"));
        for bad in [
            "Traceback (most recent call last):",
            r#"{"reply": "sequential", "wall_ns": 1}"#,
            r#"{"reply": "nonsense"}"#,
            r#"{"reply": "concurrent", "calls": -1, "wall_ns": 1, "errors": 0}"#,
            "",
        ] {
            assert!(
                matches!(Reply::from_line(bad), Err(DriverError::Protocol { .. })),
                "{bad:?}"
            );
        }
    }
}
