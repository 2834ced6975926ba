//! The store's private tokio runtime and its (re)connecting PostgreSQL session.
//!
//! The [`crate::RotationSource`] seam is synchronous (the watcher calls it on a blocking
//! thread, the CLI from `main`, a test from its async thread), so every database operation
//! runs as a task on a small runtime the store owns, and the caller waits for its answer
//! on a std channel with a bounded wait. That works from any thread, inside or outside a
//! tokio runtime, with no `block_on` nesting.

use std::future::Future;
use std::sync::mpsc;
use std::time::Duration;

use tokio::runtime::Runtime;
use tokio::sync::{Mutex, MutexGuard};
use tokio_postgres::{Client, Config, NoTls};

use crate::error::Error;

/// One worker thread: the store does a few small queries a second.
pub(crate) struct Runner {
    rt: Option<Runtime>,
}

impl Runner {
    pub(crate) fn new() -> Result<Self, Error> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("sealrpc-rotation-pg")
            .enable_all()
            .build()
            .map_err(|e| Error::Store {
                store: "postgres".into(),
                reason: format!("cannot start the store's runtime: {e}"),
            })?;
        Ok(Self { rt: Some(rt) })
    }

    pub(crate) fn handle(&self) -> Option<&tokio::runtime::Handle> {
        self.rt.as_ref().map(Runtime::handle)
    }

    /// Runs `fut` on the store's runtime and waits for it at most `wait` (then the task is
    /// abandoned: its own timeout ends it).
    pub(crate) fn run<T: Send + 'static>(
        &self,
        wait: Duration,
        store: &str,
        fut: impl Future<Output = Result<T, Error>> + Send + 'static,
    ) -> Result<T, Error> {
        let (tx, rx) = mpsc::sync_channel(1);
        let handle = self.handle().ok_or_else(|| stopped(store))?;
        let name = store.to_owned();
        handle.spawn(async move {
            let out = match tokio::time::timeout(wait, fut).await {
                Ok(r) => r,
                Err(_) => Err(timed_out(&name, wait)),
            };
            let _ = tx.send(out);
        });
        rx.recv_timeout(wait + Duration::from_secs(1))
            .unwrap_or_else(|_| Err(timed_out(store, wait)))
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        // Never blocks, so a store may be dropped on an async thread.
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

pub(crate) fn timed_out(store: &str, wait: Duration) -> Error {
    Error::Store {
        store: store.to_owned(),
        reason: format!("no answer within {} ms", wait.as_millis()),
    }
}

fn stopped(store: &str) -> Error {
    Error::Store {
        store: store.to_owned(),
        reason: "the store's runtime is stopped".into(),
    }
}

/// A database error as a store error. tokio-postgres' messages carry the server's text
/// (no parameters, no password).
pub(crate) fn db(store: &str, e: &tokio_postgres::Error) -> Error {
    let reason = match e.as_db_error() {
        Some(d) => format!("{}: {}", d.code().code(), d.message()),
        None => e.to_string(),
    };
    Error::Store {
        store: store.to_owned(),
        reason,
    }
}

/// One session, opened on first use and again after it broke.
pub(crate) struct Session {
    config: Config,
    client: Mutex<Option<Client>>,
}

impl Session {
    pub(crate) fn new(config: Config) -> Self {
        Self {
            config,
            client: Mutex::new(None),
        }
    }

    pub(crate) fn config(&self) -> &Config {
        &self.config
    }

    /// The open session (connecting if needed), held exclusively until the guard drops:
    /// one operation at a time per store handle, so a transaction never interleaves with
    /// another statement on the same session.
    pub(crate) async fn lock(&self, store: &str) -> Result<SessionGuard<'_>, Error> {
        let mut guard = self.client.lock().await;
        if guard.as_ref().is_none_or(Client::is_closed) {
            *guard = None;
            let (client, connection) = self
                .config
                .connect(NoTls)
                .await
                .map_err(|e| db(store, &e))?;
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::debug!(error = %e, "rotation store session ended");
                }
            });
            *guard = Some(client);
        }
        Ok(SessionGuard(guard))
    }
}

/// An open session; see [`Session::lock`].
pub(crate) struct SessionGuard<'a>(MutexGuard<'a, Option<Client>>);

impl SessionGuard<'_> {
    pub(crate) fn client(&mut self, store: &str) -> Result<&mut Client, Error> {
        self.0.as_mut().ok_or_else(|| Error::Store {
            store: store.to_owned(),
            reason: "session closed".into(),
        })
    }
}
