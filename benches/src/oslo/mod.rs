//! The oslo.messaging baseline as a row of the overhead run's interleaved rounds.
//!
//! `benches/oslo/run.sh --driver` (made a virtualenv from PyPI on first use) starts
//! oslo.messaging's echo server in a child process (threading executor) and its client,
//! then runs the batches the runner asks for ([`protocol`]), on the same broker and under
//! the same budget as the sealrpc rows, in the same rotation.

pub mod driver;
pub mod echo;
pub mod error;
pub mod protocol;

use std::process::Command as Process;
use std::time::Duration;

use crate::oslo::driver::DriverProcess;
use crate::oslo::echo::OsloEcho;
use crate::oslo::error::DriverError;
use crate::oslo::protocol::{Command, Reply};

/// The row's name in the report.
pub const ROW: &str = "oslo.messaging";

/// How long the driver may take to start: on first use `run.sh` installs oslo.messaging.
pub const START_WITHIN: Duration = Duration::from_secs(300);

/// How long the first calls may take (oslo declares its queues and opens its connections).
const FIRST_CALLS_WITHIN: Duration = Duration::from_secs(120);

/// oslo's URL form of an `amqp://` URL (`rabbit://`, vhost `/` as an empty path).
pub fn rabbit_url(amqp: &str) -> String {
    let rest = amqp
        .strip_prefix("amqp://")
        .or_else(|| amqp.strip_prefix("amqps://"))
        .unwrap_or(amqp);
    let rest = rest
        .strip_suffix("%2f")
        .or_else(|| rest.strip_suffix("%2F"))
        .unwrap_or(rest);
    format!("rabbit://{rest}")
}

/// The command that starts the driver for `bytes`-byte echoes on the broker at `amqp`.
pub fn driver_command(amqp: &str, bytes: usize) -> Process {
    let mut run = Process::new("bash");
    run.arg(concat!(env!("CARGO_MANIFEST_DIR"), "/oslo/run.sh"))
        .args(["--driver", "--url", &rabbit_url(amqp)])
        .args(["--size", &bytes.to_string()]);
    run
}

/// Starts `program` as a driver and checks that calls go through, one and then
/// `in_flight` at a time (which also opens oslo's connections, so that a failure there
/// skips the row rather than failing the run's warm-up); `Err` says why the row cannot run
/// (no python3, the virtualenv could not be made, the broker refused, ...).
pub async fn start(program: Process, in_flight: usize) -> Result<OsloEcho, DriverError> {
    let driver = DriverProcess::spawn(program, START_WITHIN).await?;
    let first_calls = Command::Warmup {
        calls: 1,
        in_flight,
    };
    match driver.request(&first_calls, FIRST_CALLS_WITHIN).await? {
        Reply::Warmup { .. } => Ok(OsloEcho::new(driver)),
        other => Err(DriverError::Unexpected {
            expected: "warmup",
            got: format!("{other:?}"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::rabbit_url;

    #[test]
    fn amqp_urls_become_oslo_urls() {
        assert_eq!(
            rabbit_url("amqp://guest:guest@127.0.0.1:5672/%2f"),
            "rabbit://guest:guest@127.0.0.1:5672/"
        );
        assert_eq!(rabbit_url("amqp://u:p@h:1/vh"), "rabbit://u:p@h:1/vh");
    }
}
