//! The driver process: a program speaking [`crate::oslo::protocol`] (in the overhead run,
//! `benches/oslo/run.sh --driver`), its pipes, and its shutdown.
//!
//! Requests are blocking pipe I/O, so each runs on tokio's blocking pool; one that gets no
//! reply in time kills the driver. Closing its stdin makes the driver stop its echo server
//! and exit; [`DriverProcess::close`] does that and waits, and dropping it does the same,
//! killing a driver that does not exit within [`EXIT_GRACE`]. Its stderr is forwarded to
//! this process's stderr (prefixed `[oslo]`), and its last lines explain a driver that
//! exits.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command as Process, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};
use std::time::{Duration, Instant};

use crate::oslo::error::DriverError;
use crate::oslo::protocol::{Command, Reply};

/// How long a driver gets to exit once its stdin is closed, before it is killed.
pub const EXIT_GRACE: Duration = Duration::from_secs(10);

/// Lines of the driver's stderr kept to explain a failure.
const STDERR_LINES: usize = 12;

struct Pipes {
    /// `None` once closed (the driver's signal to quit).
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

/// The end of the driver's stderr, filled by a thread that forwards it.
#[derive(Default)]
struct StderrTail {
    lines: Mutex<VecDeque<String>>,
    closed: AtomicBool,
}

impl StderrTail {
    fn text(&self) -> String {
        // The driver's last words may still be in the pipe: give the reader a moment.
        let deadline = Instant::now() + Duration::from_secs(2);
        while !self.closed.load(Ordering::Acquire) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let lines = lock(&self.lines);
        if lines.is_empty() {
            "(nothing on stderr)".into()
        } else {
            lines.iter().cloned().collect::<Vec<_>>().join(" | ")
        }
    }
}

/// A running driver, ready for commands.
pub struct DriverProcess {
    child: Arc<Mutex<Child>>,
    pipes: Arc<Mutex<Pipes>>,
    stderr: Arc<StderrTail>,
    pids: [u32; 2],
    version: String,
}

impl std::fmt::Debug for DriverProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DriverProcess")
            .field("pids", &self.pids)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl DriverProcess {
    /// Starts `program` with piped stdio and waits up to `ready_within` for its `ready`
    /// reply. On any failure the process is stopped again.
    pub async fn spawn(mut program: Process, ready_within: Duration) -> Result<Self, DriverError> {
        let mut child = program
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| DriverError::Spawn {
                // The program alone: its arguments may hold the broker's password.
                program: program.get_program().to_string_lossy().into_owned(),
                why: e.to_string(),
            })?;
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(DriverError::Io("the driver's pipes are missing".into()));
        };
        let tail = Arc::new(StderrTail::default());
        let forward = Arc::clone(&tail);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("[oslo] {line}");
                let mut lines = lock(&forward.lines);
                if lines.len() == STDERR_LINES {
                    lines.pop_front();
                }
                lines.push_back(line);
            }
            forward.closed.store(true, Ordering::Release);
        });
        let mut driver = Self {
            child: Arc::new(Mutex::new(child)),
            pipes: Arc::new(Mutex::new(Pipes {
                stdin: Some(stdin),
                stdout: BufReader::new(stdout),
            })),
            stderr: tail,
            pids: [0; 2],
            version: String::new(),
        };
        match driver.exchange(None, ready_within).await? {
            Reply::Ready {
                pid,
                server_pid,
                version,
            } => {
                driver.pids = [pid, server_pid];
                driver.version = version;
                Ok(driver)
            }
            other => Err(DriverError::Unexpected {
                expected: "ready",
                got: format!("{other:?}"),
            }),
        }
    }

    /// The process ids of the driver (the client) and of its echo server.
    pub fn pids(&self) -> [u32; 2] {
        self.pids
    }

    /// oslo.messaging's version, as the driver reported it (may be empty).
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Sends `command` and waits up to `within` for its reply (killing the driver if none
    /// comes). An `error` reply is [`DriverError::Driver`].
    pub async fn request(&self, command: &Command, within: Duration) -> Result<Reply, DriverError> {
        self.exchange(Some(command.to_line()?), within).await
    }

    async fn exchange(&self, line: Option<String>, within: Duration) -> Result<Reply, DriverError> {
        let pipes = Arc::clone(&self.pipes);
        let stderr = Arc::clone(&self.stderr);
        let io = tokio::task::spawn_blocking(move || {
            let exited = || DriverError::Exited {
                stderr: stderr.text(),
            };
            let mut pipes = lock(&pipes);
            if let Some(line) = line {
                let stdin = pipes.stdin.as_mut().ok_or_else(exited)?;
                stdin
                    .write_all(line.as_bytes())
                    .and_then(|()| stdin.flush())
                    .map_err(|_| exited())?;
            }
            let mut reply = String::new();
            match pipes.stdout.read_line(&mut reply) {
                Ok(0) => Err(exited()),
                Ok(_) => Reply::from_line(&reply),
                Err(e) => Err(DriverError::Io(e.to_string())),
            }
        });
        match tokio::time::timeout(within, io).await {
            Ok(Ok(reply)) => reply,
            Ok(Err(join)) => Err(DriverError::Io(join.to_string())),
            Err(_) => {
                // Killing it ends the blocked read (end of file).
                let _ = lock(&self.child).kill();
                Err(DriverError::TimedOut(within))
            }
        }
    }

    /// Asks the driver to quit, closes its stdin and waits for it to exit (killing it
    /// after [`EXIT_GRACE`]).
    pub async fn close(&self) {
        let (child, pipes) = (Arc::clone(&self.child), Arc::clone(&self.pipes));
        let _ = tokio::task::spawn_blocking(move || shut_down(&child, &pipes)).await;
    }
}

fn shut_down(child: &Mutex<Child>, pipes: &Mutex<Pipes>) {
    let mut pipes = match pipes.try_lock() {
        Ok(p) => Some(p),
        Err(TryLockError::Poisoned(p)) => Some(p.into_inner()),
        // A request is blocked on the driver: it ends when the driver is killed below.
        Err(TryLockError::WouldBlock) => None,
    };
    if let Some(stdin) = pipes.as_mut().and_then(|p| p.stdin.as_mut()) {
        let quit = Command::Quit.to_line().unwrap_or_default();
        let _ = stdin
            .write_all(quit.as_bytes())
            .and_then(|()| stdin.flush());
    }
    if let Some(p) = pipes.as_mut() {
        p.stdin = None;
    }
    drop(pipes);
    let mut child = lock(child);
    let deadline = Instant::now() + EXIT_GRACE;
    while Instant::now() < deadline {
        match child.try_wait() {
            Ok(Some(_)) => return,
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(_) => break,
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}

impl Drop for DriverProcess {
    fn drop(&mut self) {
        shut_down(&self.child, &self.pipes);
    }
}
