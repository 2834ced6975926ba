//! Why the oslo.messaging driver could not start, or a command to it failed.

use std::time::Duration;

/// A failure of the oslo.messaging driver or of its protocol.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// The driver process could not be started.
    #[error("cannot run {program}: {why}")]
    Spawn {
        /// What was run.
        program: String,
        /// The OS error.
        why: String,
    },
    /// A line of its stdout is not a reply of the protocol.
    #[error("not a driver reply ({why}): {line:?}")]
    Protocol {
        /// The line (at most 200 characters of it).
        line: String,
        /// The parser's complaint.
        why: String,
    },
    /// The driver answered with an error.
    #[error("the driver failed: {0}")]
    Driver(String),
    /// A reply of another kind than the command asks for.
    #[error("expected a {expected:?} reply, got {got}")]
    Unexpected {
        /// The reply kind expected.
        expected: &'static str,
        /// What came instead.
        got: String,
    },
    /// The driver closed its stdout (exited); `stderr` is the end of what it printed there.
    #[error("the driver exited: {stderr}")]
    Exited {
        /// The last lines of its stderr.
        stderr: String,
    },
    /// Talking to it failed.
    #[error("driver i/o: {0}")]
    Io(String),
    /// No reply in time: the driver was killed.
    #[error("no reply from the driver in {0:?}; killed it")]
    TimedOut(Duration),
}
